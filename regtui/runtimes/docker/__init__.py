"""Docker Engine (dockerd) and the Docker CLI: daemon.json, the daemon's unit and flags, certs.d,
the CLI's config.json credentials, and the planner for both image stores.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own."""

from __future__ import annotations

from regtui.runtimes.docker.runtime import detect, load

__all__ = ["detect", "load"]
