"""CRI-O / podman / skopeo route planner: image reference -> the endpoints containers/image tries.

``newImageSource`` (SEMANTICS §3.2-§3.4):

1. ``FindRegistry(name)``: the ``[[registry]]`` whose prefix is the longest match of the
   normalised name (``docker.io/library/alpine``); none means "just the reference itself".
2. ``PullSourcesFromReference``: the mirrors in file order, skipping all of them for a tag when
   ``mirror-by-digest-only`` is set, a ``digest-only`` mirror for a tag and a ``tag-only`` mirror
   for a digest; the primary location always last. Each is ``location + what follows the prefix``.
3. Each attempt builds its own client: an endpoint whose own name falls under a ``blocked``
   entry fails before any request (so a blocked primary with mirrors means "mirrors only");
   ``insecure = true`` turns verification off and adds the plain-HTTP ping fallback; the certs
   dir is the first existing of the chain; credentials are looked up for the endpoint's own
   name (explicit CRI credentials never go to a mirror on another domain).
4. The first endpoint whose manifest fetch succeeds serves the whole image; any error moves on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from regtui.findings import finding, fix
from regtui.model import Endpoint, Finding, Route, TLSInputs, split_location
from regtui.refs import DOCKER_HUB, HUB_API_HOST, Reference, ReferenceError, parse
from regtui.runtimes.crio.certs import read_certs
from regtui.runtimes.crio.common import RELOAD, RUNTIME
from regtui.runtimes.crio.config import CrioConfig
from regtui.runtimes.crio.records import Mirror, RegistryEntry, find_registry, prefix_match
from regtui.runtimes.crio.shortnames import Candidate, resolve, unresolved
from regtui.runtimes.endpoints import endpoint

__all__ = ["plan", "pull_sources", "rewrite", "near_miss", "PullSource"]

#: (file, line, key, value) of the setting that makes the runtime skip an endpoint.
_Evidence = tuple[str, "int | None", str, object]


@dataclass(frozen=True)
class PullSource:
    """One candidate endpoint before it becomes an :class:`Endpoint`."""

    role: str
    """``mirror`` or ``upstream``."""
    location: str
    insecure: bool
    source: str
    """Provenance of the location: ``path:line`` or ``default (...)``."""
    rewritten: str
    """The reference as this endpoint is asked for it (``location`` + remainder)."""
    skip: str = ""
    """Why containers/image leaves this mirror out for this reference ('' when it is tried)."""
    skip_evidence: _Evidence | None = None
    """The setting that skips it."""


def _ref_string(ref: Reference) -> str:
    """``reference.String()``: the name with its tag, or with its digest."""
    return f"{ref.name}@{ref.digest}" if ref.digest else f"{ref.name}:{ref.tag or 'latest'}"


def rewrite(ref_string: str, prefix: str, location: str) -> str:
    """``rewriteReference``: ``location`` + what follows the matched prefix (an empty location keeps the reference)."""
    if not location:
        return ref_string
    index = prefix_match(ref_string, prefix)
    return location + ref_string[index:] if index != -1 else ref_string


def _mirror_skip(entry: RegistryEntry, mirror: Mirror, digest: bool) -> tuple[str, _Evidence | None]:
    """Why containers/image leaves ``mirror`` out for this reference, and the setting responsible."""
    if entry.mirror_by_digest_only:
        if not digest:
            return (f"mirror-by-digest-only = true ({entry.where('mirror-by-digest-only')}) and the reference is a tag",
                    (entry.file, entry.line("mirror-by-digest-only"), "mirror-by-digest-only", True))
        return "", None
    if mirror.pull_from_mirror == "digest-only" and not digest:
        return (f"pull-from-mirror = \"digest-only\" ({mirror.where('pull-from-mirror')}) and the reference is a tag",
                (mirror.file, mirror.line("pull-from-mirror"), "pull-from-mirror", "digest-only"))
    if mirror.pull_from_mirror == "tag-only" and digest:
        return (f"pull-from-mirror = \"tag-only\" ({mirror.where('pull-from-mirror')}) and the reference is a digest",
                (mirror.file, mirror.line("pull-from-mirror"), "pull-from-mirror", "tag-only"))
    return "", None


def pull_sources(entry: RegistryEntry | None, ref: Reference) -> list[PullSource]:
    """``PullSourcesFromReference``, keeping skipped mirrors (marked) so the report can show them."""
    ref_string = _ref_string(ref)
    if entry is None:
        return [PullSource("upstream", ref.domain, False,
                           f"default (no [[registry]] in registries.conf matches {ref.name})", ref_string)]
    out: list[PullSource] = []
    for mirror in entry.mirrors:
        skip, evidence = _mirror_skip(entry, mirror, ref.by_digest)
        out.append(PullSource("mirror", mirror.location, mirror.insecure, mirror.where("location"),
                              rewrite(ref_string, entry.prefix, mirror.location), skip, evidence))
    primary_source = entry.where("location") if entry.location else (
        f"{entry.where('prefix')} (wildcard prefix without location: the reference itself)")
    out.append(PullSource("upstream", entry.location or ref.domain, entry.insecure, primary_source,
                          rewrite(ref_string, entry.prefix, entry.location)))
    return out


def _parse_rewritten(rewritten: str) -> tuple[Reference | None, str]:
    """``reference.ParseNamed`` of a rewritten reference: it must parse and already be canonical."""
    try:
        parsed = parse(rewritten)
    except ReferenceError as exc:
        return None, f"rewriting reference: {exc}"
    name_end = len(parsed.name)
    if not rewritten.startswith(parsed.name) or (len(rewritten) > name_end and rewritten[name_end] not in ":@"):
        return None, "rewriting reference: repository name must be canonical"
    return parsed, ""


# -- near misses (pattern 22 and friends) -------------------------------------------------------

def near_miss(prefix: str, ref: Reference) -> tuple[str, str] | None:
    """(why, corrected prefix) when ``prefix`` was evidently meant for ``ref`` but does not match it."""
    name = ref.name
    if prefix.startswith("*."):
        if ref.domain.split(":")[0] == prefix[2:]:
            return (f"the wildcard {prefix} matches subdomains of {prefix[2:]}, never {prefix[2:]} itself",
                    prefix[2:])
        return None
    domain, _, rest = prefix.partition("/")
    if domain in ("index.docker.io", HUB_API_HOST) and ref.domain == DOCKER_HUB:
        corrected = DOCKER_HUB + (f"/{rest}" if rest else "")
        if prefix_match(name, corrected) != -1:
            return (f"references are normalised to docker.io, so a prefix on {domain} never matches", corrected)
    if domain == DOCKER_HUB and rest and "/" not in rest.split("@")[0].split(":")[0]:
        corrected = f"{DOCKER_HUB}/library/{rest}"
        if prefix_match(name, corrected.split("@")[0].split(":")[0]) != -1:
            return (f"official images are named docker.io/library/<image>; {prefix!r} does not match {name}", corrected)
    bare = rest.split("@")[0]
    if rest and (":" in bare or "@" in rest):
        untagged = f"{domain}/{bare.split(':')[0]}"
        if prefix_match(name, untagged) != -1:
            return ("containers/image looks the entry up by repository name without tag or digest, so a prefix with "
                    "a tag or digest never matches a pull (code reading: FindRegistry(ref.Name()))", untagged)
    host, _, port = domain.partition(":")
    ref_host, _, ref_port = ref.domain.partition(":")
    if host == ref_host and port != ref_port and port:
        corrected = ref.domain + (f"/{rest}" if rest else "")
        if prefix_match(name, corrected) != -1:
            wanted = f"port {ref_port}" if ref_port else "no port"
            return (f"the prefix names port {port}, the reference has {wanted}", corrected)
    return None


def _not_applied(entry: RegistryEntry, ref: Reference, why: str, corrected: str) -> Finding:
    """``mirror.not-applied`` for an entry that was evidently meant for ``ref``."""
    line = entry.line("prefix") or entry.line()
    what = (f"its {len(entry.mirrors)} mirror(s) ({', '.join(m.location for m in entry.mirrors)})" if entry.mirrors
            else "its settings")
    return finding(
        "mirror.not-applied", entry.file,
        f"registries.conf prefix {entry.prefix!r} ({entry.where('prefix')}) does not apply to {ref.name}",
        f"{why}. {what.capitalize()} are not used for {ref}; the pull goes where the table below says.",
        evidence={"file": entry.file, "line": line, "key": "prefix", "value": entry.prefix, "reference": str(ref),
                  "normalized_name": ref.name},
        runtime=RUNTIME,
        fix=fix("mirror.not-applied", entry.file, f"set prefix = \"{corrected}\"", files=[entry.file],
                restart=RELOAD, kind="edit", detail=f"prefix:{line}",
                params={"file": entry.file, "line": line, "key": "prefix", "value": entry.prefix,
                        "new_value": corrected}),
    )


def _near_misses(cfg: CrioConfig, ref: Reference, matched: RegistryEntry | None) -> list[Finding]:
    """Entries that would have applied if written right, and would have won the match."""
    out: list[Finding] = []
    for entry in cfg.registries.registries.values():
        if entry is matched or not entry.has_effect():
            continue
        miss = near_miss(entry.prefix, ref)
        if miss is None:
            continue
        why, corrected = miss
        if matched is not None and len(corrected) <= len(matched.prefix):
            continue
        out.append(_not_applied(entry, ref, why, corrected))
    return out


# -- per-endpoint inputs --------------------------------------------------------------------------

def _ip_host(hostport: str) -> str:
    """The host part of ``host[:port]`` (IPv6 without brackets)."""
    if hostport.startswith("["):
        return hostport[1:hostport.find("]")]
    return hostport.split(":")[0] if hostport.count(":") == 1 else hostport


def _insecure_by_crio_conf(cfg: CrioConfig, hostport: str) -> bool:
    """crio.conf ``insecure_registries``: an exact host[:port] entry, or a CIDR holding an IP-literal host."""
    if cfg.perspective != "crio":
        return False
    for entry in cfg.crio.insecure_registries:
        if entry == hostport:
            return True
        try:
            if ipaddress.ip_address(_ip_host(hostport)) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _tls(cfg: CrioConfig, src: PullSource, hostport: str, findings: list[Finding]) -> tuple[TLSInputs, str]:
    """Verification, extra CAs and client pairs for one endpoint (the endpoint's own insecure flag decides),
    and the certs.d error that fails it before any request (``""`` when none).

    containers/image reads certs.d for insecure endpoints too (``newDockerClient`` always calls
    ``SetupCertificates``), so an unusable directory fails them as well.
    """
    ca_files, pairs, trust, cert_findings, fatal = read_certs(cfg.host, cfg.home, hostport)
    findings += cert_findings
    if src.insecure:
        return TLSInputs(False, f"insecure = true ({src.source})", ca_files, pairs), fatal
    if _insecure_by_crio_conf(cfg, hostport):
        return TLSInputs(False, f"crio.conf insecure_registries ({cfg.crio.insecure_registries_source}); "
                                "podman ignores it", ca_files, pairs), fatal
    return TLSInputs(True, trust, ca_files, pairs), fatal


def _status(cfg: CrioConfig, src: PullSource, physical: Reference, auth_error: str,
            certs_error: str = "") -> tuple[str, str, _Evidence | None]:
    """``skipped`` (by design or blocked), ``failed`` (credential lookup or certs.d fails) or ``untested``.

    ``newDockerClientFromRef`` looks the credentials up first, then ``SetupCertificates`` reads certs.d:
    either error fails this pull source, and containers/image goes on to the next one.
    """
    if src.skip:
        return "skipped", src.skip, src.skip_evidence
    entry = find_registry(cfg.registries.registries, physical.name)
    if entry is not None and entry.blocked:
        return ("skipped", f"registry {entry.prefix} is blocked in registries.conf ({entry.where('blocked')}): "
                           "refused before any request", (entry.file, entry.line("blocked"), "blocked", True))
    if auth_error:
        return "failed", f"credential lookup fails before any request: {auth_error}", None
    if certs_error:
        return "failed", f"TLS setup fails before any request: {certs_error}", None
    return "untested", "", None


def _endpoint(cfg: CrioConfig, src: PullSource, physical: Reference,
              findings: list[Finding]) -> tuple[Endpoint, _Evidence | None]:
    """The endpoint for one pull source, and the evidence of what skips it (if anything does)."""
    domain = physical.domain
    connect = HUB_API_HOST if domain == DOCKER_HUB else domain
    tls, certs_error = _tls(cfg, src, domain, findings)
    creds = cfg.auth.lookup(physical.name)
    status, reason, evidence = _status(cfg, src, physical, creds.error, certs_error)
    ep = endpoint(f"https://{connect}/v2", connect, src.role, src.source, physical.path, cfg.proxy_env,
                  capabilities=("pull", "resolve"), tls=tls, credentials=creds.source, status=status,
                  reason=reason, http_fallback=not tls.verify)
    return ep, evidence


def _skipped(src: PullSource, ep: Endpoint, evidence: _Evidence | None) -> Finding:
    """``mirror.skipped`` for a mirror the runtime does not try for this reference."""
    file, line, key, value = evidence or ("", None, "", None)
    return finding(
        "mirror.skipped", ep.host,
        f"mirror {src.location} is skipped for {src.rewritten}",
        f"{ep.reason}, so containers/image does not try it and goes on to the next endpoint.",
        evidence={"file": file, "line": line, "key": key, "value": value, "endpoint": ep.url,
                  "reference": src.rewritten},
        runtime=RUNTIME,
    )


def _blocked(entry: RegistryEntry, ref: Reference, mirrors_tried: list[Endpoint]) -> Finding:
    """``config.blocked``: an error when nothing else is tried, info when mirrors still are."""
    line = entry.line("blocked")
    if mirrors_tried:
        severity = "info"
        detail = (f"The primary location is never contacted; only the mirrors ({', '.join(e.host for e in mirrors_tried)}) "
                  "are tried, and when they all fail the pull fails with \"registry ... is blocked\". This is how "
                  "mirror-only setups (OpenShift NeverContactSource) are written.")
    else:
        severity = "error"
        detail = (f"CRI-O, podman and skopeo refuse {ref} before sending any request: "
                  f"\"registry {entry.prefix} is blocked in registries.conf\".")
    return finding(
        "config.blocked", entry.prefix,
        f"{ref.name} matches [[registry]] {entry.prefix!r} with blocked = true ({entry.where('blocked')})",
        detail,
        severity=severity,
        evidence={"file": entry.file, "line": line, "key": "blocked", "value": True, "prefix": entry.prefix,
                  "reference": str(ref)},
        runtime=RUNTIME,
        fix=fix("config.blocked", entry.prefix,
                f"remove blocked = true from [[registry]] {entry.prefix!r} (after confirming it is not deliberate)",
                files=[entry.file], restart=RELOAD, detail=f"blocked:{line}",
                params={"file": entry.file, "line": line, "prefix": entry.prefix, "key": "blocked", "value": False}),
    )


def _rewrite_error(entry: RegistryEntry | None, src: PullSource, message: str) -> Finding:
    """A location that makes ``rewriteReference`` fail: the whole pull fails."""
    file, line = split_location(src.source)
    return finding(
        "config.invalid-value", file,
        f"{src.source}: location {src.location!r} rewrites the reference to {src.rewritten!r}: {message}",
        "PullSourcesFromReference fails for every endpoint, so the pull fails before any request. A location "
        "must be a fully qualified registry name (a host with a dot or port, or localhost) plus optional path.",
        evidence={"file": file, "line": line, "key": "location", "value": src.location, "rewritten": src.rewritten,
                  "error": message, "prefix": entry.prefix if entry else None},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", file, f"make {src.location!r} start with a fully qualified host (a dot or :port)",
                files=[file], restart=RELOAD, detail=f"location:{line}",
                params={"file": file, "line": line, "key": "location", "value": src.location}),
    )


# -- notes -----------------------------------------------------------------------------------------

def _mode(cfg: CrioConfig) -> tuple[str, str]:
    """Which program's view the route is, and why."""
    if cfg.perspective == "crio":
        return ("containers/image (CRI-O)",
                "CRI-O is installed: its unit environment and global_auth_file; podman/skopeo as root read "
                "the same registries.conf and certs dirs")
    return ("containers/image (podman/skopeo as root)", "no CRI-O on the host: podman/skopeo in this shell")


def _credential_note(cfg: CrioConfig) -> str:
    """Where credentials come from beyond the auth files."""
    if cfg.perspective == "crio":
        return ("CRI-O also sends the pod's imagePullSecrets (from kubelet) to endpoints on the image's own domain, "
                "never to mirrors on another domain; mirrors use the auth file entries for their own names.")
    return "Mirrors authenticate with the auth file entries for their own names, not with --creds."


def _match_notes(entry: RegistryEntry | None, ref: Reference) -> list[str]:
    """Which entry matched, what it replaced, and the port quirk when it applies."""
    if entry is None:
        return []
    notes = [f"[[registry]] {entry.prefix!r} ({entry.where()}) matches {ref.name}"
             + (f"; it replaced {', '.join(entry.replaced)}" if entry.replaced else "") + "."]
    domain = entry.prefix.split("/", 1)[0]
    if ":" not in domain and ref.domain.startswith(domain + ":") and not entry.wildcard:
        notes.append(f"The prefix {entry.prefix!r} has no port yet matches {ref.domain}: a containers/image quirk "
                     "its code says not to rely on; write the port into the prefix.")
    return notes


def _endpoints(cfg: CrioConfig, ref: Reference, entry: RegistryEntry | None,
               findings: list[Finding], via: Candidate | None = None) -> tuple[list[Endpoint], str, Finding | None]:
    """The endpoints in order, or ``([], why, the finding saying so)`` when rewriting fails and nothing is tried.

    ``via`` is the short-name candidate ``ref`` came from: its alias or search-registries line is
    the provenance of an endpoint no ``[[registry]]`` names, and is added to one that does.
    """
    endpoints: list[Endpoint] = []
    for src in pull_sources(entry, ref):
        physical, error = _parse_rewritten(src.rewritten)
        if physical is None:
            if src.skip:
                continue  # never rewritten by the runtime, so it cannot fail
            failed = _rewrite_error(entry, src, error)
            findings.append(failed)
            return [], f"no route: {error} ({src.source}); the pull fails before any request.", failed
        if via is not None:
            origin = f"{via.why} {via.source}"
            src = replace(src, source=origin if entry is None else f"{src.source} (candidate from {origin})")
        ep, skip_evidence = _endpoint(cfg, src, physical, findings)
        endpoints.append(ep)
        if ep.role == "mirror" and ep.status == "skipped":
            findings.append(_skipped(src, ep, skip_evidence))
    if entry is not None and entry.blocked:
        tried_mirrors = [e for e in endpoints if e.role == "mirror" and e.status != "skipped"]
        findings.append(_blocked(entry, ref, tried_mirrors))
    return endpoints, "", None


def _candidates(cfg: CrioConfig, ref: Reference) -> tuple[list[tuple[Reference, Candidate | None]], list[str],
                                                          list[Finding]]:
    """The fully qualified names tried for ``ref`` in order (``Resolve``), notes, and the finding when none is."""
    resolution = resolve(cfg.registries, ref, cfg.perspective)
    if resolution is None:
        return [(ref, None)], [], []
    notes = [resolution.note] if resolution.note else []
    if resolution.error:
        notes.append(f"no route: {resolution.error} ({resolution.error_source}); the pull fails before any request.")
        return [], notes, [unresolved(resolution, cfg.perspective, str(ref))]
    return [(c.ref, c) for c in resolution.candidates], notes, []


def plan(cfg: CrioConfig, ref: Reference) -> tuple[Route, list[Finding]]:
    """The route containers/image takes for ``ref`` and the findings specific to it.

    A short name becomes its candidates (alias, or each search registry in order); each candidate
    gets the ``[[registry]]`` rules of a qualified name, and the route lists their endpoints in
    the order they are tried: podman and CRI-O move to the next candidate when one fails.
    """
    mode, assumed = _mode(cfg)
    regs = cfg.registries
    if regs.refused is not None:
        note = (f"no route: {regs.refused.title}. podman/skopeo refuse every pull and CRI-O does not start "
                "(a reload keeps its previous registries) until that is fixed.")
        return Route(RUNTIME, str(ref), (), mode, assumed, (note,)), []
    targets, notes, findings = _candidates(cfg, ref)
    endpoints: list[Endpoint] = []
    for target, via in targets:
        entry = find_registry(regs.registries, target.name)
        findings += _near_misses(cfg, target, entry)
        found, failure, failed = _endpoints(cfg, target, entry, findings, via)
        if failure and via is None:
            return Route(RUNTIME, str(ref), (), mode, assumed, tuple(notes + [failure])), findings
        if failure and failed is not None and len(targets) > 1:
            # Only this candidate fails: podman and CRI-O go on to the next one.
            findings[findings.index(failed)] = replace(failed, severity="warning")
            notes.append(f"candidate {target}: {failure[len('no route: '):]} podman and CRI-O go on to the next.")
        elif failure:
            notes.append(failure)
        endpoints += found
        notes += _match_notes(entry, target)
    if not targets:
        return Route(RUNTIME, str(ref), (), mode, assumed, tuple(notes)), findings
    shown = (f"\"{len(targets)} errors occurred while pulling:\" and one line per candidate" if len(targets) > 1
             else "\"(Mirrors also failed: [...]): <primary>: <error>\"")
    notes.append("The first endpoint whose manifest fetch succeeds serves the whole image; any error moves on, and "
                 f"the error shown is {shown}.")
    notes.append(_credential_note(cfg))
    return Route(RUNTIME, str(ref), tuple(endpoints), mode, assumed, tuple(notes)), findings
