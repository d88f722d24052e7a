"""The finding-code catalogue: every code regtui emits, in one place.

A code is a stable public name (``panel.problem``); reports, exit codes, scripts and the
workbench key off it, so a code is never renamed. Severity here is the default; a check may
raise or lower it and say why in the finding's detail.

Use :func:`finding` to build a :class:`~regtui.model.Finding` (it refuses codes that are not
in the catalogue) and :func:`fix` to build the suggested fix attached to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Mapping

from regtui import redact
from regtui.model import Finding, FixRef, severity_rank

__all__ = ["CodeInfo", "CATALOGUE", "finding", "fix", "fix_id", "dedupe", "cap", "assign_ids", "not_listed",
           "MAX_PER_FILE", "MAX_FINDINGS"]


@dataclass(frozen=True)
class CodeInfo:
    """Catalogue entry for one finding code."""

    code: str
    severity: str
    """Default severity."""
    panel: str
    """Panel the code belongs to."""
    fix_kind: str
    """``edit``, ``command``, ``manual`` or ``none``: the kind of fix the catalogue promises."""
    meaning: str
    """What the code means, in the catalogue's words."""
    fix_hint: str
    """What the suggested fix does, in the catalogue's words."""


def _c(code: str, severity: str, panel: str, fix_kind: str, meaning: str, fix_hint: str) -> CodeInfo:
    return CodeInfo(code, severity, panel, fix_kind, meaning, fix_hint)


