"""The causes of a rejected chain in plain words, whatever Go stopped at first.

:func:`diagnose` walks the chain leniently (SHA-1 signatures checked, validity ignored, other
trust sources on the host consulted) to tell a missing intermediate from an untrusted root,
finds the certificate the runtime would have to trust, and lists every defect (expired, wrong
name, CN-only, weak signature or key, root sent, expiring soon) with the certificate it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

from cryptography import x509

from regtui.net.tls.certs import (
    MAX_CHAIN, CertInfo, common_name, describe, extension, fingerprint, has_san, is_ca, is_weak_signature,
    iso_time, name_text, san_names, self_issued, weak_key_reason,
)
from regtui.net.tls.trust import CertPool, TrustStore, as_pool
from regtui.net.tls.verify import (
    GoError, GoResult, go_verify, potential_parents, same_subject_key, signature_valid, validity_error,
    verify_hostname,
)


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
            "candidate_ca": {"sha256": fingerprint(self.candidate), "subject": name_text(self.candidate.subject)}
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
            for candidate in potential_parents(cert, pool):
                if any(same_subject_key(candidate, c) for c in path) and not self_issued(cert):
                    continue
                if signature_valid(cert, candidate):
                    parent, origin = candidate, origin_name
                    break
            if parent is not None:
                break
        if parent is None or fingerprint(parent) == fingerprint(cert):
            return path, ("untrusted-root" if self_issued(cert) and signature_valid(cert, cert) else "gap")
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
    path, ends = _walk(served, trust, as_pool(known))
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
        if ci.position < 0 and not trust.contains(c) and not self_issued(c):
            add(Problem("tls.incomplete-chain", ci, {"missing_issuer": ci.subject, "issued_by_missing": info[fingerprint(path[0])].subject,
                                                     "found_in_other_trust_source": True, "aia_ca_issuers": []}))

    # Names: Go ignores the Common Name.
    try:
        verify_hostname(leaf, server_name)
    except GoError as exc:
        dns, ips = san_names(leaf)
        facts = {"wanted": server_name, "dns_names": dns, "ip_addresses": ips, "common_name": common_name(leaf),
                 "go_error": str(exc)}
        add(Problem("tls.cn-only" if not has_san(leaf) else "tls.hostname-mismatch", leaf_info, facts))
    else:
        if not has_san(leaf):
            add(Problem("tls.cn-only", leaf_info, {"wanted": server_name, "common_name": common_name(leaf),
                                                   "dns_names": [], "ip_addresses": []}))

    # Every certificate on the chain: validity, signatures Go would check, keys.
    for c in path:
        ci = info[fingerprint(c)]
        err = validity_error(c, now)
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
        if self_issued(c) and is_ca(c):
            ci = info[fingerprint(c)]
            add(Problem("tls.root-sent", ci, {**_cert_facts(ci)}))
    return diag


def _ca_issuers(cert: x509.Certificate) -> list[str]:
    """URLs of the issuer certificate from the AuthorityInformationAccess extension."""
    aia = extension(cert, x509.AuthorityInformationAccess)
    if aia is None:
        return []
    return [d.access_location.value for d in aia
            if d.access_method == x509.AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]
