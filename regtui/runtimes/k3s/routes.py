"""The k3s/RKE2 route: what the embedded containerd tries for one image.

The route follows what is *in effect*: the files k3s generated at its last start
(``config.toml`` and ``certs.d/*/hosts.toml``) when they exist, read with containerd's rules
(:mod:`regtui.config.hostsdir`) plus the two things k3s's patched containerd does differently:
``[host."…".rewrite]`` tables rewrite the repository on that mirror, and a hosts.toml without a
``server`` line has no default endpoint. When k3s has not generated anything yet, the route is
planned from ``registries.yaml`` exactly as k3s will write it (:func:`regtui.runtimes.k3s.expected.expected_hosts`).
k3s releases from before 2024 put the mirrors into ``config.toml`` itself (legacy CRI mirrors)
and applied rewrites to the default endpoint too (k3s#7007). Rewrites follow Go's rules
(:mod:`regtui.runtimes.k3s.rewrites`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from regtui.config._source import read_toml
from regtui.config.hostsdir import host_directory, read_hosts_dir, resolve_hosts
from regtui.config.hoststoml import HostEntry, default_host, is_localhost, is_mirror, ns_query, split_host_port
from regtui.config.k3sservice import RUNTIME, split_where
from regtui.findings import finding, fix
from regtui.model import Endpoint, Finding, Route, TLSInputs
from regtui.refs import Reference
from regtui.runtimes.endpoints import endpoint
from regtui.runtimes.k3s.expected import DEFAULT_DIR, ExpectedEndpoint, ExpectedHost, key_host
from regtui.runtimes.k3s.generated import hosts_url
from regtui.runtimes.k3s.rewrites import Rewrite, apply_rewrites
from regtui.runtimes.k3s.state import K3sState
from regtui.runtimes.k3s.versions import rewrites_default_endpoint, wildcard_fallback_broken

__all__ = ["plan"]

_MIRROR_CAPS = ("pull", "resolve")
_DEFAULT_CAPS = ("pull", "resolve", "push")
_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


# -- shared endpoint building ----------------------------------------------------------------------


def _tls(scheme: str, skip: bool | None, ca: tuple[str, ...], client: tuple[tuple[str, str], ...], where: str) -> TLSInputs:
    if scheme == "http":
        return TLSInputs(verify=False, verify_reason="plain HTTP: no TLS", system_roots=False)
    if skip:
        return TLSInputs(verify=False, verify_reason=f"skip_verify ({where})", ca_files=ca, client_cert=client)
    trust = "system roots" + (" + " + ", ".join(ca) if ca else "")
    return TLSInputs(verify=True, verify_reason=trust, ca_files=ca, client_cert=client)


def _credential_source(state: K3sState, host: str) -> str | None:
    cfg = state.generated.containerd
    if cfg is not None:
        return cfg.credential_source(host)
    entry = state.registries.configs.get(host)
    if entry is None or entry.auth is None or not (entry.auth.username or entry.auth.identity_token or entry.auth.auth):
        return None
    return f"{state.registries.where(entry.auth.line)} (configs.\"{host}\".auth)"


def _rewritten(ref: Reference, rewrites: list[Rewrite], notes: list[str], host: str) -> str:
    repo, pattern, more = apply_rewrites(ref.path, rewrites)
    notes += more
    if pattern is not None:
        notes.append(f"{host}: rewrite {pattern!r} turns {ref.path} into {repo}")
    return repo


# -- route from the generated hosts.toml -----------------------------------------------------------


def _generated_rewrites(data: dict[str, Any] | None) -> dict[str, list[Rewrite]]:
    """``[host."URL".rewrite]`` tables by the URL containerd resolves the host to."""
    out: dict[str, list[Rewrite]] = {}
    hosts = data.get("host") if isinstance(data, dict) and isinstance(data.get("host"), dict) else {}
    for url, cfg in hosts.items():
        if isinstance(cfg, dict) and isinstance(cfg.get("rewrite"), dict):
            out[hosts_url(url, bool(cfg.get("override_path")))] = [
                (str(p), str(r), None) for p, r in cfg["rewrite"].items() if isinstance(r, str)]
    return out


def _match_expected(state: K3sState, dir_name: str, entry: HostEntry) -> ExpectedEndpoint | None:
    exp = state.expected.get(dir_name)
    if exp is None or dir_name in state.differing:
        return None
    if entry.is_default_upstream:
        return exp.default
    for ep in exp.endpoints:
        if ep.norm is not None and ep.norm.url == entry.url:
            return ep
    return None


def _generated_route(state: K3sState, ref: Reference, notes: list[str], findings: list[Finding]) -> list[Endpoint]:
    gen = state.generated
    res = resolve_hosts(state.host, gen.roots, ref.domain, RUNTIME, containerd_version=state.containerd_version,
                        accept_rewrite=True)
    findings += [f for f in res.findings if f.evidence.get("value") not in state.flagged_files]
    entries = list(res.entries)
    data = None
    parsed = None
    dir_name = res.dir.rsplit("/", 1)[-1] if res.dir else ""
    if res.mode == "hosts.toml" and res.hosts_file:
        parsed = read_toml(state.host, res.hosts_file, RUNTIME)
        data = parsed.data if parsed.ok and isinstance(parsed.data, dict) else None
    if res.dir:
        origin = "generated" if (dir_name in gen.dirs and gen.dirs[dir_name].header) else "hand-made"
        notes.append(f"containerd reads {res.hosts_file or res.dir} ({origin}, {res.mode})")
        if dir_name in state.differing and not state.stale:
            notes.append(f"{res.dir} differs from {state.registries.path} ({state.differing[dir_name]}): the route follows "
                         f"what containerd reads now; {state.flavour.name} rewrites it on its next start")
        if dir_name == DEFAULT_DIR and ref.domain not in state.registries.mirrors:
            notes.append(f"no entry for {ref.domain}: the \"*\" mirror (_default) applies")
    else:
        notes.append(f"no hosts dir for {ref.domain} under {':'.join(gen.roots)}: containerd pulls from the registry itself")
    if data is not None and "server" not in data and entries and entries[-1].is_default_upstream:
        entries = entries[:-1]
        why = ("disable-default-registry-endpoint" if state.no_default_endpoint else
               "k3s releases before March 2024 wrote _default without it (k3s#9728)" if dir_name == DEFAULT_DIR else
               "the line was removed")
        notes.append(f"{res.hosts_file} has no server line: k3s's containerd does not fall back to "
                     f"{default_host(ref.domain)} ({why})")
    if res.fatal:
        notes.append(f"every pull from {ref.domain} fails: {res.fatal}")
    rewrites = _generated_rewrites(data)
    endpoints = []
    for entry in entries:
        exp = _match_expected(state, dir_name, entry)
        source = exp.source if exp is not None and exp.explicit else entry.source
        if entry.is_default_upstream and data is not None and data.get("server") == "" and parsed is not None:
            source = f"{parsed.where('server')} (server = \"\": {entry.host} itself)"
        repo = ref.path if entry.is_default_upstream else _rewritten(ref, rewrites.get(entry.url, []), notes, entry.host)
        endpoints.append(endpoint(
            entry.url, entry.host, "upstream" if entry.is_default_upstream else "mirror", source, repo, state.proxy_env,
            capabilities=entry.capabilities, tls=_tls(entry.scheme, entry.skip_verify, entry.ca_files, entry.client_pairs, entry.source),
            credentials=_credential_source(state, entry.host), http_fallback=entry.http_fallback, query=entry.query,
        ))
    return endpoints


# -- legacy route (mirrors in config.toml: k3s before 2024) ----------------------------------------


def _legacy_rewrites(state: K3sState, ns: str) -> list[Rewrite]:
    cfg = state.generated.containerd
    if cfg is None or not cfg.files or not isinstance(cfg.files[0].data, dict):
        return []
    setting = cfg.registry.mirrors.get(ns) or cfg.registry.mirrors.get("*")
    if setting is None:
        return []
    node: Any = cfg.files[0].data
    for part in setting.key[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    table = node.get("rewrite") if isinstance(node, dict) else None
    return [(str(p), str(r), None) for p, r in table.items()] if isinstance(table, dict) else []


def _legacy_route(state: K3sState, ref: Reference, notes: list[str]) -> list[Endpoint]:
    cfg = state.generated.containerd
    assert cfg is not None
    ns = ref.domain
    setting = cfg.registry.mirrors.get(ns) if ns in cfg.registry.mirrors else cfg.registry.mirrors.get("*")
    raw = [e for e in (setting.value if setting is not None and isinstance(setting.value, list) else []) if isinstance(e, str)]
    entries: list[tuple[str, str]] = []
    for e in raw:
        url = e if "://" in e else f"{'http' if is_localhost(e.split('/')[0]) else 'https'}://{e}"
        entries.append((url, setting.where))  # type: ignore[union-attr]
    if not any(urlsplit(u).netloc.rpartition("@")[2] == ns for u, _ in entries):
        up = default_host(ns)
        entries.append((f"{'http' if is_localhost(up) else 'https'}://{up}", f"default (upstream of {ns}, always appended)"))
    rewrites = _legacy_rewrites(state, ns)
    if setting is not None and ns not in cfg.registry.mirrors:
        notes.append(f"no mirrors entry for {ns}: the \"*\" entry applies ({setting.where})")
    endpoints = []
    for url, source in entries:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        api = f"{parts.scheme}://{netloc}{parts.path or '/v2'}"
        tls_setting = cfg.registry.tls.get(netloc)
        tls_value = tls_setting.value if tls_setting is not None and isinstance(tls_setting.value, dict) else {}
        ca = (tls_value["ca_file"],) if tls_value.get("ca_file") else ()
        client = ((tls_value["cert_file"], tls_value.get("key_file", "")),) if tls_value.get("cert_file") else ()
        # Old k3s applies the rewrite to every endpoint, the upstream included (k3s#7007).
        repo = _rewritten(ref, rewrites, notes, netloc)
        endpoints.append(endpoint(
            api, netloc, "upstream" if netloc == default_host(ns) else "mirror", source, repo, state.proxy_env,
            capabilities=_DEFAULT_CAPS, tls=_tls(parts.scheme, bool(tls_value.get("insecure_skip_verify")), ca, client,
                                                 tls_setting.where if tls_setting else ""),
            credentials=cfg.credential_source(netloc), query=ns_query(ns) if is_mirror(netloc, ns) else "",
        ))
    return endpoints


# -- route planned from registries.yaml (nothing generated yet, or after the next restart) ----------


def _planned_lookup(state: K3sState, ns: str) -> tuple[str, ExpectedHost | None]:
    """containerd's dir lookup over what k3s will leave in certs.d: (dir name, expected host or None)."""
    for name in dict.fromkeys((host_directory(ns), ns, DEFAULT_DIR)):
        if name in state.expected:
            return name, state.expected[name]
        gdir = state.generated.dirs.get(name)
        if gdir is not None and not gdir.header:
            return name, None
    return "", None


