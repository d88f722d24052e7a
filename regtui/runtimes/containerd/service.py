"""containerd as a runtime of this host: how it is detected, the proxy environment its systemd
unit gives it (SEMANTICS §2.6), and :func:`load`, which reads the configuration and wires the CRI
planner of :mod:`.routes` into a :class:`~regtui.runtimes.view.RuntimeView`.
"""

from __future__ import annotations

from regtui.config.systemd import load_unit, unit_paths
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.net.proxy import ProxyEnv, from_environ
from regtui.options import CheckOptions
from regtui.runtimes.containerd.config import CONFIG_PATH, load_config
from regtui.runtimes.containerd.model import DEFAULT_HOSTS_DIR, RUNTIME
from regtui.runtimes.containerd.routes import plan
from regtui.runtimes.containerd.versions import installed_version
from regtui.runtimes.view import RuntimeView

__all__ = ["detect", "proxy_environment", "load"]

_SOCKET = "/run/containerd/containerd.sock"
_UNIT = "containerd.service"


#: Drop-ins the default configuration of recent containerd releases imports (``imports =
#: ['/etc/containerd/conf.d/*.toml']``, upstream PR 12323): files only containerd reads.
_CONF_D = "/etc/containerd/conf.d"


def detect(host: Host) -> list[str]:
    """Paths and binaries that show containerd is installed or configured here: its config.toml,
    conf.d drop-ins, hosts directories (read by the CRI and by ctr/nerdctl), the socket, the unit
    and its drop-ins, the binary."""
    found = [p for p in (CONFIG_PATH, _SOCKET) if host.exists(p)]
    found += host.glob(_CONF_D, ".toml")
    if host.listdir(DEFAULT_HOSTS_DIR):
        found.append(DEFAULT_HOSTS_DIR)
    found += unit_paths(host, _UNIT)
    binary = host.which("containerd")
    if binary:
        found.append(binary)
    return found


def proxy_environment(host: Host, runtime: str = RUNTIME) -> tuple[ProxyEnv, list[SourceFile], list[Finding]]:
    """containerd's proxy variables from its systemd unit, drop-ins and environment files."""
    unit = load_unit(host, _UNIT, runtime)
    return from_environ(unit.environment, unit.env_sources, "containerd"), unit.files, unit.findings


def load(host: Host, options: CheckOptions) -> RuntimeView:
    """containerd as the CRI (kubelet, crictl) uses it: files, findings, proxy, planner, credentials."""
    cfg = load_config(host, CONFIG_PATH, version=installed_version(host, options))
    proxy_env, unit_files, unit_findings = proxy_environment(host)
    return RuntimeView(
        name=RUNTIME,
        detected_by=detect(host),
        sources=cfg.sources + unit_files,
        findings=cfg.findings + unit_findings,
        proxy_env=proxy_env,
        planner=lambda ref: plan(host, cfg, proxy_env, ref),
        credentials=cfg.credential,
        summary={**cfg.summary(), "proxy": proxy_env.effective()},
    )
