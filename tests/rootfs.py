"""Fake host roots for tests: write a tree of files under a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping


def write_tree(root: Path, files: Mapping[str, str | bytes], mode: int | None = None) -> Path:
    """Create ``files`` (host path -> content) under ``root``; returns ``root``.

    Paths are host paths (``/etc/docker/daemon.json``); parent directories are created.
    A path ending in ``/`` creates an empty directory.
    """
    for host_path, content in files.items():
        target = root / host_path.lstrip("/")
        if host_path.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        if mode is not None:
            os.chmod(target, mode)
    return root


def line_of(text: str, needle: str) -> int:
    """1-based line number of the first line containing ``needle`` (for asserting evidence lines)."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in text")