def _default_upstream(ns: str) -> tuple[str, str, str, bool | None]:
    """(scheme, host, path, skip_verify) of containerd's implicit upstream for ``ns``."""
    if ns == "docker.io":
        return "https", "registry-1.docker.io", "/v2", None
    if is_localhost(ns):
        port = split_host_port(ns)[1]
        scheme = "https" if port in ("", "443") else "http"
        return scheme, ns, "/v2", (True if port != "80" else None)
    return "https", ns, "/v2", None


def _expected_endpoint(state: K3sState, ref: Reference, ep: ExpectedEndpoint, *, is_default: bool,
                       rewrite_default: bool, notes: list[str]) -> Endpoint:
    ns = ref.domain
    tls = ep.config.tls if ep.config else None
    skip = tls.insecure_skip_verify if tls else None
    if ep.norm is None:
        scheme, host, path, implied_skip = _default_upstream(ns)
        skip = skip if skip is not None and tls is not None else implied_skip
    else:
        scheme, host, path = ep.norm.scheme, ep.norm.host, ep.norm.path
    ca = (tls.ca_file,) if tls and tls.ca_file else ()
    client = ((tls.cert_file, tls.key_file),) if tls and (tls.cert_file or tls.key_file) else ()
    explicit_tls = bool(ca or client or skip is not None)
    fallback = False
    if scheme == "http" and explicit_tls and split_host_port(host)[1] != "80":
        scheme, fallback = "https", True
    # Old k3s applies the mirror's rewrites to the default endpoint too (k3s#7007).
    rewrites = ep.rewrites if not is_default else (_mirror_rewrites(state, ref) if rewrite_default else [])
    repo = _rewritten(ref, rewrites, notes, host)
    source = ep.source if ep.explicit else f"default (upstream of {ns}, tried last)"
    return endpoint(
        f"{scheme}://{host}{path}", host, "upstream" if is_default else "mirror", source, repo, state.proxy_env,
        capabilities=_DEFAULT_CAPS if is_default else _MIRROR_CAPS,
        tls=_tls(scheme, skip, ca, client, ep.source), credentials=_credential_source(state, host),
        http_fallback=fallback, query=ns_query(ns) if is_mirror(host, ns) else "",
    )


