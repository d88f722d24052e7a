#!/usr/bin/env python3
"""Benchmark of the instrumented test pull (``regtui pull``) against skopeo and a bare httpx loop.

Run from the repository: ``python3 tests/bench/pull_bench.py [--rounds N] [--timeout S]``. It
needs the lab binaries (``docker-registry``, ``skopeo``) and stays on 127.0.0.1.

What it does, in one run:

1. starts a lab ``docker-registry`` with TLS (test CA + intermediate) and pushes, with skopeo,
   two images of random (incompressible) data: ``lab/big`` (8 layers, ~180 MB) and ``lab/fat``
   (2 layers of 90 MB, same total, for "RSS independent of layer size");
2. writes a fake root whose containerd ``hosts.toml`` points at the registry (its CA included),
   and a second one with a black-holed mirror (accepts TCP, never answers) in front;
3. alternates, for N rounds: ``regtui pull`` (the CLI, a fresh process), ``skopeo copy
   docker://... dir:`` (into /dev/shm, so skopeo pays no disk), and a bare httpx downloader (a
   fresh Python process: manifest, then every blob streamed into sha256 with the same
   concurrency as regtui, 3);
4. prints median wall times, the ratios, every process's peak RSS (GNU ``time -f %M`` of that
   process alone), and the black-hole cost: the extra wall time of the pull with the dead mirror,
   in timeouts.

Targets (reported, never asserted): regtui <= 0.8x skopeo and <= 1.15x the bare loop; regtui's
peak RSS <= 80 MiB whatever the layer size; a black-holed endpoint costs one timeout, not one per
layer. Note: skopeo 1.9 downloads up to 6 layers at once (containers/image default; no flag).
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
sys.path.insert(0, str(REPO))

from lab.images import build_oci_layout, push, skopeo_env  # noqa: E402
from lab.pki import LabPKI  # noqa: E402
from lab.procs import need_binary  # noqa: E402
from lab.pullroots import containerd_root  # noqa: E402
from lab.registry import Registry  # noqa: E402
from lab.sockets import TcpBlackHole  # noqa: E402

MB = 1_000_000
CONCURRENCY = 3
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None

# A downloader with nothing but httpx: what the pull costs without regtui's planning and tracing.
BARE_LOOP = r'''
import asyncio, hashlib, json, ssl, sys
import httpx
base, repo, tag, ca, conc = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
async def main():
    ctx = ssl.create_default_context(cafile=ca)
    limits = httpx.Limits(max_connections=conc + 1)
    async with httpx.AsyncClient(verify=ctx, limits=limits, trust_env=False, timeout=30) as client:
        m = await client.get(f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
        manifest = m.json()
        blobs = [manifest["config"]] + manifest["layers"]
        sem = asyncio.Semaphore(conc)
        async def one(desc):
            async with sem:
                h = hashlib.sha256()
                async with client.stream("GET", f"{base}/v2/{repo}/blobs/{desc['digest']}") as r:
                    async for chunk in r.aiter_raw():
                        h.update(chunk)
                assert "sha256:" + h.hexdigest() == desc["digest"]
                return desc["size"]
        print(sum(await asyncio.gather(*(one(d) for d in blobs))))
asyncio.run(main())
'''


def timed(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> tuple[float, int, int, str]:
    """Run ``argv``; return (wall seconds, exit code, peak RSS in KiB of that process alone, stdout).

    The peak RSS comes from GNU time (``%M``) when installed: a child forked from this (large)
    benchmark process would inherit its high-water mark, so ``wait4`` here would report ours.
    """
    rss_file = tempfile.NamedTemporaryFile(prefix="rss-", delete=False)
    rss_file.close()
    wrapped = ([GNU_TIME, "-f", "%M", "-o", rss_file.name] if GNU_TIME else []) + argv
    began = time.monotonic()
    try:
        done = subprocess.run(wrapped, capture_output=True, env=env, timeout=timeout)
        wall = time.monotonic() - began
        text = Path(rss_file.name).read_text().strip().splitlines()
        peak = int(text[-1]) if GNU_TIME and text and text[-1].isdigit() else 0
    finally:
        os.unlink(rss_file.name)
    if done.returncode != 0:
        sys.stderr.write(f"[bench] {' '.join(argv[:4])}... exited {done.returncode}:\n"
                         f"{done.stderr.decode(errors='replace')[-2000:]}\n")
    return wall, done.returncode, peak, done.stdout.decode(errors="replace")


def regtui_pull(root: Path, image: str, timeout: float = 5.0) -> list[str]:
    """The CLI invocation measured."""
    return [sys.executable, "-m", "regtui", "pull", image, "--root", str(root), "--runtime", "containerd",
            "--format", "json", "--timeout", str(timeout)]


def median(values: list[float]) -> float:
    """Median of ``values``."""
    return statistics.median(values)


def main() -> int:
    """Build the lab, run the rounds, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0, help="regtui --timeout for the black-hole run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regtui-bench-"))
    shm = Path(tempfile.mkdtemp(prefix="regtui-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    print(f"[bench] workdir {work}", flush=True)
    pki = LabPKI()
    cert = pki.issue(work / "pki")
    registry = Registry(work / "registry", tls=cert)
    hole = TcpBlackHole().start()
    try:
        registry.start()
        began = time.monotonic()
        big = build_oci_layout(work / "big", layers=8, layer_size=[22_500_000] * 8, seed=1001)
        fat = build_oci_layout(work / "fat", layers=2, layer_size=[90_000_000] * 2, seed=1002)
        push(big, registry, "lab/big", timeout=300)
        push(fat, registry, "lab/fat", timeout=300)
        total = {name: sum(b.size for b in img.layers) + img.images[0].config.size for name, img in (("big", big), ("fat", fat))}
        print(f"[bench] images built and pushed in {time.monotonic() - began:.1f}s: lab/big {len(big.layers)} layers "
              f"{total['big'] / MB:.1f} MB, lab/fat {len(fat.layers)} layers {total['fat'] / MB:.1f} MB", flush=True)
        root = work / "root"
        containerd_root(root, registry.host_port, server=registry.url, server_ca=registry.ca_file)
        bh_root = work / "root-blackhole"
        containerd_root(bh_root, registry.host_port, server=registry.url, server_ca=registry.ca_file,
                        mirrors=[{"url": f"https://{hole.host_port}", "skip_verify": True}])
        policy = work / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        senv = skopeo_env(work / "skopeo")
        skopeo = need_binary("skopeo")
        # Python children cache their bytecode (in the workdir, not the tree), as an installed
        # package has it: this environment sets PYTHONDONTWRITEBYTECODE, which would make every
        # run recompile regtui from source.
        penv = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        penv["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        results: dict[str, list[float]] = {"regtui": [], "skopeo": [], "bare": [], "regtui_internal": []}
        rss: dict[str, list[int]] = {"regtui": [], "skopeo": [], "bare": [], "regtui_fat": []}
        image = f"{registry.host_port}/lab/big:latest"
        # one warm-up of each so the page cache and the registry are warm for everyone
        timed(regtui_pull(root, image), env=penv)
        timed([sys.executable, "-c", BARE_LOOP, registry.url, "lab/big", "latest", str(cert.ca_file), str(CONCURRENCY)],
              env=penv)
        for n in range(args.rounds):
            wall, code, peak, out = timed(regtui_pull(root, image), env=penv)
            assert code == 0, "regtui pull failed"
            pull = json.loads(out)["pull"]
            assert pull["ok"] and pull["bytes"] == total["big"]
            results["regtui"].append(wall)
            results["regtui_internal"].append(pull["wall_ms"] / 1000)
            rss["regtui"].append(peak)
            dest = shm / f"skopeo-{n}"
            wall, code, peak, _ = timed([skopeo, "--policy", str(policy), "copy", "--quiet", "--src-cert-dir",
                                         str(cert.ca_dir), f"docker://{image}", f"dir:{dest}"], env=senv)
            assert code == 0, "skopeo copy failed"
            results["skopeo"].append(wall)
            rss["skopeo"].append(peak)
            subprocess.run(["rm", "-rf", str(dest)], check=False)
            wall, code, peak, out = timed([sys.executable, "-c", BARE_LOOP, registry.url, "lab/big", "latest",
                                           str(cert.ca_file), str(CONCURRENCY)], env=penv)
            assert code == 0 and int(out) == total["big"], "bare loop failed"
            results["bare"].append(wall)
            rss["bare"].append(peak)
            print(f"[bench] round {n + 1}: regtui {results['regtui'][-1]:.2f}s  skopeo {results['skopeo'][-1]:.2f}s  "
                  f"bare {results['bare'][-1]:.2f}s", flush=True)
        for _ in range(2):
            _, code, peak, _ = timed(regtui_pull(root, f"{registry.host_port}/lab/fat:latest"), env=penv)
            assert code == 0
            rss["regtui_fat"].append(peak)
        normal = median(results["regtui"])
        bh_wall, code, _, out = timed(regtui_pull(bh_root, image, timeout=args.timeout), env=penv)
        bh_pull = json.loads(out)["pull"] if out else {}
        assert code == 0 and bh_pull.get("ok"), "pull with a black-holed mirror failed"
        extra = bh_wall - normal
        r, s, b = normal, median(results["skopeo"]), median(results["bare"])
        mib = lambda kib: kib / 1024  # noqa: E731
        print()
        print(f"image lab/big: {len(big.layers)} layers + config, {total['big'] / MB:.1f} MB; {args.rounds} rounds; "
              f"regtui/bare concurrency {CONCURRENCY}, skopeo 6 (its default)")
        print(f"median wall   regtui pull (CLI)      {r:6.2f} s   ({total['big'] / MB / r:6.1f} MB/s)   "
              f"internal pull wall {median(results['regtui_internal']):.2f} s")
        print(f"median wall   skopeo copy dir:       {s:6.2f} s   ({total['big'] / MB / s:6.1f} MB/s)")
        print(f"median wall   bare httpx loop        {b:6.2f} s   ({total['big'] / MB / b:6.1f} MB/s)")
        print(f"ratio         regtui / skopeo        {r / s:6.2f}    (target <= 0.80)")
        print(f"ratio         regtui / bare httpx    {r / b:6.2f}    (target <= 1.15)")
        print(f"peak RSS      regtui (8 x 22.5 MB)   {mib(max(rss['regtui'])):6.1f} MiB (target <= 80)")
        print(f"peak RSS      regtui (2 x 90 MB)     {mib(max(rss['regtui_fat'])):6.1f} MiB")
        print(f"peak RSS      skopeo / bare loop     {mib(max(rss['skopeo'])):6.1f} / {mib(max(rss['bare'])):.1f} MiB")
        print(f"black hole    pull with dead mirror  {bh_wall:6.2f} s = normal {normal:.2f} s + {extra:.2f} s "
              f"= {extra / args.timeout:.2f} x the {args.timeout:g} s timeout ({len(big.layers) + 1} blobs)")
        return 0
    finally:
        hole.stop()
        registry.stop()
        subprocess.run(["rm", "-rf", str(shm), str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
