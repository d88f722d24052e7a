"""What reading containerd's configuration produces: :class:`Setting`, :class:`CriRegistry` and
:class:`ContainerdConfig`, with the helpers every reading step shares (TOML key paths, the
``config.invalid-value`` finding, marking the daemon as not starting) and ``ParseAuth`` for the
CRI credentials (SEMANTICS §2.2, §2.5).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from regtui import redact
from regtui.config._source import Parsed
from regtui.config.hostsdir import HostsResolution
from regtui.credentials import Credential
from regtui.findings import finding, fix
from regtui.model import Finding, SourceFile

__all__ = [
    "RUNTIME",
    "DEFAULT_HOSTS_DIR",
    "DEFAULT_CONFIG_PATH_22",
    "DEFAULT_CONCURRENCY",
    "RESTART",
    "Setting",
    "CriRegistry",
    "ContainerdConfig",
    "toml_path",
    "first_line",
    "endpoint_list",
    "stop",
    "invalid_value",
    "decode_auth",
    "parse_auth",
]

RUNTIME = "containerd"
DEFAULT_HOSTS_DIR = "/etc/containerd/certs.d"
#: The ``config_path`` containerd 2.2 and later use when none is configured.
DEFAULT_CONFIG_PATH_22 = "/etc/containerd/certs.d:/etc/docker/certs.d"
#: ``max_concurrent_downloads`` when none is set (CRI and transfer service alike).
DEFAULT_CONCURRENCY = 3
RESTART = "restart containerd"


@dataclass(frozen=True)
class Setting:
    """One effective value and where it was set."""

    value: Any
    file: str
    line: int | None
    key: tuple[Any, ...]
    """Key path inside the file, e.g. ``("plugins", "io.containerd.grpc.v1.cri", "registry", "config_path")``."""

    @property
    def where(self) -> str:
        """``path:line``."""
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def table(self) -> str:
        """The TOML table holding the key, as written in a header (for fix plans)."""
        return toml_path(self.key[:-1])

    def evidence(self, value: Any = None, **extra: Any) -> dict[str, Any]:
        """Evidence naming file, line and the (redacted) value; a value under a secret-named key or
        in a headers table is masked whole."""
        shown = self.value if value is None else value
        dotted = ".".join(str(k) for k in self.key)
        ev: dict[str, Any] = {"file": self.file, "line": self.line,
                              "value": redact.value(shown, dotted) if self.key else redact.value(shown)}
        ev.update(extra)
        return ev


@dataclass
class CriRegistry:
    """The CRI image/registry settings after merging the main file and its imports."""

    config_path: Setting | None = None
    mirrors: dict[str, Setting] = field(default_factory=dict)
    """namespace -> ``endpoint`` list."""
    auth: dict[str, Setting] = field(default_factory=dict)
    """host -> ``configs."<host>".auth`` table (secrets inside: never print ``value``)."""
    tls: dict[str, Setting] = field(default_factory=dict)
    """host -> ``configs."<host>".tls`` table."""
    auths: dict[str, Setting] = field(default_factory=dict)
    """URL -> deprecated ``auths`` entry."""
    headers: dict[str, Setting] = field(default_factory=dict)
    image: dict[str, Setting] = field(default_factory=dict)
    """``use_local_image_pull``, ``max_concurrent_downloads``... from the CRI image table."""
    transfer_concurrency: Setting | None = None
    """``max_concurrent_downloads`` of the transfer service plugin."""
    registry_table: str = ""
    """Where the registry table is (or belongs) in the main file, for fix plans."""
    registry_key: tuple[Any, ...] = ()
    image_table: str = ""

    @property
    def legacy(self) -> bool:
        """Legacy ``mirrors``, ``configs`` or ``auths`` are set."""
        return bool(self.mirrors or self.auth or self.tls or self.auths)


@dataclass
class ContainerdConfig:
    """containerd's configuration as the installed (or assumed) containerd reads it."""

    path: str
    version: tuple[int, int, int]
    """The version the reading assumes (detected or assumed)."""
    version_text: str
    version_source: str
    version_assumed: bool
    config_version: int = 1
    files: list[Parsed] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    registry: CriRegistry = field(default_factory=CriRegistry)
    starts: bool = True
    """containerd starts with this configuration."""
    cri_loads: bool = True
    """The CRI plugin loads (else kubelet sees ``unknown service runtime.v1.RuntimeService``)."""
    why_not: str = ""
    """Why containerd does not start or the CRI plugin does not load."""
    config_path: str = ""
    """Effective ``config_path`` (default applied)."""
    config_path_source: str = ""
    roots: list[str] = field(default_factory=list)
    """``config_path`` split on ``:`` (empty when the legacy registry config is used)."""
    pull_mode: str = "local"
    """``local`` (client-side pull) or ``transfer`` (transfer service)."""
    pull_mode_reason: str = ""
    max_concurrent_downloads: int = DEFAULT_CONCURRENCY
    max_concurrent_downloads_source: str = "default"
    scanned_dirs: set[str] = field(default_factory=set)
    """Hosts dirs validated at load time (their findings are already in ``findings``)."""
    hosts: dict[str, HostsResolution] = field(default_factory=dict)
    """Each hosts dir read at load time, by dir path."""

    @property
    def daemon(self) -> str:
        """``containerd 1.7.27``, or the assumed version with a note that it was assumed."""
        if self.version_assumed:
            return f"containerd {self.version_text} (assumed: installed version unknown, see --containerd-version)"
        return f"containerd {self.version_text}"

    def credential(self, host: str) -> Credential | None:
        """Credentials containerd sends when ``host`` (the challenging endpoint host) asks."""
        setting = self.registry.auth.get(host)
        if setting is None:
            return None
        return parse_auth(setting)

    def credential_source(self, host: str) -> str | None:
        """``path:line (configs."<host>".auth)`` when credentials apply to ``host``."""
        setting = self.registry.auth.get(host)
        if setting is None or parse_auth(setting) is None:
            return None
        return f"{setting.where} (configs.\"{host}\".auth)"

    def summary(self) -> dict[str, Any]:
        """Effective values for the Config panel and the report."""
        reg = self.registry
        return {
            "version": self.version_text,
            "version_source": self.version_source,
            "version_assumed": self.version_assumed,
            "config": self.path,
            "config_version": self.config_version,
            "imports": [p.path for p in self.files[1:]],
            "starts": self.starts,
            "cri_loads": self.cri_loads,
            "why_not": self.why_not,
            "config_path": self.config_path,
            "config_path_source": self.config_path_source,
            "hosts_roots": list(self.roots),
            "pull_mode": "transfer service" if self.pull_mode == "transfer" else "local pull",
            "pull_mode_reason": self.pull_mode_reason,
            "max_concurrent_downloads": self.max_concurrent_downloads,
            "max_concurrent_downloads_source": self.max_concurrent_downloads_source,
            "legacy_mirrors": {ns: [redact.url(e) for e in endpoint_list(s)] for ns, s in reg.mirrors.items()},
            "credential_hosts": sorted(reg.auth),
            "headers": {k: redact.value(s.value, k) for k, s in reg.headers.items()},
        }