def _mirror_rewrites(state: K3sState, ref: Reference) -> list[Rewrite]:
    mirrors = state.registries.mirrors
    mirror = mirrors.get(ref.domain) or mirrors.get("*")
    return list(mirror.rewrites) if mirror is not None else []


def _planned_route(state: K3sState, ref: Reference, notes: list[str], findings: list[Finding]) -> list[Endpoint]:
    ns = ref.domain
    name, exp = _planned_lookup(state, ns)
    rewrite_default, _ = rewrites_default_endpoint(state)
    if exp is not None:
        if name == DEFAULT_DIR:
            notes.append(f"no entry for {ns} in {state.registries.path}: the \"*\" entry applies")
        eps = [_expected_endpoint(state, ref, e, is_default=False, rewrite_default=rewrite_default, notes=notes)
               for e in exp.endpoints]
        if exp.default is not None:
            eps.append(_expected_endpoint(state, ref, exp.default, is_default=True, rewrite_default=rewrite_default,
                                          notes=notes))
        else:
            notes.append(f"disable-default-registry-endpoint ({state.no_default_source}): {default_host(ns)} is not tried")
        return eps
    if name:
        # A directory k3s does not manage: containerd reads it as it is.
        gdir = state.generated.dirs[name]
        res = read_hosts_dir(state.host, gdir.path, ns, RUNTIME, containerd_version=state.containerd_version,
                             accept_rewrite=True)
        findings += res.findings
        notes.append(f"containerd reads {gdir.hosts_file} (hand-made, not managed by {state.flavour.name})")
        return [endpoint(e.url, e.host, "upstream" if e.is_default_upstream else "mirror", e.source, ref.path,
                         state.proxy_env, capabilities=e.capabilities,
                         tls=_tls(e.scheme, e.skip_verify, e.ca_files, e.client_pairs, e.source),
                         credentials=_credential_source(state, e.host), http_fallback=e.http_fallback, query=e.query)
                for e in res.entries]
    scheme, host, path, skip = _default_upstream(ns)
    fallback = scheme == "http" and skip is not None
    if fallback:
        scheme = "https"
    notes.append(f"{state.registries.path} configures nothing for {ns}: containerd pulls from {host} directly")
    return [endpoint(f"{scheme}://{host}{path}", host, "upstream", f"default (upstream of {ns})", ref.path, state.proxy_env,
                     capabilities=_DEFAULT_CAPS, tls=_tls(scheme, skip, (), (), f"containerd default for {host}"),
                     credentials=_credential_source(state, host), http_fallback=fallback)]


