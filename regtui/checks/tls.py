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

Data (``ProbeResult.data``, JSON-ready): ``endpoints`` (one row per runtime x endpoint: role, URL,
proxy, trust inputs, ``verdict`` with Go's error and the walked chain, ``status`` trusted /
rejected / not-verified / no-chain), ``captures`` (per connection: TLS version, cipher, every
certificate described, the challenge, errors), ``ca_candidates`` (fingerprint -> subject and PEM
of every certificate a fix proposes to trust), ``realms``, ``notes``.
"""

from __future__ import annotations

import asyncio
import posixpath
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Iterable
from urllib.parse import urlsplit

from cryptography import x509

from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Endpoint, Finding, TLSInputs
from regtui.net import tls
from regtui.net.proxy import decide
from regtui.net.tls import Capture, ClientCert, Diagnosis, Problem, TrustStore
from regtui.probes import ProbeContext, ProbeResult
from regtui.refs import ReferenceError, parse

__all__ = ["probe", "correlate", "install_target", "PANEL", "EXPIRY_WARNING_DAYS", "EXPIRY_INFO_DAYS"]

PANEL = "certs"
#: Expiry within this many days is a warning ...
EXPIRY_WARNING_DAYS = 30
#: ... and within this many, information.
EXPIRY_INFO_DAYS = 60
#: At most this many captures run at once (sockets are cheap; a hostile config is not).
MAX_PARALLEL = 64
#: At most this many endpoints are probed in one check (a bounded loop over hostile configs).
MAX_TARGETS = 256
_DEFAULT_PORT = {"https": 443, "http": 80}
_VALIDITY = ("tls.expired", "tls.not-yet-valid")
_RESTART = {"k3s": "restart k3s"}
_RUNTIME_CA_HOME = {
    "docker": "/etc/docker/certs.d",
    "crio": "/etc/containers/certs.d",
    "podman": "/etc/containers/certs.d",
}


# -- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One TLS endpoint as one runtime will talk to it."""

    runtime: str
    image: str
    role: str
    """``mirror``, ``upstream``, ``p2p``, ``token-realm`` or ``blob-redirect``."""
    url: str
    host: str
    """Host name or IP (no brackets)."""
    port: int
    tls: TLSInputs
    config_host: str
    """``host[:port]`` of the endpoint whose TLS settings apply (the registry endpoint for a realm)."""
    config_url: str
    """URL of that endpoint (a hosts.toml ``[host."..."]`` key)."""
    source: str
    proxy_url: str | None = field(default=None, repr=False)
    """The daemon's proxy for this URL, with credentials (for the connection only)."""
    proxy_shown: str | None = None
    api_path: str = "/v2/"
    use_tls: bool = True

    @property
    def hostport(self) -> str:
        """``host:port`` (IPv6 in brackets): the finding subject."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def key(self, proxied: bool = True) -> tuple[Any, ...]:
        """Captures are shared by targets with the same key."""
        return (self.host.lower(), self.port, self.proxy_url if proxied else None, self.tls.client_cert, self.use_tls)


def _split(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an endpoint URL, or ``None`` when it is not http(s)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORT or not parts.hostname:
            return None
        return scheme, parts.hostname, parts.port or _DEFAULT_PORT[scheme], parts.path
    except ValueError:
        return None


def _target(ctx: ProbeContext, runtime: str, image: str, role: str, url: str, tls_inputs: TLSInputs,
            config_host: str, config_url: str, source: str) -> Target | None:
    split = _split(url)
    if split is None:
        return None
    scheme, hostname, port, path = split
    view = ctx.view(runtime)
    decision = decide(view.proxy_env, url) if view is not None else None
    api_path = path.rstrip("/") + "/" if role not in ("token-realm", "blob-redirect") else None
    return Target(runtime, image, role, url, hostname, port, tls_inputs, config_host, config_url, source,
                  decision.url if decision else None, decision.proxy if decision else None,
                  api_path or "", scheme == "https")


def _route_targets(ctx: ProbeContext) -> list[Target]:
    out: list[Target] = []
    for route in ctx.routes:
        for ep in route.tried():
            t = _target(ctx, route.runtime, route.image, ep.role, ep.url, ep.tls, ep.host, ep.url, ep.source)
            if t is not None:
                out.append(t)
    return out


def _extra_targets(ctx: ProbeContext, known: list[Target]) -> list[Target]:
    """Blob redirect hosts (and any other extra endpoints) other probes recorded."""
    out: list[Target] = []
    by_url = {t.url: t for t in known}
    runtimes = sorted({r.runtime for r in ctx.routes})
    for item in list(ctx.observations.get("extra_endpoints", []) or [])[:MAX_TARGETS]:
        runtime, url, parent, role = None, None, None, "blob-redirect"
        if isinstance(item, str):
            url = item
        elif isinstance(item, Endpoint):
            url, role = item.url, item.role or role
            parent = Target("", "", role, item.url, "", 0, item.tls, item.host, item.url, item.source)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Endpoint):
            runtime, ep = str(item[0]), item[1]
            url, role = ep.url, ep.role or role
            parent = Target(runtime, "", role, ep.url, "", 0, ep.tls, ep.host, ep.url, ep.source)
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            url, runtime, role = item["url"], item.get("runtime"), str(item.get("role") or role)
            parent = by_url.get(str(item.get("from") or ""))
        if not url:
            continue
        for rt in ([runtime] if runtime else ([parent.runtime] if parent and parent.runtime else runtimes)):
            base = parent if parent is not None else next((t for t in known if t.runtime == rt), None)
            tls_inputs = base.tls if parent is not None and base is not None else TLSInputs()
            image = base.image if base is not None else ""
            t = _target(ctx, rt, image, role, url, tls_inputs, base.config_host if base else "",
                        base.config_url if base else "", f"observed: {role}")
            if t is not None and t.use_tls:
                out.append(t)
    return out


def _realm_target(ctx: ProbeContext, parent: Target, realm: str) -> Target | None:
    """The token realm as one more endpoint, with the TLS inputs of the endpoint that challenged."""
    t = _target(ctx, parent.runtime, parent.image, "token-realm", realm, parent.tls, parent.config_host,
                parent.config_url, f"WWW-Authenticate from {parent.url}")
    return t if t is not None and t.use_tls else None


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
            host_header = t.host if t.port == _DEFAULT_PORT["https" if t.use_tls else "http"] else None
            return await tls.capture(
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
    targets = _route_targets(ctx)
    targets += _extra_targets(ctx, targets)
    targets = _dedupe_targets(targets)[:MAX_TARGETS]
    clients = _load_client_certs(ctx.host, targets, notes)
    caps = _Captures(ctx, clients)

    async def follow(t: Target) -> list[Target]:
        """Capture ``t`` (and directly when proxied), then its token realm."""
        direct = caps.start(t, proxied=False) if t.proxy_url and t.use_tls else None
        found: list[Target] = []
        cap = await caps.start(t)
        if cap.challenge and cap.challenge.realm:
            realm = _realm_target(ctx, t, cap.challenge.realm)
            if realm is not None:
                found.append(realm)
                await asyncio.gather(*[caps.start(realm)] + ([caps.start(realm, proxied=False)] if realm.proxy_url else []))
        if direct is not None:
            await direct
        return found

    found_lists = await asyncio.gather(*(follow(t) for t in targets))
    realms = _dedupe_targets([r for rs in found_lists for r in rs])
    late = _dedupe_targets(_extra_targets(ctx, targets))
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
        k = (t.runtime, t.url, t.tls, t.proxy_url, t.role)
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


@dataclass
class _Seen:
    """One target's capture and verdict."""

    target: Target
    capture: Capture | None
    direct: Capture | None
    trust: TrustStore
    diagnosis: Diagnosis | None


