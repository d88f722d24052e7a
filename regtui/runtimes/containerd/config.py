"""containerd's ``/etc/containerd/config.toml`` as the installed containerd reads it: the CRI
registry (what kubelet and crictl pull through), the pull mode, the hosts directories, the
legacy ``mirrors``/``configs``, credentials and the daemon's proxy environment.

The rules (SEMANTICS §2.1, §2.2, §2.5, §2.6):

- Config versions: no ``version`` line is v1 (plugins by short name, ``plugins.cri``); v2 uses
  ``plugins."io.containerd.grpc.v1.cri"``; v3 (containerd 2.0+) ``plugins."io.containerd.cri.v1.images"``;
  v4 needs 2.3. 1.x reads a v1 file by short names only, so ``io.containerd.grpc.v1.cri`` tables are
  silently ignored without ``version = 2``. 2.x migrates v1/v2 files in memory, but a v3 file with
  v2 plugin names is not migrated.
- ``imports`` globs are merged after the main file. A parse error anywhere stops containerd.
- ``config_path`` is a ``:`` list; its default depends on the version (``""`` up to 2.1,
  ``/etc/containerd/certs.d:/etc/docker/certs.d`` from 2.2). Legacy ``mirrors`` next to a
  non-empty ``config_path`` make the CRI plugin fail to load.
- From 2.1 CRI pulls through the transfer service unless ``use_local_image_pull`` or a setting
  the transfer service cannot honour is present; in that mode a multi-directory ``config_path``
  is treated as one (non-existent) directory.
- Credentials (``configs."<host>".auth``) are looked up by the host that sends the 401 challenge.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import posixpath
import re
import subprocess
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from regtui import redact
from regtui.config._source import Parsed, read_toml, value_kind
from regtui.config.hoststoml import (
    HostsResolution,
    dir_namespace,
    existing_host_dirs,
    hosts_toml_text,
    locate_parse_error,
    read_hosts_dir,
)
from regtui.config.systemd import load_unit
from regtui.credentials import Credential
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.net.proxy import ProxyEnv, from_environ
from regtui.options import CheckOptions
from regtui.runtimes.view import RuntimeView

__all__ = [
    "CONFIG_PATH",
    "DEFAULT_HOSTS_DIR",
    "Setting",
    "CriRegistry",
    "ContainerdConfig",
    "InstalledVersion",
    "installed_version",
    "parse_version",
    "load_config",
    "detect",
    "load",
]

RUNTIME = "containerd"
CONFIG_PATH = "/etc/containerd/config.toml"
DEFAULT_HOSTS_DIR = "/etc/containerd/certs.d"
#: The ``config_path`` containerd 2.2 and later use when none is configured.
DEFAULT_CONFIG_PATH_22 = "/etc/containerd/certs.d:/etc/docker/certs.d"
RESTART = "restart containerd"
_DPKG_STATUS = "/var/lib/dpkg/status"
_DPKG_PACKAGES = ("containerd.io", "containerd")
_SOCKET = "/run/containerd/containerd.sock"
_UNIT = "containerd.service"

_SHORT = "cri"
_GRPC_CRI = "io.containerd.grpc.v1.cri"
_IMAGES = "io.containerd.cri.v1.images"
_TRANSFER = "io.containerd.transfer.v1.local"
_DEFAULT_CONCURRENCY = 3
_IMAGE_KEYS = ("use_local_image_pull", "max_concurrent_downloads", "discard_unpacked_layers",
               "disable_snapshot_annotations", "image_pull_with_sync_fs")
_REFUSES = "containerd refuses to start (`failed to load TOML`): nothing runs until this is fixed."


# -- data -------------------------------------------------------------------------------------

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
        return _toml_path(self.key[:-1])

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


@dataclass(frozen=True)
class InstalledVersion:
    """The containerd version the host runs, or what regtui assumes."""

    version: tuple[int, int, int] | None
    text: str
    source: str
    """``options``, ``dpkg (containerd.io)``, ``containerd --version``, or empty when unknown."""


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
    max_concurrent_downloads: int = _DEFAULT_CONCURRENCY
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
        return _credential(setting)

    def credential_source(self, host: str) -> str | None:
        """``path:line (configs."<host>".auth)`` when credentials apply to ``host``."""
        setting = self.registry.auth.get(host)
        if setting is None or _credential(setting) is None:
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
            "legacy_mirrors": {ns: [redact.url(e) for e in _endpoint_list(s)] for ns, s in reg.mirrors.items()},
            "credential_hosts": sorted(reg.auth),
            "headers": {k: redact.value(s.value, k) for k, s in reg.headers.items()},
        }


# -- installed version ---------------------------------------------------------------------------

_VERSION = re.compile(r"\bv?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``1.6.20~ds1-1`` -> (1, 6, 20); ``v2.1`` -> (2, 1, 0); ``None`` when no version is in it."""
    m = _VERSION.search(text.split(":", 1)[1] if re.match(r"^\d+:", text) else text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _dpkg_version(host: Host) -> InstalledVersion | None:
    status = host.read(_DPKG_STATUS, limit=64 * 1024 * 1024)
    if not status.ok:
        return None
    found: dict[str, str] = {}
    for stanza in status.text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.MULTILINE))
        if fields.get("Package") in _DPKG_PACKAGES and "installed" in fields.get("Status", "").split()[-1:]:
            found[fields["Package"]] = fields.get("Version", "")
    for package in _DPKG_PACKAGES:
        if package in found and (version := parse_version(found[package])):
            return InstalledVersion(version, found[package], f"dpkg ({package} {found[package]})")
    return None


def _binary_version(host: Host) -> InstalledVersion | None:
    binary = host.which("containerd")
    if not binary:
        return None
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    line = (out.stdout or out.stderr).strip().splitlines()[:1]
    text = line[0] if line else ""
    # The first field is the program name and the second the module path: the version follows.
    version = parse_version(" ".join(text.split()[2:]) or text)
    return InstalledVersion(version, text, "containerd --version") if version else None


def installed_version(host: Host, options: CheckOptions | None = None) -> InstalledVersion:
    """The installed containerd version: the option, else dpkg under the root, else (live only)
    ``containerd --version`` with a 2 s timeout. ``version`` is ``None`` when unknown."""
    if options is not None and options.containerd_version:
        version = parse_version(options.containerd_version)
        if version:
            return InstalledVersion(version, options.containerd_version, "options")
    detected = _dpkg_version(host)
    if detected is None and host.live:
        detected = _binary_version(host)
    return detected or InstalledVersion(None, "", "")


