"""The daemon.json key table per Docker Engine version, and dockerd's validation of the keys:
unknown keys stop dockerd, flag names that are no JSON field are silently ignored, a value of the
wrong JSON type stops dockerd (SEMANTICS §1.1; moby ``daemon/config/config.go``
``getConflictFreeConfiguration``, ``Validate``)."""

from __future__ import annotations

import difflib
from typing import Any

from regtui.findings import MAX_PER_FILE, finding, fix, not_listed
from regtui.model import Finding
from regtui.runtimes.docker.model import RUNTIME, DaemonConfig, invalid, shown

__all__ = ["KNOWN_KEYS_20_10", "KNOWN_KEYS_CURRENT", "FLAG_ONLY_KEYS", "FLAT_OPTIONS", "OBJECT_FIELDS",
           "STRING_LISTS", "BOOLS", "known_keys", "effective_keys", "json_type", "validate"]

# -- the daemon.json key table (one place) -----------------------------------------------------
#
# Covers Docker Engine 20.10 to 29.x on Linux.
# - KNOWN_KEYS_20_10: every key dockerd 20.10.24 (Debian docker.io) accepts. Captured from that
#   binary: the flags of `dockerd --help` plus its hidden ones (--graph, --cluster-store,
#   --restart...), found by loading a daemon.json holding every candidate key; dockerd names the
#   unknown ones in its error.
# - KNOWN_KEYS_CURRENT: moby master (Engine 29): flag names from daemon/command/config.go,
#   config_unix.go, options.go, docker.go; named options (their plural names); and
#   skipValidateOptions from daemon/config/config.go.
# - REMOVED_IN: keys that 20.10 accepts and later engines do not (moby's flag definitions per
#   release branch).
# - FLAG_ONLY_KEYS: keys that pass validation (they are flag names) but are no JSON field, so
#   dockerd ignores them; the value is the key that works (None when no daemon.json key does).

KNOWN_KEYS_20_10 = frozenset("""
add-runtime allow-nondistributable-artifacts api-cors-header authorization-plugin authorization-plugins bip
bridge builder cgroup-parent cluster-advertise cluster-store cluster-store-opt cluster-store-opts config-file
containerd containerd-namespace containerd-plugins-namespace cpu-rt-period cpu-rt-runtime cri-containerd
data-root debug default-address-pool default-address-pools default-cgroupns-mode default-gateway
default-gateway-v6 default-ipc-mode default-runtime default-shm-size default-ulimit default-ulimits
deprecated-key-path dns dns-opt dns-opts dns-search exec-opt exec-opts exec-root experimental features
fixed-cidr fixed-cidr-v6 graph group help host host-gateway-ip hosts icc init init-path insecure-registries
insecure-registry ip ip-forward ip-masq ip6tables iptables ipv6 label labels live-restore log-driver
log-level log-opt log-opts max-concurrent-downloads max-concurrent-uploads max-download-attempts
metrics-addr mtu network-control-plane-mtu network-diagnostic-port no-new-privileges node-generic-resource
node-generic-resources oom-score-adjust pidfile raw-logs registry-mirror registry-mirrors restart rootless
runtimes seccomp-profile selinux-enabled shutdown-timeout storage-driver storage-opt storage-opts
swarm-default-advertise-addr tls tlscacert tlscert tlskey tlsverify userland-proxy userland-proxy-path
userns-remap version
""".split())

