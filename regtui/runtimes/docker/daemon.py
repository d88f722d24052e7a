"""Docker Engine (dockerd): daemon.json validated exactly as dockerd validates it, the effective
command line from systemd, the daemon's proxy environment, and which image store it uses.

Rules (SEMANTICS §1.1, §1.2, §1.5; moby ``daemon/config/config.go getConflictFreeConfiguration``,
``findConfigurationConflicts``, ``Validate``; ``daemon/pkg/registry/config.go``;
``daemon/image_store_choice.go``):

- the file is ``/etc/docker/daemon.json`` or ``--config-file`` from the effective ExecStart; UTF-8
  with or without BOM or UTF-16 with BOM; an empty file is fine; a missing default file is fine,
  a missing ``--config-file`` is fatal;
- nested objects are flattened one level before validation, except the ``flatOptions``
  (``features``, ``log-opts``, ``runtimes``...); a key is *valid* when it equals a flag name or a
  named option; any other key stops dockerd: ``the following directives don't match any
  configuration option``;
- a valid key that is no JSON field (``registry-mirror``, ``insecure-registry``, ``label``,
  top-level ``http-proxy``...) passes and is silently ignored;
- the same directive as a flag (systemd ExecStart) and in the file stops dockerd;
- a value of the wrong JSON type stops dockerd (``json: cannot unmarshal ...``);
- ``registry-mirrors``: scheme http/https required, no query/fragment/userinfo, a path only since
  Engine 25; normalised with a trailing ``/``, duplicates dropped;
- ``insecure-registries``: ``http(s)://`` stripped with a warning, other ``://`` fatal, leading or
  trailing ``-`` fatal, CIDR or exact ``host[:port]``; 127.0.0.0/8 and ::1/128 always added;
  docker.io always secure;
- ``proxies`` overwrite the daemon's own proxy variables (both cases) at start.
"""

from __future__ import annotations

import difflib
import ipaddress
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import urlsplit

from regtui import redact
from regtui.config import systemd
from regtui.config._source import Parsed, read_json
from regtui.config.certsd import misnamed_dirs as certsd_misnamed
from regtui.runtimes.docker.cliconfig import CliConfig, load_cli_config
from regtui.findings import MAX_PER_FILE, finding, fix, not_listed
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.net.proxy import ProxyEnv, from_environ
from regtui.options import CheckOptions
from regtui.runtimes.view import RuntimeView

__all__ = [
    "DAEMON_JSON",
    "CERTS_DIR",
    "CONTAINERD_CERTS_DIR",
    "KNOWN_KEYS_20_10",
    "KNOWN_KEYS_CURRENT",
    "FLAG_ONLY_KEYS",
    "STRING_LISTS",
    "Mirror",
    "Flag",
    "Insecurity",
    "DaemonConfig",
    "detect",
    "load",
    "load_daemon_config",
    "known_keys",
    "effective_keys",
    "parse_exec_start",
    "validate_mirror",
    "engine_version",
    "proxy_env",
    "decide_store",
    "misnamed",
]

DAEMON_JSON = "/etc/docker/daemon.json"
CERTS_DIR = "/etc/docker/certs.d"
CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d"
DEFAULT_DATA_ROOT = "/var/lib/docker"
_RUNTIME = "docker"
_UNIT = "docker.service"

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
# - _REMOVED_IN: keys that 20.10 accepts and later engines do not (docs "Deprecated features").
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

_REMOVED_IN = {"graph": (23, 0), "cluster-store": (23, 0), "cluster-advertise": (23, 0),
               "cluster-store-opt": (23, 0), "cluster-store-opts": (23, 0), "oom-score-adjust": (25, 0),
               "api-cors-header": (28, 0)}

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
_OBJECT_FIELDS = {"proxies": ("http-proxy", "https-proxy", "no-proxy")}

#: daemon.json keys whose value is a list of strings.
STRING_LISTS = {"registry-mirrors", "insecure-registries", "labels", "dns-opts", "dns-search", "storage-opts",
                "exec-opts", "hosts", "authorization-plugins", "node-generic-resources", "cdi-spec-dirs", "dns",
                "host-gateway-ips", "allow-nondistributable-artifacts"}
_INTS = {"max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts", "mtu", "shutdown-timeout",
         "network-control-plane-mtu", "network-diagnostic-port", "cpu-rt-period", "cpu-rt-runtime", "oom-score-adjust"}
