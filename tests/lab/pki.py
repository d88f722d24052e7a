"""A throw-away PKI for the lab: root CA -> intermediate CA -> server leaves, and broken variants.

:class:`LabPKI` makes the two CAs once (RSA-2048, so a SHA-1 variant can be signed by them);
:meth:`LabPKI.issue` writes one leaf with its key, served chain and CA bundle as PEM files and
returns an :class:`IssuedCert` with paths and SHA-256 fingerprints. Keyword arguments describe the
defects later tests need; :data:`VARIANTS` names the usual ones::

    pki = LabPKI()
    good = pki.issue(tmp / "good")
    expired = pki.issue(tmp / "expired", **VARIANTS["expired"])

Files written into the output dir (``NAME`` defaults to ``server``):

- ``NAME.crt``: the leaf alone; ``NAME.key``: its private key (PKCS#8, unencrypted);
- ``NAME-chain.crt``: what the server presents (leaf, then intermediate unless left out, then
  root when asked);
- ``ca/ca.crt``: the trust anchor (root CA only). It sits in its own directory because a
  containers/image ``--cert-dir`` treats any ``*.key`` beside it as a client key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_SANS",
    "VARIANTS",
    "CertAuthority",
    "IssuedCert",
    "LabPKI",
    "fingerprint_sha256",
]

#: Names a default leaf is valid for.
DEFAULT_SANS: tuple[str, ...] = ("127.0.0.1", "localhost", "*.lab.test", "registry.lab.test")

KeyKind = Literal["ec", "rsa2048", "rsa1024"]
ChainKind = Literal["intermediate", "leaf-only", "with-root"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Named defects: keyword arguments for :meth:`LabPKI.issue`.
VARIANTS: dict[str, dict[str, Any]] = {
    "good": {},
    "no-intermediate": {"chain": "leaf-only"},
    "with-root": {"chain": "with-root"},
    "expired": {"expired": True},
    "not-yet-valid": {"not_yet_valid": True},
    "wrong-host": {"sans": ("wrong.lab.invalid",), "common_name": "wrong.lab.invalid"},
    "self-signed": {"self_signed": True},
    "cn-only": {"san": False, "common_name": "registry.lab.test"},
    "sha1": {"sha1": True},
    "rsa1024": {"key": "rsa1024"},
}

# DER of the signature AlgorithmIdentifier OIDs swapped to build a SHA-1 certificate, which
# cryptography refuses to sign directly: both OIDs have the same encoded length.
_OID_SHA256_RSA = bytes.fromhex("2a864886f70d01010b")
_OID_SHA1_RSA = bytes.fromhex("2a864886f70d010105")


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Lower-case hex SHA-256 of the certificate's DER encoding (what browsers/openssl show)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _new_key(kind: KeyKind) -> PrivateKey:
    """Generate a private key of the requested kind."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    size = 1024 if kind == "rsa1024" else 2048
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def _key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM of a private key, unencrypted (daemons read it without a passphrase)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    """PEM of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def _ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    """Subject key identifier for a key's public half."""
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _der_len(n: int) -> bytes:
    """DER length octets."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    """One DER TLV."""
    return bytes([tag]) + _der_len(len(body)) + body


def _resign_sha1(cert: x509.Certificate, signer: PrivateKey) -> x509.Certificate:
    """Return ``cert`` re-signed with sha1WithRSAEncryption by ``signer`` (an RSA key).

    The TBS part is reused with its signature OID swapped, then signed and re-assembled by hand.
    """
    if not isinstance(signer, rsa.RSAPrivateKey):
        raise ValueError("a SHA-1 certificate needs an RSA issuer key")
    tbs = cert.tbs_certificate_bytes
    if tbs.count(_OID_SHA256_RSA) != 1:
        raise ValueError("unexpected TBS layout for the SHA-1 rewrite")
    tbs = tbs.replace(_OID_SHA256_RSA, _OID_SHA1_RSA)
    signature = signer.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    alg = _der(0x30, _der(0x06, _OID_SHA1_RSA) + b"\x05\x00")
    der = _der(0x30, tbs + alg + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _san_entries(names: Sequence[str]) -> list[x509.GeneralName]:
    """SubjectAltName entries: IP addresses as IPAddress, everything else as DNSName."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


@dataclass(frozen=True)
class CertAuthority:
    """A CA certificate with its key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        """The CA certificate as PEM."""
        return _cert_pem(self.cert)

    @property
    def sha256(self) -> str:
        """SHA-256 fingerprint of the CA certificate."""
        return fingerprint_sha256(self.cert)


@dataclass(frozen=True)
class IssuedCert:
    """A written leaf: file paths, what it is valid for, and fingerprints."""

    cert_file: Path
    """The leaf certificate alone (PEM)."""
    key_file: Path
    """The leaf's private key (PKCS#8 PEM)."""
    chain_file: Path
    """What a server presents: leaf first, then the chain as configured (PEM)."""
    ca_file: Path
    """The trust anchor to give clients: the root CA (PEM), alone in ``ca_dir``."""
    ca_dir: Path
    """Directory holding only ``ca.crt`` (for ``--cert-dir`` or Docker's ``certs.d``)."""
    leaf_sha256: str
    """SHA-256 fingerprint of the leaf."""
    ca_sha256: str
    """SHA-256 fingerprint of the root CA."""
    chain_sha256: tuple[str, ...]
    """SHA-256 fingerprints of every certificate in ``chain_file``, in order."""
    sans: tuple[str, ...]
    """SubjectAltName entries (empty when the extension was left out)."""
    not_before: dt.datetime
    not_after: dt.datetime
    leaf: x509.Certificate = field(repr=False)
    """The parsed leaf certificate."""


