"""One endpoint, spoken to the way the runtime speaks to it.

A :class:`Session` holds what a runtime uses for one endpoint: the TLS context built from the
endpoint's trust inputs, the *daemon's* proxy decision per URL (Go rules, so a redirect or token
host may go through a different proxy than the endpoint), the credentials the runtime picks for
that host, and the runtime's Accept list. It:

- times every request with :class:`~regtui.net.http.TraceRecorder` (DNS charged to the request);
- answers ``401`` challenges through :class:`~regtui.registry.auth.Authorizer` and retries;
- follows redirects itself (at most 10, as Go), sending ``Authorization`` only to the same host
  (or a subdomain, Go's rule) so a CDN never sees the registry's token; a redirect target that
  challenges gets only what the runtime has for that host (see :mod:`regtui.registry.auth`); records every other
  host it is sent to (and every token realm) as an *extra endpoint* with its DNS answer, proxy
  decision and TLS inputs;
- notes ``Date`` headers (for the clock panel) and ``ratelimit-*`` headers;
- never buffers a body it was not asked to: error bodies are read up to 64 KiB, manifests up
  to 4 MiB, blobs are streamed by the caller;
- gives every request an overall deadline (:attr:`~regtui.net.http.Timeouts.exchange`) from the
  request to its headers and, for a body it reads itself (ping, token, error, manifest), to the
  last byte: a server that drips bytes ends in a ``deadline`` failure naming the endpoint, the
  phase and the bytes received. Streamed blob bodies are guarded by a throughput rule instead
  (:mod:`regtui.registry.blobs`).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

import httpx

from regtui.credentials import Credential
from regtui.host import Host
from regtui.model import Endpoint
from regtui.net.http import (PhaseTimings, Timeouts, TraceRecorder, build_ssl_context, current_recorder, make_client,
                             reset_recorder)
from regtui.net.pipe import Consumer, PipeStream, TakenBody
from regtui.net.proxy import ProxyEnv, decide
from regtui.net.resolver import Resolver
from regtui.registry.auth import MAX_TOKEN_RESPONSE, Authorizer, CredentialLookup
from regtui.registry.errors import Failure, RegistryError, classify_exception, display_url, status_failure
from regtui.registry.manifest import ACCEPT, MAX_MANIFEST_BYTES, valid_digest

__all__ = ["Hop", "Exchange", "Session", "MAX_REDIRECTS", "ERROR_BODY_LIMIT", "sum_timings", "deadline_failure",
           "BODY_READER_ENV", "LEAN_MIN_BYTES"]

#: Redirects followed before giving up (Go's http.Client stops after 10).
MAX_REDIRECTS = 10
#: Bytes of an error or discarded body that are read (the rest is dropped with the connection).
ERROR_BODY_LIMIT = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
#: Environment switch for 2xx blob bodies: ``lean`` (every body the pipe can take), ``httpx``
#: (never), unset or ``auto`` (bodies of at least :data:`LEAN_MIN_BYTES`).
BODY_READER_ENV = "REGTUI_BLOB_BODY"
#: Smallest body read through the lean path by default: a taken-over connection is not reused,
#: so a blob is cheaper on a kept-alive httpx connection until the lean path's lower cost per
#: byte pays for a new connection and a thread (between 2 and 4 MB on the lab registry: 50
#: layers of 2 MB pull faster through httpx, 25 of 4 MB faster lean).
LEAN_MIN_BYTES = 3 * 1024 * 1024
_MAX_HOPS_KEPT = 64


@dataclass
class Hop:
    """One request on the wire and its phase timings."""

    method: str
    url: str
    """Redacted, without query."""
    host: str
    status: int | None
    timings: PhaseTimings
    peer: str | None = None
    proxy: str | None = None
    authorization_sent: bool = False
    failure: Failure | None = None
    started: float = 0.0
    """``time.monotonic()`` at the start."""
    tls: dict[str, Any] | None = None
    """The TLS session the response came over: version, cipher, the server certificate's SHA-256."""
    deadline: float | None = None
    """Event-loop time by which this request's bounded body must be read whole."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"method": self.method, "url": self.url, "host": self.host, "status": self.status,
                "timings_ms": self.timings.to_dict(), "peer": self.peer, "proxy": self.proxy,
                "authorization_sent": self.authorization_sent, "tls": self.tls,
                "failure": self.failure.to_dict() if self.failure else None}


def tls_session(response: httpx.Response) -> dict[str, Any] | None:
    """What the TLS connection under ``response`` negotiated, or ``None`` for plain HTTP."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    cert = ssl_object.getpeercert() or {}
    subject = ", ".join("=".join(pair) for rdn in cert.get("subject", ()) for pair in rdn) or None
    cipher = ssl_object.cipher()
    return {"version": ssl_object.version(), "cipher": cipher[0] if cipher else None,
            "peer_sha256": hashlib.sha256(der).hexdigest() if der else None,
            "peer_subject": subject, "peer_not_after": cert.get("notAfter")}


