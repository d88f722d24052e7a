"""Which container runtime kubelet pulls images through.

kubelet talks CRI to one socket for images: ``imageServiceEndpoint`` when set, else
``containerRuntimeEndpoint`` (default ``unix:///run/containerd/containerd.sock`` since
Kubernetes 1.27). Where the value comes from, later sources winning (command-line flags beat
the config file; a flag given twice keeps the last):

1. the KubeletConfiguration file named by ``--config`` (kubeadm: ``/var/lib/kubelet/config.yaml``),
   read with sigs.k8s.io/yaml (yaml.v2 scalars);
2. the ``kubelet.service`` ExecStart, with ``$VAR`` expanded from the unit's environment:
   kubeadm's drop-in passes ``$KUBELET_KUBEADM_ARGS`` (``/var/lib/kubelet/kubeadm-flags.env``)
   then ``$KUBELET_EXTRA_ARGS`` (``/etc/default/kubelet`` or ``/etc/sysconfig/kubelet``);
3. with k3s or RKE2, the kubelet runs inside k3s and gets the embedded containerd socket
   ``/run/k3s/containerd/containerd.sock`` unless k3s's ``container-runtime-endpoint``,
   ``docker`` or ``kubelet-arg`` says otherwise.

The socket names the runtime: ``containerd.sock`` is containerd (k3s's own under ``/run/k3s``),
``crio.sock`` CRI-O, ``cri-dockerd.sock`` Docker through cri-dockerd. ``docker.sock`` is not a
CRI socket: kubelet cannot start with it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from regtui import redact
from regtui.config.systemd import UnitConfig, env_file, expand_argv, load_unit
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile

__all__ = ["KubeletView", "load", "runtime_for_endpoint", "DEFAULT_ENDPOINT", "CONFIG_PATH"]

RUNTIME = "kubelet"
#: kubelet's default CRI endpoint (KubeletConfiguration default since Kubernetes 1.27).
DEFAULT_ENDPOINT = "unix:///run/containerd/containerd.sock"
#: kubeadm's KubeletConfiguration file.
CONFIG_PATH = "/var/lib/kubelet/config.yaml"
_FLAGS_FILE = "/var/lib/kubelet/kubeadm-flags.env"
_EXTRA_FILES = ("/etc/default/kubelet", "/etc/sysconfig/kubelet")
_UNIT = "kubelet.service"
_FLAG_NAMES = ("container-runtime-endpoint", "image-service-endpoint", "config")


@dataclass
class KubeletView:
    """The CRI kubelet pulls images through, and where that was decided."""

    runtime: str | None
    """``containerd``, ``crio``, ``docker`` (via cri-dockerd), ``k3s``, or ``None`` when unknown."""
    endpoint: str | None
    """The socket images are pulled through (``unix:///run/containerd/containerd.sock``)."""
    source: str
    """``path:line`` of the setting, or ``default (...)``."""
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    detected: bool = False
    """kubelet (or k3s/RKE2, which embeds it) is configured on this host."""
    runtime_endpoint: str | None = None
    """``containerRuntimeEndpoint`` when ``imageServiceEndpoint`` points elsewhere."""
    via: str = ""
    """How the runtime is reached when it is not native CRI (``cri-dockerd``)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the report's Config panel."""
        return {"runtime": self.runtime, "endpoint": self.endpoint, "source": self.source, "via": self.via,
                "runtime_endpoint": self.runtime_endpoint, "detected": self.detected,
                "sources": [s.to_dict() for s in self.sources]}


def runtime_for_endpoint(endpoint: str) -> tuple[str | None, str]:
    """(runtime, via) for a CRI endpoint: the socket file name decides."""
    path = endpoint.strip()
    if path.startswith("unix://"):
        path = path[len("unix://"):]
    elif "://" in path:
        return None, ""
    name = posixpath.basename(path.rstrip("/"))
    if name == "containerd.sock":
        return ("k3s", "") if path.startswith("/run/k3s/") or path.startswith("/var/run/k3s/") else ("containerd", "")
    if name == "crio.sock":
        return "crio", ""
    if name in ("cri-dockerd.sock", "dockershim.sock"):
        return "docker", name.removesuffix(".sock")
    return None, ""


# -- flags ----------------------------------------------------------------------------------------


def _flags(words: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The last value of each flag kubelet cares about here, with the source of the flag."""
    found: dict[str, tuple[str, str]] = {}
    i = 0
    while i < len(words):
        word, origin = words[i]
        i += 1
        if not word.startswith("-"):
            continue
        name, eq, value = word.lstrip("-").partition("=")
        if name not in _FLAG_NAMES:
            continue
        if not eq:
            if i >= len(words):
                continue
            value = words[i][0]
            i += 1
        found[name] = (value, origin)
    return found


def _unit_flags(host: Host, view: KubeletView, unit: UnitConfig) -> tuple[dict[str, tuple[str, str]], bool]:
    """Flags from kubelet.service (or, without a unit, from the files kubeadm's drop-in reads)."""
    view.sources += unit.files
    view.findings += unit.findings
    if unit.found and unit.exec_start:
        return _flags(expand_argv(unit.exec_start, unit.environment, unit.env_sources,
                                  default=unit.exec_start_source)), True
    env: dict[str, str] = {}
    sources: dict[str, str] = {}
    present = False
    for path in (_FLAGS_FILE, *_EXTRA_FILES):
        values, where, source, problems = env_file(host, path, RUNTIME)
        if source.status != "missing":
            view.sources.append(source)
            present = True
        view.findings += problems
        env.update(values)
        sources.update(where)
    flags = _flags(expand_argv(["$KUBELET_KUBEADM_ARGS", "$KUBELET_EXTRA_ARGS"], env, sources))
    return flags, unit.found or present


# -- the config file ------------------------------------------------------------------------------


def _config_file(host: Host, path: str, view: KubeletView) -> dict[str, tuple[str, str]]:
    file = host.read(path)
    if file.status == "missing":  # most hosts: the YAML reader is not even loaded
        view.sources.append(SourceFile(path, RUNTIME, "kubelet config", "missing"))
        return {}
    from regtui.config._yaml import parse_yaml_file

    parsed = parse_yaml_file(file, RUNTIME, what="kubelet refuses to start: `failed to load kubelet config file`.")
    view.findings += parsed.findings
    found: dict[str, tuple[str, str]] = {}
    data = parsed.data
    if parsed.ok and data is not None and not isinstance(data, dict):
        view.findings.append(_invalid(path, 1, "the file", data, "a KubeletConfiguration mapping",
                                      "kubelet cannot decode the file and does not start."))
        data = None
    for key, flag in (("containerRuntimeEndpoint", "container-runtime-endpoint"),
                      ("imageServiceEndpoint", "image-service-endpoint")):
        if not isinstance(data, dict) or key not in data or data[key] in (None, ""):
            continue
        value = data[key]
        if not isinstance(value, str):
            view.findings.append(_invalid(path, parsed.line(key), key, value, "a string such as unix:///run/containerd/containerd.sock",
                                          f"kubelet rejects the file (`json: cannot unmarshal ... into ... {key}`) and does not start."))
            continue
        found[flag] = (value, parsed.where(key))
    shown = {k: v for k, (v, _) in found.items()}
    view.sources.append(parsed.source(RUNTIME, "kubelet config", values=shown))
    return found


def _invalid(path: str, line: int | None, key: str, value: Any, want: str, detail: str) -> Finding:
    return finding(
        "config.invalid-value", path, f"{path}:{line or 1}: {key} must be {want}",
        detail,
        evidence={"file": path, "line": line, "value": redact.value(value), "key": key},
        fix=fix("config.invalid-value", path, f"set {key} to {want}", files=[path], restart="restart kubelet",
                detail=key, params={"key": key, "line": line}),
        runtime=RUNTIME,
    )


def _docker_socket(view: KubeletView, endpoint: str, source: str) -> Finding:
    file, _, line = source.partition(" ")[0].rpartition(":")
    return finding(
        "config.invalid-value", file or source, f"{source}: {endpoint} is Docker's API socket, not a CRI endpoint",
        "kubelet speaks CRI (gRPC) only; since Kubernetes 1.24 there is no dockershim, so kubelet cannot use "
        "docker.sock and does not start. To run pods on Docker Engine, install cri-dockerd and point kubelet at "
        "unix:///run/cri-dockerd.sock.",
        evidence={"file": file or source, "line": int(line) if line.isdigit() else None, "value": endpoint},
        fix=fix("config.invalid-value", file or source, "use unix:///run/cri-dockerd.sock (cri-dockerd) or the containerd socket",
                files=[file] if file else [], restart="restart kubelet", detail="container-runtime-endpoint",
                params={"key": "container-runtime-endpoint", "value": endpoint,
                        "new_value": "unix:///run/cri-dockerd.sock"}),
        runtime=RUNTIME,
    )


# -- loading --------------------------------------------------------------------------------------


def _from_k3s(host: Host, view: KubeletView) -> None:
    from regtui.config import k3sservice

    embedded = k3sservice.embedded_kubelet(host)
    # The k3s view lists the same files; only problems that decide the endpoint are repeated here.
    view.findings += [f for f in embedded.findings if f.code in ("config.parse-error", "config.invalid-value")]
    view.detected = True
    endpoint, source = embedded.endpoint, embedded.source
    view.runtime_endpoint = endpoint
    if embedded.image_endpoint:
        endpoint, source = embedded.image_endpoint, embedded.image_source
    _settle(view, endpoint, source)


def _settle(view: KubeletView, endpoint: str, source: str) -> None:
    view.endpoint, view.source = endpoint, source
    view.runtime, view.via = runtime_for_endpoint(endpoint)
    if posixpath.basename(endpoint.rstrip("/")) == "docker.sock":
        view.findings.append(_docker_socket(view, endpoint, source))


def _k3s_installed(host: Host) -> bool:
    # Detection only: the k3s service reader is imported only when k3s is there.
    from regtui.config.k3sflavours import detect

    return bool(detect(host))


def load(host: Host) -> KubeletView:
    """The runtime kubelet pulls images through on this host (k3s/RKE2's embedded kubelet included)."""
    view = KubeletView(runtime=None, endpoint=None, source="")
    unit = load_unit(host, _UNIT, RUNTIME)
    if not host.exists(CONFIG_PATH) and not unit.found and _k3s_installed(host):
        _from_k3s(host, view)
        return view
    flags, unit_present = _unit_flags(host, view, unit)
    config_path = flags["config"][0] if "config" in flags else CONFIG_PATH
    settings = _config_file(host, config_path, view)
    settings.update({k: v for k, v in flags.items() if k != "config"})
    view.detected = unit_present or host.exists(config_path) or host.which("kubelet") is not None
    if "container-runtime-endpoint" in settings:
        endpoint, source = settings["container-runtime-endpoint"]
    else:
        endpoint, source = DEFAULT_ENDPOINT, "default (containerRuntimeEndpoint, Kubernetes 1.27+)"
    view.runtime_endpoint = endpoint
    if "image-service-endpoint" in settings:
        endpoint, source = settings["image-service-endpoint"]
    if not view.detected:
        view.source = "kubelet is not configured on this host"
        return view
    _settle(view, endpoint, source)
    return view
