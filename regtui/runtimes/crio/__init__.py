"""CRI-O, podman, skopeo and buildah (containers/image): registries.conf and drop-ins, short names,
auth.json, certs.d, crio.conf, and the planner.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own. Modules:
``registries`` (which registries.conf files, merged), ``validation`` and ``conffile`` (one file),
``records`` (entries, prefix matching), ``shortnames``, ``auth``, ``certs``, ``crioconf``,
``config`` (everything read once), ``routes`` (the planner), ``view`` (detect, load)."""

from __future__ import annotations

from regtui.runtimes.crio.view import detect, load

__all__ = ["detect", "load"]
