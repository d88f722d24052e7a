"""One HTTP client layer, built explicitly from the runtime's view of an endpoint.

- TLS: an explicit :class:`ssl.SSLContext` from the endpoint's trust inputs (the system bundle
  *under the root*, extra CA files, client certificates; verification off only where the
  runtime turns it off), TLS 1.2 minimum as Go's client.
- Proxy: the daemon's decision (``Endpoint.proxy``), never the shell's (``trust_env=False``).
- DNS: every TCP connection resolves through :class:`~regtui.net.resolver.Resolver` and connects
  to the address it returned; SNI and ``Host`` keep the name.
- Timing: per request, from httpcore's ``trace`` extension plus the resolver's own clock,
  reduced by the pure :func:`reduce_trace`. A reused connection has no connect/TLS events and
  is marked ``reused`` (its dns/connect/tls are ``None``, not zero).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import httpcore
import httpx

from regtui.host import Host
from regtui.model import TLSInputs
from regtui.net.pipe import STREAM_BUFFER, open_pipe
from regtui.net.resolver import ResolveError, Resolver

__all__ = [
    "PhaseTimings",
    "TraceRecorder",
    "reduce_trace",
    "SYSTEM_BUNDLES",
    "system_bundle",
    "build_ssl_context",
    "ResolvingBackend",
    "make_client",
    "Timeouts",
    "AsyncioBackend",
    "STREAM_BUFFER",
]

#: Where Go looks for the system trust bundle on Linux (crypto/x509/root_linux.go), in order.
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


@dataclass
class PhaseTimings:
    """Milliseconds per phase of one request; phases add up to ``total``."""

    dns: float | None
    connect: float | None
    tls: float | None
    ttfb: float
    transfer: float
    total: float
    reused: bool = False
    """The request ran on a pooled connection: no DNS, connect or TLS happened for it."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the contract's ``timings_ms``)."""
        r = lambda v: None if v is None else round(v, 3)  # noqa: E731
        return {"dns": r(self.dns), "connect": r(self.connect), "tls": r(self.tls), "ttfb": r(self.ttfb),
                "transfer": r(self.transfer), "total": r(self.total), "reused": self.reused}


def reduce_trace(events: Sequence[tuple[str, float]], start: float, end: float | None,
                 dns_ms: float | None) -> PhaseTimings:
    """Turn httpcore trace events into contiguous phases.

    ``events`` are ``(name, monotonic seconds)`` with httpcore's names
    (``connection.connect_tcp.started``, ``http11.receive_response_headers.complete``...);
    ``start``/``end`` bracket the request (``end`` ``None`` means "last event"); ``dns_ms`` is the
    resolver's time spent inside ``connect_tcp``. Boundaries: TCP connected, TLS done (the last
    ``start_tls``: through a proxy the tunnel's), response headers received, body done. A proxy's
    CONNECT exchange counts as ``connect``. Phases always sum to ``total``.
    """
    def last(name: str) -> float | None:
        ts = [t for n, t in events if n == name]
        return ts[-1] if ts else None

    def first_after(name: str, after: float) -> float | None:
        ts = [t for n, t in events if n == name and t >= after]
        return ts[0] if ts else None

    end_t = end if end is not None else (max((t for _, t in events), default=start))
    tcp_done = last("connection.connect_tcp.complete")
    tls_done = last("connection.start_tls.complete")
    reused = tcp_done is None
    proto = "http2" if any(n.startswith("http2.") for n, _ in events) else "http11"
    req_start = last(f"{proto}.send_request_headers.started")
    headers_done = first_after(f"{proto}.receive_response_headers.complete", req_start or start) if req_start else None
    ms = lambda a, b: max(0.0, (b - a) * 1000.0)  # noqa: E731
    total = ms(start, end_t)
    if reused:
        b_headers = headers_done if headers_done is not None else end_t
        ttfb = ms(start, min(b_headers, end_t))
        return PhaseTimings(None, None, None, ttfb, total - ttfb, total, reused=True)
    b_conn = min(tcp_done, end_t)
    b_tls = min(max(tls_done, b_conn), end_t) if tls_done is not None else b_conn
    b_headers = min(max(headers_done, b_tls), end_t) if headers_done is not None else end_t
    # CONNECT through a proxy: the http11 exchange between TCP connect and the tunnel's TLS.
    connect_exchange = 0.0
    tls_start = last("connection.start_tls.started")
    if tls_start is not None:
        sends = [t for n, t in events if n == "http11.send_request_headers.started" and b_conn <= t <= tls_start]
        recv = [t for n, t in events if n == "http11.receive_response_headers.complete" and b_conn <= t <= tls_start]
        if sends and recv:
            connect_exchange = ms(sends[0], recv[-1])
    dns = min(dns_ms or 0.0, ms(start, b_conn)) if dns_ms is not None else None
    connect = ms(start, b_conn) - (dns or 0.0) + connect_exchange
    tls = ms(b_conn, b_tls) - connect_exchange
    if tls_done is None:
        tls = None if connect_exchange == 0.0 else 0.0
        connect = ms(start, b_tls) - (dns or 0.0)
    ttfb = ms(b_tls, b_headers)
    transfer = ms(b_headers, end_t)
    return PhaseTimings(dns, connect, tls, ttfb, transfer, total)