KNOWN_KEYS_CURRENT = frozenset("""
add-runtime allow-direct-routing allow-nondistributable-artifacts authorization-plugin authorization-plugins
bip bip6 bridge bridge-accept-fwmark builder cdi-spec-dir cdi-spec-dirs cgroup-parent config-file containerd
containerd-namespace containerd-plugins-namespace cpu-rt-period cpu-rt-runtime cri-containerd data-root debug
default-address-pool default-address-pools default-cgroupns-mode default-gateway default-gateway-v6
default-ipc-mode default-network-opt default-network-opts default-runtime default-shm-size default-ulimit
default-ulimits deprecated-key-path dns dns-opt dns-opts dns-search exec-opt exec-opts exec-root experimental
feature features firewall-backend fixed-cidr fixed-cidr-v6 group help host host-gateway-ip host-gateway-ips
hosts http-proxy https-proxy icc init init-path insecure-registries insecure-registry ip ip-forward
ip-forward-no-drop ip-masq ip6tables iptables ipv6 label labels live-restore log-driver log-format log-level
log-opt log-opts max-concurrent-downloads max-concurrent-uploads max-download-attempts metrics-addr mtu
network-control-plane-mtu network-diagnostic-port no-new-privileges no-proxy node-generic-resource
node-generic-resources nri-opts pidfile raw-logs registry-mirror registry-mirrors restart rootless runtimes
seccomp-profile selinux-enabled shutdown-timeout storage-driver storage-opt storage-opts
swarm-default-advertise-addr tls tlscacert tlscert tlskey tlsverify userland-proxy userland-proxy-path
userns-remap validate version
""".split())

#: Keys of KNOWN_KEYS_CURRENT that first appear in a later release branch than 23.0 (moby's flag
#: definitions per branch); dockerd before that calls them unknown.
_ADDED_IN = {"default-network-opt": (24, 0), "default-network-opts": (24, 0), "log-format": (25, 0),
             "cdi-spec-dir": (25, 0), "cdi-spec-dirs": (25, 0), "feature": (27, 0), "allow-direct-routing": (28, 0),
             "bip6": (28, 0), "host-gateway-ips": (28, 0), "ip-forward-no-drop": (28, 0),
             "bridge-accept-fwmark": (29, 0), "firewall-backend": (29, 0), "nri-opts": (29, 0)}
#: The first release branch whose dockerd no longer defines the flag (the key is then unknown); the
#: release before refuses a value of it at start-up (values.py ``_deprecated``).
REMOVED_IN = {"graph": (24, 0), "cluster-store": (24, 0), "cluster-advertise": (24, 0),
               "cluster-store-opt": (24, 0), "cluster-store-opts": (24, 0), "oom-score-adjust": (26, 0),
               "api-cors-header": (29, 0)}

FLAG_ONLY_KEYS: dict[str, str | None] = {
    "registry-mirror": "registry-mirrors", "insecure-registry": "insecure-registries",
    "storage-opt": "storage-opts", "authorization-plugin": "authorization-plugins", "exec-opt": "exec-opts",
    "label": "labels", "log-opt": "log-opts", "dns-opt": "dns-opts", "host": "hosts",
    "node-generic-resource": "node-generic-resources", "default-ulimit": "default-ulimits",
    "add-runtime": "runtimes", "default-address-pool": "default-address-pools", "cdi-spec-dir": "cdi-spec-dirs",
    "default-network-opt": "default-network-opts", "feature": "features", "cluster-store-opt": "cluster-store-opts",
    "http-proxy": "proxies.http-proxy", "https-proxy": "proxies.https-proxy", "no-proxy": "proxies.no-proxy",
    "containerd-plugins-namespace": None, "config-file": None, "validate": None, "version": None, "help": None,
    "restart": None, "deprecated-key-path": None,
}
#: Ignored only on engines that dropped the field but kept the key valid.
_FLAG_ONLY_SINCE = {"allow-nondistributable-artifacts": (28, 0)}

#: Keys whose object value is kept whole (not flattened) before validation.
FLAT_OPTIONS = frozenset({"cluster-store-opts", "default-network-opts", "log-opts", "runtimes", "default-ulimits",
                          "features", "builder"})
#: Keys whose nested object is a JSON field (flattened for validation, applied as an object).
OBJECT_FIELDS = {"proxies": ("http-proxy", "https-proxy", "no-proxy")}