_BOOLS = {"debug", "experimental", "live-restore", "iptables", "ip6tables", "ipv6", "icc", "ip-forward",
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
_GO_TYPES = {"list": "[]string", "int": "int", "bool": "bool", "string": "string", "smap": "map[string]string",
             "bmap": "map[string]bool"}

#: Command-line shorthands of dockerd.
_SHORTHANDS = {"H": "host", "D": "debug", "p": "pidfile", "l": "log-level", "G": "group", "s": "storage-driver",
               "b": "bridge", "v": "version", "r": "restart", "g": "graph"}
#: Flags that take no value (``--flag`` or ``--flag=false``).
_BOOL_FLAGS = _BOOLS | {"validate", "version", "help", "restart"}
#: Flags whose conflict name is their named option (``--insecure-registry`` conflicts with ``insecure-registries``).
_NAMED_OPTION = {k: v for k, v in FLAG_ONLY_KEYS.items()
                 if v and not v.startswith("proxies.") and k not in ("cluster-store-opt",)}
_NAMED_OPTION.update({"dns": "dns", "host-gateway-ip": "host-gateway-ips"})
#: Named options dockerd merges from flag and file instead of calling a conflict.
_SKIP_DUPLICATES = {"runtimes"}

#: Keys dockerd re-reads on SIGHUP (``systemctl reload docker``).
_RELOADABLE = {"registry-mirrors", "insecure-registries", "max-concurrent-downloads", "max-concurrent-uploads",
               "max-download-attempts", "labels", "debug", "live-restore", "shutdown-timeout", "features"}
#: Graph drivers whose directory under the data root shows a graphdriver store was used.
_GRAPHDRIVERS = ("overlay2", "fuse-overlayfs", "btrfs", "zfs", "vfs", "aufs", "devicemapper", "overlay")
_DOCKER_PACKAGES = ("docker-ce", "docker.io", "moby-engine", "docker-engine", "docker")
_FRESH_CONTAINERD_STORE = (29, 0)
_SNAPSHOTTER_FEATURE = (24, 0)
_MIRROR_PATH = (25, 0)
_VALIDATE_FLAG = (23, 0)


def known_keys(version: tuple[int, int] | None) -> frozenset[str]:
    """Keys dockerd ``version`` accepts in daemon.json (``None``: the current Engine)."""
    if version is not None and version < _VALIDATE_FLAG:
        return KNOWN_KEYS_20_10
    removed = {k for k, gone in _REMOVED_IN.items() if version is not None and version < gone}
    return KNOWN_KEYS_CURRENT | removed


def effective_keys(version: tuple[int, int] | None) -> frozenset[str]:
    """Keys that take effect (JSON fields) on dockerd ``version``."""
    ignored = set(FLAG_ONLY_KEYS)
    ignored |= {k for k, since in _FLAG_ONLY_SINCE.items() if version is None or version >= since}
    return frozenset(known_keys(version) - ignored) | frozenset(_OBJECT_FIELDS)


# -- data ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mirror:
    """One ``registry-mirrors`` entry as dockerd normalises it."""

    url: str
    """Normalised URL with a trailing ``/`` (as ``docker info`` shows it)."""
    host: str
    """``host[:port]``."""
    scheme: str
    source: str
    """``path:line`` of the entry, or the ExecStart that set it."""
    raw: str


@dataclass(frozen=True)
class Insecurity:
    """dockerd's secure/insecure decision for one registry host."""

    insecure: bool
    why: str
    """In words, with the entry and its source."""
    source: str = ""
    """``path:line`` of the insecure-registries entry, or ``default (...)``; empty when secure."""
    caveat: str = ""
    """What offline matching cannot know (a CIDR match that needs DNS)."""


@dataclass(frozen=True)
class Flag:
    """One option on dockerd's command line."""

    name: str
    """Long name, without dashes."""
    value: str
    written: str
    """As written (``-H``, ``--insecure-registry``)."""
    source: str
    """``path:line`` of the ExecStart (or of the variable it came from)."""


@dataclass
class DaemonConfig:
    """dockerd's configuration as dockerd would load it."""

    path: str = DAEMON_JSON
    path_source: str = "default"
    parsed: Parsed | None = None
    data: dict[str, Any] = field(default_factory=dict)
    """The file's top-level object (empty when missing or broken)."""
    flat: dict[str, Any] = field(default_factory=dict)
    """Keys after dockerd's one-level flattening."""
    flat_lines: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Flattened key -> key path in the file (for lines)."""
    fatal: list[str] = field(default_factory=list)
    """Errors that keep dockerd from starting, in dockerd's words."""
    version: tuple[int, int] | None = None
    version_source: str = ""
    mirrors: list[Mirror] = field(default_factory=list)
    insecure_hosts: dict[str, str] = field(default_factory=dict)
    """Exact ``host[:port]`` keys -> source."""
    insecure_cidrs: list[tuple[Any, str]] = field(default_factory=list)
    """(network, source); the always-present loopback ranges have source ``""``."""
    flags: list[Flag] = field(default_factory=list)
    unit: systemd.UnitConfig | None = None
    data_root: str = DEFAULT_DATA_ROOT
    store: str = "classic"
    """``classic`` (graphdriver) or ``containerd`` (containerd image store)."""
    store_reason: str = ""
    findings: list[Finding] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    etc_hosts: dict[str, list[str]] = field(default_factory=dict)
    """Names in the root's /etc/hosts -> addresses (for insecure CIDR matches)."""

    def where(self, key: str, *more: Any) -> str:
        """``path:line`` of a flattened key."""
        if self.parsed is None:
            return self.path
        return self.parsed.where(*self.flat_lines.get(key, (key,)), *more)

    def line(self, key: str, *more: Any) -> int | None:
        """Line of a flattened key."""
        if self.parsed is None:
            return None
        return self.parsed.line(*self.flat_lines.get(key, (key,)), *more)

    def value(self, key: str, default: Any = None) -> Any:
        """Effective value of ``key`` from the file, else from the command line, else ``default``."""
        if key in self.flat and self.flat[key] is not None:
            return self.flat[key]
        for f in self.flags:
            if f.name == key:
                return f.value
        return default

    def insecure_reason(self, hostport: str) -> "Insecurity":
        """Whether dockerd treats a registry ``host[:port]`` as insecure (``isSecureIndex``), and why.

        Exact entries first (docker.io is always secure); then CIDRs, which dockerd matches by
        resolving the name: regtui matches IP literals, ``localhost`` and names in the root's
        /etc/hosts, and says when a DNS answer could change the outcome.
        """
        name = "docker.io" if hostport == "index.docker.io" else hostport
        if name == "docker.io":
            return Insecurity(False, "docker.io is always secure")
        if name in self.insecure_hosts:
            src = self.insecure_hosts[name]
            return Insecurity(True, f"insecure-registries: {name!r} ({src})", src)
        host = _split_host(name)
        addresses, how = self._addresses(host)
        for addr in addresses:
            for net, src in self.insecure_cidrs:
                if addr.version == net.version and addr in net:
                    if src:
                        return Insecurity(True, f"insecure-registries: {net} ({src}){how}", src)
                    return Insecurity(True, f"insecure-registries: {net} is always insecure{how}",
                                      f"default ({net} is always insecure)")
        user_cidrs = [str(n) for n, s in self.insecure_cidrs if s]
        if addresses:
            return Insecurity(False, "not listed")
        if user_cidrs:
            return Insecurity(False, "not listed", caveat=(
                f"CIDR match needs resolution: dockerd resolves {host} and treats it as insecure if an address "
                f"falls in {', '.join(user_cidrs)}"))
        return Insecurity(False, "not listed", caveat=(
            f"dockerd treats {host} as insecure if it resolves into 127.0.0.0/8 or ::1 (always-insecure ranges)"))

    def _addresses(self, host: str) -> tuple[list[Any], str]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))], ""
        except ValueError:
            pass
        if host == "localhost":
            return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")], " (localhost resolves to 127.0.0.1)"
        found = self.etc_hosts.get(host.lower())
        if found:
            addrs = []
            for a in found:
                try:
                    addrs.append(ipaddress.ip_address(a))
                except ValueError:
                    continue
            return addrs, f" ({host} is {', '.join(found)} in /etc/hosts)"
        return [], ""