def _assumed_version(config_version: int) -> tuple[tuple[int, int, int], str]:
    """The version to plan with when none was detected, from the config's own ``version``."""
    if config_version >= 4:
        return (2, 3, 0), "assumed 2.3 (config version 4; installed version unknown)"
    if config_version == 3:
        return (2, 1, 0), "assumed 2.1 (config version 3; installed version unknown)"
    return (1, 7, 0), f"assumed 1.7 (config version {config_version}; installed version unknown)"


# -- reading ---------------------------------------------------------------------------------

def _toml_path(key: tuple[Any, ...]) -> str:
    parts = []
    for k in key:
        k = str(k)
        parts.append(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else '"' + k.replace('"', '\\"') + '"')
    return ".".join(parts)


def _endpoint_list(setting: Setting) -> list[str]:
    value = setting.value
    return [e for e in value if isinstance(e, str)] if isinstance(value, list) else []


def _host_glob(host: Host, pattern: str) -> list[str]:
    """``filepath.Glob`` under the root: every path segment may hold wildcards."""
    parts = [p for p in pattern.split("/") if p]
    paths = ["/"]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[str] = []
        for base in paths:
            if not any(c in part for c in "*?["):
                candidate = posixpath.join(base, part)
                if host.exists(candidate):
                    nxt.append(candidate)
                continue
            for name in host.listdir(base) or []:
                if fnmatch.fnmatchcase(name, part) and (last or host.is_dir(posixpath.join(base, name))):
                    nxt.append(posixpath.join(base, name))
        paths = sorted(nxt)
    return paths


@dataclass
class _Reading:
    """State while reading the main file and its imports."""

    cfg: ContainerdConfig
    seen: set[str] = field(default_factory=set)


def load_config(host: Host, path: str = CONFIG_PATH, *, version: InstalledVersion | None = None,
                runtime: str = RUNTIME) -> ContainerdConfig:
    """Read ``path`` and its imports the way the installed containerd does.

    ``version`` is the installed version (:func:`installed_version`); when unknown a version
    is assumed from the file's own ``version`` and the summary says so.
    """
    version = version or InstalledVersion(None, "", "")
    main = locate_parse_error(read_toml(host, path, runtime, what=_REFUSES), runtime, _REFUSES)
    config_version = _file_version(main)
    if version.version is None:
        assumed, why = _assumed_version(config_version if isinstance(config_version, int) else 1)
        cfg = ContainerdConfig(path, assumed, f"{assumed[0]}.{assumed[1]}", why, True)
    else:
        cfg = ContainerdConfig(path, version.version, version.text, version.source, False)
    cfg.config_version = config_version if isinstance(config_version, int) else 1
    reading = _Reading(cfg)
    # containerd's LoadConfig walks imports breadth first with a queue, skipping files already
    # loaded: any chain length works, a cycle ends, and the merge order is the queue's order.
    pending = _read_file(host, reading, main, runtime, is_main=True)
    while pending:
        imported = pending.popleft()
        if imported in reading.seen:
            continue
        child = locate_parse_error(read_toml(host, imported, runtime, what=_REFUSES), runtime, _REFUSES)
        pending += _read_file(host, reading, child, runtime, is_main=False)
    if cfg.starts:
        _validate_registry(cfg, runtime)
        _effective(host, cfg, runtime)
    return cfg


def _file_version(parsed: Parsed) -> int | Any:
    if not parsed.ok or not isinstance(parsed.data, dict):
        return 1
    return parsed.data.get("version", 1)


def _read_file(host: Host, reading: _Reading, parsed: Parsed, runtime: str, *, is_main: bool) -> deque[str]:
    """Take in one parsed file; returns the paths it imports (empty when it stops containerd or has none)."""
    cfg = reading.cfg
    reading.seen.add(parsed.path)
    cfg.files.append(parsed)
    cfg.findings += parsed.findings
    if parsed.status == "missing":
        detail = "absent: containerd runs with its built-in defaults" if is_main else "import absent"
        cfg.sources.append(SourceFile(parsed.path, runtime, "config.toml", "missing", detail))
        return deque()
    if not parsed.ok:
        cfg.sources.append(parsed.source(runtime, "config.toml" if is_main else "config.toml import"))
        if parsed.status == "parse-error":
            _stop(cfg, f"{parsed.path} does not parse")
        elif parsed.file.status == "not-a-file":
            _stop(cfg, f"{parsed.path} is {parsed.file.error}")
        return deque()
    data = parsed.data if isinstance(parsed.data, dict) else {}
    file_version = data.get("version", 1)
    if not isinstance(file_version, int) or isinstance(file_version, bool):
        cfg.findings.append(_version_type(parsed, file_version, runtime))
        _stop(cfg, f"{parsed.where('version')}: version is not an integer")
        cfg.sources.append(parsed.source(runtime, "config.toml", "invalid version"))
        return deque()
    if not _version_supported(reading, parsed, file_version, runtime):
        cfg.sources.append(parsed.source(runtime, "config.toml" if is_main else "config.toml import",
                                         f"version {file_version} rejected by {cfg.daemon}"))
        return deque()
    _extract(reading, parsed, data, file_version, runtime)
    cfg.sources.append(parsed.source(runtime, "config.toml" if is_main else "config.toml import",
                                     values=_file_values(parsed, data, file_version)))
    return deque(imported for pattern, _ in _imports(parsed, data, runtime, cfg)
                 for imported in _host_glob(host, pattern))


def _file_values(parsed: Parsed, data: dict[str, Any], file_version: int) -> dict[str, Any]:
    plugins = data.get("plugins") if isinstance(data.get("plugins"), dict) else {}
    return {"version": file_version, "plugins": sorted(plugins), "imports": data.get("imports", [])}


