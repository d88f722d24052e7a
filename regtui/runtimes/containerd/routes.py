"""The CRI route: the endpoints containerd tries for one image when kubelet or crictl pulls it.

- ``config_path`` set: the hosts directories (:mod:`regtui.config.hostsdir`), except in
  transfer-service mode with several directories, where containerd looks for one directory
  named by the whole ``config_path`` and finds none (upstream only).
- ``config_path`` empty: the legacy ``mirrors`` (exact namespace, else ``"*"``), scheme-less
  entries get https (http for localhost), the upstream appended unless an entry has the
  namespace's host (``registry-1.docker.io`` for docker.io is appended even after ``docker.io``).
- Tag references need hosts with pull *and* resolve; digest references only pull.
- Mirrors get ``?ns=<registry>``; credentials are those of each endpoint's own host.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from urllib.parse import urlsplit

from regtui import redact
from regtui.config.hostsdir import HostsResolution, misnamed_dirs, resolve_hosts
from regtui.config.hoststoml import HostEntry, default_host, is_localhost, is_mirror, ns_query
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Endpoint, Finding, Route, TLSInputs
from regtui.net.proxy import ProxyEnv
from regtui.refs import Reference
from regtui.runtimes.containerd.model import DEFAULT_HOSTS_DIR, ContainerdConfig, Setting
from regtui.runtimes.endpoints import endpoint

__all__ = ["plan", "needed_capabilities"]

RUNTIME = "containerd"


def needed_capabilities(ref: Reference) -> tuple[str, ...]:
    """What a host needs to be tried: pull+resolve for a tag, pull for a digest."""
    return ("pull",) if ref.by_digest else ("pull", "resolve")


def plan(host: Host, cfg: ContainerdConfig, proxy_env: ProxyEnv, ref: Reference,
         runtime: str = RUNTIME) -> tuple[Route, list[Finding]]:
    """The endpoints containerd's CRI tries for ``ref``, in order, and the findings that depend on ``ref``."""
    if not cfg.starts:
        return _no_route(cfg, ref, runtime, f"containerd does not start: {cfg.why_not}"), []
    if not cfg.cri_loads:
        return _no_route(cfg, ref, runtime, "the CRI plugin does not load (kubelet and crictl get `unknown service "
                                            f"runtime.v1.RuntimeService`): {cfg.why_not}"), []
    if cfg.roots:
        endpoints, notes, findings, mode = _hosts_route(host, cfg, proxy_env, ref, runtime)
    else:
        endpoints, notes, findings, mode = _legacy_route(cfg, proxy_env, ref)
    endpoints, skipped = _filter(endpoints, ref, runtime)
    findings += skipped
    if not any(e.status != "skipped" for e in endpoints):
        verb = "pull" if ref.by_digest else "resolve"
        notes.append(f"no host can {verb} this reference: containerd fails with `no resolve hosts`")
    findings += _misnamed(host, cfg, ref, runtime)
    if cfg.registry.headers:
        notes.append("CRI headers sent to every host: " + ", ".join(
            f"{k}: {redact.value(s.value, k)}" for k, s in cfg.registry.headers.items()))
    assumed = cfg.version_source if cfg.version_assumed else f"containerd {cfg.version_text} ({cfg.version_source})"
    return Route(runtime, str(ref), tuple(endpoints), mode=mode, assumed=assumed, notes=tuple(notes)), findings


def _no_route(cfg: ContainerdConfig, ref: Reference, runtime: str, why: str) -> Route:
    return Route(runtime, str(ref), (), mode="none", assumed=cfg.version_source, notes=(why,))


def _pull_mode_label(cfg: ContainerdConfig) -> str:
    return "transfer service" if cfg.pull_mode == "transfer" else "local pull"


# -- hosts.toml ---------------------------------------------------------------------------------

def _hosts_route(host: Host, cfg: ContainerdConfig, proxy_env: ProxyEnv, ref: Reference,
                 runtime: str) -> tuple[list[Endpoint], list[str], list[Finding], str]:
    notes: list[str] = []
    findings: list[Finding] = []
    version = None if cfg.version_assumed else cfg.version
    if cfg.pull_mode == "transfer" and len(cfg.roots) > 1:
        # The transfer service gets config_path unsplit: one directory that does not exist.
        res = resolve_hosts(host, [cfg.config_path], ref.domain, runtime, containerd_version=version)
        would = resolve_hosts(host, cfg.roots, ref.domain, runtime, containerd_version=version)
        mode = f"containerd CRI, {_pull_mode_label(cfg)}, config_path read as one directory"
        notes.append(f"transfer service: config_path \"{cfg.config_path}\" is used as a single directory, "
                     "so no hosts.toml applies")
        if would.dir is not None:
            findings.append(_not_applied(cfg, would, ref, runtime))
    else:
        res = resolve_hosts(host, cfg.roots, ref.domain, runtime, containerd_version=version)
        mode = f"containerd CRI, {_pull_mode_label(cfg)}, hosts dirs {':'.join(cfg.roots)}"
    if res.dir is not None and res.dir not in cfg.scanned_dirs:
        findings += res.findings
    if res.dir:
        rejected = ", hosts.toml rejected: cert files used" if res.fell_back else ""
        notes.append(f"hosts dir {res.dir} ({res.mode}{rejected})")
    if res.fatal:
        notes.append(f"every pull from {ref.domain} fails: {res.fatal}")
    endpoints = [_hosts_endpoint(cfg, proxy_env, ref, entry) for entry in res.entries]
    return endpoints, notes, findings, mode


