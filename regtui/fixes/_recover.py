"""Recovery of fixes a killed process left half done, run by ``fix --apply``, ``undo`` and ``undo --list``.

A backup's manifest says what its apply was doing (see :mod:`regtui.fixes._backup`); under the state
lock, :func:`recover_locked` compares the files with it and settles each interrupted backup.
"""

from __future__ import annotations

import os
from datetime import timezone
from pathlib import Path

from regtui.fixes import _fs
from regtui.fixes._backup import MANIFEST, STATE_DIR, BackupStore, Manifest
from regtui.fixes._model import UndoRefused, UnsafePath, error_text, sha256
from regtui.host import Host

__all__ = ["recover", "recover_locked"]


def _existing_store(host: Host, state_dir: str | os.PathLike[str] | None) -> BackupStore | None:
    """The backup store if its folder exists (never created here)."""
    if state_dir:
        store = BackupStore(Path(state_dir))
    else:
        try:
            store = BackupStore(_fs.target(host, STATE_DIR).real)
        except UnsafePath:
            return None
    return store if store.dir.is_dir() and not store.dir.is_symlink() else None


def recover(host: Host, state_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Recover fixes a killed process left half done (see :func:`recover_locked`); what was found, one line each.

    Does nothing (and says so) while another fix or undo holds the state lock: its backup is not
    interrupted, it is in progress.
    """
    store = _existing_store(host, state_dir)
    if store is None:
        return []
    try:
        with store.lock(wait=0):
            return recover_locked(host, store)
    except TimeoutError:
        if any(b.status == "writing" for b in store.list()):
            return ["another regtui fix or undo is running: a backup in [writing] state is in progress"]
        return []
    except OSError as exc:  # not root: say so only when something looks interrupted
        suspicious = any(b.status == "writing" for b in store.list()) or \
            any(not (f / MANIFEST).exists() for f in store.folders())
        return [f"interrupted fixes not checked: {exc}"] if suspicious else []


def recover_locked(host: Host, store: BackupStore) -> list[str]:
    """Under the state lock (so no regtui is writing): finish what killed fixes left behind.

    - a backup folder without a manifest was killed while the backup was written, before any
      file changed: it is deleted if it holds only what regtui writes there;
    - a backup still ``writing`` was killed during its apply (or its rollback). The files decide:
      all as before (nothing renamed, or everything rolled back) -> nothing was changed: the
      directories it created (if empty) and the backup go; all in the fix's version -> it is
      ``applied`` (undo restores); a mix -> ``interrupted``, and ``regtui undo`` restores;
    - regtui's temporary files (``.<name>.regtui-<8 hex>``) next to any file a backup names, and
      a manifest's temporary file, are deleted.

    Manifests written for another root are left alone. Returns one line per thing done.
    """
    notes: list[str] = []
    root = str(host.root)
    for folder in store.folders():
        manifest_path = folder / MANIFEST
        if not manifest_path.exists():
            if store.discard(folder.name):
                notes.append(f"removed the incomplete backup {folder.name}: an apply was killed while writing it, "
                             "before it changed any file (nothing was changed)")
            else:
                notes.append(f"backup folder {folder} has no manifest and holds files regtui did not write; "
                             "left as is")
            continue
        try:
            m = store.load(folder.name)
        except UndoRefused as exc:
            notes.append(f"{exc}; left as is")
            continue
        if m.root != root:
            continue
        tmp = folder / f".{MANIFEST}.tmp"
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink()
        try:
            removed = [t for r in m.files for t in _fs.remove_stray_temps(host, str(r.path))]
            if m.status != "writing":
                if removed:
                    notes.append(f"removed regtui's temporary file(s) {', '.join(removed)} left by a killed process")
                continue
            notes.append(_recover_one(host, store, m, removed))
        except (OSError, UnsafePath, UndoRefused, KeyError, TypeError, ValueError) as exc:
            notes.append(f"backup {m.id} could not be checked ({error_text(exc)}); left as is")
    return notes


def _recover_one(host: Host, store: BackupStore, m: Manifest, removed: list[str]) -> str:
    """Settle one backup whose apply was killed (status ``writing``); the line saying what it was."""
    states: dict[str, str] = {}
    for r in m.files:
        now = sha256(_fs.current_or_none(host, r.path))
        states[r.path] = "before" if now == r.before_sha256 else "after" if now == r.after_sha256 else "other"
    dirs_gone = [d["path"] for d in m.dirs_removed if not _fs.target(host, d["path"]).real.is_dir()]
    temps = f"; removed its temporary file(s) {', '.join(removed)}" if removed else ""
    at = host.now().astimezone(timezone.utc).isoformat()
    if all(v == "before" for v in states.values()) and not dirs_gone:
        for d in reversed(m.dirs_created):
            try:
                _fs.remove_dir(host, d)
            except (OSError, UnsafePath):
                pass
        if store.discard(m.id):
            return (f"fix {m.fix_id} (backup {m.id}) was killed before it changed any file: nothing was changed; "
                    f"its backup was removed{temps}")
        m.status = "rolled-back"
        m.events.append({"at": at, "status": "rolled-back",
                         "note": "killed before it changed any file; nothing changed"})
        store.save(m)
        return f"fix {m.fix_id} (backup {m.id}) was killed before it changed any file: nothing was changed{temps}"
    if all(v == "after" for v in states.values()):
        note = "killed after every file was written: the fix is in place; undo restores the originals"
        m.status = "applied"
        m.events.append({"at": at, "status": "applied", "note": note})
        store.save(m)
        return f"fix {m.fix_id} (backup {m.id}) was {note}: `regtui undo {m.id}`{temps}"
    written = [p for p, v in states.items() if v == "after"] + dirs_gone
    untouched = [p for p, v in states.items() if v == "before"]
    edited = [p for p, v in states.items() if v == "other"]
    parts = [f"fix's version: {', '.join(written)}" if written else "",
             f"as before: {', '.join(untouched)}" if untouched else "",
             f"changed since by someone else: {', '.join(edited)}" if edited else ""]
    note = "killed part-way (" + "; ".join(x for x in parts if x) + ")"
    m.status = "interrupted"
    m.events.append({"at": at, "status": "interrupted", "note": note})
    store.save(m)
    return f"fix {m.fix_id} (backup {m.id}) was {note}; `regtui undo {m.id}` puts the originals back{temps}"