def _imports(parsed: Parsed, data: dict[str, Any], runtime: str, cfg: ContainerdConfig) -> list[tuple[str, int | None]]:
    imports = data.get("imports")
    if imports is None:
        return []
    if not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
        cfg.findings.append(_invalid(parsed, ("imports",), imports,
                                     f"imports must be a list of paths, not {value_kind(imports)}",
                                     "containerd fails to decode its config and does not start.", runtime))
        _stop(cfg, f"{parsed.where('imports')}: imports is not a list of strings")
        return []
    base = posixpath.dirname(parsed.path)
    return [(i if i.startswith("/") else posixpath.join(base, i), parsed.line("imports")) for i in imports]


def _version_type(parsed: Parsed, value: Any, runtime: str) -> Finding:
    return _invalid(parsed, ("version",), value, f"version must be an integer (1 to 4), not {value_kind(value)}",
                    "containerd fails to decode its config and does not start.", runtime)


def _invalid(parsed: Parsed | Setting, key: tuple[Any, ...], value: Any, message: str, detail: str, runtime: str,
             severity: str | None = None, summary: str = "", params: Mapping[str, Any] | None = None) -> Finding:
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
        fix=fix("config.invalid-value", file, summary or f"correct {_toml_path(key)} at {where}", files=[file],
                restart=RESTART, detail=_toml_path(key),
                params={"key": _toml_path(key), "line": line, **(params or {})}),
        runtime=runtime,
    )


def _max_config_version(version: tuple[int, int, int]) -> int:
    """The highest config ``version`` a containerd release accepts."""
    if version < (2, 0, 0):
        return 2
    return 3 if version < (2, 3, 0) else 4


def _version_supported(reading: _Reading, parsed: Parsed, file_version: int, runtime: str) -> bool:
    """``config.version-mismatch`` for a ``version`` the daemon refuses; False when it does not start."""
    cfg = reading.cfg
    highest = _max_config_version(cfg.version)
    if 0 <= file_version <= highest:
        return True
    if cfg.version < (1, 7, 0) and file_version in (3, 4):
        # 1.6 has no version check: it boots, reads plugins by full name, and ignores v3 plugin tables.
        cfg.findings.append(_mismatch(
            parsed, file_version, runtime, severity="error",
            detail=f"{cfg.daemon} accepts config versions 1 and 2 only. It does not check "
                   f"the number: it starts, but the v3 plugin tables ({_IMAGES}...) are unknown to it and "
                   "silently ignored.",
            summary=f"set version = 2 and use the {_GRPC_CRI} plugin tables"))
        return True
    if highest == 2:
        message = f"containerd config version {file_version} is not supported, the max version is 2"
    else:
        message = f"expected version value to be equal to or less than {highest}, got {file_version}"
    cfg.findings.append(_mismatch(
        parsed, file_version, runtime, severity="error",
        detail=f"{cfg.daemon} refuses to start: `{message}`.",
        summary=f"set version = {highest} (plugin names of that version) or upgrade containerd"))
    _stop(cfg, f"{parsed.where('version')}: {message}")
    return False


def _stop(cfg: ContainerdConfig, why: str) -> None:
    """containerd does not start with this configuration (the first reason is kept)."""
    cfg.starts = False
    cfg.why_not = cfg.why_not or why


def _mismatch(parsed: Parsed, file_version: int, runtime: str, *, severity: str, detail: str, summary: str,
              key: tuple[Any, ...] = ("version",), title: str = "") -> Finding:
    where = parsed.where(*key)
    return finding(
        "config.version-mismatch", parsed.path,
        title or f"{where}: config version {file_version} does not fit the installed containerd",
        detail, severity=severity,
        evidence=parsed.evidence(*key, value=file_version if key == ("version",) else _toml_path(key)),
        fix=fix("config.version-mismatch", parsed.path, summary, files=[parsed.path], restart=RESTART,
                detail=_toml_path(key), params={"key": _toml_path(key), "line": parsed.line(*key),
                                                "config_version": file_version}),
        runtime=runtime,
    )


# -- extracting the CRI view from one file ----------------------------------------------------

def _plugin_tables(reading: _Reading, parsed: Parsed, plugins: Mapping[str, Any], file_version: int,
                   runtime: str) -> list[tuple[str, str]]:
    """``(plugin name, form)`` of the CRI tables this daemon reads from this file, in merge order.

    ``form`` is ``v2`` (registry under the CRI plugin, snapshot keys under ``.containerd``) or ``v3``.
    Tables the daemon will not read get ``config.ignored-key`` / ``config.version-mismatch``.
    """
    cfg = reading.cfg
    v = cfg.version
    read: list[tuple[str, str]] = []
    if v < (2, 0, 0):
        wanted = _SHORT if file_version == 1 else _GRPC_CRI
        if wanted in plugins:
            read.append((wanted, "v2"))
        for name in (_SHORT, _GRPC_CRI, _IMAGES):
            if name in plugins and name != wanted:
                cfg.findings.append(_ignored_plugin(reading, parsed, name, wanted, file_version, runtime))
        return read
    if file_version == 1:
        read += [(n, "v2") for n in (_SHORT, _GRPC_CRI) if n in plugins]
    elif file_version == 2:
        read += [(_GRPC_CRI, "v2")] if _GRPC_CRI in plugins else []
    if file_version >= 2 and _SHORT in plugins:
        cfg.findings.append(_ignored_plugin(reading, parsed, _SHORT, _GRPC_CRI if file_version == 2 else _IMAGES,
                                            file_version, runtime))
    if file_version >= 3:
        grpc = plugins.get(_GRPC_CRI)
        if isinstance(grpc, dict):
            stale = [k for k in ("registry", *_IMAGE_KEYS) if k in grpc]
            if stale:
                key = ("plugins", _GRPC_CRI, stale[0])
                cfg.findings.append(_mismatch(
                    parsed, file_version, runtime, severity="error", key=key,
                    title=f"{parsed.where(*key)}: v2 plugin name in a version {file_version} file: ignored",
                    detail=f"A file that declares version {file_version} is not migrated, so the CRI image "
                           f"settings under {_GRPC_CRI} ({', '.join(stale)}) are unknown keys: containerd logs "
                           f"`Ignoring unknown key in TOML` and uses its defaults. They belong under {_IMAGES}.",
                    summary=f"move {', '.join(stale)} from plugins.\"{_GRPC_CRI}\" to plugins.\"{_IMAGES}\""))
    if _IMAGES in plugins:
        read.append((_IMAGES, "v3"))
    return read