def _split_host(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1:hostport.find("]")] if "]" in hostport else hostport
    if hostport.count(":") == 1:
        return hostport.split(":")[0]
    return hostport


# -- detection -----------------------------------------------------------------------------------

def detect(host: Host) -> list[str]:
    """Evidence that dockerd is installed or configured under the root."""
    evidence: list[str] = []
    if host.exists(DAEMON_JSON):
        evidence.append(DAEMON_JSON)
    elif host.is_dir("/etc/docker"):
        evidence.append("/etc/docker")
    binary = host.which("dockerd")
    if binary:
        evidence.append(binary)
    for d in systemd.UNIT_DIRS:
        unit = posixpath.join(d, _UNIT)
        if host.is_file(unit):
            evidence.append(unit)
            break
    return evidence


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


# -- command line --------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _expand(argv: list[str], env: dict[str, str], env_sources: dict[str, str], default: str) -> list[tuple[str, str]]:
    """systemd's ExecStart expansion: ``$VAR`` alone splits into words, ``${VAR}`` stays one word."""
    out: list[tuple[str, str]] = []
    for word in argv:
        m = re.fullmatch(r"\$(\w+)", word)
        if m:
            name = m.group(1)
            out += [(w, env_sources.get(name, default)) for w in env.get(name, "").split()]
            continue
        source = default
        for v in _VAR.finditer(word):
            source = env_sources.get(v.group(1) or v.group(2), default)
        out.append((_VAR.sub(lambda v: env.get(v.group(1) or v.group(2), ""), word), source))
    return out


