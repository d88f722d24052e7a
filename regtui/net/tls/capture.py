"""Capture what a TLS server sends, directly or through the daemon's proxy.

One TCP connection per endpoint, resolved through regtui's resolver and made to the address it
returned, optionally through the daemon's proxy with ``CONNECT`` (TLS to an ``https://`` proxy
first, as Go does); then a pyOpenSSL handshake over memory BIOs driven by asyncio, so hundreds
of captures run concurrently without threads. The client accepts anything the server offers
(TLS 1.0 and up, security level 0, no verification): the point is to *see* the chain, old
protocols and weak keys included, and judge it afterwards. SNI is the host name (none for IP
literals, like Go). Over the same connection an unauthenticated ``GET <api root>/`` collects the
``WWW-Authenticate`` challenge (the token realm is one more TLS endpoint the runtime talks to).
Every phase has a deadline: connect within ``Timeouts.connect``; proxy ``CONNECT``, handshake and
the request within ``Timeouts.read`` all together, so a black-holed endpoint costs one timeout.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from regtui import redact
from regtui.net.http import Timeouts
from regtui.net.resolver import ResolveError, Resolver
from regtui.net.tls.certs import MAX_CHAIN, describe, is_ip, parse_pem_bundle

#: Go's crypto/tls client refuses anything older (since Go 1.18 for clients).
GO_MIN_VERSION = "TLSv1.2"
#: Protocol names below Go's minimum, as pyOpenSSL reports them.
OLD_PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1")
#: Most bytes of HTTP response head read after the handshake (hostile servers send endless headers).
HEADER_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Challenge:
    """What an unauthenticated ``GET /v2/`` answered."""

    status: int
    scheme: str = ""
    """``Bearer``, ``Basic`` or empty."""
    realm: str = ""
    service: str = ""
    date: str = ""
    """The response's ``Date`` header (the registry's clock), for the clock panel."""
    local_time: datetime | None = None
    """The host's clock when the response head arrived."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"status": self.status, "scheme": self.scheme, "realm": self.realm, "service": self.service,
                "date": self.date or None}


@dataclass
class Capture:
    """The chain one server sent on one path (direct or through one proxy)."""

    host: str
    port: int
    server_name: str | None
    """SNI sent (``None`` for IP literals, as Go does)."""
    via: str | None = None
    """Proxy used (credentials masked), ``None`` for direct."""
    peer: str | None = None
    """``address:port`` actually connected to (the proxy's when proxied)."""
    certs: list[x509.Certificate] = field(default_factory=list, repr=False)
    tls_version: str | None = None
    cipher: str | None = None
    cipher_bits: int | None = None
    challenge: Challenge | None = None
    use_tls: bool = True
    """``False`` for a plain-HTTP registry asked only for its challenge."""
    client_cert: bool = False
    """A client certificate was offered (which one is never recorded here)."""
    error_kind: str | None = None
    """``dns``, ``connect``, ``timeout``, ``proxy``, ``handshake`` or ``http`` (after a good handshake)."""
    error: str | None = None
    """What went wrong, in words (never a secret)."""
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        """A handshake completed and the server sent at least one certificate."""
        return bool(self.certs) and self.error_kind in (None, "http")

    @property
    def hostport(self) -> str:
        """``host:port`` (IPv6 in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """JSON form, with every certificate described."""
        return {
            "host": self.hostport, "tls": self.use_tls, "server_name": self.server_name, "via": self.via,
            "peer": self.peer, "client_certificate": self.client_cert,
            "ok": self.ok, "tls_version": self.tls_version, "cipher": self.cipher, "cipher_bits": self.cipher_bits,
            "certificates": [describe(c, i, now).to_dict() for i, c in enumerate(self.certs)],
            "challenge": self.challenge.to_dict() if self.challenge else None,
            "error_kind": self.error_kind, "error": self.error, "elapsed_ms": round(self.elapsed_ms, 1),
        }


class CaptureError(Exception):
    """A capture phase failed; ``kind`` is one of :attr:`Capture.error_kind`'s values."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ClientCert:
    """A client certificate and key as PEM bytes (never shown anywhere)."""

    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)


