#!/usr/bin/env python3
"""Benchmark of ``regtui pull`` against skopeo, curl and a Python floor, on several image shapes.

Run from the repository: ``python3 tests/bench/pull_bench.py [--shapes big,small] [--rounds N]``.
It needs the lab binaries (``docker-registry``, ``skopeo``, ``curl``) and stays on 127.0.0.1.

What it does, in one run:

1. starts a lab ``docker-registry`` with TLS (test CA + intermediate) and pushes, with skopeo,
   one image of random (incompressible) data per shape: ``big`` (8 layers of 22.5 MB),
   ``single500`` (1 layer of 500 MiB), ``l50`` (50 layers of 2 MB), ``l200`` (200 layers of 1 KiB)
   and ``small`` (2 layers of 300 kB);
2. writes a fake root whose containerd ``hosts.toml`` points at the registry (its CA included);
3. for N rounds, for every shape, runs each tool once as a fresh process, in an order that rotates
   from round to round (so a busy machine spreads over all of them):

   - ``regtui`` (one entry per ``--regtui LABEL=PATH``: ``python -m regtui pull REF --runtime
     containerd --format json --output DIR`` (``--runtime auto`` with ``--runtime auto``) with ``PYTHONPATH=PATH``, so two checkouts compare in
     one run), checked for ``ok`` and the byte count;
   - ``skopeo copy docker://REF dir:DIR`` (skopeo 1.9 fetches up to 6 layers at once; no flag);
   - ``curl --parallel`` over HTTP/1.1 fetching every blob (config and layers) into files, without
     checking them;
   - ``floor``: a minimal Python process (one TLS connection per worker thread, kept alive; a raw
     GET; the body received into one reusable buffer and hashed with sha256 as it arrives), checked
     against the digests;

   every output directory is in /dev/shm when it exists (no disk cost for anyone);
4. prints per shape and tool the median wall time with min, max and interquartile range, the median
   CPU time (user + system of that process), the throughput, the largest peak RSS, and the ratios of
   the medians to skopeo, curl and the floor.

``--python`` names the interpreter regtui and the floor run on: a venv made as README says measures
what an installed regtui costs, without start-up files the measuring machine's own interpreter may
carry; its bare start is printed first.

Peak RSS and CPU come from GNU time (``%M``, ``%U``, ``%S``) of that process alone: a child that
this (large) process spawns would report this process's high-water mark through ``wait4``.

Targets (issue 15, reported, never asserted): big image regtui <= 0.6x skopeo and <= 1.6x curl;
500 MiB single layer <= 0.45x skopeo; 200 tiny layers <= 0.3x skopeo; 0.6 MB image <= 3x skopeo;
peak RSS under 60 MiB whatever the layer size. ``--black-hole`` adds the cost of a black-holed
mirror in front (one timeout, not one per layer). ``--startup N`` breaks a small pull down: the bare
interpreter, the HTTP stack's imports alone, regtui's ``main()`` and the interpreter's teardown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from lab.images import OciImage, build_oci_layout, push, skopeo_env  # noqa: E402
from lab.pki import LabPKI  # noqa: E402
from lab.procs import need_binary  # noqa: E402
from lab.pullroots import containerd_root  # noqa: E402
from lab.registry import Registry  # noqa: E402
from lab.sockets import TcpBlackHole  # noqa: E402

MB = 1_000_000
MiB = 1024 * 1024
#: regtui pulls as containerd's CRI does (3 at once); curl and the floor use the same.
CONCURRENCY = 3
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None
#: The interpreter regtui and the floor run on (``--python``: e.g. the venv README's install makes).
PYTHON = [sys.executable]


@dataclass(frozen=True)
class Shape:
    """One benchmark image: its name (also the repository), layer sizes and seed."""

    name: str
    layers: int
    layer_size: int
    seed: int
    what: str


SHAPES = {s.name: s for s in (
    Shape("big", 8, 22_500_000, 1001, "8 layers of 22.5 MB"),
    Shape("single500", 1, 500 * MiB, 1003, "1 layer of 500 MiB"),
    Shape("l50", 50, 2_000_000, 1004, "50 layers of 2 MB"),
    Shape("l200", 200, 1024, 1005, "200 layers of 1 KiB"),
    Shape("small", 2, 300_000, 1006, "2 layers of 300 kB"),
)}

# The floor: what receiving the blobs over TLS and hashing them costs in Python, with nothing else.
FLOOR = r'''
import hashlib, json, socket, ssl, sys, threading
host, port, ca, conc = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
jobs = json.load(open(sys.argv[5]))
ctx = ssl.create_default_context(cafile=ca)
lock = threading.Lock()
done, errors = [], []
def worker():
    sock = None
    buf = bytearray(256 * 1024)
    view = memoryview(buf)
    try:
        while True:
            with lock:
                if not jobs:
                    break
                path, digest, size = jobs.pop()
            if sock is None:
                sock = ctx.wrap_socket(socket.create_connection((host, port), timeout=30), server_hostname=host)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed before the headers")
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            if lines[0].split()[1] != b"200":
                raise RuntimeError(lines[0].decode())
            length = next(int(v) for k, _, v in (l.partition(b":") for l in lines[1:]) if k.lower() == b"content-length")
            h = hashlib.sha256(rest)
            got = len(rest)
            while got < length:
                n = sock.recv_into(view, min(len(buf), length - got))
                if not n:
                    raise RuntimeError("connection closed in the body")
                h.update(view[:n])
                got += n
            if "sha256:" + h.hexdigest() != digest or got != size:
                raise RuntimeError(f"{digest}: digest or size mismatch")
            done.append(got)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=worker) for _ in range(conc)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    sys.exit("; ".join(errors))
print(sum(done))
'''

# Where one small pull's time goes (--startup): the HTTP stack regtui is built on, imported alone
# first (regtui keeps httpx's CLI module and trio out, and so does this), then regtui's main() (its
# own imports, planning, the requests, the report), then the interpreter's teardown, which the
# parent times from the stamp printed here to the process's end.
STARTUP = r'''
import sys, time
t0 = time.perf_counter()
sys.modules.setdefault("httpx._main", None)
sys.modules["trio"] = None
import asyncio, hashlib, json, ssl, h11, httpcore, httpx, anyio._backends._asyncio
t1 = time.perf_counter()
import contextlib, gc, io
from regtui.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
t2 = time.perf_counter()
print(f"stack {t1 - t0:.6f} main {t2 - t1:.6f} exit-from {time.time():.6f}", file=sys.stderr, flush=True)
gc.freeze()  # as regtui.cli.run does before the teardown
sys.exit(code)
'''


@dataclass
class Run:
    """One process's figures."""

    wall: float
    cpu: float
    rss_kib: int


