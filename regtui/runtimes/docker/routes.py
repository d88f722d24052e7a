"""dockerd's endpoint order for one image reference, for both image stores.

Classic (graphdriver) store (moby ``daemon/pkg/registry/service_v2.go lookupV2Endpoints``,
SEMANTICS §1.3)::

    docker.io / index.docker.io:  each registry-mirrors entry in order (scheme as given; TLS from
                                  certs.d/<mirror host>, or no verification if that host is insecure)
                                  then https://registry-1.docker.io (system roots only)
    any other domain D:           https://D with certs.d/D, or, when D is insecure,
                                  https://D without verification (certs.d not read) then http://D

Containerd image store (moby ``daemon/hosts.go RegistryHosts``, SEMANTICS §1.4): containerd's
hosts.toml resolution with ``/etc/docker/certs.d`` as the only hosts directory; when that yields
exactly one host, daemon.json mirrors (docker.io only) are put in front of it and insecure hosts
get no verification plus the HTTPS->HTTP fallback. Mirrors share the upstream's TLS settings
(``certs.d/docker.io``) and get no credentials.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from urllib.parse import urlsplit

from regtui.config import hostsdir, hoststoml
from regtui.config.certsd import HUB_DIR_ALIASES, misnamed_dirs, read_certs_dir
from regtui.credentials import Credential
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Endpoint, Finding, Route, TLSInputs
from regtui.net.proxy import ProxyEnv
from regtui.refs import HUB_API_HOST, Reference
from regtui.runtimes.docker.cliconfig import CliConfig
from regtui.runtimes.docker.model import CERTS_DIR, RUNTIME, DaemonConfig, Mirror, line_of
from regtui.runtimes.endpoints import endpoint

__all__ = ["plan", "plan_classic", "plan_containerd_store", "credential_for_endpoint", "HUB_UPSTREAM"]

#: Docker Hub's API root as dockerd builds it.
HUB_UPSTREAM = f"https://{HUB_API_HOST}/v2"
_HUB_DOMAINS = ("docker.io", "index.docker.io")
_LAST_ERROR_NOTE = ("Only the last endpoint's error reaches `docker pull`; failures of earlier endpoints are in the "
                    "daemon log ('Attempting next endpoint for pull after error').")


def plan(ref: Reference, cfg: DaemonConfig, cli: CliConfig, env: ProxyEnv, host: Host) -> tuple[Route, list[Finding]]:
    """The route for ``ref`` in the image store dockerd uses (``cfg.store``)."""
    if cfg.store == "containerd":
        return plan_containerd_store(ref, cfg, cli, env, host)
    return plan_classic(ref, cfg, cli, env, host)


def _fail_on_certs(endpoints: list[Endpoint], stops: list[str]) -> list[Endpoint]:
    """Every endpoint fails when a certs.d directory on the route is unusable.

    moby's ``lookupV2Endpoints`` builds the TLS config of every mirror and of the registry before
    the first request (``newTLSConfig`` -> ``loadTLSConfig``); one error there is returned by
    ``LookupPullEndpoints`` and the pull fails without trying any endpoint.
    """
    if not stops:
        return endpoints
    reason = f"TLS setup fails before any request: {stops[0]}"
    return [ep if ep.status == "skipped" else replace(ep, status="failed", reason=reason) for ep in endpoints]


def _start_notes(cfg: DaemonConfig) -> list[str]:
    if not cfg.fatal:
        return []
    return [f"dockerd does not start with this configuration ({cfg.fatal[0]}); the route shows what it will do "
            "once that is fixed"]


def _api_root(base: str) -> str:
    return base.rstrip("/") + "/v2"


def _hub_credentials(cli: CliConfig) -> str | None:
    return cli.credential_source("docker.io")


# -- classic store ---------------------------------------------------------------------------

def _certs_tls(host: Host, hostport: str, findings: list[Finding], notes: list[str], stops: list[str]) -> TLSInputs:
    """TLS inputs for a secure host: system roots plus ``certs.d/<hostport>``; an unusable directory
    goes into ``stops`` (every endpoint of the pull fails, :func:`_fail_on_certs`)."""
    directory = posixpath.join(CERTS_DIR, hostport)
    certs = read_certs_dir(host, directory, RUNTIME)
    findings += certs.findings
    if certs.fatal:
        stops.append(f"{certs.fatal} ({directory})")
        notes.append(f"dockerd fails before sending any request for {hostport}: {stops[-1]}")
    if certs.ca_files or certs.client_pairs:
        reason = f"system roots + {directory}"
    else:
        reason = "system roots" + (f" ({directory} holds no certificates)" if certs.exists else "")
    return TLSInputs(verify=True, verify_reason=reason, ca_files=tuple(certs.ca_files),
                     client_cert=tuple(certs.client_pairs))


def _insecure_tls(why: str) -> TLSInputs:
    return TLSInputs(verify=False, verify_reason=why, system_roots=False)


def _classic_mirror(ref: Reference, m: Mirror, cfg: DaemonConfig, cli: CliConfig, env: ProxyEnv,
                    host: Host, findings: list[Finding], notes: list[str], stops: list[str]) -> Endpoint:
    verdict = cfg.insecure_reason(m.host)
    if m.scheme == "http":
        tls = TLSInputs(verify=True, verify_reason="plain HTTP: no TLS")
    elif verdict.insecure:
        tls = _insecure_tls(f"{verdict.why}: verification skipped and certs.d/{m.host} not read")
    else:
        tls = _certs_tls(host, m.host, findings, notes, stops)
        findings += _misnamed(host, m.host)
    if verdict.caveat and m.scheme == "https":
        notes.append(f"{m.host}: {verdict.caveat}")
    creds = _hub_credentials(cli)
    return endpoint(_api_root(m.url), m.host, "mirror", m.source, ref.path, env, tls=tls,
                    credentials=f"{creds} (Docker Hub credentials, offered to the mirror)" if creds else None)


def _hub_upstream(ref: Reference, cli: CliConfig, env: ProxyEnv) -> Endpoint:
    return endpoint(HUB_UPSTREAM, HUB_API_HOST, "upstream", "default (Docker Hub)", ref.path, env,
                    tls=TLSInputs(verify=True, verify_reason="system roots only: dockerd never reads certs.d for Docker Hub"),
                    credentials=_hub_credentials(cli))


def _hub_certs_unused(host: Host) -> list[Finding]:
    """certs.d directories for Docker Hub: the classic store never reads them."""
    out: list[Finding] = []
    for name in ("docker.io",) + HUB_DIR_ALIASES:
        path = posixpath.join(CERTS_DIR, name)
        if not host.is_dir(path) or not (host.listdir(path) or []):
            continue
        out.append(finding(
            "config.hosts-dir-unused", path,
            f"{path} is never read: dockerd verifies Docker Hub against the system roots only",
            "The graphdriver store connects to registry-1.docker.io with the OS trust store and ignores certs.d for "
            "Docker Hub. A CA placed here (typically a TLS-intercepting proxy's) is not trusted: install it in the OS "
            "store (update-ca-certificates) and restart dockerd, which loads the store once.",
            evidence={"file": path, "line": None, "value": name, "registry": "docker.io"},
            runtime=RUNTIME,
            fix=fix("config.hosts-dir-unused", path, "install the CA into the OS trust store and restart docker",
                    files=["/usr/local/share/ca-certificates"], kind="command", restart="restart docker",
                    params={"action": "install-system-ca", "from": path,
                            "command": f"cp {path}/*.crt /usr/local/share/ca-certificates/ && update-ca-certificates"}),
        ))
    return out


def _misnamed(host: Host, hostport: str, accepted: tuple[str, ...] = ()) -> list[Finding]:
    """``config.hosts-dir-misnamed`` under /etc/docker/certs.d for ``hostport``."""
    return misnamed_dirs(host, CERTS_DIR, hostport, runtime=RUNTIME, accepted=accepted)


def _mirrors_line(cfg: DaemonConfig) -> tuple[str, int | None]:
    src = cfg.mirrors[0].source
    path, _, line = src.rpartition(" at ")[2].rpartition(":")
    return path, int(line) if line.isdigit() else None


def _not_applied(ref: Reference, cfg: DaemonConfig, containerd_store: bool) -> Finding:
    """One ``mirror.not-applied`` for a non-Hub reference when registry-mirrors is set."""
    path, line = _mirrors_line(cfg)
    urls = [m.url for m in cfg.mirrors]
    special = ""
    if ref.domain == HUB_API_HOST:
        special = (f" {ref.domain}/... is not a Docker Hub reference either: only docker.io (and index.docker.io) "
                   f"names are mirrored; write {ref.familiar()} instead.")
    if containerd_store:
        directory = posixpath.join(CERTS_DIR, ref.domain)
        summary = f"if the mirror proxies {ref.domain}: add {directory}/hosts.toml with the mirror as [host]"
        kind, params = None, {"action": "write-hosts-toml", "path": posixpath.join(directory, "hosts.toml"),
                              "server": f"https://{ref.domain}", "mirrors": urls}
        files = [posixpath.join(directory, "hosts.toml")]
    else:
        summary = f"pull through the mirror's own name (e.g. <mirror-host>/{ref.path}) or switch to the containerd store"
        kind, params, files = "manual", {"mirrors": urls, "registry": ref.domain}, []
    return finding(
        "mirror.not-applied", ref.domain,
        f"daemon.json registry-mirrors do not apply to {ref.domain}: dockerd never asks them for {ref.familiar()}",
        f"Docker's registry-mirrors are mirrors of Docker Hub only; for any other registry dockerd never asks them "
        f"(docker/for-linux#570).{special}",
        evidence={"file": path, "line": line, "key": "registry-mirrors", "value": urls, "reference": str(ref)},
        runtime=RUNTIME,
        fix=fix("mirror.not-applied", ref.domain, summary, files=files, kind=kind, detail=RUNTIME, params=params),
    )


def _skipped_mirrors(ref: Reference, cfg: DaemonConfig, env: ProxyEnv, why: str) -> list[Endpoint]:
    return [endpoint(_api_root(m.url), m.host, "mirror", m.source, ref.path, env, status="skipped", reason=why)
            for m in cfg.mirrors]


def plan_classic(ref: Reference, cfg: DaemonConfig, cli: CliConfig, env: ProxyEnv,
                 host: Host) -> tuple[Route, list[Finding]]:
    """§1.3: the graphdriver store's endpoints for ``ref``."""
    findings: list[Finding] = []
    notes = _start_notes(cfg)
    stops: list[str] = []
    endpoints: list[Endpoint] = []
    if ref.domain in _HUB_DOMAINS:
        for m in cfg.mirrors:
            endpoints.append(_classic_mirror(ref, m, cfg, cli, env, host, findings, notes, stops))
        endpoints.append(_hub_upstream(ref, cli, env))
        findings += _hub_certs_unused(host)
        if cfg.mirrors:
            notes.append("Mirrors are tried in order; any error from a mirror moves on to the next endpoint. "
                         "The first endpoint that answers serves the whole pull, tags included.")
            notes.append("The Docker Hub credentials of the CLI are offered to the mirrors' token realms too.")
    else:
        if cfg.mirrors:
            why = (f"registry-mirrors apply to Docker Hub only; {ref.domain} is pulled directly")
            endpoints += _skipped_mirrors(ref, cfg, env, why)
            findings.append(_not_applied(ref, cfg, containerd_store=False))
        endpoints += _classic_registry(ref, cfg, cli, env, host, findings, notes, stops)
    endpoints = _fail_on_certs(endpoints, stops)
    notes.append(_LAST_ERROR_NOTE)
    route = Route(RUNTIME, str(ref), tuple(endpoints), mode="docker classic store (graphdriver)",
                  assumed=cfg.store_reason, notes=tuple(notes))
    return route, findings