def _ignored_plugin(reading: _Reading, parsed: Parsed, name: str, wanted: str, file_version: int,
                    runtime: str) -> Finding:
    cfg = reading.cfg
    key = ("plugins", name)
    if cfg.version < (2, 0, 0) and file_version == 1 and name == _GRPC_CRI:
        detail = (f"This file has no `version = 2` line, so {cfg.daemon} reads it as "
                  f"version 1 and looks plugins up by short name (`plugins.cri`). Every setting under "
                  f"plugins.\"{name}\" is silently ignored, the registry settings included.")
        summary, params = "add `version = 2` at the top of the file", {"key": "version", "value": 2, "line": 1,
                                                                        "action": "insert-top"}
    else:
        detail = (f"{cfg.daemon} reads the CRI settings of a version {file_version} "
                  f"file from plugins.\"{wanted}\"; plugins.\"{name}\" is never read.")
        summary = f"move the settings to plugins.\"{wanted}\""
        params = {"key": _toml_path(key), "new_key": _toml_path(("plugins", wanted)), "line": parsed.line(*key)}
    line = _first_line(parsed, key)
    where = f"{parsed.path}:{line}" if line else parsed.path
    if "line" in params and params.get("action") != "insert-top":
        params["line"] = line
    return finding(
        "config.ignored-key", parsed.path, f"{where}: plugins.\"{name}\" is ignored in a version {file_version} file",
        detail, evidence={"file": parsed.path, "line": line, "value": _toml_path(key)},
        fix=fix("config.ignored-key", parsed.path, summary, files=[parsed.path], restart=RESTART,
                detail=_toml_path(key), params=params),
        runtime=runtime,
    )


def _extract(reading: _Reading, parsed: Parsed, data: dict[str, Any], file_version: int, runtime: str) -> None:
    cfg = reading.cfg
    reg = cfg.registry
    plugins = data.get("plugins")
    if plugins is None:
        plugins = {}
    if not isinstance(plugins, dict):
        cfg.findings.append(_invalid(parsed, ("plugins",), plugins, "plugins must be a table",
                                     "containerd fails to decode its config and does not start.", runtime))
        _stop(cfg, f"{parsed.where('plugins')}: plugins is not a table")
        return
    if not reg.registry_table and parsed is cfg.files[0]:
        reg.registry_key = ("plugins", _cri_plugin_name(cfg.version, file_version), "registry")
        reg.registry_table = _toml_path(reg.registry_key)
        reg.image_table = _toml_path(reg.registry_key[:2])
    for name, form in _plugin_tables(reading, parsed, plugins, file_version, runtime):
        table = plugins.get(name)
        base = ("plugins", name)
        if not isinstance(table, dict):
            cfg.findings.append(_cri_type(parsed, base, table, "a table", runtime))
            _undecodable(cfg)
            continue
        _extract_image_keys(cfg, parsed, table, base, form, runtime)
        registry = table.get("registry")
        if registry is None:
            continue
        if not isinstance(registry, dict):
            cfg.findings.append(_cri_type(parsed, base + ("registry",), registry, "a table", runtime))
            _undecodable(cfg)
            continue
        _extract_registry(cfg, parsed, registry, base + ("registry",), runtime)
    transfer = plugins.get(_TRANSFER)
    if isinstance(transfer, dict) and "max_concurrent_downloads" in transfer:
        key = ("plugins", _TRANSFER, "max_concurrent_downloads")
        reg.transfer_concurrency = Setting(transfer["max_concurrent_downloads"], parsed.path, parsed.line(*key), key)


def _first_line(parsed: Parsed, prefix: tuple[Any, ...]) -> int | None:
    """Line of ``prefix`` or, when only deeper keys are written (``[a.b.c]`` for ``a.b``), the first of them."""
    lines = [line for key, line in parsed.lines.items() if key[:len(prefix)] == prefix]
    return min(lines) if lines else parsed.line(*prefix)


def _cri_plugin_name(version: tuple[int, int, int], file_version: int) -> str:
    """The plugin table a file of ``file_version`` should hold the CRI image settings in."""
    if version >= (2, 0, 0) and file_version >= 3:
        return _IMAGES
    return _SHORT if file_version == 1 and version < (2, 0, 0) else _GRPC_CRI


def _setting(parsed: Parsed, key: tuple[Any, ...], value: Any) -> Setting:
    return Setting(value, parsed.path, parsed.line(*key), key)


def _extract_image_keys(cfg: ContainerdConfig, parsed: Parsed, table: Mapping[str, Any], base: tuple[Any, ...],
                        form: str, runtime: str) -> None:
    nested = ("discard_unpacked_layers", "disable_snapshot_annotations")
    for name in _IMAGE_KEYS:
        if form == "v2" and name in nested:
            sub = table.get("containerd")
            source, key = (sub if isinstance(sub, dict) else {}), base + ("containerd", name)
        else:
            source, key = table, base + (name,)
        if name not in source:
            continue
        value = source[name]
        want_int = name == "max_concurrent_downloads"
        ok = (isinstance(value, int) and not isinstance(value, bool)) if want_int else isinstance(value, bool)
        if not ok:
            cfg.findings.append(_cri_type(parsed, key, value, "an integer" if want_int else "true or false", runtime))
            _undecodable(cfg)
            continue
        cfg.registry.image[name] = _setting(parsed, key, value)


def _cri_type(parsed: Parsed, key: tuple[Any, ...], value: Any, want: str, runtime: str) -> Finding:
    return _invalid(parsed, key, value, f"{_toml_path(key[-2:])} must be {want}, not {value_kind(value)}",
                    "containerd cannot decode the CRI plugin's configuration and exits at start (1.6 prints "
                    "`Can't convert ... to a slice`); `containerd config dump` fails the same way.", runtime)


def _undecodable(cfg: ContainerdConfig) -> None:
    """A CRI setting of the wrong type: plugin config decoding fails and containerd exits."""
    _stop(cfg, "a CRI registry or image setting has the wrong type")


