"""DNS panel: every endpoint host looked up the way the daemons look it up, timed, and compared.

Hosts: every endpoint on every route (registries, mirrors), the proxies they go through, and
the token realms and blob redirect hosts other probes found
(``ctx.observations["extra_endpoints"]``). IP literals need no lookup and are listed as such.

Resolvers: the one *used* is the probe context's (``ctx.resolver``), the same one every other
probe and the test pull connect through. Without ``--dns-server`` it is the *system* resolver
(the root's resolv.conf, search domains, ndots and hosts file, as glibc and Go use them; this is
what dockerd, containerd and CRI-O use). With ``--dns-server`` that server replaces it for every
lookup made on the runtime's behalf (asked directly, no hosts file, the root's search domains
and ndots), and the system resolver is still asked, for *comparison only*: its answer is shown
beside the used one (``"used": false``) and never judged, so a stale hosts entry shows up as a
disagreement, not as a working name.

Findings (judged on the used resolver): ``dns.nxdomain`` (no such host, or no address records),
``dns.timeout`` (no answer, or SERVFAIL/refused), ``dns.slow`` (a successful lookup slower than
500 ms; every new connection pays it again, Go does not cache), ``dns.mismatch`` (the two
resolvers disagree). A host every runtime reaches through a proxy is resolved by the proxy, not
the daemon: failures there are lowered to warnings. The predicted runtime error is Go's
``*net.DNSError`` text after ``dial tcp: `` (net/net.go ``OpError``, net/dnsclient_unix.go):
``lookup NAME on SERVER: no such host`` or ``... i/o timeout``, naming the server that was asked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from regtui.findings import finding, fix
from regtui.model import Endpoint, Finding, FixRef
from regtui.net.resolver import Lookup, ResolveError, Resolver, ResolverConfig
from regtui.probecontext import ProbeContext, ProbeResult

__all__ = ["probe", "correlate", "SLOW_MS", "SYSTEM", "DNS_SERVER", "endpoint_hosts"]

PANEL = "dns"
#: A successful lookup slower than this is ``dns.slow``.
SLOW_MS = 500.0
#: Resolver labels, as :class:`~regtui.net.resolver.ResolverConfig` names them.
SYSTEM = "system"
DNS_SERVER = "--dns-server"
#: Bounds for a hostile configuration: names looked up, lookups in flight.
MAX_HOSTS = 64
_CONCURRENCY = 32
#: What Go prints for each failure (net/dnsclient_unix.go), after ``lookup NAME on SERVER: ``.
_GO_TEXT = {"nxdomain": "no such host", "noaddress": "no such host", "timeout": "i/o timeout",
            "servfail": "server misbehaving"}


@dataclass
class _Target:
    """One host name and everything that would look it up."""

    name: str
    roles: set[str] = field(default_factory=set)
    runtimes: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)
    direct: bool = False
    """Some runtime connects to it itself (so it resolves the name itself)."""
    proxied: bool = False
    """Some runtime reaches it through a proxy (which resolves the name)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"host": self.name, "roles": sorted(self.roles), "runtimes": sorted(self.runtimes),
                "endpoints": sorted(self.urls)[:20], "direct": self.direct, "proxied": self.proxied}


