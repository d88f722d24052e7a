"""The k3s/RKE2 service as installed: which distribution, its systemd unit and environment, and the
flags it starts with (``config.yaml``, ``config.yaml.d/*.yaml``, ``ExecStart``) (SEMANTICS §4).

Shared by the k3s runtime (:mod:`regtui.runtimes.k3s`) and the kubelet reader
(:mod:`regtui.config.kubelet`), which asks which CRI socket the kubelet embedded in k3s uses.
k3s reads ``config.yaml`` like its flags: later files override, ``key+`` appends to a list flag,
and a bool flag takes what Go's ``ParseBool`` accepts.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from regtui import redact
from regtui.config._source import go_parse_bool
from regtui.config._yaml import read_yaml
from regtui.config.k3sflavours import FLAVOURS, Flavour, detect, flavour_evidence
from regtui.config.systemd import UnitConfig, env_file, load_unit
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile, split_location
from regtui.options import CheckOptions

__all__ = [
    "RUNTIME",
    "EMBEDDED_SOCKET",
    "CRI_DOCKERD_SOCKET",
    "FLAVOURS",
    "Flavour",
    "K3sService",
    "Settings",
    "EmbeddedKubelet",
    "detect",
    "read_settings",
    "embedded_kubelet",
    "split_where",
    "yaml_kind",
]

RUNTIME = "k3s"
#: The embedded containerd's CRI socket (k3s and RKE2 alike).
EMBEDDED_SOCKET = "/run/k3s/containerd/containerd.sock"
#: The CRI socket of the cri-dockerd k3s runs with ``--docker``.
CRI_DOCKERD_SOCKET = "/run/k3s/cri-dockerd/cri-dockerd.sock"
_CLUSTER_DOMAIN = "cluster.local"
_CLUSTER_CIDR = "10.42.0.0/16"
_SERVICE_CIDR = "10.43.0.0/16"


@dataclass
class K3sService:
    """The service and the settings it starts with."""

    host: Host
    flavour: Flavour
    role: str = "server"
    unit: str | None = None
    data_dir: str = ""
    data_dir_source: str = ""
    private_registry: str = ""
    private_registry_source: str = ""
    no_default_endpoint: bool = False
    no_default_source: str = ""
    runtime_endpoint: str = ""
    runtime_endpoint_source: str = ""
    embedded_registry: bool = False
    cluster_domain: str = _CLUSTER_DOMAIN
    cluster_cidr: str = _CLUSTER_CIDR
    service_cidr: str = _SERVICE_CIDR

    @property
    def restart(self) -> str:
        """What makes a change take effect (``restart k3s``...)."""
        return f"restart {(self.unit or self.flavour.units[0]).removesuffix('.service')}"

    @property
    def restart_command(self) -> str:
        """The command for :attr:`restart`."""
        return f"systemctl {self.restart}"

    @property
    def external_runtime(self) -> bool:
        """k3s runs no containerd of its own (``--container-runtime-endpoint``)."""
        return bool(self.runtime_endpoint) and self.runtime_endpoint.rstrip("/").removeprefix("unix://") != EMBEDDED_SOCKET


def _pick_flavour(host: Host, options: CheckOptions | None) -> Flavour:
    wanted = (options.extra.get("k3s_flavour") if options else None) or ""
    if wanted in FLAVOURS:
        return FLAVOURS[wanted]
    scores = {name: len(flavour_evidence(host, f)) for name, f in FLAVOURS.items()}
    return FLAVOURS["rke2"] if scores["rke2"] > scores["k3s"] else FLAVOURS["k3s"]


# -- systemd and environment -----------------------------------------------------------------------


def _unit_environment(host: Host, cfg: UnitConfig) -> tuple[dict[str, str], dict[str, str], list[SourceFile], list[Finding]]:
    """The unit's environment, its environment files read again (the k3s and RKE2 installers write
    ``EnvironmentFile=-/etc/default/%N``; :func:`load_unit` has expanded the specifiers)."""
    unit_paths = {cfg.unit_file, *cfg.dropins}
    env = {k: v for k, v in cfg.environment.items() if cfg.env_sources.get(k, "").rsplit(":", 1)[0] in unit_paths}
    sources = {k: cfg.env_sources[k] for k in env}
    files: list[SourceFile] = []
    findings: list[Finding] = []
    for sf in cfg.files:
        if sf.kind != "environment file":
            files.append(sf)
            continue
        values, where, source, problems = env_file(host, sf.path, RUNTIME)
        if source.status == "missing":
            source = SourceFile(sf.path, RUNTIME, "environment file", "missing", "optional (-), absent")
        files.append(source)
        findings += problems
        env.update(values)
        sources.update(where)
    return env, sources, files, findings


def _fallback_environment(host: Host, flavour: Flavour, unit: str) -> tuple[dict[str, str], dict[str, str], list[SourceFile], list[Finding]]:
    """No unit file under the root: read the environment files the installer's unit names."""
    stem = unit.removesuffix(".service")
    env: dict[str, str] = {}
    sources: dict[str, str] = {}
    files: list[SourceFile] = []
    findings: list[Finding] = []
    for path in flavour.env_files:
        if not posixpath.basename(path).startswith(stem) or (stem == flavour.name and "-agent" in path):
            continue
        values, where, source, problems = env_file(host, path, RUNTIME)
        files.append(source)
        findings += problems
        env.update(values)
        sources.update(where)
    return env, sources, files, findings