class TraceRecorder:
    """Collects one request's trace events (pass :meth:`extensions` to the request)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self.start = time.monotonic()
        self.end: float | None = None
        self.dns_ms: float | None = None
        self.peer: str | None = None
        """The address actually connected to."""

    async def _trace(self, name: str, info: dict[str, Any]) -> None:
        self.events.append((name, time.monotonic()))

    def extensions(self, timeouts: "Timeouts | None" = None) -> dict[str, Any]:
        """Request extensions: the trace hook, and per-phase timeouts when given."""
        ext: dict[str, Any] = {"trace": self._trace}
        if timeouts:
            ext["timeout"] = timeouts.as_httpcore()
        return ext

    def finish(self) -> PhaseTimings:
        """Close the measurement (call when the body has been read) and reduce it."""
        if self.end is None:
            self.end = time.monotonic()
        return reduce_trace(self.events, self.start, self.end, self.dns_ms)


@dataclass(frozen=True)
class Timeouts:
    """Per-phase timeouts in seconds (``--timeout``)."""

    connect: float = 5.0
    read: float = 5.0

    @property
    def exchange(self) -> float:
        """Overall deadline of one request, from its first byte out to the last byte of a bounded body.

        Connect (TCP and TLS), one read timeout to the answer and one more for the body: a server
        that drips its headers or a manifest byte by byte is cut off here, not after hours.
        """
        return self.connect + 2 * self.read

    def as_httpx(self) -> httpx.Timeout:
        """httpx form: connect (TCP and TLS), read/write per chunk, pool wait."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.read, pool=self.connect + self.read)

    def as_httpcore(self) -> dict[str, float]:
        """httpcore extension form."""
        return {"connect": self.connect, "read": self.read, "write": self.read, "pool": self.connect + self.read}


# The recorder of the request running in this task, so connect_tcp can report DNS time to it.
_current: contextvars.ContextVar[TraceRecorder | None] = contextvars.ContextVar("regtui_trace", default=None)


def current_recorder(recorder: TraceRecorder | None) -> contextvars.Token[TraceRecorder | None]:
    """Make ``recorder`` the one DNS time is charged to in this task; returns the reset token."""
    return _current.set(recorder)


def reset_recorder(token: contextvars.Token[TraceRecorder | None]) -> None:
    """Restore the recorder that was current before :func:`current_recorder` returned ``token``."""
    _current.reset(token)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend on plain non-blocking sockets driven by the event loop (:mod:`regtui.net.pipe`).

    A read returns everything the socket has ready (up to :data:`STREAM_BUFFER`) instead of one
    16 KiB TLS record through anyio's per-record path, and a blob body can be handed to a thread
    (:meth:`~regtui.net.pipe.PipeStream.take_body`).
    """

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        """Connect to ``host`` (an address: the resolving backend already resolved it)."""
        try:
            async with asyncio.timeout(timeout):
                return await open_pipe(host, port, local_address=local_address, socket_options=socket_options)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        """Unix sockets are not used for registries."""
        raise httpcore.ConnectError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        """asyncio's sleep."""
        await asyncio.sleep(seconds)


class ResolvingBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that resolves with regtui's resolver and times it."""

    def __init__(self, resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        """Resolve ``host`` (timed), then connect to its addresses in order within ``timeout``."""
        recorder = _current.get()
        try:
            lookup = await self._resolver.resolve(host)
        except ResolveError as exc:
            if recorder is not None:
                recorder.dns_ms = self._resolver.log[-1].elapsed_ms if self._resolver.log else None
            raise httpcore.ConnectError(str(exc)) from exc
        if recorder is not None:
            recorder.dns_ms = lookup.elapsed_ms
        deadline = time.monotonic() + timeout if timeout is not None else None
        last_exc: Exception | None = None
        for address in lookup.addresses[:8]:
            remaining = None if deadline is None else max(0.01, deadline - time.monotonic())
            try:
                stream = await self._inner.connect_tcp(address, port, timeout=remaining,
                                                       local_address=local_address, socket_options=socket_options)
                if recorder is not None:
                    recorder.peer = f"{address}:{port}"
                return stream
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_exc = exc
                if isinstance(exc, httpcore.ConnectTimeout):
                    break  # one timeout per endpoint, never one per address
        assert last_exc is not None
        raise last_exc

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        """Unix sockets are not used for registries."""
        raise httpcore.ConnectError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        """Delegate to anyio."""
        await self._inner.sleep(seconds)


def system_bundle(host: Host, environ: dict[str, str] | None = None) -> str | None:
    """Host path of the system trust bundle Go would load (``SSL_CERT_FILE`` in the daemon's env first)."""
    env = environ or {}
    if env.get("SSL_CERT_FILE") and host.is_file(env["SSL_CERT_FILE"]):
        return env["SSL_CERT_FILE"]
    for path in SYSTEM_BUNDLES:
        if host.is_file(path):
            return path
    return None


@dataclass
class TLSSetup:
    """What went into an SSL context, for evidence."""

    system_bundle: str | None = None
    ca_files: list[str] = field(default_factory=list)
    client_cert: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


_PER_THREAD = threading.local()
#: Contexts kept per thread (least recently used dropped first).
_CONTEXTS_MAX = 16


def build_ssl_context(host: Host, tls: TLSInputs, daemon_env: dict[str, str] | None = None) -> tuple[ssl.SSLContext, TLSSetup]:
    """An SSL context with exactly the runtime's trust inputs for one endpoint, read under the root.

    Parsing the system bundle costs OpenSSL about 20 ms, and a check builds a context per endpoint,
    most with the same inputs: a context is shared by every endpoint whose inputs have the same
    bytes (the files are read each time, so an edited file gives a new context). Contexts are kept
    per thread: httpcore sets ALPN on a context as it connects, which must not race another
    thread's handshake on the same context.
    """
    bundle = system_bundle(host, daemon_env) if tls.system_roots else None
    bundle_text = host.read(bundle, limit=16 * 1024 * 1024) if bundle else None
    cas = [(ca, host.read(ca)) for ca in tls.ca_files]
    key = _context_key(host, tls, bundle, bundle_text, cas)
    cache = _contexts()
    if key is not None and key in cache:
        cache.move_to_end(key)
        ctx, setup = cache[key]
        return ctx, _copy_setup(setup)
    ctx, setup = _new_context(host, tls, bundle, bundle_text, cas)
    if key is not None:
        cache[key] = (ctx, _copy_setup(setup))
        while len(cache) > _CONTEXTS_MAX:
            cache.popitem(last=False)
    return ctx, setup


def _contexts() -> OrderedDict[tuple[Any, ...], tuple[ssl.SSLContext, TLSSetup]]:
    """This thread's contexts by the bytes of their inputs, least recently used first."""
    cache = getattr(_PER_THREAD, "contexts", None)
    if cache is None:
        cache = _PER_THREAD.contexts = OrderedDict()
    return cache


#: A client certificate or key file larger than this (or not a readable file) is not cached by content.
_MAX_KEYED_FILE = 1024 * 1024


def _digest(text: str | bytes | None) -> str | None:
    if text is None:
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text).hexdigest()


def _context_key(host: Host, tls: TLSInputs, bundle: str | None, bundle_text: Any,
                 cas: list[tuple[str, Any]]) -> tuple[Any, ...] | None:
    """What makes two contexts the same, or ``None`` when a client certificate cannot be read to say."""
    certs = []
    for cert, key in tls.client_cert:
        files = []
        for path in (cert, key):
            if not path:
                files.append(None)
                continue
            f = host.read(path, limit=_MAX_KEYED_FILE)  # never opens a FIFO or a device
            if not f.ok:
                return None
            files.append(_digest(f.data))
        certs.append((cert, key, *files))
    read = (lambda f: (f.status, _digest(f.text)))
    return (tls.verify, bundle, read(bundle_text) if bundle_text is not None else None,
            tuple((ca, *read(f)) for ca, f in cas), tuple(certs))


def _copy_setup(setup: TLSSetup) -> TLSSetup:
    return TLSSetup(setup.system_bundle, list(setup.ca_files), list(setup.client_cert), list(setup.problems))


