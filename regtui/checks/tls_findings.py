"""Findings of the certificates panel: each chain problem, grouped per server, certificate and runtime.

Every :class:`Seen` (one target, its capture and its diagnosis) contributes the problems of its
diagnosis; problems with the same code, server, certificate (and runtime, when the problem
depends on that runtime's trust) make one finding, built by the builder for that code. Old
protocols, trust that differs between runtimes and TLS-inspecting proxies are found across
targets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography import x509

from regtui.checks.tls_targets import Target, install_target
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.net.tls.capture import GO_MIN_VERSION, OLD_PROTOCOLS, Capture
from regtui.net.tls.certs import certs_differ, fingerprint, is_ca
from regtui.net.tls.diagnose import Diagnosis, Problem
from regtui.net.tls.trust import TrustStore
from regtui.probecontext import ProbeContext

#: Expiry within this many days is a warning ...
EXPIRY_WARNING_DAYS = 30
#: ... and within this many, information.
EXPIRY_INFO_DAYS = 60
_RESTART = {"k3s": "restart k3s"}


@dataclass
class Seen:
    """One target's capture and verdict."""

    target: Target
    capture: Capture | None
    direct: Capture | None
    trust: TrustStore
    diagnosis: Diagnosis | None


def build_findings(ctx: ProbeContext, now: datetime, seen: list[Seen]) -> list[Finding]:
    out: list[Finding] = []
    groups: dict[tuple[Any, ...], list[tuple[Seen, Problem]]] = {}
    for s in seen:
        if s.diagnosis is None:
            continue
        problems = list(s.diagnosis.problems)
        if not problems and not s.diagnosis.go.ok:
            problems.append(Problem("tls.rejected", None, {"go_reason": s.diagnosis.go.reason}))
        for p in problems:
            cert_key = p.cert.sha256 if p.cert else ""
            who = s.target.runtime if p.trust_dependent else ""
            groups.setdefault((p.code, s.target.hostport, cert_key, who), []).append((s, p))
    for (code, subject, _, who), members in groups.items():
        builder = _BUILDERS.get(code)
        if builder is not None:
            out.append(_name_endpoints(builder(ctx, subject, members), members, seen) if who else
                       builder(ctx, subject, members))
    out += _old_protocol(seen)
    out += _trust_differs(ctx, seen)
    out += _intercepted(ctx, seen)
    return out


def _name_endpoints(f: Finding, members: list[tuple[Seen, Problem]], seen: list[Seen]) -> Finding:
    """A trust problem of some of one runtime's endpoints at a server, not all: name the ones it concerns.

    One URL can be several endpoints (containerd's ``server`` without ``ca`` and a ``[host]``
    table with it); the one that verifies with other inputs is not affected, and saying only
    ``host:port`` would blame it too.
    """
    rt, subject = members[0][0].target.runtime, members[0][0].target.hostport
    mine = {id(s) for s, _ in members}
    others = [s for s in seen if id(s) not in mine and s.target.runtime == rt and s.target.hostport == subject
              and s.target.endpoint_key and s.diagnosis is not None and s.diagnosis.go.ok]
    labels = sorted({s.target.endpoint_label for s, _ in members if s.target.endpoint_label})
    if not others or not labels:
        return f
    fine = sorted({s.target.endpoint_label for s in others})
    where = sorted({s.target.source for s, _ in members if s.target.endpoint_key})
    return replace(f, title=f"{f.title} (the endpoint from {_join(where)})",
                   detail=f"{f.detail} This concerns {_join(labels)} only: {rt} verifies {_join(fine)} with other "
                          "trust inputs, and that succeeds.",
                   evidence={**f.evidence, "unaffected_endpoints": fine})


def _runtimes(members: list[tuple[Seen, Problem]]) -> list[str]:
    return sorted({s.target.runtime for s, _ in members})


def _verifying(members: list[tuple[Seen, Problem]]) -> list[str]:
    return sorted({s.target.runtime for s, _ in members if s.target.tls.verify})


def _runtime_field(members: list[tuple[Seen, Problem]]) -> str | None:
    names = _runtimes(members)
    return names[0] if len(names) == 1 else None


