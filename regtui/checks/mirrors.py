"""The mirrors panel's live probe: every endpoint of every route, concurrently.

For each endpoint a runtime would try: ``GET /v2/`` (reachability, the challenge), the auth
outcome with the runtime's credentials for that host, ``HEAD`` of the manifest with the runtime's
Accept list (its ``Docker-Content-Digest``; a ``GET`` and a hash when the header is missing or
``HEAD`` is refused), rate-limit headers and the latency a pull pays there. Every response's
``Date`` goes to ``ctx.observations["registry_dates"]`` for the clock probe.

Findings: ``mirror.unreachable`` (with the failing phase), ``mirror.http-mismatch`` (an
HTTPS endpoint answered by plain HTTP, or the reverse, confirmed by a second connection),
``mirror.missing-image`` (404 on a mirror), ``mirror.stale`` (a mirror's digest for the tag
differs from upstream's), ``mirror.slower-than-upstream`` (measured), ``mirror.fallback-upstream``
(every mirror failed), ``auth.missing``, ``auth.rejected``, ``auth.rate-limited``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from regtui import redact
from regtui.findings import dedupe, finding, fix
from regtui.model import Endpoint, Finding, Route
from regtui.probecontext import ProbeContext, ProbeResult
from regtui.refs import Reference, ReferenceError, parse
from regtui.registry.diagnose import auth_findings, endpoint_findings, rate_limit_findings, restart_for, source_file
from regtui.registry.errors import Failure, RegistryError, planned_failure, runtime_error, status_failure
from regtui.registry.flavors import Flavor, flavor_for
from regtui.registry.manifest import digest_of
from regtui.registry.pull import candidate_reference, open_session

__all__ = ["probe", "probe_endpoint", "SLOWER_FACTOR", "SLOWER_MIN_MS", "speaks_tls", "speaks_http"]

#: A mirror is "slower than upstream" when it takes this many times longer...
SLOWER_FACTOR = 2.0
#: ...and at least this many milliseconds more than an endpoint after it.
SLOWER_MIN_MS = 100.0
_CONFIRM_KINDS = ("not-http", "reset", "closed", "error")


async def _open(ctx: ProbeContext, url: str, tls: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    lookup = await ctx.resolver.resolve(host)
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return await asyncio.wait_for(
        asyncio.open_connection(lookup.addresses[0], port, ssl=context, server_hostname=host if tls else None),
        ctx.timeouts.connect)


async def speaks_tls(ctx: ProbeContext, url: str) -> bool:
    """The server behind ``url`` completes a TLS handshake (certificate not checked)."""
    try:
        _, writer = await _open(ctx, url, tls=True)
    except (OSError, asyncio.TimeoutError, ssl.SSLError, ValueError, IndexError):
        return False
    writer.close()
    return True


async def speaks_http(ctx: ProbeContext, url: str) -> bool:
    """The server behind ``url`` answers a plain-HTTP request with an HTTP status line."""
    try:
        reader, writer = await _open(ctx, url, tls=False)
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        return False
    try:
        writer.write(f"GET /v2/ HTTP/1.0\r\nHost: {urlsplit(url).netloc}\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.read(5), ctx.timeouts.read)
        return line == b"HTTP/"
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()


async def _confirm_mismatch(ctx: ProbeContext, ep: Endpoint, failure: Failure, url: str) -> Failure:
    """Turn an ambiguous protocol failure into ``http-to-https``/``https-to-http`` when a second connection proves it."""
    if ep.proxy:
        return failure
    if failure.kind == "http-to-https" and url.startswith("https://"):
        if await speaks_http(ctx, "http://" + url[len("https://"):]):
            return Failure(failure.phase, failure.kind, failure.message, failure.go_error, url=failure.url,
                           details={**failure.details, "confirmed": "plain HTTP answered on the same port"})
        return failure
    if url.startswith("http://") and failure.kind in _CONFIRM_KINDS and failure.status is None:
        if await speaks_tls(ctx, "https://" + url[len("http://"):]):
            return Failure("tls", "https-to-http", "the server speaks TLS but is asked in plain HTTP",
                           failure.go_error, url=failure.url, details={"confirmed": "TLS handshake succeeded on the same port",
                                                                        "first_error": failure.message})
    return failure


async def probe_endpoint(ctx: ProbeContext, route: Route, ep: Endpoint, ref: Reference, flavor: Flavor) -> dict[str, Any]:
    """Ping, authenticate and HEAD the manifest on one endpoint; returns its panel row (with private keys)."""
    view = ctx.view(route.runtime)
    session = open_session(ctx, ep, view, flavor, 2)
    row: dict[str, Any] = {"url": ep.url, "key": ep.key, "host": ep.host, "role": ep.role, "source": ep.source, "status": "failed",
                           "phase": None, "http_status": None, "digest": None, "media_type": None, "latency_ms": None,
                           "ping_ms": None, "error": None, "runtime_error": None, "ratelimit": None,
                           "base_url": ep.url, "note": ""}
    in_place = ep.http_fallback and not any(e.url.startswith("http://") and e.host == ep.host for e in route.endpoints)
    began = time.monotonic()
    failure: Failure | None = None
    try:
        try:
            ping = await session.ping()
        except RegistryError as err:
            if not (in_place and err.failure.phase == "tls" and err.failure.kind in ("http-to-https", "timeout")):
                raise
            session.use_plain_http()
            row["note"] = f"over plain http: https got {err.failure.kind} and {route.runtime} falls back to http here"
            ping = await session.ping()
        row["ping_ms"] = round(ping.finish().total, 3)
        if ping.response.status_code not in (200, 401):
            raise RegistryError(_status(ping.response.status_code, f"{session.base_url}/", ping.body))
        digest, media, status = await _manifest_digest(session, ref)
        row.update(status="ok", http_status=status, digest=digest, media_type=media)
        row["latency_ms"] = round((time.monotonic() - began) * 1000, 3)
    except RegistryError as err:
        row["latency_ms"] = round((time.monotonic() - began) * 1000, 3)  # before the confirming connection
        failure = await _confirm_mismatch(ctx, ep, err.failure, session.base_url)
    finally:
        await session.aclose()
    row["base_url"] = session.base_url
    row["authentication"] = session.authorizer.outcome.to_dict()
    row["ratelimit"] = session.ratelimit
    row["extra_endpoints"] = list(session.extra.values())
    if failure is not None:
        row.update(phase=failure.phase, http_status=failure.status, error=failure.message, kind=failure.kind,
                   runtime_error=runtime_error(flavor.name, failure, candidate_reference(route, ep, ref, flavor),
                                               query=ep.query),
                   timed_out=failure.timed_out)
    row["_failure"], row["_outcome"] = failure, session.authorizer.outcome
    return row


def _status(status: int, url: str, body: bytes) -> Failure:
    return status_failure(status, url, body, phase="http")


async def _manifest_digest(session: Any, ref: Reference) -> tuple[str | None, str | None, int]:
    """``HEAD`` the manifest (``GET`` when refused or without a digest); returns digest, media type, status."""
    digest, head = await session.head_digest(ref.reference)
    if digest is not None and head is not None:
        return digest, head.response.headers.get("content-type"), head.response.status_code
    got = await session.manifest(ref.reference, "GET")
    return digest_of(got.body), got.response.headers.get("content-type"), got.response.status_code


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return redact.value({k: v for k, v in row.items() if not k.startswith("_")})


async def _route_rows(ctx: ProbeContext, route: Route) -> list[dict[str, Any]]:
    try:
        ref = parse(route.image)
    except ReferenceError:
        return []
    flavor = flavor_for(route)

    async def row_for(ep: Endpoint) -> dict[str, Any]:
        if ep.status == "skipped":
            return _skipped(ep, ep.reason)
        if ep.status == "failed":
            return _planned_failed(ep, flavor, candidate_reference(route, ep, ref, flavor))
        if flavor.name == "containerd":
            caps = ep.capabilities or ("pull", "resolve")
            need = "pull" if ref.by_digest else "resolve"
            if need not in caps:
                return _skipped(ep, f"capabilities {list(caps)} lack {need!r}")
        return await probe_endpoint(ctx, route, ep, ref, flavor)

    rows = list(await asyncio.gather(*(row_for(ep) for ep in route.endpoints)))
    if flavor.name == "docker":
        _confirmed_tls(rows)
    return rows


def _confirmed_tls(rows: list[dict[str, Any]]) -> None:
    """Docker skips a host's plain-HTTP endpoint once its https endpoint answered over HTTP."""
    spoke = {r["host"] for r in rows if r["url"].startswith("https://") and
             (r["status"] == "ok" or (r.get("_failure") is not None and r["_failure"].transport_ok))}
    for i, r in enumerate(rows):
        if r["url"].startswith("http://") and r["host"] in spoke and r["status"] != "skipped":
            rows[i] = {**_skipped(Endpoint(r["url"], r["host"], r["role"], r["source"], ""),
                                  "dockerd skips plain http once the https endpoint answered (confirmedTLSRegistries)"),
                       "key": r.get("key")}


