"""The console script's exit: the run's objects are frozen out of the collector's reach before teardown, only there."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from regtui.cli import main

# After run() the interpreter tears down; an atexit hook (run before the modules are cleared) reports
# whether the objects were frozen, and the exit status must be the command's own.
_PROBE = r"""
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0, flush=True))
from regtui.cli import run
run(sys.argv[1:])
"""


def _probe(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120)


def test_the_console_script_freezes_before_teardown_and_keeps_the_exit_status(tmp_path: Path) -> None:
    """run() exits with main()'s status (0 for a clean offline check, 2 for a usage error) after freezing the objects."""
    ok = _probe("check", "--offline", "--root", str(tmp_path), "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().endswith("frozen True"), ok.stdout[-200:]
    bad = _probe("check", "--no-such-option")
    assert bad.returncode == 2 and "--no-such-option" in bad.stderr


def test_python_dash_m_goes_through_the_same_exit(tmp_path: Path) -> None:
    """``python -m regtui`` exits with the command's status and prints its output whole."""
    done = subprocess.run([sys.executable, "-m", "regtui", "check", "--offline", "--root", str(tmp_path), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("}")


def test_main_called_in_process_does_not_freeze(tmp_path: Path) -> None:
    """main() leaves the collector alone: a program (or this test run) calling it many times keeps collecting."""
    before = gc.get_freeze_count()
    assert main(["check", "--offline", "--root", str(tmp_path), "--format", "json"]) == 0
    assert gc.get_freeze_count() == before
