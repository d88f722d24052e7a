"""The fix engine: every suggested fix is planned, previewed as a diff, applied safely, re-checked and undoable.

Shared by ``regtui fix``/``regtui undo`` and the workbench. Pure core: no textual, no rich.

One finding, end to end::

    from regtui import fixes
    p = fixes.plan(finding, host, options=options, probes=report.probes)   # pure: nothing written
    print(fixes.render(p))                     # unified diff (secrets masked) / command / steps
    if p.can_apply and user_agrees(p.confirm):  # p.confirm: e.g. the CA fingerprint to check
        result = fixes.apply(p, options, host=host)  # backup, validate, atomic write, re-check
        result.backup_id, result.gone          # gone: True / False / None (cannot tell offline)
    fixes.undo(result.backup_id, options, host=host)  # byte-for-byte; refuses if edited since

``preview(finding, options)``, ``apply(finding, options)`` and ``undo(backup_id, options)`` also
accept just a finding and the check options (the workbench's calling convention): they plan on
the spot with the root and state directory the options name.

Rules the engine keeps:

- a plan holds the exact bytes before and after; apply refuses when a file changed since;
- nothing outside the root is written: paths are resolved chroot-style and re-checked on disk,
  and no symbolic link is written through;
- every change re-parses with regtui's reader and the whole offline check runs on the planned
  files before anything is written; the runtime's own validator runs on the temporary file;
- secrets never appear in a preview (the files written keep them, of course).
"""

from __future__ import annotations

from regtui.fixes._dropin import EnvFile, UnitFile
from regtui.fixes._engine import (apply, list_backups, plan, preview, recheck, render, restart_command, run_command,
                                  same_finding, undo)
from regtui.fixes._model import (ApplyRefused, ApplyResult, BackupInfo, Check, CommandStep, FileChange, FixError,
                                 FixPlan, PlanRefused, Preview, UndoRefused, UndoResult, UnsafePath)
from regtui.fixes._jsonedit import JsonDoc
from regtui.fixes._recover import recover
from regtui.fixes._text import decode, encode, unified_diff
from regtui.fixes._tomledit import TomlDoc
from regtui.fixes._validate import RunResult, Runner, run_validator, subprocess_runner
from regtui.fixes._yamledit import YamlDoc

__all__ = [
    "plan",
    "preview",
    "render",
    "apply",
    "undo",
    "list_backups",
    "recover",
    "recheck",
    "same_finding",
    "restart_command",
    "run_command",
    "FixPlan",
    "FileChange",
    "CommandStep",
    "Check",
    "Preview",
    "ApplyResult",
    "UndoResult",
    "BackupInfo",
    "FixError",
    "PlanRefused",
    "ApplyRefused",
    "UndoRefused",
    "UnsafePath",
    "Runner",
    "RunResult",
    "subprocess_runner",
    "run_validator",
    # The format-preserving editors the planners use, and the text codec that keeps a file's encoding.
    "JsonDoc",
    "TomlDoc",
    "YamlDoc",
    "UnitFile",
    "EnvFile",
    "decode",
    "encode",
    "unified_diff",
]
