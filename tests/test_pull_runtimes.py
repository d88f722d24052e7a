"""The same failures on the three route kinds: Docker classic store (daemon.json registry-mirrors),
containerd (hosts.toml) and CRI-O (registries.conf), each planned by its real planner.

Docker's mirrors apply only to Docker Hub references, so the Docker case pulls
``docker.io/library/app:latest`` with ``registry-1.docker.io`` mapped (in the fake root's hosts
file) to a lab registry listening on ``127.0.0.9:443`` with a certificate for that name, trusted
through the root's system bundle, exactly as dockerd trusts Hub: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.dockerd import DockerDaemon
from lab.images import OciImage, push
from lab.pki import IssuedCert
from lab.pullroots import containerd_root, crio_root, docker_root, plan_context
from lab.registry import Registry
from lab.sockets import TcpBlackHole
from regtui.checks import mirrors
from regtui.refs import parse
from regtui.registry.pull import test_pull as run_test_pull
from test_pull_lab import assert_timings_consistent, by_code, codes

pytestmark = pytest.mark.lab

RUNTIMES = ("docker", "containerd", "crio")
_hub_addresses = itertools.count(9)


def _hub_address() -> str:
    """A fresh loopback address for a fake Docker Hub (each test gets its own port 443)."""
    return f"127.0.9.{next(_hub_addresses) % 250 + 1}"


@dataclass
class Setup:
    """An upstream for one runtime's route kind and how to point a root at it."""

    runtime: str
    upstream: Registry
    repo: str
    image: str
    hub: str = ""
    """Address ``registry-1.docker.io`` resolves to in the root (Docker case)."""

    def root(self, root: Path, mirror_urls: list[str], *, ca: Path) -> Path:
        """Write the runtime's config with ``mirror_urls`` (``scheme://host:port``) before the upstream."""
        hosts = {"registry-1.docker.io": self.hub or "127.0.0.1"}
        if self.runtime == "docker":
            docker_root(root, {"registry-mirrors": mirror_urls}, hosts=hosts)
            bundle = root / "etc/ssl/certs/ca-certificates.crt"
            bundle.parent.mkdir(parents=True, exist_ok=True)
            bundle.write_bytes(ca.read_bytes())
        elif self.runtime == "containerd":
            containerd_root(root, self.upstream.host_port, server=self.upstream.url, server_ca=ca,
                            mirrors=[{"url": u, "skip_verify": True} for u in mirror_urls], hosts=hosts)
        else:
            crio_root(root, self.upstream.host_port, hosts=hosts, cas={self.upstream.host_port: ca},
                      mirrors=[{"location": u.split("://", 1)[1], "insecure": u.startswith("http://")}
                               for u in mirror_urls])
        return root


@pytest.fixture(params=RUNTIMES)
def setup(request: pytest.FixtureRequest, registry_factory: Callable[..., Registry],
          cert_factory: Callable[..., IssuedCert], image_factory: Callable[..., OciImage]) -> Setup:
    """The runtime's upstream holding the image (a fake Docker Hub on 127.0.0.9:443 for Docker)."""
    runtime = request.param
    hub = ""
    if runtime == "docker":
        hub = _hub_address()
        _port_free(hub, 443)
        cert = cert_factory(sans=("registry-1.docker.io", "127.0.0.1"))
        upstream = registry_factory(host=hub, port=443, tls=cert)
        repo, image = "library/app", "docker.io/library/app:latest"
    else:
        upstream = registry_factory(tls=cert_factory())
        repo = "lab/app"
        image = f"{upstream.host_port}/{repo}:latest"
    push(image_factory(seed=5, layers=3), upstream, repo)
    return Setup(runtime, upstream, repo, image, hub)


def _port_free(host: str, port: int) -> None:
    """Skip when something already listens where the fake Hub must."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            pytest.skip(f"{host}:{port} unavailable: {exc}")


def pull(setup: Setup, root: Path, timeout: float = 2.0) -> tuple[dict[str, Any], list[Any], Any]:
    """Plan with the runtime's planner and run the test pull."""
    ctx, _ = plan_context(root, setup.runtime, setup.image, timeout=timeout)
    report, findings = asyncio.run(run_test_pull(ctx, parse(setup.image), setup.runtime))
    return report, findings, ctx