def _classic_registry(ref: Reference, cfg: DaemonConfig, cli: CliConfig, env: ProxyEnv, host: Host,
                      findings: list[Finding], notes: list[str], stops: list[str]) -> list[Endpoint]:
    domain = ref.domain
    creds = cli.credential_source(domain)
    verdict = cfg.insecure_reason(domain)
    if verdict.caveat:
        notes.append(f"{domain}: {verdict.caveat}")
    elif not verdict.insecure and cfg.resolved_online(domain):
        notes.append(f"{domain} is secure for dockerd: {verdict.why}; no insecure CIDR holds any of its addresses.")
    if not verdict.insecure:
        tls = _certs_tls(host, domain, findings, notes, stops)
        findings += _misnamed(host, domain)
        return [endpoint(f"https://{domain}/v2", domain, "upstream", f"default (image name {domain})", ref.path, env,
                         tls=tls, credentials=creds)]
    why, source = verdict.why, verdict.source
    findings += _insecure_drops_certs(host, domain, why)
    https = endpoint(f"https://{domain}/v2", domain, "upstream", source, ref.path, env,
                     tls=_insecure_tls(f"{why}: verification skipped, certs.d/{domain} not read"),
                     credentials=creds, http_fallback=True)
    http = endpoint(f"http://{domain}/v2", domain, "upstream", source, ref.path, env,
                    tls=TLSInputs(verify=True, verify_reason="plain HTTP fallback: no TLS"), credentials=creds,
                    reason="tried when the https attempt fails below HTTP (TLS, connect); skipped once TLS worked")
    notes.append(f"{domain} is insecure ({why}): dockerd tries https without verification, then plain http.")
    return [https, http]


