"""Offline certificate findings: endpoints whose TLS verification the runtime turns off."""

from __future__ import annotations

from regtui.findings import finding, fix
from regtui.model import Finding, Route

__all__ = ["verify_disabled"]


def verify_disabled(routes: list[Route]) -> list[Finding]:
    """``tls.verify-disabled`` for every https endpoint a runtime will try without verification."""
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for route in routes:
        for ep in route.tried():
            if ep.tls.verify or not ep.url.startswith("https://"):
                continue
            key = (route.runtime, ep.host)
            if key in seen:
                continue
            seen.add(key)
            out.append(finding(
                "tls.verify-disabled", ep.host,
                f"{route.runtime} does not verify the certificate of {ep.host}",
                f"{route.runtime} connects to {ep.url} without checking who answers "
                f"({ep.tls.verify_reason or 'verification disabled'}). Anyone on the path can serve "
                "images; certificate problems there stay invisible to the runtime.",
                evidence={"runtime": route.runtime, "endpoint": ep.url, "source": ep.source,
                          "reason": ep.tls.verify_reason},
                runtime=route.runtime,
                fix=fix("tls.verify-disabled", ep.host, f"trust the registry's CA for {ep.host} instead of skipping verification",
                        detail=route.runtime, params={"runtime": route.runtime, "host": ep.host, "source": ep.source}),
            ))
    return out
