#!/usr/bin/env python3
"""Benchmark of the workbench against the headless check doing the same work, on the lab.

Run from the repository: ``python3 tests/bench/tui_bench.py [--rounds N] [--timeout S]``; the
code under test is the ``regtui`` package first on ``PYTHONPATH`` (so one script measures two
trees: ``PYTHONPATH=OTHER_TREE python3 tests/bench/tui_bench.py``). It needs the lab binaries
(``docker-registry``, ``skopeo``, ``chronyd``) and stays on 127.0.0.1.

It starts a TLS registry holding a small image, chronyd, and a TCP black hole, and writes two
roots: ``clean`` (containerd pulls from the registry) and ``blackhole`` (a mirror that accepts
TCP and never answers sits in front). Every figure is the median of N fresh processes:

- ``check``: ``regtui check --format json`` wall time, and the engine's own time inside it;
- ``app``: the workbench driven headlessly (``App.run_test``, 120x40) with the live source:
  time from process start to the first paint (the app mounted and drew), to every panel done
  (the run finished and the panels re-rendered), and the app's own share (mount to done);
- ``quit``: on the black-hole root, ``q`` pressed 0.3 s after the first paint, while probes wait
  on the black hole: time from the key to the app's exit and to the process's exit.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))

from lab.images import build_oci_layout, push  # noqa: E402
from lab.ntp import Chrony  # noqa: E402
from lab.pki import LabPKI  # noqa: E402
from lab.pullroots import containerd_root  # noqa: E402
from lab.registry import Registry  # noqa: E402
from lab.sockets import TcpBlackHole  # noqa: E402

# Runs in a fresh process: the app headless, timestamps printed as JSON on the last line.
DRIVER = r'''
import asyncio, json, sys, time
started = float(sys.argv[1]); mode = sys.argv[2]; argv = sys.argv[3:]
from regtui.cli import build_parser, _options
from regtui.tui.app import make_app
options = _options(build_parser().parse_args(["tui", *argv]))
app = make_app(options)
marks = {}

async def main():
    async with app.run_test(size=(120, 40)) as pilot:
        marks["first_paint"] = time.time() - started
        mounted = time.time()
        if mode == "quit":
            await asyncio.sleep(0.3)
            marks["q_at"] = time.time()
            await pilot.press("q")
            marks["app_exit"] = None
        else:
            deadline = time.time() + 120
            while "run done" not in app.events and time.time() < deadline:
                await asyncio.sleep(0.005)
            await pilot.pause()
            marks["all_done"] = time.time() - started
            marks["app_run"] = time.time() - mounted
    if mode == "quit":
        marks["app_exit"] = time.time() - marks["q_at"]

asyncio.run(main())
print(json.dumps(marks), flush=True)
'''

# The headless check in a fresh process, with the engine's own time.
CHECK = r'''
import json, sys, time
started = float(sys.argv[1]); argv = sys.argv[2:]
from regtui.cli import build_parser, _options, _refs
from regtui.engine import run_check
options = _options(build_parser().parse_args(["check", *argv]))
t = time.time()
run_check(options, refs=_refs(options.images))
print(json.dumps({"engine": time.time() - t, "wall": time.time() - started}), flush=True)
'''


def _run(code: str, *args: str, env: dict[str, str]) -> tuple[dict[str, float], float]:
    """Run ``code`` in a fresh interpreter; (its JSON marks, wall time to process exit, epoch seconds)."""
    began = time.time()
    out = subprocess.run([sys.executable, "-c", code, str(began), *args], capture_output=True, text=True,
                         timeout=300, env=env)
    ended = time.time()
    if out.returncode != 0:
        raise SystemExit(f"driver failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), ended


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s" if values else "     -"


def main() -> int:
    """Build the lab, run the rounds, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0, help="regtui --timeout")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regtui-tui-bench-"))
    pki = LabPKI()
    cert = pki.issue(work / "pki")
    registry = Registry(work / "registry", tls=cert)
    chrony = Chrony(work / "chrony")
    hole = TcpBlackHole().start()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env["TEXTUAL_ANIMATIONS"] = "none"
    try:
        registry.start()
        chrony.start()
        push(build_oci_layout(work / "image", layers=2, seed=7), registry, "lab/app")
        roots = {"clean": work / "clean", "blackhole": work / "blackhole"}
        containerd_root(roots["clean"], registry.host_port, server=registry.url, server_ca=registry.ca_file)
        containerd_root(roots["blackhole"], registry.host_port, server=registry.url, server_ca=registry.ca_file,
                        mirrors=[{"url": f"https://{hole.host_port}", "skip_verify": True}])
        image = f"{registry.host_port}/lab/app:latest"
        tree = env.get("PYTHONPATH") or str(REPO)
        print(f"[bench] regtui from {tree}; timeout {args.timeout}s; {args.rounds} rounds", flush=True)
        figures: dict[str, list[float]] = {}
        for n in range(args.rounds + 1):  # round 0 warms the page and bytecode caches
            for name, root in roots.items():
                common = ["--root", str(root), "--image", image, "--timeout", str(args.timeout),
                          "--ntp-server", f"{chrony.host}:{chrony.port}"]
                check, _ = _run(CHECK, *common, env=env)
                app, _ = _run(DRIVER, "done", *common, env=env)
                marks = {f"{name} check wall": check["wall"], f"{name} check engine": check["engine"],
                         f"{name} app first paint": app["first_paint"], f"{name} app all done": app["all_done"],
                         f"{name} app mount->done": app["app_run"]}
                if name == "blackhole":
                    quit_, ended = _run(DRIVER, "quit", *common, env=env)
                    marks["blackhole q -> app exit"] = quit_["app_exit"]
                    marks["blackhole q -> process exit"] = ended - quit_["q_at"]
                if n:
                    for k, v in marks.items():
                        figures.setdefault(k, []).append(v)
        for k, v in figures.items():
            print(f"{k:<32} {_median(v)}   (min {min(v):.2f}, max {max(v):.2f})")
    finally:
        hole.stop()
        chrony.stop()
        registry.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
