"""The guided fix's back end: preview, apply and undo through the fix engine (``regtui.fixes``).

The workbench never edits a file itself. This adapter asks the fix engine for a preview
(unified diff, command or manual steps), applies it on confirmation and undoes the last one.
When the engine is not in this version, previews fall back to what the finding itself says
(its fix summary and kind) and apply is unavailable, said in words.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol

from regtui import redact
from regtui.fixes import Preview
from regtui.options import CheckOptions

__all__ = ["Applied", "FixBackend", "EngineFixes", "NOT_BUILT_FIXES"]

NOT_BUILT_FIXES = "previewing and applying fixes is not built in this version"


@dataclass(frozen=True)
class Applied:
    """Outcome of apply or undo."""

    ok: bool
    message: str
    backup_id: str | None = None


class FixBackend(Protocol):
    """Preview, apply and undo fixes (blocking: called from thread workers)."""

    available: bool

    def preview(self, finding: Any, options: CheckOptions, probes: Any = None) -> Preview:
        """Preview the fix of ``finding`` (a :class:`~regtui.model.Finding`); ``probes`` are the report's."""

    def apply(self, finding: Any, options: CheckOptions, probes: Any = None) -> Applied:
        """Back up, write, and return the backup id."""

    def undo(self, backup_id: str, options: CheckOptions) -> Applied:
        """Restore the files of ``backup_id``."""


def _fallback(finding: Any, note: str) -> Preview:
    fx = finding.fix
    steps = f"{fx.summary}\n\n{finding.detail}" if fx else finding.detail
    return Preview(kind=fx.kind if fx else "manual", steps=redact.text(steps), restart=fx.restart if fx else "none",
                   can_apply=False, note=note)


class EngineFixes:
    """The fix engine of this version, if any (``regtui.fixes``: ``plan``/``preview``/``apply``/``undo``)."""

    def __init__(self) -> None:
        import regtui.engine  # noqa: F401  (registers the check the fix engine re-runs: regtui.checker)

        self._mod: Any = None
        # The fix package's public names (a build without it falls back to the finding's own words).
        for name in ("regtui.fixes",):
            try:
                mod = importlib.import_module(name)
            except ModuleNotFoundError:
                continue
            if all(hasattr(mod, n) for n in ("preview", "apply", "undo")):
                self._mod = mod
                break
        self.available = self._mod is not None

    def preview(self, finding: Any, options: CheckOptions, probes: Any = None) -> Preview:
        """The engine's preview, or the finding's own words when the engine is missing."""
        if finding.fix is None:
            return Preview(kind="manual", steps=redact.text(finding.detail), note="this finding has no suggested fix")
        if not self.available:
            return _fallback(finding, NOT_BUILT_FIXES)
        result = self._mod.preview(finding, options, probes=probes)
        get = result.get if isinstance(result, dict) else (lambda k, d=None: getattr(result, k, d))
        kind = get("kind", finding.fix.kind)
        return Preview(kind=kind, diff=redact.text(get("diff", "") or ""), command=redact.text(get("command", "") or ""),
                       steps=redact.text(get("steps", "") or get("manual", "") or ""),
                       restart=get("restart", finding.fix.restart) or "none",
                       can_apply=bool(get("can_apply", kind in ("edit", "command"))), note=get("note", "") or "")

    def apply(self, finding: Any, options: CheckOptions, probes: Any = None) -> Applied:
        """Apply through the engine (back up, write, its own re-check); never called when unavailable."""
        if not self.available:
            return Applied(False, NOT_BUILT_FIXES)
        result = self._mod.apply(finding, options, probes=probes)
        get = result.get if isinstance(result, dict) else (lambda k, d=None: getattr(result, k, d))
        ok = bool(get("ok", True) or get("applied", False))
        return Applied(ok, redact.text(str(get("message", "applied") or "")), get("backup_id", None))

    def undo(self, backup_id: str, options: CheckOptions) -> Applied:
        """Undo through the engine."""
        if not self.available:
            return Applied(False, NOT_BUILT_FIXES)
        result = self._mod.undo(backup_id, options)
        get = result.get if isinstance(result, dict) else (lambda k, d=None: getattr(result, k, d))
        return Applied(bool(get("ok", True)), redact.text(str(get("message", "restored") or "")), backup_id)