@dataclass
class Exchange:
    """A logical request: its hops (auth retries, redirects) and the final response."""

    response: httpx.Response
    hops: list[Hop]
    started: float
    recorder: TraceRecorder
    """The final hop's recorder: :meth:`finish` it after reading a streamed body."""
    final_url: str
    body: bytes = b""
    """The body, when the request was not streamed."""

    def finish(self) -> PhaseTimings:
        """Close the final hop's measurement and return the timings of the whole exchange."""
        self.hops[-1].timings = self.recorder.finish()
        return sum_timings(self.hops, self.started, self.recorder.end or time.monotonic())


def sum_timings(hops: list[Hop], started: float, ended: float) -> PhaseTimings:
    """Phase sums over ``hops``; time between hops (token fetches, backoff) counts as waiting (``ttfb``).

    The five phases always add up to ``total`` = ``ended - started``.
    """
    total = max(0.0, (ended - started) * 1000.0)

    def add(name: str) -> float | None:
        values = [getattr(h.timings, name) for h in hops if getattr(h.timings, name) is not None]
        return sum(values) if values else None

    dns, connect, tls = add("dns"), add("connect"), add("tls")
    transfer = add("transfer") or 0.0
    known = (dns or 0.0) + (connect or 0.0) + (tls or 0.0) + transfer
    if known > total:  # clock granularity: scale down rather than report negative waiting
        scale = total / known if known else 0.0
        dns, connect, tls = (None if v is None else v * scale for v in (dns, connect, tls))
        transfer *= scale
        known = total
    reused = bool(hops) and all(h.timings.reused for h in hops)
    return PhaseTimings(dns, connect, tls, total - known, transfer, total, reused=reused)


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def deadline_failure(url: str, phase: str, received: int, seconds: float, status: int | None = None,
                     what: str = "answer") -> Failure:
    """The failure of a request whose ``what`` did not arrive whole within its overall deadline."""
    host = _netloc(url)
    return Failure(phase, "deadline", f"{host} did not send the whole {what} within {seconds:g} s "
                   f"({phase} phase, {received} bytes of body received)",
                   "context deadline exceeded", url=display_url(url), timed_out=True,
                   details={"endpoint": host, "phase": phase, "bytes_received": received, "deadline_s": seconds,
                            **({"http_status": status} if status is not None else {})})


def _redirect_target(current: str, location: str) -> str | None:
    """The absolute http(s) URL a ``Location`` points to, or ``None`` when it is unusable."""
    try:
        target = urljoin(current, location)
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return None
    return target if parts.scheme in ("http", "https") and parts.hostname else None


def _keeps_authorization(origin: str, target: str) -> bool:
    """Go's rule: credentials follow a redirect to the same host or one of its subdomains only."""
    if origin == target:
        return True
    o, t = urlsplit("//" + origin).hostname or "", urlsplit("//" + target).hostname or ""
    return t == o or t.endswith("." + o)


