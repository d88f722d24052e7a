"""The fix engine's records: a plan, what applying or undoing it did, and the errors it raises.

Everything here is plain data. A :class:`FixPlan` says exactly what would change: files with
their bytes before and after (``None`` for absent), commands with what they restart, or the
steps to take by hand. Nothing in this module does I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from regtui import redact
from regtui.model import Finding

__all__ = [
    "FixError",
    "PlanRefused",
    "ApplyRefused",
    "UndoRefused",
    "UnsafePath",
    "FileChange",
    "CommandStep",
    "Check",
    "FixPlan",
    "Preview",
    "ApplyResult",
    "UndoResult",
    "BackupInfo",
    "sha256",
    "error_text",
]


class KeyPathLookup:
    """``get``/``has`` by key path over a parsed document's ``data`` (editors share this)."""

    data: Any

    def get(self, path: tuple[Any, ...], default: Any = None) -> Any:
        """The plain value at ``path`` (``default`` when absent)."""
        node: Any = self.data
        for k in path:
            try:
                node = node[k]
            except (KeyError, IndexError, TypeError):
                return default
        return node

    def has(self, path: tuple[Any, ...]) -> bool:
        """A value exists at ``path``."""
        sentinel = object()
        return self.get(path, sentinel) is not sentinel


class FixError(Exception):
    """Base of every error the fix engine raises on purpose (its message is for the user)."""


class PlanRefused(FixError):
    """No safe plan exists for this finding here (the reason says why, and what to do instead)."""


class ApplyRefused(FixError):
    """Apply stopped before writing anything (file changed since planning, validation failed...)."""


class UndoRefused(FixError):
    """Undo stopped before restoring anything (a file changed after the fix, unknown backup...)."""


class UnsafePath(FixError):
    """A path to write resolves outside the root or through a symbolic link."""


def sha256(data: bytes | None) -> str | None:
    """Hex SHA-256 of ``data``; ``None`` for an absent file."""
    return None if data is None else hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileChange:
    """One file the fix creates, changes or deletes."""

    path: str
    """Host path (absolute, as on the host; written under the root)."""
    before: bytes | None
    """The bytes on disk when planned; ``None`` when the file does not exist."""
    after: bytes | None
    """The bytes to write; ``None`` to delete the file."""
    mode: int | None = None
    """Permission bits for a file the fix creates (an existing file keeps its own)."""
    secret: bool = False
    """The file holds credentials: previews mask more aggressively."""
    note: str = ""
    """One line shown above the diff (``certificate: CN=..., SHA-256 ...``)."""

    @property
    def action(self) -> str:
        """``create``, ``modify`` or ``delete``."""
        if self.before is None:
            return "create"
        return "delete" if self.after is None else "modify"


@dataclass(frozen=True)
class CommandStep:
    """A command a ``command`` fix runs (only on explicit confirmation)."""

    command: str
    """Exactly what runs (``sh -c``), under ``chroot ROOT`` when the root is not this machine's."""
    effect: str
    """What it changes or restarts, in words."""
    runnable: bool = True
    why_not: str = ""
    """Why it cannot run as is (a placeholder to fill in, a command regtui must not run)."""


@dataclass(frozen=True)
class Check:
    """One validation of a planned or applied change."""

    name: str
    """``re-parse /etc/docker/daemon.json``, ``containerd config dump``, ``re-check``..."""
    status: str
    """``ok``, ``failed``, ``unavailable`` (validator not installed or too old) or ``skipped``."""
    detail: str = ""


@dataclass(frozen=True)
class FixPlan:
    """What applying the fix of one finding would do. Empty (no changes, no commands) means nothing to do."""

    fix_id: str
    code: str
    subject: str
    summary: str
    kind: str
    """``edit``, ``command`` or ``manual``."""
    runtime: str | None = None
    changes: tuple[FileChange, ...] = ()
    commands: tuple[CommandStep, ...] = ()
    steps: str = ""
    """For ``manual`` fixes (and refusals): what to do by hand, with the evidence."""
    restart: str = "none"
    """What must happen for the change to take effect (``none``, ``reload docker``...)."""
    restart_command: str = ""
    """The command that does it (offered, run only on confirmation)."""
    confirm: str = ""
    """What the user must read before agreeing (a CA's subject and fingerprint)."""
    notes: tuple[str, ...] = ()
    blocked: str = ""
    """Why this plan must not be applied (validation failed, unsupported here); empty when it may."""
    checks: tuple[Check, ...] = ()
    """Validation done while planning (re-parse with regtui's readers, predicted re-check)."""
    remove_dirs: tuple[str, ...] = ()
    """Directories (host paths) the fix empties and then removes, deepest first."""
    predicted_gone: bool | None = None
    """Whether the offline re-check on the planned files no longer reports the finding (``None``: not knowable offline)."""
    finding: Finding | None = field(default=None, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        """Nothing to write and nothing to run: the finding needs no change here."""
        return not self.changes and not self.commands and not self.remove_dirs

    @property
    def can_apply(self) -> bool:
        """Apply may proceed (it still re-checks everything before writing)."""
        if self.blocked or self.kind == "manual":
            return False
        if self.kind == "command":
            return any(c.runnable for c in self.commands)
        return not self.empty

    @property
    def files(self) -> tuple[str, ...]:
        """Host paths written or deleted."""
        return tuple(c.path for c in self.changes)


@dataclass(frozen=True)
class Preview:
    """What a front end shows before applying (redacted): the shape the workbench's fix modal reads."""

    kind: str
    """``edit``, ``command`` or ``manual``."""
    diff: str = ""
    """Unified diff of the edit."""
    command: str = ""
    """The command a ``command`` fix runs."""
    steps: str = ""
    """What to do by hand (``manual``), or what the preview could not show."""
    restart: str = "none"
    can_apply: bool = False
    """The engine can apply this fix here."""
    note: str = ""
    """Notes, checks, what to confirm, and why apply is not possible, in lines."""
    plan: FixPlan | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ApplyResult:
    """Outcome of applying one plan."""

    ok: bool
    """Written (or run) and, where it can be known, the finding is gone."""
    message: str
    backup_id: str | None = None
    applied: bool = False
    """Something was written or run (``ok`` may still be false when the finding stayed)."""
    gone: bool | None = None
    """The re-check no longer reports the finding; ``None`` when it cannot tell (network finding offline)."""
    checks: tuple[Check, ...] = ()
    written: tuple[str, ...] = ()
    restart: str = "none"
    restart_command: str = ""
    outputs: tuple[dict[str, Any], ...] = ()
    """For command fixes: ``{command, returncode, output}`` per command run."""


@dataclass(frozen=True)
class UndoResult:
    """Outcome of undoing one backup."""

    ok: bool
    message: str
    backup_id: str
    restored: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupInfo:
    """One backup folder, as ``regtui undo --list`` shows it."""

    id: str
    created_at: str
    fix_id: str
    code: str
    summary: str
    status: str
    """``writing``, ``applied``, ``interrupted`` (killed part-way: undo restores), ``rolled-back`` or ``undone``."""
    files: tuple[str, ...]
    path: str
    """Where the backup folder is (a real path, not a host path)."""
    note: str = ""
    """The note of the last event (why it is ``interrupted``, what a recovery found)."""


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an unexpected exception, redacted (its message may quote a file's contents)."""
    return redact.text(f"{type(exc).__name__}: {exc}")