# -- reference-specific findings -------------------------------------------------------------------


def _mirror_key_findings(state: K3sState, ref: Reference) -> list[Finding]:
    """Pattern 18: a mirror key that names the registry without (or with another) ``:port``."""
    reg, ns = state.registries, ref.domain
    if ns in reg.mirrors:
        return []
    name, port = split_host_port(ns)
    found: list[Finding] = []
    for key, mirror in reg.mirrors.items():
        kname, kport = split_host_port(key_host(key))
        hub_alias = ns == "registry-1.docker.io" and key == "docker.io"
        url_key = key_host(key) != key
        if not hub_alias and (key == "*" or kname != name or (kport == port and not url_key)):
            continue
        fallback = "through the \"*\" entry" if "*" in reg.mirrors else f"from {default_host(ns)} directly"
        why = (f"references written registry-1.docker.io/... are not Docker Hub references for containerd; "
               f"write them as docker.io/{ref.path}" if hub_alias else
               f"the key {key!r} is a URL; containerd picks the hosts dir by the bare host[:port] ({ns})" if url_key else
               f"containerd picks the hosts dir by the exact host[:port] in the image name ({ns}); "
               f"the key {key!r} names a different registry")
        found.append(finding(
            "mirror.not-applied", reg.path, f"{reg.where(mirror.line)}: mirror {key!r} does not apply to {ref.familiar()}",
            f"{why}, so {ref.familiar()} is pulled {fallback} (k3s#10358).",
            evidence={"file": reg.path, "line": mirror.line, "value": key, "image": str(ref), "registry": ns},
            fix=fix("mirror.not-applied", reg.path, f"key the mirror as {ns!r}" if not hub_alias else
                    f"pull docker.io/{ref.path} instead", kind="edit" if not hub_alias else "manual",
                    files=[reg.path], restart=state.restart, detail=f"{key}->{ns}",
                    params={"key": f"mirrors.{key}", "new_key": f"mirrors.{ns}", "line": mirror.line}),
            runtime=RUNTIME,
        ))
    return found


