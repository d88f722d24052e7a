"""TLS endpoints of the certificates panel: every endpoint a pull touches, as one runtime talks to it.

:class:`Target` is one endpoint for one runtime with the TLS inputs that apply; targets come from
the routes, from extra endpoints other probes recorded (blob redirects) and from token realms.
:func:`install_target` says where that runtime would read a CA for it (the fix's file).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from regtui.model import Endpoint, TLSInputs
from regtui.net.proxy import decide
from regtui.probecontext import ProbeContext
from regtui.refs import ReferenceError, parse

#: At most this many endpoints are probed in one check (a bounded loop over hostile configs).
MAX_TARGETS = 256
DEFAULT_PORT = {"https": 443, "http": 80}
_RUNTIME_CA_HOME = {
    "docker": "/etc/docker/certs.d",
    "crio": "/etc/containers/certs.d",
    "podman": "/etc/containers/certs.d",
}


@dataclass(frozen=True)
class Target:
    """One TLS endpoint as one runtime will talk to it."""

    runtime: str
    image: str
    role: str
    """``mirror``, ``upstream``, ``p2p``, ``token-realm`` or ``blob-redirect``."""
    url: str
    host: str
    """Host name or IP (no brackets)."""
    port: int
    tls: TLSInputs
    config_host: str
    """``host[:port]`` of the endpoint whose TLS settings apply (the registry endpoint for a realm)."""
    config_url: str
    """URL of that endpoint (a hosts.toml ``[host."..."]`` key)."""
    source: str
    proxy_url: str | None = field(default=None, repr=False)
    """The daemon's proxy for this URL, with credentials (for the connection only)."""
    proxy_shown: str | None = None
    api_path: str = "/v2/"
    use_tls: bool = True
    endpoint_key: str = ""
    """``Endpoint.key`` of the route endpoint this target belongs to (a realm or redirect: its parent's)."""
    endpoint_label: str = ""
    """That endpoint in words (URL, where configured, trust inputs), for findings."""

    @property
    def hostport(self) -> str:
        """``host:port`` (IPv6 in brackets): the finding subject."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def key(self, proxied: bool = True) -> tuple[Any, ...]:
        """Captures are shared by targets with the same key."""
        return (self.host.lower(), self.port, self.proxy_url if proxied else None, self.tls.client_cert, self.use_tls)


def _split(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an endpoint URL, or ``None`` when it is not http(s)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORT or not parts.hostname:
            return None
        return scheme, parts.hostname, parts.port or DEFAULT_PORT[scheme], parts.path
    except ValueError:
        return None


def _target(ctx: ProbeContext, runtime: str, image: str, role: str, url: str, tls_inputs: TLSInputs,
            config_host: str, config_url: str, source: str, endpoint_key: str = "", endpoint_label: str = "") -> Target | None:
    split = _split(url)
    if split is None:
        return None
    scheme, hostname, port, path = split
    view = ctx.view(runtime)
    decision = decide(view.proxy_env, url) if view is not None else None
    api_path = path.rstrip("/") + "/" if role not in ("token-realm", "blob-redirect") else None
    return Target(runtime, image, role, url, hostname, port, tls_inputs, config_host, config_url, source,
                  decision.url if decision else None, decision.proxy if decision else None,
                  api_path or "", scheme == "https", endpoint_key, endpoint_label)


def route_targets(ctx: ProbeContext) -> list[Target]:
    out: list[Target] = []
    for route in ctx.routes:
        for ep in route.tried():
            t = _target(ctx, route.runtime, route.image, ep.role, ep.url, ep.tls, ep.host, ep.url, ep.source,
                        ep.key, ep.label())
            if t is not None:
                out.append(t)
    return out


def extra_targets(ctx: ProbeContext, known: list[Target]) -> list[Target]:
    """Blob redirect hosts (and any other extra endpoints) other probes recorded."""
    out: list[Target] = []
    by_url = {t.url: t for t in known}
    runtimes = sorted({r.runtime for r in ctx.routes})
    for item in list(ctx.observations.get("extra_endpoints", []) or [])[:MAX_TARGETS]:
        runtime, url, parent, role = None, None, None, "blob-redirect"
        if isinstance(item, str):
            url = item
        elif isinstance(item, Endpoint):
            url, role = item.url, item.role or role
            parent = Target("", "", role, item.url, "", 0, item.tls, item.host, item.url, item.source,
                            endpoint_key=item.key, endpoint_label=item.label())
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Endpoint):
            runtime, ep = str(item[0]), item[1]
            url, role = ep.url, ep.role or role
            parent = Target(runtime, "", role, ep.url, "", 0, ep.tls, ep.host, ep.url, ep.source,
                            endpoint_key=ep.key, endpoint_label=ep.label())
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            url, runtime, role = item["url"], item.get("runtime"), str(item.get("role") or role)
            parent = by_url.get(str(item.get("from") or ""))
        if not url:
            continue
        for rt in ([runtime] if runtime else ([parent.runtime] if parent and parent.runtime else runtimes)):
            base = parent if parent is not None else next((t for t in known if t.runtime == rt), None)
            tls_inputs = base.tls if parent is not None and base is not None else TLSInputs()
            image = base.image if base is not None else ""
            t = _target(ctx, rt, image, role, url, tls_inputs, base.config_host if base else "",
                        base.config_url if base else "", f"observed: {role}",
                        base.endpoint_key if parent is not None and base is not None else "",
                        base.endpoint_label if parent is not None and base is not None else "")
            if t is not None and t.use_tls:
                out.append(t)
    return out


def realm_target(ctx: ProbeContext, parent: Target, realm: str) -> Target | None:
    """The token realm as one more endpoint, with the TLS inputs of the endpoint that challenged."""
    t = _target(ctx, parent.runtime, parent.image, "token-realm", realm, parent.tls, parent.config_host,
                parent.config_url, f"WWW-Authenticate from {parent.url}", parent.endpoint_key, parent.endpoint_label)
    return t if t is not None and t.use_tls else None


def install_target(ctx: ProbeContext, t: Target) -> dict[str, Any]:
    """Where ``t.runtime`` would read a CA for ``t``: the file to create or edit, and how.

    Docker: ``/etc/docker/certs.d/<host[:port]>/ca.crt`` (the image's registry directory with
    the containerd image store, whose mirrors share it; its ``hosts.toml`` when one is in use); CRI-O/podman:
    ``/etc/containers/certs.d/<host[:port]>/ca.crt``; containerd: the namespace's ``hosts.toml``
    under ``config_path`` (its ``ca`` key, root level for the upstream or in the endpoint's
    ``[host."..."]`` table); k3s: ``registries.yaml`` ``configs."<host>".tls.ca_file``. The
    directory is the one the runtime looks up: the endpoint's ``host[:port]`` as written in the
    reference (for a token realm, the registry endpoint whose HTTP client fetches the token).
    """
    dir_host = t.config_host or t.hostport
    source_path = t.source.rsplit(":", 1)[0] if ":" in t.source else ""
    view = ctx.view(t.runtime)
    if t.runtime == "docker" and view is not None and view.summary.get("image_store") == "containerd":
        # dockerd's containerd store reads certs.d like containerd: one directory per namespace, mirrors included.
        dir_host = _namespace(t.image) or dir_host
    if t.runtime in _RUNTIME_CA_HOME and not source_path.endswith("/hosts.toml"):
        return {"install_to": posixpath.join(_RUNTIME_CA_HOME[t.runtime], dir_host, "ca.crt"), "via": "certs.d"}
    if t.runtime == "k3s":
        return {"install_to": "/etc/rancher/k3s/registries.yaml", "via": "registries.yaml",
                "key": f'configs."{dir_host}".tls.ca_file', "ca_file": f"/etc/rancher/k3s/{_safe(dir_host)}-ca.crt"}
    # containerd (and dockerd's containerd store when a hosts.toml is in use): the hosts.toml ``ca``.
    namespace = _namespace(t.image) or dir_host
    roots = (view.summary.get("hosts_roots") if view is not None else None) or []
    root = roots[0] if roots else ("/etc/docker/certs.d" if t.runtime == "docker" else "/etc/containerd/certs.d")
    hosts_toml = source_path if source_path.endswith("/hosts.toml") else posixpath.join(root, namespace, "hosts.toml")
    upstream = t.config_host in (namespace, "registry-1.docker.io") or t.role == "upstream"
    return {"install_to": hosts_toml, "via": "hosts.toml ca",
            "hosts_toml_table": "" if upstream else f'host."{_api_base(t.config_url)}"',
            "ca_file": posixpath.join(posixpath.dirname(hosts_toml), f"{_safe(dir_host)}-ca.crt")}


def _safe(hostport: str) -> str:
    return hostport.replace(":", "_").replace("/", "_")


def _namespace(image: str) -> str | None:
    try:
        return parse(image).domain if image else None
    except (ReferenceError, ValueError):
        return None


def _api_base(url: str) -> str:
    """A hosts.toml host key: the endpoint URL without the ``/v2`` containerd appends."""
    return url[:-3] if url.endswith("/v2") else url.rstrip("/")