def _insecure_drops_certs(host: Host, domain: str, why: str) -> list[Finding]:
    """A client certificate in certs.d/<domain> is dropped when the registry is insecure."""
    directory = posixpath.join(CERTS_DIR, domain)
    certs = read_certs_dir(host, directory, RUNTIME)
    if not (certs.client_pairs or certs.ca_files):
        return []
    return [finding(
        "config.hosts-dir-unused", directory,
        f"{directory} is not read: {domain} is an insecure registry",
        f"dockerd reads certs.d only for secure registries. {domain} is insecure ({why}), so its CA files are "
        "pointless and its client certificate is never sent; a registry that requires one rejects the pull.",
        evidence={"file": directory, "line": None, "value": domain, "ca_files": certs.ca_files,
                  "client_pairs": [list(p) for p in certs.client_pairs]},
        runtime=RUNTIME,
        fix=fix("config.hosts-dir-unused", directory, f"remove {domain} from insecure-registries so the CA and "
                "client certificate are used", files=["/etc/docker/daemon.json"], restart="reload docker",
                params={"key": "insecure-registries", "remove": domain}),
    )]


# -- containerd image store ----------------------------------------------------------------

def _entry_tls(e: hoststoml.HostEntry, insecure_why: str | None, directory: str | None) -> TLSInputs:
    if e.scheme == "http" and not e.http_fallback:
        return TLSInputs(verify=True, verify_reason="plain HTTP: no TLS")
    if insecure_why:
        return TLSInputs(verify=False, verify_reason=insecure_why, ca_files=e.ca_files, client_cert=e.client_pairs)
    if e.skip_verify:
        return TLSInputs(verify=False, verify_reason=f"skip_verify = true ({e.source})", ca_files=e.ca_files,
                         client_cert=e.client_pairs)
    reason = "system roots" + (f" + {directory}" if e.ca_files and directory else "")
    return TLSInputs(verify=True, verify_reason=reason, ca_files=e.ca_files, client_cert=e.client_pairs)


