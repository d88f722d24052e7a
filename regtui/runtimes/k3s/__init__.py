"""k3s and RKE2: ``registries.yaml`` (:mod:`.registries`), the hosts.toml files k3s writes from it
(:mod:`.expected`) and the ones it wrote (:mod:`.generated`), credentials (:mod:`.auth`), the
embedded containerd's proxy environment (:mod:`.proxy`), releases and their bugs (:mod:`.versions`),
rewrites (:mod:`.rewrites`) and the planner (:mod:`.routes`). The service itself (flavour, unit,
config.yaml, flags) is read by :mod:`regtui.config.k3sservice`, which the kubelet reader shares.

The engine uses :func:`detect` and :func:`load`; everything else is this runtime's own."""

from __future__ import annotations

from regtui.config.k3sservice import detect
from regtui.runtimes.k3s.loading import load

__all__ = ["detect", "load"]
