"""CRI-O's own configuration for pulls: crio.conf and crio.conf.d (``[crio.image]``
``global_auth_file``, the legacy ``insecure_registries`` and the dropped ``registries``),
``--global-auth-file`` / ``--config`` / ``--config-dir`` in ExecStart and their ``CONTAINER_*``
variables, and the environment crio.service runs with."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Mapping

from regtui import redact
from regtui.config import systemd
from regtui.config._source import Parsed
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.runtimes.crio.common import RESTART, RUNTIME, SYSTEM_REGISTRIES_DIR, path_line, read_located_toml, toml_type
from regtui.runtimes.crio.detection import CRIO_ENV_FILES, CRIO_UNIT

__all__ = ["CRIO_UNIT", "CrioConf", "load_crio_conf", "unit_environment"]

CRIO_CONF = "/etc/crio/crio.conf"
CRIO_CONF_DIR = "/etc/crio/crio.conf.d"


@dataclass
class CrioConf:
    """What of CRI-O's own configuration matters for pulls."""

    global_auth_file: str = ""
    global_auth_file_source: str = ""
    insecure_registries: list[str] = field(default_factory=list)
    insecure_registries_source: str = ""
    files: list[str] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _image_table(data: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The ``[crio.image]`` table and its key path (case as written)."""
    crio_key = next((k for k in data if k.lower() == "crio"), None)
    crio = data.get(crio_key) if crio_key else None
    if not isinstance(crio, dict):
        return {}, ()
    image_key = next((k for k in crio if k.lower() == "image"), None)
    image = crio.get(image_key) if image_key else None
    return (image, (crio_key, image_key)) if isinstance(image, dict) else ({}, ())


def _crio_type_error(parsed: Parsed, keypath: tuple[str, ...], value: Any, expected: str) -> Finding:
    """A crio.conf value of the wrong type: CRI-O does not start."""
    line = parsed.line(*keypath)
    dotted = ".".join(keypath)
    return finding(
        "config.invalid-value", parsed.path,
        f"{path_line(parsed.path, line)}: {dotted} must be a {expected}, not a {toml_type(value)}",
        "CRI-O cannot decode its configuration and does not start.",
        evidence={"file": parsed.path, "line": line, "key": dotted, "value": redact.value(value)},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", parsed.path, f"give {dotted} a {expected} value", files=[parsed.path],
                restart=RESTART, detail=f"{dotted}:{line}",
                params={"file": parsed.path, "line": line, "key": keypath[-1], "expected": expected}),
    )


def _apply_crio_file(out: CrioConf, parsed: Parsed) -> dict[str, Any]:
    """Take the pull-related ``[crio.image]`` keys of one crio.conf file; returns its values."""
    image, base = _image_table(parsed.data if isinstance(parsed.data, dict) else {})
    values: dict[str, Any] = {}
    for key, value in image.items():
        keypath = base + (key,)
        name = key.lower()
        if name == "global_auth_file":
            if not isinstance(value, str):
                out.findings.append(_crio_type_error(parsed, keypath, value, "string"))
                continue
            out.global_auth_file, out.global_auth_file_source = value, parsed.where(*keypath)
            values["global_auth_file"] = value
        elif name == "insecure_registries":
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                out.findings.append(_crio_type_error(parsed, keypath, value, "array of strings"))
                continue
            out.insecure_registries, out.insecure_registries_source = list(value), parsed.where(*keypath)
            values["insecure_registries"] = value
        elif name == "registries":
            values["registries"] = value
            out.findings.append(_legacy_registries(parsed, keypath, value))
    return values


def _legacy_registries(parsed: Parsed, keypath: tuple[str, ...], value: Any) -> Finding:
    """``[crio.image] registries``: accepted and ignored by current CRI-O."""
    line = parsed.line(*keypath)
    dropin = posixpath.join(SYSTEM_REGISTRIES_DIR, "999-regtui-search.conf")
    return finding(
        "config.ignored-key", parsed.path,
        f"{path_line(parsed.path, line)}: crio.conf 'registries' has no effect",
        "CRI-O dropped support for [crio.image] registries: short names are resolved only through "
        "unqualified-search-registries in registries.conf.",
        evidence={"file": parsed.path, "line": line, "key": "registries", "value": redact.value(value)},
        runtime=RUNTIME,
        fix=fix("config.ignored-key", parsed.path,
                "move the list to unqualified-search-registries in a registries.conf.d drop-in",
                files=[parsed.path, dropin], restart=RESTART, detail=f"registries:{line}",
                params={"file": parsed.path, "line": line, "key": "registries",
                        "new_key": "unqualified-search-registries", "drop_in": dropin,
                        "value": value if isinstance(value, list) else []}),
    )


def _flags(argv: list[str]) -> dict[str, str]:
    """``--name value`` / ``--name=value`` / ``-c value`` options of a crio command line."""
    aliases = {"-c": "--config", "-d": "--config-dir"}
    out: dict[str, str] = {}
    i = 1
    while i < len(argv):
        word = aliases.get(argv[i], argv[i])
        if word.startswith("--") and "=" in word:
            name, value = word.split("=", 1)
            out[name] = value
        elif word.startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            out[word] = argv[i + 1]
            i += 1
        i += 1
    return out


def load_crio_conf(host: Host, unit: systemd.UnitConfig | None = None,
                   env: Mapping[str, str] | None = None) -> CrioConf:
    """crio.conf, then every file of crio.conf.d in name order, then flags and ``CONTAINER_*`` variables."""
    out = CrioConf()
    env = env or {}
    argv = [word for word, _ in systemd.expand_argv(unit.exec_start, dict(env))] if unit else []
    flags = _flags(argv)
    main = flags.get("--config") or env.get("CONTAINER_CONFIG") or CRIO_CONF
    conf_dir = flags.get("--config-dir") or env.get("CONTAINER_CONFIG_DIR") or CRIO_CONF_DIR
    paths = [main] + sorted(host.glob(conf_dir, ""))
    for path in paths:
        parsed = read_located_toml(host, path, "CRI-O does not start with a configuration it cannot parse.")
        out.findings += parsed.findings
        if parsed.status == "missing":
            if path == main:
                out.sources.append(SourceFile(path, RUNTIME, "crio.conf", "missing", "absent: CRI-O defaults apply"))
            continue
        out.files.append(path)
        values = _apply_crio_file(out, parsed) if parsed.ok else {}
        out.sources.append(parsed.source(RUNTIME, "crio.conf" if path == main else "crio.conf drop-in",
                                         values=values))
    source = unit.exec_start_source if unit else ""
    if "--global-auth-file" in flags:
        out.global_auth_file, out.global_auth_file_source = flags["--global-auth-file"], source or "crio command line"
    elif env.get("CONTAINER_GLOBAL_AUTH_FILE"):
        out.global_auth_file = env["CONTAINER_GLOBAL_AUTH_FILE"]
        out.global_auth_file_source = "environment CONTAINER_GLOBAL_AUTH_FILE"
    if "--insecure-registry" in flags:
        out.insecure_registries = flags["--insecure-registry"].split(",")
        out.insecure_registries_source = source or "crio command line"
    return out


def unit_environment(host: Host) -> tuple[systemd.UnitConfig, bool]:
    """crio.service as systemd would run it; without a unit file under the root, the packaged unit's
    environment files are read (drop-ins still apply after them). Also whether any of it is there."""
    unit = systemd.load_unit(host, CRIO_UNIT, RUNTIME, packaged_env_files=CRIO_ENV_FILES)
    env_file_read = any(s.kind == "environment file" and s.status != "missing" for s in unit.files)
    return unit, unit.found or env_file_read