def _judge(ctx: ProbeContext, now: datetime, targets: list[Target], caps: _Captures, notes: list[str]) -> ProbeResult:
    cache: dict[str, Any] = {}
    trusts: dict[tuple[str, TLSInputs], TrustStore] = {}
    for t in targets:
        if t.use_tls and (t.runtime, t.tls) not in trusts:
            trusts[(t.runtime, t.tls)] = tls.load_trust(ctx.host, t.tls, _daemon_env(ctx, t.runtime), cache)
    known = tls.known_from(trusts.values())
    seen: list[_Seen] = []
    for t in targets:
        if not t.use_tls:
            continue
        cap, direct = caps.result(t), (caps.result(t, proxied=False) if t.proxy_url else None)
        trust = trusts[(t.runtime, t.tls)]
        diag = None
        if cap and cap.ok:
            try:
                diag = tls.diagnose(cap.certs, t.host, trust, now, known)
            except Exception as exc:  # a certificate this code cannot read must not take the panel down
                notes.append(f"{t.hostport}: the chain could not be analysed ({type(exc).__name__}: {exc})")
        seen.append(_Seen(t, cap, direct, trust, diag))
    findings = _findings(ctx, now, seen)
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


def _data(now: datetime, seen: list[_Seen], caps: _Captures, notes: list[str], findings: list[Finding]) -> dict[str, Any]:
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
            "runtime": t.runtime, "image": t.image, "role": t.role, "url": t.url, "host": t.hostport,
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
    return {"now": tls.iso_time(now), "endpoints": endpoints, "captures": captures,
            "ca_candidates": _candidates(seen, findings), "realms": realms, "notes": notes}