def parse_exec_start(argv: list[str], source: str, env: dict[str, str] | None = None,
                     env_sources: dict[str, str] | None = None) -> list[Flag]:
    """dockerd's options from an ExecStart argv (``argv[0]`` is the binary)."""
    words = _expand(argv[1:], env or {}, env_sources or {}, source)
    flags: list[Flag] = []
    i = 0
    while i < len(words):
        word, src = words[i]
        i += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        written, _, inline = word.partition("=")
        has_inline = "=" in word
        if written.startswith("--"):
            name = written[2:]
        else:
            # pflag shorthands: "-Dl debug" is -D then -l debug; "-Hfd://" is -H fd://.
            letters = written[1:]
            while len(letters) > 1 and _SHORTHANDS.get(letters[0]) in _BOOL_FLAGS:
                flags.append(Flag(_SHORTHANDS[letters[0]], "true", "-" + letters[0], src))
                letters = letters[1:]
            written = "-" + letters[0] if letters else written
            name = _SHORTHANDS.get(letters[:1], letters)
            if not has_inline and len(letters) > 1:
                inline, has_inline = letters[1:], True
        if name in _BOOL_FLAGS:
            flags.append(Flag(name, inline if has_inline else "true", written, src))
            continue
        if has_inline:
            value = inline
        elif i < len(words):
            value = words[i][0]
            i += 1
        else:
            value = ""
        flags.append(Flag(name, value, written, src))
    return flags


# -- loading -------------------------------------------------------------------------------------

def load_daemon_config(host: Host, options: CheckOptions | None = None) -> DaemonConfig:
    """daemon.json, the docker.service command line and environment, and the image store."""
    cfg = DaemonConfig()
    cfg.version, cfg.version_source = engine_version(host, options)
    unit = systemd.load_unit(host, _UNIT, _RUNTIME)
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
        _validate(cfg)
    _conflicts(cfg)
    _registry_settings(cfg)
    cfg.etc_hosts = _etc_hosts(host)
    cfg.data_root = str(cfg.value("data-root") or cfg.value("graph") or DEFAULT_DATA_ROOT)
    return cfg


def _read_file(host: Host, cfg: DaemonConfig, required: bool) -> None:
    parsed = read_json(host, cfg.path, _RUNTIME,
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
                      "line": _line_of(cfg.path_source), "value": cfg.path, "error": message},
            runtime=_RUNTIME,
            fix=fix("config.invalid-value", cfg.path, f"create {cfg.path} (\"{{}}\" is enough)", files=[cfg.path],
                    restart="restart docker", params={"action": "create", "path": cfg.path, "content": "{}\n"}),
        ))
    if parsed.ok and not isinstance(parsed.data, dict):
        message = f"json: cannot unmarshal {_json_type(parsed.data)} into Go value of type map[string]interface {{}}"
        cfg.fatal.append(message)
        cfg.findings.append(_invalid(cfg, (), parsed.data, message, "the file must be one JSON object: { ... }"))
    elif parsed.ok:
        cfg.data = parsed.data
    cfg.sources.append(parsed.source(_RUNTIME, "daemon.json", detail=parsed.error or cfg.path_source,
                                     values=redact.value(dict(cfg.data))))


def _line_of(where: str) -> int | None:
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _flatten(cfg: DaemonConfig) -> None:
    """dockerd's ``configValuesSet``: one level of nested objects becomes top-level keys."""
    for key, value in cfg.data.items():
        if isinstance(value, dict) and key not in FLAT_OPTIONS:
            for sub, sub_value in value.items():
                cfg.flat[sub] = sub_value
                cfg.flat_lines[sub] = (key, sub)
            continue
        cfg.flat[key] = value
        cfg.flat_lines[key] = (key,)


def _restart_for(key: str) -> str:
    return "reload docker" if key in _RELOADABLE else "restart docker"


#: Unknown keys quoted from dockerd's refusal message.
_QUOTED_KEYS = 10


def _validate(cfg: DaemonConfig) -> None:
    _flatten(cfg)
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
                                           runtime=_RUNTIME))
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
    removed = _REMOVED_IN.get(key)
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
        evidence=cfg.parsed.evidence(*parent, key=key, value=_shown(key, cfg.flat.get(key)), error=message,
                                     suggestion=suggestion),
        runtime=_RUNTIME,
        fix=fix("config.unknown-key", cfg.path, summary, files=[cfg.path], restart="restart docker", detail=key,
                params={"key": key, "new_key": suggestion, "path": list(parent), "action": "rename" if suggestion else "remove"}),
    )


def _shown(key: str, value: Any) -> Any:
    """A value for evidence: secrets and proxy credentials masked."""
    if isinstance(value, str) and "proxy" in key:
        return redact.url(value)
    return redact.value(value, key)


