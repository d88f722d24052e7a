"""k3s and RKE2: registries.yaml, the hosts.toml files k3s generates from it, the embedded
containerd, and the planner.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own."""

from __future__ import annotations

from regtui.runtimes.k3s.registries import detect, load

__all__ = ["detect", "load"]