_ENTRIES = (
    _c("config.parse-error", "error", "config", "manual",
       "a config file does not parse (daemon.json, config.toml, hosts.toml, registries.conf(.d), registries.yaml, config.json, auth.json, drop-ins); evidence has line and column",
       "manual, pointing at the line"),
    _c("config.too-deep", "warning", "config", "manual",
       "a config file nests deeper than regtui follows although the runtime reads it (Go's JSON and YAML decoders accept 10000 levels); its settings are not checked",
       "manual: flatten the nesting"),
    _c("config.findings-capped", "warning", "config", "none",
       "one file, or the whole check, produced more findings than a report lists; the first are listed, the rest counted by code in this finding's evidence",
       "none: fix the findings listed and check again"),
    _c("config.unknown-key", "error", "config", "edit",
       "daemon.json key that dockerd rejects at start",
       "edit: rename to the nearest valid key"),
    _c("config.ignored-key", "warning", "config", "edit",
       "key accepted but silently ignored (`registry-mirror`, `insecure-registry`, containerd 2.x `configs.*.tls`, registries.conf typos, v1 containerd file with v2 plugin names)",
       "edit: move to the key that works"),
    _c("config.flag-conflict", "error", "config", "edit",
       "same directive in daemon.json and in the daemon's command line (systemd ExecStart)",
       "edit: keep one"),
    _c("config.invalid-value", "error", "config", "edit",
       "a value the runtime refuses (mirror without scheme, mirror with query or credentials, insecure entry with `://` other than http(s), bad capability, location with scheme in registries.conf; a daemon.json value dockerd's start-up validation refuses for its Engine version: log-level, log-format, dns, dns-search, labels, download limits, mtu, runtimes, ipc/cgroupns modes, default-ulimits)",
       "edit: normalise the value"),
    _c("config.version-mismatch", "error", "config", "edit",
       "containerd config `version` unsupported by the installed containerd, or plugin names of the wrong version",
       "edit or manual"),
    _c("config.mirrors-with-config-path", "error", "config", "edit",
       "containerd legacy `mirrors` next to `config_path`: the CRI plugin does not load",
       "edit: move mirrors to hosts.toml"),
    _c("config.legacy-registry-config", "warning", "config", "edit",
       "containerd legacy `mirrors`/`configs` in use",
       "edit: migrate to hosts.toml"),
    _c("config.hosts-dir-unused", "warning", "config", "edit",
       "hosts.toml directories exist but nothing reads them (`config_path` unset, dockerd reading /etc/docker/certs.d, ctr without --hosts-dir, multi-directory `config_path` in transfer mode)",
       "edit"),
    _c("config.hosts-dir-misnamed", "error", "config", "edit",
       "a certs.d/hosts.toml directory whose name does not match the reference's host[:port] exactly",
       "edit: rename"),
    _c("config.permission", "warning", "config", "command",
       "a file exists but cannot be read, or has unsafe permissions (credentials readable by others)",
       "command: chmod"),
    _c("config.blocked", "error", "config", "edit",
       "the reference matches a registries.conf entry with `blocked = true`: CRI-O/podman refuse the pull",
       "edit: unblock, after confirmation"),
    _c("config.short-name-prompt", "warning", "config", "edit",
       "short-name-mode is enforcing and several unqualified-search-registries are set: a short name cannot be resolved without a TTY (podman/buildah in CI fail)",
       "edit: a drop-in with short-name-mode = \"permissive\", or an [aliases] entry"),
    _c("config.short-name-unresolved", "error", "config", "manual",
       "an image named without a registry resolves to no candidate CRI-O/podman may pull (no alias and no unqualified-search-registries, or podman's enforcing mode with several candidates and no TTY): the pull fails before any request",
       "manual: use the fully qualified name, or add an alias or search registries"),
    _c("config.not-applied", "warning", "config", "command",
       "a config file changed after the daemon that reads it last started (k3s registries.yaml newer than the hosts.toml it generates): the change is not in effect",
       "command: restart the daemon"),
    _c("config.k3s-generated-edited", "warning", "config", "manual",
       "hand edits in a k3s-generated hosts.toml that k3s will delete on restart",
       "manual"),
    _c("config.known-bug", "warning", "config", "manual",
       "the installed runtime version has a known bug that changes what this configuration does (k3s rewrites on the default endpoint before 2024, the containerd 2.0 `\"*\"` fallback regression); raised only when the version is known",
       "manual: upgrade, or the workaround named in the finding"),
    _c("mirror.not-applied", "warning", "mirrors", "edit",
       "a configured mirror does not apply to this reference (Docker mirrors and non-docker.io refs, registries.conf prefix mismatch, `docker.io/alpine` vs `docker.io/library/alpine`)",
       "manual or edit (hosts.toml)"),
    _c("mirror.skipped", "info", "mirrors", "none",
       "the mirror is skipped for this reference by design (digest-only mirror with a tag, pull-only capability for tag resolution)",
       "none"),
    _c("mirror.unreachable", "warning", "mirrors", "edit",
       "a mirror fails (DNS, connect, TLS, HTTP); every pull pays its timeout before falling back",
       "edit: remove or reorder"),
    _c("mirror.http-mismatch", "error", "mirrors", "edit",
       "the endpoint speaks plain HTTP but is configured/treated as HTTPS, or the reverse",
       "edit: scheme / insecure entry"),
    _c("mirror.missing-image", "warning", "mirrors", "manual",
       "the mirror answers 404 for the reference; the runtime falls back upstream",
       "manual"),
    _c("mirror.stale", "warning", "mirrors", "manual",
       "the mirror's digest for the tag differs from upstream's",
       "manual"),
    _c("mirror.slower-than-upstream", "info", "mirrors", "edit",
       "measured: a mirror ahead in the order is slower than one behind it",
       "edit: reorder"),
    _c("mirror.fallback-upstream", "info", "mirrors", "none",
       "every mirror failed; the pull would go to upstream",
       "none"),
    _c("tls.unknown-authority", "error", "certs", "edit",
       "the chain does not verify against the runtime's trust inputs",
       "edit: install the CA (fingerprint shown, explicit confirmation) into the runtime's certs.d / hosts.toml"),
    _c("tls.self-signed", "error", "certs", "edit",
       "the server presents a self-signed leaf",
       "edit: as above"),
    _c("tls.incomplete-chain", "error", "certs", "manual",
       "the server omits an intermediate",
       "manual (server side), or edit: trust the intermediate"),
    _c("tls.expired", "error", "certs", "manual",
       "a certificate in the chain is past notAfter",
       "manual"),
    _c("tls.not-yet-valid", "error", "certs", "manual",
       "a certificate's notBefore is in the future (check the clock panel)",
       "manual"),
    _c("tls.expires-soon", "warning", "certs", "manual",
       "expiry within 30 days (info within 60)",
       "manual"),
    _c("tls.hostname-mismatch", "error", "certs", "manual",
       "no SAN matches the host (Go ignores CN)",
       "manual"),
    _c("tls.cn-only", "error", "certs", "manual",
       "the leaf has no SAN (Go rejects it)",
       "manual"),
    _c("tls.weak-signature", "error", "certs", "manual",
       "SHA-1 (or weaker) signature in the chain",
       "manual"),
    _c("tls.weak-key", "warning", "certs", "manual",
       "RSA < 2048 bits or similar",
       "manual"),
    _c("tls.old-protocol", "warning", "certs", "manual",
       "the endpoint negotiates below TLS 1.2",
       "manual"),
    _c("tls.root-sent", "info", "certs", "none",
       "the server sends its root as part of the chain",
       "none"),
    _c("tls.verify-disabled", "warning", "certs", "manual",
       "verification is disabled for this endpoint (insecure-registries, skip_verify, insecure=true)",
       "manual: trust the registry's CA, then turn verification back on (no planner writes it)"),
    _c("tls.trust-differs", "warning", "certs", "edit",
       "one runtime on this host trusts the endpoint and another does not",
       "edit"),
    _c("tls.intercepted", "warning", "certs", "edit",
       "the chain seen through the proxy differs from the direct one (TLS inspection)",
       "edit: trust the proxy CA where the runtime needs it"),
    _c("tls.cert-file-unreadable", "error", "certs", "manual",
       "a certificate or key in certs.d/<host> cannot be read (dangling symbolic link, a directory, permission denied): dockerd and containers/image fail every pull from that registry before any request (containers/image only skips a missing *.crt: warning)",
       "manual: restore the file or remove the entry"),
    _c("tls.rejected", "error", "certs", "manual",
       "Go rejects the chain for a reason no other certs code names (key usage, CA or path-length constraints, bad signature); evidence quotes Go's error",
       "manual"),
    _c("auth.missing", "error", "mirrors", "manual",
       "the endpoint requires credentials and none apply to it",
       "manual (docker login / config)"),
    _c("auth.rejected", "error", "mirrors", "manual",
       "the credentials that apply are refused",
       "manual"),
    _c("auth.helper-missing", "error", "config", "edit",
       "`credsStore`/`credHelpers` names a helper not on PATH",
       "edit: remove the entry"),
    _c("auth.malformed", "error", "config", "manual",
       "an `auth` value that is not base64 of `user:password`",
       "manual"),
    _c("auth.wrong-key", "warning", "config", "edit",
       "credentials stored under a key the runtime never looks up (`docker.io` vs `registry-1.docker.io` in containerd, mirror host without its own entry)",
       "edit: copy under the right key"),
    _c("auth.rate-limited", "warning", "mirrors", "manual",
       "`429`, or `ratelimit-remaining` at 0",
       "manual"),
    _c("auth.redirect-challenge", "warning", "mirrors", "manual",
       "an endpoint redirects a manifest or blob request to another host that answers `401`: no runtime sends it the endpoint's credentials (dockerd and CRI-O/podman send nothing, containerd only the credentials configured for that host), so the request fails there unless that host has its own; error when the request fails",
       "manual: have the registry redirect to a host that needs no credentials (pre-signed URL), or give that host its own credentials where the runtime looks them up (containerd)"),
    _c("proxy.unreachable", "error", "proxy", "edit",
       "the proxy an endpoint would use does not accept connections",
       "edit / manual"),
    _c("proxy.connect-refused", "error", "proxy", "manual",
       "the proxy refuses CONNECT to the endpoint (403/407/5xx); 407 means it wants credentials",
       "manual"),
    _c("proxy.bypass-missing", "warning", "proxy", "edit",
       "an endpoint that should not go through the proxy (private address, in-cluster mirror, P2P peer) is not covered by NO_PROXY",
       "edit: add it to the daemon's NO_PROXY"),
    _c("proxy.https-missing", "warning", "proxy", "edit",
       "HTTP_PROXY set but HTTPS_PROXY not (Go uses only HTTPS_PROXY for https)",
       "edit"),
    _c("proxy.scheme-tls", "error", "proxy", "edit",
       "`HTTPS_PROXY=https://...` pointing at a plain HTTP proxy",
       "edit: http://"),
    _c("proxy.case-conflict", "warning", "proxy", "edit",
       "upper- and lowercase variables disagree (Go takes the uppercase)",
       "edit"),
    _c("proxy.daemon-differs", "info", "proxy", "edit",
       "the daemon's proxy settings differ from the shell's or from another runtime's",
       "edit"),
    _c("proxy.not-applied", "warning", "proxy", "command",
       "a drop-in or daemon.json change that the running daemon has not loaded (restart needed)",
       "command"),
    _c("dns.nxdomain", "error", "dns", "manual",
       "the endpoint host does not resolve",
       "manual"),
    _c("dns.timeout", "error", "dns", "manual",
       "the resolver does not answer",
       "manual"),
    _c("dns.slow", "warning", "dns", "manual",
       "resolution slower than 500 ms",
       "manual"),
    _c("dns.mismatch", "warning", "dns", "manual",
       "resolvers disagree on the answer",
       "manual"),
    _c("clock.skew", "error", "clock", "command",
       "the local clock differs from NTP or registry `Date`",
       "command: step the clock / enable NTP"),
    _c("clock.unsynchronized", "warning", "clock", "command",
       "no time sync daemon configured or the kernel reports unsynchronised",
       "command"),
    _c("clock.ntp-unreachable", "warning", "clock", "manual",
       "no configured NTP server answers",
       "manual"),
    _c("pull.failed", "error", "pull", "manual",
       "the test pull failed; evidence names the endpoint and phase",
       "depends"),
    _c("pull.would-fail", "error", "pull", "manual",
       "no test pull ran for this runtime and image, and the probes found every endpoint of its route failing "
       "where no other finding explains it; evidence names the endpoint the runtime reports and the phase",
       "manual"),
    _c("pull.manifest-unknown", "error", "pull", "manual",
       "the tag or digest does not exist on any endpoint",
       "manual"),
    _c("pull.platform-missing", "error", "pull", "manual",
       "the index has no manifest for this host's platform",
       "manual"),
    _c("pull.digest-mismatch", "error", "pull", "manual",
       "a manifest or blob's content does not match its digest",
       "manual"),
    _c("pull.slow-layer", "warning", "pull", "manual",
       "a layer's throughput is far below the others'",
       "manual"),
    _c("pull.low-concurrency", "info", "pull", "edit",
       "the runtime's download concurrency limits this pull",
       "edit: raise it"),
    _c("pull.retried", "warning", "pull", "manual",
       "a layer needed retries or a resume",
       "manual"),
    _c("pull.logged-error", "warning", "pull", "manual",
       "the runtime logged a pull error recently (journal or its log file) that no verdict explains: not the "
       "verdict's cause, not at an endpoint that serves now; evidence has the text, endpoint, phase and source",
       "manual: check that image and endpoint, or what changed since"),
    _c("pull.lazy-snapshotter", "info", "pull", "none",
       "a lazy-pull snapshotter (stargz, nydus, SOCI) fetches bytes at container start that a test pull cannot see",
       "none"),
)