def _candidates(seen: list[_Seen], findings: list[Finding]) -> dict[str, Any]:
    """PEM and subject of each certificate a finding's fix would install, by fingerprint."""
    wanted = {str(f.fix.params["ca_pem_fingerprint"]) for f in findings
              if f.fix is not None and f.fix.params.get("ca_pem_fingerprint")}
    pool: dict[str, x509.Certificate] = {}
    for s in seen:
        d = s.diagnosis
        if d is None:
            continue
        for c in [*([d.candidate] if d.candidate is not None else []), *(d.go.chain or []), *d.path]:
            pool.setdefault(tls.fingerprint(c), c)
    return {fp: {"subject": pool[fp].subject.rfc4514_string(), "pem": tls.cert_pem(pool[fp]), "is_ca": tls.is_ca(pool[fp])}
            for fp in sorted(wanted) if fp in pool}


def _status(s: _Seen) -> str:
    if s.capture is None or not s.capture.ok:
        return "no-chain"
    if s.diagnosis is None:
        return "no-chain"
    if not s.target.tls.verify:
        return "not-verified"
    return "trusted" if s.diagnosis.go.ok else "rejected"


# -- findings ---------------------------------------------------------------------------------


def _findings(ctx: ProbeContext, now: datetime, seen: list[_Seen]) -> list[Finding]:
    out: list[Finding] = []
    groups: dict[tuple[Any, ...], list[tuple[_Seen, Problem]]] = {}
    for s in seen:
        if s.diagnosis is None:
            continue
        problems = list(s.diagnosis.problems)
        if not problems and not s.diagnosis.go.ok:
            problems.append(Problem("tls.rejected", None, {"go_reason": s.diagnosis.go.reason}))
        for p in problems:
            cert_key = p.cert.sha256 if p.cert else ""
            who = s.target.runtime if p.trust_dependent else ""
            groups.setdefault((p.code, s.target.hostport, cert_key, who), []).append((s, p))
    for (code, subject, _, _), members in groups.items():
        builder = _BUILDERS.get(code)
        if builder is not None:
            out.append(builder(ctx, subject, members))
    out += _old_protocol(seen)
    out += _trust_differs(ctx, seen)
    out += _intercepted(ctx, seen)
    return out


def _runtimes(members: list[tuple[_Seen, Problem]]) -> list[str]:
    return sorted({s.target.runtime for s, _ in members})


def _verifying(members: list[tuple[_Seen, Problem]]) -> list[str]:
    return sorted({s.target.runtime for s, _ in members if s.target.tls.verify})


def _runtime_field(members: list[tuple[_Seen, Problem]]) -> str | None:
    names = _runtimes(members)
    return names[0] if len(names) == 1 else None


def _common(members: list[tuple[_Seen, Problem]]) -> dict[str, Any]:
    """Evidence every certificate finding carries: who, where, what the runtime will report."""
    s0, p0 = members[0]
    return {
        "endpoints": sorted({s.target.url for s, _ in members}),
        "roles": sorted({s.target.role for s, _ in members}),
        "runtimes": _runtimes(members),
        "verifying_runtimes": _verifying(members),
        "runtime_error": s0.diagnosis.go.error if s0.diagnosis else None,
        "certificate": p0.cert.to_dict() if p0.cert else None,
        "chain": [{"subject": c.subject.rfc4514_string(), "sha256": tls.fingerprint(c)} for c in (s0.capture.certs if s0.capture else [])],
        "tls_version": s0.capture.tls_version if s0.capture else None,
        "proxy": s0.target.proxy_shown,
    }


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _severity(code: str, members: list[tuple[_Seen, Problem]], default: str | None = None) -> tuple[str | None, str]:
    """(severity override, sentence to append): problems only runtimes that skip verification see are ``info``."""
    verifying = _verifying(members)
    others = [r for r in _runtimes(members) if r not in verifying]
    if verifying:
        if not others:
            return default, ""
        one = len(others) == 1
        return default, (f" ({_join(others)} {'does' if one else 'do'} not verify this endpoint and "
                         f"{'is' if one else 'are'} not affected.)")
    return "info", (f" {_join(others)} {'does' if len(others) == 1 else 'do'} not verify this certificate "
                    "(see tls.verify-disabled), so this does not fail pulls today; it will once verification is turned back on.")