def _ignored_keys(cfg: DaemonConfig, known: frozenset[str]) -> None:
    """Valid-but-ignored keys: flag names that are no JSON field, and nested objects no field holds."""
    assert cfg.parsed is not None
    ignored = dict(FLAG_ONLY_KEYS)
    for k, since in _FLAG_ONLY_SINCE.items():
        if cfg.version is None or cfg.version >= since:
            ignored[k] = None
    for key, value in cfg.data.items():
        if isinstance(value, dict) and key not in FLAT_OPTIONS and key not in _OBJECT_FIELDS:
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
        evidence=cfg.parsed.evidence(key, key=key, value=_shown(key, value), works=new_key),
        runtime=_RUNTIME,
        fix=fix("config.ignored-key", cfg.path, summary, files=[cfg.path], detail=key,
                restart=_restart_for(new_key or key),
                kind=None if new_key else "manual",
                params={"key": key, "new_key": new_key, "merge": isinstance(value, list) or bool(
                    new_key and new_key in STRING_LISTS), "value": _shown(key, value)}),
    )


def _ignored_parent(cfg: DaemonConfig, key: str, value: dict[str, Any]) -> Finding:
    assert cfg.parsed is not None
    subs = ", ".join(repr(k) for k in value)
    return finding(
        "config.ignored-key", cfg.path,
        f"{cfg.where(key)}: the object {key!r} is accepted but ignored by dockerd",
        f"dockerd flattens nested objects before validating, so {subs} pass as option names; but no "
        f"configuration field is called {key!r}, so none of these values is applied.",
        evidence=cfg.parsed.evidence(key, key=key, value=_shown(key, value)),
        runtime=_RUNTIME,
        fix=fix("config.ignored-key", cfg.path, f"move {subs} to the top level and remove {key!r}", files=[cfg.path],
                detail=key, restart="restart docker",
                params={"key": key, "new_key": None, "action": "unnest", "children": list(value)}),
    )


def _kind_of(key: str) -> str | None:
    if key in STRING_LISTS:
        return "list"
    if key in _INTS:
        return "int"
    if key in _BOOLS:
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
        applied = (len(keypath) == 1 and key in effective) or (len(keypath) == 2 and keypath[0] in _OBJECT_FIELDS)
        if not kind or not applied:
            continue
        if _type_ok(kind, value):
            continue
        bad = value
        if isinstance(value, list):
            bad = next((v for v in value if not isinstance(v, str)), value)
        elif isinstance(value, dict):
            bad = next((v for v in value.values() if not _type_ok("bool" if kind == "bmap" else "string", v)), value)
        message = (f"json: cannot unmarshal {_json_type(bad)} into Go struct field Config.{key} "
                   f"of type {_GO_TYPES[kind]}")
        cfg.fatal.append(message)
        hint = {"list": 'a list of strings: ["..."]', "int": "a whole number without quotes",
                "bool": "true or false without quotes", "string": "a string in quotes",
                "smap": "an object of strings", "bmap": "an object of true/false"}[kind]
        cfg.findings.append(_invalid(cfg, cfg.flat_lines.get(key, (key,)), value, message, f"{key} must be {hint}",
                                     key=key, suggested=_coerce(kind, value)))


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


def _invalid(cfg: DaemonConfig, keypath: tuple[Any, ...], value: Any, message: str, hint: str, *,
             key: str | None = None, suggested: Any = None, severity: str | None = None,
             restart: str = "restart docker", detail: str | None = None) -> Finding:
    """``config.invalid-value`` at ``keypath`` with dockerd's own error text."""
    assert cfg.parsed is not None
    name = key or ".".join(str(k) for k in keypath) or "(document)"
    where = cfg.parsed.where(*keypath) if keypath else cfg.path
    fatal = severity != "warning"
    params: dict[str, Any] = {"key": name, "path": list(keypath), "old": _shown(name, value)}
    if suggested is not None:
        params["new"] = _shown(name, suggested)
    return finding(
        "config.invalid-value", cfg.path,
        f"{where}: {name}: {hint}",
        (f"dockerd refuses this value{' and does not start' if fatal else ''}: '{message}'." if fatal else
         f"dockerd accepts this value with a warning: '{message}'."),
        evidence=cfg.parsed.evidence(*keypath, key=name, value=_shown(name, value), error=message),
        severity=severity,
        runtime=_RUNTIME,
        fix=fix("config.invalid-value", cfg.path,
                f"set {name} to {_shown(name, suggested)!r}" if suggested is not None else f"correct {name} at {where}",
                files=[cfg.path], restart=restart, detail=detail or name, params=params),
    )


# -- flag conflicts ----------------------------------------------------------------------------

def _conflicts(cfg: DaemonConfig) -> None:
    """Directives both in daemon.json and on the ExecStart command line (moby#43051)."""
    if not cfg.flags or not cfg.flat:
        return
    reverse_short = {v: k for k, v in _SHORTHANDS.items()}
    seen: set[str] = set()
    for flag in cfg.flags:
        named = _NAMED_OPTION.get(flag.name)
        names = [named] if named else [flag.name, reverse_short.get(flag.name, "")]
        for name in names:
            if not name or name in _SKIP_DUPLICATES or name not in cfg.flat or name in seen:
                continue
            seen.add(name)
            same = [f for f in cfg.flags if (_NAMED_OPTION.get(f.name) or f.name) == (named or flag.name)]
            flag_value = [f.value for f in same] if named else flag.value
            message = ("the following directives are specified both as a flag and in the configuration file: "
                       f"{name}: (from flag: {_shown(name, flag_value)}, from file: {_shown(name, cfg.flat[name])})")
            cfg.fatal.append(message)
            cfg.findings.append(_conflict_finding(cfg, name, same, message))
            break


