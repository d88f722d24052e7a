"""A port of Go's ``crypto/x509`` ``Certificate.Verify`` as ``crypto/tls`` calls it.

``DNSName`` = server name, ``Intermediates`` = what the server sent after the leaf, ``Roots`` = the
runtime's pool: leaf validity, then the host name (SANs only, no Common Name fallback), then
chain building with Go's signature rules (SHA-1 and MD5 signatures refused, parent must be a CA
allowed to sign) and validity, CA and path length checks on every candidate. :func:`go_verify`
returns the error text Go would print, so evidence can quote what the user sees
(``x509: certificate signed by unknown authority``).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, NoReturn, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from regtui.net.tls.certs import (
    basic_constraints, common_name, extension, has_san, is_ip, is_weak_signature, issuer_der, key_description,
    not_after, not_before, san_names, short_name, signature_name, subject_der,
)
from regtui.net.tls.trust import CertPool, as_pool

#: Go's ``maxChainSignatureChecks``.
MAX_SIGNATURE_CHECKS = 100


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


class GoError(Exception):
    def __init__(self, reason: str, message: str, cert: x509.Certificate | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.cert = cert


def _go_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def validity_error(cert: x509.Certificate, now: datetime) -> GoError | None:
    if now < not_before(cert):
        return GoError("not-yet-valid", "x509: certificate has expired or is not yet valid: current time "
                        f"{_go_time(now)} is before {_go_time(not_before(cert))}", cert)
    if now > not_after(cert):
        return GoError("expired", "x509: certificate has expired or is not yet valid: current time "
                        f"{_go_time(now)} is after {_go_time(not_after(cert))}", cert)
    return None


def _server_auth_ok(cert: x509.Certificate) -> bool:
    eku = extension(cert, x509.ExtendedKeyUsage)
    if eku is None:
        return True
    usages = list(eku)
    return not usages or ExtendedKeyUsageOID.SERVER_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def _is_valid(cert: x509.Certificate, kind: str, chain: list[x509.Certificate], now: datetime) -> None:
    """Go's ``isValid`` for a leaf, intermediate or root candidate (name constraints not modelled)."""
    if chain and issuer_der(chain[-1]) != subject_der(cert):
        raise GoError("name-mismatch", "x509: issuer name does not match subject from issuing certificate", cert)
    err = validity_error(cert, now)
    if err:
        raise err
    if not _server_auth_ok(cert):
        raise GoError("usage", "x509: certificate specifies an incompatible key usage", cert)
    bc = basic_constraints(cert)
    if kind == "intermediate" and not (bc and bc.ca):
        raise GoError("not-ca", "x509: certificate is not authorized to sign other certificates", cert)
    if bc is not None and bc.path_length is not None and len(chain) - 1 > bc.path_length:
        raise GoError("path-length", "x509: too many intermediates for path length constraint", cert)


def signature_valid(child: x509.Certificate, parent: x509.Certificate) -> bool:
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
    bc = basic_constraints(parent)
    if (parent.version == x509.Version.v3 and bc is None) or (bc is not None and not bc.ca):
        raise GoError("not-ca", "x509: invalid signature: parent certificate cannot sign this kind of certificate", parent)
    ku = extension(parent, x509.KeyUsage)
    if ku is not None and not ku.key_cert_sign:
        raise GoError("not-ca", "x509: invalid signature: parent certificate cannot sign this kind of certificate", parent)
    if is_weak_signature(child):
        raise GoError("weak-signature", f"x509: cannot verify signature: insecure algorithm {signature_name(child)}", parent)
    if not signature_valid(child, parent):
        kind, _ = key_description(parent)
        text = "x509: ECDSA verification failure" if kind.startswith("EC") else "crypto/rsa: verification error"
        raise GoError("bad-signature", text, parent)


def same_subject_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    """Go's ``alreadyInChain``: same subject, same public key, same SAN extension."""
    if subject_der(a) != subject_der(b):
        return False
    try:
        ka = a.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        kb = b.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, UnsupportedAlgorithm):
        return False
    if ka != kb:
        return False
    return extension(a, x509.SubjectAlternativeName) == extension(b, x509.SubjectAlternativeName)


