"""Which containerd runs and what that means for its config file (SEMANTICS §2.1): the installed
version (option, dpkg, ``containerd --version``) or the one assumed from the file, the config
``version`` each release accepts, and the CRI plugin names each config version uses, including
2.x's in-memory migration of v1/v2 files (and the v3 files it does not migrate).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping

from regtui.config._source import Parsed
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding
from regtui.options import CheckOptions
from regtui.runtimes.containerd.model import RESTART, ContainerdConfig, first_line, stop, toml_path

__all__ = [
    "SHORT_CRI",
    "GRPC_CRI",
    "IMAGES",
    "TRANSFER",
    "IMAGE_KEYS",
    "InstalledVersion",
    "parse_version",
    "installed_version",
    "assumed_version",
    "version_supported",
    "plugin_tables",
    "cri_plugin_name",
]

_DPKG_STATUS = "/var/lib/dpkg/status"
_DPKG_PACKAGES = ("containerd.io", "containerd")

#: The CRI plugin by short name (how 1.x reads a version 1 file).
SHORT_CRI = "cri"
#: The CRI plugin of version 2 files.
GRPC_CRI = "io.containerd.grpc.v1.cri"
#: The CRI image plugin of version 3 and 4 files (containerd 2.0+).
IMAGES = "io.containerd.cri.v1.images"
#: The transfer service plugin (its own ``max_concurrent_downloads``).
TRANSFER = "io.containerd.transfer.v1.local"
#: The CRI image settings (under ``GRPC_CRI`` in v2 files, under ``IMAGES`` in v3).
IMAGE_KEYS = ("use_local_image_pull", "max_concurrent_downloads", "discard_unpacked_layers",
              "disable_snapshot_annotations", "image_pull_with_sync_fs")


# -- installed version ---------------------------------------------------------------------------

@dataclass(frozen=True)
class InstalledVersion:
    """The containerd version the host runs, or what regtui assumes."""

    version: tuple[int, int, int] | None
    text: str
    source: str
    """``options``, ``dpkg (containerd.io)``, ``containerd --version``, or empty when unknown."""


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


def assumed_version(config_version: int) -> tuple[tuple[int, int, int], str]:
    """The version to plan with when none was detected, from the config's own ``version``."""
    if config_version >= 4:
        return (2, 3, 0), "assumed 2.3 (config version 4; installed version unknown)"
    if config_version == 3:
        return (2, 1, 0), "assumed 2.1 (config version 3; installed version unknown)"
    return (1, 7, 0), f"assumed 1.7 (config version {config_version}; installed version unknown)"


# -- config versions ------------------------------------------------------------------------------

def _max_config_version(version: tuple[int, int, int]) -> int:
    """The highest config ``version`` a containerd release accepts."""
    if version < (2, 0, 0):
        return 2
    return 3 if version < (2, 3, 0) else 4


def version_supported(cfg: ContainerdConfig, parsed: Parsed, file_version: int, runtime: str) -> bool:
    """``config.version-mismatch`` for a ``version`` the daemon refuses; False when it does not start."""
    highest = _max_config_version(cfg.version)
    if 0 <= file_version <= highest:
        return True
    if cfg.version < (1, 7, 0) and file_version in (3, 4):
        # 1.6 has no version check: it boots, reads plugins by full name, and ignores v3 plugin tables.
        cfg.findings.append(_mismatch(
            parsed, file_version, runtime, severity="error",
            detail=f"{cfg.daemon} accepts config versions 1 and 2 only. It does not check "
                   f"the number: it starts, but the v3 plugin tables ({IMAGES}...) are unknown to it and "
                   "silently ignored.",
            summary=f"set version = 2 and use the {GRPC_CRI} plugin tables"))
        return True
    if highest == 2:
        message = f"containerd config version {file_version} is not supported, the max version is 2"
    else:
        message = f"expected version value to be equal to or less than {highest}, got {file_version}"
    cfg.findings.append(_mismatch(
        parsed, file_version, runtime, severity="error",
        detail=f"{cfg.daemon} refuses to start: `{message}`.",
        summary=f"set version = {highest} (plugin names of that version) or upgrade containerd"))
    stop(cfg, f"{parsed.where('version')}: {message}")
    return False


def _mismatch(parsed: Parsed, file_version: int, runtime: str, *, severity: str, detail: str, summary: str,
              key: tuple[Any, ...] = ("version",), title: str = "") -> Finding:
    where = parsed.where(*key)
    return finding(
        "config.version-mismatch", parsed.path,
        title or f"{where}: config version {file_version} does not fit the installed containerd",
        detail, severity=severity,
        evidence=parsed.evidence(*key, value=file_version if key == ("version",) else toml_path(key)),
        fix=fix("config.version-mismatch", parsed.path, summary, files=[parsed.path], restart=RESTART,
                detail=toml_path(key), params={"key": toml_path(key), "line": parsed.line(*key),
                                                "config_version": file_version}),
        runtime=runtime,
    )


