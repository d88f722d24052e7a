"""Wall time and peak RSS of ``regtui pull`` and ``regtui check`` against each hostile registry case.

Run from the repository: ``python3 tests/bench/hostile_bench.py [--pythonpath DIR] [--timeout S] [--cap S]
[--case NAME ...]``. The hostile server (:mod:`lab.hostile`) comes from this checkout; the regtui
measured is ``python3 -m regtui`` with ``PYTHONPATH=DIR`` (default: this checkout), so the same
command measures any other checkout. A run that has not ended after ``--cap`` seconds is killed
and shown as ``>CAP s (killed)``. Peak RSS is the regtui process's own (``wait4`` in a small
launcher). Each run uses the Docker runtime with the server as an insecure registry, a one-layer
image of 1 MiB, and ``--timeout S`` (default 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from lab.hostile import CASES, HostileRegistry, clean_env, hostile_root, regtui_argv, run_measured  # noqa: E402
from lab.images import build_oci_layout  # noqa: E402


def outcome(stdout: str) -> str:
    """The error findings of a JSON report, with the phase of a ``pull.failed`` (or ``-``)."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return "no report"
    out = []
    for f in doc.get("findings", []):
        if f.get("severity") == "error":
            phase = (f.get("evidence") or {}).get("phase")
            out.append(f"{f['code']}({phase})" if f["code"] == "pull.failed" and phase else f["code"])
    return ",".join(out) or "-"


def main() -> int:
    """Measure every case and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythonpath", default=str(TESTS.parent), help="checkout whose regtui is measured")
    parser.add_argument("--timeout", type=float, default=1.0, help="regtui --timeout")
    parser.add_argument("--cap", type=float, default=60.0, help="kill a run after this many seconds")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases")
    parser.add_argument("--command", action="append", choices=("pull", "check"), help="only these commands")
    args = parser.parse_args()
    commands = args.command or ["pull", "check"]
    env = clean_env(args.pythonpath)
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as tmp:
        image = build_oci_layout(Path(tmp) / "layout", layers=1, layer_size=1024 * 1024, seed=7)
        print(f"regtui from {args.pythonpath}, --timeout {args.timeout:g}, cap {args.cap:g} s")
        header = f"{'case':<20}" + "".join(f"{c + ' wall':>16}{c + ' RSS':>10}{'exit':>5}  {c + ' error findings':<34}"
                                           for c in commands)
        print(header)
        print("-" * len(header))
        for case in args.case or list(CASES):
            row = f"{case:<20}"
            for command in commands:
                with HostileRegistry(case, image.layout_dir) as reg:
                    root = Path(tmp) / f"root-{case}-{command}"
                    ref = hostile_root(root, reg)
                    m = run_measured(regtui_argv(command, root, ref, args.timeout), env=env, cap=args.cap)
                wall = f">{args.cap:g} s (killed)" if m.killed else f"{m.wall:.1f} s"
                rss = "-" if m.killed else f"{m.maxrss_mib:.0f} MiB"
                code = "-" if m.killed else str(m.returncode)
                found = "-" if m.killed else outcome(m.stdout)
                row += f"{wall:>16}{rss:>10}{code:>5}  {found:<34}"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
