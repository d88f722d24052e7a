"""daemon.json as dockerd loads it: the file (``/etc/docker/daemon.json`` or ``--config-file``
from the effective ExecStart), its one-level flattening, and the whole :class:`DaemonConfig` with
the command line, key validation, flag conflicts and registry settings applied; plus the Engine
version from dpkg (SEMANTICS §1.1; moby ``daemon/config/config.go``).

- UTF-8 with or without BOM or UTF-16 with BOM; an empty file is fine; a missing default file is
  fine, a missing ``--config-file`` is fatal;
- nested objects are flattened one level before validation, except the ``flatOptions``
  (``features``, ``log-opts``, ``runtimes``...).
"""

from __future__ import annotations

import posixpath
import re
from typing import Iterable

from regtui import redact
from regtui.config import systemd
from regtui.config._source import read_json
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.runtimes.docker.flags import conflicts, parse_exec_start
from regtui.runtimes.docker.keys import FLAT_OPTIONS, json_type, validate
from regtui.runtimes.docker.model import (DEFAULT_DATA_ROOT, RUNTIME, UNIT, DaemonConfig, invalid,
                                          line_of)
from regtui.runtimes.docker.registry import etc_hosts, registry_settings
from regtui.runtimes.docker.values import check_daemon, check_values

__all__ = ["engine_version", "load_daemon_config", "flatten"]

_DOCKER_PACKAGES = ("docker-ce", "docker.io", "moby-engine", "docker-engine", "docker")


def engine_version(host: Host, options: CheckOptions | None = None) -> tuple[tuple[int, int] | None, str]:
    """Installed Docker Engine version from the root's dpkg database (or ``--extra docker_version``)."""
    override = (options.extra.get("docker_version") if options else None) or ""
    if override:
        parsed = _major_minor(override)
        return parsed, f"--extra docker_version={override}"
    status = host.read("/var/lib/dpkg/status")
    if not status.ok:
        return None, "unknown (no dpkg database under the root)"
    for stanza in status.text.split("\n\n"):
        fields = dict(_stanza_fields(stanza))
        if fields.get("Package") in _DOCKER_PACKAGES and "installed" in fields.get("Status", "").split():
            version = fields.get("Version", "")
            parsed = _major_minor(version)
            if parsed:
                return parsed, f"dpkg: {fields['Package']} {version}"
    return None, "unknown (no docker-ce, docker.io or moby-engine package in dpkg status)"


def _stanza_fields(stanza: str) -> Iterable[tuple[str, str]]:
    for line in stanza.splitlines():
        if ":" in line and not line.startswith(" "):
            k, v = line.split(":", 1)
            yield k.strip(), v.strip()


def _major_minor(version: str) -> tuple[int, int] | None:
    m = re.match(r"^(?:\d+:)?(\d+)\.(\d+)", version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def load_daemon_config(host: Host, options: CheckOptions | None = None) -> DaemonConfig:
    """daemon.json, the docker.service command line and environment, and the image store."""
    cfg = DaemonConfig()
    cfg.version, cfg.version_source = engine_version(host, options)
    unit = systemd.load_unit(host, UNIT, RUNTIME)
    cfg.unit = unit
    cfg.findings += unit.findings
    cfg.sources += unit.files
    if unit.exec_start and posixpath.basename(unit.exec_start[0]).startswith("dockerd"):
        cfg.flags = parse_exec_start(unit.exec_start, unit.exec_start_source, unit.environment, unit.env_sources)
    config_flag = next((f for f in cfg.flags if f.name == "config-file"), None)
    if config_flag and config_flag.value:
        cfg.path, cfg.path_source = config_flag.value, f"--config-file at {config_flag.source}"
    _read_file(host, cfg, required=config_flag is not None)
    if cfg.parsed is not None and cfg.parsed.ok:
        flatten(cfg)
        validate(cfg)
        check_values(cfg)
    conflicts(cfg)
    registry_settings(cfg)
    if cfg.parsed is not None and cfg.parsed.ok:
        check_daemon(cfg)
    # --dns-server replaces the root's resolver, hosts file included: its entries then decide nothing.
    cfg.etc_hosts = {} if options is not None and options.dns_server else etc_hosts(host)
    cfg.data_root = str(cfg.value("data-root") or cfg.value("graph") or DEFAULT_DATA_ROOT)
    return cfg


def _read_file(host: Host, cfg: DaemonConfig, required: bool) -> None:
    parsed = read_json(host, cfg.path, RUNTIME,
                       what="dockerd refuses to start with this file: 'unable to configure the Docker daemon "
                            "with file ...'.")
    cfg.parsed = parsed
    cfg.findings += parsed.findings
    if parsed.findings and parsed.status == "parse-error":
        cfg.fatal.append(f"unable to configure the Docker daemon with file {cfg.path}: {parsed.error}")
    if parsed.status == "missing" and required:
        message = f"unable to configure the Docker daemon with file {cfg.path}: open {cfg.path}: no such file or directory"
        cfg.fatal.append(message)
        cfg.findings.append(finding(
            "config.invalid-value", cfg.path,
            f"--config-file {cfg.path} does not exist: dockerd will not start",
            f"docker.service starts dockerd with --config-file {cfg.path} ({cfg.path_source}); a missing file given "
            "explicitly is fatal, unlike the default /etc/docker/daemon.json.",
            evidence={"file": cfg.path_source.split(" at ", 1)[-1].rsplit(":", 1)[0],
                      "line": line_of(cfg.path_source), "value": cfg.path, "error": message},
            runtime=RUNTIME,
            fix=fix("config.invalid-value", cfg.path, f"create {cfg.path} (\"{{}}\" is enough)", files=[cfg.path],
                    restart="restart docker", params={"action": "create", "path": cfg.path, "content": "{}\n"}),
        ))
    if parsed.ok and not isinstance(parsed.data, dict):
        message = f"json: cannot unmarshal {json_type(parsed.data)} into Go value of type map[string]interface {{}}"
        cfg.fatal.append(message)
        cfg.findings.append(invalid(cfg, (), parsed.data, message, "the file must be one JSON object: { ... }"))
    elif parsed.ok:
        cfg.data = parsed.data
    cfg.sources.append(parsed.source(RUNTIME, "daemon.json", detail=parsed.error or cfg.path_source,
                                     values=redact.value(dict(cfg.data))))


def flatten(cfg: DaemonConfig) -> None:
    """dockerd's ``configValuesSet``: one level of nested objects becomes top-level keys."""
    for key, value in cfg.data.items():
        if isinstance(value, dict) and key not in FLAT_OPTIONS:
            for sub, sub_value in value.items():
                cfg.flat[sub] = sub_value
                cfg.flat_lines[sub] = (key, sub)
            continue
        cfg.flat[key] = value
        cfg.flat_lines[key] = (key,)
