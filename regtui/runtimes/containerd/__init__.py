"""containerd: config.toml (v1-v4), the CRI registry settings, hosts.toml directories and the
planner for CRI pulls.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own."""

from __future__ import annotations

from regtui.runtimes.containerd.config import detect, load

__all__ = ["detect", "load"]
