"""dockerd's registry settings: ``registry-mirrors`` and ``insecure-registries`` validated and
normalised as dockerd's registry service loads them, from daemon.json or the command line
(SEMANTICS §1.2; moby ``daemon/pkg/registry/config.go``).

- ``registry-mirrors``: scheme http/https required, no query/fragment/userinfo, a path only since
  Engine 25; normalised with a trailing ``/``, duplicates dropped;
- ``insecure-registries``: ``http(s)://`` stripped with a warning, other ``://`` fatal, leading or
  trailing ``-`` fatal, CIDR or exact ``host[:port]``; 127.0.0.0/8 (and ::1/128 from Engine 28) always added;
  docker.io always secure.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from regtui import redact
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding
from regtui.runtimes.docker.model import RUNTIME, UNIT, DaemonConfig, Mirror, invalid

__all__ = ["validate_mirror", "registry_settings", "etc_hosts"]

_MIRROR_PATH = (25, 0)
_IPV6_LOOPBACK_INSECURE = (28, 0)


def validate_mirror(raw: str, version: tuple[int, int] | None) -> tuple[str | None, str, str | None]:
    """dockerd's ``ValidateMirror``: ``(normalised, error, suggested fix value)``."""
    shown = redact.url(raw)
    scheme, sep, _ = raw.partition("://")
    if not sep or not scheme:
        if version is not None and version < (26, 0):
            error = f'invalid mirror: unsupported scheme "" in "{shown}"'
        else:
            error = f"invalid mirror: no scheme specified for \"{shown}\": must use either 'https://' or 'http://'"
        return None, error, "https://" + raw.strip().lstrip("/")
    try:
        parts = urlsplit(raw)
        parts.port
    except ValueError:
        return None, f'invalid mirror: "{redact.url(raw)}" is not a valid URI', None
    if parts.scheme not in ("http", "https"):
        return None, (f"invalid mirror: unsupported scheme \"{parts.scheme}\" in \"{redact.url(raw)}\": must use "
                      "either 'https://' or 'http://'"), "https://" + raw.split("://", 1)[1]
    base = f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"
    if parts.query or parts.fragment:
        return None, f'invalid mirror: query or fragment at end of the URI "{redact.url(raw)}"', base + parts.path
    if parts.username is not None or parts.password is not None:
        return None, f'invalid mirror: username/password not allowed in URI "{redact.url(raw)}"', base + parts.path
    if parts.path not in ("", "/") and version is not None and version < _MIRROR_PATH:
        return None, f'invalid mirror: path, query, or fragment at end of the URI "{shown}"', base
    if not parts.hostname:
        return None, f'invalid mirror: "{shown}" has no host', None
    return raw.rstrip("/") + "/", "", None


_HOSTPORT = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                       r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")


def _validate_insecure(raw: str) -> tuple[str | None, str, str, str | None]:
    """dockerd's insecure-registries rules: ``(key or CIDR, error, warning, suggested value)``."""
    value = "docker.io" if raw == "index.docker.io" else raw
    # Messages quote the entry as dockerd does, but never a user:password part (nor a piece of one).
    shown = redact.url(value)
    secret = "@" in value
    if value.startswith("-") or value.endswith("-"):
        return None, f"invalid index name ({shown}). Cannot begin or end with a hyphen", "", value.strip("-")
    warning = ""
    scheme, sep, rest = value.partition("://")
    if sep:
        if scheme.lower() in ("http", "https"):
            warning = (f"insecure registry {shown} should not contain '{scheme}' and '{scheme}s' has been removed "
                       "from the insecure registry config")
            value = rest
        else:
            return None, f"insecure registry {shown} should not contain '://'", "", rest
    try:
        net = ipaddress.ip_network(value, strict=False) if "/" in value else None
    except ValueError:
        net = None
    if net is not None:
        return str(net), "", warning, value if warning else None
    host, port = value, ""
    if value.count(":") == 1:
        host, port = value.split(":")
    ip_ok = False
    try:
        ipaddress.ip_address(host.strip("[]"))
        ip_ok = True
    except ValueError:
        pass
    if not _HOSTPORT.match(value) and not ip_ok:
        cleaned = value.split("/", 1)[0]
        return None, f'insecure registry {shown} is not valid: invalid host "{redact.MASK if secret else host}"', "", \
            None if secret else cleaned or None
    if port and (not port.isdigit() or int(port) > 65535):
        return None, f'insecure registry {shown} is not valid: invalid port "{redact.MASK if secret else port}"', "", None
    return value, "", warning, value if warning else None


def _list_entries(cfg: DaemonConfig, key: str) -> list[tuple[Any, str, tuple[Any, ...]]]:
    """``(value, source, keypath)`` for each entry of a list setting, from the file or the command line."""
    out: list[tuple[Any, str, tuple[Any, ...]]] = []
    value = cfg.flat.get(key)
    if isinstance(value, list) and cfg.parsed is not None:
        base = cfg.flat_lines.get(key, (key,))
        for i, item in enumerate(value):
            out.append((item, cfg.parsed.where(*base, i), base + (i,)))
        return out
    flag = {"registry-mirrors": "registry-mirror", "insecure-registries": "insecure-registry"}.get(key)
    for f in cfg.flags:
        if f.name == flag:
            out.append((f.value, f"{f.written} at {f.source}", ()))
    return out


