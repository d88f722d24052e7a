"""Time synchronisation as configured under the root: which daemon, which NTP servers, enabled or not.

Readers (each returns the servers with ``path:line`` provenance):

- **chrony** (chrony.conf(5)): ``/etc/chrony/chrony.conf`` (Debian) or ``/etc/chrony.conf``
  (RHEL); ``server``/``pool``/``peer NAME [port N] ...``; ``include PATTERN``; ``confdir DIR...``
  (``*.conf``, sorted by file name, a name in an earlier directory hiding the same name in a
  later one); ``sourcedir DIR...`` (``*.sources`` holding source directives only).
- **systemd-timesyncd** (timesyncd.conf(5)): the first of ``/etc``, ``/run``, ``/usr/local/lib``,
  ``/usr/lib`` ``systemd/timesyncd.conf``, then ``timesyncd.conf.d/*.conf`` from all of them by
  file name (``/etc`` masking the same name below); ``[Time] NTP=`` and ``FallbackNTP=``
  accumulate, an empty assignment resets; ``FallbackNTP`` is used only when ``NTP`` is empty.
- **ntpd / ntpsec** (ntp.conf(5)): ``/etc/ntpsec/ntp.conf`` or ``/etc/ntp.conf``;
  ``server``/``pool``/``peer ADDRESS``; ``includefile PATH``; reference clocks (127.127.x.y)
  are not network servers; port is always 123.
- **OpenNTPD**: ``/etc/openntpd/ntpd.conf`` or ``/etc/ntpd.conf`` ``server``/``servers``.

*Enabled* means a ``*.wants/<unit>`` symlink in ``/etc/systemd/system`` (or the vendor unit
directories) whose target exists under the root, and no mask (a unit symlinked to
``/dev/null``); OpenRC hosts are read from ``/etc/runlevels/*/``.
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass, field
from typing import Any

from regtui.config.systemd import UNIT_DIRS
from regtui.host import Host
from regtui.model import SourceFile

__all__ = ["NtpSource", "SyncDaemon", "TimeSync", "load", "DAEMONS"]

_NTP_PORT = 123
_MAX_FILES = 200
_MAX_DEPTH = 8
_KIND = "timesync"


@dataclass(frozen=True)
class NtpSource:
    """One NTP server a daemon is configured to use."""

    host: str
    port: int = _NTP_PORT
    kind: str = "server"
    """``server``, ``pool``, ``peer``, ``NTP``, ``FallbackNTP`` or ``--ntp-server``."""
    daemon: str = ""
    source: str = ""
    """``path:line`` of the directive, or ``--ntp-server``."""

    @property
    def spec(self) -> str:
        """``host`` or ``host:port`` (``[v6]:port``) as a user would type it."""
        if self.port == _NTP_PORT:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"host": self.host, "port": self.port, "kind": self.kind, "daemon": self.daemon, "source": self.source}


@dataclass
class SyncDaemon:
    """One time-sync daemon as the root has it: installed, enabled, configured servers."""

    name: str
    """``chrony``, ``systemd-timesyncd``, ``ntpd``, ``ntpsec`` or ``openntpd``."""
    unit: str
    """The unit name to act on (the one installed under the root when known)."""
    installed: bool = False
    enabled: bool = False
    masked: bool = False
    evidence: list[str] = field(default_factory=list)
    """Unit files, wants symlinks, binaries that show the above."""
    config_files: list[str] = field(default_factory=list)
    servers: list[NtpSource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def configured(self) -> bool:
        """A configuration file for it exists."""
        return bool(self.config_files)

    @property
    def step_command(self) -> str:
        """Command that steps the clock now through this daemon (shown, never run by regtui)."""
        return {
            "chrony": "chronyc makestep",
            "systemd-timesyncd": "systemctl restart systemd-timesyncd",
        }.get(self.name, f"systemctl restart {self.unit}")

    @property
    def enable_command(self) -> str:
        """Command that enables and starts it."""
        if self.name == "systemd-timesyncd":
            return "timedatectl set-ntp true"
        if self.masked:
            return f"systemctl unmask {self.unit} && systemctl enable --now {self.unit}"
        return f"systemctl enable --now {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "unit": self.unit, "installed": self.installed, "enabled": self.enabled,
                "masked": self.masked, "evidence": list(self.evidence), "config_files": list(self.config_files),
                "servers": [s.to_dict() for s in self.servers], "notes": list(self.notes)}


@dataclass
class TimeSync:
    """Every sync daemon found under the root."""

    daemons: list[SyncDaemon] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    """Config files read (or looked for)."""

    def enabled(self) -> list[SyncDaemon]:
        """Daemons enabled to start at boot."""
        return [d for d in self.daemons if d.enabled]

    def daemon(self, name: str) -> SyncDaemon | None:
        """The daemon by name."""
        return next((d for d in self.daemons if d.name == name), None)

    def servers(self) -> list[NtpSource]:
        """The servers in use: the enabled daemons', else every configured daemon's, deduplicated."""
        chosen = self.enabled() or [d for d in self.daemons if d.configured]
        seen: set[tuple[str, int]] = set()
        out = []
        for d in chosen:
            for s in d.servers:
                if (s.host.lower(), s.port) not in seen:
                    seen.add((s.host.lower(), s.port))
                    out.append(s)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"daemons": [d.to_dict() for d in self.daemons], "files": [s.to_dict() for s in self.sources]}


@dataclass(frozen=True)
class _Spec:
    name: str
    units: tuple[str, ...]
    """Unit names, the canonical one first (aliases after)."""
    binaries: tuple[str, ...] = ()
    openrc: tuple[str, ...] = ()


#: The daemons regtui knows, with their unit names (aliases included) and OpenRC service names.
DAEMONS = (
    _Spec("chrony", ("chrony.service", "chronyd.service"), ("chronyd",), ("chronyd",)),
    _Spec("systemd-timesyncd", ("systemd-timesyncd.service",)),
    _Spec("ntpsec", ("ntpsec.service",), (), ()),
    _Spec("ntpd", ("ntp.service", "ntpd.service"), (), ("ntpd",)),
    _Spec("openntpd", ("openntpd.service",), (), ("openntpd",)),
)


# -- generic helpers -----------------------------------------------------------------------------

def _words(line: str) -> list[str]:
    return line.split("#", 1)[0].split("!", 1)[0].split()


def _host_glob(host: Host, pattern: str) -> list[str]:
    """Host paths matching ``pattern`` (wildcards in the last component only), sorted."""
    directory, base = posixpath.split(pattern)
    if not any(c in base for c in "*?["):
        return [pattern] if host.is_file(pattern) else []
    names = host.listdir(directory) or []
    return [posixpath.join(directory, n) for n in names
            if fnmatch.fnmatchcase(n, base) and host.is_file(posixpath.join(directory, n))]


def _record(ts: TimeSync, path: str, status: str, detail: str = "", values: dict[str, Any] | None = None) -> None:
    ts.sources.append(SourceFile(path, _KIND, "time sync config", status, detail, values or {}))


def _parse_port(words: list[str]) -> tuple[int, str | None]:
    """chrony's ``port N`` source option (default 123)."""
    for i, w in enumerate(words[:-1]):
        if w == "port":
            try:
                port = int(words[i + 1])
            except ValueError:
                return _NTP_PORT, f"invalid port {words[i + 1]!r}"
            if 0 < port < 65536:
                return port, None
            return _NTP_PORT, f"port out of range: {port}"
    return _NTP_PORT, None


