"""Offline proxy findings, by Go's rules, on each daemon's own environment.

``proxy.https-missing`` (HTTP_PROXY without HTTPS_PROXY: Go never uses HTTP_PROXY for https),
``proxy.case-conflict`` (upper and lower case disagree: Go takes the uppercase),
``proxy.bypass-missing`` (private or in-cluster endpoints sent through the proxy) and
``proxy.daemon-differs`` (the daemon's view differs from the shell's).
"""

from __future__ import annotations

import ipaddress

from regtui import redact
from regtui.findings import finding, fix
from regtui.model import Finding, Route
from regtui.net.proxy import ProxyEnv, from_environ
from regtui.runtimes.view import RuntimeView

__all__ = ["offline_findings", "restart_for"]

_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local", ".local", ".internal", ".lan", ".home.arpa")
_RESTART = {"docker": "restart docker", "containerd": "restart containerd", "crio": "restart crio",
            "k3s": "restart k3s"}


def restart_for(runtime: str) -> str:
    """What makes a proxy change take effect for ``runtime`` (Go reads proxy variables once)."""
    return _RESTART.get(runtime, "restart the daemon")


def _split_source(src: str) -> tuple[str, int | None]:
    path, _, line = src.rpartition(":")
    if path and line.isdigit():
        return path, int(line)
    return src, None


def _https_missing(view: RuntimeView, env: ProxyEnv, routes: list[Route]) -> list[Finding]:
    if not env.http_proxy or env.https_proxy:
        return []
    https_hosts = sorted({ep.host for r in routes if r.runtime == view.name for ep in r.tried()
                          if ep.url.startswith("https://")})
    var = "HTTP_PROXY" if env.variables.get("HTTP_PROXY") else "http_proxy"
    src = env.sources.get(var, "environment")
    path, line = _split_source(src)
    return [finding(
        "proxy.https-missing", view.name,
        f"{view.name}: HTTP_PROXY is set but HTTPS_PROXY is not; registry traffic (https) goes direct",
        "Since Go 1.16, HTTP_PROXY is never used for https:// requests. Registries are https, so the "
        f"daemon connects directly{' to ' + ', '.join(https_hosts[:5]) if https_hosts else ''}; where only "
        "the proxy can reach them, pulls time out.",
        evidence={"runtime": view.name, "file": path, "line": line, "variable": var,
                  "value": redact.url(env.http_proxy), "https_endpoints": https_hosts},
        runtime=view.name,
        fix=fix("proxy.https-missing", view.name, f"set HTTPS_PROXY next to HTTP_PROXY for {view.name}",
                files=[path] if path.startswith("/") else [], restart=restart_for(view.name),
                params={"runtime": view.name, "variable": "HTTPS_PROXY", "copy_from": var, "source": src}),
    )]


def _case_conflicts(view: RuntimeView, env: ProxyEnv) -> list[Finding]:
    out = []
    for upper in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        lower = upper.lower()
        u, lo = env.variables.get(upper), env.variables.get(lower)
        if u and lo and u != lo:
            src = env.sources.get(lower, "environment")
            path, line = _split_source(src)
            out.append(finding(
                "proxy.case-conflict", f"{view.name}:{upper}",
                f"{view.name}: {upper} and {lower} disagree; Go uses {upper}",
                f"Go programs take {upper} ({redact.url(u)}) and ignore {lower} ({redact.url(lo)}); "
                "Python tools and curl may prefer the lowercase one, so the shell and the daemon behave differently.",
                evidence={"runtime": view.name, "file": path, "line": line, "upper": redact.url(u),
                          "lower": redact.url(lo), "upper_source": env.sources.get(upper, "environment"),
                          "lower_source": src},
                runtime=view.name,
                fix=fix("proxy.case-conflict", f"{view.name}:{upper}", f"make {lower} equal to {upper} (or remove it)",
                        files=[path] if path.startswith("/") else [], restart=restart_for(view.name),
                        params={"runtime": view.name, "variable": lower, "keep": upper}),
            ))
    return out


def _private(host: str) -> str | None:
    """Why ``host`` should bypass a proxy (private address, in-cluster name), or ``None``."""
    name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") else host[1:host.find("]")]
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        lowered = name.lower()
        if any(lowered.endswith(s) for s in _CLUSTER_SUFFIXES) or "." not in lowered:
            return "an in-cluster or single-label name that a proxy outside cannot resolve"
        return None
    if ip.is_private or ip.is_link_local:
        return "a private address"
    return None


def _bypass_missing(routes: list[Route]) -> list[Finding]:
    out = []
    seen: set[tuple[str, str]] = set()
    for route in routes:
        for ep in route.tried():
            if not ep.proxy:
                continue
            why = "a P2P peer" if ep.role == "p2p" else _private(ep.host)
            if not why or (route.runtime, ep.host) in seen:
                continue
            seen.add((route.runtime, ep.host))
            out.append(finding(
                "proxy.bypass-missing", ep.host,
                f"{route.runtime} sends {ep.host} ({why}) through the proxy",
                f"{ep.host} is {why}, but no NO_PROXY entry covers it, so {route.runtime} asks the proxy "
                f"({ep.proxy}) to reach it. Proxies usually cannot, or should not.",
                evidence={"runtime": route.runtime, "endpoint": ep.url, "proxy": ep.proxy, "source": ep.source,
                          "decision": ep.proxy_reason},
                runtime=route.runtime,
                fix=fix("proxy.bypass-missing", ep.host, f"add {ep.host.rsplit(':', 1)[0]} to {route.runtime}'s NO_PROXY",
                        restart=restart_for(route.runtime), detail=route.runtime,
                        params={"runtime": route.runtime, "add": ep.host.rsplit(":", 1)[0]}),
            ))
    return out


def _daemon_differs(view: RuntimeView, shell: ProxyEnv) -> list[Finding]:
    daemon = view.proxy_env.effective()
    theirs = shell.effective()
    diffs = {k: {"daemon": daemon[k], "shell": theirs[k]} for k in daemon if daemon[k] != theirs[k]}
    if not diffs:
        return []
    return [finding(
        "proxy.daemon-differs", view.name,
        f"{view.name}'s proxy settings differ from this shell's ({', '.join(diffs)})",
        "A curl or skopeo run from this shell does not take the path the daemon takes; compare like with like. "
        "regtui predicts and probes with the daemon's settings.",
        evidence={"runtime": view.name, "differences": diffs,
                  "daemon_sources": dict(view.proxy_env.sources)},
        runtime=view.name,
    )]


def offline_findings(views: list[RuntimeView], routes: list[Route], shell_environ: dict[str, str]) -> list[Finding]:
    """All offline proxy findings for these runtimes."""
    shell = from_environ(shell_environ, label="shell")
    out: list[Finding] = []
    for view in views:
        env = view.proxy_env
        out += _https_missing(view, env, routes)
        out += _case_conflicts(view, env)
        out += _daemon_differs(view, shell)
    out += _bypass_missing(routes)
    return out