def registry_settings(cfg: DaemonConfig) -> None:
    """Mirrors and insecure registries as dockerd's registry service loads them."""
    seen: set[str] = set()
    for raw, source, keypath in _list_entries(cfg, "registry-mirrors"):
        if not isinstance(raw, str):
            continue
        normalised, error, suggested = validate_mirror(raw, cfg.version)
        if error:
            cfg.fatal.append(error)
            cfg.findings.append(_registry_value(cfg, "registry-mirrors", keypath, source, raw, error, suggested))
            continue
        if normalised in seen:
            continue
        seen.add(normalised)
        parts = urlsplit(normalised)
        cfg.mirrors.append(Mirror(normalised, parts.netloc, parts.scheme, source, raw))
    for raw, source, keypath in _list_entries(cfg, "insecure-registries"):
        if not isinstance(raw, str):
            continue
        value, error, warning, suggested = _validate_insecure(raw)
        if error:
            cfg.fatal.append(error)
            cfg.findings.append(_registry_value(cfg, "insecure-registries", keypath, source, raw, error, suggested))
            continue
        if warning:
            cfg.findings.append(_registry_value(cfg, "insecure-registries", keypath, source, raw, warning, suggested,
                                                severity="warning"))
        assert value is not None
        if "/" in value:
            net = ipaddress.ip_network(value, strict=False)
            if all(str(n) != str(net) for n, _ in cfg.insecure_cidrs):
                cfg.insecure_cidrs.append((net, source))
        elif value == "docker.io":
            cfg.findings.append(_hub_insecure(cfg, keypath, source, raw))
        else:
            cfg.insecure_hosts.setdefault(value, source)
    # moby's LoadInsecureRegistries always adds 127.0.0.0/8; ::1/128 since Engine 28 (moby 6a1d8a9).
    ipv6_loopback = cfg.version is None or cfg.version >= _IPV6_LOOPBACK_INSECURE
    for default in ("::1/128", "127.0.0.0/8") if ipv6_loopback else ("127.0.0.0/8",):
        net = ipaddress.ip_network(default)
        if all(str(n) != default for n, _ in cfg.insecure_cidrs):
            cfg.insecure_cidrs.append((net, ""))


def _registry_value(cfg: DaemonConfig, key: str, keypath: tuple[Any, ...], source: str, raw: str, error: str,
                    suggested: str | None, severity: str | None = None) -> Finding:
    """A bad ``registry-mirrors``/``insecure-registries`` entry (in the file or on the command line)."""
    restart = "reload docker"
    if keypath and cfg.parsed is not None:
        hint = {"registry-mirrors": "a mirror must be http(s)://host[:port][/path] without credentials, query or fragment",
                "insecure-registries": "an entry must be host[:port] or a CIDR, without scheme or path"}[key]
        if severity == "warning":
            hint = f"{redact.url(raw)} has a scheme dockerd strips"
        return invalid(cfg, keypath, raw, error, hint, key=key, suggested=suggested, severity=severity,
                       restart=restart, detail=f"{key}[{keypath[-1]}]")
    path, _, line = source.rpartition(" at ")[2].rpartition(":")
    return finding(
        "config.invalid-value", UNIT,
        f"{source}: {key} entry {redact.url(raw)!r}: {error}",
        f"dockerd refuses this command-line value{'' if severity == 'warning' else ' and does not start'}: '{error}'.",
        evidence={"file": path, "line": int(line) if line.isdigit() else None, "key": key,
                  "value": redact.url(raw), "error": error},
        severity=severity, runtime=RUNTIME,
        fix=fix("config.invalid-value", UNIT, f"correct the {key} flag in docker.service", files=[path],
                restart="restart docker", detail=redact.url(raw), kind="manual",
                params={"key": key, "old": redact.url(raw), "new": redact.url(suggested) if suggested else None}),
    )


def _hub_insecure(cfg: DaemonConfig, keypath: tuple[Any, ...], source: str, raw: str) -> Finding:
    assert cfg.parsed is not None
    return finding(
        "config.ignored-key", cfg.path,
        f"{source}: insecure-registries entry {raw!r} has no effect: Docker Hub is always secure",
        "dockerd overrides any insecure entry for docker.io (and index.docker.io) and always verifies Docker Hub's "
        "certificate. A TLS-intercepting proxy's CA must be installed in the OS trust store (and dockerd restarted).",
        evidence=cfg.parsed.evidence(*keypath, key="insecure-registries", value=raw) if keypath else
        {"file": source, "line": None, "key": "insecure-registries", "value": raw},
        severity="warning", runtime=RUNTIME,
        fix=fix("config.ignored-key", cfg.path, f"remove {raw!r} from insecure-registries", files=[cfg.path],
                restart="reload docker", detail=raw,
                params={"key": "insecure-registries", "remove": raw, "new_key": None}),
    )


def etc_hosts(host: Host) -> dict[str, list[str]]:
    """Name -> addresses from the root's /etc/hosts."""
    out: dict[str, list[str]] = {}
    file = host.read("/etc/hosts")
    if not file.ok:
        return out
    for line in file.text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        for name in words[1:]:
            out.setdefault(name.lower(), []).append(words[0])
    return out