def _cluster_name(host: str) -> bool:
    name = split_host_port(host)[0].lower()
    return name.endswith(_CLUSTER_SUFFIXES)


def _cluster_dns(state: K3sState, ref: Reference, endpoints: list[Endpoint], notes: list[str]) -> list[Finding]:
    """Pattern 18: in-cluster names are resolved with the node's resolver, and may be proxied."""
    found: list[Finding] = []
    for e in endpoints:
        if not _cluster_name(e.host):
            continue
        notes.append(f"{e.host} is a cluster DNS name: containerd runs on the node and resolves it with the node's "
                     "resolver (/etc/resolv.conf), not CoreDNS, so it usually does not resolve; use a name or address "
                     "the node can reach (a NodePort, an ingress, or the Service IP)")
        if e.proxy is not None:
            where = state.proxy_env.sources.get("NO_PROXY") or state.proxy_env.sources.get("HTTPS_PROXY") or "environment"
            file, line = split_where(where)
            found.append(finding(
                "proxy.bypass-missing", e.host, f"in-cluster mirror {e.host} is sent through the proxy {e.proxy}",
                f"The embedded containerd's NO_PROXY ({state.proxy_env.no_proxy or 'unset'}) does not cover {e.host}, so "
                f"requests go to {e.proxy}, which cannot reach cluster services.",
                evidence={"file": file, "line": line, "value": e.host, "proxy": e.proxy,
                          "no_proxy": state.proxy_env.no_proxy},
                fix=fix("proxy.bypass-missing", e.host, "add .svc,.cluster.local to CONTAINERD_NO_PROXY",
                        restart=state.restart, detail=e.host,
                        params={"variable": "CONTAINERD_NO_PROXY", "add": [".svc", f".{state.cluster_domain}"]}),
                runtime=RUNTIME,
            ))
    return found


