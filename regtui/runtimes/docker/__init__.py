"""Docker Engine (dockerd) and the Docker CLI: daemon.json, the daemon's unit and flags, certs.d,
the CLI's config.json credentials, and the planner for both image stores.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own."""

from __future__ import annotations

from typing import Any

from regtui.runtimes.docker.detection import detect

__all__ = ["detect", "load"]


def __getattr__(name: str) -> Any:
    # The readers and the planner load on the first use of ``load``: detecting needs none of them.
    if name == "load":
        from regtui.runtimes.docker.runtime import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
