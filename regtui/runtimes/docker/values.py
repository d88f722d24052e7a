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
- network-diagnostic-port 0-65535 from 28 on;
- exec-opts: ``key=value`` with a known key from 28 on (``parseExecOptions``); the cgroup driver
  ``cgroupfs`` or ``systemd`` on every line.

:func:`check_daemon` follows what the daemon checks next, before it serves (``NewDaemon``:
``verifyDaemonSettings`` and ``setupDefaultLogConfig``): the containerd namespaces, ``bridge``
with ``bip``, ``icc: false`` without iptables, ``ip6tables`` without ``experimental`` (before 27),
the cgroup driver, a ``cgroup-parent`` slice for the systemd driver, and the options of the
default log driver (json-file and local).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from regtui.config._source import go_parse_bool
from regtui.runtimes.docker.keys import REMOVED_IN
from regtui.runtimes.docker.model import DaemonConfig, invalid, shown

__all__ = ["check_values", "check_daemon", "log_levels"]

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
    _deprecated(cfg, "graph", lambda v: bool(v),
                'the "graph" config file option is deprecated; use "data-root" instead', "data-root")
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
    _deprecated(cfg, "api-cors-header", lambda v: bool(v),
                'DEPRECATED: The "api-cors-header" config parameter and the dockerd "--api-cors-header" option have '
                "been removed; use a reverse proxy if you need CORS headers")
    _deprecated(cfg, "oom-score-adjust", lambda v: v != 0,
                'DEPRECATED: The "oom-score-adjust" config parameter and the dockerd "--oom-score-adjust" options '
                "have been removed.")
    _ipc_mode(cfg)
    _cgroupns_mode(cfg)
    if _at_least(cfg, 28):
        _exec_opts(cfg)
    _label_conflicts(cfg)
    if not _at_least(cfg, 23):
        _log_level(cfg)
    for key in ("cluster-advertise", "cluster-store-opts", "cluster-store"):
        if _deprecated(cfg, key, lambda v: bool(v),
                       "Host-discovery and overlay networks with external k/v stores are deprecated. The "
                       "'cluster-advertise', 'cluster-store', and 'cluster-store-opt' options have been removed"):
            break


def _deprecated(cfg: DaemonConfig, key: str, set_: Any, message: str, instead: str | None = None) -> bool:
    """A removed option that the last release to define it refuses when set (later ones call it unknown)."""
    line = (REMOVED_IN[key][0] - 1, 0)  # the release line before the one that no longer knows the key
    if cfg.version is None or cfg.version[:1] != line[:1] or key not in cfg.flat:
        return False
    value = cfg.flat[key]
    try:
        if value is None or not set_(value):
            return False
    except TypeError:
        return False
    hint = f"{key} was removed in Engine {line[0]}" + (f": use {instead!r}" if instead else ": remove it")
    _fatal(cfg, key, value, message, hint)
    return True


def check_daemon(cfg: DaemonConfig) -> None:
    """The settings the daemon checks after loading its configuration (first problem only, as dockerd)."""
    before = len(cfg.fatal)
    for check in (_namespaces, _bridge, _iptables, _cgroup_driver, _cgroup_parent, _log_opts):
        check(cfg)
        if len(cfg.fatal) > before:
            return


def _bool(cfg: DaemonConfig, key: str, default: bool) -> bool:
    """A boolean setting from the file, else from the command line (strconv.ParseBool), else its default."""
    value = cfg.flat.get(key)
    if isinstance(value, bool):
        return value
    for flag in reversed(cfg.flags):
        parsed = go_parse_bool(flag.value) if flag.name == key else None
        if parsed is not None:
            return parsed
    return default


def _setting(cfg: DaemonConfig, key: str) -> tuple[str, str]:
    """A string setting and where it comes from (``file``, ``flag`` or ``""`` when unset)."""
    value = cfg.flat.get(key)
    if isinstance(value, str) and key in cfg.flat:
        return value, "file"
    for flag in reversed(cfg.flags):
        if flag.name == key:
            return flag.value, "flag"
    return "", ""


def _daemon_fatal(cfg: DaemonConfig, key: str, message: str, hint: str, suggested: Any = None) -> None:
    """A fatal setting: at the key's line when the file holds it, else at daemon.json as a whole."""
    if key in cfg.flat:
        _fatal(cfg, key, cfg.flat[key], message, hint, suggested=suggested)
        return
    cfg.fatal.append(message)
    cfg.findings.append(invalid(cfg, (), {}, message, hint, key=key, detail=key))


def _namespaces(cfg: DaemonConfig) -> None:
    ns = _setting(cfg, "containerd-namespace")[0] or "moby"
    plugins = next((f.value for f in reversed(cfg.flags) if f.name == "containerd-plugins-namespace"), "plugins.moby")
    if ns == plugins:
        _daemon_fatal(cfg, "containerd-namespace", "containers namespace and plugins namespace cannot be the same",
                      "containerd-namespace must differ from --containerd-plugins-namespace", suggested="moby")


def _bridge(cfg: DaemonConfig) -> None:
    iface, bip = _setting(cfg, "bridge")[0], _setting(cfg, "bip")[0]
    bip6 = _setting(cfg, "bip6")[0] if _at_least(cfg, 28) else ""
    for key, value, name in (("bip", bip, "--bip"), ("bip6", bip6, "--bip6")):
        if iface and value:
            _daemon_fatal(cfg, key, f"You specified -b & {name}, mutually exclusive options. Please specify only one",
                          f'{key} sets the address of docker0: remove it or remove "bridge" ({iface!r})')
            return


