"""One resolver for every connection regtui makes, timed per lookup.

It reads the *root's* ``/etc/resolv.conf``, ``/etc/hosts`` and ``/etc/nsswitch.conf`` (falling
back to the live files, and saying so, when the root has none). ``--dns-server IP[:PORT]``
replaces that resolver: the server is the only nameserver and the hosts file is not consulted
(the root's search domains and ndots still apply), the view a runtime would have if its
resolv.conf named only that server. Like Go's resolver it has no cache: each new connection
resolves again, so DNS time shows up per request. A failure reads as Go's ``*net.DNSError``
(net/dnsclient_unix.go): ``lookup NAME on SERVER: no such host`` / ``i/o timeout`` / ``server
misbehaving``. Every lookup is kept in :attr:`Resolver.log` for the DNS panel.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regtui.host import Host

if TYPE_CHECKING:
    import dns.asyncresolver

__all__ = ["Lookup", "ResolveError", "Resolver", "ResolverConfig", "read_resolver_config", "parse_server"]


class ResolveError(OSError):
    """A name did not resolve; ``kind`` is ``nxdomain``, ``timeout``, ``servfail`` or ``noaddress``."""

    def __init__(self, name: str, kind: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.kind = kind


@dataclass(frozen=True)
class ResolverConfig:
    """Where names are looked up, as the host's resolver would."""

    nameservers: tuple[tuple[str, int], ...]
    search: tuple[str, ...] = ()
    ndots: int = 1
    files_first: bool = True
    """nsswitch ``hosts:`` puts ``files`` before ``dns``."""
    hosts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Hosts-file entries: lowercase name -> addresses in file order."""
    sources: tuple[str, ...] = ()
    """Files read (host paths), with ``(live)`` when taken from this machine instead of the root."""
    notes: tuple[str, ...] = ()
    label: str = "system"
    """``system`` (resolv.conf) or ``--dns-server``."""


@dataclass(frozen=True)
class Lookup:
    """One resolution, as the DNS panel shows it."""

    name: str
    addresses: tuple[str, ...]
    source: str
    """``literal``, ``hosts`` or ``dns``."""
    server: str
    """``IP:port`` asked (or the hosts file)."""
    resolver: str
    """``system`` or ``--dns-server``."""
    elapsed_ms: float
    error: str | None = None
    """``nxdomain``, ``timeout``, ``servfail``, ``noaddress`` or ``None``."""
    qnames: tuple[str, ...] = ()
    """Names actually queried (search domains applied)."""
    started: float = 0.0
    """``time.monotonic()`` at the start."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "addresses": list(self.addresses), "source": self.source,
                "server": self.server, "resolver": self.resolver, "elapsed_ms": round(self.elapsed_ms, 3),
                "error": self.error, "qnames": list(self.qnames)}