#: Every code, by name.
CATALOGUE: dict[str, CodeInfo] = {entry.code: entry for entry in _ENTRIES}

_SLUG = re.compile(r"[^A-Za-z0-9._:/-]+")


def fix_id(code: str, subject: str, detail: str = "") -> str:
    """A stable, readable fix id: ``code@subject`` plus ``#detail`` when one subject has several."""
    # Redact before slugging: the slug turns '@' into '_', after which no redactor sees user:pass@host.
    slug = _SLUG.sub("_", redact.text(subject).lstrip("/")) or "-"
    fid = f"{code}@{slug}"
    if detail:
        fid += "#" + _SLUG.sub("_", redact.text(detail))
    return fid


def fix(
    code: str,
    subject: str,
    summary: str,
    *,
    files: tuple[str, ...] | list[str] = (),
    restart: str = "none",
    kind: str | None = None,
    detail: str = "",
    params: Mapping[str, Any] | None = None,
) -> FixRef:
    """The suggested fix for a finding of ``code`` about ``subject``.

    The summary is redacted here, as it is printed everywhere; ``params`` are the planner's
    exact inputs and are kept as given.
    """
    info = CATALOGUE[code]
    return FixRef(
        id=fix_id(code, subject, detail),
        summary=redact.text(summary),
        kind=kind or (info.fix_kind if info.fix_kind != "none" else "manual"),
        files=tuple(files),
        restart=restart,
        params=dict(params or {}),
    )


