"""Findings about one endpoint's failure, shared by the test pull and the mirrors probe.

Both see the same failures (a mirror that times out, an HTTP/HTTPS mismatch, a 404 for the
tag, credentials refused, a rate limit); building the finding in one place keeps code, title and
evidence identical, so the engine's de-duplication keeps one of them.
"""

from __future__ import annotations

from typing import Any

from regtui import redact
from regtui.findings import finding, fix
from regtui.model import Endpoint, Finding, Route, split_location
from regtui.registry.auth import AuthOutcome
from regtui.registry.errors import Failure

__all__ = [
    "TRANSPORT_PHASES",
    "MISMATCH_KINDS",
    "source_file",
    "restart_for",
    "is_transport",
    "endpoint_findings",
    "auth_findings",
    "redirect_challenge_finding",
    "rate_limit_findings",
    "ratelimit_exhausted",
]

#: Phases in which the endpoint never answered as a registry.
TRANSPORT_PHASES = ("dns", "connect", "proxy", "tls", "http")
#: Failure kinds that mean the endpoint speaks the other protocol (HTTP vs HTTPS).
MISMATCH_KINDS = ("http-to-https", "https-to-http")
_RESTART = {"docker": "reload docker", "containerd": "none", "k3s": "restart k3s", "crio": "reload crio"}


def source_file(source: str) -> str | None:
    """The host path in a ``path:line`` provenance, or ``None`` for ``default (...)``."""
    if not source.startswith("/"):
        return None
    path, line = split_location(source)
    return path if line is not None else source


def restart_for(runtime: str) -> str:
    """What makes a registry config change take effect for ``runtime``."""
    return _RESTART.get(runtime, "none")


def is_transport(failure: Failure) -> bool:
    """The endpoint did not answer as a registry (DNS, connect, proxy, TLS, or no HTTP answer)."""
    return failure.phase in TRANSPORT_PHASES and failure.status is None


def _base_evidence(route: Route, ep: Endpoint, failure: Failure, runtime_error: str, elapsed_ms: float | None) -> dict[str, Any]:
    return redact.value({
        "runtime": route.runtime, "image": route.image, "endpoint": ep.url, "endpoint_key": ep.key, "role": ep.role,
        "source": ep.source, "phase": failure.phase, "kind": failure.kind, "error": failure.message, "go_error": failure.go_error,
        "http_status": failure.status, "timed_out": failure.timed_out,
        "elapsed_ms": None if elapsed_ms is None else round(elapsed_ms, 1),
        "runtime_will_report": runtime_error,
    })


def _edit_fix(code: str, route: Route, ep: Endpoint, summary: str, **params: Any) -> Any:
    path = source_file(ep.source)
    return fix(code, ep.host, summary, files=[path] if path else [], restart=restart_for(route.runtime),
               detail=route.runtime, params={"runtime": route.runtime, "endpoint": ep.url, "source": ep.source, **params})


def endpoint_findings(route: Route, ep: Endpoint, failure: Failure, *, runtime_error: str = "",
                      elapsed_ms: float | None = None, timeout_s: float | None = None,
                      handled_by_fallback: bool = False) -> list[Finding]:
    """Mirror findings for ``failure`` at ``ep`` (``mirror.http-mismatch``/``unreachable``/``missing-image``).

    ``handled_by_fallback``: the runtime itself retries the host in plain HTTP, so an
    HTTP-on-HTTPS answer is not a misconfiguration.
    """
    evidence = _base_evidence(route, ep, failure, runtime_error, elapsed_ms)
    rt = route.runtime
    if failure.kind in MISMATCH_KINDS and not handled_by_fallback:
        plain = failure.kind == "http-to-https"
        want = "http://" if plain else "https://"
        what = ("speaks plain HTTP but is configured as HTTPS" if plain
                else "speaks HTTPS but is configured as plain HTTP")
        return [finding(
            "mirror.http-mismatch", ep.host, f"{rt}: {ep.host} {what}",
            f"{rt} connects to {ep.url} with {'TLS' if plain else 'plain HTTP'}, and the server answers in the other "
            f"protocol, so this endpoint can never serve a pull"
            + (" (the runtime moves on to the next endpoint)." if ep.role == "mirror" else "."),
            evidence=evidence, runtime=rt,
            fix=_edit_fix("mirror.http-mismatch", route, ep, f"use {want}{ep.host} for this endpoint"
                          + (" (or list the host as insecure)" if plain else ""), scheme=want.rstrip(":/")),
        )]
    if ep.role != "mirror":
        return []
    if is_transport(failure) or failure.kind in ("deadline", "stalled"):  # an answer that never ends
        wait = ""
        if failure.timed_out:
            wait = f" Each pull waits {timeout_s:g} s for it first." if timeout_s else " Each pull waits for its timeout first."
        return [finding(
            "mirror.unreachable", ep.host, f"{rt}: mirror {ep.host} is unreachable ({failure.phase})",
            f"{rt} tries {ep.url} before the endpoints after it; it fails at the {failure.phase} phase "
            f"({failure.message}), so every pull pays its timeout before falling back.{wait}",
            evidence=evidence, runtime=rt,
            fix=_edit_fix("mirror.unreachable", route, ep, f"remove {ep.host} from the mirrors, or move it after a working one"),
        )]
    if failure.status == 404:
        return [finding(
            "mirror.missing-image", ep.host, f"{rt}: mirror {ep.host} does not have {route.image}",
            f"{ep.url} answers 404 for the reference; {rt} falls back to the next endpoint, so the mirror saves "
            "nothing for this image (a pull-through cache that cannot reach upstream does this too).",
            evidence=evidence, runtime=rt,
            fix=fix("mirror.missing-image", ep.host, f"push or cache {route.image} on {ep.host}", detail=rt,
                    params={"runtime": rt, "endpoint": ep.url, "image": route.image}),
        )]
    return []


