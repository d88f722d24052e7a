"""containerd as a runtime of this host: how it is detected (:mod:`.detection`), the proxy environment its systemd
unit gives it (SEMANTICS §2.6), and :func:`load`, which reads the configuration and wires the CRI
planner of :mod:`.routes` into a :class:`~regtui.runtimes.view.RuntimeView`.
"""

from __future__ import annotations

from regtui.config.systemd import load_unit
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.net.proxy import ProxyEnv, from_environ
from regtui.options import CheckOptions
from regtui.runtimes.containerd.config import load_config
from regtui.runtimes.containerd.detection import CONFIG_PATH, UNIT, detect
from regtui.runtimes.containerd.model import RUNTIME
from regtui.runtimes.containerd.routes import plan
from regtui.runtimes.containerd.versions import installed_version
from regtui.runtimes.view import RuntimeView

__all__ = ["detect", "proxy_environment", "load"]


def proxy_environment(host: Host, runtime: str = RUNTIME) -> tuple[ProxyEnv, list[SourceFile], list[Finding]]:
    """containerd's proxy variables from its systemd unit, drop-ins and environment files."""
    unit = load_unit(host, UNIT, runtime)
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
