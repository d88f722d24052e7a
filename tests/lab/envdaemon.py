"""A real daemon started with a chosen environment, for ``/proc/<pid>/environ`` ground truth.

:class:`ContainerdWithEnv` is the lab's private containerd (see :mod:`lab.containerd`) started
with extra variables (``HTTPS_PROXY=...``), as systemd would start it from a drop-in.
:func:`proc_root_for` builds a directory that looks like ``/proc`` but holds only the given
PIDs (symlinks to the real ``/proc/<pid>``) plus ``/proc/stat``, so process discovery under test
sees the lab daemon and never a system daemon.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .containerd import Containerd

__all__ = ["ContainerdWithEnv", "proc_root_for"]


class ContainerdWithEnv(Containerd):
    """The lab containerd with ``extra_env`` added to its environment."""

    def __init__(self, workdir: Path | None = None, *, extra_env: Mapping[str, str], **kwargs: object) -> None:
        """Configure (not start); ``kwargs`` are :class:`lab.containerd.Containerd`'s."""
        super().__init__(workdir, **kwargs)  # type: ignore[arg-type]
        self.extra_env = dict(extra_env)

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """The base command with the extra variables in its environment."""
        argv, env = super()._prepare()
        return argv, {**(env or {}), **self.extra_env}


def proc_root_for(directory: Path, pids: list[int]) -> Path:
    """A fake proc root exposing only ``pids`` (symlinks into /proc) and /proc/stat."""
    directory.mkdir(parents=True, exist_ok=True)
    for pid in pids:
        link = directory / str(pid)
        if not link.exists():
            os.symlink(f"/proc/{pid}", link)
    stat = directory / "stat"
    if not stat.exists():
        os.symlink("/proc/stat", stat)
    return directory