def _common(members: list[tuple[Seen, Problem]]) -> dict[str, Any]:
    """Evidence every certificate finding carries: who, where, what the runtime will report."""
    s0, p0 = members[0]
    return {
        "endpoints": sorted({s.target.url for s, _ in members}),
        "endpoint_keys": sorted({s.target.endpoint_key for s, _ in members if s.target.endpoint_key}),
        "endpoint_labels": sorted({s.target.endpoint_label for s, _ in members if s.target.endpoint_label}),
        "roles": sorted({s.target.role for s, _ in members}),
        "runtimes": _runtimes(members),
        "verifying_runtimes": _verifying(members),
        "runtime_error": s0.diagnosis.go.error if s0.diagnosis else None,
        "certificate": p0.cert.to_dict() if p0.cert else None,
        "chain": [{"subject": c.subject.rfc4514_string(), "sha256": fingerprint(c)} for c in (s0.capture.certs if s0.capture else [])],
        "tls_version": s0.capture.tls_version if s0.capture else None,
        "proxy": s0.target.proxy_shown,
    }


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


#: What each certificate problem is called in a sentence about it.
_PROBLEM_WORDS = {"tls.unknown-authority": "the unknown authority", "tls.self-signed": "the self-signed certificate",
                  "tls.expired": "the expired certificate", "tls.not-yet-valid": "the not-yet-valid certificate",
                  "tls.hostname-mismatch": "the name mismatch"}


def _loopback_unverified(members: list[tuple[Seen, Problem]]) -> bool:
    """Every endpoint is one dockerd reaches without verification only by its built-in loopback range."""
    from regtui.runtimes.docker.model import builtin_insecure_range

    return bool(members) and all(s.target.runtime == "docker" and not s.target.tls.verify
                                 and builtin_insecure_range(s.target.tls.verify_reason) for s, _ in members)


def _loopback_range(members: list[tuple[Seen, Problem]]) -> str:
    """The built-in range that makes the endpoint insecure (127.0.0.0/8, or ::1/128 from Engine 28)."""
    from regtui.runtimes.docker.model import builtin_insecure_range

    return builtin_insecure_range(members[0][0].target.tls.verify_reason) or "127.0.0.0/8"


def _loopback_matters(subject: str, net: str) -> str:
    """When a certificate problem of a registry dockerd reaches on loopback starts to fail pulls."""
    return (f"if {subject} is reached by a name or address outside {net} (from another host, or by a "
            "non-loopback name): dockerd then verifies the certificate and this fails the pull")


def _severity(code: str, members: list[tuple[Seen, Problem]], default: str | None = None) -> tuple[str | None, str]:
    """(severity override, sentence to append): problems only runtimes that skip verification see are ``info``."""
    verifying = _verifying(members)
    others = [r for r in _runtimes(members) if r not in verifying]
    if verifying:
        if not others:
            return default, ""
        one = len(others) == 1
        return default, (f" ({_join(others)} {'does' if one else 'do'} not verify this endpoint and "
                         f"{'is' if one else 'are'} not affected.)")
    if _loopback_unverified(members):
        # dockerd's built-in insecure range: no setting turns verification on, so "turned back on" would mislead.
        what = _PROBLEM_WORDS.get(code, "this certificate problem")
        net = _loopback_range(members)
        return "info", (f" dockerd does not verify this loopback registry's certificate ({net} is always "
                        f"insecure to it; see tls.verify-disabled), so {what} does not fail the pull. It matters "
                        f"{_loopback_matters(members[0][0].target.hostport, net)}.")
    return "info", (f" {_join(others)} {'does' if len(others) == 1 else 'do'} not verify this certificate "
                    "(see tls.verify-disabled), so this does not fail pulls today; it will once verification is turned back on.")


def _will(members: list[tuple[Seen, Problem]], verb: str, start: bool = True) -> str:
    """``docker will fail``; on dockerd's loopback range, where nothing verifies, ``Verifying it would fail``
    (``a client that verifies it would fail`` inside a sentence)."""
    if not _verifying(members) and _loopback_unverified(members):
        return f"Verifying it would {verb}" if start else f"a client that verifies it would {verb}"
    return f"{_who(members)} will {verb}"


def _who(members: list[tuple[Seen, Problem]]) -> str:
    """The runtimes the problem makes fail (the verifying ones; all of them when none verifies)."""
    return _join(_verifying(members) or _runtimes(members))