def _extract_registry(cfg: ContainerdConfig, parsed: Parsed, registry: Mapping[str, Any], base: tuple[Any, ...],
                      runtime: str) -> None:
    reg = cfg.registry
    if "config_path" in registry:
        key = base + ("config_path",)
        if isinstance(registry["config_path"], str):
            reg.config_path = _setting(parsed, key, registry["config_path"])
        else:
            cfg.findings.append(_cri_type(parsed, key, registry["config_path"],
                                          "a string of ':'-separated directories", runtime))
            _undecodable(cfg)
    for name, into, check in (("mirrors", reg.mirrors, _mirror_ok), ("headers", reg.headers, _header_ok),
                              ("auths", reg.auths, lambda v: _dict_ok(v) or _auth_ok(v))):
        table = registry.get(name)
        if table is None:
            continue
        if not isinstance(table, dict):
            cfg.findings.append(_cri_type(parsed, base + (name,), table, "a table", runtime))
            _undecodable(cfg)
            continue
        for k, v in table.items():
            endpoint = name == "mirrors" and isinstance(v, dict) and "endpoint" in v
            key = base + (name, k) + (("endpoint",) if endpoint else ())
            problem = check(v)
            if problem:
                cfg.findings.append(_cri_type(parsed, key, v, problem, runtime))
                _undecodable(cfg)
                continue
            into[k] = _setting(parsed, key, v.get("endpoint", []) if name == "mirrors" else v)
    configs = registry.get("configs")
    if configs is None:
        return
    if not isinstance(configs, dict):
        cfg.findings.append(_cri_type(parsed, base + ("configs",), configs, "a table", runtime))
        _undecodable(cfg)
        return
    for hostname, entry in configs.items():
        if not isinstance(entry, dict):
            cfg.findings.append(_cri_type(parsed, base + ("configs", hostname), entry, "a table", runtime))
            _undecodable(cfg)
            continue
        for part, into in (("auth", reg.auth), ("tls", reg.tls)):
            if part not in entry:
                continue
            key = base + ("configs", hostname, part)
            problem = _dict_ok(entry[part]) or (_tls_ok(entry[part]) if part == "tls" else _auth_ok(entry[part]))
            if problem:
                cfg.findings.append(_cri_type(parsed, key, entry[part] if part == "tls" else "{...}", problem, runtime))
                _undecodable(cfg)
                continue
            into[hostname] = _setting(parsed, key, entry[part])


def _mirror_ok(value: Any) -> str:
    if not isinstance(value, dict):
        return "a table with endpoint = [...]"
    endpoints = value.get("endpoint", [])
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        return "a list of endpoint URLs"
    return ""


def _header_ok(value: Any) -> str:
    return "" if isinstance(value, list) and all(isinstance(v, str) for v in value) else "a list of strings"


def _dict_ok(value: Any) -> str:
    return "" if isinstance(value, dict) else "a table"


def _auth_ok(value: Mapping[str, Any]) -> str:
    bad = [k for k in ("username", "password", "auth", "identitytoken") if k in value and not isinstance(value[k], str)]
    return f"a table of strings ({', '.join(bad)} is not a string)" if bad else ""


def _tls_ok(value: Mapping[str, Any]) -> str:
    if "insecure_skip_verify" in value and not isinstance(value["insecure_skip_verify"], bool):
        return "a table whose insecure_skip_verify is true or false"
    bad = [k for k in ("ca_file", "cert_file", "key_file") if k in value and not isinstance(value[k], str)]
    return f"a table of file paths ({', '.join(bad)} is not a string)" if bad else ""


def _validate_registry(cfg: ContainerdConfig, runtime: str) -> None:
    """Credentials: fold the deprecated ``auths`` into ``configs``, then the checks that need no reference."""
    _fold_auths(cfg)
    for hostname, setting in cfg.registry.auth.items():
        encoded = setting.value.get("auth")
        plain = setting.value.get("username") or setting.value.get("identitytoken")
        if encoded and not plain and _decode_auth(encoded) is None:
            cfg.findings.append(_malformed_auth(hostname, setting, runtime))
    _hub_auth_key(cfg, runtime)


def _fold_auths(cfg: ContainerdConfig) -> None:
    """The CRI maps ``auths."https://host"`` to ``configs."host".auth`` (the scheme and path are dropped)."""
    for endpoint, setting in cfg.registry.auths.items():
        hostname = endpoint
        if "://" in endpoint:
            try:
                hostname = urlsplit(endpoint).netloc
            except ValueError:
                continue
        cfg.registry.auth[hostname] = setting


def _malformed_auth(hostname: str, setting: Setting, runtime: str) -> Finding:
    return finding(
        "auth.malformed", setting.file,
        f"{setting.where}: the auth value for {hostname} is not base64 of user:password",
        f"containerd fails to decode it when {hostname} asks for credentials, and the pull fails.",
        evidence={"file": setting.file, "line": setting.line, "value": redact.MASK, "host": hostname},
        fix=fix("auth.malformed", setting.file, "re-encode: printf 'user:password' | base64 -w0",
                files=[setting.file], restart=RESTART, detail=hostname,
                params={"key": _toml_path(setting.key + ("auth",)), "line": setting.line}),
        runtime=runtime,
    )


def _decode_auth(encoded: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password.strip("\x00")) if sep else None


def _credential(setting: Setting) -> Credential | None:
    """``ParseAuth``: username/password, else identity token, else the base64 ``auth`` blob."""
    auth = setting.value
    source = setting.where
    if auth.get("username"):
        return Credential(auth["username"], auth.get("password", ""), source)
    if auth.get("identitytoken"):
        return Credential("", auth["identitytoken"], source, kind="identitytoken")
    if auth.get("auth"):
        pair = _decode_auth(auth["auth"])
        return Credential(pair[0], pair[1], source) if pair else None
    return None


def _hub_auth_key(cfg: ContainerdConfig, runtime: str) -> None:
    """Pattern 16: Docker Hub credentials keyed ``docker.io`` are never looked up."""
    reg = cfg.registry
    if "registry-1.docker.io" in reg.auth:
        return
    for wrong in ("docker.io", "index.docker.io"):
        setting = reg.auth.get(wrong)
        if setting is None or _credential(setting) is None:
            continue
        table = _toml_path(setting.key[:-2] + ("registry-1.docker.io", "auth"))
        cfg.findings.append(finding(
            "auth.wrong-key", setting.file,
            f"{setting.where}: Docker Hub credentials under configs.\"{wrong}\" are never used",
            "containerd looks credentials up by the host that answers with the 401 challenge. For Docker Hub that is "
            "registry-1.docker.io, never docker.io, so these credentials are not sent: pulls stay anonymous and "
            "hit the anonymous rate limit (429). Mirrors need their own configs.\"<mirror host>\" entry too.",
            evidence={"file": setting.file, "line": setting.line, "value": f"configs.\"{wrong}\".auth", "key": wrong},
            fix=fix("auth.wrong-key", setting.file, f"copy configs.\"{wrong}\".auth to [{table}]", files=[setting.file],
                    restart=RESTART, detail=wrong,
                    params={"key": _toml_path(setting.key), "new_key": table, "from_host": wrong,
                            "to_host": "registry-1.docker.io", "line": setting.line, "action": "copy"}),
            runtime=runtime,
        ))
        return