# -- chrony --------------------------------------------------------------------------------------

_CHRONY_MAIN = ("/etc/chrony/chrony.conf", "/etc/chrony.conf")
_CHRONY_SOURCES = ("server", "pool", "peer")


def _chrony_file(host: Host, path: str, d: SyncDaemon, ts: TimeSync, depth: int, budget: list[int],
                 sources_only: bool = False) -> None:
    if budget[0] <= 0 or depth > _MAX_DEPTH:
        d.notes.append(f"{path}: not read (include depth or file limit reached)")
        return
    if path in d.config_files:
        d.notes.append(f"{path}: included again (an include loop): not read twice")
        return
    budget[0] -= 1
    f = host.read(path)
    if not f.ok:
        _record(ts, path, "missing" if f.status == "missing" else "unreadable", f.error)
        return
    _record(ts, path, "ok")
    d.config_files.append(path)
    confdirs: list[str] = []
    sourcedirs: list[str] = []
    for lineno, line in enumerate(f.text.splitlines(), 1):
        words = _words(line)
        if not words:
            continue
        directive = words[0].lower()
        if directive in _CHRONY_SOURCES and len(words) > 1:
            port, problem = _parse_port(words[2:])
            if problem:
                d.notes.append(f"{path}:{lineno}: {problem}")
            d.servers.append(NtpSource(words[1], port, directive, d.name, f"{path}:{lineno}"))
        elif sources_only:
            continue
        elif directive == "include" and len(words) > 1:
            for inc in _host_glob(host, words[1]):
                _chrony_file(host, inc, d, ts, depth + 1, budget)
        elif directive == "confdir":
            confdirs += words[1:]
        elif directive == "sourcedir":
            sourcedirs += words[1:]
    for path_ in _dir_files(host, confdirs, ".conf"):
        _chrony_file(host, path_, d, ts, depth + 1, budget)
    for path_ in _dir_files(host, sourcedirs, ".sources"):
        _chrony_file(host, path_, d, ts, depth + 1, budget, sources_only=True)