def _hosts_endpoint(cfg: ContainerdConfig, proxy_env: ProxyEnv, ref: Reference, entry: HostEntry) -> Endpoint:
    role = "upstream" if entry.host == default_host(ref.domain) else "mirror"
    return endpoint(
        entry.url, entry.host, role, entry.source, ref.path, proxy_env,
        capabilities=entry.capabilities, tls=_entry_tls(entry), credentials=cfg.credential_source(entry.host),
        http_fallback=entry.http_fallback, query=entry.query,
    )


def _entry_tls(entry: HostEntry) -> TLSInputs:
    if entry.scheme == "http":
        return TLSInputs(verify=False, verify_reason="plain HTTP: no TLS", system_roots=False)
    if entry.skip_verify:
        return TLSInputs(verify=False, verify_reason=f"skip_verify = true ({entry.source})", ca_files=entry.ca_files,
                         client_cert=entry.client_pairs)
    trust = "system roots" + (" + " + ", ".join(entry.ca_files) if entry.ca_files else "")
    return TLSInputs(verify=True, verify_reason=trust, ca_files=entry.ca_files, client_cert=entry.client_pairs)


def _not_applied(cfg: ContainerdConfig, would: HostsResolution, ref: Reference, runtime: str) -> Finding:
    mirrors = [e.url for e in would.entries if not e.is_default_upstream]
    subject = would.hosts_file or would.dir or ref.domain
    return finding(
        "mirror.not-applied", subject,
        f"{would.dir} is not used for {ref.domain} (transfer service, multi-directory config_path)",
        f"A local pull would use {would.dir} ({', '.join(mirrors) or 'its TLS settings'}); the transfer service "
        f"reads no hosts directory with config_path \"{cfg.config_path}\", so {ref.familiar()} is pulled from "
        f"{default_host(ref.domain)} directly.",
        evidence={"file": subject, "line": 1, "value": mirrors, "config_path": cfg.config_path,
                  "config_path_source": cfg.config_path_source},
        fix=fix("mirror.not-applied", subject, f"set config_path = \"{cfg.roots[0]}\" or use_local_image_pull = true",
                kind="edit", files=[cfg.path], restart="restart containerd", detail=ref.domain,
                params={"key": "config_path", "value": cfg.roots[0]}),
        runtime=runtime,
    )


# -- legacy mirrors -----------------------------------------------------------------------------

def _legacy_route(cfg: ContainerdConfig, proxy_env: ProxyEnv,
                  ref: Reference) -> tuple[list[Endpoint], list[str], list[Finding], str]:
    """``registryEndpoints``: mirrors of the namespace (or ``"*"``), then the upstream unless present."""
    ns = ref.domain
    mirrors = cfg.registry.mirrors
    setting: Setting | None = mirrors.get(ns) if ns in mirrors else mirrors.get("*")
    raw = [e for e in (setting.value if setting else []) if isinstance(e, str)]
    urls = [e if "://" in e else f"{_default_scheme(_netloc(e))}://{e}" for e in raw]
    notes = []
    if setting is not None and ns not in mirrors:
        notes.append(f"no mirrors entry for {ns}: the \"*\" entry applies ({setting.where})")
    entries: list[tuple[str, str]] = [(u, setting.where) for u in urls]  # type: ignore[union-attr]
    if not any(_netloc(u) == ns for u in urls):
        upstream = default_host(ns)
        entries.append((f"{_default_scheme(upstream)}://{upstream}", f"default (upstream of {ns})"))
    endpoints = [_legacy_endpoint(cfg, proxy_env, ref, url, source) for url, source in entries]
    mode = f"containerd CRI, {_pull_mode_label(cfg)}, legacy registry config (config_path empty)"
    return endpoints, notes, [], mode


def _netloc(url: str) -> str:
    """Go's ``URL.Host``: host[:port] without userinfo."""
    try:
        return urlsplit(url if "://" in url else f"dummy://{url}").netloc.rpartition("@")[2]
    except ValueError:
        return ""


def _default_scheme(netloc: str) -> str:
    return "http" if is_localhost(netloc) else "https"


