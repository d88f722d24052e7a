#!/usr/bin/env python3
"""Cost of reading what the runtimes said: wall time of ``runtimelog.read`` on a busy journal and big logs.

Run from the repository: ``python3 tests/bench/runtimelog_bench.py [--entries N] [--errors N]``.
It writes a real journal (``systemd-journal-remote``) holding N unit entries from the last day
(containerd, kubelet and dockerd noise with N errors among them) plus as many entries of an
unrelated unit, and a 20 MB ``/var/log/containerd.log``, then times ``runtimelog.read`` (median of
five runs). Target (printed, never asserted): under 1 s for 100000 entries.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from lab.journal import JournalEntry, write_journal  # noqa: E402
from regtui import runtimelog  # noqa: E402
from regtui.host import Host  # noqa: E402

ERROR = ('level=error msg="PullImage \\"r{i}.test/app:1\\" failed" error="rpc error: code = Unknown desc = failed to '
         'pull and unpack image \\"r{i}.test/app:1\\": failed to resolve reference \\"r{i}.test/app:1\\": failed to do '
         'request: Head \\"https://r{i}.test/v2/app/manifests/1\\": dial tcp 10.0.0.{j}:443: i/o timeout"')


def main() -> None:
    """Build the root, time the reads, print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--errors", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        every = max(1, args.entries // max(1, args.errors))
        units = ("containerd.service", "kubelet.service", "docker.service")
        entries = []
        for i in range(args.entries):
            age = 86000 * (1 - i / args.entries)
            if i % every == 0:
                entries.append(JournalEntry("containerd.service", ERROR.format(i=i % 97, j=i % 250), age))
            else:
                entries.append(JournalEntry(units[i % 3], f'level=info msg="event {i}" id={i}', age))
            entries.append(JournalEntry("cron.service", f"noise {i}", age))
        t0 = time.perf_counter()
        write_journal(root, entries)
        built = time.perf_counter() - t0
        log = root / "var/log/containerd.log"
        line = ERROR.format(i=1, j=1) + "\n"
        log.write_text(("x" * 199 + "\n") * 100_000 + line)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            said = runtimelog.read(Host(root=root))
            times.append(time.perf_counter() - t0)
        size = subprocess.run(["du", "-sh", str(root / "var/log/journal")], capture_output=True, text=True).stdout.split()[0]
        print(f"journal: {2 * args.entries} entries ({size}), built in {built:.1f} s; containerd.log 20 MB")
        print(f"read: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
              f"{len(said.errors)} distinct errors, sources {[(s['source'], s['entries']) for s in said.sources]}")


if __name__ == "__main__":
    main()
