"""CRI-O, podman, skopeo and buildah (containers/image): registries.conf and drop-ins, short names,
auth.json, certs.d, and the planner.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own."""

from __future__ import annotations

from regtui.runtimes.crio.registries import detect, load

__all__ = ["detect", "load"]
