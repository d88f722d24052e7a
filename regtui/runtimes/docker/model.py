"""dockerd's configuration as regtui models it: :class:`DaemonConfig` and its parts (mirrors, flags,
the secure/insecure decision for a registry), the paths dockerd reads, and the
``config.invalid-value`` finding every daemon.json check shares (SEMANTICS §1.1, §1.2)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from regtui import redact
from regtui.config import systemd
from regtui.config._source import Parsed
from regtui.findings import finding, fix
from regtui.model import Finding, SourceFile
from regtui.runtimes.docker.detection import DAEMON_JSON, UNIT

__all__ = ["DAEMON_JSON", "CERTS_DIR", "CONTAINERD_CERTS_DIR", "DEFAULT_DATA_ROOT", "RUNTIME", "UNIT",
           "Mirror", "Insecurity", "Flag", "DaemonConfig", "shown", "invalid", "line_of"]

CERTS_DIR = "/etc/docker/certs.d"
CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d"
DEFAULT_DATA_ROOT = "/var/lib/docker"
RUNTIME = "docker"


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


#: How :meth:`DaemonConfig.insecure_reason` words dockerd's built-in insecure range (no daemon.json
#: setting changes it); the certificate check tells that range from a configured entry by it.
ALWAYS_INSECURE = "is always insecure"
_BUILTIN = re.compile(rf"insecure-registries: (\S+) {ALWAYS_INSECURE}")


def builtin_insecure_range(reason: str | None) -> str | None:
    """The built-in range (``127.0.0.0/8``, ``::1/128``) a Docker endpoint's TLS reason says it is in,
    or ``None`` when it is verified or made insecure by a configured entry."""
    found = _BUILTIN.search(reason or "")
    return found.group(1) if found else None


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
    resolved: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    """Online answers, as dockerd's resolver gives them: lowercase host name -> (addresses, how it was
    resolved); no addresses when the lookup failed. Filled before probing (see :meth:`unresolved`)."""

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
        resolving the name (``isCIDRMatch`` -> ``net.LookupIP``; a failed lookup matches nothing).
        Offline regtui matches IP literals, ``localhost`` and names in the root's /etc/hosts, and
        says when the answer depends on resolution; online the name's answer is in :attr:`resolved`.
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
                    return Insecurity(True, f"insecure-registries: {net} {ALWAYS_INSECURE}{how}",
                                      f"default ({net} {ALWAYS_INSECURE})")
        if addresses:
            return Insecurity(False, f"not listed{how}")
        if host.lower() in self.resolved:
            return Insecurity(False, f"not listed{how or f' ({host} did not resolve: no CIDR can match)'}")
        user_cidrs = [str(n) for n, s in self.insecure_cidrs if s]
        always = " or ".join(str(n) for n, s in self.insecure_cidrs if not s)
        ranges = " or ".join(([f"{', '.join(user_cidrs)} (insecure-registries)"] if user_cidrs else []) +
                             ([f"{always} (always insecure)"] if always else []))
        return Insecurity(False, "not listed", caveat=(
            f"depends on resolution: dockerd resolves {host} at pull time and, if an address falls in {ranges}, "
            "skips certificate verification (and, for the registry itself, falls back to plain http); offline regtui assumes it does not "
            "(an online check resolves it as dockerd does)"))

    def unresolved(self, hostport: str) -> str | None:
        """The host name whose resolution decides whether ``hostport`` is insecure, ``None`` when it is decided."""
        verdict = self.insecure_reason(hostport)
        return _split_host(hostport).lower() if verdict.caveat else None

    def resolved_online(self, hostport: str) -> bool:
        """Whether the decision for ``hostport`` used an online lookup (:attr:`resolved`)."""
        return _split_host(hostport).lower() in self.resolved

    def _addresses(self, host: str) -> tuple[list[Any], str]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))], ""
        except ValueError:
            pass
        online = self.resolved.get(host.lower())
        if online is not None:
            addrs, via = online
            if not addrs:
                return [], ""
            return _parsed(addrs), f" ({host} resolves to {', '.join(addrs)}{via})"
        if host == "localhost":
            return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")], " (localhost resolves to 127.0.0.1)"
        found = self.etc_hosts.get(host.lower())
        if found:
            return _parsed(found), f" ({host} is {', '.join(found)} in /etc/hosts)"
        return [], ""


def _parsed(addresses: Any) -> list[Any]:
    """IP addresses (a zone suffix dropped); anything else is skipped."""
    out = []
    for a in addresses:
        try:
            out.append(ipaddress.ip_address(str(a).split("%", 1)[0]))
        except ValueError:
            continue
    return out


def _split_host(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1:hostport.find("]")] if "]" in hostport else hostport
    if hostport.count(":") == 1:
        return hostport.split(":")[0]
    return hostport


def shown(key: str, value: Any) -> Any:
    """A value for evidence: secrets and proxy credentials masked."""
    if isinstance(value, str) and "proxy" in key:
        return redact.url(value)
    return redact.value(value, key)


def invalid(cfg: DaemonConfig, keypath: tuple[Any, ...], value: Any, message: str, hint: str, *,
            key: str | None = None, suggested: Any = None, severity: str | None = None,
            restart: str = "restart docker", detail: str | None = None) -> Finding:
    """``config.invalid-value`` at ``keypath`` with dockerd's own error text."""
    assert cfg.parsed is not None
    name = key or ".".join(str(k) for k in keypath) or "(document)"
    where = cfg.parsed.where(*keypath) if keypath else cfg.path
    fatal = severity != "warning"
    params: dict[str, Any] = {"key": name, "path": list(keypath), "old": shown(name, value)}
    if suggested is not None:
        params["new"] = shown(name, suggested)
    return finding(
        "config.invalid-value", cfg.path,
        f"{where}: {name}: {hint}",
        (f"dockerd refuses this value{' and does not start' if fatal else ''}: '{message}'." if fatal else
         f"dockerd accepts this value with a warning: '{message}'."),
        evidence=cfg.parsed.evidence(*keypath, key=name, value=shown(name, value), error=message),
        severity=severity,
        runtime=RUNTIME,
        fix=fix("config.invalid-value", cfg.path,
                f"set {name} to {shown(name, suggested)!r}" if suggested is not None else f"correct {name} at {where}",
                files=[cfg.path], restart=restart, detail=detail or name, params=params),
    )


def line_of(where: str) -> int | None:
    """The line number of a ``path:line`` source, ``None`` when it has none."""
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None
