"""Measure the certs probe on the lab: ``cd tests && python3 -m lab.tlsbench [--repeat N]``.

Not a test (speed is never asserted): it starts one registry per certificate case, builds a fake
root whose runtimes (containerd, CRI-O, Docker) route to every case, and reports

- the probe's wall time for every case at once, with this machine's real CA bundle as the
  system bundle (chain building against ~150 anchors), and the per-capture times;
- the wall time with 1, 3 and 10 black-holed mirrors in front of a good registry at a 1 s
  timeout, to show that the cost stays about one timeout however many endpoints hang.

Needs root (black holes on 127.0.0.x) and docker-registry; prints a small table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from regtui import engine
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.probes import run_probes

from .certcases import CASES, CertLab
from .sockets import TcpBlackHole

CONTAINERD_CONFIG = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for path, content in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())


def _root(tmp: Path, lab: CertLab, bundle: bytes, extra_names: dict[str, str], files: dict[str, str | bytes]) -> Path:
    names = {**lab.names(), **extra_names}
    tree: dict[str, str | bytes] = {
        "/etc/hosts": "127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in names.items()),
        "/etc/resolv.conf": "nameserver 127.0.0.1\n",
        "/etc/ssl/certs/ca-certificates.crt": bundle,
        "/etc/containerd/config.toml": CONTAINERD_CONFIG,
        "/etc/containers/registries.conf": "unqualified-search-registries = []\n",
        "/etc/docker/daemon.json": "{}\n",
    }
    for case in lab.registries:
        tree[f"/etc/containerd/certs.d/{lab.hostport(case)}/ca.crt"] = lab.pki.root.pem
        tree[f"/etc/containers/certs.d/{lab.hostport(case)}/ca.crt"] = lab.pki.root.pem
    tree.update(files)
    _write(tmp, tree)
    return tmp


def _run(root: Path, images: list[str], runtime: str, timeout: float) -> tuple[float, object]:
    host = Host(root=root, environ={}, clock=lambda: datetime.now(timezone.utc))
    plan = engine.plan(CheckOptions(root=str(root), images=tuple(images), runtime=runtime, containerd_version="2.0",
                                    docker_store="classic", timeout=timeout), host)
    ctx = engine.probe_context(plan)
    started = time.monotonic()
    result = asyncio.run(run_probes(ctx, panels=("certs",)))["certs"]
    return time.monotonic() - started, result


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()
    with tempfile.TemporaryDirectory() as tmp, CertLab(Path(tmp) / "lab") as lab:
        images = [f"{lab.hostport(c)}/lab/app:latest" for c in CASES]
        root = _root(Path(tmp) / "root-all", lab, bundle, {}, {})
        walls, caps = [], []
        for _ in range(args.repeat):
            wall, result = _run(root, images, "auto", 3.0)
            walls.append(wall)
            caps += [c["elapsed_ms"] for c in result.data["captures"].values()]  # type: ignore[attr-defined]
        data = result.data  # type: ignore[attr-defined]
        print(f"all cases: {len(data['endpoints'])} TLS endpoint rows, {len(data['captures'])} captures, "
              f"{len(images)} images x 3 runtimes, system bundle {bundle.count(b'BEGIN CERTIFICATE')} certs")
        print(f"  probe wall time: median {statistics.median(walls) * 1000:.0f} ms, max {max(walls) * 1000:.0f} ms "
              f"({args.repeat} runs)")
        print(f"  per capture (connect + handshake + GET /v2/): median {statistics.median(caps):.1f} ms, "
              f"max {max(caps):.1f} ms")
        good = lab.hostport("good")
        for count in (1, 3, 10):
            holes = [TcpBlackHole(host=f"127.0.0.{100 + i}").start() for i in range(count)]
            try:
                names = {f"hole{i}.lab.test": h.host for i, h in enumerate(holes)}
                mirrors = "".join(f'[host."https://hole{i}.lab.test:{h.port}"]\n  capabilities = ["pull", "resolve"]\n'
                                  for i, h in enumerate(holes))
                hosts_toml = f'server = "https://{good}"\nca = "/etc/containerd/certs.d/{good}/ca.crt"\n\n' + mirrors
                r = _root(Path(tmp) / f"root-holes-{count}", lab, bundle, names,
                          {f"/etc/containerd/certs.d/{good}/hosts.toml": hosts_toml})
                wall, _ = _run(r, [f"{good}/lab/app:latest"], "containerd", 1.0)
            finally:
                for h in holes:
                    h.stop()
            print(f"  {count:2d} black-holed mirror(s) + good upstream, timeout 1 s: probe wall time {wall * 1000:.0f} ms")


if __name__ == "__main__":
    main()
