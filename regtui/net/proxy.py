"""Go's proxy rules (``golang.org/x/net/http/httpproxy``), as dockerd, containerd, CRI-O, k3s
and skopeo apply them, so regtui predicts the *daemon's* proxy use, not Python's.

- The uppercase variable wins (the first non-empty of ``HTTPS_PROXY``, ``https_proxy``).
- ``https://`` targets use only HTTPS_PROXY, ``http://`` only HTTP_PROXY; ALL_PROXY is ignored.
- A proxy value without scheme or host gets ``http://`` prepended.
- ``localhost`` and loopback IPs are never proxied.
- NO_PROXY: ``*`` matches all; CIDRs match IP-literal hosts only (no DNS); ``IP[:port]`` exact;
  ``example.com`` matches it and subdomains, ``.example.com`` and ``*.example.com`` subdomains only;
  an entry with ``:port`` matches only that port (default ports filled in from the scheme).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from regtui import redact

__all__ = ["ProxyEnv", "ProxyDecision", "from_environ", "decide", "parse_proxy", "PROXY_VARS"]

#: The variables Go reads, uppercase first (the order of precedence).
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")
_DEFAULT_PORT = {"http": "80", "https": "443"}


@dataclass(frozen=True)
class ProxyEnv:
    """The proxy settings one process sees, and where each came from."""

    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Every proxy variable as set (both cases), before precedence."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Variable name -> where it was set (``path:line``, ``environment``, ``daemon.json``)."""
    label: str = ""
    """Whose view this is (``dockerd``, ``containerd``, ``shell``)."""

    def effective(self) -> dict[str, str]:
        """The three values Go uses, redacted, for display."""
        return {"HTTP_PROXY": redact.url(self.http_proxy) or "", "HTTPS_PROXY": redact.url(self.https_proxy) or "",
                "NO_PROXY": self.no_proxy}


def _get_any(env: Mapping[str, str], *names: str) -> tuple[str, str | None]:
    for n in names:
        v = env.get(n, "")
        if v:
            return v, n
    return "", None


def from_environ(env: Mapping[str, str], sources: Mapping[str, str] | None = None, label: str = "") -> ProxyEnv:
    """Build a :class:`ProxyEnv` from an environment mapping with Go's precedence."""
    variables = {k: env[k] for k in PROXY_VARS if k in env}
    http, _ = _get_any(env, "HTTP_PROXY", "http_proxy")
    https, _ = _get_any(env, "HTTPS_PROXY", "https_proxy")
    no, _ = _get_any(env, "NO_PROXY", "no_proxy")
    return ProxyEnv(http, https, no, variables, dict(sources or {}), label)


@dataclass(frozen=True)
class ProxyDecision:
    """Whether and through what a request to one URL goes, and why."""

    proxy: str | None
    """The proxy URL with credentials masked, or ``None`` for a direct connection."""
    reason: str
    """In words: ``HTTPS_PROXY``, ``NO_PROXY entry '.lab.test' matches``, ``loopback: never proxied``."""
    variable: str | None = None
    """Which variable selected the proxy (``HTTPS_PROXY``)."""
    no_proxy_match: str | None = None
    """The NO_PROXY entry that matched, when one did."""
    url: str | None = field(default=None, repr=False)
    """The proxy URL with credentials, for the HTTP client only; never printed."""


def parse_proxy(value: str) -> str | None:
    """Go's ``parseProxy``: a value without scheme or host gets ``http://``; ``None`` if empty/invalid."""
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        candidate = "http://" + value
        try:
            urlsplit(candidate).port
        except ValueError:
            return None
        return candidate
    try:
        parts.port
    except ValueError:
        return None
    return value


def _split_host_port(s: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort`` for the forms NO_PROXY uses; ``None`` when there is no port."""
    if s.startswith("["):
        end = s.find("]")
        if end != -1 and s[end + 1:end + 2] == ":":
            return s[1:end], s[end + 2:]
        return None
    if s.count(":") == 1:
        host, port = s.split(":")
        return host, port
    return None


def _ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(s.strip("[]"))
    except ValueError:
        return None


def _idna(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def no_proxy_match(no_proxy: str, host: str, port: str) -> str | None:
    """The NO_PROXY entry that exempts ``host:port``, or ``None`` (Go's ``useProxy`` inverted)."""
    ip = _ip(host)
    addr = host.strip().lower()
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return "*"
        if "/" in entry:
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                net = None
            if net is not None:
                if ip is not None and ip.version == net.version and ip in net:
                    return raw.strip()
                continue
        hp = _split_host_port(entry)
        if hp:
            phost, pport = hp
            if not phost:
                continue
        else:
            phost, pport = entry, ""
        pip = _ip(phost)
        if pip is not None:
            if ip is not None and ip == pip and (not pport or pport == port):
                return raw.strip()
            continue
        if phost.startswith("*."):
            phost = phost[1:]
        match_host = not phost.startswith(".")
        if match_host:
            phost = "." + phost
        phost = _idna(phost)
        if addr.endswith(phost) or (match_host and addr == phost[1:]):
            if not pport or pport == port:
                return raw.strip()
    return None


def decide(env: ProxyEnv, url: str) -> ProxyDecision:
    """The proxy Go would use for a request to ``url`` in a process with ``env``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = str(parts.port) if parts.port else _DEFAULT_PORT.get(scheme, "")
    except ValueError:
        port = _DEFAULT_PORT.get(scheme, "")
    if scheme == "https":
        value, variable = env.https_proxy, "HTTPS_PROXY"
        other = env.http_proxy
    elif scheme == "http":
        value, variable = env.http_proxy, "HTTP_PROXY"
        other = ""
    else:
        return ProxyDecision(None, f"scheme {scheme!r} is never proxied")
    proxy = parse_proxy(value) if value else None
    if proxy is None:
        if other and scheme == "https":
            return ProxyDecision(None, "direct: HTTPS_PROXY is not set (HTTP_PROXY is never used for https)")
        return ProxyDecision(None, f"direct: {variable} is not set")
    if host == "localhost":
        return ProxyDecision(None, "direct: localhost is never proxied")
    ip = _ip(host)
    if ip is not None and ip.is_loopback:
        return ProxyDecision(None, "direct: loopback addresses are never proxied")
    match = no_proxy_match(env.no_proxy, host, port)
    if match is not None:
        return ProxyDecision(None, f"direct: NO_PROXY entry {match!r} matches", no_proxy_match=match)
    return ProxyDecision(redact.url(proxy), f"via {variable}", variable=variable, url=proxy)