def _planned_failed(ep: Endpoint, flavor: Flavor, reference: str) -> dict[str, Any]:
    """The row of an endpoint the runtime fails before any request (certs.d, credential lookup): not probed."""
    failure = planned_failure(ep)
    return {"url": ep.url, "host": ep.host, "role": ep.role, "source": ep.source, "status": "failed",
            "phase": "config", "kind": failure.kind, "http_status": None, "error": ep.reason,
            "runtime_error": runtime_error(flavor.name, failure, reference), "timed_out": False,
            "note": "not probed: the runtime fails before sending any request", "_failure": None, "_outcome": None}


def _skipped(ep: Endpoint, reason: str) -> dict[str, Any]:
    """The row of an endpoint the runtime does not try for this reference."""
    return {"url": ep.url, "key": ep.key, "host": ep.host, "role": ep.role, "source": ep.source, "status": "skipped",
            "reason": reason, "_failure": None, "_outcome": None}


def _route_findings(ctx: ProbeContext, route: Route, rows: list[dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    flavor = flavor_for(route)
    http_later = {r["host"] for r in rows if r["url"].startswith("http://")}
    https_hosts = {ep.host for ep in route.endpoints if ep.url.startswith("https://")}
    for ep, row in zip(route.endpoints, rows):
        failure: Failure | None = row.get("_failure")
        if failure is not None:
            handled = ep.http_fallback or (ep.url.startswith("https://") and ep.host in http_later)
            # dockerd's plain-http try of a host it also tries over https is its fallback, not a setting:
            # a TLS answer there only means the https attempt failed for another reason.
            fallback = (flavor.name == "docker" and ep.url.startswith("http://") and ep.host in https_hosts
                        and failure.kind == "https-to-http")
            out += endpoint_findings(route, ep, failure, runtime_error=row.get("runtime_error") or "",
                                     elapsed_ms=row.get("latency_ms"), timeout_s=ctx.timeouts.connect,
                                     handled_by_fallback=(handled and failure.kind == "http-to-https") or fallback)
        if row.get("_outcome") is not None:
            out += auth_findings(route, ep, row["_outcome"], runtime_error=row.get("runtime_error") or "")
            out += rate_limit_findings(route, ep, status=failure.status if failure else None, ratelimit=row.get("ratelimit"),
                                       retry_after=failure.details.get("retry_after") if failure else None)
    out += _stale(route, rows)
    out += _slower(route, rows)
    out += _fallback(route, rows, flavor)
    return out


def _stale(route: Route, rows: list[dict[str, Any]]) -> list[Finding]:
    try:
        if parse(route.image).by_digest:
            return []
    except ReferenceError:
        return []
    upstream = next((r for r in reversed(rows) if r["role"] == "upstream" and r["status"] == "ok" and r.get("digest")), None)
    if upstream is None:
        return []
    out = []
    for ep, row in zip(route.endpoints, rows):
        if row["role"] == "mirror" and row["status"] == "ok" and row.get("digest") and row["digest"] != upstream["digest"]:
            out.append(finding(
                "mirror.stale", ep.host, f"{route.runtime}: mirror {ep.host} serves another image for {route.image}",
                f"{ep.url} resolves the tag to {row['digest']}, upstream {upstream['host']} to {upstream['digest']}. "
                f"{route.runtime} takes the first endpoint that answers, so it pulls the mirror's (older) image.",
                evidence={"runtime": route.runtime, "image": route.image, "endpoint": ep.url, "endpoint_key": ep.key,
                          "source": ep.source, "mirror_digest": row["digest"], "upstream": upstream["url"], "upstream_digest": upstream["digest"]},
                runtime=route.runtime,
                fix=fix("mirror.stale", ep.host, f"refresh {route.image} on {ep.host} (or shorten its cache TTL)",
                        detail=route.runtime, params={"runtime": route.runtime, "endpoint": ep.url}),
            ))
    return out


def _slower(route: Route, rows: list[dict[str, Any]]) -> list[Finding]:
    out = []
    for i, (ep, row) in enumerate(zip(route.endpoints, rows)):
        if row["role"] != "mirror" or row["status"] != "ok" or row.get("latency_ms") is None:
            continue
        later = [r for r in rows[i + 1:] if r["status"] == "ok" and r.get("latency_ms") is not None]
        faster = min(later, key=lambda r: r["latency_ms"], default=None)
        if faster is None:
            continue
        if row["latency_ms"] >= SLOWER_FACTOR * faster["latency_ms"] and row["latency_ms"] - faster["latency_ms"] >= SLOWER_MIN_MS:
            path = source_file(ep.source)
            out.append(finding(
                "mirror.slower-than-upstream", ep.host,
                f"{route.runtime}: mirror {ep.host} answers slower than {faster['host']} behind it",
                f"Resolving {route.image} took {row['latency_ms']:.0f} ms at {ep.url} and {faster['latency_ms']:.0f} ms at "
                f"{faster['url']}, which {route.runtime} only tries afterwards (one measurement each).",
                evidence={"runtime": route.runtime, "endpoint": ep.url, "endpoint_key": ep.key, "latency_ms": row["latency_ms"],
                          "faster_endpoint": faster["url"], "faster_latency_ms": faster["latency_ms"], "source": ep.source},
                runtime=route.runtime,
                fix=fix("mirror.slower-than-upstream", ep.host, f"move {ep.host} after {faster['host']}",
                        files=[path] if path else [], restart=restart_for(route.runtime), detail=route.runtime,
                        params={"runtime": route.runtime, "endpoint": ep.url, "after": faster["url"]}),
            ))
    return out


def _fallback(route: Route, rows: list[dict[str, Any]], flavor: Flavor) -> list[Finding]:
    mirrors = [r for r in rows if r["role"] == "mirror" and r["status"] != "skipped"]
    upstreams = [r for r in rows if r["role"] != "mirror" and r["status"] != "skipped"]
    if not mirrors or not upstreams or any(r["status"] == "ok" for r in mirrors):
        return []
    return [finding(
        "mirror.fallback-upstream", route.image, f"{route.runtime}: every mirror fails, pulls of {route.image} go upstream",
        f"None of the {len(mirrors)} mirror(s) serves {route.image}; {flavor.label} falls back to "
        f"{', '.join(dict.fromkeys(r['host'] for r in upstreams))} after trying each of them.",
        evidence={"runtime": route.runtime, "image": route.image,
                  "mirrors": [{"url": r["url"], "phase": r.get("phase"), "error": r.get("error")} for r in mirrors],
                  "upstream": [r["url"] for r in upstreams]},
        runtime=route.runtime,
    )]


async def probe(ctx: ProbeContext) -> ProbeResult:
    """Probe every endpoint of every route concurrently (see the module docstring)."""
    all_rows = await asyncio.gather(*(_route_rows(ctx, route) for route in ctx.routes))
    data: dict[str, Any] = {"routes": []}
    findings: list[Finding] = []
    extra = ctx.observations.setdefault("extra_endpoints", [])
    status = ctx.observations.setdefault("endpoint_status", {})
    for route, rows in zip(ctx.routes, all_rows):
        findings += _route_findings(ctx, route, rows)
        for ep, row in zip(route.endpoints, rows):
            if row["status"] in ("ok", "failed"):  # by identity: one URL may be two endpoints (other TLS inputs)
                status[(route.runtime, ep.key)] = (row["status"], row.get("error") or row.get("note") or "")
        for row in rows:
            for entry in row.get("extra_endpoints", []) or []:
                if not any(e.get("host") == entry.get("host") and e.get("runtime") == route.runtime for e in extra):
                    extra.append({**entry, "runtime": route.runtime})
        data["routes"].append({"runtime": route.runtime, "image": route.image, "mode": route.mode,
                               "endpoints": [_public(r) for r in rows]})
    return ProbeResult("mirrors", data, dedupe(findings))