def split_where(where: str) -> tuple[str, int | None]:
    """``("path", line)`` from ``"path:line (note)"``; line ``None`` when there is none."""
    return split_location(where.partition(" ")[0])


# -- k3s config.yaml and ExecStart -----------------------------------------------------------------

_CONFIG_KEYS = ("data-dir", "private-registry", "disable-default-registry-endpoint", "container-runtime-endpoint",
                "embedded-registry", "cluster-domain", "cluster-cidr", "service-cidr", "docker", "kubelet-arg",
                "image-service-endpoint")
_BOOL_KEYS = ("disable-default-registry-endpoint", "embedded-registry", "docker")
_SHORT_FLAGS = {"-d": "data-dir", "-c": "config"}


def _go_bool(value: Any) -> bool | None:
    """How k3s turns a config.yaml value into a bool flag (yaml bool, or a string ``ParseBool`` accepts)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return go_parse_bool(value)
    return None


def _config_files(host: Host, flavour: Flavour, main: str) -> list[str]:
    """config.yaml, then ``config.yaml.d/*.yaml`` in name order (later files override)."""
    return [main] + host.glob(main + ".d", ".yaml")


def _read_config(host: Host, state: K3sService, paths: list[str], sources: list[SourceFile],
                 findings: list[Finding]) -> dict[str, tuple[Any, str]]:
    values: dict[str, tuple[Any, str]] = {}
    for path in paths:
        parsed = read_yaml(host, path, RUNTIME, what=f"{state.flavour.name} refuses to start with a config file that does not parse.",
                           secret=True)
        findings += parsed.findings
        if parsed.status == "missing":
            if path == paths[0]:
                sources.append(SourceFile(path, RUNTIME, "k3s config", "missing"))
            continue
        data = parsed.data if isinstance(parsed.data, dict) else {}
        if parsed.ok and parsed.data is not None and not isinstance(parsed.data, dict):
            findings.append(_type_finding(path, 1, "a mapping of flag names", parsed.data, "config.yaml", state,
                                          "k3s cannot read its flags from this file and refuses to start."))
        shown = {}
        for key in _CONFIG_KEYS:
            for name in (key, key + "+"):  # "key+" appends to a list flag set by an earlier file
                if name not in data:
                    continue
                value = data[name]
                if name.endswith("+") and key in values and isinstance(values[key][0], list):
                    value = values[key][0] + (value if isinstance(value, list) else [value])
                values[key] = (value, parsed.where(name))
                shown[name] = redact.value(data[name])
        sources.append(parsed.source(RUNTIME, "k3s config", values=shown))
    return values


def _exec_flags(argv: list[str]) -> tuple[str | None, dict[str, str]]:
    """(role, flags) from ``k3s server --data-dir X --private-registry=Y`` (bool flags give ``"true"``)."""
    role = argv[1] if len(argv) > 1 and not argv[1].startswith("-") else None
    flags: dict[str, str] = {}
    i = 2 if role else 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            continue
        name, eq, value = arg.partition("=")
        name = _SHORT_FLAGS.get(name, name.lstrip("-"))
        if eq:
            flags[name] = value
        elif name in _BOOL_KEYS:
            flags[name] = "true"
        elif i < len(argv):
            flags[name] = argv[i]
            i += 1
    return role, flags


def _apply_settings(state: K3sService, values: dict[str, tuple[Any, str]], findings: list[Finding]) -> None:
    for key, (value, where) in values.items():
        if key in _BOOL_KEYS:
            parsed = _go_bool(value)
            if parsed is None:
                file, line = split_where(where)
                findings.append(_type_finding(file, line, "true or false", value, key, state,
                                              f"k3s rejects `{key}: {value}` and refuses to start."))
                continue
            if key == "disable-default-registry-endpoint":
                state.no_default_endpoint, state.no_default_source = parsed, where
            else:
                state.embedded_registry = parsed
            continue
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            file, line = split_where(where)
            findings.append(_type_finding(file, line, "a string", value, key, state, f"k3s cannot use `{key}` from this file."))
            continue
        text = str(value)
        if key == "data-dir":
            state.data_dir, state.data_dir_source = text, where
        elif key == "private-registry":
            state.private_registry, state.private_registry_source = text, where
        elif key == "container-runtime-endpoint":
            state.runtime_endpoint, state.runtime_endpoint_source = text, where
        elif key == "cluster-domain":
            state.cluster_domain = text
        elif key == "cluster-cidr":
            state.cluster_cidr = text
        elif key == "service-cidr":
            state.service_cidr = text


def _type_finding(file: str, line: int | None, want: str, value: Any, key: str, state: K3sService, detail: str) -> Finding:
    return finding(
        "config.invalid-value", file, f"{file}:{line or 1}: {key} must be {want}, not {yaml_kind(value)}",
        detail,
        evidence={"file": file, "line": line, "value": redact.value(value), "key": key},
        fix=fix("config.invalid-value", file, f"write {key} as {want}", files=[file], restart=state.restart, detail=key,
                params={"key": key, "line": line, "want": want}),
        runtime=RUNTIME,
    )


def yaml_kind(value: Any) -> str:
    """The YAML tag of a decoded value, as yaml.v2 names it in unmarshal errors (``!!str``, ``!!seq``...)."""
    if value is None:
        return "!!null"
    if isinstance(value, bool):
        return "!!bool"
    if isinstance(value, int):
        return "!!int"
    if isinstance(value, float):
        return "!!float"
    if isinstance(value, str):
        return "!!str"
    if isinstance(value, list):
        return "!!seq"
    return "!!map"


# -- reading the settings ----------------------------------------------------------------------------


@dataclass
class Settings:
    """The service, its environment and its flags, before registries.yaml is read."""

    state: K3sService
    env: dict[str, str]
    env_sources: dict[str, str]
    env_files: list[SourceFile]
    config_paths: list[str]
    sources: list[SourceFile]
    findings: list[Finding]
    kubelet_args: list[tuple[str, str]] = field(default_factory=list)
    """``kubelet-arg`` values (``name=value``) with their ``path:line``."""
    docker: bool = False
    image_endpoint: tuple[str, str] | None = None
    """``image-service-endpoint`` and its ``path:line``."""


def read_settings(host: Host, options: CheckOptions | None = None, kind: type[K3sService] = K3sService) -> Settings:
    """The unit, environment, config.yaml(.d) and ExecStart flags of k3s or RKE2; ``kind`` is the class
    of :attr:`Settings.state` (the k3s runtime passes its own, which carries more)."""
    flavour = _pick_flavour(host, options)
    state = kind(host, flavour, data_dir=flavour.data_dir, data_dir_source=f"default ({flavour.name})",
                 private_registry=posixpath.join(flavour.etc_dir, "registries.yaml"),
                 private_registry_source=f"default ({flavour.name})")
    sources: list[SourceFile] = []
    findings: list[Finding] = []

    unit_cfg = None
    for unit in flavour.units:
        cfg = load_unit(host, unit, RUNTIME)
        if cfg.found:
            unit_cfg = cfg
            break
    state.unit = unit_cfg.unit if unit_cfg else None
    state.role = "agent" if (state.unit or "").endswith("-agent.service") else "server"
    if unit_cfg is not None:
        env, env_src, files, problems = _unit_environment(host, unit_cfg)
        findings += unit_cfg.findings + problems
    else:
        env, env_src, files, problems = _fallback_environment(host, flavour, flavour.units[0])
        findings += problems
    sources += files

    role, flags = _exec_flags(unit_cfg.exec_start) if unit_cfg and unit_cfg.exec_start else (None, {})
    if role in ("server", "agent"):
        state.role = role
    main = flags.get("config") or env.get(flavour.config_env) or posixpath.join(flavour.etc_dir, "config.yaml")
    config_paths = _config_files(host, flavour, main)
    values = _read_config(host, state, config_paths, sources, findings)
    where_exec = unit_cfg.exec_start_source if unit_cfg else ""
    values.update({k: (v, f"{where_exec} (--{k})") for k, v in flags.items() if k in _CONFIG_KEYS})
    settings = Settings(state, env, env_src, files, config_paths, sources, findings)
    image = values.pop("image-service-endpoint", None)
    if image is not None and isinstance(image[0], str):
        settings.image_endpoint = image
    docker = values.pop("docker", None)
    settings.docker = bool(docker and _go_bool(docker[0]))
    kubelet_args = values.pop("kubelet-arg", None)
    if kubelet_args is not None:
        items = kubelet_args[0] if isinstance(kubelet_args[0], list) else [kubelet_args[0]]
        settings.kubelet_args = [(str(a), kubelet_args[1]) for a in items if isinstance(a, (str, int, float))]
    _apply_settings(state, values, findings)
    return settings


@dataclass
class EmbeddedKubelet:
    """The CRI endpoints the kubelet embedded in k3s/RKE2 is started with."""

    flavour: str
    endpoint: str
    source: str
    image_endpoint: str | None
    image_source: str
    sources: list[SourceFile]
    findings: list[Finding]


def embedded_kubelet(host: Host, options: CheckOptions | None = None) -> EmbeddedKubelet:
    """Which CRI socket k3s (or RKE2) hands its kubelet: the embedded containerd unless
    ``container-runtime-endpoint``, ``docker`` or a ``kubelet-arg`` says otherwise."""
    settings = read_settings(host, options)
    state = settings.state
    endpoint, source = f"unix://{EMBEDDED_SOCKET}", f"default ({state.flavour.name} embedded containerd)"
    if settings.docker:
        endpoint, source = f"unix://{CRI_DOCKERD_SOCKET}", f"{state.flavour.name} --docker (embedded cri-dockerd)"
    if state.runtime_endpoint:
        endpoint, source = state.runtime_endpoint, state.runtime_endpoint_source
    image, image_source = (settings.image_endpoint if settings.image_endpoint else (None, ""))
    for arg, where in settings.kubelet_args:
        name, _, value = arg.lstrip("-").partition("=")
        if name == "container-runtime-endpoint":
            endpoint, source = value, f"{where} (kubelet-arg)"
        elif name == "image-service-endpoint":
            image, image_source = value, f"{where} (kubelet-arg)"
    return EmbeddedKubelet(state.flavour.name, endpoint, source, image, image_source, settings.sources, settings.findings)