def finding(
    code: str,
    subject: str,
    title: str,
    detail: str = "",
    *,
    evidence: Mapping[str, Any] | None = None,
    severity: str | None = None,
    fix: FixRef | None = None,
    runtime: str | None = None,
) -> Finding:
    """Build a finding; unknown codes raise ``KeyError`` so a typo cannot ship.

    Title and detail quote config values and error text, so they are redacted here, once, for
    every front end (``fix --list``, the workbench, the reports).
    """
    info = CATALOGUE[code]
    return Finding(
        code=code,
        severity=severity or info.severity,
        panel=info.panel,
        subject=subject,
        title=redact.text(title),
        detail=redact.text(detail),
        evidence=dict(evidence or {}),
        fix=fix,
        runtime=runtime,
    )


def dedupe(findings: list[Finding]) -> list[Finding]:
    """The findings in order, each (code, subject, title, runtime) once."""
    seen: set[tuple[str, str, str, str | None]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.code, f.subject, f.title, f.runtime)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


#: Findings a report lists about one file (``evidence["file"]``), and in all; the rest are counted.
MAX_PER_FILE = 50
MAX_FINDINGS = 500
_CAPPED = ("The findings listed first are kept; these are only counted, by code, in the evidence. "
           "Junk or a generated file usually explains such numbers: fix what is listed and check again.")


