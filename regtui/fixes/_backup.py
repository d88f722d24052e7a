"""Backups: one folder per applied fix, with a manifest, so ``undo`` can restore every byte.

Layout (``STATE`` is ``ROOT/var/lib/regtui`` unless ``--state-dir`` says otherwise)::

    STATE/backups/<YYYYmmddTHHMMSSZ>-<fix>/
        manifest.json      what was changed: host path, existed?, SHA-256 before and after,
                           mode, owner, the blob holding the original bytes; directories created
                           and removed; status (writing, applied, rolled-back, undone)
        files/0, files/1   the original bytes (mode 0600: they may hold credentials)

Files that did not exist are recorded as absent, so undo deletes them. The manifest is written
(atomically) before the first change, names every directory and temporary file before it is
created, and is updated after the last change, so a process killed in between leaves a backup that
says what it was doing: the next ``fix --apply``, ``undo`` or ``undo --list`` recovers it (see
``_recover.recover``). A folder without a manifest was killed before it changed anything.
``STATE/lock`` serialises fixes, undos and recoveries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from regtui.fixes._model import BackupInfo, UndoRefused

__all__ = ["BackupStore", "FileRecord", "Manifest", "MANIFEST", "STATE_DIR"]

#: Host path of the default state directory (under the root).
STATE_DIR = "/var/lib/regtui"
MANIFEST = "manifest.json"
#: How long a fix or undo waits for another one holding the lock before it gives up (seconds).
LOCK_WAIT = 60.0
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class FileRecord:
    """One file as it was before the fix and as the fix left it."""

    path: str
    existed: bool
    before_sha256: str | None
    after_sha256: str | None
    """``None`` when the fix deleted the file."""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    blob: str | None = None
    """Name of the file under ``files/`` with the original bytes (``None`` when it did not exist)."""
    temp: str | None = None
    """Name of the temporary file next to it while the fix writes it (recorded before it is created)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


@dataclass
class Manifest:
    """What one applied fix changed."""

    id: str
    fix_id: str
    code: str
    subject: str
    summary: str
    created_at: str
    root: str
    status: str = "writing"
    files: list[FileRecord] = field(default_factory=list)
    dirs_created: list[str] = field(default_factory=list)
    """Host paths of directories the fix created, outermost first."""
    dirs_removed: list[dict[str, Any]] = field(default_factory=list)
    """``{path, mode, uid, gid}`` of directories the fix removed after emptying them."""
    restart: str = "none"
    events: list[dict[str, str]] = field(default_factory=list)
    """``{at, status, note}`` history (rolled back, undone, forced)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        data = dict(self.__dict__)
        data["files"] = [f.to_dict() for f in self.files]
        data["schema"] = "regtui.backup/1"
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "Manifest":
        """Parse a manifest (unknown keys ignored); ``ValueError`` when it does not have a manifest's shape."""
        try:
            files = [FileRecord(**{k: v for k, v in f.items() if k in FileRecord.__dataclass_fields__})
                     for f in data.get("files", [])]
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "files"}
            return cls(files=files, **known)
        except (AttributeError, TypeError) as exc:
            raise ValueError(f"not a backup manifest ({exc})") from None


