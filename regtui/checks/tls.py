"""Certificates panel ("certs" probe): every TLS endpoint a pull touches, its chain, and each runtime's verdict.

What is probed, all at once (one task per distinct host:port x proxy x client certificate):

- every endpoint on every route (mirrors, upstream), ``https://`` ones captured through the
  endpoint's proxy (``CONNECT``) as the daemon would go, and also directly when a proxy is in
  the way, to spot a TLS-inspecting proxy;
- the token realm, found from the unauthenticated ``GET <api root>/`` the capture makes on the
  same connection (``WWW-Authenticate: Bearer realm=...``); plain-HTTP registries are asked too,
  since their realm may be https. The realm is verified with the endpoint's TLS inputs (the
  runtimes fetch tokens with the registry host's HTTP client);
- blob redirect hosts other probes found: ``ctx.observations["extra_endpoints"]``, a list whose
  items are ``{"url": ..., "runtime": ..., "from": <endpoint url>, "role": ...}`` dicts (``runtime``
  and ``from`` optional; TLS inputs are inherited from the ``from`` endpoint), ``Endpoint`` objects,
  ``(runtime, Endpoint)`` pairs or bare URLs. The list is read when the probe starts and again
  after realm discovery, because probes run concurrently.

Then, per runtime and endpoint, the chain is judged with that runtime's trust inputs (system
bundle under the root + the endpoint's CA files; see :mod:`regtui.net.tls`) by Go's rules.

Findings (codes in :mod:`regtui.findings`): ``tls.unknown-authority`` and ``tls.self-signed`` per
runtime, with the certificate to trust (fingerprint, subject) and where that runtime reads it
(``fix.params.install_to``; the PEM itself is in ``data["ca_candidates"]``);
``tls.incomplete-chain``, ``tls.expired``, ``tls.not-yet-valid``, ``tls.expires-soon``,
``tls.hostname-mismatch``, ``tls.cn-only``, ``tls.weak-signature``, ``tls.weak-key``,
``tls.old-protocol`` (raised to error: Go's client never goes below TLS 1.2), ``tls.root-sent``
per server, naming the runtimes concerned;
``tls.trust-differs`` (one runtime trusts the endpoint, another does not) and ``tls.intercepted``
(the chain through the proxy is not the server's); ``tls.rejected`` when Go refuses the chain for a
reason none of those names. Where a runtime does not verify (``tls.verify-disabled``, emitted
offline by :mod:`regtui.checks.certs`), trust problems are still shown, at ``info``.

:func:`correlate` reads the clock panel (``regtui.checks.clock.skew_estimate``) and says, on every
``tls.expired`` / ``tls.not-yet-valid``, whether the measured skew explains it. The probe also
shares each registry's ``Date`` header with the clock panel (``observations["registry_dates"]``).

Targets are endpoints by identity (``Endpoint.key``: URL, TLS inputs, proxy, credentials): one URL
listed twice with other CA files is judged twice, and a trust finding that concerns only some of a
runtime's endpoints at a server names them (``endpoint_keys``, ``endpoint_labels`` in its evidence).

Data (``ProbeResult.data``, JSON-ready): ``endpoints`` (one row per runtime x endpoint: key, role, URL,
proxy, trust inputs, ``verdict`` with Go's error and the walked chain, ``status`` trusted /
rejected / not-verified / no-chain), ``captures`` (per connection: TLS version, cipher, every
certificate described, the challenge, errors), ``ca_candidates`` (fingerprint -> subject and PEM
of every certificate a fix proposes to trust), ``realms``, ``notes``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Iterable

from cryptography import x509

from regtui.checks.tls_findings import Seen, build_findings
from regtui.checks.tls_targets import DEFAULT_PORT, MAX_TARGETS, Target, extra_targets, realm_target, route_targets
from regtui.host import Host
from regtui.model import Finding, TLSInputs
from regtui.net.tls.capture import Capture, ClientCert, capture
from regtui.net.tls.certs import cert_pem, fingerprint, is_ca, iso_time
from regtui.net.tls.diagnose import diagnose
from regtui.net.tls.trust import TrustStore, known_from, load_trust
from regtui.probecontext import ProbeContext, ProbeResult

__all__ = ["probe", "correlate", "PANEL"]

PANEL = "certs"
#: At most this many captures run at once (sockets are cheap; a hostile config is not).
MAX_PARALLEL = 64
_VALIDITY = ("tls.expired", "tls.not-yet-valid")


# -- capture scheduling -----------------------------------------------------------------------


class _Captures:
    """One capture task per key; concurrent, bounded, shared between targets."""

    def __init__(self, ctx: ProbeContext, clients: dict[tuple[tuple[str, str], ...], ClientCert | None]) -> None:
        self.ctx = ctx
        self.clients = clients
        self.tasks: dict[tuple[Any, ...], asyncio.Task[Capture]] = {}
        self.sem = asyncio.Semaphore(MAX_PARALLEL)

    def start(self, t: Target, proxied: bool = True) -> asyncio.Task[Capture]:
        key = t.key(proxied)
        if key not in self.tasks:
            self.tasks[key] = asyncio.ensure_future(self._run(t, proxied))
        return self.tasks[key]

    async def _run(self, t: Target, proxied: bool) -> Capture:
        async with self.sem:
            host_header = t.host if t.port == DEFAULT_PORT["https" if t.use_tls else "http"] else None
            return await capture(
                self.ctx.resolver, t.host, t.port, timeouts=self.ctx.timeouts,
                proxy_url=t.proxy_url if proxied else None,
                client_cert=self.clients.get(t.tls.client_cert) if t.use_tls else None,
                http_path=t.api_path or None, host_header=host_header, use_tls=t.use_tls, clock=self.ctx.host.now)

    def result(self, t: Target, proxied: bool = True) -> Capture | None:
        task = self.tasks.get(t.key(proxied))
        return task.result() if task is not None and task.done() and not task.cancelled() else None


def _load_client_certs(host: Host, targets: list[Target], notes: list[str]) -> dict[tuple[tuple[str, str], ...], ClientCert | None]:
    """Client certificate PEMs for every distinct ``client_cert`` setting (first pair, as Go presents one)."""
    out: dict[tuple[tuple[str, str], ...], ClientCert | None] = {}
    for t in targets:
        pairs = t.tls.client_cert
        if pairs in out or not pairs:
            continue
        cert_path, key_path = pairs[0]
        cert = host.read(cert_path)
        key = host.read(key_path) if key_path else cert
        if cert.ok and key.ok and b"PRIVATE KEY" in key.data:
            out[pairs] = ClientCert(cert.data, key.data)
        else:
            out[pairs] = None
            notes.append(f"client certificate {cert_path} could not be loaded; chains captured without it")
    return out


# -- the probe --------------------------------------------------------------------------------


async def probe(ctx: ProbeContext) -> ProbeResult:
    """Capture and judge every TLS endpoint of every route, concurrently."""
    now = ctx.host.now()
    notes: list[str] = []
    targets = route_targets(ctx)
    targets += extra_targets(ctx, targets)
    targets = _dedupe_targets(targets)[:MAX_TARGETS]
    clients = _load_client_certs(ctx.host, targets, notes)
    caps = _Captures(ctx, clients)

    async def follow(t: Target) -> list[Target]:
        """Capture ``t`` (and directly when proxied), then its token realm."""
        direct = caps.start(t, proxied=False) if t.proxy_url and t.use_tls else None
        found: list[Target] = []
        cap = await caps.start(t)
        if cap.challenge and cap.challenge.realm:
            realm = realm_target(ctx, t, cap.challenge.realm)
            if realm is not None:
                found.append(realm)
                await asyncio.gather(*[caps.start(realm)] + ([caps.start(realm, proxied=False)] if realm.proxy_url else []))
        if direct is not None:
            await direct
        return found

    found_lists = await asyncio.gather(*(follow(t) for t in targets))
    realms = _dedupe_targets([r for rs in found_lists for r in rs])
    late = _dedupe_targets(extra_targets(ctx, targets))
    late = [t for t in late if t not in targets]
    if late:
        await asyncio.gather(*(follow(t) for t in late))
    everything = _dedupe_targets(targets + realms + late)
    _record_dates(ctx, everything, caps)
    return _judge(ctx, now, everything, caps, notes)


def _dedupe_targets(targets: Iterable[Target]) -> list[Target]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for t in targets:
        k = (t.runtime, t.url, t.tls, t.proxy_url, t.role, t.endpoint_key)
        if k not in seen:
            seen.add(k)
            out.append(t)
    return out


def _record_dates(ctx: ProbeContext, targets: list[Target], caps: _Captures) -> None:
    """Share the registries' ``Date`` headers with the clock panel (``registry_dates``)."""
    dates = ctx.observations.setdefault("registry_dates", [])
    seen: set[str] = set()
    for t in targets:
        cap = caps.result(t)
        if cap is None or cap.challenge is None or not cap.challenge.date or t.hostport in seen:
            continue
        seen.add(t.hostport)
        dates.append({"endpoint": t.url, "date": cap.challenge.date, "local_time": cap.challenge.local_time,
                      "source": "certs"})


