"""containerd: config.toml (v1-v4), the CRI registry settings, hosts.toml directories and the
planner for CRI pulls.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own. Modules,
lowest first: ``model`` (what a reading produces), ``versions`` (installed and config versions,
plugin names), ``cri`` (the CRI registry and image settings), ``legacy`` (legacy mirrors/configs
and their migration), ``hostsdirs`` (the hosts directories read at load time), ``config``
(loading config.toml and its imports), ``routes`` (the CRI planner), ``service`` (detection,
proxy environment, load)."""

from __future__ import annotations

from typing import Any

from regtui.runtimes.containerd.detection import detect

__all__ = ["detect", "load"]


def __getattr__(name: str) -> Any:
    # The readers and the planner load on the first use of ``load``: detecting needs none of them.
    if name == "load":
        from regtui.runtimes.containerd.service import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