def _client_context(client: ClientCert | None) -> SSL.Context:
    """A client context that accepts whatever the server offers, so the chain is always seen."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    # Security level 0: TLS 1.0/1.1, SHA-1 and small keys are allowed to *complete*; they are judged later.
    ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
    ctx.set_verify(SSL.VERIFY_NONE, lambda *_: True)
    if client is not None:
        certs, _ = parse_pem_bundle(client.cert_pem)
        if certs:
            ctx.use_certificate(certs[0])
            for extra in certs[1:]:
                ctx.add_extra_chain_cert(extra)
            ctx.use_privatekey(serialization.load_pem_private_key(client.key_pem, password=None))  # type: ignore[arg-type]
    return ctx


class _Deadline:
    """One absolute deadline on the loop clock, shared by the phases it bounds."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self.at = asyncio.get_running_loop().time() + seconds

    def remaining(self, phase: str) -> float:
        left = self.at - asyncio.get_running_loop().time()
        if left <= 0:
            raise CaptureError("timeout", f"{phase}: no answer within {self.seconds:g}s ({self.what})")
        return left

    async def run(self, aw: Any, phase: str) -> Any:
        try:
            return await asyncio.wait_for(aw, self.remaining(phase))
        except asyncio.TimeoutError:
            raise CaptureError("timeout", f"{phase}: no answer within {self.seconds:g}s ({self.what})") from None


async def _open(resolver: Resolver, name: str, port: int, connect_s: float
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """Resolve ``name`` with regtui's resolver, then connect to its addresses in order within ``connect_s``."""
    try:
        lookup = await resolver.resolve(name)
    except ResolveError as exc:
        raise CaptureError("dns", str(exc)) from None
    deadline = _Deadline(connect_s, "connect timeout")
    last: CaptureError | None = None
    for address in lookup.addresses[:8]:
        try:
            reader, writer = await deadline.run(asyncio.open_connection(address, port), "connect")
            return reader, writer, (f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
        except CaptureError as exc:
            last = exc
            break  # one timeout per endpoint, never one per address
        except OSError as exc:
            last = CaptureError("connect", f"connect {address}:{port}: {exc.strerror or exc}")
    raise last or CaptureError("dns", f"lookup {name}: no addresses")


def _proxy_auth(url: str) -> str | None:
    """``Proxy-Authorization`` value for a proxy URL with userinfo (the secret stays in memory)."""
    parts = urlsplit(url)
    if parts.username is None:
        return None
    token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return "Basic " + base64.b64encode(token).decode()


async def _read_head(reader: asyncio.StreamReader, deadline: _Deadline, phase: str) -> bytes:
    """Read an HTTP response head (status line and headers), at most :data:`HEADER_LIMIT` bytes."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await deadline.run(reader.read(4096), phase)
        if not chunk:
            break
        buf += chunk
        if len(buf) > HEADER_LIMIT:
            raise CaptureError("proxy", f"{phase}: response headers larger than {HEADER_LIMIT} bytes")
    return buf


def _status(head: bytes) -> tuple[int | None, str]:
    """(status code, status line) of an HTTP response head."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace").strip()
    m = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})", line)
    return (int(m.group(1)) if m else None), line[:200]


async def _through_proxy(resolver: Resolver, proxy_url: str, target: str, timeouts: Timeouts
                         ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str, _Deadline]:
    """Connect to the proxy (TLS to it for ``https://``) and ask it to ``CONNECT target``.

    Returns the tunnel and the read deadline, started once TCP is up, that the rest of the
    capture (handshake, request) keeps using.
    """
    parts = urlsplit(proxy_url)
    scheme = parts.scheme.lower()
    phost = parts.hostname or ""
    pport = parts.port or (443 if scheme == "https" else 80)
    shown = redact.url(proxy_url)
    reader, writer, peer = await _open(resolver, phost, pport, timeouts.connect)
    rest = _Deadline(timeouts.read, "read timeout")
    try:
        if scheme == "https":
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
            try:
                await rest.run(writer.start_tls(tls, server_hostname=None if is_ip(phost) else phost), "TLS to the proxy")
            except (ssl.SSLError, OSError) as exc:
                raise CaptureError("proxy", f"TLS to proxy {shown} failed: {exc}") from None
        request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: regtui\r\n"
        auth = _proxy_auth(proxy_url)
        if auth:
            request += f"Proxy-Authorization: {auth}\r\n"
        writer.write((request + "\r\n").encode())
        await rest.run(writer.drain(), "proxy CONNECT")
        head = await _read_head(reader, rest, f"proxy {shown} CONNECT {target}")
        code, line = _status(head)
        if code is None:
            raise CaptureError("proxy", f"proxy {shown} did not answer CONNECT with HTTP ({line!r})")
        if not 200 <= code < 300:
            raise CaptureError("proxy", f"proxy {shown} refused CONNECT {target}: {line}")
        return reader, writer, peer, rest
    except BaseException:
        writer.close()
        raise


