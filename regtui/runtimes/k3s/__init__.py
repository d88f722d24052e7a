"""k3s and RKE2: ``registries.yaml`` (:mod:`.registries`), the hosts.toml files k3s writes from it
(:mod:`.expected`) and the ones it wrote (:mod:`.generated`), credentials (:mod:`.auth`), the
embedded containerd's proxy environment (:mod:`.proxy`), releases and their bugs (:mod:`.versions`),
rewrites (:mod:`.rewrites`) and the planner (:mod:`.routes`). The service itself (flavour, unit,
config.yaml, flags) is read by :mod:`regtui.config.k3sservice`, which the kubelet reader shares;
detection (:mod:`regtui.config.k3sflavours`) needs none of it.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own."""

from __future__ import annotations

from typing import Any

from regtui.config.k3sflavours import detect

__all__ = ["detect", "load"]


def __getattr__(name: str) -> Any:
    # The readers and the planner load on the first use of ``load``: detecting needs none of them.
    if name == "load":
        from regtui.runtimes.k3s.loading import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