# -- judging ----------------------------------------------------------------------------------


def _judge(ctx: ProbeContext, now: datetime, targets: list[Target], caps: _Captures, notes: list[str]) -> ProbeResult:
    cache: dict[str, Any] = {}
    trusts: dict[tuple[str, TLSInputs], TrustStore] = {}
    for t in targets:
        if t.use_tls and (t.runtime, t.tls) not in trusts:
            trusts[(t.runtime, t.tls)] = load_trust(ctx.host, t.tls, _daemon_env(ctx, t.runtime), cache)
    known = known_from(trusts.values(), ctx.host, cache)
    seen: list[Seen] = []
    for t in targets:
        if not t.use_tls:
            continue
        cap, direct = caps.result(t), (caps.result(t, proxied=False) if t.proxy_url else None)
        trust = trusts[(t.runtime, t.tls)]
        diag = None
        if cap and cap.ok:
            try:
                diag = diagnose(cap.certs, t.host, trust, now, known)
            except Exception as exc:  # a certificate this code cannot read must not take the panel down
                notes.append(f"{t.hostport}: the chain could not be analysed ({type(exc).__name__}: {exc})")
        seen.append(Seen(t, cap, direct, trust, diag))
    findings = build_findings(ctx, now, seen)
    data = _data(now, seen, caps, notes, findings)
    return ProbeResult(PANEL, data, findings)