def _who(members: list[tuple[_Seen, Problem]]) -> str:
    """The runtimes the problem makes fail (the verifying ones; all of them when none verifies)."""
    return _join(_verifying(members) or _runtimes(members))


def _build_trust(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    """``tls.unknown-authority`` / ``tls.self-signed`` for one runtime, with the CA to install."""
    s, p = members[0]
    t, d = s.target, s.diagnosis
    assert d is not None
    code = p.code
    cand = d.candidate
    fp = tls.fingerprint(cand) if cand is not None else None
    cand_subject = cand.subject.rfc4514_string() if cand is not None else ""
    severity, note = _severity(code, members)
    target = install_target(ctx, t)
    root_sent = bool(p.facts.get("root_sent_by_server"))
    missing = p.facts.get("missing_issuer")
    if code == "tls.self-signed":
        title = f"{t.runtime}: {subject} presents a self-signed certificate it does not trust"
        what = (f"The server's certificate ({cand_subject}) signed itself, and it is not in {t.runtime}'s trust "
                f"store for {t.config_host}.")
    elif missing:
        title = f"{t.runtime} does not trust {subject}: its chain ends at '{missing}', which is not trusted"
        what = (f"The chain the server sends ends with {cand_subject}, issued by '{missing}', a CA that is neither "
                f"sent nor in {t.runtime}'s trust store. Trust that CA (preferred), or the certificate shown.")
    else:
        title = f"{t.runtime} does not trust {subject}: root '{cand_subject}' is not in its trust store"
        what = (f"The chain ends at the self-signed root {cand_subject}"
                f"{' (sent by the server)' if root_sent else ''}, which is not in {t.runtime}'s trust store.")
    detail = (f"{what} {t.runtime} will fail with \"{d.go.error}\" on {t.url}. "
              f"Trusting it means checking this fingerprint out of band first: SHA-256 {fp}.{note}")
    params = {"runtime": t.runtime, "host": subject, "ca_pem_fingerprint": fp, "ca_subject": cand_subject,
              **target}
    evidence = {**_common(members), "runtime": t.runtime, "trust": s.trust.to_dict(),
                "candidate_ca": {"sha256": fp, "subject": cand_subject, "sent_by_server": root_sent or code == "tls.self-signed",
                                 "is_ca": tls.is_ca(cand) if cand is not None else None},
                "missing_issuer": missing}
    return finding(code, subject, title, detail, evidence=evidence, severity=severity, runtime=t.runtime,
                   fix=fix(code, subject, f"trust {cand_subject} (SHA-256 {fp[:16]}...) for {t.config_host} in {t.runtime}",
                           kind="edit", files=[target["install_to"]], restart=_RESTART.get(t.runtime, "none"),
                           detail=t.runtime, params=params) if fp else None)


def _build_incomplete(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    s, p = members[0]
    missing = p.facts.get("missing_issuer", "")
    aia = p.facts.get("aia_ca_issuers") or []
    severity, note = _severity(p.code, members)
    detail = (f"{subject} sends '{p.facts.get('issued_by_missing')}' without the intermediate that issued it "
              f"('{missing}'). Browsers often fetch or cache it; Go never does, so {_who(members)} "
              f"cannot build a chain to a trusted root and fail with \"{s.diagnosis.go.error if s.diagnosis else ''}\". "
              f"(If '{missing}' is itself a root, a private CA signing leaves directly, the runtimes must trust it "
              "instead: the certificate alone cannot tell.)"
              f"{' The certificate names where the intermediate is published: ' + ', '.join(aia) + '.' if aia else ''}"
              f"{note}")
    return finding(p.code, subject, f"{subject} does not send its intermediate certificate '{missing}'", detail,
                   evidence={**_common(members), "missing_issuer": missing, "aia_ca_issuers": aia,
                             "found_in_other_trust_source": bool(p.facts.get("found_in_other_trust_source"))},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix(p.code, subject, f"configure the server to send the full chain (leaf + '{missing}')",
                           kind="manual", params={"host": subject, "missing_issuer": missing, "aia_ca_issuers": aia}))


def _build_validity(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    severity, note = _severity(p.code, members)
    if p.code == "tls.expired":
        title = f"{subject}: the {c.role} certificate '{c.subject}' expired on {c.not_after}"
        what = f"The {c.role} certificate {c.subject} was valid until {c.not_after}; by this host's clock it is {p.facts.get('now')}."
        summary = f"renew the certificate '{c.subject}' on {subject}"
    else:
        title = f"{subject}: the {c.role} certificate '{c.subject}' is not valid before {c.not_before}"
        what = (f"The {c.role} certificate {c.subject} starts being valid at {c.not_before}; by this host's clock it is "
                f"{p.facts.get('now')}. Check the clock panel: a clock running behind causes exactly this.")
        summary = f"check this host's clock, or reissue '{c.subject}' with a past notBefore"
    detail = f"{what} {_who(members)} will fail with \"{p.facts.get('go_error')}\".{note}"
    return finding(p.code, subject, title, detail,
                   evidence={**_common(members), "not_before": c.not_before, "not_after": c.not_after,
                             "local_time": p.facts.get("now"), "go_error": p.facts.get("go_error"),
                             "clock_skew_seconds": None, "explained_by_clock": None},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix(p.code, subject, summary, kind="manual", detail=c.sha256[:16],
                           params={"host": subject, "certificate_sha256": c.sha256}))


def _build_expires_soon(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    default = "warning" if c.days_left <= EXPIRY_WARNING_DAYS else "info"
    severity, note = _severity(p.code, members, default)
    return finding(p.code, subject, f"{subject}: the {c.role} certificate '{c.subject}' expires in {c.days_left} days",
                   f"It is valid until {c.not_after}. After that, {_who(members)} will refuse {subject} "
                   f"(\"x509: certificate has expired or is not yet valid\"). Warning within {EXPIRY_WARNING_DAYS} days, "
                   f"information within {EXPIRY_INFO_DAYS}.{note}",
                   evidence={**_common(members), "not_after": c.not_after, "days_left": c.days_left},
                   severity=severity or default, runtime=_runtime_field(members),
                   fix=fix(p.code, subject, f"renew '{c.subject}' before {c.not_after}", kind="manual",
                           detail=c.sha256[:16], params={"host": subject, "certificate_sha256": c.sha256}))


def _build_names(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    s, p = members[0]
    f = p.facts
    severity, note = _severity(p.code, members)
    valid = [*f.get("dns_names", []), *f.get("ip_addresses", [])]
    if p.code == "tls.cn-only":
        title = f"{subject}: the certificate has no subjectAltName (only CN '{f.get('common_name')}'); Go rejects it"
        detail = (f"Go ignores the Common Name since 1.15 and requires names in the subjectAltName extension, which this "
                  f"certificate lacks. {_who(members)} will fail with \"{f.get('go_error') or 'x509: certificate relies on legacy Common Name field, use SANs instead'}\".{note}")
        summary = f"reissue the certificate with subjectAltName DNS:{f.get('wanted')}"
    else:
        title = f"{subject}: the certificate is not valid for '{f.get('wanted')}' (valid for: {', '.join(valid) or 'no names'})"
        detail = (f"The runtimes connect as '{f.get('wanted')}' but the certificate names only {', '.join(valid) or 'nothing'} "
                  f"in its subjectAltName (the Common Name '{f.get('common_name')}' does not count). {_who(members)} "
                  f"will fail with \"{f.get('go_error')}\".{note}")
        summary = (f"use a name the certificate is valid for ({', '.join(valid)}) or reissue it for {f.get('wanted')}"
                   if valid else f"reissue the certificate for {f.get('wanted')}")
    return finding(p.code, subject, title, detail,
                   evidence={**_common(members), "wanted": f.get("wanted"), "valid_for": valid,
                             "common_name": f.get("common_name"), "go_error": f.get("go_error")},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix(p.code, subject, summary, kind="manual", params={"host": subject, "valid_for": valid}))


def _build_weak_signature(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    severity, note = _severity(p.code, members)
    return finding(p.code, subject, f"{subject}: '{c.subject}' is signed with {c.signature_algorithm}, which Go refuses",
                   f"Go (1.18 and later) will not verify SHA-1 or MD5 signatures, so {_who(members)} cannot use this "
                   f"chain: \"x509: cannot verify signature: insecure algorithm {c.signature_algorithm}\" (reported as "
                   f"\"{s.diagnosis.go.error if s.diagnosis else ''}\").{note}",
                   evidence={**_common(members), "signature_algorithm": c.signature_algorithm},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix(p.code, subject, f"reissue '{c.subject}' with a SHA-256 signature", kind="manual",
                           detail=c.sha256[:16], params={"host": subject, "certificate_sha256": c.sha256}))


def _build_weak_key(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    refuses = bool(p.facts.get("go_refuses"))
    severity, note = _severity(p.code, members, "error" if refuses else None)
    consequence = ("Go refuses it outright, so pulls fail." if refuses else
                   "Go still accepts it, but it can be broken; CAs stopped issuing such keys in 2013.")
    return finding(p.code, subject, f"{subject}: '{c.subject}' has a weak key ({p.facts.get('why')})",
                   f"The {c.role} certificate {c.subject} uses {p.facts.get('why')}. {consequence}{note}",
                   evidence={**_common(members), "key_type": c.key_type, "key_size": c.key_size, "go_refuses": refuses},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix(p.code, subject, f"reissue '{c.subject}' with an RSA 2048+ or ECDSA P-256 key", kind="manual",
                           detail=c.sha256[:16], params={"host": subject, "certificate_sha256": c.sha256}))


def _build_root_sent(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    return finding(p.code, subject, f"{subject} sends its root certificate '{c.subject}' in the chain",
                   "A root is trusted because the client already has it; sending it wastes bytes in every handshake, "
                   "and clients ignore it (they do not trust it because it was sent).",
                   evidence={**_common(members)}, runtime=_runtime_field(members))


def _build_rejected(ctx: ProbeContext, subject: str, members: list[tuple[_Seen, Problem]]) -> Finding:
    s, _ = members[0]
    err = s.diagnosis.go.error if s.diagnosis else ""
    severity, note = _severity("tls.rejected", members)
    return finding("tls.rejected", subject, f"{subject}: Go rejects the certificate chain ({err})",
                   f"{_who(members)} will fail with \"{err}\".{note}",
                   evidence={**_common(members), "go_reason": s.diagnosis.go.reason if s.diagnosis else None},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix("tls.rejected", subject, "reissue the certificate as the error describes", kind="manual",
                           params={"host": subject}))


_BUILDERS = {
    "tls.unknown-authority": _build_trust,
    "tls.self-signed": _build_trust,
    "tls.incomplete-chain": _build_incomplete,
    "tls.expired": _build_validity,
    "tls.not-yet-valid": _build_validity,
    "tls.expires-soon": _build_expires_soon,
    "tls.hostname-mismatch": _build_names,
    "tls.cn-only": _build_names,
    "tls.weak-signature": _build_weak_signature,
    "tls.weak-key": _build_weak_key,
    "tls.root-sent": _build_root_sent,
    "tls.rejected": _build_rejected,
}


def _old_protocol(seen: list[_Seen]) -> list[Finding]:
    """``tls.old-protocol``: the server negotiated below TLS 1.2 although the client offered 1.3."""
    out = []
    by_host: dict[str, list[_Seen]] = {}
    for s in seen:
        if s.capture and s.capture.tls_version in tls.OLD_PROTOCOLS:
            by_host.setdefault(s.target.hostport, []).append(s)
    for subject, members in by_host.items():
        cap = members[0].capture
        assert cap is not None
        names = sorted({m.target.runtime for m in members})
        out.append(finding(
            "tls.old-protocol", subject, f"{subject} negotiates {cap.tls_version}; Go clients require TLS 1.2",
            f"Offered everything up to TLS 1.3, the server chose {cap.tls_version} ({cap.cipher}). Go's TLS client "
            f"offers only TLS 1.2 and 1.3, whether or not it verifies certificates, so {', '.join(names)} fail at "
            "the handshake: a server that knows no newer version refuses the hello (\"remote error: tls: protocol "
            "version not supported\"), one that answers anyway is refused by Go (\"tls: server selected unsupported "
            "protocol version\"). Raised to error for that reason.",
            evidence={"endpoints": sorted({m.target.url for m in members}), "runtimes": names,
                      "tls_version": cap.tls_version, "cipher": cap.cipher, "minimum": tls.GO_MIN_VERSION,
                      "runtime_error": "remote error: tls: protocol version not supported",
                      "runtime_error_alternative": f"tls: server selected unsupported protocol version {_wire(cap.tls_version)}"},
            severity="error", runtime=names[0] if len(names) == 1 else None,
            fix=fix("tls.old-protocol", subject, f"enable TLS 1.2 (and 1.3) on {subject}", kind="manual",
                    params={"host": subject, "negotiated": cap.tls_version}),
        ))
    return out


def _wire(version: str | None) -> str:
    """Go prints the protocol version as hex (``301`` for TLS 1.0)."""
    return {"SSLv3": "300", "TLSv1": "301", "TLSv1.1": "302"}.get(version or "", version or "")


def _trust_differs(ctx: ProbeContext, seen: list[_Seen]) -> list[Finding]:
    """One runtime trusts ``host:port`` and another, verifying with other inputs, does not."""
    out = []
    by_host: dict[str, list[_Seen]] = {}
    for s in seen:
        if s.diagnosis is not None and s.target.tls.verify:
            by_host.setdefault(s.target.hostport, []).append(s)
    for subject, members in by_host.items():
        trusting = [m for m in members if m.diagnosis and m.diagnosis.go.ok]
        failing = [m for m in members if m.diagnosis and not m.diagnosis.go.ok
                   and m.target.runtime not in {t.target.runtime for t in trusting}]
        if not trusting or not failing:
            continue
        good = trusting[0]
        assert good.diagnosis is not None and good.diagnosis.go.chain
        anchor = good.diagnosis.go.chain[-1]
        fp = tls.fingerprint(anchor)
        for bad in {m.target.runtime: m for m in failing}.values():
            target = install_target(ctx, bad.target)
            assert bad.diagnosis is not None
            out.append(finding(
                "tls.trust-differs", subject,
                f"{good.target.runtime} trusts {subject} but {bad.target.runtime} does not",
                f"{good.target.runtime} verifies the chain up to {anchor.subject.rfc4514_string()} "
                f"(from {_anchor_source(good.trust, anchor)}); {bad.target.runtime} verifies with other trust inputs "
                f"and fails with \"{bad.diagnosis.go.error}\". Pulls of the same image work with one runtime and not "
                "the other.",
                evidence={"trusting": {"runtime": good.target.runtime, "trust": good.trust.to_dict(),
                                       "anchor": {"subject": anchor.subject.rfc4514_string(), "sha256": fp}},
                          "failing": {"runtime": bad.target.runtime, "trust": bad.trust.to_dict(),
                                      "runtime_error": bad.diagnosis.go.error},
                          "endpoints": sorted({m.target.url for m in members})},
                runtime=bad.target.runtime,
                fix=fix("tls.trust-differs", subject,
                        f"give {bad.target.runtime} the CA {good.target.runtime} trusts ({anchor.subject.rfc4514_string()})",
                        kind="edit", files=[target["install_to"]], restart=_RESTART.get(bad.target.runtime, "none"),
                        detail=bad.target.runtime,
                        params={"runtime": bad.target.runtime, "host": subject, "ca_pem_fingerprint": fp,
                                "ca_subject": anchor.subject.rfc4514_string(), "copy_from": good.target.runtime, **target}),
            ))
    return out


def _anchor_source(trust: TrustStore, anchor: x509.Certificate) -> str:
    return ", ".join(trust.ca_files) or trust.system_bundle or "its trust store"


def _intercepted(ctx: ProbeContext, seen: list[_Seen]) -> list[Finding]:
    """The proxy hands out another chain than the server's own: it inspects TLS."""
    out = []
    done: set[tuple[str, str]] = set()
    for s in seen:
        cap, direct = s.capture, s.direct
        if not (cap and direct and cap.ok and direct.ok and tls.certs_differ(cap.certs, direct.certs)):
            continue
        key = (s.target.runtime, s.target.hostport)
        if key in done:
            continue
        done.add(key)
        d = s.diagnosis
        top = cap.certs[-1]
        inspecting = d.candidate if d is not None and d.candidate is not None else top
        fp = tls.fingerprint(inspecting)
        trusted = bool(d and d.go.ok)
        offer = not trusted and tls.is_ca(inspecting)
        target = install_target(ctx, s.target)
        proxied_leaf, direct_leaf = cap.certs[0], direct.certs[0]
        out.append(finding(
            "tls.intercepted", s.target.hostport,
            f"{s.target.runtime}: the proxy {s.target.proxy_shown} replaces {s.target.hostport}'s certificate (TLS inspection)",
            f"Through {s.target.proxy_shown} the server presents a certificate issued by '{proxied_leaf.issuer.rfc4514_string()}'; "
            f"connecting directly it presents one issued by '{direct_leaf.issuer.rfc4514_string()}'. The proxy terminates TLS "
            f"and re-signs. {s.target.runtime} "
            + ("already trusts the proxy's CA." if trusted else
               f"does not trust the proxy's CA and fails with \"{d.go.error if d else ''}\"; trust that CA where "
               f"{s.target.runtime} reads it (it must be the proxy's CA: compare the fingerprint with your network team)."),
            evidence={"runtime": s.target.runtime, "proxy": s.target.proxy_shown, "endpoint": s.target.url,
                      "through_proxy": {"leaf_sha256": tls.fingerprint(proxied_leaf), "issuer": proxied_leaf.issuer.rfc4514_string()},
                      "direct": {"leaf_sha256": tls.fingerprint(direct_leaf), "issuer": direct_leaf.issuer.rfc4514_string()},
                      "proxy_ca": {"sha256": fp, "subject": inspecting.subject.rfc4514_string()},
                      "trusted_by_runtime": trusted},
            runtime=s.target.runtime,
            fix=None if not offer else fix(
                "tls.intercepted", s.target.hostport, f"trust the proxy's CA {inspecting.subject.rfc4514_string()} in {s.target.runtime}",
                kind="edit", files=[target["install_to"]], restart=_RESTART.get(s.target.runtime, "none"),
                detail=s.target.runtime,
                params={"runtime": s.target.runtime, "host": s.target.hostport, "ca_pem_fingerprint": fp,
                        "ca_subject": inspecting.subject.rfc4514_string(), **target}),
        ))
    return out


# -- where each runtime reads a CA ------------------------------------------------------------


def install_target(ctx: ProbeContext, t: Target) -> dict[str, Any]:
    """Where ``t.runtime`` would read a CA for ``t``: the file to create or edit, and how.

    Docker: ``/etc/docker/certs.d/<host[:port]>/ca.crt`` (the image's registry directory with
    the containerd image store, whose mirrors share it; its ``hosts.toml`` when one is in use); CRI-O/podman:
    ``/etc/containers/certs.d/<host[:port]>/ca.crt``; containerd: the namespace's ``hosts.toml``
    under ``config_path`` (its ``ca`` key, root level for the upstream or in the endpoint's
    ``[host."..."]`` table); k3s: ``registries.yaml`` ``configs."<host>".tls.ca_file``. The
    directory is the one the runtime looks up: the endpoint's ``host[:port]`` as written in the
    reference (for a token realm, the registry endpoint whose HTTP client fetches the token).
    """
    dir_host = t.config_host or t.hostport
    source_path = t.source.rsplit(":", 1)[0] if ":" in t.source else ""
    view = ctx.view(t.runtime)
    if t.runtime == "docker" and view is not None and view.summary.get("image_store") == "containerd":
        # dockerd's containerd store reads certs.d like containerd: one directory per namespace, mirrors included.
        dir_host = _namespace(t.image) or dir_host
    if t.runtime in _RUNTIME_CA_HOME and not source_path.endswith("/hosts.toml"):
        return {"install_to": posixpath.join(_RUNTIME_CA_HOME[t.runtime], dir_host, "ca.crt"), "via": "certs.d"}
    if t.runtime == "k3s":
        return {"install_to": "/etc/rancher/k3s/registries.yaml", "via": "registries.yaml",
                "key": f'configs."{dir_host}".tls.ca_file', "ca_file": f"/etc/rancher/k3s/{_safe(dir_host)}-ca.crt"}
    # containerd (and dockerd's containerd store when a hosts.toml is in use): the hosts.toml ``ca``.
    namespace = _namespace(t.image) or dir_host
    roots = (view.summary.get("hosts_roots") if view is not None else None) or []
    root = roots[0] if roots else ("/etc/docker/certs.d" if t.runtime == "docker" else "/etc/containerd/certs.d")
    hosts_toml = source_path if source_path.endswith("/hosts.toml") else posixpath.join(root, namespace, "hosts.toml")
    upstream = t.config_host in (namespace, "registry-1.docker.io") or t.role == "upstream"
    return {"install_to": hosts_toml, "via": "hosts.toml ca",
            "hosts_toml_table": "" if upstream else f'host."{_api_base(t.config_url)}"',
            "ca_file": posixpath.join(posixpath.dirname(hosts_toml), f"{_safe(dir_host)}-ca.crt")}


def _safe(hostport: str) -> str:
    return hostport.replace(":", "_").replace("/", "_")


def _namespace(image: str) -> str | None:
    try:
        return parse(image).domain if image else None
    except (ReferenceError, ValueError):
        return None


def _api_base(url: str) -> str:
    """A hosts.toml host key: the endpoint URL without the ``/v2`` containerd appends."""
    return url[:-3] if url.endswith("/v2") else url.rstrip("/")


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
               "corrected_time": tls.iso_time(true_now), "explained_by_clock": explained})
    direction = "ahead" if skew > 0 else "behind"
    if explained:
        detail = (f"{f.detail} The clock panel measured this host's clock {abs(skew):.0f} s {direction} "
                  f"({estimate.get('source')}); at the corrected time {tls.iso_time(true_now)} the certificate is valid, "
                  "so the clock, not the certificate, is wrong: fix the clock (see clock.skew).")
        title = f"{f.title} (explained by this host's clock, {abs(skew):.0f} s {direction})"
        fx = f.fix and replace(f.fix, summary="fix this host's clock (see clock.skew); the certificate itself is fine")
        return replace(f, title=title, detail=detail, evidence=ev, fix=fx)
    detail = (f"{f.detail} The clock panel measured this host's clock {abs(skew):.1f} s {direction} "
              f"({estimate.get('source')}); that does not explain it: the certificate is not valid at the corrected "
              "time either.")
    return replace(f, detail=detail, evidence=ev)
