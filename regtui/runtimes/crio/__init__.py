"""CRI-O, podman, skopeo and buildah (containers/image): registries.conf and drop-ins, short names,
auth.json, certs.d, crio.conf, and the planner.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own. Modules:
``registries`` (which registries.conf files, merged), ``validation`` and ``conffile`` (one file),
``records`` (entries, prefix matching), ``shortnames``, ``auth``, ``certs``, ``crioconf``,
``config`` (everything read once), ``routes`` (the planner), ``view`` (detect, load)."""

from __future__ import annotations

from typing import Any

from regtui.runtimes.crio.detection import detect

__all__ = ["detect", "load"]


def __getattr__(name: str) -> Any:
    # The readers and the planner load on the first use of ``load``: detecting needs none of them.
    if name == "load":
        from regtui.runtimes.crio.view import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
