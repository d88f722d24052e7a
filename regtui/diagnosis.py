"""The diagnosis: findings + routes + test pull -> one verdict per (runtime, image).

Pure: no I/O, no network, no textual. The engine calls :func:`reconcile` (the consistency rules)
and then :func:`diagnose` once every finding, the routes with their probed status and the test
pull are known; every output starts with the verdicts.

A verdict follows the runtime's fallback rules (SEMANTICS §1.3, §2.4, §3.3): the runtime tries
its endpoints in order and the first that answers serves the pull.

- ``ok``: the pull works and nothing on its route costs time;
- ``degraded``: it works, but an endpoint before the one that serves costs a timeout or an error
  (dead, empty or unauthenticated mirror), the serving mirror is stale, or a mirror is slower
  than the endpoint behind it;
- ``fails``: the runtime does not start with its configuration, refuses the reference, or every
  endpoint fails; the cause is the failure the runtime reports, on the endpoint it reports it
  for (Docker and CRI-O: the last endpoint; containerd: the "furthest" error), traced past the
  symptom to the proxy, resolver, clock, certificate or credentials behind it;
- ``unknown``: offline, or ``--no-pull`` with endpoints that answer: predicted from what was
  checked, saying what was not.

:func:`reconcile` enforces what the outputs must never contradict: an endpoint that served the
test pull is not reported as failing by that runtime's findings or route, and one endpoint of
one route has one status.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from regtui.findings import finding, fix_id
from regtui.model import Cause, Finding, Route, Verdict, verdict_fix_command

__all__ = ["diagnose", "reconcile", "independent", "name_components", "STOPPING_CODES", "PHASE_WORDS"]

#: Config codes that stop a runtime (daemon, CRI plugin, or registries.conf loading) when they are errors.
STOPPING_CODES = ("config.parse-error", "config.unknown-key", "config.flag-conflict", "config.invalid-value",
                  "config.version-mismatch", "config.mirrors-with-config-path")
#: Codes that only restate an endpoint failure; the diagnosis looks past them for the cause.
SYMPTOM_CODES = ("pull.failed", "mirror.fallback-upstream", "mirror.unreachable")
#: Error codes that claim an endpoint fails (lowered when that endpoint served the test pull).
ENDPOINT_FAILURE_CODES = ("mirror.unreachable", "mirror.http-mismatch", "mirror.missing-image", "auth.missing",
                          "auth.rejected", "tls.unknown-authority", "tls.self-signed", "tls.incomplete-chain",
                          "tls.expired", "tls.not-yet-valid", "tls.hostname-mismatch", "tls.cn-only",
                          "tls.weak-signature", "tls.rejected", "dns.nxdomain", "dns.timeout")
#: Words for a failure phase in a summary.
PHASE_WORDS = {"config": "configuration", "dns": "DNS lookup", "connect": "TCP connect", "proxy": "proxy",
               "tls": "TLS handshake", "http": "HTTP", "auth": "authentication", "manifest": "manifest",
               "blob": "layer download", "route": "route"}

FixCheck = Callable[[Finding], "str | None"]
"""Returns ``None`` when the finding's fix can be planned, else why not (the manual step follows)."""


# -- matching findings to endpoints ---------------------------------------------------------------
def _hostname(text: str) -> str:
    raw = text if "://" in text else f"//{text}"
    try:
        return (urlsplit(raw).hostname or "").lower()
    except ValueError:
        return ""


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _for_runtime(f: Finding, rt: str) -> bool:
    if f.runtime:
        return f.runtime == rt
    names = f.evidence.get("runtimes")
    return not isinstance(names, list) or not names or rt in names


def _same_url(a: str, url: str) -> bool:
    base = url.rstrip("/")
    return a == url or a.rstrip("/") == base or a.startswith(base + "/")


def _keys(f: Finding) -> set[str]:
    """The endpoint identity keys a finding is about (``Endpoint.key``), when it says."""
    ev = f.evidence
    one, many = ev.get("endpoint_key"), ev.get("endpoint_keys")
    out = {one} if isinstance(one, str) and one else set()
    if isinstance(many, list):
        out |= {k for k in many if isinstance(k, str) and k}
    return out


def _at(f: Finding, url: str, host: str, key: str | None = None) -> bool:
    """``f`` is about the endpoint ``url`` (``host`` is its ``host[:port]``, ``key`` its identity key).

    When both sides know the endpoint's identity, that decides: one URL can be two endpoints
    with other TLS inputs, proxy or credentials, and a failure of one is not the other's.
    """
    ev = f.evidence
    keys = _keys(f)
    if key and keys:
        return key in keys
    one = ev.get("endpoint")
    if isinstance(one, str) and one and _same_url(one, url):
        return True
    many = ev.get("endpoints")
    if isinstance(many, list) and any(isinstance(x, str) and _same_url(x, url) for x in many):
        return True
    if f.subject and f.subject.lower() in (host.lower(), _hostname(host)):
        return True
    named = ev.get("host")
    return isinstance(named, str) and named.lower() in (host.lower(), _hostname(host))


def _errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


# -- consistency rules ----------------------------------------------------------------------------
def _row_key(row: Mapping[str, Any]) -> str:
    """A probe or pull row's endpoint identity: its ``key``, or its URL in rows from before keys."""
    return str(row.get("key") or row.get("url") or "")