# -- shared helpers ------------------------------------------------------------------------------

def toml_path(key: tuple[Any, ...]) -> str:
    """A key path as written in a TOML table header: bare where allowed, else quoted."""
    parts = []
    for k in key:
        k = str(k)
        parts.append(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else '"' + k.replace('"', '\\"') + '"')
    return ".".join(parts)


def first_line(parsed: Parsed, prefix: tuple[Any, ...]) -> int | None:
    """Line of ``prefix`` or, when only deeper keys are written (``[a.b.c]`` for ``a.b``), the first of them."""
    lines = [line for key, line in parsed.lines.items() if key[:len(prefix)] == prefix]
    return min(lines) if lines else parsed.line(*prefix)


def endpoint_list(setting: Setting) -> list[str]:
    """The string entries of a ``mirrors`` endpoint list."""
    value = setting.value
    return [e for e in value if isinstance(e, str)] if isinstance(value, list) else []


def stop(cfg: ContainerdConfig, why: str) -> None:
    """containerd does not start with this configuration (the first reason is kept)."""
    cfg.starts = False
    cfg.why_not = cfg.why_not or why


def invalid_value(parsed: Parsed | Setting, key: tuple[Any, ...], value: Any, message: str, detail: str,
                  runtime: str, severity: str | None = None, summary: str = "",
                  params: Mapping[str, Any] | None = None) -> Finding:
    """``config.invalid-value`` at ``key`` of a file."""
    if isinstance(parsed, Setting):
        file, line = parsed.file, parsed.line
    else:
        file, line = parsed.path, parsed.line(*key)
    where = f"{file}:{line}" if line else file
    return finding(
        "config.invalid-value", file, f"{where}: {message}", detail,
        evidence={"file": file, "line": line,
                  "value": "{...}" if isinstance(value, dict) else
                  redact.value(value, ".".join(str(k) for k in key) if key else None)},
        severity=severity,
        fix=fix("config.invalid-value", file, summary or f"correct {toml_path(key)} at {where}", files=[file],
                restart=RESTART, detail=toml_path(key),
                params={"key": toml_path(key), "line": line, **(params or {})}),
        runtime=runtime,
    )


# -- credentials (SEMANTICS §2.5) -----------------------------------------------------------------

def decode_auth(encoded: str) -> tuple[str, str] | None:
    """``user, password`` from a base64 ``auth`` value; ``None`` when it is not base64 of ``user:password``."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password.strip("\x00")) if sep else None


def parse_auth(setting: Setting) -> Credential | None:
    """``ParseAuth``: username/password, else identity token, else the base64 ``auth`` blob."""
    auth = setting.value
    source = setting.where
    if auth.get("username"):
        return Credential(auth["username"], auth.get("password", ""), source)
    if auth.get("identitytoken"):
        return Credential("", auth["identitytoken"], source, kind="identitytoken")
    if auth.get("auth"):
        pair = decode_auth(auth["auth"])
        return Credential(pair[0], pair[1], source) if pair else None
    return None
