"""Loading ``/etc/containerd/config.toml`` the way the installed containerd does (SEMANTICS §2.1):
the main file, then its ``imports`` globs breadth first, each file's ``version`` checked and its
CRI tables merged in order. A file that does not parse, or a value containerd cannot decode, stops
containerd. :func:`load_config` runs the steps of :mod:`.versions`, :mod:`.cri`, :mod:`.legacy`
and :mod:`.hostsdirs` and returns the :class:`~.model.ContainerdConfig`.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections import deque
from typing import Any

from regtui.config._source import Parsed, read_toml, value_kind
from regtui.config.hoststoml import locate_parse_error
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.runtimes.containerd.cri import check_credentials, effective_settings, extract
from regtui.runtimes.containerd.detection import CONFIG_PATH
from regtui.runtimes.containerd.hostsdirs import scan_hosts_dirs
from regtui.runtimes.containerd.legacy import legacy_findings
from regtui.runtimes.containerd.model import RUNTIME, ContainerdConfig, invalid_value, stop
from regtui.runtimes.containerd.versions import InstalledVersion, assumed_version, version_supported

__all__ = ["CONFIG_PATH", "load_config"]

_REFUSES = "containerd refuses to start (`failed to load TOML`): nothing runs until this is fixed."


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
        assumed, why = assumed_version(config_version if isinstance(config_version, int) else 1)
        cfg = ContainerdConfig(path, assumed, f"{assumed[0]}.{assumed[1]}", why, True)
    else:
        cfg = ContainerdConfig(path, version.version, version.text, version.source, False)
    cfg.config_version = config_version if isinstance(config_version, int) else 1
    seen: set[str] = set()
    # containerd's LoadConfig walks imports breadth first with a queue, skipping files already
    # loaded: any chain length works, a cycle ends, and the merge order is the queue's order.
    pending = _read_file(host, cfg, seen, main, runtime, is_main=True)
    while pending:
        imported = pending.popleft()
        if imported in seen:
            continue
        child = locate_parse_error(read_toml(host, imported, runtime, what=_REFUSES), runtime, _REFUSES)
        pending += _read_file(host, cfg, seen, child, runtime, is_main=False)
    if cfg.starts:
        check_credentials(cfg, runtime)
        effective_settings(cfg)
        legacy_findings(cfg, runtime)
        scan_hosts_dirs(host, cfg, runtime)
    return cfg


def _file_version(parsed: Parsed) -> int | Any:
    if not parsed.ok or not isinstance(parsed.data, dict):
        return 1
    return parsed.data.get("version", 1)


def _read_file(host: Host, cfg: ContainerdConfig, seen: set[str], parsed: Parsed, runtime: str, *,
               is_main: bool) -> deque[str]:
    """Take in one parsed file; returns the paths it imports (empty when it stops containerd or has none)."""
    seen.add(parsed.path)
    cfg.files.append(parsed)
    cfg.findings += parsed.findings
    if parsed.status == "missing":
        detail = "absent: containerd runs with its built-in defaults" if is_main else "import absent"
        cfg.sources.append(SourceFile(parsed.path, runtime, "config.toml", "missing", detail))
        return deque()
    if not parsed.ok:
        cfg.sources.append(parsed.source(runtime, "config.toml" if is_main else "config.toml import"))
        if parsed.status == "parse-error":
            stop(cfg, f"{parsed.path} does not parse")
        elif parsed.file.status == "not-a-file":
            stop(cfg, f"{parsed.path} is {parsed.file.error}")
        return deque()
    data = parsed.data if isinstance(parsed.data, dict) else {}
    file_version = data.get("version", 1)
    if not isinstance(file_version, int) or isinstance(file_version, bool):
        cfg.findings.append(_version_type(parsed, file_version, runtime))
        stop(cfg, f"{parsed.where('version')}: version is not an integer")
        cfg.sources.append(parsed.source(runtime, "config.toml", "invalid version"))
        return deque()
    if not version_supported(cfg, parsed, file_version, runtime):
        cfg.sources.append(parsed.source(runtime, "config.toml" if is_main else "config.toml import",
                                         f"version {file_version} rejected by {cfg.daemon}"))
        return deque()
    extract(cfg, parsed, data, file_version, runtime)
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
        cfg.findings.append(invalid_value(parsed, ("imports",), imports,
                                          f"imports must be a list of paths, not {value_kind(imports)}",
                                          "containerd fails to decode its config and does not start.", runtime))
        stop(cfg, f"{parsed.where('imports')}: imports is not a list of strings")
        return []
    base = posixpath.dirname(parsed.path)
    return [(i if i.startswith("/") else posixpath.join(base, i), parsed.line("imports")) for i in imports]


def _version_type(parsed: Parsed, value: Any, runtime: str) -> Finding:
    return invalid_value(parsed, ("version",), value, f"version must be an integer (1 to 4), not {value_kind(value)}",
                         "containerd fails to decode its config and does not start.", runtime)