@dataclass
class Series:
    """Every run of one tool on one shape."""

    runs: list[Run] = field(default_factory=list)

    def walls(self) -> list[float]:
        return [r.wall for r in self.runs]


def timed(argv: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> tuple[Run, int, str, str]:
    """Run ``argv`` in a neutral directory; return its figures, exit code, stdout and stderr.

    Not in this checkout: ``python -m`` puts the current directory first on ``sys.path``, which would
    shadow the regtui named by ``PYTHONPATH``."""
    fd, stats = tempfile.mkstemp(prefix="bench-time-")
    os.close(fd)
    wrapped = ([GNU_TIME, "-f", "%M %U %S", "-o", stats] if GNU_TIME else []) + argv
    began = time.monotonic()
    try:
        done = subprocess.run(wrapped, capture_output=True, env=env, timeout=timeout, cwd=tempfile.gettempdir())
        wall = time.monotonic() - began
        fields = Path(stats).read_text().split()[-3:] if GNU_TIME else []
    finally:
        os.unlink(stats)
    rss, cpu = (int(fields[0]), float(fields[1]) + float(fields[2])) if len(fields) == 3 else (0, 0.0)
    return Run(wall, cpu, rss), done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")


def _fail(what: str, code: int, err: str) -> None:
    raise SystemExit(f"[bench] {what} exited {code}:\n{err[-2000:]}")


class Bench:
    """The lab, the images and one runner per tool."""

    def __init__(self, work: Path, shm: Path, registry: Registry, cert, regtuis: dict[str, str],  # type: ignore[no-untyped-def]
                 runtime: str = "containerd") -> None:
        self.work, self.shm, self.registry, self.cert, self.regtuis = work, shm, registry, cert, regtuis
        self.runtime = runtime
        self.root = work / "root"
        containerd_root(self.root, registry.host_port, server=registry.url, server_ca=registry.ca_file)
        self.policy = work / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.senv = skopeo_env(work / "skopeo")
        self.skopeo = need_binary("skopeo")
        self.curl = need_binary("curl")
        # Python children cache their bytecode (in the workdir, not the tree), as an installed
        # package has it, whatever PYTHONDONTWRITEBYTECODE says.
        self.penv = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
        self.penv["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        self.images: dict[str, OciImage] = {}
        self.totals: dict[str, int] = {}
        self.counter = 0

    def tools(self) -> list[str]:
        return [f"regtui[{label}]" for label in self.regtuis] + ["skopeo", "curl", "floor"]

    def add(self, shape: Shape) -> None:
        """Build and push the image of ``shape``."""
        image = build_oci_layout(self.work / "images" / shape.name, layers=shape.layers,
                                 layer_size=[shape.layer_size] * shape.layers, seed=shape.seed)
        push(image, self.registry, f"lab/{shape.name}", timeout=900)
        shutil.rmtree(image.layout_dir)  # the registry has its own copy
        self.images[shape.name] = image
        self.totals[shape.name] = sum(b.size for b in self._blobs(shape.name))

    def _blobs(self, name: str) -> list:  # type: ignore[type-arg]
        im = self.images[name].images[0]
        return [im.config, *im.layers]

    def ref(self, name: str) -> str:
        return f"{self.registry.host_port}/lab/{name}:latest"

    def _dest(self, tool: str) -> Path:
        self.counter += 1
        return self.shm / f"{tool.replace('[', '-').replace(']', '')}-{self.counter}"

    def run(self, tool: str, name: str) -> Run:
        """One run of ``tool`` on image ``name``, checked; its output removed."""
        dest = self._dest(tool)
        try:
            if tool.startswith("regtui["):
                return self._regtui(tool[7:-1], name, dest)
            return getattr(self, "_" + tool)(name, dest)
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def regtui_argv(self, name: str, dest: Path | None, root: Path | None = None, timeout: float = 5.0) -> list[str]:
        """The CLI invocation measured."""
        argv = [PYTHON[0], "-m", "regtui", "pull", self.ref(name), "--root", str(root or self.root),
                "--runtime", self.runtime, "--format", "json", "--timeout", str(timeout)]
        return argv + (["--output", str(dest)] if dest else [])

    def _regtui(self, label: str, name: str, dest: Path) -> Run:
        env = dict(self.penv, PYTHONPATH=self.regtuis[label])
        run, code, out, err = timed(self.regtui_argv(name, dest), env=env)
        if code != 0:
            _fail(f"regtui[{label}] pull {name}", code, err + out[-2000:])
        pull = json.loads(out)["pull"]
        if not pull["ok"] or pull["bytes"] != self.totals[name]:
            raise SystemExit(f"[bench] regtui[{label}] pull {name}: ok={pull['ok']} bytes={pull['bytes']}")
        return run

    def _skopeo(self, name: str, dest: Path) -> Run:
        run, code, _, err = timed([self.skopeo, "--policy", str(self.policy), "copy", "--quiet", "--src-cert-dir",
                                   str(self.cert.ca_dir), f"docker://{self.ref(name)}", f"dir:{dest}"], env=self.senv)
        if code != 0:
            _fail(f"skopeo copy {name}", code, err)
        return run

    def _curl(self, name: str, dest: Path) -> Run:
        dest.mkdir()
        config = dest / "curl.cfg"
        config.write_text("".join(f'url = "{self.registry.url}/v2/lab/{name}/blobs/{b.digest}"\n'
                                  f'output = "{dest / b.digest.split(":")[1]}"\n' for b in self._blobs(name)))
        run, code, _, err = timed([self.curl, "--silent", "--show-error", "--fail", "--http1.1", "--cacert",
                                   str(self.cert.ca_file), "--parallel", "--parallel-max", str(CONCURRENCY),
                                   "--config", str(config)])
        if code != 0:
            _fail(f"curl {name}", code, err)
        got = sum(p.stat().st_size for p in dest.iterdir() if p.name != "curl.cfg")
        if got != self.totals[name]:
            raise SystemExit(f"[bench] curl {name}: {got} bytes, expected {self.totals[name]}")
        return run

    def _floor(self, name: str, dest: Path) -> Run:
        dest.mkdir()
        jobs = dest / "jobs.json"
        jobs.write_text(json.dumps([[f"/v2/lab/{name}/blobs/{b.digest}", b.digest, b.size] for b in self._blobs(name)]))
        host, port = self.registry.host_port.rsplit(":", 1)
        run, code, out, err = timed([PYTHON[0], "-c", FLOOR, host, port, str(self.cert.ca_file), str(CONCURRENCY),
                                     str(jobs)], env=self.penv)
        if code != 0 or int(out) != self.totals[name]:
            _fail(f"floor {name}", code, err)
        return run


def _spread(values: list[float]) -> str:
    if len(values) >= 4:
        q = statistics.quantiles(values, n=4)
        return f"{q[2] - q[0]:6.3f}"
    return "     -"


def report(bench: Bench, shape: Shape, series: dict[str, Series], rounds: int) -> None:
    """Print the table of one shape."""
    total = bench.totals[shape.name]
    blobs = len(bench._blobs(shape.name))
    med = {tool: statistics.median(s.walls()) for tool, s in series.items() if s.runs}
    print(f"\n{shape.name}: {shape.what}, {blobs} blobs, {total / MB:.1f} MB; {rounds} round(s), interleaved; "
          f"concurrency regtui/curl/floor {CONCURRENCY}, skopeo 6")
    print(f"  {'tool':<16} {'median s':>8} {'min':>6} {'max':>6} {'IQR':>6} {'cpu s':>6} {'MB/s':>7} {'RSS MiB':>8} "
          f"{'/skopeo':>7} {'/curl':>6} {'/floor':>6}")
    for tool, s in series.items():
        if not s.runs:
            continue
        walls = s.walls()
        m = med[tool]
        ratio = lambda other: f"{m / med[other]:.2f}" if other in med and other != tool else "-"  # noqa: E731
        print(f"  {tool:<16} {m:8.3f} {min(walls):6.3f} {max(walls):6.3f} {_spread(walls)} "
              f"{statistics.median(r.cpu for r in s.runs):6.2f} {total / MB / m:7.1f} "
              f"{max(r.rss_kib for r in s.runs) / 1024:8.1f} {ratio('skopeo'):>7} {ratio('curl'):>6} {ratio('floor'):>6}")


def black_hole(bench: Bench, label: str, timeout: float) -> None:
    """The extra wall time of a pull with a black-holed mirror in front (in timeouts)."""
    hole = TcpBlackHole().start()
    try:
        root = bench.work / "root-blackhole"
        containerd_root(root, bench.registry.host_port, server=bench.registry.url, server_ca=bench.registry.ca_file,
                        mirrors=[{"url": f"https://{hole.host_port}", "skip_verify": True}])
        env = dict(bench.penv, PYTHONPATH=bench.regtuis[label])
        normal = statistics.median(timed(bench.regtui_argv("big", None), env=env)[0].wall for _ in range(3))
        run, code, out, err = timed(bench.regtui_argv("big", None, root=root, timeout=timeout), env=env)
        if code != 0 or not json.loads(out)["pull"]["ok"]:
            _fail("pull with a black-holed mirror", code, err)
        extra = run.wall - normal
        print(f"\nblack hole ({label}): pull with a dead mirror {run.wall:.2f} s = normal {normal:.2f} s + {extra:.2f} s "
              f"= {extra / timeout:.2f} x the {timeout:g} s timeout")
    finally:
        hole.stop()


def startup(bench: Bench, label: str, rounds: int) -> None:
    """Where a small pull's time goes: bare start, the HTTP stack's imports, regtui's main(), teardown."""
    env = dict(bench.penv, PYTHONPATH=bench.regtuis[label])
    argv = bench.regtui_argv("small", None)
    parts: dict[str, list[float]] = {"bare start": [], "HTTP stack imports": [], "regtui main()": [], "teardown": [],
                                     "whole process": []}
    for _ in range(rounds):
        parts["bare start"].append(timed([PYTHON[0], "-c", "pass"], env=env)[0].wall)
        began = time.time()
        done = subprocess.run([PYTHON[0], "-c", STARTUP, *argv[3:]], env=env, capture_output=True, text=True,
                              timeout=120, cwd=bench.work)
        ended = time.time()
        if done.returncode != 0:
            _fail("startup breakdown", done.returncode, done.stderr)
        fields = done.stderr.strip().splitlines()[-1].split()
        parts["HTTP stack imports"].append(float(fields[1]))
        parts["regtui main()"].append(float(fields[3]))
        parts["teardown"].append(ended - float(fields[5]))
        parts["whole process"].append(ended - began)
    print(f"\nstartup ({label}): one small pull, {rounds} runs, medians in ms")
    for name, values in parts.items():
        print(f"  {name:<20} {1000 * statistics.median(values):7.1f}")


def main() -> int:
    """Build the lab, run the rounds, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of: {', '.join(SHAPES)}")
    parser.add_argument("--tools", default="regtui,skopeo,curl,floor", help="comma-separated, of: regtui, skopeo, curl, floor")
    parser.add_argument("--regtui", action="append", default=[], metavar="LABEL=PATH",
                        help="a regtui checkout to measure (its directory, given as PYTHONPATH); repeatable. "
                             "Default: this checkout, as regtui[here]")
    parser.add_argument("--runtime", default="containerd", choices=("containerd", "auto"),
                        help="regtui's --runtime (the root has containerd alone, so auto finds it; default containerd)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter for regtui and the floor, e.g. a venv's bin/python made as README says "
                             "(default: this one); its bare start-up time is printed")
    parser.add_argument("--black-hole", type=float, metavar="TIMEOUT",
                        help="also measure the big image's pull with a black-holed mirror at this --timeout")
    parser.add_argument("--startup", type=int, metavar="RUNS",
                        help="also break a small pull's time down (bare start, HTTP stack imports, regtui's main(), "
                             "teardown) over this many runs; needs the small shape")
    args = parser.parse_args()
    shapes = [SHAPES[s] for s in args.shapes.split(",") if s]
    wanted = set(args.tools.split(","))
    regtuis = dict(spec.split("=", 1) for spec in args.regtui) or {"here": str(REPO)}
    regtuis = {label: str(Path(path).resolve()) for label, path in regtuis.items()}
    PYTHON[0] = args.python
    if args.black_hole and "big" not in [s.name for s in shapes]:
        parser.error("--black-hole needs the big shape")
    if args.startup and "small" not in [s.name for s in shapes]:
        parser.error("--startup needs the small shape")
    work = Path(tempfile.mkdtemp(prefix="regtui-bench-"))
    shm = Path(tempfile.mkdtemp(prefix="regtui-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    print(f"[bench] workdir {work}; regtui from {regtuis}", flush=True)
    cert = LabPKI().issue(work / "pki")
    registry = Registry(work / "registry", tls=cert)
    try:
        registry.start()
        bench = Bench(work, shm, registry, cert, regtuis, args.runtime)
        tools = [t for t in bench.tools() if t.split("[")[0] in wanted]
        for label, path in regtuis.items():  # which regtui each label really imports
            _, _, out, _ = timed([PYTHON[0], "-c", "import regtui; print(regtui.__file__)"],
                                 env=dict(bench.penv, PYTHONPATH=path))
            print(f"[bench] regtui[{label}] is {out.strip()}", flush=True)
        starts = sorted(timed([PYTHON[0], "-c", "pass"], env=bench.penv)[0].wall for _ in range(7))
        print(f"[bench] {PYTHON[0]}: a bare start (python -c pass) takes {starts[3] * 1000:.0f} ms (median of 7)",
              flush=True)
        for shape in shapes:
            began = time.monotonic()
            bench.add(shape)
            print(f"[bench] {shape.name} built and pushed in {time.monotonic() - began:.1f}s "
                  f"({bench.totals[shape.name] / MB:.1f} MB)", flush=True)
            for tool in tools:  # one warm-up each: page cache, registry, bytecode
                bench.run(tool, shape.name)
        results = {s.name: {t: Series() for t in tools} for s in shapes}
        for n in range(args.rounds):
            line = []
            for shape in shapes:
                order = tools[n % len(tools):] + tools[:n % len(tools)]
                for tool in order:
                    results[shape.name][tool].runs.append(bench.run(tool, shape.name))
                line.append(shape.name + " " + " ".join(f"{t}={results[shape.name][t].runs[-1].wall:.2f}" for t in tools))
            print(f"[bench] round {n + 1}: " + "; ".join(line), flush=True)
        for shape in shapes:
            report(bench, shape, results[shape.name], args.rounds)
        if args.black_hole:
            black_hole(bench, next(iter(regtuis)), args.black_hole)
        if args.startup:
            for label in regtuis:
                startup(bench, label, args.startup)
        return 0
    finally:
        registry.stop()
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
