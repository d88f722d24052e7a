"""The values dockerd checks at start-up, before it serves anything: each rule is the Engine
version's own (moby ``daemon/config/config.go`` ``Validate`` and ``GetConflictFreeLabels``,
``config_linux.go``/``config_unix.go`` platform checks, ``cmd/dockerd/daemon.go``
``configureDaemonLogs`` for 20.10), with dockerd's error text. A value of the wrong JSON type is
left to the type check (dockerd stops at unmarshal before it gets here).

Version lines (release branches 20.10 to docker-29.x):
- log-level: 20.10 parses it after loading ("unable to parse logging level"); 23-24 with logrus
  (``warning`` allowed); 25+ a fixed list without ``warning``;
- log-format: 25+ (``text`` or ``json``); an unknown key before;
- dns: IP addresses; 20.10-24 ``opts.ValidateIPAddress``, 25-28 ``[]net.IP``, 29+ ``[]netip.Addr``
  at unmarshal;
- max-download-attempts: ``<= 0`` is fatal in 20.10, ``< 0`` from 23 on; mtu ``< 0`` from 23 on;
- runtimes named ``runc`` and an unknown default-runtime: 20.10-24 at load (later engines check
  them when the daemon sets its runtimes up);
- network-diagnostic-port 0-65535 from 28 on.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from regtui.runtimes.docker.model import DaemonConfig, invalid

__all__ = ["check_values", "log_levels"]

_LOGRUS_LEVELS = ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")
_V25_LEVELS = ("panic", "fatal", "error", "warn", "info", "debug", "trace")
_BUILTIN_RUNTIMES = ("runc", "io.containerd.runtime.v1.linux", "io.containerd.runc.v2")  # 20.10
_ALPHA = re.compile(r"[a-zA-Z]")
# opts.validateDomain's pattern: labels of letters, digits and inner dashes, an optional final dot;
# its groups are written "(:?" upstream, so each part may also start with one colon.
_LABEL = r"(?::?[a-zA-Z0-9]|:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"^(:?{_LABEL}(?::?\.{_LABEL})*)\.?[\t\n\f\r ]*$")
_RESERVED_LABELS = ("com.docker.", "io.docker.", "org.dockerproject.")


def _at_least(cfg: DaemonConfig, major: int, minor: int = 0) -> bool:
    """True when the Engine is ``major.minor`` or later (an unknown version is the current one)."""
    return cfg.version is None or cfg.version >= (major, minor)


def log_levels(version: tuple[int, int] | None) -> tuple[str, ...]:
    """The log levels dockerd ``version`` accepts (case-insensitive)."""
    return _V25_LEVELS if version is None or version >= (25, 0) else _LOGRUS_LEVELS


def _fatal(cfg: DaemonConfig, key: str, value: Any, message: str, hint: str, *more: Any,
           suggested: Any = None, restart: str = "restart docker") -> None:
    cfg.fatal.append(message)
    keypath = cfg.flat_lines.get(key, (key,)) + more
    cfg.findings.append(invalid(cfg, keypath, value, message, hint, key=key, suggested=suggested, restart=restart,
                                detail=f"{key}[{more[0]}]" if more else key))


def _strings(cfg: DaemonConfig, key: str) -> list[tuple[int, str]]:
    """``(index, value)`` of a string-list key that has the right type (else nothing: the type check reports it)."""
    value = cfg.flat.get(key)
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)]


def _int(cfg: DaemonConfig, key: str) -> int | None:
    value = cfg.flat.get(key)
    return value if type(value) is int else None


def _str(cfg: DaemonConfig, key: str) -> str | None:
    value = cfg.flat.get(key)
    return value if isinstance(value, str) else None


def check_values(cfg: DaemonConfig) -> None:
    """Every start-up value check of dockerd ``cfg.version``, in dockerd's order."""
    if _at_least(cfg, 23):
        _log_level(cfg)
    if _at_least(cfg, 25):
        _log_format(cfg)
    _dns(cfg)
    _dns_search(cfg)
    _labels(cfg)
    _limits(cfg)
    if not _at_least(cfg, 25):
        _runtimes(cfg)
    _generic_resources(cfg)
    _ipc_mode(cfg)
    _cgroupns_mode(cfg)
    _label_conflicts(cfg)
    if not _at_least(cfg, 23):
        _log_level(cfg)


def _log_level(cfg: DaemonConfig) -> None:
    level = _str(cfg, "log-level")
    if not level or level.lower() in log_levels(cfg.version):
        return
    message = (f"unable to parse logging level: {level}" if not _at_least(cfg, 23)
               else f"invalid logging level: {level}")
    guess = level.strip().lower()
    guess = {"warning": "warn", "err": "error", "verbose": "debug", "notice": "info"}.get(guess, guess)
    _fatal(cfg, "log-level", level, message, "log-level must be one of " + ", ".join(log_levels(cfg.version)),
           suggested=guess if guess in log_levels(cfg.version) else "info")


def _log_format(cfg: DaemonConfig) -> None:
    fmt = _str(cfg, "log-format")
    if not fmt or fmt in ("text", "json"):
        return
    guess = fmt.strip().lower()
    _fatal(cfg, "log-format", fmt, f"invalid log format: {fmt}", 'log-format must be "text" or "json"',
           suggested=guess if guess in ("text", "json") else "text")