def _legacy_mirrors(ref: Reference, cfg: DaemonConfig, upstream: hoststoml.HostEntry) -> list[hoststoml.HostEntry]:
    """``mirrorsToRegistryHosts``: daemon.json mirrors copied from the upstream entry, /v2 appended."""
    out = []
    for m in cfg.mirrors:
        parts = urlsplit(m.url)
        path = parts.path.rstrip("/")
        if not path.endswith("/v2"):
            path = posixpath.join(path or "/", "v2")
        out.append(hoststoml.HostEntry(
            url=f"{parts.scheme}://{parts.netloc}{path}", host=parts.netloc, scheme=parts.scheme,
            capabilities=("pull", "resolve"), ca_files=upstream.ca_files, client_pairs=upstream.client_pairs,
            skip_verify=upstream.skip_verify, source=m.source, path=path, is_mirror=True,
            query=hoststoml.ns_query(ref.domain)))
    return out


def plan_containerd_store(ref: Reference, cfg: DaemonConfig, cli: CliConfig, env: ProxyEnv,
                          host: Host) -> tuple[Route, list[Finding]]:
    """§1.4: containerd's hosts.toml resolution over /etc/docker/certs.d plus the legacy merge."""
    findings: list[Finding] = []
    notes = _start_notes(cfg)
    res = hostsdir.resolve_hosts(host, [CERTS_DIR], ref.domain, RUNTIME, default_tls=True)
    findings += res.findings
    if res.fatal:
        notes.append(f"dockerd fails every pull from {ref.domain}: {res.fatal}")
    entries = list(res.entries)
    accepted = (hostsdir.host_directory(ref.domain), "_default") if ":" in ref.domain else ("_default",)
    if not res.specific:
        findings += _misnamed(host, ref.domain, accepted)
    legacy = bool(cfg.mirrors or cfg.insecure_hosts or any(not s.startswith("(always") for _, s in cfg.insecure_cidrs))
    is_hub = ref.domain in _HUB_DOMAINS
    if legacy and len(entries) == 1:
        if is_hub and cfg.mirrors:
            entries = _legacy_mirrors(ref, cfg, entries[0]) + entries
            notes.append("daemon.json registry-mirrors are merged in front of the upstream (hosts.toml defines one "
                         f"host); they reuse the upstream's TLS settings ({res.dir or 'system roots'}), not "
                         "certs.d/<mirror host>.")
    elif legacy and len(entries) > 1:
        ignored = "registry-mirrors and insecure-registries" if is_hub else "insecure-registries"
        notes.append(f"hosts.toml defines {len(entries)} hosts for {ref.domain}: daemon.json {ignored} "
                     "are ignored for it.")
        if is_hub and cfg.mirrors:
            findings.append(_hosts_toml_overrides(ref, cfg, res))
    verdicts = {e.host: cfg.insecure_reason(e.host) for e in entries}
    shared = None
    if legacy and len(res.entries) == 1:
        shared = next(((h, v.why) for h, v in verdicts.items() if v.insecure), None)
    endpoints = []
    for e in entries:
        why = None
        if shared:
            why = (f"{shared[1]}" if shared[0] == e.host else
                   f"shared transport: {shared[0]} is insecure ({shared[1]}), which turns verification off for every "
                   "host of this registry (code reading)")
        tls = _entry_tls(e, why, res.dir)
        endpoints.append(_containerd_endpoint(ref, e, tls, bool(why) or e.http_fallback, cli, env))
    if not is_hub and cfg.mirrors:
        endpoints = _skipped_mirrors(ref, cfg, env, f"registry-mirrors apply to Docker Hub only; {ref.domain} "
                                                    "uses its own hosts.toml") + endpoints
        findings.append(_not_applied(ref, cfg, containerd_store=True))
    findings += _capability_skips(ref, endpoints)
    notes.append(f"hosts directory: {res.dir or 'none'} ({res.mode}); dockerd reads {CERTS_DIR} only, never "
                 "/etc/containerd/certs.d.")
    if any(ep.role == "mirror" and ep.status != "skipped" for ep in endpoints):
        notes.append("Mirrors are sent no credentials in the containerd store: only the registry's own host gets them.")
    route = Route(RUNTIME, str(ref), tuple(endpoints), mode="docker containerd image store",
                  assumed=cfg.store_reason, notes=tuple(notes))
    return route, findings