def _ep_key(ep: Any, keyed: bool) -> str:
    return ep.key if keyed else ep.url


def _served(pull: Mapping[str, Any] | None) -> dict[str, str]:
    """Endpoint key -> URL of each endpoint that served the (successful) test pull."""
    if not pull or not pull.get("ok"):
        return {}
    return {_row_key(r): str(r.get("url")) for r in pull.get("endpoints") or [] if r.get("status") == "ok" and r.get("url")}


def _first_serving(routes: list[Route], pull: Mapping[str, Any] | None,
                   probes: Mapping[str, Any] | None) -> dict[tuple[str, str], int]:
    """(runtime, image) -> index in the route of the endpoint that serves first: the test pull's, else the
    first one the mirrors probe resolved the image on (the runtime takes the first that answers)."""
    rows_by_route = _mirror_routes(probes)
    out: dict[tuple[str, str], int] = {}
    for route in routes:
        if pull and pull.get("runtime") == route.runtime and pull.get("image") == route.image:
            ok = {_row_key(r) for r in pull.get("endpoints") or [] if r.get("status") == "ok"} if pull.get("ok") else set()
        else:
            ok = {_row_key(r) for r in rows_by_route.get((route.runtime, route.image), []) if r.get("status") == "ok"}
        index = next((i for i, ep in enumerate(route.endpoints)
                      if ep.status != "skipped" and (ep.key in ok or ep.url in ok)), None)
        if index is not None:
            out[(route.runtime, route.image)] = index
    return out


def _only_fallback(f: Finding, routes: list[Route], first: dict[tuple[str, str], int]) -> Route | None:
    """The route (of ``f``'s runtime) on which every endpoint ``f`` is about comes after the one that serves
    first, when that holds on every route that has them; ``None`` otherwise."""
    keys = _keys(f)
    if not keys or not f.runtime:
        return None
    found = None
    for route in routes:
        if route.runtime != f.runtime:
            continue
        where = [i for i, ep in enumerate(route.endpoints) if ep.key in keys and ep.status != "skipped"]
        if not where:
            continue
        served = first.get((route.runtime, route.image))
        if served is None or min(where) <= served:
            return None
        found = found or route
    return found


def reconcile(findings: list[Finding], routes: list[Route], pull: Mapping[str, Any] | None,
              probes: dict[str, Any] | None = None) -> tuple[list[Finding], list[Route], dict[str, Any] | None]:
    """Apply the consistency rules; returns (findings, routes, probes), changed copies where needed.

    1. An endpoint that served the test pull carries no error finding (of the pulled runtime)
       claiming it fails: such a finding is lowered to a warning that says so; its route row is
       ``ok`` (and so is the mirrors panel's row).
    2. An error finding about endpoints the runtime reaches only after one that serves (the test
       pull's, else the first the mirrors probe resolved on) is lowered to information: it says
       the fallback would fail, which does not stop the pull (containerd's ``server`` without
       ``ca`` behind a ``[host]`` table with it).
    3. Where the test pull tried an endpoint, the route shows the pull's result (it tested more
       than the probe did).
    4. One endpoint of one route has one status: repeated rows of the same endpoint (same
       ``Endpoint.key``: URL, TLS inputs, proxy, credentials) are unified; rows of one URL with
       other inputs keep their own.
    """
    rt = str(pull.get("runtime")) if pull else ""
    image = str(pull.get("image")) if pull else ""
    served = _served(pull)
    keyed = not pull or all(r.get("key") for r in pull.get("endpoints") or [])
    tried: dict[str, tuple[str, str]] = {}
    for row in (pull or {}).get("endpoints") or []:
        if row.get("status") in ("ok", "failed") and row.get("url"):
            reason = "served the test pull" if row["status"] == "ok" else (row.get("error") or row.get("reason") or "")
            base = str(row.get("base_url") or "")
            if row["status"] == "ok" and base.startswith("http://") and str(row["url"]).startswith("https://"):
                reason = (f"served the test pull over plain http ({base}): {rt} falls back to http when https "
                          "gets no TLS answer from an insecure registry")
            tried.setdefault(_row_key(row) if keyed else str(row["url"]), (row["status"], reason))
    first = _first_serving(routes, pull, probes)
    out_findings = []
    for f in findings:
        if f.severity == "error" and f.code in ENDPOINT_FAILURE_CODES and f.runtime == rt:
            key = next((k for k, u in served.items() if _at(f, u, _netloc(u), k if keyed else None)), None)
            if key is not None:
                url = served[key]
                f = replace(f, severity="warning", detail=(f.detail + " " if f.detail else "")
                            + f"The test pull as {rt} was served by {url}, so this did not stop it.",
                            evidence={**f.evidence, "served_test_pull": url})
        if f.severity == "error" and f.code in ENDPOINT_FAILURE_CODES:
            route = _only_fallback(f, routes, first)
            if route is not None:
                ep = route.endpoints[first[(route.runtime, route.image)]]
                f = replace(f, severity="info", detail=(f.detail + " " if f.detail else "")
                            + f"Not an error: {route.runtime} tries {ep.label()} first and it serves {route.image}; "
                            "the endpoint this is about is only a fallback, tried when that one fails.",
                            evidence={**f.evidence, "fallback_only": True, "served_first_by": ep.url,
                                      "served_first_by_key": ep.key})
        out_findings.append(f)
    out_routes = []
    for route in routes:
        eps = []
        for ep in route.endpoints:
            k = _ep_key(ep, keyed)
            if route.runtime == rt and route.image == image and ep.status != "skipped" and k in tried:
                status, reason = tried[k]
                ep = replace(ep, status=status, reason=reason if status == "failed" or ep.http_fallback and
                             reason.startswith("served the test pull over plain http") else "")
            eps.append(ep)
        unified: dict[str, str] = {}
        for ep in eps:
            if ep.status in ("ok", "failed"):
                unified[ep.key] = "ok" if "ok" in (unified.get(ep.key), ep.status) else "failed"
        eps = [replace(ep, status=unified[ep.key], reason="" if unified[ep.key] == "ok" else ep.reason)
               if ep.key in unified and ep.status != unified[ep.key] and ep.status != "skipped" else ep for ep in eps]
        out_routes.append(replace(route, endpoints=tuple(eps)))
    return out_findings, out_routes, _reconcile_probes(probes, rt, image, tried)