def _dns(cfg: DaemonConfig) -> None:
    for i, raw in _strings(cfg, "dns"):
        if not _at_least(cfg, 25):
            # opts.ValidateIPAddress trims spaces, then net.ParseIP.
            if _parse_ip(raw.strip()):
                continue
            message = f"{raw} is not an ip address"
        else:
            # net.IP / netip.Addr UnmarshalText: no trimming; an empty string is no address.
            if raw == "" or _parse_ip(raw):
                continue
            message = (f"invalid IP address: {raw}" if not _at_least(cfg, 29) else f'ParseAddr("{raw}"): '
                       + ("IPv4 field has value >255" if re.fullmatch(r"[0-9.]+", raw) and
                          any(p.isdigit() and int(p) > 255 for p in raw.split(".")) else "unable to parse IP"))
        _fatal(cfg, "dns", raw, message, f"dns[{i}] must be an IP address (a name server, not a host name)", i)


def _parse_ip(text: str) -> bool:
    """Go's ``net.ParseIP``: dotted IPv4 (no leading zeros since Go 1.17) or IPv6, no zone."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _dns_search(cfg: DaemonConfig) -> None:
    for i, raw in _strings(cfg, "dns-search"):
        val = raw.strip(" ")
        if val == ".":
            continue
        m = _DOMAIN.match(val) if _ALPHA.search(val) else None
        if m and len(m.group(1)) < 255:
            continue
        _fatal(cfg, "dns-search", raw, f"{val} is not a valid domain", f"dns-search[{i}] must be a domain name", i)


def _labels(cfg: DaemonConfig) -> None:
    for i, raw in _strings(cfg, "labels"):
        if "=" not in raw:
            _fatal(cfg, "labels", raw, f"bad attribute format: {raw}", f"labels[{i}] must be key=value", i,
                   suggested=None)
        elif raw.lower().startswith(_RESERVED_LABELS):
            _fatal(cfg, "labels", raw,
                   f"label {raw} is not allowed: the namespaces com.docker.*, io.docker.*, and org.dockerproject.* "
                   "are reserved for internal use", f"labels[{i}] uses a namespace reserved for Docker", i)


def _label_conflicts(cfg: DaemonConfig) -> None:
    """``GetConflictFreeLabels``: one key with two values."""
    seen: dict[str, str] = {}
    for i, raw in _strings(cfg, "labels"):
        key, sep, val = raw.partition("=")
        if not sep:
            continue
        if key in seen and seen[key] != val:
            _fatal(cfg, "labels", raw, f"conflict labels for {key}={val} and {key}={seen[key]}",
                   f"labels[{i}] gives {key!r} a second value", i)
            return
        seen[key] = val


def _limits(cfg: DaemonConfig) -> None:
    checks = [("max-concurrent-downloads", "invalid max concurrent downloads", 0, 3, "reload docker"),
              ("max-concurrent-uploads", "invalid max concurrent uploads", 0, 5, "reload docker"),
              ("max-download-attempts", "invalid max download attempts", 0 if _at_least(cfg, 23) else 1, 5,
               "reload docker")]
    if _at_least(cfg, 23):
        checks.insert(0, ("mtu", "invalid default MTU", 0, 1500, "restart docker"))
    for key, label, lowest, default, restart in checks:
        value = _int(cfg, key)
        if value is not None and value < lowest:
            _fatal(cfg, key, value, f"{label}: {value}",
                   f"{key} must be {'at least 1' if lowest else 'zero or more'}", suggested=default, restart=restart)
    port = _int(cfg, "network-diagnostic-port")
    if _at_least(cfg, 28) and port is not None and not 0 <= port <= 65535:
        _fatal(cfg, "network-diagnostic-port", port,
               f"invalid network-diagnostic-port ({port}): value must be between 0 and 65535",
               "network-diagnostic-port must be a port number", suggested=0)


def _runtimes(cfg: DaemonConfig) -> None:
    runtimes = cfg.flat.get("runtimes")
    names = set(runtimes) if isinstance(runtimes, dict) else set()
    if "runc" in names:
        _fatal(cfg, "runtimes", runtimes["runc"], "runtime name 'runc' is reserved",
               "the runtime name 'runc' is Docker's own; give yours another name", "runc")
    default = _str(cfg, "default-runtime")
    if default and default not in _BUILTIN_RUNTIMES and default not in names:
        if _at_least(cfg, 23) and "." in default and "/" not in default and not default.startswith("."):
            return  # IsPermissibleC8dRuntimeName: a containerd shim name (io.containerd.x.v1) is accepted.
        _fatal(cfg, "default-runtime", default, f"specified default runtime '{default}' does not exist",
               "default-runtime must name runc or a runtime under \"runtimes\"", suggested="runc")


def _generic_resources(cfg: DaemonConfig) -> None:
    for i, raw in _strings(cfg, "node-generic-resources"):
        if "=" not in raw:
            _fatal(cfg, "node-generic-resources", raw,
                   f"could not parse GenericResource: incorrect term {raw}, missing '=' or malformed expression",
                   f"node-generic-resources[{i}] must be name=value", i)
            return


def _ipc_mode(cfg: DaemonConfig) -> None:
    mode = _str(cfg, "default-ipc-mode")
    if not mode or mode in ("private", "shareable"):
        return
    if mode in ("none", "host") or mode.startswith("container:"):
        message = f'IPC mode "{mode}" is not supported as default value; use "shareable" or "private"'
    else:
        message = f'default IPC mode setting ({mode}) is invalid; use "shareable" or "private"'
    _fatal(cfg, "default-ipc-mode", mode, message, 'default-ipc-mode must be "private" or "shareable"',
           suggested="private")


def _cgroupns_mode(cfg: DaemonConfig) -> None:
    mode = _str(cfg, "default-cgroupns-mode")
    if not mode or mode in ("private", "host"):
        return
    message = (f'invalid default cgroup namespace ({mode}): use "host" or "private"' if _at_least(cfg, 28)
               else f'default cgroup namespace mode ({mode}) is invalid; use "host" or "private"')
    _fatal(cfg, "default-cgroupns-mode", mode, message, 'default-cgroupns-mode must be "private" or "host"',
           suggested="private")