def _conflict_finding(cfg: DaemonConfig, name: str, flags: list[Flag], message: str) -> Finding:
    assert cfg.parsed is not None and cfg.unit is not None
    unit = cfg.unit
    exec_file = unit.exec_start_source.rsplit(":", 1)[0]
    dropin = exec_file if "/etc/systemd/system/" in exec_file and exec_file.endswith(".conf") else \
        f"/etc/systemd/system/{_UNIT}.d/override.conf"
    kept = _argv_without(unit.exec_start, flags)
    written = " ".join(f"{f.written} {f.value}" if f.name not in _BOOL_FLAGS else f.written for f in flags)
    from_env = flags[0].source != unit.exec_start_source
    target = flags[0].source.rsplit(":", 1)[0] if from_env else dropin
    where_flag = f"from {target}" if from_env else f"from dockerd's ExecStart in {dropin}"
    return finding(
        "config.flag-conflict", cfg.path,
        f"{cfg.where(name)}: {name!r} is set both in {cfg.path} and on dockerd's command line ({written})",
        f"dockerd refuses to start when one directive comes from the file and from a flag: '{message}'. "
        f"The flag comes from {', '.join(sorted({f.source for f in flags}))}. Keep the file's value and drop the "
        "flag from the ExecStart with a drop-in (a packaged unit file is overwritten by upgrades).",
        evidence=cfg.parsed.evidence(*cfg.flat_lines.get(name, (name,)), key=name, value=_shown(name, cfg.flat[name]),
                                     flag=written, flag_source=flags[0].source, error=message),
        runtime=_RUNTIME,
        fix=fix("config.flag-conflict", cfg.path, f"remove {written} {where_flag}, keep {name!r} in {cfg.path}",
                files=[target], restart="restart docker", detail=name,
                params={"key": name, "flag": flags[0].written, "flag_values": [f.value for f in flags],
                        "flag_source": flags[0].source, "exec_start_source": unit.exec_start_source,
                        "dropin": None if from_env else dropin, "exec_start": None if from_env else kept,
                        "daemon_reload": not from_env}),
    )


def _argv_without(argv: list[str], flags: list[Flag]) -> list[str]:
    """ExecStart argv with the given flags (and their values) removed."""
    drop_names = {f.name for f in flags}
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word.startswith("-") and word not in ("-", "--"):
            written = word.split("=", 1)[0]
            name = written[2:] if written.startswith("--") else _SHORTHANDS.get(written[1:2], written[1:])
            if name in drop_names:
                short_inline = not written.startswith("--") and len(written) > 2
                skip = "=" not in word and name not in _BOOL_FLAGS and not short_inline
                continue
        out.append(word)
    return out


# -- registry settings -------------------------------------------------------------------------

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


def _registry_settings(cfg: DaemonConfig) -> None:
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
    for default in ("::1/128", "127.0.0.0/8"):
        net = ipaddress.ip_network(default)
        if all(str(n) != default for n, _ in cfg.insecure_cidrs):
            cfg.insecure_cidrs.append((net, ""))
    for key, label in (("max-concurrent-downloads", "max concurrent downloads"),
                       ("max-concurrent-uploads", "max concurrent uploads"),
                       ("max-download-attempts", "max download attempts")):
        value = cfg.flat.get(key)
        if type(value) is int and value < 0:
            message = f"invalid {label}: {value}"
            cfg.fatal.append(message)
            cfg.findings.append(_invalid(cfg, cfg.flat_lines.get(key, (key,)), value, message,
                                         f"{key} must not be negative", key=key,
                                         suggested={"max-concurrent-downloads": 3, "max-concurrent-uploads": 5,
                                                    "max-download-attempts": 5}[key],
                                         restart="reload docker"))