def auth_findings(route: Route, ep: Endpoint, outcome: AuthOutcome, *, runtime_error: str = "") -> list[Finding]:
    """``auth.missing`` / ``auth.rejected`` for an endpoint whose authentication failed; ``auth.redirect-challenge``."""
    rt = route.runtime
    out = [redirect_challenge_finding(route, ep, r, runtime_error=runtime_error) for r in outcome.redirects]
    return out + _auth_status_findings(route, ep, outcome, runtime_error=runtime_error)


def redirect_challenge_finding(route: Route, ep: Endpoint, record: dict[str, Any], *, runtime_error: str = "") -> Finding:
    """``auth.redirect-challenge``: ``ep`` redirected to another host that asked for credentials."""
    rt = route.runtime
    failed = record.get("status") != "ok"
    target = str(record.get("host") or "")
    evidence = redact.value({
        "runtime": rt, "image": route.image, "endpoint": ep.url, "endpoint_key": ep.key, "role": ep.role,
        "endpoint_host": ep.host,
        "redirect_host": target, "redirect_url": record.get("url"), "scheme": record.get("scheme"),
        "endpoint_credentials": ep.credentials, "redirect_credentials": record.get("credentials"),
        "runtime_sends": record.get("runtime_sends"), "result": "the request fails" if failed else "authorized",
        "detail": record.get("detail"), "runtime_error": record.get("runtime_error") if failed else None,
        "runtime_will_report": runtime_error if failed else "",
    })
    outcome = (f"; the request fails there ({record.get('detail') or 'unauthorized'})" if failed
               else f"; {target} accepts them")
    return finding(
        "auth.redirect-challenge", ep.host, f"{rt}: {ep.host} redirects to {target}, which asks for credentials",
        f"{ep.url} redirects a request to {target}, and {target} answers 401 "
        f"({record.get('scheme') or 'no usable challenge'}). {rt} never sends the credentials of {ep.host} to "
        f"another host. It sends {record.get('runtime_sends') or 'nothing'}{outcome}.",
        evidence=evidence, runtime=rt, severity="error" if failed else "warning",
        fix=fix("auth.redirect-challenge", ep.host, f"make {ep.host} redirect to a host that needs no credentials"
                + (f", or configure credentials for {target}" if rt in ("containerd", "k3s") else ""),
                detail=rt, params={"runtime": rt, "host": ep.host, "redirect_host": target}),
    )


def _auth_status_findings(route: Route, ep: Endpoint, outcome: AuthOutcome, *, runtime_error: str = "") -> list[Finding]:
    rt = route.runtime
    evidence = redact.value({"runtime": rt, "image": route.image, "endpoint": ep.url, "endpoint_key": ep.key,
                             "role": ep.role, "authentication": outcome.to_dict(), "credentials_source": ep.credentials or outcome.credentials,
                             "runtime_will_report": runtime_error})
    if outcome.status == "missing":
        return [finding(
            "auth.missing", ep.host, f"{rt}: {ep.host} requires credentials and none apply",
            f"{ep.url} asks for authentication ({outcome.scheme or 'unknown scheme'}) and {rt} has no credentials "
            f"for {ep.host}" + (" (anonymous token refused)" if outcome.method == "token-anonymous" else "") + ".",
            evidence=evidence, runtime=rt,
            fix=fix("auth.missing", ep.host, f"log in to {ep.host} the way {rt} reads credentials", detail=rt,
                    params={"runtime": rt, "host": ep.host}),
        )]
    if outcome.status == "rejected":
        return [finding(
            "auth.rejected", ep.host, f"{rt}: {ep.host} refuses the credentials that apply",
            f"{rt} sends the credentials from {outcome.credentials or 'its configuration'} to {ep.url}, and they are "
            "refused (wrong password, expired token, or no access to this repository).",
            evidence=evidence, runtime=rt,
            fix=fix("auth.rejected", ep.host, f"renew the credentials for {ep.host}", detail=rt,
                    params={"runtime": rt, "host": ep.host, "source": outcome.credentials}),
        )]
    return []


def ratelimit_exhausted(ratelimit: dict[str, str] | None) -> bool:
    """``ratelimit-remaining`` is 0 (``0;w=21600``)."""
    if not ratelimit:
        return False
    head = (ratelimit.get("remaining") or "").split(";", 1)[0].strip()
    return head.isdigit() and int(head) == 0


def rate_limit_findings(route: Route, ep: Endpoint, *, status: int | None, ratelimit: dict[str, str] | None,
                        retry_after: str | None = None) -> list[Finding]:
    """``auth.rate-limited`` for a 429 or an exhausted ``ratelimit-remaining``."""
    if status != 429 and not ratelimit_exhausted(ratelimit):
        return []
    rt = route.runtime
    return [finding(
        "auth.rate-limited", ep.host, f"{rt}: {ep.host} rate-limits pulls",
        f"{ep.url} " + ("answers 429 Too Many Requests" if status == 429 else "reports ratelimit-remaining 0")
        + "; pulls fail until the window resets. Authenticated pulls (with credentials keyed as the runtime looks "
        "them up) or a pull-through cache raise the limit.",
        evidence=redact.value({"runtime": rt, "endpoint": ep.url, "endpoint_key": ep.key, "http_status": status, "ratelimit": ratelimit,
                               "retry_after": retry_after}),
        runtime=rt,
        fix=fix("auth.rate-limited", ep.host, "authenticate pulls or add a pull-through cache", detail=rt,
                params={"runtime": rt, "host": ep.host}),
    )]