def _build_trust(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    """``tls.unknown-authority`` / ``tls.self-signed`` for one runtime, with the CA to install."""
    s, p = members[0]
    t, d = s.target, s.diagnosis
    assert d is not None
    code = p.code
    cand = d.candidate
    fp = fingerprint(cand) if cand is not None else None
    cand_subject = cand.subject.rfc4514_string() if cand is not None else ""
    severity, note = _severity(code, members)
    target = install_target(ctx, t)
    root_sent = bool(p.facts.get("root_sent_by_server"))
    missing = p.facts.get("missing_issuer")
    loopback = severity == "info" and _loopback_unverified(members)
    if loopback:
        # dockerd never checks this chain: say so first, and that the error below is what verification would report.
        what = "a self-signed certificate" if code == "tls.self-signed" else "a certificate from an unknown authority"
        title = (f"{t.runtime} does not verify loopback registry {subject}: its {what[2:]} does not fail the pull")
        if code == "tls.self-signed":
            what = (f"The server's certificate ({cand_subject}) signed itself, and it is not in {t.runtime}'s trust "
                    f"store for {t.config_host}.")
        elif missing:
            what = (f"The chain the server sends ends with {cand_subject}, issued by '{missing}', a CA that is neither "
                    f"sent nor in {t.runtime}'s trust store nor in any CA file under the root.")
        else:
            what = (f"The chain ends at the self-signed root {cand_subject}"
                    f"{' (sent by the server)' if root_sent else ''}, which is not in {t.runtime}'s trust store.")
    elif code == "tls.self-signed":
        title = f"{t.runtime}: {subject} presents a self-signed certificate it does not trust"
        what = (f"The server's certificate ({cand_subject}) signed itself, and it is not in {t.runtime}'s trust "
                f"store for {t.config_host}.")
    elif missing:
        title = f"{t.runtime} does not trust {subject}: its chain ends at '{missing}', which is not trusted"
        what = (f"The chain the server sends ends with {cand_subject}, issued by '{missing}', a CA that is neither "
                f"sent nor in {t.runtime}'s trust store nor in any CA file under the root. Trust that root CA: get it "
                f"from the registry's operators, check its fingerprint out of band and give it to `regtui fix "
                f"--ca-file` (trusting {cand_subject} instead would last only until it is reissued).")
    else:
        title = f"{t.runtime} does not trust {subject}: root '{cand_subject}' is not in its trust store"
        what = (f"The chain ends at the self-signed root {cand_subject}"
                f"{' (sent by the server)' if root_sent else ''}, which is not in {t.runtime}'s trust store.")
    check = (f"The last certificate sent ({cand_subject}) has SHA-256 {fp}." if missing else
             f"Trusting it means checking this fingerprint out of band first: SHA-256 {fp}.")
    if loopback:
        detail = (f"{what} Verifying it would fail with \"{d.go.error}\" on {t.url}, but dockerd skips verification "
                  f"for this registry. {check}{note}")
    else:
        detail = f"{what} {t.runtime} will fail with \"{d.go.error}\" on {t.url}. {check}{note}"
    params = {"runtime": t.runtime, "host": subject, "ca_pem_fingerprint": fp, "ca_subject": cand_subject,
              **target}
    if missing:
        # The anchor is not at hand: the fix needs it supplied (the certificate above is what it must issue).
        params["anchor_missing"] = missing
    summary = (f"trust the root CA '{missing}' (supply it with --ca-file) for {t.config_host} in {t.runtime}"
               if missing else f"trust {cand_subject} (SHA-256 {(fp or '')[:16]}...) for {t.config_host} in {t.runtime}")
    evidence = {**_common(members), "runtime": t.runtime, "trust": s.trust.to_dict(),
                "candidate_ca": {"sha256": fp, "subject": cand_subject, "sent_by_server": root_sent or code == "tls.self-signed",
                                 "is_ca": is_ca(cand) if cand is not None else None},
                "missing_issuer": missing}
    if loopback:
        evidence.update(verified=False, fails_pull=False,
                        not_verified_because=t.tls.verify_reason,
                        matters_if=_loopback_matters(subject, _loopback_range(members)))
    # On dockerd's loopback range certs.d is not read at all: installing the CA there would change nothing.
    offered = fp and not loopback
    return finding(code, subject, title, detail, evidence=evidence, severity=severity, runtime=t.runtime,
                   fix=fix(code, subject, summary, kind="edit", files=[target["install_to"]], restart=_RESTART.get(t.runtime, "none"),
                           detail=t.runtime, params=params) if offered else None)


def _certificate_finding(subject: str, members: list[tuple[Seen, Problem]], title: str, detail: str,
                         evidence: dict[str, Any], severity: str | None, summary: str) -> Finding:
    """A finding about one certificate of ``subject``'s chain, with the manual fix on it (renew or reissue)."""
    p = members[0][1]
    c = p.cert
    assert c is not None
    return finding(p.code, subject, title, detail, evidence={**_common(members), **evidence}, severity=severity,
                   runtime=_runtime_field(members),
                   fix=fix(p.code, subject, summary, kind="manual", detail=c.sha256[:16],
                           params={"host": subject, "certificate_sha256": c.sha256}))


def _build_incomplete(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    s, p = members[0]
    missing = p.facts.get("missing_issuer", "")
    aia = p.facts.get("aia_ca_issuers") or []
    severity, note = _severity(p.code, members)
    detail = (f"{subject} sends '{p.facts.get('issued_by_missing')}' without the intermediate that issued it "
              f"('{missing}'). Browsers often fetch or cache it; Go never does, so {_who(members)} "
              f"cannot build a chain to a trusted root and fail with \"{s.diagnosis.go.error if s.diagnosis else ''}\". "
              f"(If '{missing}' is itself a root, a private CA signing leaves directly, the runtimes must trust it "
              "instead: the certificate alone cannot tell.)"
              f"{' The certificate names where the intermediate is published: ' + ', '.join(aia) + '.' if aia else ''}"
              f"{note}")
    return finding(p.code, subject, f"{subject} does not send its intermediate certificate '{missing}'", detail,
                   evidence={**_common(members), "missing_issuer": missing, "aia_ca_issuers": aia,
                             "found_in_other_trust_source": bool(p.facts.get("found_in_other_trust_source"))},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix(p.code, subject, f"configure the server to send the full chain (leaf + '{missing}')",
                           kind="manual", params={"host": subject, "missing_issuer": missing, "aia_ca_issuers": aia}))


def _build_validity(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    severity, note = _severity(p.code, members)
    if p.code == "tls.expired":
        title = f"{subject}: the {c.role} certificate '{c.subject}' expired on {c.not_after}"
        what = f"The {c.role} certificate {c.subject} was valid until {c.not_after}; by this host's clock it is {p.facts.get('now')}."
        summary = f"renew the certificate '{c.subject}' on {subject}"
    else:
        title = f"{subject}: the {c.role} certificate '{c.subject}' is not valid before {c.not_before}"
        what = (f"The {c.role} certificate {c.subject} starts being valid at {c.not_before}; by this host's clock it is "
                f"{p.facts.get('now')}. Check the clock panel: a clock running behind causes exactly this.")
        summary = f"check this host's clock, or reissue '{c.subject}' with a past notBefore"
    detail = f"{what} {_will(members, 'fail')} with \"{p.facts.get('go_error')}\".{note}"
    return _certificate_finding(subject, members, title, detail,
                                {"not_before": c.not_before, "not_after": c.not_after,
                                 "local_time": p.facts.get("now"), "go_error": p.facts.get("go_error"),
                                 "clock_skew_seconds": None, "explained_by_clock": None},
                                severity, summary)


def _build_expires_soon(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    default = "warning" if c.days_left <= EXPIRY_WARNING_DAYS else "info"
    severity, note = _severity(p.code, members, default)
    return _certificate_finding(
        subject, members, f"{subject}: the {c.role} certificate '{c.subject}' expires in {c.days_left} days",
        f"It is valid until {c.not_after}. After that, {_will(members, 'refuse', start=False)} {subject} "
        f"(\"x509: certificate has expired or is not yet valid\"). Warning within {EXPIRY_WARNING_DAYS} days, "
        f"information within {EXPIRY_INFO_DAYS}.{note}",
        {"not_after": c.not_after, "days_left": c.days_left}, severity or default,
        f"renew '{c.subject}' before {c.not_after}")


def _build_names(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    s, p = members[0]
    f = p.facts
    severity, note = _severity(p.code, members)
    valid = [*f.get("dns_names", []), *f.get("ip_addresses", [])]
    if p.code == "tls.cn-only":
        title = f"{subject}: the certificate has no subjectAltName (only CN '{f.get('common_name')}'); Go rejects it"
        detail = (f"Go ignores the Common Name since 1.15 and requires names in the subjectAltName extension, which this "
                  f"certificate lacks. {_will(members, 'fail')} with \"{f.get('go_error') or 'x509: certificate relies on legacy Common Name field, use SANs instead'}\".{note}")
        summary = f"reissue the certificate with subjectAltName DNS:{f.get('wanted')}"
    else:
        title = f"{subject}: the certificate is not valid for '{f.get('wanted')}' (valid for: {', '.join(valid) or 'no names'})"
        detail = (f"The runtimes connect as '{f.get('wanted')}' but the certificate names only {', '.join(valid) or 'nothing'} "
                  f"in its subjectAltName (the Common Name '{f.get('common_name')}' does not count). "
                  f"{_will(members, 'fail')} with \"{f.get('go_error')}\".{note}")
        summary = (f"use a name the certificate is valid for ({', '.join(valid)}) or reissue it for {f.get('wanted')}"
                   if valid else f"reissue the certificate for {f.get('wanted')}")
    return finding(p.code, subject, title, detail,
                   evidence={**_common(members), "wanted": f.get("wanted"), "valid_for": valid,
                             "common_name": f.get("common_name"), "go_error": f.get("go_error")},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix(p.code, subject, summary, kind="manual", params={"host": subject, "valid_for": valid}))


def _build_weak_signature(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    severity, note = _severity(p.code, members)
    return _certificate_finding(
        subject, members, f"{subject}: '{c.subject}' is signed with {c.signature_algorithm}, which Go refuses",
        f"Go (1.18 and later) will not verify SHA-1 or MD5 signatures, so {_who(members)} cannot use this "
        f"chain: \"x509: cannot verify signature: insecure algorithm {c.signature_algorithm}\" (reported as "
        f"\"{s.diagnosis.go.error if s.diagnosis else ''}\").{note}",
        {"signature_algorithm": c.signature_algorithm}, severity, f"reissue '{c.subject}' with a SHA-256 signature")


def _build_weak_key(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    refuses = bool(p.facts.get("go_refuses"))
    severity, note = _severity(p.code, members, "error" if refuses else None)
    consequence = ("Go refuses it outright, so pulls fail." if refuses else
                   "Go still accepts it, but it can be broken; CAs stopped issuing such keys in 2013.")
    return _certificate_finding(
        subject, members, f"{subject}: '{c.subject}' has a weak key ({p.facts.get('why')})",
        f"The {c.role} certificate {c.subject} uses {p.facts.get('why')}. {consequence}{note}",
        {"key_type": c.key_type, "key_size": c.key_size, "go_refuses": refuses}, severity,
        f"reissue '{c.subject}' with an RSA 2048+ or ECDSA P-256 key")


def _build_root_sent(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    s, p = members[0]
    c = p.cert
    assert c is not None
    return finding(p.code, subject, f"{subject} sends its root certificate '{c.subject}' in the chain",
                   "A root is trusted because the client already has it; sending it wastes bytes in every handshake, "
                   "and clients ignore it (they do not trust it because it was sent).",
                   evidence={**_common(members)}, runtime=_runtime_field(members))


def _build_rejected(ctx: ProbeContext, subject: str, members: list[tuple[Seen, Problem]]) -> Finding:
    s, _ = members[0]
    err = s.diagnosis.go.error if s.diagnosis else ""
    severity, note = _severity("tls.rejected", members)
    return finding("tls.rejected", subject, f"{subject}: Go rejects the certificate chain ({err})",
                   f"{_will(members, 'fail')} with \"{err}\".{note}",
                   evidence={**_common(members), "go_reason": s.diagnosis.go.reason if s.diagnosis else None},
                   severity=severity, runtime=_runtime_field(members),
                   fix=fix("tls.rejected", subject, "reissue the certificate as the error describes", kind="manual",
                           params={"host": subject}))


_BUILDERS = {
    "tls.unknown-authority": _build_trust,
    "tls.self-signed": _build_trust,
    "tls.incomplete-chain": _build_incomplete,
    "tls.expired": _build_validity,
    "tls.not-yet-valid": _build_validity,
    "tls.expires-soon": _build_expires_soon,
    "tls.hostname-mismatch": _build_names,
    "tls.cn-only": _build_names,
    "tls.weak-signature": _build_weak_signature,
    "tls.weak-key": _build_weak_key,
    "tls.root-sent": _build_root_sent,
    "tls.rejected": _build_rejected,
}


def _old_protocol(seen: list[Seen]) -> list[Finding]:
    """``tls.old-protocol``: the server negotiated below TLS 1.2 although the client offered 1.3."""
    out = []
    by_host: dict[str, list[Seen]] = {}
    for s in seen:
        if s.capture and s.capture.tls_version in OLD_PROTOCOLS:
            by_host.setdefault(s.target.hostport, []).append(s)
    for subject, members in by_host.items():
        cap = members[0].capture
        assert cap is not None
        names = sorted({m.target.runtime for m in members})
        out.append(finding(
            "tls.old-protocol", subject, f"{subject} negotiates {cap.tls_version}; Go clients require TLS 1.2",
            f"Offered everything up to TLS 1.3, the server chose {cap.tls_version} ({cap.cipher}). Go's TLS client "
            f"offers only TLS 1.2 and 1.3, whether or not it verifies certificates, so {', '.join(names)} fail at "
            "the handshake: a server that knows no newer version refuses the hello (\"remote error: tls: protocol "
            "version not supported\"), one that answers anyway is refused by Go (\"tls: server selected unsupported "
            "protocol version\"). Raised to error for that reason.",
            evidence={"endpoints": sorted({m.target.url for m in members}), "runtimes": names,
                      "tls_version": cap.tls_version, "cipher": cap.cipher, "minimum": GO_MIN_VERSION,
                      "runtime_error": "remote error: tls: protocol version not supported",
                      "runtime_error_alternative": f"tls: server selected unsupported protocol version {_wire(cap.tls_version)}"},
            severity="error", runtime=names[0] if len(names) == 1 else None,
            fix=fix("tls.old-protocol", subject, f"enable TLS 1.2 (and 1.3) on {subject}", kind="manual",
                    params={"host": subject, "negotiated": cap.tls_version}),
        ))
    return out


def _wire(version: str | None) -> str:
    """Go prints the protocol version as hex (``301`` for TLS 1.0)."""
    return {"SSLv3": "300", "TLSv1": "301", "TLSv1.1": "302"}.get(version or "", version or "")


def _trust_differs(ctx: ProbeContext, seen: list[Seen]) -> list[Finding]:
    """One runtime trusts ``host:port`` and another, verifying with other inputs, does not."""
    out = []
    by_host: dict[str, list[Seen]] = {}
    for s in seen:
        if s.diagnosis is not None and s.target.tls.verify:
            by_host.setdefault(s.target.hostport, []).append(s)
    for subject, members in by_host.items():
        trusting = [m for m in members if m.diagnosis and m.diagnosis.go.ok]
        failing = [m for m in members if m.diagnosis and not m.diagnosis.go.ok
                   and m.target.runtime not in {t.target.runtime for t in trusting}]
        if not trusting or not failing:
            continue
        good = trusting[0]
        assert good.diagnosis is not None and good.diagnosis.go.chain
        anchor = good.diagnosis.go.chain[-1]
        fp = fingerprint(anchor)
        for bad in {m.target.runtime: m for m in failing}.values():
            target = install_target(ctx, bad.target)
            assert bad.diagnosis is not None
            out.append(finding(
                "tls.trust-differs", subject,
                f"{good.target.runtime} trusts {subject} but {bad.target.runtime} does not",
                f"{good.target.runtime} verifies the chain up to {anchor.subject.rfc4514_string()} "
                f"(from {_anchor_source(good.trust, anchor)}); {bad.target.runtime} verifies with other trust inputs "
                f"and fails with \"{bad.diagnosis.go.error}\". Pulls of the same image work with one runtime and not "
                "the other.",
                evidence={"trusting": {"runtime": good.target.runtime, "trust": good.trust.to_dict(),
                                       "anchor": {"subject": anchor.subject.rfc4514_string(), "sha256": fp}},
                          "failing": {"runtime": bad.target.runtime, "trust": bad.trust.to_dict(),
                                      "runtime_error": bad.diagnosis.go.error},
                          "endpoints": sorted({m.target.url for m in members})},
                runtime=bad.target.runtime,
                fix=fix("tls.trust-differs", subject,
                        f"give {bad.target.runtime} the CA {good.target.runtime} trusts ({anchor.subject.rfc4514_string()})",
                        kind="edit", files=[target["install_to"]], restart=_RESTART.get(bad.target.runtime, "none"),
                        detail=bad.target.runtime,
                        params={"runtime": bad.target.runtime, "host": subject, "ca_pem_fingerprint": fp,
                                "ca_subject": anchor.subject.rfc4514_string(), "copy_from": good.target.runtime, **target}),
            ))
    return out


def _anchor_source(trust: TrustStore, anchor: x509.Certificate) -> str:
    return ", ".join(trust.ca_files) or trust.system_bundle or "its trust store"


def _intercepted(ctx: ProbeContext, seen: list[Seen]) -> list[Finding]:
    """The proxy hands out another chain than the server's own: it inspects TLS."""
    out = []
    done: set[tuple[str, str]] = set()
    for s in seen:
        cap, direct = s.capture, s.direct
        if not (cap and direct and cap.ok and direct.ok and certs_differ(cap.certs, direct.certs)):
            continue
        key = (s.target.runtime, s.target.hostport)
        if key in done:
            continue
        done.add(key)
        d = s.diagnosis
        top = cap.certs[-1]
        inspecting = d.candidate if d is not None and d.candidate is not None else top
        fp = fingerprint(inspecting)
        trusted = bool(d and d.go.ok)
        offer = not trusted and is_ca(inspecting)
        # The proxy's root is not sent: the fix needs it supplied, as for tls.unknown-authority.
        missing = d.missing_issuer if d is not None and d.ends == "gap" and d.candidate is not None else None
        target = install_target(ctx, s.target)
        proxied_leaf, direct_leaf = cap.certs[0], direct.certs[0]
        out.append(finding(
            "tls.intercepted", s.target.hostport,
            f"{s.target.runtime}: the proxy {s.target.proxy_shown} replaces {s.target.hostport}'s certificate (TLS inspection)",
            f"Through {s.target.proxy_shown} the server presents a certificate issued by '{proxied_leaf.issuer.rfc4514_string()}'; "
            f"connecting directly it presents one issued by '{direct_leaf.issuer.rfc4514_string()}'. The proxy terminates TLS "
            f"and re-signs. {s.target.runtime} "
            + ("already trusts the proxy's CA." if trusted else
               f"does not trust the proxy's CA and fails with \"{d.go.error if d else ''}\"; trust that CA where "
               f"{s.target.runtime} reads it (it must be the proxy's CA: compare the fingerprint with your network team)."),
            evidence={"runtime": s.target.runtime, "proxy": s.target.proxy_shown, "endpoint": s.target.url,
                      "through_proxy": {"leaf_sha256": fingerprint(proxied_leaf), "issuer": proxied_leaf.issuer.rfc4514_string()},
                      "direct": {"leaf_sha256": fingerprint(direct_leaf), "issuer": direct_leaf.issuer.rfc4514_string()},
                      "proxy_ca": {"sha256": fp, "subject": inspecting.subject.rfc4514_string()},
                      "trusted_by_runtime": trusted},
            runtime=s.target.runtime,
            fix=None if not offer else fix(
                "tls.intercepted", s.target.hostport,
                f"trust the proxy's root CA '{missing}' (supply it with --ca-file) in {s.target.runtime}" if missing else
                f"trust the proxy's CA {inspecting.subject.rfc4514_string()} in {s.target.runtime}",
                kind="edit", files=[target["install_to"]], restart=_RESTART.get(s.target.runtime, "none"),
                detail=s.target.runtime,
                params={"runtime": s.target.runtime, "host": s.target.hostport, "ca_pem_fingerprint": fp,
                        "ca_subject": inspecting.subject.rfc4514_string(), **target,
                        **({"anchor_missing": missing} if missing else {})}),
        ))
    return out
