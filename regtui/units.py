"""Byte sizes as every output shows them: decimal units (B, kB, MB, GB), as ``docker pull`` and
registries do, so the workbench, the pull's text, its progress lines and the reports give one
figure for one layer."""

from __future__ import annotations

from typing import Any

__all__ = ["human_bytes"]


def human_bytes(n: Any) -> str:
    """``n`` bytes in the unit that fits (``512 B``, ``300.0 kB``, ``22.5 MB``); ``-`` when not a number."""
    try:
        x = float(n)
    except (TypeError, ValueError):
        return "-"
    if abs(x) < 1000:
        return f"{x:.0f} B"
    for unit in ("kB", "MB"):
        x /= 1000
        if abs(x) < 1000:
            return f"{x:.1f} {unit}"
    return f"{x / 1000:.1f} GB"