def _bug_findings(state: K3sState, ref: Reference, dir_name: str, endpoints: list[Endpoint]) -> tuple[list[Endpoint], list[Finding]]:
    """Patterns 19 and 20, raised only when the installed version is known to be affected."""
    found: list[Finding] = []
    reg = state.registries
    mirror = reg.mirrors.get(ref.domain) or (reg.mirrors.get("*") if dir_name in (DEFAULT_DIR, "") else None)
    old, why = rewrites_default_endpoint(state)
    if old and mirror is not None and mirror.rewrites:
        up = next((e for e in endpoints if e.role == "upstream"), None)
        if up is not None and up.repository != ref.path:
            found.append(finding(
                "config.known-bug", reg.path, f"{reg.where(mirror.rewrites[0][2])}: this k3s also rewrites requests to {up.host}",
                f"Known from {why}: k3s before the 2024 hosts.toml releases (v1.26.13, v1.27.10, v1.28.6, v1.29.1) applies "
                f"mirror rewrites to the default endpoint too, so the fallback asks {up.host} for {up.repository} and fails "
                "(`no authorization` / not found) when the mirror is down (k3s#7007). Current releases skip rewrites there.",
                severity="info",
                evidence={"file": reg.path, "line": mirror.rewrites[0][2], "value": up.repository, "version": why},
                fix=fix("config.known-bug", reg.path, "upgrade k3s; to rewrite on the registry itself list it as an extra "
                        "endpoint (for example with :443)", kind="manual", detail=f"rewrite-default@{ref.domain}",
                        params={"issue": "k3s#7007", "workaround": "list the registry as a non-default endpoint"}),
                runtime=RUNTIME,
            ))
    broken, why = wildcard_fallback_broken(state)
    if broken and dir_name == DEFAULT_DIR and endpoints and endpoints[-1].role == "upstream":
        last = endpoints[-1]
        endpoints = endpoints[:-1] + [replace(last, status="skipped", reason="k3s#11857: containerd 2.0 in this release "
                                                                             "does not fall back from the \"*\" mirrors")]
        line = reg.mirrors["*"].line if "*" in reg.mirrors else None
        found.append(finding(
            "config.known-bug", reg.path, f"{reg.where(line)}: the \"*\" mirror never falls back to {last.host} on this release",
            f"Known from {why}: with containerd 2.0 these releases do not try the default endpoint for registries served "
            f"by the _default hosts.toml, so {ref.familiar()} fails with `not found` whenever the mirrors lack it "
            "(k3s#11857, fixed in v1.31.7 and v1.32.3).",
            evidence={"file": reg.path, "line": line, "value": "*", "version": why, "image": str(ref)},
            fix=fix("config.known-bug", reg.path, f"upgrade, or add an explicit mirrors entry for {ref.domain}",
                    kind="manual", detail=f"wildcard@{ref.domain}",
                    params={"issue": "k3s#11857", "workaround": f"mirrors.{ref.domain}"}),
            runtime=RUNTIME,
        ))
    return endpoints, found


def _filter(endpoints: list[Endpoint], ref: Reference) -> tuple[list[Endpoint], list[Finding]]:
    need = ("pull",) if ref.by_digest else ("pull", "resolve")
    out: list[Endpoint] = []
    found: list[Finding] = []
    for e in endpoints:
        missing = [c for c in need if c not in e.capabilities]
        if missing and e.status != "skipped":
            e = replace(e, status="skipped", reason=f"capabilities {list(e.capabilities)} lack {', '.join(missing)}")
            found.append(finding(
                "mirror.skipped", e.host, f"{e.url} is skipped for {ref.familiar()}: no {', '.join(missing)} capability",
                "containerd tries only hosts with pull and resolve for a tag, and pull for a digest.",
                evidence={"file": split_where(e.source)[0], "line": split_where(e.source)[1], "value": list(e.capabilities)},
                runtime=RUNTIME,
            ))
        out.append(e)
    return out, found