#: daemon.json keys whose value is a list of strings.
STRING_LISTS = {"registry-mirrors", "insecure-registries", "labels", "dns-opts", "dns-search", "storage-opts",
                "exec-opts", "hosts", "authorization-plugins", "node-generic-resources", "cdi-spec-dirs", "dns",
                "host-gateway-ips", "allow-nondistributable-artifacts"}
_INTS = {"max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts", "mtu", "shutdown-timeout",
         "network-control-plane-mtu", "network-diagnostic-port", "cpu-rt-period", "cpu-rt-runtime", "oom-score-adjust"}
#: daemon.json keys whose value is a bool (also the command line's value-less flags).
BOOLS = {"debug", "experimental", "live-restore", "iptables", "ip6tables", "ipv6", "icc", "ip-forward",
         "ip-forward-no-drop", "ip-masq", "userland-proxy", "init", "no-new-privileges", "selinux-enabled",
         "raw-logs", "rootless", "cri-containerd", "tls", "tlsverify", "allow-direct-routing"}
_STRINGS = {"storage-driver", "data-root", "exec-root", "pidfile", "log-level", "log-driver", "log-format", "group",
            "bip", "bip6", "bridge", "fixed-cidr", "fixed-cidr-v6", "userns-remap", "cgroup-parent",
            "default-runtime", "containerd", "containerd-namespace", "seccomp-profile", "init-path",
            "default-ipc-mode", "default-cgroupns-mode", "metrics-addr", "swarm-default-advertise-addr",
            "tlscacert", "tlscert", "tlskey", "userland-proxy-path", "firewall-backend", "bridge-accept-fwmark",
            "default-gateway", "default-gateway-v6", "ip", "graph", "cluster-store", "cluster-advertise",
            "api-cors-header", "http-proxy", "https-proxy", "no-proxy", "host-gateway-ip"}
_STRING_MAPS = {"log-opts", "cluster-store-opts"}
_BOOL_MAPS = {"features"}
_INT64S = {"cpu-rt-period", "cpu-rt-runtime"}
_GO_TYPES = {"list": "[]string", "int": "int", "bool": "bool", "string": "string", "smap": "map[string]string",
             "bmap": "map[string]bool"}

#: Keys dockerd re-reads on SIGHUP (``systemctl reload docker``).
_RELOADABLE = {"registry-mirrors", "insecure-registries", "max-concurrent-downloads", "max-concurrent-uploads",
               "max-download-attempts", "labels", "debug", "live-restore", "shutdown-timeout", "features"}
#: The first Engine with ``--validate`` (and the current key table).
_VALIDATE_FLAG = (23, 0)


def known_keys(version: tuple[int, int] | None) -> frozenset[str]:
    """Keys dockerd ``version`` accepts in daemon.json (``None``: the current Engine)."""
    if version is not None and version < _VALIDATE_FLAG:
        return KNOWN_KEYS_20_10
    removed = {k for k, gone in REMOVED_IN.items() if version is not None and version < gone}
    later = {k for k, since in _ADDED_IN.items() if version is not None and version < since}
    return (KNOWN_KEYS_CURRENT - later) | removed


def effective_keys(version: tuple[int, int] | None) -> frozenset[str]:
    """Keys that take effect (JSON fields) on dockerd ``version``."""
    ignored = set(FLAG_ONLY_KEYS)
    ignored |= {k for k, since in _FLAG_ONLY_SINCE.items() if version is None or version >= since}
    return frozenset(known_keys(version) - ignored) | frozenset(OBJECT_FIELDS)


