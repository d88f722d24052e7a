"""Real journal files under a fake root, written by Debian's ``systemd-journal-remote``.

:func:`write_journal` turns entries (unit, message, age) into the journal export format
(``KEY=value`` lines, one blank line between entries) and pipes it to
``systemd-journal-remote -o <root>/var/log/journal/<machine-id>/<name>.journal -``, so the file
regtui reads through ``journalctl`` is the real on-disk format, not a stand-in.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .require import lab_unavailable

__all__ = ["JournalEntry", "write_journal", "journal_remote", "MACHINE_ID"]

#: The machine id the fake root's journal directory is named after.
MACHINE_ID = "4b1d0c0ffee04b1d0c0ffee04b1d0c0f"
_BOOT_ID = "b007b007b007b007b007b007b007b007"
_CANDIDATES = ("/usr/lib/systemd/systemd-journal-remote", "/lib/systemd/systemd-journal-remote")


@dataclass(frozen=True)
class JournalEntry:
    """One journal entry: the unit that logged it, its MESSAGE, and how many seconds ago."""

    unit: str
    message: str | bytes
    """One line of text, or any bytes (written as a binary field)."""
    age_seconds: float = 60.0


def journal_remote() -> str:
    """The path of ``systemd-journal-remote`` (Debian package ``systemd-journal-remote``), or skip/fail."""
    for path in _CANDIDATES:
        if Path(path).is_file():
            return path
    lab_unavailable("systemd-journal-remote not installed (Debian package systemd-journal-remote)")


def _export(entries: Sequence[JournalEntry], now_us: int) -> bytes:
    """The journal export format of ``entries`` (single-line messages as plain ``KEY=value`` fields)."""
    out = []
    # journald appends in time order, and journalctl's --since relies on it: oldest first.
    for i, e in enumerate(sorted(entries, key=lambda e: -e.age_seconds)):
        t = now_us - int(e.age_seconds * 1e6)
        head = (f"__REALTIME_TIMESTAMP={t}\n__MONOTONIC_TIMESTAMP={1_000_000 + i}\n_BOOT_ID={_BOOT_ID}\n"
                f"_MACHINE_ID={MACHINE_ID}\n_SYSTEMD_UNIT={e.unit}\nSYSLOG_IDENTIFIER={e.unit.split('.')[0]}\nPRIORITY=3\n")
        out.append(head.encode())
        if isinstance(e.message, bytes) or "\n" in e.message:  # the export format's binary field: size, then bytes
            data = e.message if isinstance(e.message, bytes) else e.message.encode()
            out.append(b"MESSAGE\n" + len(data).to_bytes(8, "little") + data + b"\n\n")
        else:
            out.append(f"MESSAGE={e.message}\n\n".encode())
    return b"".join(out)


def write_journal(root: Path, entries: Sequence[JournalEntry], directory: str = "/var/log/journal",
                  name: str = "remote") -> Path:
    """A journal file holding ``entries`` under ``root`` (ages relative to now); returns its path."""
    target = root / directory.lstrip("/") / MACHINE_ID / f"{name}.journal"
    target.parent.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([journal_remote(), "-o", str(target), "-"], input=_export(entries, time.time_ns() // 1000),
                       capture_output=True, timeout=60, check=False)
    assert p.returncode == 0 and target.is_file(), p.stderr.decode(errors="replace")
    return target