class BackupStore:
    """The backups folder of one state directory (a real path on this machine)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.dir = self.state_dir / "backups"

    @contextlib.contextmanager
    def lock(self, wait: float = LOCK_WAIT) -> Iterator[None]:
        """Hold the state directory's lock (one fix or undo at a time); ``TimeoutError`` after ``wait`` seconds."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.state_dir / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"another regtui fix or undo has held {path} for {wait:g} s; "
                                           "try again when it has finished") from None
                    time.sleep(0.1)
            yield
        finally:
            os.close(fd)

    def folders(self) -> list[Path]:
        """Every backup folder (real directories directly under ``backups/``), by name."""
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if not p.is_symlink() and p.is_dir())

    def discard(self, backup_id: str) -> bool:
        """Delete a backup folder that holds only what regtui writes there (manifest, its temporary
        file, ``files/<n>``); ``False`` (nothing deleted) when it holds anything else."""
        folder = self.dir / backup_id
        if "/" in backup_id or backup_id in ("", ".", "..") or folder.is_symlink() or not folder.is_dir():
            return False
        entries = set(os.listdir(folder))
        if not entries <= {MANIFEST, f".{MANIFEST}.tmp", "files"}:
            return False
        blobs: list[str] = []
        if "files" in entries:
            files = folder / "files"
            if files.is_symlink() or not files.is_dir():
                return False
            blobs = os.listdir(files)
            if not all(re.fullmatch(r"[0-9]+", b) and (files / b).is_file() and not (files / b).is_symlink()
                       for b in blobs):
                return False
        for b in blobs:
            os.unlink(folder / "files" / b)
        if "files" in entries:
            os.rmdir(folder / "files")
        for name in (MANIFEST, f".{MANIFEST}.tmp"):
            if name in entries:
                os.unlink(folder / name)
        os.rmdir(folder)
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return True

    def new_id(self, stamp: str, fix_id: str) -> str:
        """A fresh backup id: ``<timestamp>-<fix id slug>``, suffixed when taken."""
        slug = _SLUG.sub("_", fix_id).strip("_")[:80] or "fix"
        base = f"{stamp}-{slug}"
        candidate, n = base, 1
        while (self.dir / candidate).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def create(self, manifest: Manifest, originals: list[bytes | None]) -> Path:
        """Write the blobs and the manifest (status ``writing``) of a new backup; returns its folder."""
        folder = self.dir / manifest.id
        folder.mkdir(mode=0o700)
        (folder / "files").mkdir(mode=0o700)
        for record, data in zip(manifest.files, originals):
            if data is None:
                continue
            blob = folder / "files" / str(record.blob)
            fd = os.open(blob, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        self.save(manifest)
        return folder

    def save(self, manifest: Manifest) -> None:
        """Write the manifest atomically."""
        folder = self.dir / manifest.id
        tmp = folder / f".{MANIFEST}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest.to_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / MANIFEST)
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def load(self, backup_id: str) -> Manifest:
        """The manifest of ``backup_id``; :class:`UndoRefused` when there is no such backup."""
        if not backup_id or "/" in backup_id or backup_id in (".", ".."):
            raise UndoRefused(f"{backup_id!r} is not a backup id (see regtui undo --list)")
        path = self.dir / backup_id / MANIFEST
        try:
            return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise UndoRefused(f"no backup {backup_id!r} in {self.dir} (see regtui undo --list)") from None
        except (OSError, ValueError) as exc:
            raise UndoRefused(f"backup {backup_id!r} has an unreadable manifest: {exc}") from None

    def blob(self, backup_id: str, name: str) -> bytes:
        """The original bytes kept in a backup; :class:`UndoRefused` when they are missing or unreadable."""
        if not name or "/" in name or name in (".", ".."):
            raise UndoRefused(f"backup {backup_id!r} names {name!r} as a backup copy, which is not a file in it")
        try:
            return (self.dir / backup_id / "files" / name).read_bytes()
        except OSError as exc:
            raise UndoRefused(f"the backup copy files/{name} of {backup_id!r} cannot be read "
                              f"({exc.strerror or exc}); nothing restored from it") from None

    def list(self) -> list[BackupInfo]:
        """Every backup, oldest first."""
        out: list[BackupInfo] = []
        for folder in sorted(self.dir.iterdir()) if self.dir.is_dir() else []:
            try:
                m = Manifest.from_dict(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
            note = str(m.events[-1].get("note") or "") if m.events and isinstance(m.events[-1], dict) else ""
            out.append(BackupInfo(m.id, m.created_at, m.fix_id, m.code, m.summary, m.status,
                                  tuple(f.path for f in m.files), str(folder), note))
        return sorted(out, key=lambda b: (b.created_at, b.id))