# -- which plugin tables the daemon reads ---------------------------------------------------------

def plugin_tables(cfg: ContainerdConfig, parsed: Parsed, plugins: Mapping[str, Any], file_version: int,
                  runtime: str) -> list[tuple[str, str]]:
    """``(plugin name, form)`` of the CRI tables this daemon reads from this file, in merge order.

    ``form`` is ``v2`` (registry under the CRI plugin, snapshot keys under ``.containerd``) or ``v3``.
    Tables the daemon will not read get ``config.ignored-key`` / ``config.version-mismatch``.
    """
    v = cfg.version
    read: list[tuple[str, str]] = []
    if v < (2, 0, 0):
        wanted = SHORT_CRI if file_version == 1 else GRPC_CRI
        if wanted in plugins:
            read.append((wanted, "v2"))
        for name in (SHORT_CRI, GRPC_CRI, IMAGES):
            if name in plugins and name != wanted:
                cfg.findings.append(_ignored_plugin(cfg, parsed, name, wanted, file_version, runtime))
        return read
    if file_version == 1:
        read += [(n, "v2") for n in (SHORT_CRI, GRPC_CRI) if n in plugins]
    elif file_version == 2:
        read += [(GRPC_CRI, "v2")] if GRPC_CRI in plugins else []
    if file_version >= 2 and SHORT_CRI in plugins:
        cfg.findings.append(_ignored_plugin(cfg, parsed, SHORT_CRI, GRPC_CRI if file_version == 2 else IMAGES,
                                            file_version, runtime))
    if file_version >= 3:
        grpc = plugins.get(GRPC_CRI)
        if isinstance(grpc, dict):
            stale = [k for k in ("registry", *IMAGE_KEYS) if k in grpc]
            if stale:
                key = ("plugins", GRPC_CRI, stale[0])
                cfg.findings.append(_mismatch(
                    parsed, file_version, runtime, severity="error", key=key,
                    title=f"{parsed.where(*key)}: v2 plugin name in a version {file_version} file: ignored",
                    detail=f"A file that declares version {file_version} is not migrated, so the CRI image "
                           f"settings under {GRPC_CRI} ({', '.join(stale)}) are unknown keys: containerd logs "
                           f"`Ignoring unknown key in TOML` and uses its defaults. They belong under {IMAGES}.",
                    summary=f"move {', '.join(stale)} from plugins.\"{GRPC_CRI}\" to plugins.\"{IMAGES}\""))
    if IMAGES in plugins:
        read.append((IMAGES, "v3"))
    return read


def _ignored_plugin(cfg: ContainerdConfig, parsed: Parsed, name: str, wanted: str, file_version: int,
                    runtime: str) -> Finding:
    key = ("plugins", name)
    if cfg.version < (2, 0, 0) and file_version == 1 and name == GRPC_CRI:
        detail = (f"This file has no `version = 2` line, so {cfg.daemon} reads it as "
                  f"version 1 and looks plugins up by short name (`plugins.cri`). Every setting under "
                  f"plugins.\"{name}\" is silently ignored, the registry settings included.")
        summary, params = "add `version = 2` at the top of the file", {"key": "version", "value": 2, "line": 1,
                                                                        "action": "insert-top"}
    else:
        detail = (f"{cfg.daemon} reads the CRI settings of a version {file_version} "
                  f"file from plugins.\"{wanted}\"; plugins.\"{name}\" is never read.")
        summary = f"move the settings to plugins.\"{wanted}\""
        params = {"key": toml_path(key), "new_key": toml_path(("plugins", wanted)), "line": parsed.line(*key)}
    line = first_line(parsed, key)
    where = f"{parsed.path}:{line}" if line else parsed.path
    if "line" in params and params.get("action") != "insert-top":
        params["line"] = line
    return finding(
        "config.ignored-key", parsed.path, f"{where}: plugins.\"{name}\" is ignored in a version {file_version} file",
        detail, evidence={"file": parsed.path, "line": line, "value": toml_path(key)},
        fix=fix("config.ignored-key", parsed.path, summary, files=[parsed.path], restart=RESTART,
                detail=toml_path(key), params=params),
        runtime=runtime,
    )


def cri_plugin_name(version: tuple[int, int, int], file_version: int) -> str:
    """The plugin table a file of ``file_version`` should hold the CRI image settings in."""
    if version >= (2, 0, 0) and file_version >= 3:
        return IMAGES
    return SHORT_CRI if file_version == 1 and version < (2, 0, 0) else GRPC_CRI