def _daemon_env(ctx: ProbeContext, runtime: str) -> dict[str, str]:
    """``SSL_CERT_FILE`` from the daemon's environment, when the view records it (``summary["ssl_cert_file"]``).

    Go loads that file instead of the distribution bundle; views expose only this variable, never
    the whole environment.
    """
    view = ctx.view(runtime)
    value = view.summary.get("ssl_cert_file") if view is not None else None
    return {"SSL_CERT_FILE": value} if isinstance(value, str) and value else {}


def _capture_id(c: Capture) -> str:
    """Key of a capture in ``data["captures"]``: ``host:port`` (``http://`` first for plain HTTP), then
    `` with client certificate`` and `` via <proxy>`` when they apply."""
    base = c.hostport if c.use_tls else f"http://{c.hostport}"
    if c.client_cert:
        base += " with client certificate"
    return f"{base} via {c.via}" if c.via else base


def _data(now: datetime, seen: list[Seen], caps: _Captures, notes: list[str], findings: list[Finding]) -> dict[str, Any]:
    """The panel's data: endpoints with verdicts, captures with every certificate, realms, and the
    PEM of every certificate a fix proposes to trust (``ca_candidates``, by SHA-256)."""
    captures: dict[str, Any] = {}
    for task in caps.tasks.values():
        if task.done() and not task.cancelled():
            c = task.result()
            captures[_capture_id(c)] = c.to_dict(now)
    endpoints = []
    realms = []
    for s in seen:
        t = s.target
        endpoints.append({
            "runtime": t.runtime, "image": t.image, "role": t.role, "url": t.url, "key": t.endpoint_key or None,
            "host": t.hostport,
            "verify": t.tls.verify, "proxy": t.proxy_shown, "source": t.source,
            "capture": _capture_id(s.capture) if s.capture else None,
            "direct_capture": _capture_id(s.direct) if s.direct else None,
            "trust": s.trust.to_dict(),
            "verdict": s.diagnosis.to_dict(now, s.capture.certs, s.trust) if s.diagnosis and s.capture else None,
            "status": _status(s),
        })
        if s.capture and s.capture.challenge and s.capture.challenge.realm:
            realms.append({"runtime": t.runtime, "endpoint": t.url, "realm": s.capture.challenge.realm,
                           "service": s.capture.challenge.service, "status": s.capture.challenge.status})
    return {"now": iso_time(now), "endpoints": endpoints, "captures": captures,
            "ca_candidates": _candidates(seen, findings), "realms": realms, "notes": notes}