# -- effective settings -----------------------------------------------------------------------

def _effective(host: Host, cfg: ContainerdConfig, runtime: str) -> None:
    _effective_config_path(cfg)
    _pull_mode(cfg)
    _concurrency(cfg)
    _conflicts(cfg, runtime)
    _legacy(cfg, runtime)
    _hosts_dirs(host, cfg, runtime)


def _effective_config_path(cfg: ContainerdConfig) -> None:
    setting = cfg.registry.config_path
    value = setting.value if setting else ""
    v = cfg.version
    if value:
        cfg.config_path, cfg.config_path_source = value, setting.where  # type: ignore[union-attr]
    elif (2, 2, 0) <= v < (2, 2, 2) and setting is None:
        cfg.config_path = DEFAULT_CONFIG_PATH_22
        cfg.config_path_source = f"default ({cfg.daemon} bakes it into its defaults)"
    elif v >= (2, 2, 2) and not cfg.registry.mirrors:
        cfg.config_path = DEFAULT_CONFIG_PATH_22
        cfg.config_path_source = (f"default ({cfg.daemon} sets it when config_path is empty "
                                  "and no mirrors are set)")
    else:
        cfg.config_path = ""
        cfg.config_path_source = setting.where if setting else f"default (empty in {cfg.daemon})"
    cfg.roots = [r for r in cfg.config_path.split(":") if r]


def _pull_mode(cfg: ContainerdConfig) -> None:
    image = cfg.registry.image
    if cfg.version < (2, 1, 0):
        cfg.pull_mode = "local"
        cfg.pull_mode_reason = f"{cfg.daemon}: CRI pulls client-side before 2.1"
        return
    local = image.get("use_local_image_pull")
    if local is not None and local.value:
        cfg.pull_mode, cfg.pull_mode_reason = "local", f"use_local_image_pull = true ({local.where})"
        return
    triggers = _local_pull_triggers(cfg)
    if triggers:
        cfg.pull_mode = "local"
        cfg.pull_mode_reason = ("CRI falls back to local pull (`Found '...' in CRI config which is incompatible with "
                                f"transfer service`): {'; '.join(triggers)}")
    else:
        cfg.pull_mode = "transfer"
        cfg.pull_mode_reason = f"{cfg.daemon}: transfer service is the default from 2.1"


def _local_pull_triggers(cfg: ContainerdConfig) -> list[str]:
    """``CheckLocalImagePullConfigs``: settings the transfer service cannot honour."""
    reg, image = cfg.registry, cfg.registry.image
    triggers = []
    for name, present in (("mirrors", reg.mirrors), ("configs", reg.auth or reg.tls), ("auths", reg.auths)):
        if present:
            first = next(iter(present.values()))
            triggers.append(f"{name} ({first.where})")
    checks = (("discard_unpacked_layers", lambda x: x is True),
              ("max_concurrent_downloads", lambda x: x != _DEFAULT_CONCURRENCY),
              ("disable_snapshot_annotations", lambda x: x is False),
              ("image_pull_with_sync_fs", lambda x: x is True))
    for name, hit in checks:
        s = image.get(name)
        if s is not None and hit(s.value):
            triggers.append(f"{name} = {str(s.value).lower()} ({s.where})")
    return triggers


def _concurrency(cfg: ContainerdConfig) -> None:
    transfer = cfg.pull_mode == "transfer"
    source = cfg.registry.transfer_concurrency if transfer else cfg.registry.image.get("max_concurrent_downloads")
    if source is not None and isinstance(source.value, int):
        cfg.max_concurrent_downloads, cfg.max_concurrent_downloads_source = source.value, source.where
    else:
        cfg.max_concurrent_downloads_source = f"default ({'transfer service' if transfer else 'CRI'})"


def _conflicts(cfg: ContainerdConfig, runtime: str) -> None:
    """Pattern 14: ``mirrors`` (or, on 1.x, ``configs.tls``) with a non-empty ``config_path``."""
    reg = cfg.registry
    if not cfg.config_path:
        return
    clashes: list[tuple[str, Setting]] = []
    if reg.mirrors:
        clashes.append(("mirrors", next(iter(reg.mirrors.values()))))
    if cfg.version < (2, 0, 0) and reg.tls:
        clashes.append(("configs.tls", next(iter(reg.tls.values()))))
    if not clashes:
        return
    cfg.cri_loads = False
    name, first = clashes[0]
    message = f"`{name}` cannot be set when `config_path` is provided"
    cfg.why_not = message
    regression = (cfg.registry.config_path is None and cfg.config_path == DEFAULT_CONFIG_PATH_22
                  and (2, 2, 0) <= cfg.version < (2, 2, 2))
    why_path = (f"config_path is not set in the file, but {cfg.daemon} bakes "
                f"`{DEFAULT_CONFIG_PATH_22}` into its defaults (a 2.2.0-2.2.1 regression, fixed in 2.2.2)" if regression
                else f"config_path = \"{cfg.config_path}\" ({cfg.config_path_source})")
    hosts = _migration_plan(cfg)
    cfg.findings.append(finding(
        "config.mirrors-with-config-path", first.file,
        f"{first.where}: legacy {name} next to config_path: the CRI plugin does not load",
        f"containerd logs {message} and the whole CRI plugin fails to load: kubelet and crictl get `unknown service "
        f"runtime.v1.RuntimeService` and no pod can start. Here {why_path}."
        + (" Upgrading to 2.2.2 or later also fixes it." if regression else ""),
        evidence=first.evidence(key=_toml_path(first.key), conflict=name, config_path=cfg.config_path,
                                config_path_source=cfg.config_path_source),
        fix=fix("config.mirrors-with-config-path", first.file,
                f"move {name} to hosts.toml under {(cfg.roots or [DEFAULT_HOSTS_DIR])[0]} and delete them "
                "from config.toml",
                files=[first.file, *hosts], restart=RESTART, detail=name,
                params={"remove_table": _toml_path(first.key[:-2] if name == "mirrors" else first.key),
                        "line": first.line, "hosts_toml": hosts, "upgrade_to": "2.2.2" if regression else None}),
        runtime=runtime,
    ))