def potential_parents(child: x509.Certificate, pool: CertPool) -> list[x509.Certificate]:
    """Certificates whose subject is ``child``'s issuer, those whose key id matches first (Go's order)."""
    aki = extension(child, x509.AuthorityKeyIdentifier)
    want = aki.key_identifier if aki is not None else None
    matches = list(pool.with_subject(issuer_der(child)))

    def rank(c: x509.Certificate) -> int:
        ski = extension(c, x509.SubjectKeyIdentifier)
        if want is None or ski is None:
            return 1
        return 0 if ski.digest == want else 2

    return sorted(matches, key=rank)


def verify_hostname(cert: x509.Certificate, name: str) -> None:
    """Go's ``VerifyHostname`` and ``HostnameError`` text (SANs only; CN ignored)."""
    dns, ips = san_names(cert)
    candidate = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    if is_ip(candidate):
        ip = ipaddress.ip_address(candidate)
        if any(ipaddress.ip_address(i) == ip for i in ips):
            return
        _name_mismatch(cert, candidate, ips,
                       f"x509: cannot validate certificate for {candidate} because it doesn't contain any IP SANs")
    lowered = name.lower()
    valid_input = _valid_hostname(lowered.rstrip("."), pattern=False)
    for pattern in dns:
        if valid_input and _valid_hostname(pattern, pattern=True):
            if _match_hostname(pattern, lowered):
                return
        elif pattern.lower() == lowered and lowered not in ("", "."):
            return
    _name_mismatch(cert, name, dns, f"x509: certificate is not valid for any names, but wanted to match {name}")


def _name_mismatch(cert: x509.Certificate, wanted: str, valid: list[str], none_valid: str) -> NoReturn:
    """Go's ``HostnameError`` for ``wanted``: CN-only certificate, no SAN of the kind, or the SANs it is valid for."""
    if not has_san(cert) and _match_hostname(common_name(cert), wanted):
        raise GoError("cn-only", "x509: certificate relies on legacy Common Name field, use SANs instead", cert)
    if not valid:
        raise GoError("hostname", none_valid, cert)
    raise GoError("hostname", f"x509: certificate is valid for {', '.join(valid)}, not {wanted}", cert)


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
    roots = as_pool(roots)
    leaf, intermediates = served[0], CertPool(served[1:])
    try:
        _is_valid(leaf, "leaf", [], now)
        if server_name:
            verify_hostname(leaf, server_name)
    except GoError as exc:
        return GoResult(None, str(exc), exc.reason, exc.cert)
    if roots.contains(leaf):
        return GoResult([leaf], None)
    checks = [0]
    try:
        chains = _build_chains([leaf], roots, intermediates, now, checks)
    except GoError as exc:
        return GoResult(None, str(exc), exc.reason, exc.cert)
    return GoResult(chains[0], None)


def _build_chains(current: list[x509.Certificate], roots: CertPool, intermediates: CertPool,
                  now: datetime, checks: list[int]) -> list[list[x509.Certificate]]:
    """Go's ``buildChains``: roots first, then intermediates; the first hint explains an unknown authority."""
    cert = current[-1]
    chains: list[list[x509.Certificate]] = []
    hint: GoError | None = None
    last: GoError | None = None
    for kind, pool in (("root", roots), ("intermediate", intermediates)):
        for candidate in potential_parents(cert, pool):
            if any(same_subject_key(candidate, c) for c in current):
                continue
            checks[0] += 1
            if checks[0] > MAX_SIGNATURE_CHECKS:
                raise GoError("limit", "x509: signature check attempts limit reached while verifying certificate chain")
            try:
                _check_signature_from(cert, candidate)
            except GoError as exc:
                hint = hint or GoError(exc.reason, str(exc), candidate)
                continue
            try:
                _is_valid(candidate, kind, current, now)
            except GoError as exc:
                last = exc
                continue
            if kind == "root":
                chains.append(current + [candidate])
            else:
                try:
                    chains += _build_chains(current + [candidate], roots, intermediates, now, checks)
                except GoError as exc:
                    last = exc
    if chains:
        return chains
    if last is not None:
        raise last
    text = "x509: certificate signed by unknown authority"
    if hint is not None and hint.cert is not None:
        text += f" (possibly because of {_quote(str(hint))} while trying to verify candidate authority certificate {_quote(short_name(hint.cert))})"
    raise GoError("unknown-authority", text, cert)