def _dir_files(host: Host, dirs: list[str], suffix: str) -> list[str]:
    """chrony's confdir/sourcedir rule: files by name, the first directory holding a name wins."""
    chosen: dict[str, str] = {}
    for directory in dirs:
        for p in host.glob(directory, suffix):
            chosen.setdefault(posixpath.basename(p), p)
    return [chosen[n] for n in sorted(chosen)]


def _read_chrony(host: Host, d: SyncDaemon, ts: TimeSync) -> None:
    for main in _CHRONY_MAIN:
        if host.exists(main):
            _chrony_file(host, main, d, ts, 0, [_MAX_FILES])
            return


# -- systemd-timesyncd ---------------------------------------------------------------------------

_TIMESYNCD_DIRS = ("/etc/systemd", "/run/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd")


def _read_timesyncd(host: Host, d: SyncDaemon, ts: TimeSync) -> None:
    files: list[str] = []
    main = next((p for p in (posixpath.join(x, "timesyncd.conf") for x in _TIMESYNCD_DIRS) if host.is_file(p)), None)
    if main:
        files.append(main)
    chosen: dict[str, str] = {}
    for x in _TIMESYNCD_DIRS:
        for p in host.glob(posixpath.join(x, "timesyncd.conf.d"), ".conf"):
            chosen.setdefault(posixpath.basename(p), p)
    files += [chosen[n] for n in sorted(chosen)]
    ntp: list[NtpSource] = []
    fallback: list[NtpSource] = []
    fallback_set = False
    for path in files[:_MAX_FILES]:
        f = host.read(path)
        if not f.ok:
            _record(ts, path, "unreadable", f.error)
            continue
        _record(ts, path, "ok")
        d.config_files.append(path)
        section = ""
        for lineno, raw in enumerate(f.text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
                continue
            if section != "Time" or "=" not in line:
                continue
            key, value = (s.strip() for s in line.split("=", 1))
            if key not in ("NTP", "FallbackNTP"):
                continue
            target = ntp if key == "NTP" else fallback
            if not value:
                target.clear()
            if key == "FallbackNTP":
                fallback_set = True
            for name in value.split():
                host_, port = _split_port(name)
                target.append(NtpSource(host_, port, key, d.name, f"{path}:{lineno}"))
    if ntp:
        d.servers = ntp
    elif fallback:
        d.servers = fallback
        d.notes.append("NTP= is empty: timesyncd uses FallbackNTP= (and any servers DHCP supplies via networkd)")
    elif d.config_files or d.installed:
        what = "FallbackNTP= is empty" if fallback_set else "the compiled-in FallbackNTP list (not visible here)"
        d.notes.append(f"no NTP= servers: timesyncd uses {what} and servers from networkd/DHCP")


def _split_port(spec: str) -> tuple[str, int]:
    """``host[:port]`` or ``[v6]:port``; a port that is not 1-65535 is replaced by the NTP port."""
    if spec.startswith("[") and "]:" in spec:
        h, p = spec[1:].split("]:", 1)
        return h, _port(p)
    if spec.count(":") == 1:
        h, p = spec.split(":")
        return h, _port(p)
    return spec.strip("[]"), _NTP_PORT


def _port(text: str) -> int:
    # At most five ASCII digits: int() of a long digit run raises, and a socket refuses a port above 65535.
    if text.isascii() and text.isdigit() and len(text) <= 5 and 0 < int(text) < 65536:
        return int(text)
    return _NTP_PORT


# -- ntpd / ntpsec / openntpd ----------------------------------------------------------------------

def _read_ntp_conf(host: Host, d: SyncDaemon, ts: TimeSync, candidates: tuple[str, ...],
                   include_word: str, source_words: tuple[str, ...]) -> None:
    main = next((p for p in candidates if host.exists(p)), None)
    if main is None:
        return
    pending = [main]
    budget = _MAX_FILES
    while pending and budget > 0:
        path = pending.pop(0)
        budget -= 1
        f = host.read(path)
        if not f.ok:
            _record(ts, path, "missing" if f.status == "missing" else "unreadable", f.error)
            continue
        _record(ts, path, "ok")
        d.config_files.append(path)
        for lineno, line in enumerate(f.text.splitlines(), 1):
            words = _words(line)
            if len(words) < 2:
                continue
            if words[0] in source_words:
                if words[1].startswith("127.127."):
                    continue  # a reference clock driver, not a network server
                kind = "server" if words[0] == "servers" else words[0]
                d.servers.append(NtpSource(words[1], _NTP_PORT, kind, d.name, f"{path}:{lineno}"))
            elif include_word and words[0] == include_word:
                pending += _host_glob(host, words[1])


# -- installed / enabled -----------------------------------------------------------------------------

def _wants_dirs(host: Host) -> list[str]:
    out = []
    for base in UNIT_DIRS:
        for name in host.listdir(base) or []:
            if name.endswith((".wants", ".requires")):
                out.append(posixpath.join(base, name))
    return out


def _is_masked(host: Host, unit: str) -> str | None:
    """The path that masks ``unit`` (a symlink to /dev/null or an empty file), or ``None``."""
    null = host.resolve("/dev/null")
    for base in ("/etc/systemd/system", "/run/systemd/system"):
        p = posixpath.join(base, unit)
        try:
            real = host.resolve(p)
        except OSError:
            continue
        if real == null:
            return p
        if host.is_file(p) and not host.read(p).data.strip():
            return p
    return None


def _state(host: Host, spec: _Spec, wants: list[str]) -> SyncDaemon:
    unit_file = None
    unit = spec.units[0]
    for u in spec.units:
        for base in UNIT_DIRS:
            p = posixpath.join(base, u)
            if host.is_file(p):
                unit_file, unit = p, u
                break
        if unit_file:
            break
    d = SyncDaemon(spec.name, unit)
    if unit_file:
        d.installed = True
        d.evidence.append(unit_file)
    for b in spec.binaries:
        path = host.which(b)
        if path:
            d.installed = True
            d.evidence.append(path)
    for u in spec.units:
        masked = _is_masked(host, u)
        if masked:
            d.masked = True
            d.evidence.append(f"{masked} -> /dev/null (masked)")
        for wdir in wants:
            link = posixpath.join(wdir, u)
            if host.is_file(link):
                d.enabled = True
                d.evidence.append(link)
            elif host.readlink(link) is not None:
                d.notes.append(f"{link} points to a unit that is not installed")
    for svc in spec.openrc:
        for level in host.listdir("/etc/runlevels") or []:
            p = posixpath.join("/etc/runlevels", level, svc)
            if host.exists(p) or host.readlink(p) is not None:
                d.enabled = True
                d.installed = True
                d.evidence.append(p)
    if d.masked:
        d.enabled = False
    return d


def load(host: Host) -> TimeSync:
    """Every known sync daemon under the root: installed, enabled, configured servers."""
    ts = TimeSync()
    wants = _wants_dirs(host)
    for spec in DAEMONS:
        d = _state(host, spec, wants)
        if spec.name == "chrony":
            _read_chrony(host, d, ts)
        elif spec.name == "systemd-timesyncd":
            _read_timesyncd(host, d, ts)
        elif spec.name == "ntpsec":
            _read_ntp_conf(host, d, ts, ("/etc/ntpsec/ntp.conf",), "includefile", ("server", "pool", "peer"))
        elif spec.name == "ntpd":
            _read_ntp_conf(host, d, ts, ("/etc/ntp.conf",), "includefile", ("server", "pool", "peer"))
        elif spec.name == "openntpd":
            _read_ntp_conf(host, d, ts, ("/etc/openntpd/ntpd.conf", "/etc/ntpd.conf"), "",
                           ("server", "servers"))
        if d.installed or d.enabled or d.configured:
            ts.daemons.append(d)
    return ts