def _migration_plan(cfg: ContainerdConfig) -> dict[str, str]:
    """hosts.toml files (host path -> text) equivalent to the legacy mirrors and 1.x TLS settings."""
    root = cfg.roots[0] if cfg.roots else DEFAULT_HOSTS_DIR
    reg = cfg.registry
    plan: dict[str, str] = {}
    for ns, setting in reg.mirrors.items():
        dirname = "_default" if ns == "*" else ns
        upstream = None if ns == "*" else f"https://{'registry-1.docker.io' if ns == 'docker.io' else ns}"
        mirrors = [{"url": e if "://" in e else f"https://{e}", "capabilities": ("pull", "resolve")}
                   for e in _endpoint_list(setting)]
        mirrors = [m for m in mirrors if upstream is None or m["url"].rstrip("/") != upstream]
        plan[posixpath.join(root, dirname, "hosts.toml")] = hosts_toml_text(upstream, [_redacted(m) for m in mirrors])
    for hostname, setting in reg.tls.items():
        path = posixpath.join(root, hostname, "hosts.toml")
        plan[path] = plan.get(path, "") + _tls_hosts_toml(hostname, setting)
    return plan


def _redacted(mirror: dict[str, Any]) -> dict[str, Any]:
    return {**mirror, "url": redact.url(mirror["url"])}


def _tls_hosts_toml(hostname: str, setting: Setting) -> str:
    tls = setting.value
    lines = [f'server = "https://{hostname}"'] if tls else []
    if tls.get("ca_file"):
        lines.append(f'ca = "{tls["ca_file"]}"')
    if tls.get("cert_file"):
        pair = [tls["cert_file"], tls.get("key_file", "")]
        lines.append(f'client = [["{pair[0]}", "{pair[1]}"]]' if pair[1] else f'client = "{pair[0]}"')
    if tls.get("insecure_skip_verify") is not None:
        lines.append(f"skip_verify = {'true' if tls['insecure_skip_verify'] else 'false'}")
    return "\n".join(lines) + "\n"


def _legacy(cfg: ContainerdConfig, runtime: str) -> None:
    """Patterns 15 and the deprecation warning for legacy registry settings."""
    reg = cfg.registry
    if cfg.version >= (2, 0, 0):
        for hostname, setting in reg.tls.items():
            root = cfg.roots[0] if cfg.roots else DEFAULT_HOSTS_DIR
            path = posixpath.join(root, hostname, "hosts.toml")
            cfg.findings.append(finding(
                "config.ignored-key", setting.file,
                f"{setting.where}: configs.\"{hostname}\".tls is ignored by {cfg.daemon}",
                "RegistryConfig.TLS was removed in containerd 2.0: the key is unknown (`Ignoring unknown key in "
                f"TOML`), so insecure_skip_verify / ca_file / cert_file here have no effect and TLS to {hostname} is "
                "verified against the system roots only. Put them in hosts.toml."
                + ("" if cfg.roots else " config_path must also be set for hosts.toml to be read."),
                evidence=setting.evidence(),
                fix=fix("config.ignored-key", setting.file,
                        f"write {path} with the same TLS settings and remove the tls table",
                        files=[setting.file, path], restart=RESTART if not cfg.roots else "none", detail=hostname,
                        params={"key": _toml_path(setting.key), "line": setting.line, "hosts_toml_path": path,
                                "hosts_toml": _tls_hosts_toml(hostname, setting),
                                "set_config_path": None if cfg.roots else DEFAULT_HOSTS_DIR}),
                runtime=runtime,
            ))
    cfg.findings += _userinfo_endpoints(cfg, runtime)
    if cfg.config_path and reg.mirrors:
        return  # the conflict finding already covers the mirrors
    in_use = [(n, next(iter(d.values()))) for n, d in (("mirrors", reg.mirrors), ("auths", reg.auths)) if d]
    if cfg.version < (2, 0, 0) and reg.tls and not cfg.config_path:
        in_use.append(("configs.tls", next(iter(reg.tls.values()))))
    if not in_use:
        return
    names = ", ".join(n for n, _ in in_use)
    first = in_use[0][1]
    plan = _migration_plan(cfg)
    cfg.findings.append(finding(
        "config.legacy-registry-config", first.file,
        f"{first.where}: deprecated CRI registry settings in use ({names})",
        "These settings are deprecated; containerd 2.x reads mirrors only through hosts.toml and ignores configs.tls. "
        + ("From containerd 2.1 they also force the CRI to pull without the transfer service. "
           if reg.mirrors or reg.auths else "")
        + "Migrate them to hosts.toml and set config_path.",
        evidence=first.evidence(key=_toml_path(first.key), settings=[n for n, _ in in_use]),
        fix=fix("config.legacy-registry-config", first.file,
                f"write hosts.toml under {DEFAULT_HOSTS_DIR}, set config_path, remove {names}",
                files=[first.file, *plan], restart=RESTART, detail=names,
                params={"hosts_toml": plan, "set_config_path": DEFAULT_HOSTS_DIR, "registry_table": reg.registry_table,
                        "remove": [n for n, _ in in_use]}),
        runtime=runtime,
    ))


def _userinfo_endpoints(cfg: ContainerdConfig, runtime: str) -> list[Finding]:
    """Mirror endpoints with ``user:password@``: containerd uses only the URL's host, the credentials are dropped."""
    found = []
    for ns, setting in cfg.registry.mirrors.items():
        for endpoint in _endpoint_list(setting):
            netloc = endpoint.split("://", 1)[-1].split("/", 1)[0]
            if "@" not in netloc:
                continue
            mirror_host = netloc.rpartition("@")[2]
            table = _toml_path(setting.key[:-3] + ("configs", mirror_host, "auth"))
            found.append(finding(
                "config.ignored-key", setting.file,
                f"{setting.where}: credentials in the mirror URL for {ns} are ignored",
                f"containerd keeps only the host of {redact.url(endpoint)}; the user:password part is never sent. "
                f"Credentials for {mirror_host} belong in [{table}].",
                evidence=setting.evidence(redact.url(endpoint)),
                fix=fix("config.ignored-key", setting.file, f"move the credentials to [{table}]", files=[setting.file],
                        restart=RESTART, detail=f"{ns}:{mirror_host}",
                        params={"key": _toml_path(setting.key), "line": setting.line, "new_key": table,
                                "value": redact.url(endpoint)}),
                runtime=runtime,
            ))
    return found


