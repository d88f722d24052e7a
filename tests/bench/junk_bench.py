#!/usr/bin/env python3
"""Cost of junk configuration: wall time, peak RSS and report size per file type.

Run from the repository: ``python3 tests/bench/junk_bench.py [--size BYTES] [--only NAME]``.
For every configuration file regtui reads, it writes a fake root holding that file filled with
junk (random bytes, then random printable text lines, 3.9 MB each by default: under the 4 MiB
read cap) plus whatever makes the runtime detected, and runs, in a fresh process,
``regtui check --offline --root R --image docker.io/library/alpine:latest --format json``. Files
the offline check does not read (chrony, timesyncd, resolv.conf, /etc/hosts) are read by calling
their reader in a fresh process instead. Peak RSS is that process's own (``os.wait4`` rusage).

Target (printed, never asserted): under 2 s and 150 MB per file, and a report that stays small.
Nothing here touches the network.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
IMAGE = "docker.io/library/alpine:latest"
SIZE = 3_900_000

_CD_CONFIG_PATH = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                   'config_path = "/etc/containerd/certs.d"\n')

#: name -> (junk file path, other files that make the runtime read it, how to run it)
CASES: dict[str, tuple[str, dict[str, str], str]] = {
    "systemd drop-in": ("/etc/systemd/system/docker.service.d/junk.conf", {"/etc/docker/": ""}, "check"),
    "systemd unit": ("/etc/systemd/system/containerd.service", {}, "check"),
    "environment file": ("/etc/default/docker-junk",
                         {"/etc/docker/": "",
                          "/etc/systemd/system/docker.service.d/env.conf":
                              "[Service]\nEnvironmentFile=/etc/default/docker-junk\n"}, "check"),
    "daemon.json": ("/etc/docker/daemon.json", {}, "check"),
    "config.json": ("/root/.docker/config.json", {"/etc/docker/": ""}, "check"),
    "config.toml": ("/etc/containerd/config.toml", {}, "check"),
    "hosts.toml": ("/etc/containerd/certs.d/docker.io/hosts.toml",
                   {"/etc/containerd/config.toml": _CD_CONFIG_PATH}, "check"),
    "registries.conf": ("/etc/containers/registries.conf", {}, "check"),
    "registries.conf.d": ("/etc/containers/registries.conf.d/junk.conf", {}, "check"),
    "auth.json": ("/run/containers/0/auth.json", {"/etc/containers/": ""}, "check"),
    "registries.yaml": ("/etc/rancher/k3s/registries.yaml", {}, "check"),
    "kubelet config": ("/var/lib/kubelet/config.yaml", {"/etc/containerd/": ""}, "check"),
    "chrony.conf": ("/etc/chrony/chrony.conf", {}, "timesync"),
    "timesyncd.conf": ("/etc/systemd/timesyncd.conf", {}, "timesync"),
    "resolv.conf": ("/etc/resolv.conf", {}, "resolver"),
    "hosts": ("/etc/hosts", {}, "resolver"),
}

_READERS = {
    "timesync": "from regtui.config import timesync; from regtui.host import Host; "
                "import sys, json; t = timesync.load(Host.from_args(sys.argv[1], {})); "
                "sys.stdout.write(json.dumps(t.to_dict(), default=str))",
    "resolver": "from regtui.net.resolver import read_resolver_config; from regtui.host import Host; "
                "import sys; c = read_resolver_config(Host.from_args(sys.argv[1], {})); "
                "sys.stdout.write(repr(c))",
}


def junk_bytes(rng: random.Random, size: int) -> bytes:
    """Random bytes (mostly not valid UTF-8)."""
    return rng.randbytes(size)


def junk_lines(rng: random.Random, size: int) -> bytes:
    """Random printable ASCII lines of 0-79 characters."""
    alphabet = [chr(c) for c in range(32, 127)]
    out: list[str] = []
    total = 0
    while total < size:
        line = "".join(rng.choices(alphabet, k=rng.randrange(80)))
        out.append(line)
        total += len(line) + 1
    return "\n".join(out).encode()[:size]


def write_root(root: Path, junk_path: str, junk: bytes, extra: dict[str, str]) -> None:
    for host_path, content in extra.items():
        target = root / host_path.lstrip("/")
        if host_path.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    target = root / junk_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(junk)


def measure(root: Path, how: str, out_path: Path) -> tuple[float, float, int, int]:
    """(wall seconds, peak RSS MiB, output bytes, exit status) of one fresh process."""
    if how == "check":
        argv = [sys.executable, "-m", "regtui", "check", "--offline", "--root", str(root), "--image", IMAGE,
                "--format", "json"]
    else:
        argv = [sys.executable, "-c", _READERS[how], str(root)]
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(REPO))
    with open(out_path, "wb") as out, open(os.devnull, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, out_path.stat().st_size, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=SIZE, help="bytes of junk per file (default 3.9 MB)")
    ap.add_argument("--only", action="append", default=[], help="run only this case (repeatable)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"regtui from {os.environ.get('PYTHONPATH') or REPO}; {args.size} bytes of junk per file")
    print(f"{'file':<20} {'junk':<6} {'wall s':>7} {'RSS MiB':>8} {'output bytes':>13} {'exit':>4}")
    worst = (0.0, 0.0)
    with tempfile.TemporaryDirectory(prefix="junk-bench-") as tmp:
        for name, (path, extra, how) in CASES.items():
            if args.only and name not in args.only:
                continue
            for kind, make in (("bytes", junk_bytes), ("lines", junk_lines)):
                rng = random.Random(f"{args.seed}:{name}:{kind}")
                root = Path(tmp) / "root"
                shutil.rmtree(root, ignore_errors=True)
                write_root(root, path, make(rng, args.size), extra)
                wall, rss, size, code = measure(root, how, Path(tmp) / "out")
                worst = (max(worst[0], wall), max(worst[1], rss))
                print(f"{name:<20} {kind:<6} {wall:>7.2f} {rss:>8.1f} {size:>13} {code:>4}", flush=True)
    print(f"worst: {worst[0]:.2f} s, {worst[1]:.1f} MiB (target: < 2 s and < 150 MB per file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