class LabPKI:
    """A root CA and an intermediate CA, and a factory for server certificates under them."""

    def __init__(self, name: str = "regtui lab") -> None:
        """Create the root (10 years) and intermediate (5 years) CAs, valid from yesterday."""
        now = dt.datetime.now(dt.timezone.utc)
        root_key = _new_key("rsa2048")
        root_name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root CA"),
        ])
        root_cert = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(_ski(root_key), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        self.root = CertAuthority(root_cert, root_key)
        self.intermediate = self._make_intermediate(f"{name} intermediate CA", now)

    def _make_intermediate(self, common_name: str, now: dt.datetime) -> CertAuthority:
        """An intermediate CA signed by the root (path length 0: it only signs leaves)."""
        key = _new_key("rsa2048")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.root.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(_ski(key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root.key.public_key()),
                critical=False,
            )
            .sign(self.root.key, hashes.SHA256())
        )
        return CertAuthority(cert, key)

    def write_ca(self, out_dir: Path) -> Path:
        """Write the root CA alone as ``out_dir/ca.crt`` and return its path."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "ca.crt"
        path.write_bytes(self.root.pem)
        return path

    def issue(
        self,
        out_dir: Path,
        *,
        name: str = "server",
        sans: Sequence[str] = DEFAULT_SANS,
        common_name: str | None = None,
        san: bool = True,
        key: KeyKind = "ec",
        chain: ChainKind = "intermediate",
        signer: Literal["intermediate", "root"] = "intermediate",
        self_signed: bool = False,
        expired: bool = False,
        not_yet_valid: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        sha1: bool = False,
        client: bool = False,
    ) -> IssuedCert:
        """Issue a server leaf and write it, its key, its served chain and the CA bundle.

        - ``sans``: names/IPs for the SubjectAltName extension; ``san=False`` leaves the
          extension out (a CN-only certificate, rejected by modern clients).
        - ``common_name``: subject CN (default: the first SAN).
        - ``key``: ``"ec"`` (P-256), ``"rsa2048"`` or ``"rsa1024"`` (too weak for Go >= 1.24).
        - ``chain``: ``"intermediate"`` (leaf + intermediate, correct), ``"leaf-only"``
          (missing intermediate), ``"with-root"`` (leaf + intermediate + root).
        - ``signer``: ``"root"`` signs the leaf directly with the root CA.
        - ``self_signed``: the leaf signs itself (chain is the leaf alone).
        - ``expired`` / ``not_yet_valid``: validity entirely in the past / future;
          ``not_before`` / ``not_after`` override the window exactly.
        - ``sha1``: sign with sha1WithRSAEncryption (needs an RSA signer: the CAs, or a
          self-signed leaf with an RSA key).
        - ``client``: a client certificate (extended key usage clientAuth, not serverAuth).
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.timezone.utc)
        start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=30)
        if expired:
            start, end = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
        if not_yet_valid:
            start, end = now + dt.timedelta(days=1), now + dt.timedelta(days=30)
        start = not_before or start
        end = not_after or end

        leaf_key = _new_key(key)
        cn = common_name or (sans[0] if sans else "lab leaf")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        issuer_ca = self.root if signer == "root" else self.intermediate
        issuer_name = subject if self_signed else issuer_ca.cert.subject
        issuer_key: PrivateKey = leaf_key if self_signed else issuer_ca.key

        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
            .add_extension(_ski(leaf_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        )
        if san and sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(_san_entries(sans)), critical=False
            )
        leaf = builder.sign(issuer_key, hashes.SHA256())
        if sha1:
            leaf = _resign_sha1(leaf, issuer_key)

        served: list[x509.Certificate] = [leaf]
        if not self_signed:
            if signer == "intermediate" and chain in ("intermediate", "with-root"):
                served.append(self.intermediate.cert)
            if chain == "with-root":
                served.append(self.root.cert)

        cert_file = out_dir / f"{name}.crt"
        key_file = out_dir / f"{name}.key"
        chain_file = out_dir / f"{name}-chain.crt"
        cert_file.write_bytes(_cert_pem(leaf))
        key_file.write_bytes(_key_pem(leaf_key))
        key_file.chmod(0o600)
        chain_file.write_bytes(b"".join(_cert_pem(c) for c in served))
        ca_dir = out_dir / "ca"
        # A self-signed leaf is its own anchor only if a client pins it; the lab root stays the
        # anchor so that the leaf fails verification as a real self-signed server would.
        ca_file = self.write_ca(ca_dir)
        return IssuedCert(
            cert_file=cert_file,
            key_file=key_file,
            chain_file=chain_file,
            ca_file=ca_file,
            ca_dir=ca_dir,
            leaf_sha256=fingerprint_sha256(leaf),
            ca_sha256=self.root.sha256,
            chain_sha256=tuple(fingerprint_sha256(c) for c in served),
            sans=tuple(sans) if san else (),
            not_before=start,
            not_after=end,
            leaf=leaf,
        )