def parse_server(spec: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[v6]:PORT`` or bare ``v6`` -> (ip, port); raises ``ValueError``."""
    spec = spec.strip()
    if spec.startswith("["):
        end = spec.index("]")
        ip, rest = spec[1:end], spec[end + 1:]
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif spec.count(":") == 1:
        ip, p = spec.split(":")
        port = int(p)
    else:
        ip, port = spec, 53
    ipaddress.ip_address(ip)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return ip, port


def _read_with_fallback(host: Host, path: str, notes: list[str], sources: list[str]) -> str | None:
    f = host.read(path)
    if f.ok:
        sources.append(path)
        return f.text
    if not host.live:
        live = Host.from_args("/", {}).read(path)
        if live.ok:
            notes.append(f"{path} is not under the root; using this machine's {path}")
            sources.append(f"{path} (live)")
            return live.text
    return None


def read_resolver_config(host: Host, dns_server: str | None = None) -> ResolverConfig:
    """The resolver configuration the host's programs use (or ``--dns-server``)."""
    notes: list[str] = []
    sources: list[str] = []
    nameservers: list[tuple[str, int]] = []
    search: list[str] = []
    ndots = 1
    text = _read_with_fallback(host, "/etc/resolv.conf", notes, sources)
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            ip = words[1].split("%", 1)[0]
            try:
                ipaddress.ip_address(ip)
                nameservers.append((ip, 53))
            except ValueError:
                notes.append(f"resolv.conf: ignoring invalid nameserver {words[1]!r}")
        elif words[0] in ("search", "domain"):
            search = [w.rstrip(".") for w in words[1:]]
        elif words[0] == "options":
            for opt in words[1:]:
                if opt.startswith("ndots:") and opt[6:].isdigit():
                    ndots = min(int(opt[6:]), 15)
    if not nameservers:
        nameservers = [("127.0.0.1", 53)]
        notes.append("no nameserver in resolv.conf: glibc and Go then ask 127.0.0.1:53")
    hosts: dict[str, list[str]] = {}
    htext = _read_with_fallback(host, "/etc/hosts", notes, sources)
    for line in (htext or "").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            ipaddress.ip_address(words[0].split("%", 1)[0])
        except ValueError:
            continue
        for name in words[1:]:
            hosts.setdefault(name.lower().rstrip("."), []).append(words[0])
    files_first = True
    ns = host.read("/etc/nsswitch.conf")
    if ns.ok:
        for line in ns.text.splitlines():
            if line.strip().startswith("hosts:"):
                order = line.split(":", 1)[1].split()
                if "dns" in order and "files" in order:
                    files_first = order.index("files") < order.index("dns")
    label = "system"
    if dns_server:
        # The server replaces the root's resolver, hosts file included: every name goes to it, with
        # the root's search domains and ndots, as if resolv.conf named only this server and no
        # hosts entry matched.
        nameservers = [parse_server(dns_server)]
        label = "--dns-server"
        if hosts:
            notes.append(f"--dns-server replaces the root's resolver: its hosts file ({len(hosts)} names) "
                         "is not consulted")
        hosts = {}
    return ResolverConfig(tuple(nameservers), tuple(search), ndots, files_first,
                          {k: tuple(v) for k, v in hosts.items()}, tuple(sources), tuple(notes), label)


class Resolver:
    """Resolves names like the host would, records every lookup, never caches."""

    def __init__(self, config: ResolverConfig, timeout: float = 5.0) -> None:
        self.config = config
        self.timeout = timeout
        self.log: list[Lookup] = []

    @classmethod
    def for_host(cls, host: Host, dns_server: str | None = None, timeout: float = 5.0) -> "Resolver":
        """A resolver from the root's files, or using ``dns_server``."""
        return cls(read_resolver_config(host, dns_server), timeout)

    def _dns(self) -> "dns.asyncresolver.Resolver":
        # dnspython costs ~90 ms to import: only pay for it when a name really goes to DNS
        # (IP literals and hosts-file names never do).
        import dns.asyncresolver

        r = dns.asyncresolver.Resolver(configure=False)
        r.nameservers = [ip for ip, _ in self.config.nameservers]
        r.port = self.config.nameservers[0][1]
        r.timeout = self.timeout
        r.lifetime = self.timeout
        r.retry_servfail = False
        return r

    def _candidates(self, name: str) -> list[str]:
        if name.endswith("."):
            return [name]
        suffixed = [f"{name}.{s}." for s in self.config.search if s]
        if name.count(".") >= self.config.ndots:
            return [name + "."] + suffixed
        return suffixed + [name + "."]

    async def _query(self, r: "dns.asyncresolver.Resolver", qname: str) -> tuple[list[str], str | None]:
        import dns.exception
        import dns.resolver

        async def one(rdtype: str) -> tuple[list[str], str | None]:
            try:
                ans = await r.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
                return [rr.to_text() for rr in ans], None
            except dns.resolver.NXDOMAIN:
                return [], "nxdomain"
            except dns.resolver.NoNameservers:
                return [], "servfail"
            except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
                return [], "timeout"
            except dns.exception.DNSException as exc:
                return [], f"error: {type(exc).__name__}"
        (a, ea), (aaaa, eaaaa) = await asyncio.gather(one("A"), one("AAAA"))
        addrs = a + aaaa
        if addrs:
            return addrs, None
        for err in (ea, eaaaa):
            if err in ("timeout", "servfail") or (err and err.startswith("error")):
                return [], err
        return [], ea or eaaaa or "noaddress"

    async def resolve(self, name: str) -> Lookup:
        """Addresses for ``name``; raises :class:`ResolveError` (the lookup is logged either way)."""
        started = time.monotonic()
        bare = name.strip("[]")
        server = f"{self.config.nameservers[0][0]}:{self.config.nameservers[0][1]}"
        try:
            ipaddress.ip_address(bare)
            lk = Lookup(name, (bare,), "literal", "", self.config.label, 0.0, started=started)
            self.log.append(lk)
            return lk
        except ValueError:
            pass
        key = bare.lower().rstrip(".")
        if self.config.files_first and key in self.config.hosts:
            lk = Lookup(name, self.config.hosts[key], "hosts", "/etc/hosts", self.config.label,
                        (time.monotonic() - started) * 1000, started=started)
            self.log.append(lk)
            return lk
        r = self._dns()
        tried: list[str] = []
        error: str | None = "noaddress"
        addrs: list[str] = []
        for qname in self._candidates(bare)[:8]:
            tried.append(qname)
            addrs, error = await self._query(r, qname)
            if addrs or error not in ("nxdomain", "noaddress"):
                break
        if not addrs and not self.config.files_first and key in self.config.hosts:
            addrs, error = list(self.config.hosts[key]), None
        elapsed = (time.monotonic() - started) * 1000
        lk = Lookup(name, tuple(addrs), "dns", server, self.config.label, elapsed,
                    None if addrs else error, tuple(tried), started)
        self.log.append(lk)
        if not addrs:
            raise ResolveError(name, error or "noaddress",
                               f"lookup {name} on {server}: {_ERROR_TEXT.get(error or '', error)}")
        return lk


_ERROR_TEXT = {
    "nxdomain": "no such host",
    "timeout": "i/o timeout",
    "servfail": "server misbehaving",
    "noaddress": "no such host",
}
