"""TLS chains as the runtimes meet them: capture what a server sends, then judge it by Go's rules.

Capture (:func:`capture`)
    One TCP connection per endpoint, resolved through regtui's resolver and made to the address
    it returned, optionally through the daemon's proxy with ``CONNECT`` (TLS to an ``https://``
    proxy first, as Go does); then a pyOpenSSL handshake over memory BIOs driven by asyncio, so
    hundreds of captures run concurrently without threads. The client accepts anything the
    server offers (TLS 1.0 and up, security level 0, no verification): the point is to *see*
    the chain, old protocols and weak keys included, and judge it afterwards. SNI is the host
    name (none for IP literals, like Go). Over the same connection an unauthenticated
    ``GET <api root>/`` collects the ``WWW-Authenticate`` challenge (the token realm is one more
    TLS endpoint the runtime talks to). Every phase has a deadline: connect within
    ``Timeouts.connect``; proxy ``CONNECT``, handshake and the request within ``Timeouts.read``
    all together, so a black-holed endpoint costs one timeout.

Judgement
    :func:`go_verify` is a port of Go's ``crypto/x509`` ``Certificate.Verify`` as
    ``crypto/tls`` calls it (``DNSName`` = server name, ``Intermediates`` = what the server sent
    after the leaf, ``Roots`` = the runtime's pool): leaf validity, then the host name (SANs
    only, no Common Name fallback), then chain building with Go's signature rules (SHA-1 and
    MD5 signatures refused, parent must be a CA allowed to sign) and validity, CA and path
    length checks on every candidate. It returns the error text Go would print, so evidence can
    quote what the user sees (``x509: certificate signed by unknown authority``).

    :func:`diagnose` names the causes in plain words whatever Go stopped at first: it walks the
    chain leniently (SHA-1 signatures checked, validity ignored, other trust sources on the host
    consulted) to tell a missing intermediate from an untrusted root, finds the certificate the
    runtime would have to trust, and lists every defect (expired, wrong name, CN-only, weak
    signature or key, root sent, expiring soon) with the certificate it concerns.

Trust (:func:`load_trust`)
    The runtime's pool exactly as Go builds it: the system bundle *under the root* (Go's
    search order, ``SSL_CERT_FILE`` from the daemon's environment first), plus the endpoint's
    extra CA files; PEM blocks that do not parse are skipped as ``AppendCertsFromPEM`` does.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import ipaddress
import json
import math
import re
import ssl
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID
from OpenSSL import SSL

from regtui import redact
from regtui.host import Host
from regtui.model import TLSInputs
from regtui.net.http import Timeouts, system_bundle
from regtui.net.resolver import ResolveError, Resolver

__all__ = [
    "CertInfo",
    "Capture",
    "Challenge",
    "TrustStore",
    "GoResult",
    "Problem",
    "Diagnosis",
    "GO_MIN_VERSION",
    "capture",
    "describe",
    "fingerprint",
    "cert_pem",
    "parse_pem_bundle",
    "load_trust",
    "go_verify",
    "diagnose",
    "parse_challenge",
    "is_weak_signature",
    "weak_key_reason",
    "days_left",
    "iso_time",
    "is_ca",
    "certs_differ",
    "known_from",
    "ClientCert",
    "CertPool",
    "OLD_PROTOCOLS",
]

#: Go's crypto/tls client refuses anything older (since Go 1.18 for clients).
GO_MIN_VERSION = "TLSv1.2"
#: Protocol names below Go's minimum, as pyOpenSSL reports them.
OLD_PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1")
#: Most bytes of HTTP response head read after the handshake (hostile servers send endless headers).
HEADER_LIMIT = 64 * 1024
#: Certificates beyond this position in a served chain are not analysed (Go gives up far earlier).
MAX_CHAIN = 32
#: Go's ``maxChainSignatureChecks``.
MAX_SIGNATURE_CHECKS = 100


# -- small certificate helpers ----------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _der(cert: x509.Certificate) -> bytes:
    """DER of a certificate (memoised: chain building compares certificates often)."""
    return cert.public_bytes(serialization.Encoding.DER)


@functools.lru_cache(maxsize=8192)
def _subject_der(cert: x509.Certificate) -> bytes:
    """DER of the subject name (Go compares RawSubject bytes)."""
    return cert.subject.public_bytes()


@functools.lru_cache(maxsize=8192)
def _issuer_der(cert: x509.Certificate) -> bytes:
    """DER of the issuer name (Go's RawIssuer)."""
    return cert.issuer.public_bytes()


@functools.lru_cache(maxsize=8192)
def fingerprint(cert: x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the certificate's DER encoding (what ``openssl x509 -fingerprint`` shows)."""
    return hashlib.sha256(_der(cert)).hexdigest()


def cert_pem(cert: x509.Certificate) -> str:
    """The certificate as PEM text."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)


def parse_pem_bundle(data: bytes | str) -> tuple[list[x509.Certificate], int]:
    """Certificates in a PEM bundle, and how many blocks were skipped (Go's ``AppendCertsFromPEM``)."""
    raw = data.encode() if isinstance(data, str) else data
    certs: list[x509.Certificate] = []
    skipped = 0
    for match in _PEM_BLOCK.finditer(raw):
        try:
            der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
            with warnings.catch_warnings():
                # Some system roots have non-positive serials; Go loads them, so do we, quietly.
                warnings.simplefilter("ignore")
                certs.append(x509.load_der_x509_certificate(der))
        except (ValueError, TypeError):
            skipped += 1
    return certs, skipped


def _name(n: x509.Name) -> str:
    """RFC 4514 text of a name (``CN=regtui lab intermediate CA,O=...``)."""
    try:
        return n.rfc4514_string()
    except ValueError:
        return repr(n)


def _short_name(cert: x509.Certificate) -> str:
    """How Go names a certificate in errors: its CN, else its first O, else ``serial:N``."""
    for oid in (x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME):
        attrs = cert.subject.get_attributes_for_oid(oid)
        if attrs:
            return str(attrs[0].value)
    return f"serial:{cert.serial_number}"


#: What reading a hostile certificate's extensions can raise (absent, malformed, duplicated).
_EXT_ERRORS = (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def _ext(cert: x509.Certificate, cls: type) -> Any:
    """The value of extension ``cls``, or ``None`` when absent or unparsable."""
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except _EXT_ERRORS:
        return None


def _has_san(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_oid(x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        return True
    except x509.ExtensionNotFound:
        return False
    except _EXT_ERRORS:
        return True  # present but unreadable: Go fails on parsing it, not for lack of SANs


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of the SubjectAltName extension."""
    san = _ext(cert, x509.SubjectAlternativeName)
    if san is None:
        return [], []
    return list(san.get_values_for_type(x509.DNSName)), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _basic(cert: x509.Certificate) -> x509.BasicConstraints | None:
    return _ext(cert, x509.BasicConstraints)


def is_ca(cert: x509.Certificate) -> bool:
    """The certificate says it is a CA (BasicConstraints cA=TRUE)."""
    bc = _basic(cert)
    return bool(bc and bc.ca)


def _self_issued(cert: x509.Certificate) -> bool:
    return _issuer_der(cert) == _subject_der(cert)


def _not_before(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc


def _not_after(cert: x509.Certificate) -> datetime:
    return cert.not_valid_after_utc


def iso_time(t: datetime) -> str:
    """RFC 3339 UTC, seconds resolution (``2026-01-31T12:00:00Z``)."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_left(cert: x509.Certificate, now: datetime) -> int:
    """Whole days until notAfter (negative once expired)."""
    return math.floor((_not_after(cert) - now).total_seconds() / 86400)


# Go's names for signature algorithms (crypto/x509 ``SignatureAlgorithm.String``).
_GO_SIG_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "MD5-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA1-RSA",
    SignatureAlgorithmOID._RSA_WITH_SHA1: "SHA1-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "SHA224-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "SHA256-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "SHA384-RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "SHA512-RSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ECDSA-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ECDSA-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ECDSA-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ECDSA-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ECDSA-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "DSA-SHA1",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "DSA-SHA256",
    SignatureAlgorithmOID.ED25519: "Ed25519",
    SignatureAlgorithmOID.ED448: "Ed448",
}
_WEAK_HASHES = ("sha1", "md5", "md2")


def signature_name(cert: x509.Certificate) -> str:
    """The signature algorithm with Go's name (``SHA256-RSA``, ``ECDSA-SHA256``, ``SHA1-RSA``)."""
    oid = cert.signature_algorithm_oid
    if oid in _GO_SIG_NAMES:
        return _GO_SIG_NAMES[oid]
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        h = _hash_name(cert)
        return f"{h.upper()}-RSAPSS" if h else "RSAPSS"
    return oid._name or oid.dotted_string


def _hash_name(cert: x509.Certificate) -> str | None:
    oid = cert.signature_algorithm_oid
    if oid in (SignatureAlgorithmOID.RSA_WITH_MD5,):
        return "md5"
    try:
        h = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        name = (oid._name or "").lower()
        return next((w for w in _WEAK_HASHES if w in name), None)
    return h.name.lower() if h is not None else None


def is_weak_signature(cert: x509.Certificate) -> bool:
    """Signed with SHA-1 or MD5: Go refuses to verify it (``insecure algorithm``)."""
    return _hash_name(cert) in _WEAK_HASHES


def key_description(cert: x509.Certificate) -> tuple[str, int | None]:
    """(key type, size in bits): ``("RSA", 2048)``, ``("EC P-256", 256)``, ``("Ed25519", 256)``."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521", "secp224r1": "P-224"}
        return f"EC {curve.get(key.curve.name, key.curve.name)}", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, None


def weak_key_reason(cert: x509.Certificate) -> tuple[str, bool] | None:
    """Why the key is weak and whether Go refuses it outright, or ``None`` when it is fine.

    RSA under 2048 bits is weak (warning); under 1024 Go >= 1.24 refuses it. DSA is not
    supported by Go's TLS at all; EC curves under 256 bits are weak.
    """
    kind, size = key_description(cert)
    if kind == "RSA" and size is not None and size < 2048:
        return f"RSA {size} bits (2048 is the minimum considered safe)", size < 1024
    if kind == "DSA":
        return f"DSA {size} bits (Go's TLS does not accept DSA)", True
    if kind.startswith("EC") and size is not None and size < 256:
        return f"{kind} ({size} bits; P-256 or larger expected)", False
    return None


# -- per-certificate description -------------------------------------------------------------


@dataclass(frozen=True)
class CertInfo:
    """One certificate as the certificate panel shows it."""

    position: int
    """Index in the served chain (0 = leaf); -1 for a certificate from the trust store."""
    role: str
    """``leaf``, ``intermediate``, ``root`` (self-signed CA sent by the server), ``anchor`` (from the
    runtime's trust store) or ``elsewhere`` (found only in another trust source on the host)."""
    subject: str
    issuer: str
    sans: tuple[str, ...]
    """``DNS:name`` / ``IP:addr`` entries; empty when the extension is absent."""
    not_before: str
    not_after: str
    days_left: int
    """Whole days until notAfter at the host's clock (negative once expired)."""
    key_type: str
    key_size: int | None
    signature_algorithm: str
    """Go's name for it (``SHA256-RSA``, ``SHA1-RSA``...)."""
    sha256: str
    is_ca: bool
    self_signed: bool
    """Subject equals issuer (a root, or a self-signed leaf)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "position": self.position, "role": self.role, "subject": self.subject, "issuer": self.issuer,
            "sans": list(self.sans), "not_before": self.not_before, "not_after": self.not_after,
            "days_left": self.days_left, "key_type": self.key_type, "key_size": self.key_size,
            "signature_algorithm": self.signature_algorithm, "sha256": self.sha256, "is_ca": self.is_ca,
            "self_signed": self.self_signed,
        }


def describe(cert: x509.Certificate, position: int, now: datetime, role: str | None = None) -> CertInfo:
    """Describe one certificate; ``position`` -1 means it was not sent (trust store or another source)."""
    dns, ips = _sans(cert)
    kind, size = key_description(cert)
    selfsigned = _self_issued(cert)
    if role is not None:
        pass
    elif position < 0:
        role = "anchor"
    elif position == 0:
        role = "leaf"
    else:
        role = "root" if selfsigned and is_ca(cert) else "intermediate"
    return CertInfo(
        position=position,
        role=role,
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        sans=tuple([f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]),
        not_before=iso_time(_not_before(cert)),
        not_after=iso_time(_not_after(cert)),
        days_left=days_left(cert, now),
        key_type=kind,
        key_size=size,
        signature_algorithm=signature_name(cert),
        sha256=fingerprint(cert),
        is_ca=is_ca(cert),
        self_signed=selfsigned,
    )


# -- capture ----------------------------------------------------------------------------------


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


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


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
                await rest.run(writer.start_tls(tls, server_hostname=None if _is_ip(phost) else phost), "TLS to the proxy")
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
    sni = None if _is_ip(host) else host
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


# -- trust ------------------------------------------------------------------------------------


class CertPool:
    """Certificates indexed by subject, like Go's ``x509.CertPool`` (lookups are by issuer name).

    A pool may sit on a ``base`` pool (the system bundle, indexed once per check) and add
    its own certificates (an endpoint's CA files) without copying the base.
    """

    def __init__(self, certs: Iterable[x509.Certificate] = (), base: "CertPool | None" = None) -> None:
        self.base = base
        self.own: list[x509.Certificate] = []
        self._by_subject: dict[bytes, list[x509.Certificate]] = {}
        self._fps: set[str] = set()
        for c in certs:
            self.add(c)

    def add(self, cert: x509.Certificate) -> None:
        """Add ``cert`` unless the same certificate is already in."""
        if self.contains(cert):
            return
        self._fps.add(fingerprint(cert))
        self.own.append(cert)
        self._by_subject.setdefault(_subject_der(cert), []).append(cert)

    def contains(self, cert: x509.Certificate) -> bool:
        """The exact certificate is in the pool."""
        return fingerprint(cert) in self._fps or (self.base is not None and self.base.contains(cert))

    def with_subject(self, name_der: bytes) -> list[x509.Certificate]:
        """Certificates whose subject encodes to ``name_der``."""
        mine = self._by_subject.get(name_der, [])
        return (self.base.with_subject(name_der) + mine) if self.base is not None else mine

    @property
    def certs(self) -> list[x509.Certificate]:
        """Every certificate, the base's first."""
        return (self.base.certs if self.base is not None else []) + self.own

    def __len__(self) -> int:
        return len(self.own) + (len(self.base) if self.base is not None else 0)

    def __iter__(self) -> Any:
        return iter(self.certs)


def _as_pool(certs: "CertPool | Iterable[x509.Certificate]") -> CertPool:
    return certs if isinstance(certs, CertPool) else CertPool(certs)


@dataclass
class TrustStore:
    """The certificate pool one runtime verifies one endpoint with."""

    anchors: list[x509.Certificate] = field(default_factory=list, repr=False)
    system_bundle: str | None = None
    """Host path of the system bundle used (``None``: none found, or system roots off)."""
    system_count: int = 0
    ca_files: list[str] = field(default_factory=list)
    """Extra CA files that contributed at least one certificate."""
    problems: list[str] = field(default_factory=list)
    """Files that could not be used, in words."""
    system_pool: CertPool | None = field(default=None, repr=False, compare=False)
    """The system bundle's pool, shared by every store of one check."""
    _pool: tuple[int, CertPool] | None = field(default=None, repr=False, compare=False)

    @property
    def pool(self) -> CertPool:
        """The anchors as an indexed pool (rebuilt if anchors were added since)."""
        if self._pool is None or self._pool[0] != len(self.anchors):
            base = self.system_pool
            extra = self.anchors[self.system_count:] if base is not None else self.anchors
            self._pool = (len(self.anchors), CertPool(extra, base=base))
        return self._pool[1]

    def contains(self, cert: x509.Certificate) -> bool:
        """The exact certificate is in the pool."""
        return self.pool.contains(cert)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (no certificate bodies)."""
        return {"system_bundle": self.system_bundle, "system_certificates": self.system_count,
                "ca_files": list(self.ca_files), "anchors": len(self.anchors), "problems": list(self.problems)}


def _read_bundle(host: Host, path: str, cache: dict[Any, Any]) -> tuple[list[x509.Certificate], str | None]:
    """Certificates in a host file (cached per path), or an error in words."""
    if path in cache:
        return cache[path]
    f = host.read(path, limit=32 * 1024 * 1024)
    if not f.ok:
        result: tuple[list[x509.Certificate], str | None] = ([], f"{path}: {f.status} {f.error}".strip())
    else:
        certs, skipped = parse_pem_bundle(f.data)
        if not certs:
            result = ([], f"{path}: no PEM certificate in it")
        else:
            result = (certs, f"{path}: {skipped} block(s) skipped (not a certificate)" if skipped else None)
    cache[path] = result
    return result


def load_trust(host: Host, tls: TLSInputs, daemon_env: dict[str, str] | None = None,
               cache: dict[Any, Any] | None = None) -> TrustStore:
    """The runtime's pool for one endpoint: system bundle under the root (when used), plus CA files."""
    cache = {} if cache is None else cache
    store = TrustStore()
    if tls.system_roots:
        bundle = system_bundle(host, daemon_env)
        if bundle:
            certs, problem = _read_bundle(host, bundle, cache)
            store.anchors += certs
            store.system_bundle, store.system_count = bundle, len(certs)
            store.system_pool = cache.setdefault(("pool", bundle), CertPool(certs))
            if problem:
                store.problems.append(problem)
        else:
            store.problems.append("no system trust bundle under the root (Go looks in /etc/ssl/certs/ca-certificates.crt, "
                                  "/etc/pki/tls/certs/ca-bundle.crt, ...)")
    for path in tls.ca_files:
        certs, problem = _read_bundle(host, path, cache)
        if certs:
            store.anchors += certs
            store.ca_files.append(path)
        if problem:
            store.problems.append(problem)
    return store


# -- Go's verification ------------------------------------------------------------------------


@dataclass
class GoResult:
    """What Go's ``Verify`` returns for a served chain."""

    chain: list[x509.Certificate] | None
    """The first chain built (leaf first, trust anchor last), or ``None``."""
    error: str | None
    """Go's error text (``x509: ...``), or ``None`` when it verifies."""
    reason: str | None = None
    """Machine form: ``expired``, ``hostname``, ``unknown-authority``, ``usage``, ``not-ca``, ``path-length``..."""
    cert: x509.Certificate | None = field(default=None, repr=False)
    """The certificate the error is about, when Go names one."""

    @property
    def ok(self) -> bool:
        """Go accepts the chain."""
        return self.error is None


class _GoError(Exception):
    def __init__(self, reason: str, message: str, cert: x509.Certificate | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.cert = cert


def _go_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _validity_error(cert: x509.Certificate, now: datetime) -> _GoError | None:
    if now < _not_before(cert):
        return _GoError("not-yet-valid", "x509: certificate has expired or is not yet valid: current time "
                        f"{_go_time(now)} is before {_go_time(_not_before(cert))}", cert)
    if now > _not_after(cert):
        return _GoError("expired", "x509: certificate has expired or is not yet valid: current time "
                        f"{_go_time(now)} is after {_go_time(_not_after(cert))}", cert)
    return None


def _server_auth_ok(cert: x509.Certificate) -> bool:
    eku = _ext(cert, x509.ExtendedKeyUsage)
    if eku is None:
        return True
    usages = list(eku)
    return not usages or ExtendedKeyUsageOID.SERVER_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def _is_valid(cert: x509.Certificate, kind: str, chain: list[x509.Certificate], now: datetime) -> None:
    """Go's ``isValid`` for a leaf, intermediate or root candidate (name constraints not modelled)."""
    if chain and _issuer_der(chain[-1]) != _subject_der(cert):
        raise _GoError("name-mismatch", "x509: issuer name does not match subject from issuing certificate", cert)
    err = _validity_error(cert, now)
    if err:
        raise err
    if not _server_auth_ok(cert):
        raise _GoError("usage", "x509: certificate specifies an incompatible key usage", cert)
    bc = _basic(cert)
    if kind == "intermediate" and not (bc and bc.ca):
        raise _GoError("not-ca", "x509: certificate is not authorized to sign other certificates", cert)
    if bc is not None and bc.path_length is not None and len(chain) - 1 > bc.path_length:
        raise _GoError("path-length", "x509: too many intermediates for path length constraint", cert)


def _signature_valid(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """The signature on ``child`` verifies with ``parent``'s key (any hash, SHA-1 included)."""
    try:
        key = parent.public_key()
        sig, tbs = child.signature, child.tbs_certificate_bytes
        params = child.signature_algorithm_parameters
        h = child.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey):
            pad = params if isinstance(params, (padding.PKCS1v15, padding.PSS)) else padding.PKCS1v15()
            key.verify(sig, tbs, pad, h or hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, tbs, params if isinstance(params, ec.ECDSA) else ec.ECDSA(h or hashes.SHA256()))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(sig, tbs)
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(sig, tbs, h or hashes.SHA256())
        else:
            return False
        return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False


def _check_signature_from(child: x509.Certificate, parent: x509.Certificate) -> None:
    """Go's ``CheckSignatureFrom``: the parent may sign, the algorithm is not SHA-1/MD5, the signature holds."""
    bc = _basic(parent)
    if (parent.version == x509.Version.v3 and bc is None) or (bc is not None and not bc.ca):
        raise _GoError("not-ca", "x509: invalid signature: parent certificate cannot sign this kind of certificate", parent)
    ku = _ext(parent, x509.KeyUsage)
    if ku is not None and not ku.key_cert_sign:
        raise _GoError("not-ca", "x509: invalid signature: parent certificate cannot sign this kind of certificate", parent)
    if is_weak_signature(child):
        raise _GoError("weak-signature", f"x509: cannot verify signature: insecure algorithm {signature_name(child)}", parent)
    if not _signature_valid(child, parent):
        kind, _ = key_description(parent)
        text = "x509: ECDSA verification failure" if kind.startswith("EC") else "crypto/rsa: verification error"
        raise _GoError("bad-signature", text, parent)


def _same_subject_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    """Go's ``alreadyInChain``: same subject, same public key, same SAN extension."""
    if _subject_der(a) != _subject_der(b):
        return False
    try:
        ka = a.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        kb = b.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, UnsupportedAlgorithm):
        return False
    if ka != kb:
        return False
    return _ext(a, x509.SubjectAlternativeName) == _ext(b, x509.SubjectAlternativeName)


def _potential_parents(child: x509.Certificate, pool: CertPool) -> list[x509.Certificate]:
    """Certificates whose subject is ``child``'s issuer, those whose key id matches first (Go's order)."""
    aki = _ext(child, x509.AuthorityKeyIdentifier)
    want = aki.key_identifier if aki is not None else None
    matches = list(pool.with_subject(_issuer_der(child)))

    def rank(c: x509.Certificate) -> int:
        ski = _ext(c, x509.SubjectKeyIdentifier)
        if want is None or ski is None:
            return 1
        return 0 if ski.digest == want else 2

    return sorted(matches, key=rank)


def _verify_hostname(cert: x509.Certificate, name: str) -> None:
    """Go's ``VerifyHostname`` and ``HostnameError`` text (SANs only; CN ignored)."""
    dns, ips = _sans(cert)
    candidate = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    if _is_ip(candidate):
        ip = ipaddress.ip_address(candidate)
        if any(ipaddress.ip_address(i) == ip for i in ips):
            return
        if not _has_san(cert) and _match_hostname(_common_name(cert), candidate):
            raise _GoError("cn-only", "x509: certificate relies on legacy Common Name field, use SANs instead", cert)
        if not ips:
            raise _GoError("hostname", f"x509: cannot validate certificate for {candidate} because it doesn't contain any IP SANs", cert)
        raise _GoError("hostname", f"x509: certificate is valid for {', '.join(ips)}, not {candidate}", cert)
    lowered = name.lower()
    valid_input = _valid_hostname(lowered.rstrip("."), pattern=False)
    for pattern in dns:
        if valid_input and _valid_hostname(pattern, pattern=True):
            if _match_hostname(pattern, lowered):
                return
        elif pattern.lower() == lowered and lowered not in ("", "."):
            return
    if not _has_san(cert) and _match_hostname(_common_name(cert), name):
        raise _GoError("cn-only", "x509: certificate relies on legacy Common Name field, use SANs instead", cert)
    if not dns:
        raise _GoError("hostname", f"x509: certificate is not valid for any names, but wanted to match {name}", cert)
    raise _GoError("hostname", f"x509: certificate is valid for {', '.join(dns)}, not {name}", cert)


def _valid_hostname(host: str, pattern: bool) -> bool:
    if not host:
        return False
    for i, part in enumerate(host.split(".")):
        if not part:
            return False
        if pattern and i == 0 and part == "*":
            continue
        for j, ch in enumerate(part):
            if ch.isascii() and (ch.isalnum() or ch == "_" or (ch == "-" and j != 0)):
                continue
            return False
    return True


def _match_hostname(pattern: str, host: str) -> bool:
    """Go's ``matchHostnames``: a ``*`` only as the whole left-most label, one label deep."""
    pattern, host = pattern.lower(), host.lower().rstrip(".")
    if not pattern or not host:
        return False
    pp, hp = pattern.split("."), host.split(".")
    if len(pp) != len(hp):
        return False
    return all((i == 0 and p == "*") or p == h for i, (p, h) in enumerate(zip(pp, hp)))


def _quote(s: str) -> str:
    """Go's ``%q`` for plain strings."""
    return json.dumps(s, ensure_ascii=False)


def go_verify(served: Sequence[x509.Certificate], server_name: str,
              roots: "CertPool | Iterable[x509.Certificate]", now: datetime) -> GoResult:
    """Verify ``served`` (leaf first) for ``server_name`` against ``roots`` the way Go does."""
    if not served:
        return GoResult(None, "tls: server sent no certificates", "no-certificate")
    roots = _as_pool(roots)
    leaf, intermediates = served[0], CertPool(served[1:])
    try:
        _is_valid(leaf, "leaf", [], now)
        if server_name:
            _verify_hostname(leaf, server_name)
    except _GoError as exc:
        return GoResult(None, str(exc), exc.reason, exc.cert)
    if roots.contains(leaf):
        return GoResult([leaf], None)
    checks = [0]
    try:
        chains = _build_chains([leaf], roots, intermediates, now, checks)
    except _GoError as exc:
        return GoResult(None, str(exc), exc.reason, exc.cert)
    return GoResult(chains[0], None)


def _build_chains(current: list[x509.Certificate], roots: CertPool, intermediates: CertPool,
                  now: datetime, checks: list[int]) -> list[list[x509.Certificate]]:
    """Go's ``buildChains``: roots first, then intermediates; the first hint explains an unknown authority."""
    cert = current[-1]
    chains: list[list[x509.Certificate]] = []
    hint: _GoError | None = None
    last: _GoError | None = None
    for kind, pool in (("root", roots), ("intermediate", intermediates)):
        for candidate in _potential_parents(cert, pool):
            if any(_same_subject_key(candidate, c) for c in current):
                continue
            checks[0] += 1
            if checks[0] > MAX_SIGNATURE_CHECKS:
                raise _GoError("limit", "x509: signature check attempts limit reached while verifying certificate chain")
            try:
                _check_signature_from(cert, candidate)
            except _GoError as exc:
                hint = hint or _GoError(exc.reason, str(exc), candidate)
                continue
            try:
                _is_valid(candidate, kind, current, now)
            except _GoError as exc:
                last = exc
                continue
            if kind == "root":
                chains.append(current + [candidate])
            else:
                try:
                    chains += _build_chains(current + [candidate], roots, intermediates, now, checks)
                except _GoError as exc:
                    last = exc
    if chains:
        return chains
    if last is not None:
        raise last
    text = "x509: certificate signed by unknown authority"
    if hint is not None and hint.cert is not None:
        text += f" (possibly because of {_quote(str(hint))} while trying to verify candidate authority certificate {_quote(_short_name(hint.cert))})"
    raise _GoError("unknown-authority", text, cert)


# -- diagnosis --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a chain, named by its finding code."""

    code: str
    """``tls.expired``, ``tls.incomplete-chain``..."""
    cert: CertInfo | None
    """The certificate it concerns (``None`` when it is about the chain as a whole)."""
    facts: dict[str, Any] = field(default_factory=dict)
    """Code-specific evidence (names the host is valid for, the missing issuer, the key size...)."""
    trust_dependent: bool = False
    """Depends on the runtime's trust inputs (``unknown-authority``, ``self-signed``), not only on the server."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"code": self.code, "certificate": self.cert.to_dict() if self.cert else None, "facts": dict(self.facts)}


@dataclass
class Diagnosis:
    """Everything wrong with one served chain, for one runtime's trust store."""

    go: GoResult
    path: list[x509.Certificate] = field(default_factory=list, repr=False)
    """The chain walked leniently, leaf first (it may end at an anchor, a self-signed cert or a gap)."""
    ends: str = ""
    """``anchor`` (trusted), ``untrusted-root`` (self-signed, not trusted) or ``gap`` (issuer not found)."""
    problems: list[Problem] = field(default_factory=list)
    candidate: x509.Certificate | None = field(default=None, repr=False)
    """The certificate the runtime would have to trust (untrusted root, or the topmost one sent)."""
    missing_issuer: str | None = None
    """Issuer name of the topmost certificate when nothing known issued it."""

    def to_dict(self, now: datetime, served: Sequence[x509.Certificate], trust: "TrustStore") -> dict[str, Any]:
        """JSON form."""
        return {
            "trusted": self.go.ok,
            "go_error": self.go.error,
            "go_reason": self.go.reason,
            "path": [_describe_in(c, served, trust, now).to_dict() for c in self.path],
            "ends": self.ends,
            "missing_issuer": self.missing_issuer,
            "candidate_ca": {"sha256": fingerprint(self.candidate), "subject": _name(self.candidate.subject)}
            if self.candidate is not None else None,
            "problems": [p.code for p in self.problems],
        }


def _position(cert: x509.Certificate, served: Sequence[x509.Certificate]) -> int:
    fp = fingerprint(cert)
    return next((i for i, c in enumerate(served) if fingerprint(c) == fp), -1)


def _describe_in(cert: x509.Certificate, served: Sequence[x509.Certificate], trust: TrustStore, now: datetime) -> CertInfo:
    """Describe a certificate of a walked path: served, from the runtime's trust store, or from elsewhere."""
    pos = _position(cert, served)
    if pos >= 0:
        return describe(cert, pos, now)
    return describe(cert, -1, now, role="anchor" if trust.contains(cert) else "elsewhere")


def _walk(served: Sequence[x509.Certificate], trust: TrustStore, known: CertPool
          ) -> tuple[list[x509.Certificate], str]:
    """Walk from the leaf to its issuers leniently: trust anchors first, then what was sent, then ``known``.

    Signatures must verify (SHA-1 allowed, CA flags and validity ignored): this is about *which*
    certificates form the chain, not whether Go accepts them.
    """
    path = [served[0]]
    if trust.contains(served[0]):
        return path, "anchor"
    pools = (("anchor", trust.pool), ("served", CertPool(served[1:])), ("known", known))
    for _ in range(MAX_CHAIN):
        cert = path[-1]
        parent, origin = None, ""
        for origin_name, pool in pools:
            for candidate in _potential_parents(cert, pool):
                if any(_same_subject_key(candidate, c) for c in path) and not _self_issued(cert):
                    continue
                if _signature_valid(cert, candidate):
                    parent, origin = candidate, origin_name
                    break
            if parent is not None:
                break
        if parent is None or fingerprint(parent) == fingerprint(cert):
            return path, ("untrusted-root" if _self_issued(cert) and _signature_valid(cert, cert) else "gap")
        path.append(parent)
        if origin == "anchor":
            return path, "anchor"
    return path, "gap"


def _cert_facts(info: CertInfo) -> dict[str, Any]:
    return {"subject": info.subject, "sha256": info.sha256, "position": info.position, "role": info.role}


def diagnose(served: Sequence[x509.Certificate], server_name: str, trust: TrustStore, now: datetime,
             known: "CertPool | Iterable[x509.Certificate]" = ()) -> Diagnosis:
    """Go's verdict plus every defect of the chain, each tied to the certificate it concerns.

    ``known`` are certificates from other trust sources on this host (other runtimes' CA
    files): they help tell an untrusted root (``tls.unknown-authority``) from an intermediate the
    server should have sent (``tls.incomplete-chain``). The verdict is Go's with verification on;
    for a runtime that skips verification the caller decides what it means.
    """
    go = go_verify(served, server_name, trust.pool, now)
    diag = Diagnosis(go)
    if not served:
        return diag
    path, ends = _walk(served, trust, _as_pool(known))
    diag.path, diag.ends = path, ends
    info = {fingerprint(c): _describe_in(c, served, trust, now) for c in [*served, *path]}
    leaf = served[0]
    leaf_info = info[fingerprint(leaf)]
    add = diag.problems.append

    # Trust: what the chain ends on, and what would have to be trusted.
    top = path[-1]
    top_info = info[fingerprint(top)]
    if ends == "untrusted-root" and len(path) == 1:
        diag.candidate = leaf
        add(Problem("tls.self-signed", leaf_info, {**_cert_facts(leaf_info)}, trust_dependent=True))
    elif ends == "untrusted-root":
        diag.candidate = top
        add(Problem("tls.unknown-authority", top_info,
                    {**_cert_facts(top_info), "root_sent_by_server": top_info.position >= 0}, trust_dependent=True))
    elif ends == "gap" and top is leaf:
        diag.missing_issuer = leaf_info.issuer
        aia = _ca_issuers(leaf)
        add(Problem("tls.incomplete-chain", leaf_info,
                    {"missing_issuer": leaf_info.issuer, "issued_by_missing": leaf_info.subject, "aia_ca_issuers": aia}))
    elif ends == "gap":
        diag.missing_issuer = top_info.issuer
        diag.candidate = top
        add(Problem("tls.unknown-authority", top_info,
                    {**_cert_facts(top_info), "missing_issuer": top_info.issuer, "root_sent_by_server": False},
                    trust_dependent=True))
    # An intermediate found only in another trust source: the server does not send it.
    for c in path[1:]:
        ci = info[fingerprint(c)]
        if ci.position < 0 and not trust.contains(c) and not _self_issued(c):
            add(Problem("tls.incomplete-chain", ci, {"missing_issuer": ci.subject, "issued_by_missing": info[fingerprint(path[0])].subject,
                                                     "found_in_other_trust_source": True, "aia_ca_issuers": []}))

    # Names: Go ignores the Common Name.
    try:
        _verify_hostname(leaf, server_name)
    except _GoError as exc:
        dns, ips = _sans(leaf)
        facts = {"wanted": server_name, "dns_names": dns, "ip_addresses": ips, "common_name": _common_name(leaf),
                 "go_error": str(exc)}
        add(Problem("tls.cn-only" if not _has_san(leaf) else "tls.hostname-mismatch", leaf_info, facts))
    else:
        if not _has_san(leaf):
            add(Problem("tls.cn-only", leaf_info, {"wanted": server_name, "common_name": _common_name(leaf),
                                                   "dns_names": [], "ip_addresses": []}))

    # Every certificate on the chain: validity, signatures Go would check, keys.
    for c in path:
        ci = info[fingerprint(c)]
        err = _validity_error(c, now)
        if err is not None:
            add(Problem(f"tls.{err.reason}", ci, {**_cert_facts(ci), "not_before": ci.not_before, "not_after": ci.not_after,
                                                   "now": iso_time(now), "go_error": str(err)}))
        elif ci.days_left < 60:
            add(Problem("tls.expires-soon", ci, {**_cert_facts(ci), "not_after": ci.not_after, "days_left": ci.days_left}))
        # Go never checks the signature on the certificate a chain ends with (an anchor or a self-signed root).
        ends_here = c is path[-1] and (ends == "anchor" or ends == "untrusted-root")
        if not ends_here and is_weak_signature(c):
            add(Problem("tls.weak-signature", ci, {**_cert_facts(ci), "signature_algorithm": ci.signature_algorithm}))
        weak = weak_key_reason(c)
        if weak is not None:
            add(Problem("tls.weak-key", ci, {**_cert_facts(ci), "key_type": ci.key_type, "key_size": ci.key_size,
                                              "why": weak[0], "go_refuses": weak[1]}))
    for c in served[1:]:
        if _self_issued(c) and is_ca(c):
            ci = info[fingerprint(c)]
            add(Problem("tls.root-sent", ci, {**_cert_facts(ci)}))
    return diag


def _ca_issuers(cert: x509.Certificate) -> list[str]:
    """URLs of the issuer certificate from the AuthorityInformationAccess extension."""
    aia = _ext(cert, x509.AuthorityInformationAccess)
    if aia is None:
        return []
    return [d.access_location.value for d in aia
            if d.access_method == x509.AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def certs_differ(a: Sequence[x509.Certificate], b: Sequence[x509.Certificate]) -> bool:
    """The two served chains have different leaves."""
    return bool(a) and bool(b) and fingerprint(a[0]) != fingerprint(b[0])


def known_from(stores: Iterable[TrustStore]) -> CertPool:
    """Every distinct certificate from several trust stores (other runtimes' CA files), as one pool.

    System bundles are left out: a runtime that uses system roots has them in its own store, and
    one that does not should not be offered the whole bundle.
    """
    pool = CertPool()
    for s in stores:
        for c in s.anchors[s.system_count:]:
            pool.add(c)
    return pool