async def _flush(conn: SSL.Connection, writer: asyncio.StreamWriter, deadline: _Deadline, phase: str) -> None:
    """Send whatever the TLS engine wants to send."""
    out = b""
    while True:
        try:
            out += conn.bio_read(65536)
        except SSL.WantReadError:
            break
    if out:
        writer.write(out)
        await deadline.run(writer.drain(), phase)


def _ssl_error_text(exc: SSL.Error, first_bytes: bytes) -> str:
    """A readable reason for a failed handshake."""
    if first_bytes.startswith(b"HTTP/") or first_bytes[:1].isalpha():
        return f"the server did not answer with TLS (it sent {first_bytes[:40]!r}): plain HTTP on a TLS port?"
    reasons = []
    for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(item, tuple) and item:
            reasons.append(str(item[-1]))
    return "TLS handshake failed: " + (", ".join(reasons) or str(exc) or type(exc).__name__)


async def _pump(conn: SSL.Connection, reader: asyncio.StreamReader, deadline: _Deadline, phase: str,
                received: list[bytes]) -> None:
    """Feed the TLS engine the next bytes from the network."""
    data = await deadline.run(reader.read(65536), phase)
    if not data:
        raise CaptureError("handshake", f"{phase}: the server closed the connection")
    if len(received) < 1:
        received.append(data[:64])
    conn.bio_write(data)


async def _handshake(conn: SSL.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     deadline: _Deadline) -> None:
    received: list[bytes] = []
    while True:
        try:
            conn.do_handshake()
            await _flush(conn, writer, deadline, "TLS handshake")
            return
        except SSL.WantReadError:
            await _flush(conn, writer, deadline, "TLS handshake")
            await _pump(conn, reader, deadline, "TLS handshake", received)
        except SSL.Error as exc:
            try:
                await _flush(conn, writer, deadline, "TLS handshake")
            except (CaptureError, OSError):
                pass
            raise CaptureError("handshake", _ssl_error_text(exc, received[0] if received else b"")) from None