def _iptables(cfg: DaemonConfig) -> None:
    iptables, icc = _bool(cfg, "iptables", True), _bool(cfg, "icc", True)
    ip6tables = _bool(cfg, "ip6tables", _at_least(cfg, 27))
    if not icc and not iptables:
        _daemon_fatal(cfg, "icc", "You specified --iptables=false with --icc=false. ICC=false uses iptables to "
                      "function. Please set --icc or --iptables to true",
                      "icc: false needs iptables: remove icc or set iptables to true", suggested=True)
    elif not icc and _at_least(cfg, 28) and _bool(cfg, "ipv6", False) and not ip6tables:
        _daemon_fatal(cfg, "icc", "You specified --ip6tables=false with --icc=false. ICC=false uses ip6tables to "
                      "function. Please set --icc or --ip6tables to true",
                      "icc: false with ipv6 needs ip6tables", suggested=True)
    elif ip6tables and not _at_least(cfg, 27) and not _bool(cfg, "experimental", False):
        _daemon_fatal(cfg, "ip6tables", "ip6tables rules are only available if experimental features are enabled",
                      "ip6tables needs experimental: true on this Engine", suggested=False)


def _cgroup_driver_value(cfg: DaemonConfig) -> str:
    """native.cgroupdriver from exec-opts: the first entry before 28, the last from 28 on."""
    found = ""
    for _, raw in _strings(cfg, "exec-opts") or [(0, f.value) for f in cfg.flags if f.name == "exec-opt"]:
        key, sep, val = raw.partition("=")
        if sep and key.strip().lower() == "native.cgroupdriver":
            found = val.strip()
            if not _at_least(cfg, 28):
                return found
    return found


def _cgroup_driver(cfg: DaemonConfig) -> None:
    driver = _cgroup_driver_value(cfg)
    if driver in ("", "cgroupfs", "systemd"):
        return
    message = (f"native.cgroupdriver option {driver} is internally used and cannot be specified manually"
               if driver == "none" else f"native.cgroupdriver option {driver} not supported")
    _daemon_fatal(cfg, "exec-opts", message, 'the cgroup driver must be "cgroupfs" or "systemd"')


def _cgroup_parent(cfg: DaemonConfig) -> None:
    parent = _setting(cfg, "cgroup-parent")[0]
    if parent and _cgroup_driver_value(cfg) == "systemd" and (len(parent) <= 6 or not parent.endswith(".slice")):
        _daemon_fatal(cfg, "cgroup-parent", 'cgroup-parent for systemd cgroup should be a valid slice named as '
                      '"xxx.slice"', 'with the systemd cgroup driver cgroup-parent must name a slice ("docker.slice")',
                      suggested="docker.slice")


_LOG_OPTS = {"json-file": {"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
             "local": {"max-file", "max-size", "compress"}}
#: Options every log driver takes (logger.builtInLogOpts plus the dual-logging cache's).
_BUILTIN_LOG_OPTS = {"mode", "max-buffer-size", "cache-disabled", "cache-max-file", "cache-max-size", "cache-compress"}


def _log_opts(cfg: DaemonConfig) -> None:
    """``setupDefaultLogConfig``: only when log-opts is set; drivers other than json-file and local
    (and plugins) are not judged here."""
    opts = cfg.flat.get("log-opts")
    driver = _setting(cfg, "log-driver")[0] or "json-file"
    if not isinstance(opts, dict) or not opts or driver == "none":
        return
    mode = opts.get("mode") or ""
    prefix = "failed to set log opts: "
    if mode not in ("", "blocking", "non-blocking"):
        _fatal(cfg, "log-opts", mode, f"{prefix}logger: logging mode not supported: {mode}",
               'log-opts mode must be "blocking" or "non-blocking"', "mode", suggested="non-blocking")
        return
    if "max-buffer-size" in opts and mode != "non-blocking":
        _fatal(cfg, "log-opts", opts["max-buffer-size"],
               f"{prefix}logger: max-buffer-size option is only supported with 'mode=non-blocking'",
               'max-buffer-size needs "mode": "non-blocking"', "max-buffer-size")
        return
    disabled = opts.get("cache-disabled")
    if isinstance(disabled, str) and disabled and go_parse_bool(disabled) is None:
        _fatal(cfg, "log-opts", disabled, f"{prefix}invalid value for option cache-disabled: {disabled}",
               "cache-disabled must be true or false", "cache-disabled", suggested="false")
        return
    allowed = _LOG_OPTS.get(driver)
    if allowed is None:
        return
    for key in opts:
        if key not in allowed and key not in _BUILTIN_LOG_OPTS:
            message = (f"{prefix}unknown log opt '{key}' for json-file log driver" if driver == "json-file"
                       else f"{prefix}unknown log opt '{key}' for log driver {driver}")
            # Masked by the option's own name: a token or password under a misspelt key stays hidden.
            _fatal(cfg, "log-opts", shown(str(key), opts[key]), message, f"{driver} has no option {key!r}", key)
            return


def _exec_opts(cfg: DaemonConfig) -> None:
    """``parseExecOptions`` (28+): ``key=value`` pairs with a key the platform knows."""
    for i, raw in _strings(cfg, "exec-opts"):
        key, sep, value = raw.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key or not value:
            why = "must be formatted 'opt=value'"
        elif key == "isolation":
            why = "option 'isolation' is only supported on windows"
        elif key != "native.cgroupdriver":
            why = f"unknown option: '{key}'"
        else:
            continue
        _fatal(cfg, "exec-opts", raw, f"invalid exec-opt ({raw}): {why}", f"exec-opts[{i}] is no known option", i)
        return


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