def _candidates(seen: list[Seen], findings: list[Finding]) -> dict[str, Any]:
    """PEM and subject of each certificate a finding's fix would install, by fingerprint."""
    wanted = {str(f.fix.params["ca_pem_fingerprint"]) for f in findings
              if f.fix is not None and f.fix.params.get("ca_pem_fingerprint")}
    pool: dict[str, x509.Certificate] = {}
    for s in seen:
        d = s.diagnosis
        if d is None:
            continue
        for c in [*([d.candidate] if d.candidate is not None else []), *(d.go.chain or []), *d.path]:
            pool.setdefault(fingerprint(c), c)
    return {fp: {"subject": pool[fp].subject.rfc4514_string(), "pem": cert_pem(pool[fp]), "is_ca": is_ca(pool[fp])}
            for fp in sorted(wanted) if fp in pool}


def _status(s: Seen) -> str:
    if s.capture is None or not s.capture.ok:
        return "no-chain"
    if s.diagnosis is None:
        return "no-chain"
    if not s.target.tls.verify:
        return "not-verified"
    return "trusted" if s.diagnosis.go.ok else "rejected"


# -- correlation with the clock panel ---------------------------------------------------------


def correlate(results: dict[str, ProbeResult], ctx: ProbeContext) -> list[Finding]:
    """Say on each ``tls.expired`` / ``tls.not-yet-valid`` whether the measured clock skew explains it.

    The clock panel's skew is positive when the local clock is ahead. The certificate would be
    valid at the corrected time (local minus skew) exactly when the skew explains the finding.
    This panel's findings are replaced in place (they are this module's own); nothing new is
    returned.
    """
    mine = results.get(PANEL)
    if mine is None or not mine.findings:
        return []
    try:
        from regtui.checks import clock

        estimate = clock.skew_estimate(results, ctx)
    except (ImportError, AttributeError):
        estimate = None
    if not estimate or estimate.get("skew_seconds") is None:
        return []
    skew = float(estimate["skew_seconds"])
    mine.findings[:] = [_with_clock(f, skew, estimate) if f.code in _VALIDITY else f for f in mine.findings]
    if isinstance(mine.data, dict):
        mine.data["clock"] = {"skew_seconds": skew, "source": estimate.get("source")}
    return []


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _with_clock(f: Finding, skew: float, estimate: dict[str, Any]) -> Finding:
    ev = dict(f.evidence)
    local = _parse_time(ev.get("local_time"))
    start, end = _parse_time(ev.get("not_before")), _parse_time(ev.get("not_after"))
    if local is None or start is None or end is None:
        return f
    true_now = local - timedelta(seconds=skew)
    explained = start <= true_now <= end
    ev.update({"clock_skew_seconds": round(skew, 3), "clock_source": estimate.get("source"),
               "corrected_time": iso_time(true_now), "explained_by_clock": explained})
    direction = "ahead" if skew > 0 else "behind"
    if explained:
        detail = (f"{f.detail} The clock panel measured this host's clock {abs(skew):.0f} s {direction} "
                  f"({estimate.get('source')}); at the corrected time {iso_time(true_now)} the certificate is valid, "
                  "so the clock, not the certificate, is wrong: fix the clock (see clock.skew).")
        title = f"{f.title} (explained by this host's clock, {abs(skew):.0f} s {direction})"
        fx = f.fix and replace(f.fix, summary="fix this host's clock (see clock.skew); the certificate itself is fine")
        return replace(f, title=title, detail=detail, evidence=ev, fix=fx)
    detail = (f"{f.detail} The clock panel measured this host's clock {abs(skew):.1f} s {direction} "
              f"({estimate.get('source')}); that does not explain it: the certificate is not valid at the corrected "
              "time either.")
    return replace(f, detail=detail, evidence=ev)