class Session:
    """Requests to one endpoint with the runtime's TLS, proxy, credentials and Accept list."""

    def __init__(self, host: Host, endpoint: Endpoint, *, resolver: Resolver, timeouts: Timeouts,
                 proxy_env: ProxyEnv, credential: Credential | None = None, flavor: str = "docker",
                 max_connections: int = 4, daemon_env: dict[str, str] | None = None,
                 on_date: Callable[[dict[str, Any]], None] | None = None,
                 credentials: CredentialLookup | None = None) -> None:
        """``credential``: what the runtime sends to the endpoint's host; ``credentials``: its lookup for other hosts."""
        self.host = host
        self.endpoint = endpoint
        self.base_url = endpoint.url.rstrip("/")
        self.resolver = resolver
        self.timeouts = timeouts
        self.proxy_env = proxy_env
        self.flavor = flavor
        self.accept = ", ".join(ACCEPT.get(flavor, ACCEPT["docker"]))
        self.scope = f"repository:{endpoint.repository}:pull"
        self.max_connections = max_connections
        self.ssl_context, self.tls_setup = build_ssl_context(host, endpoint.tls, daemon_env)
        self.authorizer = Authorizer(credential, self._token_send, flavor=flavor, host=_netloc(self.base_url),
                                     lookup=credentials)
        self.credential_source = credential.source if credential else None
        self.hops: list[Hop] = []
        self.extra: dict[str, dict[str, Any]] = {}
        """Hosts other than the endpoint's that requests went to (redirect targets, token realms)."""
        self.dates: list[dict[str, Any]] = []
        self.ratelimit: dict[str, str] | None = None
        self.on_date = on_date
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        reader = os.environ.get(BODY_READER_ENV, "auto").strip().lower()
        self.body_reader = reader if reader in ("lean", "httpx") else "auto"
        """How 2xx blob bodies are read: ``lean``, ``httpx`` or ``auto`` (see :meth:`take_body`)."""

    # -- plumbing --------------------------------------------------------------------------
    def _client(self, url: str) -> tuple[httpx.AsyncClient, Any]:
        decision = decide(self.proxy_env, url)
        client = self._clients.get(decision.url)
        if client is None:
            client = make_client(self.resolver, self.ssl_context, proxy=decision.url, timeouts=self.timeouts,
                                 max_connections=self.max_connections, streams="asyncio")
            self._clients[decision.url] = client
        return client, decision

    async def aclose(self) -> None:
        """Close every connection."""
        for client in self._clients.values():
            try:
                await client.aclose()
            except Exception:  # closing a broken connection must not mask the real result
                pass
        self._clients.clear()

    def url(self, kind: str, reference: str) -> str:
        """URL of ``manifests/<ref>`` or ``blobs/<digest>`` on this endpoint (with the runtime's query)."""
        url = f"{self.base_url}/{self.endpoint.repository}/{kind}/{reference}"
        return f"{url}?{self.endpoint.query}" if self.endpoint.query else url

    def use_plain_http(self) -> None:
        """Switch to ``http://`` for the same host (the runtime's HTTPS -> HTTP fallback)."""
        if self.base_url.startswith("https://"):
            self.base_url = "http://" + self.base_url[len("https://"):]

    def _observe(self, response: httpx.Response) -> None:
        date = response.headers.get("date")
        if date:
            record = {"endpoint": self.endpoint.url, "url": display_url(str(response.request.url)),
                      "date": date[:64], "local_time": self.host.now().isoformat()}
            if len(self.dates) < _MAX_HOPS_KEPT:
                self.dates.append(record)
            if self.on_date:
                self.on_date(record)
        limit, remaining = response.headers.get("ratelimit-limit"), response.headers.get("ratelimit-remaining")
        if limit is not None or remaining is not None:
            self.ratelimit = {"limit": (limit or "")[:64], "remaining": (remaining or "")[:64],
                              "source": (response.headers.get("docker-ratelimit-source") or "")[:64]}

    def _lookup(self, hostname: str, since: float) -> dict[str, Any] | None:
        for lk in reversed(self.resolver.log[-256:]):
            if lk.name.strip("[]").lower() == hostname.lower() and lk.started >= since - 0.001:
                return lk.to_dict()
        return None

    def _record_extra(self, url: str, kind: str, hop: Hop, decision: Any) -> None:
        netloc = _netloc(url)
        if netloc == _netloc(self.base_url):
            return
        entry = self.extra.get(netloc)
        hostname = urlsplit(url).hostname or ""
        if entry is None:
            entry = {"host": netloc, "url": f"{urlsplit(url).scheme}://{netloc}", "kind": kind,
                     "via": self.endpoint.url, "role": "redirect" if kind == "redirect" else "token-realm",
                     "proxy": decision.proxy, "proxy_reason": decision.reason,
                     "tls": {**self.endpoint.tls.to_dict(), "applies": url.startswith("https://")},
                     "requests": 0, "authorization_sent": False}
            self.extra[netloc] = entry
        entry["requests"] += 1
        entry["authorization_sent"] = entry["authorization_sent"] or hop.authorization_sent
        entry["status"] = hop.status
        entry["peer"] = hop.peer or entry.get("peer")
        if hop.tls:
            entry["tls_session"] = hop.tls
        dns = self._lookup(hostname, hop.started)
        if dns is not None:
            entry["dns"] = dns
        if hop.failure is not None:
            entry["failure"] = hop.failure.to_dict()

    def _keep(self, hop: Hop) -> None:
        if len(self.hops) < _MAX_HOPS_KEPT:
            self.hops.append(hop)

    async def _send_once(self, method: str, url: str, headers: dict[str, str], form: dict[str, str] | None = None,
                         kind: str | None = None) -> tuple[httpx.Response, Hop, TraceRecorder, Any]:
        """One request; raises :class:`RegistryError` (with ``.hop``) on a transport failure.

        ``kind`` (``redirect``/``token-realm``) records the target as an extra endpoint when it fails.
        """
        try:
            client, decision = self._client(url)
        except ValueError as exc:  # a proxy URL httpx cannot use
            raise RegistryError(Failure("proxy", "bad-url", f"unusable proxy URL ({exc})", str(exc),
                                        url=display_url(url))) from None
        rec = TraceRecorder()
        token: contextvars.Token[Any] = current_recorder(rec)
        hop = Hop(method, display_url(url), _netloc(url), None, PhaseTimings(None, None, None, 0, 0, 0),
                  proxy=decision.proxy, authorization_sent="Authorization" in headers, started=rec.start)
        hop.deadline = asyncio.get_running_loop().time() + self.timeouts.exchange
        try:
            request = client.build_request(method, url, headers=headers, data=form,
                                           extensions=rec.extensions(self.timeouts))
            async with asyncio.timeout_at(hop.deadline):  # headers dripped byte by byte stop here
                response = await client.send(request, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, TimeoutError) as exc:  # InvalidURL: a hostile Location
            if isinstance(exc, TimeoutError):
                hop.failure = deadline_failure(url, "http", 0, self.timeouts.exchange, what="response headers")
            else:
                hop.failure = classify_exception(exc, url, events=rec.events, peer=rec.peer, proxy=decision.proxy)
            hop.timings, hop.peer = rec.finish(), rec.peer
            self._keep(hop)
            if kind:
                self._record_extra(url, kind, hop, decision)
            err = RegistryError(hop.failure)
            err.hop = hop  # type: ignore[attr-defined]
            raise err from None
        finally:
            reset_recorder(token)
        hop.status, hop.peer = response.status_code, rec.peer
        if url.startswith("https://"):
            hop.tls = tls_session(response)
        self._observe(response)
        return response, hop, rec, decision

    async def read_capped(self, response: httpx.Response, limit: int, *, deadline: float | None = None,
                          phase: str = "http", what: str = "body") -> tuple[bytes, bool]:
        """Up to ``limit`` bytes of the body; ``(body, truncated)``. The response is closed.

        ``deadline`` (event-loop time, default one :attr:`Timeouts.exchange` from now) bounds the
        whole read: past it a :class:`RegistryError` with a ``deadline`` failure is raised. A
        transport error is re-raised with the bytes received so far in ``regtui_received``.
        """
        chunks: list[bytes] = []
        size = 0
        truncated = False
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.timeouts.exchange
        try:
            async with asyncio.timeout_at(deadline):
                async for chunk in response.aiter_raw():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:
                        truncated = True
                        break
        except TimeoutError:
            raise RegistryError(deadline_failure(str(response.request.url), phase, size, self.timeouts.exchange,
                                                 response.status_code, what)) from None
        except httpx.HTTPError as exc:
            exc.regtui_received = size  # type: ignore[attr-defined]
            raise
        finally:
            await response.aclose()
        return b"".join(chunks)[: limit + 1 if truncated else size], truncated

    async def _token_send(self, method: str, url: str, headers: dict[str, str],
                          form: dict[str, str] | None) -> httpx.Response:
        response, hop, rec, decision = await self._send_once(method, url, {"User-Agent": "regtui", **headers}, form,
                                                             kind="token-realm")
        try:
            body, _ = await self.read_capped(response, MAX_TOKEN_RESPONSE, deadline=hop.deadline, phase="auth",
                                             what="token answer")
        except RegistryError as err:
            hop.failure = err.failure
            raise
        except httpx.HTTPError as exc:
            hop.failure = _with_received(classify_exception(exc, url, events=rec.events, peer=rec.peer,
                                                            proxy=decision.proxy), exc)
            raise RegistryError(hop.failure) from None
        finally:
            hop.timings = rec.finish()
            self._keep(hop)
            self._record_extra(url, "token-realm", hop, decision)
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=response.request)

    # -- the logical request ---------------------------------------------------------------
    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, stream: bool = False,
                      limit: int = ERROR_BODY_LIMIT, phase: str = "http") -> Exchange:
        """``method url`` with auth retries and manual redirects.

        Non-streamed: the body (at most ``limit`` bytes, else a ``too-large`` failure) is in
        ``Exchange.body``. Streamed: a 2xx response is returned unread (the caller reads, then calls
        :meth:`Exchange.finish` and closes it); error statuses are always read (64 KiB) and closed.
        """
        started = time.monotonic()
        hops: list[Hop] = []
        try:
            return await self._request(method, url, headers, stream, limit, hops, started, phase)
        except RegistryError as err:
            err.hops = hops  # type: ignore[attr-defined]
            err.started = started  # type: ignore[attr-defined]
            raise

    async def _request(self, method: str, url: str, headers: dict[str, str] | None, stream: bool, limit: int,
                       hops: list[Hop], started: float, phase: str) -> Exchange:
        current = url
        origin_auth: tuple[str, str] | None = None  # (host, header) of the last Authorization sent
        redirects = auth_rounds = 0
        while True:
            netloc = _netloc(current)
            auth = self.authorizer.authorization(netloc, self.scope)
            if auth is None and origin_auth and _keeps_authorization(origin_auth[0], netloc):
                auth = origin_auth[1]
            sent = {"User-Agent": "regtui", "Accept-Encoding": "identity", **(headers or {})}
            if auth:
                sent["Authorization"] = auth
            try:
                response, hop, rec, decision = await self._send_once(method, current, sent,
                                                                     kind="redirect" if redirects else None)
            except RegistryError as err:
                if getattr(err, "hop", None) is not None:
                    hops.append(err.hop)  # type: ignore[attr-defined]
                raise
            hops.append(hop)
            if redirects:
                self._record_extra(current, "redirect", hop, decision)
            status = response.status_code
            if status == 401 and auth_rounds < 3:
                auth_rounds += 1
                body, _ = await self._drain(response, hop, rec, what="401 answer")
                await self.authorizer.handle(netloc, response, self.scope, sent_auth="Authorization" in sent)
                continue
            if status in _REDIRECTS and response.headers.get("location"):
                await self._drain(response, hop, rec, what="redirect answer")
                redirects += 1
                target = _redirect_target(current, response.headers["location"][:8192])
                if redirects > MAX_REDIRECTS or target is None:
                    shown = display_url(target or response.headers["location"][:200])
                    why = "stopped after 10 redirects" if target else f"invalid redirect location {shown!r}"
                    raise RegistryError(Failure("http", "bad-redirect", f"redirect to {shown!r} not followed "
                                                f"(hop {redirects})", why, url=display_url(current), status=status,
                                                transport_ok=True))
                if auth:
                    origin_auth = (netloc, auth)
                if status == 303 and method != "HEAD":
                    method = "GET"
                current = target
                continue
            exchange = Exchange(response, hops, started, rec, current)
            if stream and 200 <= status < 300:
                self._keep(hop)
                return exchange
            ok = 200 <= status < 300
            body, truncated = await self._drain(response, hop, rec, limit if ok else ERROR_BODY_LIMIT,
                                                phase=phase, what="body" if ok else "error body")
            if truncated and 200 <= status < 300:
                raise RegistryError(Failure(phase, "too-large", f"response body larger than {limit} bytes",
                                            f"content at {display_url(current)} exceeds the limit of {limit} bytes",
                                            url=display_url(current), status=status, transport_ok=True))
            exchange.body = body
            return exchange

    async def _drain(self, response: httpx.Response, hop: Hop, rec: TraceRecorder,
                     limit: int = ERROR_BODY_LIMIT, *, phase: str = "http", what: str = "body") -> tuple[bytes, bool]:
        try:
            body, truncated = await self.read_capped(response, limit, deadline=hop.deadline, phase=phase, what=what)
        except RegistryError as err:
            hop.failure = err.failure
            hop.timings = rec.finish()
            self._keep(hop)
            raise
        except httpx.HTTPError as exc:
            hop.failure = _with_received(classify_exception(exc, str(response.request.url), events=rec.events,
                                                            peer=rec.peer), exc)
            hop.timings = rec.finish()
            self._keep(hop)
            raise RegistryError(hop.failure) from None
        hop.timings = rec.finish()
        self._keep(hop)
        return body, truncated

    def take_body(self, response: httpx.Response, consumer: Consumer, size: int) -> TakenBody | None:
        """Read the 2xx body of ``response`` (``size`` bytes expected) through the lean path, if it can.

        A thread reads the body off the connection and gives it to ``consumer`` (called in that
        thread; see :mod:`regtui.net.pipe`); the returned body's ``done`` future ends with it (a
        transport failure is an httpcore ``ReadError``/``RemoteProtocolError``/``ReadTimeout``, a
        consumer's exception is re-raised).
        ``None`` means the caller reads the body through httpx: the switch says so, the body is
        small (``auto``), or the response came another way (an ``https://`` proxy's TLS-in-TLS,
        HTTP/2, a ``Transfer-Encoding``, a malformed ``Content-Length``).
        """
        if self.body_reader == "httpx" or (self.body_reader == "auto" and size < LEAN_MIN_BYTES):
            return None
        stream = response.extensions.get("network_stream")
        if not isinstance(stream, PipeStream) or response.http_version not in ("HTTP/1.1", "HTTP/1.0"):
            return None
        if "transfer-encoding" in response.headers:
            return None
        length: int | None = None
        declared = response.headers.get_list("content-length")
        if declared:
            if len(set(declared)) != 1 or not declared[0].strip().isdigit():
                return None
            length = int(declared[0].strip())
        return stream.take_body(consumer, length, idle_limit=2 * self.timeouts.read + 1)

    # -- registry calls --------------------------------------------------------------------
    async def ping(self) -> Exchange:
        """``GET /v2/`` (200 or 401 both confirm a registry); raises on transport failures only."""
        return await self._plain(f"{self.base_url}/")

    async def _plain(self, url: str) -> Exchange:
        """A GET with no auth handling (the ping must show the challenge, not answer it)."""
        started = time.monotonic()
        response, hop, rec, _ = await self._send_once("GET", url, {"User-Agent": "regtui", "Accept-Encoding": "identity"})
        exchange = Exchange(response, [hop], started, rec, url)
        exchange.body, _ = await self._drain(response, hop, rec, what="ping answer")
        return exchange

    async def manifest(self, reference: str, method: str = "GET") -> Exchange:
        """``HEAD``/``GET`` ``manifests/<reference>`` with the runtime's Accept list; error statuses raise."""
        url = self.url("manifests", reference)
        exchange = await self.request(method, url, headers={"Accept": self.accept}, limit=MAX_MANIFEST_BYTES,
                                      phase="manifest")
        status = exchange.response.status_code
        if status >= 300:
            if status == 403:
                self.authorizer.note_denied(url, status)
            raise RegistryError(status_failure(status, url, exchange.body, phase="manifest",
                                               headers=exchange.response.headers))
        return exchange

    async def head_digest(self, reference: str) -> tuple[str | None, Exchange | None]:
        """``HEAD`` the manifest: the valid ``Docker-Content-Digest`` it names (``None`` when absent or
        malformed) and the exchange; ``(None, None)`` when the registry refuses ``HEAD`` (405). Other errors raise."""
        try:
            head = await self.manifest(reference, "HEAD")
        except RegistryError as err:
            if err.failure.status != 405:
                raise
            return None, None
        claimed = head.response.headers.get("docker-content-digest")
        return (claimed if valid_digest(claimed) else None), head


def _with_received(failure: Failure, exc: BaseException) -> Failure:
    """``failure`` with the body bytes received before ``exc`` (set by :meth:`Session.read_capped`) in its details."""
    received = getattr(exc, "regtui_received", None)
    if received is None:
        return failure
    return dataclasses.replace(failure, details={**failure.details, "bytes_received": received})