def _legacy_endpoint(cfg: ContainerdConfig, proxy_env: ProxyEnv, ref: Reference, url: str, source: str) -> Endpoint:
    try:
        parts = urlsplit(url)
        scheme, netloc, path = parts.scheme, _netloc(url), parts.path or "/v2"
    except ValueError:
        scheme, netloc, path = "https", _netloc(url), "/v2"
    api = f"{scheme}://{netloc}{path}"
    role = "upstream" if netloc == default_host(ref.domain) else "mirror"
    return endpoint(
        redact.url(api) or api, netloc, role, source, ref.path, proxy_env,
        capabilities=("pull", "resolve", "referrers"), tls=_legacy_tls(cfg, ref, scheme, netloc),
        credentials=cfg.credential_source(netloc), query=ns_query(ref.domain) if is_mirror(netloc, ref.domain) else "",
    )


def _legacy_tls(cfg: ContainerdConfig, ref: Reference, scheme: str, netloc: str) -> TLSInputs:
    if scheme == "http":
        return TLSInputs(verify=False, verify_reason="plain HTTP: no TLS", system_roots=False)
    tls = cfg.registry.tls.get(netloc) if cfg.version < (2, 0, 0) else None
    if tls is None:
        return TLSInputs(verify=True, verify_reason="system roots")
    value = tls.value
    ca = (value["ca_file"],) if value.get("ca_file") else ()
    client = ((value["cert_file"], value.get("key_file", "")),) if value.get("cert_file") else ()
    if value.get("insecure_skip_verify"):
        return TLSInputs(verify=False, verify_reason=f"insecure_skip_verify = true ({tls.where})", ca_files=ca,
                         client_cert=client)
    reason = "system roots" + (f" + {ca[0]} ({tls.where})" if ca else "")
    return TLSInputs(verify=True, verify_reason=reason, ca_files=ca, client_cert=client)


# -- capability filter and dir names ------------------------------------------------------------

def _filter(endpoints: list[Endpoint], ref: Reference, runtime: str) -> tuple[list[Endpoint], list[Finding]]:
    """Mark hosts without the needed capabilities ``skipped`` (containerd's ``filterHosts``)."""
    need = needed_capabilities(ref)
    kept: list[Endpoint] = []
    findings: list[Finding] = []
    tried = 0
    for e in endpoints:
        missing = [c for c in need if c not in e.capabilities]
        if not missing:
            kept.append(e)
            tried += 1
            continue
        why = (f"capabilities {list(e.capabilities)} lack {' and '.join(missing)}: "
               + ("containerd uses this host for digest references and blobs only" if missing == ["resolve"]
                  else "containerd never pulls from this host"))
        kept.append(replace(e, status="skipped", reason=why))
        findings.append(finding(
            "mirror.skipped", e.host, f"{e.host} skipped for {ref.familiar()}: no {' and '.join(missing)} capability",
            f"{why}. The reference is by {'digest' if ref.by_digest else 'tag'}, so it needs {' and '.join(need)}.",
            evidence={"file": e.source.rsplit(":", 1)[0], "line": _line(e.source), "value": list(e.capabilities),
                      "needed": list(need)},
            runtime=runtime,
        ))
    if not tried and findings:
        verb = "pull" if ref.by_digest else "resolve"
        findings[-1] = replace(findings[-1], severity="error",
                               title=f"no host can {verb} {ref.familiar()}: the pull fails")
    return kept, findings


def _line(source: str) -> int | None:
    tail = source.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _misnamed(host: Host, cfg: ContainerdConfig, ref: Reference, runtime: str) -> list[Finding]:
    """``config.hosts-dir-misnamed``: a dir meant for this registry that containerd will not pick."""
    roots = cfg.roots or [DEFAULT_HOSTS_DIR]
    res = resolve_hosts(host, roots, ref.domain, runtime)
    if res.specific:
        return []
    found = []
    for path in misnamed_dirs(host, roots, ref.domain):
        root = posixpath.dirname(path)
        target = posixpath.join(root, ref.domain)
        found.append(finding(
            "config.hosts-dir-misnamed", path,
            f"{path} does not match {ref.domain}: containerd looks for {target}",
            f"containerd picks the hosts dir by the exact registry host[:port] of the image ({ref.domain}): "
            f"{', '.join(res.candidates)} in that order. {posixpath.basename(path)} is never read for {ref.familiar()}"
            + (f"; {res.dir} is used instead." if res.dir else "; the registry is used with default settings."),
            evidence={"file": path, "line": 1, "value": posixpath.basename(path), "expected": target,
                      "looked_for": res.candidates},
            fix=fix("config.hosts-dir-misnamed", path, f"rename {path} to {target}", files=[path, target],
                    detail=ref.domain, params={"from": path, "to": target, "action": "rename"}),
            runtime=runtime,
        ))
    return found