def test_dead_and_empty_mirrors_then_upstream(
    tmp_path: Path, setup: Setup, tcp_black_hole: TcpBlackHole, registry_factory: Callable[..., Registry]
) -> None:
    """A black-holed mirror and an empty one before a good upstream: the pull succeeds after one timeout, both named."""
    empty = registry_factory()
    timeout = 1.0
    root = setup.root(tmp_path / "root", [f"https://{tcp_black_hole.host_port}", empty.url], ca=setup.upstream.ca_file)
    report, findings, _ = pull(setup, root, timeout=timeout)
    assert report["ok"], report["error"]
    assert report["endpoint"] == f"{setup.upstream.url}/v2".replace(f"{setup.hub}:443", "registry-1.docker.io")
    assert report["wall_ms"] < 2 * timeout * 1000
    assert by_code(findings, "mirror.unreachable").subject == tcp_black_hole.host_port
    assert by_code(findings, "mirror.missing-image").subject == empty.host_port
    assert [e["status"] for e in report["endpoints"]][:3] == ["failed", "failed", "ok"]
    assert_timings_consistent(report)


def test_stale_mirror_serves_and_the_probe_says_stale(
    tmp_path: Path, setup: Setup, registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage]
) -> None:
    """A mirror with another image under the tag serves the pull; the mirrors probe reports mirror.stale."""
    stale = registry_factory()
    other = image_factory(seed=6, layers=1)
    push(other, stale, setup.repo)
    root = setup.root(tmp_path / "root", [stale.url], ca=setup.upstream.ca_file)
    report, _, ctx = pull(setup, root)
    assert report["ok"] and report["manifest"]["digest"] == other.digest
    assert report["endpoint"] == f"{stale.url}/v2"
    result = asyncio.run(mirrors.probe(ctx))
    assert by_code(result.findings, "mirror.stale").evidence["mirror_digest"] == other.digest


def test_unknown_tag_is_manifest_unknown(tmp_path: Path, setup: Setup) -> None:
    """A tag that exists nowhere is pull.manifest-unknown on every route kind."""
    root = setup.root(tmp_path / "root", [], ca=setup.upstream.ca_file)
    missing = Setup(setup.runtime, setup.upstream, setup.repo, setup.image.replace(":latest", ":missing"))
    report, findings, _ = pull(missing, root)
    assert not report["ok"]
    assert "pull.manifest-unknown" in codes(findings)


def test_corrupt_layer_is_a_digest_mismatch(tmp_path: Path, setup: Setup, image_factory: Callable[..., OciImage]) -> None:
    """A corrupted upstream layer is pull.digest-mismatch naming layer and endpoint, on every route kind."""
    image = image_factory(seed=8, layers=2)
    push(image, setup.upstream, setup.repo, tag="corrupt")
    setup.upstream.corrupt_blob(image.layers[1].digest)
    root = setup.root(tmp_path / "root", [], ca=setup.upstream.ca_file)
    corrupt = Setup(setup.runtime, setup.upstream, setup.repo, setup.image.replace(":latest", ":corrupt"))
    report, findings, _ = pull(corrupt, root)
    assert not report["ok"]
    mismatch = by_code(findings, "pull.digest-mismatch")
    assert mismatch.subject == image.layers[1].digest and mismatch.evidence["endpoint"].endswith("/v2")


def test_dockerd_mirror(
    tmp_path: Path, registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage],
    dockerd_factory: Callable[..., DockerDaemon],
) -> None:
    """dockerd with registry-mirrors pulls app:latest from the mirror, as regtui predicts (same endpoint, same digest)."""
    # The test name stays short: dockerd's exec-root sockets live under tmp_path (108-byte limit).
    mirror = registry_factory()
    image = image_factory(seed=9, layers=1)
    push(image, mirror, "library/app")
    root = docker_root(tmp_path / "root", {"registry-mirrors": [mirror.url]}, hosts={"registry-1.docker.io": "127.0.0.1"})
    ctx, _ = plan_context(root, "docker", "app:latest", timeout=1.0)
    report, _ = asyncio.run(run_test_pull(ctx, parse("app:latest"), "docker"))
    assert report["ok"] and report["endpoint"] == f"{mirror.url}/v2"
    daemon = dockerd_factory(daemon_json={"registry-mirrors": [mirror.url]})
    pulled = daemon.docker_pull("app:latest")
    assert pulled.ok, pulled.output
    assert pulled.digest == report["manifest"]["digest"] == image.digest