def _hostname(url_or_host: str) -> str:
    """Host name of a URL or ``host[:port]``, lowercased, brackets removed."""
    text = url_or_host if "://" in url_or_host else f"//{url_or_host}"
    try:
        return (urlsplit(text).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _extra(item: Any) -> tuple[str, str, str | None, str | None]:
    """(url, role, runtime, proxy) of one ``extra_endpoints`` entry: an Endpoint, a dict or a URL."""
    if isinstance(item, Endpoint):
        return item.url, item.role or "redirect", None, item.proxy
    if isinstance(item, dict):
        url = str(item.get("url") or item.get("host") or "")
        return url, str(item.get("role") or "redirect"), item.get("runtime"), item.get("proxy")
    return str(item), "redirect", None, None


def endpoint_hosts(ctx: ProbeContext) -> dict[str, _Target]:
    """Every host name a pull would touch, with who touches it and how (direct or via a proxy)."""
    targets: dict[str, _Target] = {}

    def add(url: str, role: str, runtime: str | None, proxy: str | None) -> None:
        name = _hostname(url)
        if not name:
            return
        t = targets.setdefault(name, _Target(name))
        t.roles.add(role)
        if runtime:
            t.runtimes.add(runtime)
        t.urls.add(url)
        if proxy:
            t.proxied = True
            pname = _hostname(proxy)
            if pname:
                p = targets.setdefault(pname, _Target(pname))
                p.roles.add("proxy")
                p.direct = True
                if runtime:
                    p.runtimes.add(runtime)
                p.urls.add(proxy)
        else:
            t.direct = True

    for route in ctx.routes:
        for ep in route.tried():
            add(ep.url, ep.role, route.runtime, ep.proxy)
    for item in ctx.observations.get("extra_endpoints", []) or []:
        url, role, runtime, proxy = _extra(item)
        add(url, role, runtime, proxy)
    return targets


def _resolvers(ctx: ProbeContext) -> tuple[str, dict[str, Resolver]]:
    """(label of the resolver used, every resolver asked): the used one first, the system one for comparison."""
    used = ctx.resolver
    out = {used.config.label: used}
    if used.config.label != SYSTEM:
        # Asked only to be shown beside the used answer; its log stays out of the shared one.
        out[SYSTEM] = ctx.comparison or Resolver.for_host(ctx.host, None, used.timeout)
    return used.config.label, out


def _config_dict(cfg: ResolverConfig, used: bool) -> dict[str, Any]:
    return {"label": cfg.label, "used": used, "role": "used" if used else "comparison (not used)",
            "nameservers": [f"{ip}:{port}" for ip, port in cfg.nameservers],
            "search": list(cfg.search), "ndots": cfg.ndots, "files_first": cfg.files_first,
            "hosts_entries": len(cfg.hosts), "sources": list(cfg.sources), "notes": list(cfg.notes)}


async def _lookup(resolver: Resolver, name: str, sem: asyncio.Semaphore) -> Lookup:
    """The lookup of ``name``, failed or not (a failure is read back from the resolver's log)."""
    async with sem:
        started = time.monotonic()
        try:
            return await resolver.resolve(name)
        except ResolveError as exc:
            mine = [lk for lk in resolver.log if lk.name == name and lk.started >= started]
            if mine:
                return mine[0]
            return Lookup(name, (), "dns", "", resolver.config.label, (time.monotonic() - started) * 1000, exc.kind)


def _go_error(lk: Lookup) -> str:
    return f"dial tcp: lookup {lk.name} on {lk.server}: {_GO_TEXT.get(lk.error or '', lk.error)}"


def _lowered(t: _Target) -> tuple[str | None, str]:
    """Severity override for a host only ever reached through a proxy, and the reason."""
    if t.proxied and not t.direct:
        return "warning", (" Every runtime reaches this host through a proxy, which resolves the name itself, "
                           "so this matters only if the proxy is bypassed.")
    return None, ""


def _evidence(t: _Target, lk: Lookup, cfg: ResolverConfig) -> dict[str, Any]:
    return {"host": t.name, "resolver": lk.resolver, "server": lk.server, "queried": list(lk.qnames),
            "search": list(cfg.search), "elapsed_ms": round(lk.elapsed_ms, 1), "error": lk.error,
            "addresses": list(lk.addresses), "source": lk.source, **t.to_dict(),
            "runtime_error": _go_error(lk) if lk.error else None}


def _who(lk: Lookup) -> str:
    """The server asked, named as the user gave it (``--dns-server IP:PORT``) or as resolv.conf does."""
    if lk.resolver == DNS_SERVER:
        return f"--dns-server {lk.server}"
    return lk.server or "The resolver"


def _resolver_fix(cfg: ResolverConfig, what: str) -> tuple[str, list[str]]:
    """The manual fix text and files for a failing lookup: resolv.conf, or the --dns-server given."""
    if cfg.label == DNS_SERVER:
        server = ", ".join(f"{ip}:{port}" for ip, port in cfg.nameservers)
        return f"the server given with --dns-server ({server}) {what}; give a working one, or drop --dns-server", []
    return f"fix the nameserver in /etc/resolv.conf (or the network path to it); it {what}", ["/etc/resolv.conf"]


def _slow_fix(t: _Target, lk: Lookup) -> tuple[str, FixRef | None]:
    """What would make a slow lookup faster, and the fix, if any applies on this host.

    The root's resolver is fixed in resolv.conf. A --dns-server is given for this run only and the
    runtimes never ask it, so only the root's search domains (which it is still asked with) remain.
    """
    tried = len(lk.qnames)
    if lk.resolver != DNS_SERVER:
        return ("A slow nameserver, or search domains tried before the name, are the usual causes.",
                fix("dns.slow", t.name, f"use a closer nameserver than {lk.server or 'the current one'} in "
                    "/etc/resolv.conf, or fewer search domains / a fully qualified name",
                    kind="manual", files=["/etc/resolv.conf"]))
    server = f"--dns-server {lk.server}"
    if tried > 1:
        return (f"The root's search domains made it {tried} queries to {server}; {server} itself is used for "
                "this run only, the runtimes on this host never ask it.",
                fix("dns.slow", t.name, f"fewer search domains in /etc/resolv.conf, or a fully qualified name: "
                    f"each of the {tried} names tried went to {server}", kind="manual", files=["/etc/resolv.conf"]))
    return (f"No fix on this host applies: {server} was given for this run only and the runtimes on this host "
            f"never ask it. Give a closer server with --dns-server, or drop it to measure the root's own resolver.",
            None)


def _judge(t: _Target, lk: Lookup, cfg: ResolverConfig) -> list[Finding]:
    """nxdomain / timeout / slow for one lookup by the used resolver."""
    severity, why = _lowered(t)
    ev = _evidence(t, lk, cfg)
    rt = next(iter(t.runtimes)) if len(t.runtimes) == 1 else None
    used_by = ", ".join(sorted(t.runtimes)) or "the runtimes"
    if lk.error in ("nxdomain", "noaddress"):
        what = "does not exist" if lk.error == "nxdomain" else "has no A or AAAA record"
        return [finding(
            "dns.nxdomain", t.name, f"{t.name} does not resolve ({lk.error})",
            f"{lk.server or 'the resolver'} says {t.name} {what} (asked: {', '.join(lk.qnames) or t.name}). "
            f"{used_by} cannot connect; the runtime will report \"{_go_error(lk)}\"." + why,
            evidence=ev, severity=severity, runtime=rt,
            fix=fix("dns.nxdomain", t.name, f"correct the name in the configuration, or make {t.name} resolvable "
                    "(DNS record or hosts entry)", kind="manual"))]
    if lk.error:
        kind = "does not answer" if lk.error == "timeout" else f"fails ({lk.error})"
        text, files = _resolver_fix(cfg, kind)
        return [finding(
            "dns.timeout", t.name, f"looking up {t.name}: {'--dns-server' if lk.resolver == DNS_SERVER else 'the resolver'} {kind}",
            f"{_who(lk)} {kind} for {t.name} within {lk.elapsed_ms / 1000:.1f} s. Every "
            f"connection {used_by} makes pays this wait and then fails with \"{_go_error(lk)}\"." + why,
            evidence=ev, severity=severity, runtime=rt,
            fix=fix("dns.timeout", t.name, text, kind="manual", files=files))]
    if lk.source == "dns" and lk.elapsed_ms > SLOW_MS:
        advice, slow_fix = _slow_fix(t, lk)
        at = f" ({_who(lk)})" if lk.server else ""
        return [finding(
            "dns.slow", t.name, f"looking up {t.name} took {lk.elapsed_ms:.0f} ms{at}",
            f"{_who(lk)} took {lk.elapsed_ms:.0f} ms (more than {SLOW_MS:.0f} ms) for {t.name}, queries: "
            f"{', '.join(lk.qnames)}. Go does not cache lookups: every new connection (manifest, each layer, "
            f"token) pays it again. {advice}", evidence=ev, runtime=rt, fix=slow_fix)]
    return []


def _disagree(a: Lookup, b: Lookup) -> bool:
    """Resolvers disagree: one answers and the other does not, or their answers share no address."""
    if bool(a.addresses) != bool(b.addresses):
        return True
    return bool(a.addresses) and not set(a.addresses) & set(b.addresses)


def _mismatch(t: _Target, system: Lookup, other: Lookup) -> list[Finding]:
    """The root's resolver and --dns-server disagree; ``other`` (the --dns-server answer) is the one used."""
    if not _disagree(system, other):
        return []
    hosts_only = system.source == "hosts" and not other.addresses
    note = ""
    if system.source == "hosts":
        note = (" The system answer comes from the hosts file: a stale or deliberate entry overrides DNS for "
                "every program on this host, but not on other nodes or inside the proxy.")
    return [finding(
        "dns.mismatch", t.name, f"resolvers disagree on {t.name}",
        f"--dns-server {other.server} answers {', '.join(other.addresses) or other.error}; the root's own "
        f"resolver answers {', '.join(system.addresses) or system.error} "
        f"({system.source}{' ' + system.server if system.server else ''}). regtui resolves every name through "
        "--dns-server, as asked (probes and test pull); the root's answer is shown for comparison only. "
        "Without --dns-server the runtimes on this host would use the root's answer." + note
        + (" Load-balanced names can legitimately differ; check which addresses serve the registry."
           if system.addresses and other.addresses else ""),
        severity="info" if hosts_only else None,
        evidence={"host": t.name, "system": system.to_dict(), "dns_server": other.to_dict(), **t.to_dict()},
        runtime=next(iter(t.runtimes)) if len(t.runtimes) == 1 else None,
        fix=fix("dns.mismatch", t.name, "make the hosts file / resolv.conf agree with the authoritative answer",
                kind="manual", files=["/etc/hosts", "/etc/resolv.conf"]))]


async def probe(ctx: ProbeContext) -> ProbeResult:
    """Look every endpoint host up with the used resolver (and, with --dns-server, the root's for comparison)."""
    targets = endpoint_hosts(ctx)
    used, resolvers = _resolvers(ctx)
    literals = sorted(n for n in targets if _is_ip(n))
    names = sorted(n for n in targets if not _is_ip(n))[:MAX_HOSTS]
    sem = asyncio.Semaphore(_CONCURRENCY)
    jobs = [(name, label, _lookup(r, name, sem)) for name in names for label, r in resolvers.items()]
    answers = await asyncio.gather(*(job for _, _, job in jobs))
    table: dict[str, dict[str, Lookup]] = {}
    for (name, label, _), lk in zip(jobs, answers):
        table.setdefault(name, {})[label] = lk
    findings: list[Finding] = []
    rows = []
    for name in names:
        t = targets[name]
        got = table.get(name, {})
        used_lk = got.get(used)
        if used_lk is not None:
            findings += _judge(t, used_lk, resolvers[used].config)
        if used_lk is not None and used != SYSTEM and SYSTEM in got:
            findings += _mismatch(t, got[SYSTEM], used_lk)
        rows.append({**t.to_dict(), "used": used,
                     "results": {label: {**lk.to_dict(), "used": label == used} for label, lk in got.items()},
                     "agree": None if len(got) < 2 else not _disagree(got[SYSTEM], got[DNS_SERVER])})
    data = {
        "used": used,
        "resolvers": {label: _config_dict(r.config, label == used) for label, r in resolvers.items()},
        "hosts": rows,
        "literals": [{**targets[n].to_dict(), "note": "IP literal: no lookup"} for n in literals],
        "slow_ms": SLOW_MS,
        "skipped": max(0, len([n for n in targets if not _is_ip(n)]) - MAX_HOSTS),
        "requests": [],
    }
    return ProbeResult(PANEL, data, findings)


def correlate(results: dict[str, ProbeResult], ctx: ProbeContext) -> list[Finding]:
    """Add the lookups the other probes' requests made (the shared resolver's log), and judge
    redirect and token hosts they found after this probe ran."""
    result = results.get(PANEL)
    if result is None or not isinstance(result.data, dict):
        return []
    log = list(ctx.resolver.log)
    result.data["requests"] = [lk.to_dict() for lk in log[-500:]]
    seen = {row["host"] for row in result.data.get("hosts", [])}
    targets = endpoint_hosts(ctx)
    findings: list[Finding] = []
    judged: set[str] = set()
    for lk in log:
        name = _hostname(lk.name)
        if name in seen or name in judged or name not in targets or lk.resolver != ctx.resolver.config.label:
            continue
        judged.add(name)
        findings += _judge(targets[name], lk, ctx.resolver.config)
    return findings
