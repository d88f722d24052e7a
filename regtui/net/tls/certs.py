"""Certificates as Go sees them: parsing, names, extensions, validity, signature and key facts.

The small shared model of :mod:`regtui.net.tls`: every other module of the package (capture,
trust pools, Go's verification, the diagnosis) reads certificates through these helpers.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import math
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

#: Certificates beyond this position in a served chain are not analysed (Go gives up far earlier).
MAX_CHAIN = 32


@functools.lru_cache(maxsize=8192)
def _der(cert: x509.Certificate) -> bytes:
    """DER of a certificate (memoised: chain building compares certificates often)."""
    return cert.public_bytes(serialization.Encoding.DER)


@functools.lru_cache(maxsize=8192)
def subject_der(cert: x509.Certificate) -> bytes:
    """DER of the subject name (Go compares RawSubject bytes)."""
    return cert.subject.public_bytes()


@functools.lru_cache(maxsize=8192)
def issuer_der(cert: x509.Certificate) -> bytes:
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


def name_text(n: x509.Name) -> str:
    """RFC 4514 text of a name (``CN=regtui lab intermediate CA,O=...``)."""
    try:
        return n.rfc4514_string()
    except ValueError:
        return repr(n)


def short_name(cert: x509.Certificate) -> str:
    """How Go names a certificate in errors: its CN, else its first O, else ``serial:N``."""
    for oid in (x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME):
        attrs = cert.subject.get_attributes_for_oid(oid)
        if attrs:
            return str(attrs[0].value)
    return f"serial:{cert.serial_number}"


#: What reading a hostile certificate's extensions can raise (absent, malformed, duplicated).
_EXT_ERRORS = (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def extension(cert: x509.Certificate, cls: type) -> Any:
    """The value of extension ``cls``, or ``None`` when absent or unparsable."""
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except _EXT_ERRORS:
        return None


def has_san(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_oid(x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        return True
    except x509.ExtensionNotFound:
        return False
    except _EXT_ERRORS:
        return True  # present but unreadable: Go fails on parsing it, not for lack of SANs


def san_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of the SubjectAltName extension."""
    san = extension(cert, x509.SubjectAlternativeName)
    if san is None:
        return [], []
    return list(san.get_values_for_type(x509.DNSName)), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    return extension(cert, x509.BasicConstraints)


def is_ca(cert: x509.Certificate) -> bool:
    """The certificate says it is a CA (BasicConstraints cA=TRUE)."""
    bc = basic_constraints(cert)
    return bool(bc and bc.ca)


def self_issued(cert: x509.Certificate) -> bool:
    return issuer_der(cert) == subject_der(cert)


def not_before(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc


def not_after(cert: x509.Certificate) -> datetime:
    return cert.not_valid_after_utc


def iso_time(t: datetime) -> str:
    """RFC 3339 UTC, seconds resolution (``2026-01-31T12:00:00Z``)."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_left(cert: x509.Certificate, now: datetime) -> int:
    """Whole days until notAfter (negative once expired)."""
    return math.floor((not_after(cert) - now).total_seconds() / 86400)


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
    dns, ips = san_names(cert)
    kind, size = key_description(cert)
    selfsigned = self_issued(cert)
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
        subject=name_text(cert.subject),
        issuer=name_text(cert.issuer),
        sans=tuple([f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]),
        not_before=iso_time(not_before(cert)),
        not_after=iso_time(not_after(cert)),
        days_left=days_left(cert, now),
        key_type=kind,
        key_size=size,
        signature_algorithm=signature_name(cert),
        sha256=fingerprint(cert),
        is_ca=is_ca(cert),
        self_signed=selfsigned,
    )


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def certs_differ(a: Sequence[x509.Certificate], b: Sequence[x509.Certificate]) -> bool:
    """The two served chains have different leaves."""
    return bool(a) and bool(b) and fingerprint(a[0]) != fingerprint(b[0])