def _reconcile_probes(probes: dict[str, Any] | None, rt: str, image: str,
                      tried: dict[str, tuple[str, str]]) -> dict[str, Any] | None:
    rows_by_route = _mirror_routes(probes)
    if not rows_by_route or not tried or (rt, image) not in rows_by_route:
        return probes
    new_rows = []
    for row in rows_by_route[(rt, image)]:
        k = _row_key(row) if _row_key(row) in tried else str(row.get("url"))
        if row.get("status") in ("ok", "failed") and k in tried and tried[k][0] != row["status"]:
            status, reason = tried[k]
            row = {**row, "status": status, "note": (f"{reason}; the probe had: {row.get('error') or 'ok'}"
                                                     if status == "ok" else f"the test pull failed here: {reason}")}
        new_rows.append(row)
    assert probes is not None
    mirrors = probes["panels"]["mirrors"]
    routes = [{**r, "endpoints": new_rows} if (r.get("runtime"), r.get("image")) == (rt, image) else r
              for r in mirrors["data"]["routes"]]
    return {**probes, "panels": {**probes["panels"], "mirrors": {**mirrors, "data": {**mirrors["data"], "routes": routes}}}}


def _mirror_routes(probes: Mapping[str, Any] | None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The mirrors probe's endpoint rows by (runtime, image)."""
    try:
        routes = probes["panels"]["mirrors"]["data"]["routes"]  # type: ignore[index]
    except (KeyError, TypeError):
        return {}
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in routes or []:
        if isinstance(r, dict):
            out[(str(r.get("runtime")), str(r.get("image")))] = list(r.get("endpoints") or [])
    return out


# -- the verdict ----------------------------------------------------------------------------------
class _Attempt:
    """One endpoint's result as the diagnosis sees it (from the pull or the mirrors probe)."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.url = str(row.get("url") or "")
        # The URL that answered: a runtime that falls back in place (containers/image's ``insecure``) keeps
        # one https row and is served over plain http, which the pull and probe rows record as ``base_url``.
        self.served_url = str(row.get("base_url") or "") or self.url
        self.key = row.get("key") or None
        self.host = str(row.get("host") or _netloc(self.url))
        self.role = str(row.get("role") or "")
        self.status = str(row.get("status") or "untested")
        self.phase = row.get("phase")
        self.kind = row.get("kind")
        self.http = row.get("http_status")
        self.error = row.get("error") or ""
        self.runtime_error = row.get("runtime_error") or ""
        self.timed_out = bool(row.get("timed_out")) or self.kind == "timeout"
        self.elapsed = row.get("elapsed_ms") or row.get("latency_ms")
        self.proxy = (row.get("details") or {}).get("proxy") if isinstance(row.get("details"), dict) else None


def _stops(rt: str, findings: list[Finding], summary: Mapping[str, Any]) -> Finding | None:
    """The finding that stops ``rt`` before any pull (daemon, CRI plugin, registries.conf), or ``None``."""
    mine = [f for f in _errors(findings) if f.runtime == rt and f.panel == "config"]
    blocked = next((f for f in mine if f.code == "config.blocked"), None)
    if blocked is not None:
        return blocked
    stopped = summary.get("starts") is False or summary.get("cri_loads") is False
    if rt == "crio":
        # containers/image refuses to load an invalid registries.conf: every pull fails.
        stopped = stopped or any(f.code in STOPPING_CODES and "registries.conf" in f.subject for f in mine)
    if not stopped:
        return None
    why = " ".join(str(x) for x in ([summary.get("why_not")] + list(summary.get("start_errors") or [])) if x)
    stopping = [f for f in mine if f.code in STOPPING_CODES]
    for f in stopping:  # the one the runtime names first
        if f.code.split(".", 1)[1].replace("-", " ") in why or f.title in why:
            return f
    words = ("does not start", "refuses to start", "not load", "does not load")
    return next((f for f in stopping if any(w in f.detail or w in f.title for w in words)), stopping[0] if stopping else None)


def _pick(cands: list[Finding], codes: tuple[str, ...]) -> Finding | None:
    for code in codes:
        for f in cands:
            if f.code == code:
                return f
    return None


def _cause_of(a: _Attempt, rt: str, image: str, findings: list[Finding]) -> tuple[Finding | None, list[Finding]]:
    """The finding behind ``a``'s failure, and the findings between the symptom and it (symptom first)."""
    mine = [f for f in findings if _for_runtime(f, rt) and f.severity in ("error", "warning")]
    here = [f for f in mine if _at(f, a.url, a.host, a.key)]
    between = [f for f in here if f.code == "mirror.unreachable"]
    phase, kind = a.phase or "", a.kind or ""
    if phase == "config":  # stopped before any request: the setting that stops it is the cause
        said = [f for f in mine if f.severity == "error" and f.panel in ("config", "certs", "auth")
                and str(f.evidence.get("error") or "\0") in a.error]
        found = next(iter(said), None) or next((f for f in here if f.severity == "error"
                                                and f.panel in ("config", "certs")), None)
        if found is not None:
            return found, between
    if phase == "proxy":
        proxy = [f for f in mine if f.panel == "proxy" and f.severity == "error"]
        named = [f for f in proxy if a.proxy and a.proxy in (f.evidence.get("proxy"), f.evidence.get("address"), f.subject)]
        found = _pick(named or proxy, ("proxy.scheme-tls", "proxy.unreachable", "proxy.connect-refused"))
        if found is not None and found.code == "proxy.unreachable" and found.evidence.get("phase") == "dns":
            # The proxy's name does not resolve: the resolver is the cause, the proxy the step to it.
            from regtui.config.hoststoml import split_host_port

            name = split_host_port(found.subject)[0].lower()
            dns = _pick([f for f in mine if f.panel == "dns" and f.subject == name],
                        ("dns.timeout", "dns.nxdomain") if kind == "timeout" else ("dns.nxdomain", "dns.timeout"))
            if dns is not None:
                return dns, between + [found]
        if found is not None:
            return found, between
    if phase in ("dns",) or kind == "nxdomain":
        found = _pick(here, ("dns.timeout", "dns.nxdomain") if kind == "timeout" else ("dns.nxdomain", "dns.timeout"))
        if found is not None:
            return found, between
    if phase == "tls" and kind not in ("http-to-https", "https-to-http"):
        tls = [f for f in here if f.panel == "certs" and f.severity == "error"]
        if kind in ("expired", "not-yet-valid"):
            skew = next((f for f in findings if f.code == "clock.skew" and f.severity == "error"), None)
            validity = [f for f in tls if f.code == f"tls.{kind}"]
            if skew is not None and _clock_explains(skew, kind, validity):
                return skew, between + (validity or tls)
        exact = [f for f in tls if f.code == f"tls.{kind}"]
        # A TLS-inspecting proxy replaced the chain: the untrusted certificate is the proxy's.
        intercepted = next((f for f in here if f.code == "tls.intercepted" and f.severity in ("error", "warning")), None)
        untrusted = [f for f in exact or tls if f.code in ("tls.unknown-authority", "tls.self-signed")]
        if intercepted is not None and untrusted:
            return intercepted, between + untrusted[:1]
        if exact or tls:
            return (exact or tls)[0], between
    if kind in ("http-to-https", "https-to-http"):
        found = _pick(here, ("mirror.http-mismatch",))
        if found is not None:
            return found, between
    if a.http == 429:
        found = _pick(here, ("auth.rate-limited",))
        if found is not None:
            return found, between
    if phase == "auth" or a.http in (401, 403):
        found = _pick(here, ("auth.missing", "auth.rejected", "auth.redirect-challenge"))
        found = found or _pick([f for f in mine if f.panel == "config" or f.code.startswith("auth.")],
                               ("auth.helper-missing", "auth.malformed"))
        if found is not None:
            return found, between
    pulled = [f for f in mine if f.panel == "pull" and f.evidence.get("image", image) == image]
    if kind == "digest-mismatch":
        found = _pick(pulled, ("pull.digest-mismatch",))
        if found is not None:
            return found, between
    if kind == "platform-missing":
        found = _pick(pulled, ("pull.platform-missing",))
        if found is not None:
            return found, between
    if a.http == 404:
        found = _pick(here + pulled, ("mirror.missing-image", "pull.manifest-unknown"))
        if found is not None:
            return found, between
    other = [f for f in here if f.severity == "error" and f.code not in SYMPTOM_CODES and f.panel != "pull"]
    if other:
        return other[0], between
    if between:
        return between[0], []
    return None, between


def _clock_explains(skew: Finding, kind: str, validity: list[Finding]) -> bool:
    """The measured skew explains an expired / not-yet-valid certificate.

    The certs probe says so on the finding (the certificate is valid at the corrected time);
    without that, the direction decides: a clock behind makes certificates "not yet valid",
    one ahead makes them "expired".
    """
    said = [f.evidence.get("explained_by_clock") for f in validity]
    if any(x is True for x in said):
        return True
    if any(x is False for x in said):
        return False
    seconds = skew.evidence.get("skew_seconds")
    if not isinstance(seconds, (int, float)):
        return True
    return seconds < 0 if kind == "not-yet-valid" else seconds > 0


def _reported(attempts: list[_Attempt], rt: str, pull_error: Mapping[str, Any] | None) -> _Attempt | None:
    """The failed attempt whose error the runtime shows, corrected to the one that explains it."""
    failed = [a for a in attempts if a.status == "failed"]
    if not failed:
        return None
    shown: _Attempt | None = None
    if pull_error and pull_error.get("key"):
        shown = next((a for a in failed if a.key == pull_error["key"]), None)
    if shown is None and pull_error and pull_error.get("url"):
        shown = next((a for a in failed if _same_url(str(pull_error["url"]), a.url)
                      or _netloc(str(pull_error["url"])) == _netloc(a.url) and a.url.split(":", 1)[0]
                      == str(pull_error["url"]).split(":", 1)[0]), None)
    if shown is None:
        if rt in ("containerd", "k3s"):
            def rank(a: _Attempt) -> int:
                return 2 if a.http and a.http != 404 else 1 if a.http == 404 else 0
            shown = max(reversed(failed), key=rank)
        else:
            shown = failed[-1]
    # Through a dead proxy dockerd falls back to plain http and reports only "connection reset":
    # the proxy is what failed (SEMANTICS §8).
    proxied = next((a for a in failed if a.phase == "proxy"), None)
    if proxied is not None and shown.phase != "proxy" and shown.http is None:
        return proxied
    # dockerd's http:// try of a TLS host fails only because the https:// one did: that one explains it.
    if shown.url.startswith("http://"):
        first = next((a for a in failed if a.url.startswith("https://") and _netloc(a.url) == _netloc(shown.url)), None)
        if first is not None:
            return first
    return shown


def _costs(attempts: list[_Attempt], served: _Attempt, route: Route) -> list[_Attempt]:
    """Attempts before the serving one that failed (each costs the pull time).

    The https try of a registry the runtime was told is insecure, answered at once with plain HTTP
    before its own ``http://`` row serves, costs nothing: it is dockerd's normal path for such a
    registry (SEMANTICS §1.3) and no setting removes it. A handshake that times out still costs.
    """
    fallback = {ep.key for ep in route.endpoints if ep.http_fallback}
    out = []
    for a in attempts:
        if a is served:
            break
        if a.status != "failed":
            continue
        if (a.key in fallback and a.kind == "http-to-https" and a.url.startswith("https://")
                and served.served_url.startswith("http://") and _netloc(served.served_url) == a.host):
            continue
        out.append(a)
    return out


def _reason(f: Finding, rt: str, a: _Attempt | None) -> str:
    """What ``f`` means for this pull, in a few words for the summary."""
    ev = f.evidence
    host = a.host if a else f.subject
    c = f.code
    if c == "tls.expired":
        when = str(ev.get("not_after") or "")[:10]
        return f"the registry's certificate expired{' on ' + when if when else ''}"
    if c == "tls.not-yet-valid":
        when = str(ev.get("not_before") or "")[:10]
        return f"the registry's certificate is not valid before {when or 'a later date'}"
    if c in ("tls.unknown-authority", "tls.self-signed"):
        return f"{rt} does not trust the registry's certificate ({'self-signed' if c == 'tls.self-signed' else 'unknown authority'})"
    if c == "tls.hostname-mismatch":
        return f"the registry's certificate is not valid for {_hostname(host) or host}"
    if c == "clock.skew":
        seconds = ev.get("skew_seconds")
        if isinstance(seconds, (int, float)) and seconds:
            side, looks = ("behind", "not yet valid") if seconds < 0 else ("ahead", "expired")
            return f"this host's clock is {abs(seconds):.0f} s {side}, so the certificate seems {looks}"
        return "this host's clock is off, so the certificate looks invalid"
    if c == "pull.failed" and a is not None and a.phase == "connect":
        if a.timed_out:
            return f"{host} does not accept connections (the connect times out)"
        return f"{host} refuses connections (nothing listens there, or a firewall rejects them)"
    if c == "tls.intercepted":
        issuer = (ev.get("proxy_ca") or {}).get("subject") if isinstance(ev.get("proxy_ca"), dict) else None
        return (f"its proxy {ev.get('proxy') or 'on the route'} inspects TLS and presents its own certificate"
                f"{' (issued by ' + str(issuer) + ')' if issuer else ''}, which {rt} does not trust")
    if c == "proxy.unreachable":
        return f"its proxy {ev.get('proxy') or f.subject} does not accept connections"
    if c == "proxy.connect-refused":
        return f"its proxy {ev.get('proxy') or f.subject} refuses the tunnel ({ev.get('status')})"
    if c == "proxy.scheme-tls":
        return f"its proxy {ev.get('proxy') or f.subject} is plain HTTP but configured as https://"
    # With --dns-server the server asked is the user's, not the root's: name it.
    given = f"--dns-server {ev.get('server')}" if ev.get("resolver") == "--dns-server" else None
    if c == "dns.nxdomain":
        return f"{ev.get('host') or f.subject} does not resolve" + (f" at {given}" if given else "")
    if c == "dns.timeout":
        return f"{given or 'the resolver'} does not answer for {ev.get('host') or f.subject}"
    if c == "auth.missing":
        return f"{host} requires credentials and none apply"
    if c == "auth.rejected":
        return f"{host} refuses the credentials"
    if c == "auth.rate-limited":
        return f"{host} rate-limits pulls"
    if c == "pull.manifest-unknown":
        return "the tag does not exist on any endpoint"
    if c == "pull.digest-mismatch":
        return "content does not match its digest"
    if c == "mirror.unreachable":
        waited = ev.get("elapsed_ms")
        if ev.get("timed_out") and isinstance(waited, (int, float)):
            return f"mirror {host} does not answer: every pull waits {waited / 1000:.1f} s for it first"
        return f"mirror {host} fails, so every pull tries it first and falls back"
    if c == "mirror.missing-image":
        return f"mirror {host} does not have the image"
    if c == "mirror.stale":
        return f"mirror {host} serves another image for the tag"
    if c == "mirror.http-mismatch":
        return f"{host} speaks the other protocol than configured"
    if c == "mirror.slower-than-upstream":
        return f"mirror {host} is slower than the endpoint behind it"
    if c == "config.blocked":
        return "the reference is blocked in registries.conf"
    title = f.title
    if title.startswith(f"{rt}: "):
        title = title[len(rt) + 2:]
    where = f.evidence.get("file")
    if isinstance(where, str) and title.startswith(where + ":"):  # "path:line: what" -> "what"
        head, sep, rest = title[len(where) + 1:].partition(": ")
        if sep and head.isdigit():
            title = rest
    return title


def _where(endpoint: str | None, phase: str | None) -> str:
    parts = [p for p in (_netloc(endpoint) if endpoint else "", PHASE_WORDS.get(phase or "", phase or "")) if p]
    return f" ({', '.join(parts)})" if parts else ""


def _fix_for(f: Finding, fix_check: FixCheck | None) -> tuple[str | None, str | None]:
    """(fix id, manual step) for the cause ``f``: the fix only when it can be planned and is not by hand."""
    if f.fix is None:
        return None, f"no automatic fix: {f.title}"
    if f.fix.kind == "manual":
        return None, f.fix.summary
    if f.code == "pull.failed":  # a symptom: its own fix is only "fix the cause"
        return None, f"see {f.id}"
    why = fix_check(f) if fix_check is not None else None
    if why:
        return None, f"{f.fix.summary} (by hand: {why})"
    return f.fix.id, None


def _symptom_step(a: _Attempt | None, f: Finding) -> str:
    """The manual step when nothing behind the failed pull explains it (no generic "fix the cause")."""
    host = a.host if a is not None else f.subject
    phase = a.phase if a is not None else f.evidence.get("phase")
    if phase == "connect":
        return (f"start the registry at {host} (or open its port), or correct the address the configuration "
                "gives for it")
    error = a.error if a is not None and a.error else f.detail
    return f"the {PHASE_WORDS.get(str(phase), str(phase))} step fails at {host}: {error}"


def _ids(findings: Iterable[Finding | None]) -> tuple[str, ...]:
    out: list[str] = []
    for f in findings:
        if f is not None and f.id and f.id not in out:
            out.append(f.id)
    return tuple(out)


def _would_fail(rt: str, image: str, a: _Attempt, untested: list[str]) -> Finding:
    """The cause of a failing route that only the probes saw: the endpoint the runtime reports, and its phase."""
    where = f"{a.host} ({a.phase} phase)" if a.phase else a.host
    f = finding(
        "pull.would-fail", a.host, f"{rt}: a pull of {image} fails at {where}",
        f"Every endpoint of the route fails, so {rt} reports the last one's error: "
        f"{a.runtime_error or a.error or 'the request fails'}. No test pull ran for this runtime and image "
        f"({'; '.join(untested) or 'not imitated'}), and no other finding explains this failure: "
        "the evidence has what the probe saw.",
        evidence={"endpoint": a.url, "phase": a.phase, "kind": a.kind, "http_status": a.http, "image": image,
                  "error": a.error},
        runtime=rt,
    )
    return replace(f, id=fix_id(f.code, f.subject, rt))


def _verdict(rt: str, image: str, status: str, summary: str, cause: Finding | None, a: _Attempt | None,
             chain: list[Finding | None], fix_check: FixCheck | None, untested: list[str],
             endpoint: str | None = None, phase: str | None = None, endpoint_key: str | None = None) -> Verdict:
    fix_id, manual = _fix_for(cause, fix_check) if cause is not None else (None, None)
    if cause is not None and cause.code == "pull.failed":
        manual = _symptom_step(a, cause)
    c = None
    if cause is not None:
        c = Cause(cause.code, cause.id, (a.url if a else endpoint), (a.phase if a and a.phase else phase),
                  a.key if a else None)
    return Verdict(rt, image, status, summary, c, _ids(chain), fix_id, manual, tuple(untested),
                   endpoint, endpoint_key)


def _degrading(rt: str, image: str, findings: list[Finding], route: Route, served: _Attempt) -> list[Finding]:
    """Findings that make a working pull cost time or serve old content."""
    mine = [f for f in findings if _for_runtime(f, rt) and f.severity in ("error", "warning")]
    out = [f for f in mine if f.code == "mirror.stale" and _at(f, served.url, served.host, served.key)]
    urls = [ep.url for ep in route.endpoints]
    out += [f for f in mine if f.code == "mirror.slower-than-upstream"
            and any(_at(f, u, _netloc(u)) for u in urls)]
    out += [f for f in mine if f.code == "pull.retried" and f.evidence.get("image", image) == image]
    return out


def _route_verdict(route: Route, findings: list[Finding], pull: Mapping[str, Any] | None, *, mode: str,
                   no_pull: bool, summary: Mapping[str, Any], rows: list[dict[str, Any]] | None,
                   fix_check: FixCheck | None, first_image: str | None,
                   created: list[Finding] | None = None) -> Verdict:
    rt, image = route.runtime, route.image
    stop = _stops(rt, findings, summary) or next(
        (f for f in _errors(findings) if f.runtime == rt and f.code == "config.short-name-unresolved"
         and f.evidence.get("reference") == image), None)  # the short name resolves to nothing to pull
    if stop is not None:
        why = "the configuration refuses this reference" if stop.code in (
            "config.blocked", "config.short-name-unresolved") else (
            f"{rt} does not start with its configuration" if summary.get("starts") is False else
            f"{rt} cannot load its registry configuration")
        where = stop.evidence.get("file") or stop.subject
        line = stop.evidence.get("line")
        untested = ["network: offline (configuration only)"] if mode == "offline" else []
        return _verdict(rt, image, "fails", f"{rt} cannot pull {image}: {why}: {_reason(stop, rt, None)} "
                        f"({where}{':' + str(line) if line else ''}, configuration).", stop, None, [stop], fix_check,
                        untested, endpoint=None, phase="config")
    planned = [ep for ep in route.endpoints if ep.status != "skipped"]
    if mode == "offline" and planned and all(ep.status == "failed" for ep in planned):
        # Every endpoint fails before any request (certs.d, credential lookup): no network needed to know.
        last = _Attempt({**planned[-1].to_dict(), "phase": "config", "error": planned[-1].reason})
        cause, between = _cause_of(last, rt, image, findings)
        reason = _reason(cause, rt, last) if cause is not None else last.error
        return _verdict(rt, image, "fails", f"{rt} cannot pull {image}: {reason}{_where(last.url, 'config')}.",
                        cause, last, between + [cause], fix_check, ["network: offline (configuration only)"],
                        endpoint=last.url, phase="config")
    if mode == "offline":
        warn = [f for f in findings if _for_runtime(f, rt) and f.severity == "warning" and f.panel == "config"]
        note = f"; {len(warn)} configuration warning(s) to read" if warn else ""
        return Verdict(rt, image, "unknown", f"{rt}: {image} not tested (offline); nothing in the configuration "
                       f"stops the pull{note}.", untested=("network: offline (configuration only)",))
    pulled = bool(pull) and pull.get("runtime") == rt and pull.get("image") == image  # type: ignore[union-attr]
    if pulled:
        assert pull is not None
        attempts = [_Attempt({**r, "details": (pull.get("error") or {}).get("details")
                              if r.get("phase") == "proxy" else None}) for r in pull.get("endpoints") or []]
        untested: list[str] = []
    else:
        attempts = [_Attempt(r) for r in rows or [] if r.get("status") != "skipped"]
        if not attempts:
            attempts = [_Attempt(ep.to_dict()) for ep in route.endpoints if ep.status in ("ok", "failed")]
        if no_pull:
            untested = ["the test pull (--no-pull): layers not downloaded"]
        elif pull and pull.get("runtime") != rt:
            untested = [f"layer downloads: the test pull ran as {pull.get('runtime')}"]
        elif pull or first_image != image:
            untested = ["layer downloads: the test pull covers the first image only"]
        else:
            untested = ["the test pull did not run"]
    tried = [a for a in attempts if a.status in ("ok", "failed")]
    if not tried:
        return Verdict(rt, image, "unknown", f"{rt}: {image} not tested: no endpoint of its route was probed.",
                       untested=tuple(untested or ["every endpoint of the route"]))
    served = next((a for a in attempts if a.status == "ok"), None)
    works = bool(pull.get("ok")) if pulled and pull is not None else served is not None
    if not works:
        error = (pull or {}).get("error") if pulled else None
        shown = _reported(attempts, rt, error)
        if pulled and shown is None:  # failed after resolving (blobs), or before any endpoint
            err = error or {}
            shown = _Attempt({"url": err.get("url") or (pull or {}).get("endpoint") or "", "status": "failed",
                              "phase": err.get("phase"), "kind": err.get("kind"), "http_status": err.get("status"),
                              "details": err.get("details")})
        assert shown is not None
        cause, between = _cause_of(shown, rt, image, findings)
        symptom = [f for f in findings if f.runtime == rt and f.code.startswith("pull.") and f.severity == "error"
                   and f.evidence.get("image", image) == image and f is not cause] if pulled else []
        head = symptom[:1] if symptom and symptom[0].code == "pull.failed" else []
        cause = cause or (symptom[0] if symptom else None)
        if cause is None and not pulled and created is not None:
            cause = _would_fail(rt, image, shown, untested)
            created.append(cause)
        reason = _reason(cause, rt, shown) if cause is not None else (shown.error or "every endpoint fails")
        text = f"{rt} cannot pull {image}: {reason}{_where(shown.url, shown.phase)}."
        return _verdict(rt, image, "fails", text, cause, shown, head + between + [cause], fix_check, untested)
    if served is None and pull is not None:
        served = _Attempt({"url": pull.get("endpoint") or "", "status": "ok"})
    assert served is not None
    costs = _costs(attempts, served, route)
    degrading: list[tuple[int, Finding, _Attempt | None, list[Finding]]] = []
    for f in _degrading(rt, image, findings, route, served):
        rank = 0 if f.code == "mirror.stale" else 3
        degrading.append((rank, f, served if f.code == "mirror.stale" else None, []))
    for a in costs:
        cause, between = _cause_of(a, rt, image, findings)
        if cause is not None:
            degrading.append((1 if a.timed_out else 2, cause, a, between))
    plain = " over plain http" if served.served_url.startswith("http://") else ""
    base = f"{rt} pulls {image} from {_netloc(served.served_url) or served.served_url}{plain}"
    if not degrading:
        if costs:  # a failure no finding explains still costs time
            a = costs[0]
            return Verdict(rt, image, "degraded", f"{base}, after {a.host} fails{_where(a.url, a.phase)}.",
                           untested=tuple(untested), endpoint=served.served_url, endpoint_key=served.key)
        status = "unknown" if no_pull else "ok"
        text = f"{base}." if status == "ok" else (f"{rt}: {image} resolves at {_netloc(served.served_url)}{plain}; "
                                                   "layers not downloaded (--no-pull).")
        return Verdict(rt, image, status, text, untested=tuple(untested), endpoint=served.served_url,
                       endpoint_key=served.key)
    degrading.sort(key=lambda t: t[0])
    _, cause, a, between = degrading[0]
    where = _where(a.url, a.phase if a is not served else "manifest") if a is not None else _where(
        str(cause.evidence.get("endpoint") or ""), None)
    text = f"{base}, but {_reason(cause, rt, a)}{where}."
    # The verdict names the endpoint that served; the one that costs time is the cause's endpoint.
    cause_url = a.url if a is not None else str(cause.evidence.get("endpoint") or "") or None
    v = _verdict(rt, image, "degraded", text, cause, a if a is not served else None, between + [cause],
                 fix_check, untested, endpoint=cause_url, phase="manifest" if a is served else None)
    return replace(v, endpoint=served.served_url or None, endpoint_key=served.key)


def diagnose(findings: list[Finding], routes: list[Route], pull: Mapping[str, Any] | None, *, mode: str = "network",
             no_pull: bool = False, summaries: Mapping[str, Mapping[str, Any]] | None = None,
             probes: Mapping[str, Any] | None = None, fix_check: FixCheck | None = None,
             created: list[Finding] | None = None) -> list[Verdict]:
    """One verdict per route (runtime, image), in route order.

    ``findings`` carry ids; ``routes`` their probed status; ``pull`` is the report's ``pull``
    object (one runtime, the first image); ``mode`` ``offline`` or ``network``; ``summaries`` each
    runtime's effective values (``starts``, ``cri_loads``...); ``probes`` the report's probes (the
    mirrors panel's rows give each endpoint's failure phase); ``fix_check`` says whether a fix
    can be planned (``None``) or why not. A failure no finding explains, where no test pull ran, gets a
    ``pull.would-fail`` finding as its cause; such findings are appended to ``created`` (when given),
    for the report to list.
    """
    rows = _mirror_routes(probes)
    first_image = routes[0].image if routes else None
    if pull:
        first_image = str(pull.get("image"))
    out = []
    for route in routes:
        out.append(_route_verdict(route, findings, pull, mode=mode, no_pull=no_pull,
                                  summary=(summaries or {}).get(route.runtime, {}),
                                  rows=rows.get((route.runtime, route.image)), fix_check=fix_check,
                                  first_image=first_image, created=created))
    return out


def independent(findings: list[Finding], verdicts: list[Verdict]) -> list[str]:
    """Ids of the error findings no verdict's chain explains (each is a problem of its own)."""
    chained = {i for v in verdicts for i in v.chain}
    return [f.id for f in findings if f.severity == "error" and f.id and f.id not in chained]


_COMPONENTS = {"proxy": "the proxy", "dns": "the resolver", "clock": "this host's clock"}


def name_components(findings: list[Finding], verdicts: list[Verdict]) -> list[Finding]:
    """Rules for the symptom at the head of a failing verdict's chain (``pull.failed``).

    A failure that comes from the proxy, the resolver or the clock names that component (the
    error the runtime shows is often about the registry); and the symptom's fix points at the
    cause's fix instead of a generic "fix the cause".
    """
    by_id = {f.id: f for f in findings}
    amended: dict[str, Finding] = {}
    for v in verdicts:
        if v.status != "fails" or v.cause is None or not v.chain:
            continue
        cause, head = by_id.get(v.cause.finding), by_id.get(v.chain[0])
        if cause is None or head is None or head is cause or head.code != "pull.failed":
            continue
        panel = "proxy" if v.cause.code == "tls.intercepted" else v.cause.code.split(".", 1)[0]
        title, detail, evidence = head.title, head.detail, {**head.evidence, "cause": cause.id}
        if panel in _COMPONENTS:
            what = _COMPONENTS[panel]
            if panel == "proxy":
                what += f" {cause.evidence.get('proxy') or cause.subject}"
            elif panel == "dns":
                what += f" (for {cause.evidence.get('host') or cause.subject})"
            phase = head.evidence.get("phase")
            if phase and title.endswith(f"({phase})"):
                title = title[: -len(f"({phase})")] + f"({panel})"
            detail = f"The failure starts at {what} ({cause.code}), not at the registry. " + detail
            evidence["component"] = what
        fx = head.fix
        if fx is not None:
            step = verdict_fix_command(v.fix, findings) if v.fix else (v.manual or cause.title)
            # The step first and plain words last: a value ending in "...@host:port#runtime" after a
            # colon reads as URL credentials to the redactor, which would mask the whole sentence.
            fx = replace(fx, kind="manual", summary=f"{step} (this removes the cause, {cause.code})")
        amended[head.id] = replace(head, title=title, detail=detail, evidence=evidence, fix=fx)
    return [amended.get(f.id, f) for f in findings]
