"""Route planners: image reference x runtime -> the ordered endpoints that runtime would try.

One module per runtime (``docker``, ``containerd``, ``crio``, ``k3s``); shared helpers here.
"""

from __future__ import annotations

from regtui.model import Endpoint, TLSInputs
from regtui.net.proxy import ProxyEnv, decide

__all__ = ["endpoint"]


def endpoint(
    url: str,
    host: str,
    role: str,
    source: str,
    repository: str,
    proxy_env: ProxyEnv,
    *,
    capabilities: tuple[str, ...] = ("pull", "resolve"),
    tls: TLSInputs | None = None,
    credentials: str | None = None,
    status: str = "untested",
    reason: str = "",
    http_fallback: bool = False,
    query: str = "",
) -> Endpoint:
    """An :class:`Endpoint` with the daemon's proxy decision filled in by Go's rules."""
    decision = decide(proxy_env, url)
    return Endpoint(
        url=url,
        host=host,
        role=role,
        source=source,
        repository=repository,
        capabilities=capabilities,
        tls=tls or TLSInputs(),
        proxy=decision.proxy,
        proxy_reason=decision.reason,
        credentials=credentials,
        status=status,
        reason=reason,
        http_fallback=http_fallback,
        query=query,
    )