async def _get_challenge(conn: SSL.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         deadline: _Deadline, host_header: str, path: str,
                         clock: Callable[[], datetime] | None) -> Challenge:
    """``GET path`` over the established TLS connection; the status and ``WWW-Authenticate``."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: regtui\r\n"
               "Accept: application/json\r\nConnection: close\r\n\r\n")
    conn.sendall(request.encode())
    await _flush(conn, writer, deadline, "GET /v2/")
    buf = b""
    received: list[bytes] = []
    while b"\r\n\r\n" not in buf:
        try:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > HEADER_LIMIT:
                raise CaptureError("http", f"GET {path}: response headers larger than {HEADER_LIMIT} bytes")
        except SSL.WantReadError:
            await _pump(conn, reader, deadline, f"GET {path}", received)
        except SSL.ZeroReturnError:
            break
        except SSL.Error as exc:
            raise CaptureError("http", f"GET {path}: {_ssl_error_text(exc, b'')}") from None
    return _challenge_from_head(buf, clock)


def _challenge_from_head(head: bytes, clock: Callable[[], datetime] | None = None) -> Challenge:
    """Status, ``WWW-Authenticate`` challenge and ``Date`` of a response head."""
    code, line = _status(head)
    if code is None:
        raise CaptureError("http", f"GET /v2/: not an HTTP answer ({line!r})")
    headers: dict[str, str] = {}
    for raw in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:64]:
        name, _, rest = raw.decode("latin-1", "replace").partition(":")
        headers.setdefault(name.strip().lower(), rest.strip()[:4096])
    challenge = parse_challenge(code, headers.get("www-authenticate", ""))
    local = clock() if clock is not None else datetime.now(timezone.utc)
    return replace(challenge, date=headers.get("date", "")[:64], local_time=local)


_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(status: int, header: str) -> Challenge:
    """Parse ``WWW-Authenticate: Bearer realm="...",service="..."`` leniently (garbage gives empty fields)."""
    header = header.strip()[:4096]
    if not header:
        return Challenge(status)
    scheme, _, params = header.partition(" ")
    values: dict[str, str] = {}
    for m in _PARAM.finditer(params):
        values[m.group(1).lower()] = (m.group(2) if m.group(2) is not None else m.group(3) or "").replace('\\"', '"')
    return Challenge(status, scheme, values.get("realm", ""), values.get("service", ""))


async def capture(resolver: Resolver, host: str, port: int, *, timeouts: Timeouts, proxy_url: str | None = None,
                  client_cert: ClientCert | None = None, http_path: str | None = "/v2/",
                  host_header: str | None = None, use_tls: bool = True,
                  clock: Callable[[], datetime] | None = None) -> Capture:
    """Capture the chain ``host:port`` sends (through ``proxy_url`` when given); never raises.

    ``proxy_url`` is the daemon's proxy with credentials (from :func:`regtui.net.proxy.decide`);
    only its redacted form is kept. With ``http_path`` the same connection then asks for it
    unauthenticated and records the challenge and the ``Date`` header (with ``clock()``, the
    host's clock, at its arrival). ``use_tls=False`` skips TLS (plain-HTTP registries, to read
    their challenge only).
    """
    started = time.monotonic()
    sni = None if is_ip(host) else host
    cap = Capture(host=host.strip("[]"), port=port, server_name=sni if use_tls else None,
                  via=redact.url(proxy_url) if proxy_url else None, use_tls=use_tls,
                  client_cert=client_cert is not None and use_tls)
    writer: asyncio.StreamWriter | None = None
    try:
        if proxy_url:
            reader, writer, cap.peer, deadline = await _through_proxy(resolver, proxy_url, cap.hostport, timeouts)
        else:
            reader, writer, cap.peer = await _open(resolver, host.strip("[]"), port, timeouts.connect)
            deadline = _Deadline(timeouts.read, "read timeout")
        header = host_header or cap.hostport
        if not use_tls:
            if http_path:
                writer.write((f"GET {http_path} HTTP/1.1\r\nHost: {header}\r\nUser-Agent: regtui\r\n"
                              "Connection: close\r\n\r\n").encode())
                await deadline.run(writer.drain(), "GET /v2/")
                try:
                    cap.challenge = _challenge_from_head(await _read_head(reader, deadline, "GET /v2/"), clock)
                except CaptureError as exc:
                    cap.error_kind, cap.error = "http", str(exc)
            return cap
        conn = SSL.Connection(_client_context(client_cert), None)
        conn.set_connect_state()
        if sni:
            conn.set_tlsext_host_name(sni.encode("idna"))
        await _handshake(conn, reader, writer, deadline)
        chain = conn.get_peer_cert_chain(as_cryptography=True) or []
        cap.certs = list(chain[:MAX_CHAIN])
        cap.tls_version = conn.get_protocol_version_name()
        cap.cipher = conn.get_cipher_name()
        cap.cipher_bits = conn.get_cipher_bits()
        if not cap.certs:
            cap.error_kind, cap.error = "handshake", "the server sent no certificate"
            return cap
        if http_path:
            try:
                cap.challenge = await _get_challenge(conn, reader, writer, deadline, header, http_path, clock)
            except CaptureError as exc:
                cap.error_kind, cap.error = "http", str(exc)
            except (OSError, SSL.Error) as exc:
                # The chain is captured: what fails now is the request. Under TLS 1.3 a server that
                # wants a client certificate rejects it here, as an alert or a reset, whichever wins.
                cap.error_kind, cap.error = "http", redact.text(f"{type(exc).__name__}: {exc}")
    except CaptureError as exc:
        cap.error_kind, cap.error = exc.kind, str(exc)
    except (OSError, SSL.Error, ValueError, TypeError, UnicodeError) as exc:
        cap.error_kind, cap.error = "connect", redact.text(f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()
        cap.elapsed_ms = (time.monotonic() - started) * 1000
    return cap
