"""Options shared by ``check``, ``pull``, ``fix``, ``report`` and the workbench."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CheckOptions", "RUNTIMES"]

#: Runtimes regtui knows, in the order routes are reported.
RUNTIMES = ("docker", "containerd", "crio", "k3s")


@dataclass(frozen=True)
class CheckOptions:
    """What to check and how; every front end builds one of these."""

    root: str = "/"
    images: tuple[str, ...] = ()
    """Image references as typed; empty means configuration checks without a route."""
    runtime: str = "auto"
    """``docker``, ``containerd``, ``crio``, ``k3s``, ``all`` or ``auto`` (the detected ones)."""
    offline: bool = False
    no_pull: bool = False
    dns_server: str | None = None
    ntp_servers: tuple[str, ...] = ()
    timeout: float = 5.0
    docker_store: str = "auto"
    """``auto`` (detect), ``classic`` (graphdriver) or ``containerd`` (containerd image store)."""
    containerd_version: str | None = None
    """Override the installed containerd version (``1.7``, ``2.1.4``); detected when ``None``."""
    platform: str | None = None
    concurrency: int | None = None
    state_dir: str | None = None
    logs_since_hours: float = 24.0
    """How far back the runtimes' logged pull errors are read (0: not read)."""
    extra: dict[str, str] = field(default_factory=dict)