def _new_context(host: Host, tls: TLSInputs, bundle: str | None, bundle_text: Any,
                 cas: list[tuple[str, Any]]) -> tuple[ssl.SSLContext, TLSSetup]:
    setup = TLSSetup()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # Go anchors a chain at any certificate in the pool, an intermediate included (OpenSSL wants
    # a self-signed root unless told otherwise): trusting the intermediate must work here too.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    # Go ignores a leaf's CN (only SANs name a host) and accepts 1024-bit RSA keys, which
    # OpenSSL's default security level 2 refuses: the test pull must fail and succeed as Go does.
    ctx.hostname_checks_common_name = False
    ctx.set_ciphers("DEFAULT:@SECLEVEL=1")
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if bundle and bundle_text is not None:
        try:
            ctx.load_verify_locations(cadata=bundle_text.text)
            setup.system_bundle = bundle
        except (ssl.SSLError, ValueError) as exc:
            setup.problems.append(f"{bundle}: {exc}")
    for ca, f in cas:
        if not f.ok:
            setup.problems.append(f"{ca}: {f.status} {f.error}".strip())
            continue
        try:
            ctx.load_verify_locations(cadata=f.text)
            setup.ca_files.append(ca)
        except (ssl.SSLError, ValueError) as exc:
            setup.problems.append(f"{ca}: not a PEM certificate ({exc})")
    for cert, key in tls.client_cert:
        odd = next((path for path in (cert, key) if path and host.read(path, limit=0).status == "not-a-file"), None)
        if odd:  # OpenSSL would open a FIFO or a device and wait on it forever
            setup.problems.append(f"client certificate {cert}: {odd} is not a regular file")
            continue
        try:
            ctx.load_cert_chain(str(host.resolve(cert)), str(host.resolve(key)) if key else None,
                                password=_refuse_passphrase)
            setup.client_cert.append((cert, key))
        except _EncryptedKey:
            setup.problems.append(f"client certificate {cert}: the private key {key or cert} is encrypted, "
                                  "which Go's tls.LoadX509KeyPair cannot load")
        except (ssl.SSLError, OSError) as exc:
            setup.problems.append(f"client certificate {cert}: {exc}")
    return ctx, setup


class _EncryptedKey(Exception):
    """A client key asked for a passphrase."""


def _refuse_passphrase() -> bytes:
    # Without a password callback OpenSSL prompts on the terminal, and the check would wait forever.
    raise _EncryptedKey


def make_client(resolver: Resolver, ssl_context: ssl.SSLContext, *, proxy: str | None = None,
                timeouts: Timeouts = Timeouts(), max_connections: int = 10,
                streams: str = "anyio") -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose connections resolve through ``resolver``.

    ``proxy`` is the daemon's proxy URL for this endpoint (with credentials) or ``None``.
    Redirects are not followed automatically: the registry client follows them itself so it can
    drop credentials on cross-host hops and record every hop as an endpoint.
    ``streams="asyncio"`` uses :class:`AsyncioBackend` (bulk downloads) except through an
    ``https://`` proxy, where TLS runs inside TLS and anyio's stream is kept.
    """
    use_asyncio = streams == "asyncio" and not (proxy or "").lower().startswith("https://")
    backend = ResolvingBackend(resolver, AsyncioBackend() if use_asyncio else None)
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, trust_env=False, limits=limits)
    if proxy:
        p = httpx.Proxy(proxy)
        pool: Any = httpcore.AsyncHTTPProxy(
            proxy_url=httpcore.URL(scheme=p.url.raw_scheme, host=p.url.raw_host, port=p.url.port,
                                   target=p.url.raw_path),
            proxy_auth=p.raw_auth,
            proxy_headers=p.headers.raw,
            ssl_context=ssl_context,
            proxy_ssl_context=_proxy_tls_context() if p.url.scheme == "https" else None,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=backend,
        )
    else:
        pool = httpcore.AsyncConnectionPool(ssl_context=ssl_context, max_connections=max_connections,
                                            max_keepalive_connections=max_connections, network_backend=backend)
    transport._pool = pool  # our pool: same transport logic, our DNS and trace-friendly backend
    return httpx.AsyncClient(transport=transport, timeout=timeouts.as_httpx(), trust_env=False,
                             follow_redirects=False, headers={"User-Agent": "regtui"})


def _proxy_tls_context() -> ssl.SSLContext:
    """TLS to an ``https://`` proxy (Go speaks TLS to it): verified with the default roots."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