def _containerd_endpoint(ref: Reference, e: hoststoml.HostEntry, tls: TLSInputs, fallback: bool,
                         cli: CliConfig, env: ProxyEnv) -> Endpoint:
    own_host = HUB_API_HOST if ref.domain in _HUB_DOMAINS else ref.domain
    creds = cli.credential_source(ref.domain) if e.host == own_host else None
    role = "mirror" if e.is_mirror or not e.is_default_upstream and e.host != own_host else "upstream"
    status, reason = "untested", ""
    needed = ("pull",) if ref.by_digest else ("pull", "resolve")
    if not all(c in e.capabilities for c in needed):
        status = "skipped"
        reason = (f"capabilities {list(e.capabilities)} lack {'/'.join(c for c in needed if c not in e.capabilities)}: "
                  f"{'used for digest references and blobs only' if 'pull' in e.capabilities else 'never used for pulls'}")
    return endpoint(e.url, e.host, role, e.source, ref.path, env, capabilities=e.capabilities, tls=tls,
                    credentials=creds, status=status, reason=reason, http_fallback=fallback, query=e.query)


def _capability_skips(ref: Reference, endpoints: list[Endpoint]) -> list[Finding]:
    out = []
    for ep in endpoints:
        if ep.status != "skipped" or "capabilities" not in ep.reason:
            continue
        out.append(finding(
            "mirror.skipped", ep.host,
            f"{ep.host} is not asked for {ref.familiar()}: {ep.reason}",
            "containerd resolves tags only on hosts with both pull and resolve; a pull-only mirror serves digest "
            "references and blobs.",
            evidence={"file": ep.source.rsplit(":", 1)[0], "line": line_of(ep.source), "value": list(ep.capabilities),
                      "reference": str(ref)},
            runtime=RUNTIME,
        ))
    return out