def _count(dropped: list[Finding]) -> tuple[dict[str, int], str]:
    """Dropped findings counted by code, and their highest severity."""
    by_code: dict[str, int] = {}
    for f in dropped:
        inner = f.evidence.get("by_code") if f.code == "config.findings-capped" else None
        for code, n in (inner.items() if isinstance(inner, dict) else [(f.code, 1)]):
            by_code[code] = by_code.get(code, 0) + n
    return by_code, min((f.severity for f in dropped), key=severity_rank)


def _capped(subject: str, title: str, dropped: list[Finding], evidence: dict[str, Any]) -> Finding:
    by_code, severity = _count(dropped)
    return finding(
        "config.findings-capped", subject, title, _CAPPED,
        evidence={**evidence, "dropped": sum(by_code.values()), "by_code": by_code},
        severity=severity,
    )


def not_listed(file: str, code: str, count: int, severity: str | None = None, runtime: str | None = None) -> Finding:
    """The summary for ``count`` findings of ``code`` about ``file`` that a reader did not build.

    Readers that loop over entries of a file stop building findings after :data:`MAX_PER_FILE`
    and add this one instead, so a file of a hundred thousand bad keys costs what fifty do.
    """
    return finding(
        "config.findings-capped", file, f"{file}: {count} more {code} findings about this file are not listed",
        _CAPPED, evidence={"file": file, "listed": MAX_PER_FILE, "dropped": count, "by_code": {code: count}},
        severity=severity or CATALOGUE[code].severity, runtime=runtime,
    )


def cap(findings: list[Finding], per_file: int = MAX_PER_FILE, total: int = MAX_FINDINGS) -> list[Finding]:
    """At most ``per_file`` findings about one file and ``total`` in all, each excess summed up in one finding.

    The summary takes the highest severity of what it replaces, so capping never changes the exit status;
    at the run level errors are kept before warnings and infos.
    """
    if len(findings) <= min(per_file, total):
        return list(findings)
    kept: list[Finding] = []
    per: dict[str, int] = {}
    dropped_by_file: dict[str, list[Finding]] = {}
    for f in findings:
        file = f.evidence.get("file") if isinstance(f.evidence, Mapping) else None
        if isinstance(file, str) and f.code != "config.findings-capped":
            per[file] = per.get(file, 0) + 1
            if per[file] > per_file:
                dropped_by_file.setdefault(file, []).append(f)
                continue
        kept.append(f)
    for file, dropped in dropped_by_file.items():
        kept.append(_capped(file, f"{file}: {len(dropped)} more findings about this file are not listed",
                            dropped, {"file": file, "listed": per_file}))
    if len(kept) <= total:
        return kept
    order = sorted(range(len(kept)), key=lambda i: severity_rank(kept[i].severity))
    chosen = set(order[:total - 1])
    out = [f for i, f in enumerate(kept) if i in chosen]
    dropped = [f for i, f in enumerate(kept) if i not in chosen]
    summary = _capped("report", "", dropped, {"listed": total - 1})
    out.append(replace(summary, title=f"{summary.evidence['dropped']} more findings are not listed "
                                      f"(a report lists {total})"))
    return out


def assign_ids(findings: list[Finding]) -> list[Finding]:
    """The findings with a stable ``id`` each: ``code@subject`` plus ``#runtime``, and ``~N`` when that repeats.

    The id depends only on the finding itself and on the findings before it with the same base,
    so one host checked twice gives the same ids (verdict chains and scripts refer to them).
    """
    seen: dict[str, int] = {}
    out: list[Finding] = []
    for f in findings:
        base = fix_id(f.code, f.subject, f.runtime or "")
        n = seen.get(base, 0) + 1
        seen[base] = n
        out.append(replace(f, id=base if n == 1 else f"{base}~{n}"))
    return out
