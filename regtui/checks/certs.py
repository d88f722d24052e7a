"""Offline certificate findings: endpoints whose TLS verification the runtime turns off."""

from __future__ import annotations

from regtui.findings import finding, fix
from regtui.model import Endpoint, Finding, Route

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
            if route.runtime == "docker" and _builtin_insecure(ep):
                out.append(_always_insecure(route.runtime, ep))
                continue
            out.append(finding(
                "tls.verify-disabled", ep.host,
                f"{route.runtime} does not verify the certificate of {ep.host}",
                f"{route.runtime} connects to {ep.url} without checking who answers "
                f"({ep.tls.verify_reason or 'verification disabled'}). Anyone on the path can serve "
                "images; certificate problems there stay invisible to the runtime.",
                evidence={"runtime": route.runtime, "endpoint": ep.url, "source": ep.source,
                          "reason": ep.tls.verify_reason},
                runtime=route.runtime,
                # No planner writes this one (the CA to trust is the user's to get): steps, as `regtui fix` says.
                fix=fix("tls.verify-disabled", ep.host, f"trust the registry's CA for {ep.host} instead of skipping verification",
                        kind="manual", detail=route.runtime, params={"runtime": route.runtime, "host": ep.host, "source": ep.source}),
            ))
    return out


def _builtin_insecure(ep: Endpoint) -> bool:
    """Whether dockerd skips verifying ``ep`` because of its built-in range, not a configured entry."""
    from regtui.runtimes.docker.model import builtin_insecure_range

    return builtin_insecure_range(ep.tls.verify_reason) is not None


def _always_insecure(runtime: str, ep: Endpoint) -> Finding:
    """dockerd's built-in insecure range (127.0.0.0/8; ::1/128 from Engine 28): information, and no fix.

    moby adds the range at start-up whatever daemon.json says, so no setting turns verification on
    for it; offering an edit would be offering a fix that cannot be applied.
    """
    return finding(
        "tls.verify-disabled", ep.host,
        f"{runtime} does not verify the certificate of {ep.host} (loopback is always insecure to dockerd)",
        f"{runtime} connects to {ep.url} without checking the certificate ({ep.tls.verify_reason}). dockerd adds this "
        "range to its insecure registries itself, so certificate problems there never fail a pull and no daemon.json "
        "setting changes it; reach the registry by a name outside the range if it must be verified.",
        evidence={"runtime": runtime, "endpoint": ep.url, "source": ep.source, "reason": ep.tls.verify_reason},
        severity="info", runtime=runtime,
    )