def _hosts_toml_overrides(ref: Reference, cfg: DaemonConfig, res: hostsdir.HostsResolution) -> Finding:
    path, line = _mirrors_line(cfg)
    return finding(
        "mirror.not-applied", ref.domain,
        f"daemon.json registry-mirrors are ignored for {ref.domain}: {res.hosts_file} defines the hosts",
        "With the containerd image store, dockerd merges daemon.json mirrors only when hosts.toml yields a single "
        "host; this hosts.toml defines several, so only its own [host] entries are tried.",
        evidence={"file": path, "line": line, "key": "registry-mirrors", "value": [m.url for m in cfg.mirrors],
                  "hosts_toml": res.hosts_file, "reference": str(ref)},
        runtime=RUNTIME,
        fix=fix("mirror.not-applied", ref.domain, f"add the mirrors as [host] entries in {res.hosts_file}",
                files=[res.hosts_file or ""], detail="hosts.toml",
                params={"action": "add-hosts", "path": res.hosts_file, "mirrors": [m.url for m in cfg.mirrors]}),
    )


# -- credentials ----------------------------------------------------------------------------

def credential_for_endpoint(endpoint_host: str, cfg: DaemonConfig, cli: CliConfig) -> Credential | None:
    """Credentials dockerd would send to ``endpoint_host`` for a pull (the CLI's, via X-Registry-Auth)."""
    mirror_hosts = {m.host for m in cfg.mirrors}
    if endpoint_host == HUB_API_HOST:
        return cli.credential_for("docker.io")
    if endpoint_host in mirror_hosts:
        return cli.credential_for("docker.io") if cfg.store == "classic" else None
    return cli.credential_for(endpoint_host)