def _hosts_dirs(host: Host, cfg: ContainerdConfig, runtime: str) -> None:
    """Validate every hosts dir the CRI reads; patterns 12 and 13; dirs nobody reads."""
    for directory in existing_host_dirs(host, cfg.roots):
        res = read_hosts_dir(host, directory, dir_namespace(posixpath.basename(directory)), runtime,
                             containerd_version=None if cfg.version_assumed else cfg.version)
        cfg.hosts[directory] = res
        cfg.scanned_dirs.add(directory)
        cfg.sources += res.sources
        cfg.findings += res.findings
    roots = cfg.roots or [DEFAULT_HOSTS_DIR]
    dirs = existing_host_dirs(host, roots)
    if cfg.pull_mode == "transfer" and len(cfg.roots) > 1:
        cfg.findings.append(_transfer_multi_dir(cfg, dirs, runtime))
    elif not cfg.roots and dirs:
        cfg.findings.append(_config_path_unset(cfg, dirs, runtime))
    if dirs:
        cfg.findings.append(_ctr_hint(cfg, roots, dirs, runtime))


def _config_table_setting(cfg: ContainerdConfig) -> tuple[str, int, str]:
    """Where ``config_path`` is set, or where it belongs: file, line (the registry table, else 1), table."""
    setting = cfg.registry.config_path
    if setting is not None and setting.line:
        return setting.file, setting.line, setting.table
    table = cfg.registry.registry_table or _toml_path(("plugins", _cri_plugin_name(cfg.version, 3), "registry"))
    main = cfg.files[0] if cfg.files else None
    line = None
    if main is not None and main.ok and cfg.registry.registry_key:
        key = cfg.registry.registry_key
        line = next((ln for n in range(len(key), 1, -1) if (ln := _first_line(main, key[:n]))), None)
    return cfg.path, line or 1, table


def _transfer_multi_dir(cfg: ContainerdConfig, dirs: list[str], runtime: str) -> Finding:
    file, line, table = _config_table_setting(cfg)
    return finding(
        "config.hosts-dir-unused", file,
        f"config_path lists {len(cfg.roots)} directories: in transfer-service mode no hosts.toml is read",
        f"{cfg.daemon} pulls for the CRI through the transfer service, which passes the whole "
        f"config_path \"{cfg.config_path}\" as ONE directory name. That directory does not exist, so every hosts.toml "
        "is silently ignored and pulls go straight to each registry (containerd#12808)."
        + (f" Unused: {', '.join(dirs[:5])}." if dirs else ""),
        severity="warning" if dirs else "info",
        evidence={"file": file, "line": line, "value": cfg.config_path, "config_path_source": cfg.config_path_source,
                  "pull_mode": cfg.pull_mode_reason, "unused_dirs": dirs},
        fix=fix("config.hosts-dir-unused", file, f"set config_path = \"{cfg.roots[0]}\" (one directory)", files=[file],
                restart=RESTART, detail="config_path",
                params={"table": table, "key": "config_path", "value": cfg.roots[0], "line": line,
                        "alternative": {"table": cfg.registry.image_table, "key": "use_local_image_pull",
                                        "value": True}}),
        runtime=runtime,
    )


def _config_path_unset(cfg: ContainerdConfig, dirs: list[str], runtime: str) -> Finding:
    file, line, table = _config_table_setting(cfg)
    mirrors = bool(cfg.registry.mirrors)
    return finding(
        "config.hosts-dir-unused", DEFAULT_HOSTS_DIR,
        f"{DEFAULT_HOSTS_DIR} has hosts dirs but config_path is empty: the CRI never reads them",
        f"With config_path empty ({cfg.config_path_source}), {cfg.daemon} uses the legacy registry "
        f"settings and ignores {', '.join(dirs[:5])}. kubelet and crictl pulls do not see these mirrors or CAs.",
        evidence={"file": file, "line": line, "value": "", "unused_dirs": dirs},
        fix=fix("config.hosts-dir-unused", file, f"set config_path = \"{DEFAULT_HOSTS_DIR}\" in [{table}]",
                files=[file], restart=RESTART, detail="config_path",
                params={"table": table, "key": "config_path", "value": DEFAULT_HOSTS_DIR, "line": line,
                        "requires": "move the legacy mirrors to hosts.toml first" if mirrors else None}),
        runtime=runtime,
    )


def _ctr_hint(cfg: ContainerdConfig, roots: list[str], dirs: list[str], runtime: str) -> Finding:
    root = roots[0]
    command = f"ctr images pull --hosts-dir {root} <image>"
    return finding(
        "config.hosts-dir-unused", root, f"ctr ignores {root} unless given --hosts-dir",
        "ctr does not read the CRI registry configuration and has no default hosts directory, so a `ctr images pull` "
        "uses none of these mirrors, CAs or skip_verify settings and can fail where kubelet succeeds. Test with "
        f"`crictl pull`, or pass `--hosts-dir {root}` to ctr.",
        severity="info",
        evidence={"file": root, "line": 1, "value": dirs[:10]},
        fix=fix("config.hosts-dir-unused", root, f"use: {command}", kind="command", detail="ctr",
                params={"command": command}),
        runtime=runtime,
    )


# -- the runtime view -------------------------------------------------------------------------

def detect(host: Host) -> list[str]:
    """Paths and binaries that show containerd is installed or configured here."""
    found = [p for p in (CONFIG_PATH, _SOCKET, f"/lib/systemd/system/{_UNIT}", f"/usr/lib/systemd/system/{_UNIT}",
                         f"/etc/systemd/system/{_UNIT}") if host.exists(p)]
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
    from regtui.runtimes.containerd.routes import plan  # the planner imports this module

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