# -- the planner -----------------------------------------------------------------------------------


def plan(state: K3sState, ref: Reference) -> tuple[Route, list[Finding]]:
    """The endpoints the embedded containerd tries for ``ref``, in order, and the findings that depend on ``ref``."""
    reg, gen, flavour = state.registries, state.generated, state.flavour.name
    notes: list[str] = []
    findings: list[Finding] = []
    if state.external_runtime:
        return Route(RUNTIME, str(ref), (), mode="external CRI", assumed=state.runtime_endpoint_source,
                     notes=(f"{flavour} runs no containerd of its own: kubelet pulls through {state.runtime_endpoint}",)), []
    if reg.fatal and not gen.exists:
        return Route(RUNTIME, str(ref), (), mode="none", notes=(f"{flavour} does not start: {reg.fatal}",)), []
    if reg.fatal:
        notes.append(f"{reg.path} has errors ({reg.fatal}): {flavour} keeps its last generated files while it runs "
                     "but will not start again until the file is fixed")
    dir_name = ""
    if gen.exists:
        assumed = f"in effect: the files {flavour} generated at its last start ({gen.config_toml})"
        if gen.mode == "hosts.toml":
            endpoints = _generated_route(state, ref, notes, findings)
            dir_name = _dir_for(state, ref)
            mode = f"{flavour} containerd, hosts dirs {':'.join(gen.roots)}"
        elif gen.mode == "legacy":
            endpoints = _legacy_route(state, ref, notes)
            mode = f"{flavour} containerd, mirrors in {gen.config_toml} (k3s before 2024)"
        else:
            scheme, host, path, skip = _default_upstream(ref.domain)
            endpoints = [endpoint(f"{scheme}://{host}{path}", host, "upstream", f"default (no registry configuration in {gen.config_toml})",
                                  ref.path, state.proxy_env, capabilities=_DEFAULT_CAPS, tls=_tls(scheme, skip, (), (), host))]
            mode = f"{flavour} containerd, no registry configuration"
            notes.append(f"{gen.config_toml} has neither config_path nor mirrors" +
                         (f" ({gen.template} replaces k3s's template)" if gen.template else ""))
        if state.stale and not reg.fatal:
            after_notes: list[str] = []
            after = _planned_route(state, ref, after_notes, [])
            notes.append(f"after `{state.restart_command}` the route becomes: " + ", ".join(e.url for e in after))
    else:
        assumed = f"planned from {reg.path}: {flavour} has not generated {gen.config_toml} yet"
        endpoints = _planned_route(state, ref, notes, findings)
        dir_name = _planned_lookup(state, ref.domain)[0]
        mode = f"{flavour} containerd, as generated from registries.yaml"
    findings += _mirror_key_findings(state, ref)
    findings += _cluster_dns(state, ref, endpoints, notes)
    endpoints, bugs = _bug_findings(state, ref, dir_name, endpoints)
    findings += bugs
    endpoints, skipped = _filter(endpoints, ref)
    findings += skipped
    if not any(e.status != "skipped" for e in endpoints):
        notes.append(f"no endpoint can serve {ref.familiar()}")
    if state.embedded_registry:
        notes.append("embedded registry (spegel) enabled: k3s adds this node's registry mirror ahead of the others for "
                     "registries listed in registries.yaml")
    return Route(RUNTIME, str(ref), tuple(endpoints), mode=mode, assumed=assumed, notes=tuple(dict.fromkeys(notes))), findings


def _dir_for(state: K3sState, ref: Reference) -> str:
    """The hosts dir name containerd picks for ``ref`` among the generated ones."""
    for name in dict.fromkeys((host_directory(ref.domain), ref.domain, DEFAULT_DIR)):
        if name in state.generated.dirs:
            return name
    return ""