def json_type(value: Any) -> str:
    """The JSON type name Go's decoder uses in its errors (``string``, ``number``, ``array``...)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _restart_for(key: str) -> str:
    return "reload docker" if key in _RELOADABLE else "restart docker"


#: Unknown keys quoted from dockerd's refusal message.
_QUOTED_KEYS = 10


def validate(cfg: DaemonConfig) -> None:
    """Unknown keys, valid-but-ignored keys and wrong types in the flattened file, as dockerd judges them."""
    known = known_keys(cfg.version)
    unknown = [k for k in cfg.flat if k not in known]
    if unknown:
        # dockerd's message names every key; quoted whole in each finding it would grow as the square.
        listed = ", ".join(unknown[:_QUOTED_KEYS]) + (f", ... ({len(unknown) - _QUOTED_KEYS} more)"
                                                      if len(unknown) > _QUOTED_KEYS else "")
        message = "the following directives don't match any configuration option: " + listed
        cfg.fatal.append(message)
        for key in unknown[:MAX_PER_FILE]:
            cfg.findings.append(_unknown_key(cfg, key, message))
        if len(unknown) > MAX_PER_FILE:
            cfg.findings.append(not_listed(cfg.path, "config.unknown-key", len(unknown) - MAX_PER_FILE,
                                           runtime=RUNTIME))
    _ignored_keys(cfg, known)
    _types(cfg)


def _suggest(key: str, version: tuple[int, int] | None) -> tuple[str | None, str]:
    """The key the user most likely meant, and why."""
    candidates = sorted(effective_keys(version))
    stripped = key.strip()
    for candidate, why in ((stripped, "stray whitespace in the key"), (stripped.lower(), "keys are lower case"),
                           (stripped.lower().replace("_", "-"), "keys use dashes, not underscores")):
        if candidate != key and candidate in candidates:
            return candidate, why
        if candidate in FLAG_ONLY_KEYS and FLAG_ONLY_KEYS[candidate]:
            return FLAG_ONLY_KEYS[candidate], why
    close = difflib.get_close_matches(stripped.lower(), candidates, n=1, cutoff=0.75)
    if close:
        return close[0], "closest valid key"
    return None, ""

def _unknown_key(cfg: DaemonConfig, key: str, message: str) -> Finding:
    assert cfg.parsed is not None
    suggestion, why = _suggest(key, cfg.version)
    removed = REMOVED_IN.get(key)
    note = ""
    if removed and cfg.version is not None and cfg.version >= removed:
        note = f" {key!r} was removed in Engine {removed[0]}.{removed[1]}."
    elif key in KNOWN_KEYS_CURRENT and cfg.version is not None:
        note = f" {key!r} needs a newer Engine than {cfg.version[0]}.{cfg.version[1]}."
    parent = cfg.flat_lines.get(key, (key,))
    nested = f" (from the nested object {parent[0]!r}, which dockerd flattens)" if len(parent) > 1 else ""
    if suggestion and suggestion.startswith("proxies."):
        summary = f"move {key!r} into \"proxies\""
    elif suggestion:
        summary = f"rename {key!r} to {suggestion!r} ({why})"
    else:
        summary = f"remove {key!r} from {cfg.path}"
    return finding(
        "config.unknown-key", cfg.path,
        f"{cfg.where(key)}: {key!r} is not a dockerd option: dockerd will not start",
        f"dockerd accepts only its own option names in daemon.json and refuses to start on any other{nested}: "
        f"'{message}'.{note} Nothing in this file applies until it is fixed.",
        evidence=cfg.parsed.evidence(*parent, key=key, value=shown(key, cfg.flat.get(key)), error=message,
                                     suggestion=suggestion),
        runtime=RUNTIME,
        fix=fix("config.unknown-key", cfg.path, summary, files=[cfg.path], restart="restart docker", detail=key,
                params={"key": key, "new_key": suggestion, "path": list(parent), "action": "rename" if suggestion else "remove"}),
    )


def _ignored_keys(cfg: DaemonConfig, known: frozenset[str]) -> None:
    """Valid-but-ignored keys: flag names that are no JSON field, and nested objects no field holds."""
    assert cfg.parsed is not None
    ignored = dict(FLAG_ONLY_KEYS)
    for k, since in _FLAG_ONLY_SINCE.items():
        if cfg.version is None or cfg.version >= since:
            ignored[k] = None
    for key, value in cfg.data.items():
        if isinstance(value, dict) and key not in FLAT_OPTIONS and key not in OBJECT_FIELDS:
            if all(sub in known for sub in value):
                cfg.findings.append(_ignored_parent(cfg, key, value))
            continue
        if key in ignored and key in known:
            cfg.findings.append(_ignored_key(cfg, key, value, ignored[key]))


def _ignored_key(cfg: DaemonConfig, key: str, value: Any, new_key: str | None) -> Finding:
    assert cfg.parsed is not None
    if new_key:
        summary = f"move {key!r} to {new_key!r}" + (" (merged with the existing list)" if new_key in cfg.data else "")
        effect = f"The setting that works is {new_key!r}."
    else:
        summary = f"remove {key!r} (no daemon.json key does this; use the command line)"
        effect = "No daemon.json key does this."
    what = ""
    if key == "registry-mirror":
        what = " Docker Hub pulls go straight to registry-1.docker.io, as if no mirror were configured."
    elif key == "insecure-registry":
        what = (" The registry stays secure: TLS is verified and there is no plain-HTTP fallback "
                "('http: server gave HTTP response to HTTPS client').")
    return finding(
        "config.ignored-key", cfg.path,
        f"{cfg.where(key)}: {key!r} is accepted but ignored by dockerd",
        f"{key!r} is a command-line flag name, so dockerd's validation lets it pass, but no configuration field "
        f"reads it: the value has no effect and nothing is logged.{what} {effect} `docker info` shows what "
        "dockerd really uses.",
        evidence=cfg.parsed.evidence(key, key=key, value=shown(key, value), works=new_key),
        runtime=RUNTIME,
        fix=fix("config.ignored-key", cfg.path, summary, files=[cfg.path], detail=key,
                restart=_restart_for(new_key or key),
                kind=None if new_key else "manual",
                params={"key": key, "new_key": new_key, "merge": isinstance(value, list) or bool(
                    new_key and new_key in STRING_LISTS), "value": shown(key, value)}),
    )


def _ignored_parent(cfg: DaemonConfig, key: str, value: dict[str, Any]) -> Finding:
    assert cfg.parsed is not None
    subs = ", ".join(repr(k) for k in value)
    return finding(
        "config.ignored-key", cfg.path,
        f"{cfg.where(key)}: the object {key!r} is accepted but ignored by dockerd",
        f"dockerd flattens nested objects before validating, so {subs} pass as option names; but no "
        f"configuration field is called {key!r}, so none of these values is applied.",
        evidence=cfg.parsed.evidence(key, key=key, value=shown(key, value)),
        runtime=RUNTIME,
        fix=fix("config.ignored-key", cfg.path, f"move {subs} to the top level and remove {key!r}", files=[cfg.path],
                detail=key, restart="restart docker",
                params={"key": key, "new_key": None, "action": "unnest", "children": list(value)}),
    )


def _kind_of(key: str) -> str | None:
    if key in STRING_LISTS:
        return "list"
    if key in _INTS:
        return "int"
    if key in BOOLS:
        return "bool"
    if key in _STRINGS:
        return "string"
    if key in _STRING_MAPS:
        return "smap"
    if key in _BOOL_MAPS:
        return "bmap"
    return None


def _type_ok(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "list":
        return isinstance(value, list) and all(isinstance(v, str) or v is None for v in value)
    if kind == "int":
        return type(value) is int
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "smap":
        return isinstance(value, dict) and all(isinstance(v, str) or v is None for v in value.values())
    if kind == "bmap":
        return isinstance(value, dict) and all(isinstance(v, bool) or v is None for v in value.values())
    return True


def _types(cfg: DaemonConfig) -> None:
    """Wrong JSON types stop dockerd at ``json.Unmarshal``."""
    effective = effective_keys(cfg.version)
    for key, value in cfg.flat.items():
        kind = _kind_of(key)
        keypath = cfg.flat_lines.get(key, (key,))
        applied = (len(keypath) == 1 and key in effective) or (len(keypath) == 2 and keypath[0] in OBJECT_FIELDS)
        if key == "default-ulimits" and applied:
            _ulimits(cfg, value)
            continue
        if not kind or not applied:
            continue
        if _type_ok(kind, value):
            continue
        bad = value
        if isinstance(value, list):
            bad = next((v for v in value if not isinstance(v, str)), value)
        elif isinstance(value, dict):
            bad = next((v for v in value.values() if not _type_ok("bool" if kind == "bmap" else "string", v)), value)
        go_type = "int64" if key in _INT64S else _GO_TYPES[kind]
        message = f"json: cannot unmarshal {_go_value(bad, go_type)} into Go struct field Config.{key} of type {go_type}"
        cfg.fatal.append(message)
        hint = {"list": 'a list of strings: ["..."]', "int": "a whole number without quotes",
                "bool": "true or false without quotes", "string": "a string in quotes",
                "smap": "an object of strings", "bmap": "an object of true/false"}[kind]
        cfg.findings.append(invalid(cfg, cfg.flat_lines.get(key, (key,)), value, message, f"{key} must be {hint}",
                                    key=key, suggested=_coerce(kind, value)))


def _go_value(value: Any, go_type: str) -> str:
    """How Go's decoder names a value it cannot store: its JSON type, with the literal for a
    number that is no integer (``number 2.5``)."""
    if go_type.startswith("int") and isinstance(value, float):
        return f"number {value!r}"
    return json_type(value)


#: The fields of ``units.Ulimit`` (Go matches JSON names case-insensitively).
_ULIMIT_FIELDS = {"name": ("Name", "string"), "hard": ("Hard", "int64"), "soft": ("Soft", "int64")}


def _ulimits(cfg: DaemonConfig, value: Any) -> None:
    """``default-ulimits``: an object of ``{"Name": ..., "Hard": n, "Soft": n}`` objects."""
    keypath = cfg.flat_lines.get("default-ulimits", ("default-ulimits",))
    hint = 'default-ulimits must map a name to {"Name": "nofile", "Hard": 64000, "Soft": 64000}'
    if value is None:
        return
    if not isinstance(value, dict):
        message = (f"json: cannot unmarshal {json_type(value)} into Go struct field Config.default-ulimits of type "
                   "map[string]*units.Ulimit")
        cfg.fatal.append(message)
        cfg.findings.append(invalid(cfg, keypath, value, message, hint, key="default-ulimits"))
        return
    for name, entry in value.items():
        message = ""
        if entry is not None and not isinstance(entry, dict):
            message = (f"json: cannot unmarshal {json_type(entry)} into Go struct field Config.default-ulimits of "
                       "type units.Ulimit")
        elif isinstance(entry, dict):
            for field, item in entry.items():
                go_field, go_type = _ULIMIT_FIELDS.get(str(field).lower(), ("", ""))
                ok = item is None or (isinstance(item, str) if go_type == "string" else type(item) is int)
                if go_field and not ok:
                    message = (f"json: cannot unmarshal {_go_value(item, go_type)} into Go struct field "
                               f"Ulimit.default-ulimits.{go_field} of type {go_type}")
                    break
        if message:
            cfg.fatal.append(message)
            cfg.findings.append(invalid(cfg, keypath + (name,), entry, message, hint, key="default-ulimits",
                                        detail=f"default-ulimits.{name}"))
            return


def _coerce(kind: str, value: Any) -> Any:
    """The value in the type dockerd wants, when that is obvious (``"3"`` -> ``3``, ``"x"`` -> ``["x"]``)."""
    if kind == "list" and isinstance(value, str):
        return [value]
    if kind == "int" and isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "bool" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None
