"""Build a probe context over a fake root for live-probe tests, never touching this machine's DNS.

Every fake root gets ``/etc/resolv.conf`` (``nameserver 127.0.0.1``) and ``/etc/hosts`` (the
lab names given), so the resolver can never fall back to the machine's files, whose nameserver
is off-host. A test that wants a lab DNS server on a high port passes ``dns_port``: resolv.conf
cannot name a port, so the system resolver's configuration is read from the root and only its
nameserver replaced, exactly as if resolv.conf pointed at that server. With ``dns_server`` too,
that server is the resolver used and the root's (``dns_port``) the DNS panel's comparison.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from regtui.host import Host
from regtui.model import Route
from regtui.net.http import Timeouts
from regtui.net.proxy import ProxyEnv
from regtui.net.resolver import Resolver, read_resolver_config
from regtui.options import CheckOptions
from regtui.probecontext import ProbeContext
from regtui.runtimes.endpoints import endpoint
from regtui.runtimes.view import RuntimeView

__all__ = ["fake_root", "context", "route", "view"]


def fake_root(root: Path, files: Mapping[str, str] | None = None, hosts: Mapping[str, str] | None = None) -> Path:
    """Write resolv.conf, hosts (``name -> ip``) and ``files`` (host path -> text) under ``root``."""
    lines = ["127.0.0.1 localhost"] + [f"{ip} {name}" for name, ip in (hosts or {}).items()]
    content = {"/etc/resolv.conf": "nameserver 127.0.0.1\n", "/etc/hosts": "\n".join(lines) + "\n",
               **(files or {})}
    for host_path, text in content.items():
        target = root / host_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def view(name: str, proxy_env: ProxyEnv | None = None) -> RuntimeView:
    """A runtime view with only a name and a proxy environment."""
    return RuntimeView(name, [f"/test/{name}"], proxy_env=proxy_env or ProxyEnv())


def route(runtime: str, urls: Sequence[str], proxy_env: ProxyEnv | None = None, image: str = "lab/app:latest") -> Route:
    """A route of ``urls`` (the last is the upstream), proxy decisions by Go's rules."""
    env = proxy_env or ProxyEnv()
    eps = []
    for i, url in enumerate(urls):
        host = url.split("://", 1)[1].split("/", 1)[0]
        role = "upstream" if i == len(urls) - 1 else "mirror"
        eps.append(endpoint(url if url.rstrip("/").endswith("/v2") else url.rstrip("/") + "/v2", host, role,
                            "test", "lab/app", env))
    return Route(runtime, image, tuple(eps))


def context(
    root: Path,
    *,
    views: Sequence[RuntimeView] = (),
    routes: Sequence[Route] = (),
    dns_port: int | None = None,
    dns_server: str | None = None,
    ntp_servers: Sequence[str] = (),
    timeout: float = 1.0,
    environ: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
    observations: Mapping[str, object] | None = None,
) -> ProbeContext:
    """A probe context over ``root`` (which :func:`fake_root` prepared)."""
    kwargs = {"clock": clock} if clock else {}
    host = Host(root=root, environ=dict(environ or {}), **kwargs)
    options = CheckOptions(root=str(root), dns_server=dns_server, ntp_servers=tuple(ntp_servers), timeout=timeout,
                           extra=dict(extra or {}))
    cfg = read_resolver_config(host)
    if dns_port is not None:
        cfg = dataclasses.replace(cfg, nameservers=(("127.0.0.1", dns_port),))
    system = Resolver(cfg, timeout)
    # With dns_server, that server replaces the root's resolver and the root's is only the comparison.
    resolver = Resolver.for_host(host, dns_server, timeout) if dns_server else system
    assert all(ip.startswith("127.") for ip, _ in resolver.config.nameservers), "tests stay on loopback"
    return ProbeContext(host, options, list(routes), list(views), resolver, Timeouts(connect=timeout, read=timeout),
                        comparison=system if dns_server else None, observations=dict(observations or {}))