def _registry_value(cfg: DaemonConfig, key: str, keypath: tuple[Any, ...], source: str, raw: str, error: str,
                    suggested: str | None, severity: str | None = None) -> Finding:
    """A bad ``registry-mirrors``/``insecure-registries`` entry (in the file or on the command line)."""
    restart = "reload docker"
    if keypath and cfg.parsed is not None:
        hint = {"registry-mirrors": "a mirror must be http(s)://host[:port][/path] without credentials, query or fragment",
                "insecure-registries": "an entry must be host[:port] or a CIDR, without scheme or path"}[key]
        if severity == "warning":
            hint = f"{redact.url(raw)} has a scheme dockerd strips"
        return _invalid(cfg, keypath, raw, error, hint, key=key, suggested=suggested, severity=severity,
                        restart=restart, detail=f"{key}[{keypath[-1]}]")
    path, _, line = source.rpartition(" at ")[2].rpartition(":")
    return finding(
        "config.invalid-value", _UNIT,
        f"{source}: {key} entry {redact.url(raw)!r}: {error}",
        f"dockerd refuses this command-line value{'' if severity == 'warning' else ' and does not start'}: '{error}'.",
        evidence={"file": path, "line": int(line) if line.isdigit() else None, "key": key,
                  "value": redact.url(raw), "error": error},
        severity=severity, runtime=_RUNTIME,
        fix=fix("config.invalid-value", _UNIT, f"correct the {key} flag in docker.service", files=[path],
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
        severity="warning", runtime=_RUNTIME,
        fix=fix("config.ignored-key", cfg.path, f"remove {raw!r} from insecure-registries", files=[cfg.path],
                restart="reload docker", detail=raw,
                params={"key": "insecure-registries", "remove": raw, "new_key": None}),
    )


def _etc_hosts(host: Host) -> dict[str, list[str]]:
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


# -- proxy environment and image store ---------------------------------------------------------

def proxy_env(cfg: DaemonConfig) -> ProxyEnv:
    """dockerd's proxy variables: systemd Environment/EnvironmentFile, overridden by ``proxies``/flags."""
    unit = cfg.unit
    env = {k: v for k, v in (unit.environment if unit else {}).items()}
    sources = {k: v for k, v in (unit.env_sources if unit else {}).items()}
    for key, upper in (("http-proxy", "HTTP_PROXY"), ("https-proxy", "HTTPS_PROXY"), ("no-proxy", "NO_PROXY")):
        in_file = isinstance(cfg.data.get("proxies"), dict) and isinstance(cfg.data["proxies"].get(key), str) \
            and cfg.data["proxies"][key] and known_keys(cfg.version) >= {key}
        flag = next((f for f in cfg.flags if f.name == key and f.value), None)
        if in_file:
            value, where = cfg.data["proxies"][key], f"{cfg.where(key)} (daemon.json proxies.{key})"
        elif flag:
            value, where = flag.value, f"{flag.written} at {flag.source}"
        else:
            continue
        for name in (upper, upper.lower()):
            env[name] = value
            sources[name] = where
    proxy_vars = {k: v for k, v in env.items() if k.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")}
    return from_environ(proxy_vars, {k: v for k, v in sources.items() if k in proxy_vars}, "dockerd")


def _nonempty_dir(host: Host, path: str) -> bool:
    return bool(host.listdir(path))


def decide_store(host: Host, cfg: DaemonConfig, options: CheckOptions | None) -> tuple[str, str]:
    """``(store, why)``: ``classic`` (graphdriver) or ``containerd`` (containerd image store), as
    ``determineImageStoreChoice`` decides it, plus the install history under the data root."""
    override = options.docker_store if options else "auto"
    if override in ("classic", "containerd"):
        return override, f"set by --docker-store {override}"
    version = cfg.version
    ver = f"Engine {version[0]}.{version[1]}" if version else "Engine version unknown"
    features = cfg.flat.get("features") if isinstance(cfg.flat.get("features"), dict) else {}
    feature = features.get("containerd-snapshotter")
    if cfg.value("userns-remap"):
        return "classic", "userns-remap is set: it forces the graphdriver store"
    if isinstance(feature, bool):
        if feature and version is not None and version < _SNAPSHOTTER_FEATURE:
            return "classic", f"features.containerd-snapshotter is true, but {ver} predates the feature (24.0)"
        where = cfg.where("features", "containerd-snapshotter")
        return ("containerd", f"features.containerd-snapshotter=true ({where})") if feature else \
            ("classic", f"features.containerd-snapshotter=false ({where})")
    driver = (cfg.unit.environment.get("DOCKER_DRIVER") if cfg.unit else "") or cfg.value("storage-driver") or ""
    prior = [d for d in _GRAPHDRIVERS if _nonempty_dir(host, posixpath.join(cfg.data_root, d))]
    snapshots = [p for p in host.listdir(posixpath.join(cfg.data_root, "containerd", "daemon")) or []
                 if p.startswith("io.containerd.snapshotter.v1.")]
    if version is not None and version < _FRESH_CONTAINERD_STORE:
        return "classic", f"{ver}: the graphdriver store is the default before Engine 29"
    if driver:
        if driver in ("vfs", "overlay2", "btrfs") or version is None:
            return "classic", f"storage driver {driver!r} selects the graphdriver store ({ver})"
        return "containerd", f"storage driver {driver!r} is not a graphdriver name: dockerd uses it as a containerd snapshotter"
    if prior:
        return "classic", (f"{ver}: an earlier graphdriver store exists ({posixpath.join(cfg.data_root, prior[0])}), "
                           "so dockerd keeps it (graphdriver-prior)")
    if version is not None:
        return "containerd", f"{ver}: fresh install without graphdriver data: the containerd image store is the default"
    if snapshots:
        return "containerd", (f"{ver}; containerd store data found "
                              f"({posixpath.join(cfg.data_root, 'containerd', 'daemon', snapshots[0])})")
    return "classic", f"{ver} and no image data under {cfg.data_root}: assumed the graphdriver store (default before 29)"


# -- the runtime view ---------------------------------------------------------------------------

def _hosts_dir_unused(host: Host) -> list[Finding]:
    """Pattern 7: hosts dirs in /etc/containerd/certs.d that dockerd's containerd store never reads."""
    out: list[Finding] = []
    for name in host.listdir(CONTAINERD_CERTS_DIR) or []:
        path = posixpath.join(CONTAINERD_CERTS_DIR, name)
        if not host.is_dir(path) or not (host.listdir(path) or []):
            continue
        target = posixpath.join(CERTS_DIR, name)
        if host.exists(posixpath.join(target, "hosts.toml")):
            continue
        out.append(finding(
            "config.hosts-dir-unused", path,
            f"{path} is not read by dockerd: its containerd image store reads {CERTS_DIR} only",
            f"dockerd configures containerd's resolver with {CERTS_DIR} as the hosts directory and never looks in "
            f"{CONTAINERD_CERTS_DIR} (moby#51080). The hosts.toml, CA and skip_verify in {path} therefore do nothing "
            "for docker pull: self-signed registries fail with x509 errors and mirrors are not used. "
            "They still apply to the CRI (kubelet, crictl).",
            evidence={"file": path, "line": None, "value": name, "reads": CERTS_DIR},
            runtime=_RUNTIME,
            fix=fix("config.hosts-dir-unused", path, f"copy {path} to {target}", files=[target],
                    params={"action": "copy", "from": path, "to": target}),
        ))
    return out


def _summary(cfg: DaemonConfig, cli: CliConfig) -> dict[str, Any]:
    concurrency = cfg.value("max-concurrent-downloads", 3)
    attempts = cfg.value("max-download-attempts", 5)
    summary: dict[str, Any] = {
        "image_store": cfg.store,
        "image_store_reason": cfg.store_reason,
        "engine_version": f"{cfg.version[0]}.{cfg.version[1]}" if cfg.version else None,
        "engine_version_source": cfg.version_source,
        "daemon_json": cfg.path,
        "daemon_json_source": cfg.path_source,
        "data_root": cfg.data_root,
        "registry_mirrors": [m.url for m in cfg.mirrors],
        "insecure_registries": sorted(cfg.insecure_hosts) + [str(n) for n, _ in cfg.insecure_cidrs],
        "max_concurrent_downloads": concurrency,
        "max_download_attempts": attempts,
        "exec_start": " ".join(cfg.unit.exec_start) if cfg.unit and cfg.unit.exec_start else None,
        "cli_config": cli.path,
        "starts": not cfg.fatal,
    }
    if cfg.fatal:
        summary["start_errors"] = list(cfg.fatal)
    if cfg.store == "containerd":
        summary["max_download_attempts_note"] = "ignored by the containerd image store"
        summary["hosts_dir"] = CERTS_DIR
    return summary


def load(host: Host, options: CheckOptions) -> RuntimeView:
    """dockerd's configuration as dockerd reads it, with the offline findings and a planner."""
    from regtui.runtimes.docker import routes as docker_routes

    cfg = load_daemon_config(host, options)
    cfg.store, cfg.store_reason = decide_store(host, cfg, options)
    cli = load_cli_config(host)
    env = proxy_env(cfg)
    findings = list(cfg.findings) + list(cli.findings)
    if cfg.store == "containerd":
        findings += _hosts_dir_unused(host)
    sources = list(cfg.sources) + list(cli.sources)
    sources.append(SourceFile(CERTS_DIR, _RUNTIME, "certs.d directory",
                              "ok" if host.is_dir(CERTS_DIR) else "missing",
                              "per-registry CA and client certificates" + (
                                  " and hosts.toml (containerd image store)" if cfg.store == "containerd" else ""),
                              {"entries": host.listdir(CERTS_DIR) or []}))

    def planner(ref: Any) -> Any:
        return docker_routes.plan(ref, cfg, cli, env, host)

    return RuntimeView(
        name=_RUNTIME,
        detected_by=detect(host),
        sources=sources,
        findings=findings,
        proxy_env=env,
        planner=planner,
        credentials=lambda endpoint_host: docker_routes.credential_for_endpoint(endpoint_host, cfg, cli),
        summary=_summary(cfg, cli),
    )


def misnamed(host: Host, registry_host: str, accepted: tuple[str, ...] = ()) -> list[Finding]:
    """``config.hosts-dir-misnamed`` under /etc/docker/certs.d for ``registry_host``."""
    return certsd_misnamed(host, CERTS_DIR, registry_host, runtime=_RUNTIME, accepted=accepted)
