"""The test pull against real registries, routes planned by the real planners, runtimes as referees.

Every setup is a fake root holding a real runtime config (containerd hosts.toml, CRI-O
registries.conf, Docker daemon.json) that points at lab registries on 127.0.0.1; regtui plans the
route with the runtime's planner and pulls. Where it matters the runtime itself (``ctr images pull
--hosts-dir`` on the same hosts dir, ``skopeo --registries-conf`` on the same file, ``docker pull``)
pulls too, and the endpoint/digest regtui predicts must be what the runtime got.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.containerd import Containerd
from lab.dockerd import DockerDaemon
from lab.fixtures import LAB_CREDENTIALS, LAB_REPO, LAB_TAG
from lab.images import OciImage, push, skopeo_env
from lab.procs import need_binary, run
from lab.pullroots import containerd_root, crio_root, docker_root, plan_context
from lab.registry import Registry
from lab.sockets import TcpBlackHole
from regtui.model import Finding
from regtui.refs import parse
from regtui.registry.pull import test_pull as run_test_pull

pytestmark = pytest.mark.lab

SECRET = LAB_CREDENTIALS[1]


def pull(root: Path, runtime: str, image: str, **kwargs: Any) -> tuple[dict[str, Any], list[Finding], Any]:
    """Plan ``image`` for ``runtime`` under ``root`` with the real planner, then run the test pull."""
    timeout = kwargs.pop("timeout", 2.0)
    ctx, plan = plan_context(root, runtime, image, timeout=timeout, platform=kwargs.pop("platform", None))
    report, findings = asyncio.run(run_test_pull(ctx, parse(image), runtime, **kwargs))
    return report, findings, ctx


def codes(findings: list[Finding]) -> set[str]:
    """The finding codes."""
    return {f.code for f in findings}


def by_code(findings: list[Finding], code: str) -> Finding:
    """The one finding with ``code``."""
    matches = [f for f in findings if f.code == code]
    assert len(matches) == 1, [f.code for f in findings]
    return matches[0]


def assert_timings_consistent(report: dict[str, Any]) -> None:
    """Every blob's phases add up to its total, and every blob lies inside the pull's wall time."""
    blobs = ([report["config"]] if report["config"] else []) + report["layers"]
    assert blobs
    for blob in blobs:
        t = blob["timings_ms"]
        phases = sum(t[k] or 0.0 for k in ("dns", "connect", "tls", "ttfb", "transfer"))
        assert abs(phases - t["total"]) < 0.01, t
        assert all((t[k] or 0.0) >= 0 for k in ("dns", "connect", "tls", "ttfb", "transfer"))
        assert 0 <= blob["started_ms"] and blob["started_ms"] + t["total"] <= report["wall_ms"] + 0.01
        if blob["ok"]:
            assert blob["bytes_per_second"] > 0


def ctr_digest(containerd: Containerd, image: str, hosts_dir: Path, **kwargs: Any) -> tuple[bool, str | None, str]:
    """What ``ctr images pull --hosts-dir`` resolves ``image`` to (the referee)."""
    result = containerd.ctr_pull(image, hosts_dir=hosts_dir, **kwargs)
    return result.ok, result.digest, result.output


def skopeo_inspect(image: str, registries_conf: Path, workdir: Path, *extra: str) -> tuple[int, str | None, str]:
    """``skopeo inspect --registries-conf`` on the same file regtui planned from (the referee)."""
    env = skopeo_env(workdir)
    env["CONTAINERS_REGISTRIES_CONF"] = str(registries_conf)
    argv = [need_binary("skopeo"), "--registries-conf", str(registries_conf), "inspect", *extra, f"docker://{image}"]
    result = run(argv, timeout=60, env=env)
    digest = json.loads(result.stdout).get("Digest") if result.returncode == 0 else None
    return result.returncode, digest, result.stderr


@pytest.fixture
def stale_mirror(registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage]) -> tuple[Registry, OciImage]:
    """A plain-HTTP registry serving a *different* image as lab/app:latest."""
    mirror = registry_factory()
    other = image_factory(seed=99, layers=2)
    push(other, mirror, LAB_REPO)
    return mirror, other


# -- containerd (hosts.toml) ------------------------------------------------------------------
def test_containerd_pull_matches_ctr_and_timings_add_up(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, containerd: Containerd
) -> None:
    """A clean pull resolves to the pushed digest (as ctr does) and every layer's phases sum to its total."""
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    hosts_dir = containerd_root(tmp_path / "root", registry_tls.host_port, server=registry_tls.url,
                                server_ca=registry_tls.ca_file)
    report, findings, _ = pull(tmp_path / "root", "containerd", image)
    assert report["ok"], report["error"]
    assert report["manifest"]["digest"] == lab_image.digest
    assert report["manifest"]["platform_digest"] == lab_image.manifest_digest
    assert [l["digest"] for l in report["layers"]] == [b.digest for b in lab_image.layers]
    assert report["endpoint"] == f"{registry_tls.url}/v2"
    assert report["config"]["digest"] == lab_image.images[0].config.digest
    assert report["bytes"] == sum(b.size for b in lab_image.layers) + lab_image.images[0].config.size
    assert report["concurrency"] == 3 and report["concurrency_source"] == "default (CRI)"
    assert_timings_consistent(report)
    fresh = [b for b in [report["config"], *report["layers"]] if not b["timings_ms"]["reused"]]
    assert fresh and all(b["timings_ms"]["tls"] is not None and b["timings_ms"]["tls"] > 0 for b in fresh)
    assert not [f for f in findings if f.severity == "error"]
    ok, digest, output = ctr_digest(containerd, image, hosts_dir)
    assert ok, output
    assert digest == report["manifest"]["digest"]


def test_black_hole_mirror_costs_one_timeout(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, tcp_black_hole: TcpBlackHole
) -> None:
    """A mirror that accepts TCP and never answers costs one timeout; the upstream serves; mirror.unreachable says so."""
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    containerd_root(tmp_path / "root", registry_tls.host_port, server=registry_tls.url, server_ca=registry_tls.ca_file,
                    mirrors=[{"url": f"https://{tcp_black_hole.host_port}", "skip_verify": True}])
    timeout = 1.0
    report, findings, _ = pull(tmp_path / "root", "containerd", image, timeout=timeout)
    assert report["ok"], report["error"]
    assert report["endpoint"] == f"{registry_tls.url}/v2"
    assert [e["status"] for e in report["endpoints"]] == ["failed", "ok"]
    assert report["endpoints"][0]["phase"] == "tls" and report["endpoints"][0]["kind"] == "timeout"
    assert timeout * 1000 <= report["wall_ms"] < 2 * timeout * 1000, report["wall_ms"]
    assert all(l["endpoint"] == f"{registry_tls.url}/v2" for l in report["layers"])
    unreachable = by_code(findings, "mirror.unreachable")
    assert unreachable.subject == tcp_black_hole.host_port
    assert unreachable.evidence["phase"] == "tls" and unreachable.evidence["timed_out"]
    assert "timeout" in unreachable.detail
    assert unreachable.fix is not None and unreachable.fix.files == (f"/etc/containerd/certs.d/{registry_tls.host_port}/hosts.toml",)
    assert_timings_consistent(report)


def test_stale_mirror_is_what_containerd_pulls(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, stale_mirror: tuple[Registry, OciImage],
    containerd: Containerd,
) -> None:
    """A mirror holding another image under the tag serves the pull, as ctr's pull from the same hosts dir shows."""
    mirror, other = stale_mirror
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    hosts_dir = containerd_root(tmp_path / "root", registry_tls.host_port, server=registry_tls.url,
                                server_ca=registry_tls.ca_file, mirrors=[{"url": mirror.url}])
    report, findings, _ = pull(tmp_path / "root", "containerd", image)
    assert report["ok"]
    assert report["manifest"]["digest"] == other.digest != lab_image.digest
    assert report["endpoint"] == f"{mirror.url}/v2"
    ok, digest, output = ctr_digest(containerd, image, hosts_dir)
    assert ok, output
    assert digest == report["manifest"]["digest"]


def test_mirror_without_the_image_falls_back_upstream(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, registry_factory: Callable[..., Registry],
    containerd: Containerd,
) -> None:
    """A mirror answering 404 is passed over for the upstream (mirror.missing-image), as ctr does."""
    empty = registry_factory()
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    hosts_dir = containerd_root(tmp_path / "root", registry_tls.host_port, server=registry_tls.url,
                                server_ca=registry_tls.ca_file, mirrors=[{"url": empty.url}])
    report, findings, _ = pull(tmp_path / "root", "containerd", image)
    assert report["ok"] and report["manifest"]["digest"] == lab_image.digest
    assert report["endpoints"][0]["http_status"] == 404
    missing = by_code(findings, "mirror.missing-image")
    assert missing.subject == empty.host_port and missing.evidence["http_status"] == 404
    ok, digest, output = ctr_digest(containerd, image, hosts_dir)
    assert ok and digest == lab_image.digest, output


def test_corrupted_layer_is_a_digest_mismatch_never_success(
    tmp_path: Path, registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage],
    containerd: Containerd,
) -> None:
    """A layer whose stored bytes are corrupted fails the pull with pull.digest-mismatch naming layer and endpoint."""
    registry = registry_factory()
    image_obj = image_factory(seed=21, layers=3)
    push(image_obj, registry, "lab/corrupt")
    bad = image_obj.layers[1]
    registry.corrupt_blob(bad.digest)
    image = f"{registry.host_port}/lab/corrupt:latest"
    hosts_dir = containerd_root(tmp_path / "root", registry.host_port, server=registry.url)
    report, findings, _ = pull(tmp_path / "root", "containerd", image)
    assert not report["ok"]
    layer = next(l for l in report["layers"] if l["digest"] == bad.digest)
    assert not layer["ok"] and layer["error"]["kind"] == "digest-mismatch" and layer["attempts"] == 1
    mismatch = by_code(findings, "pull.digest-mismatch")
    assert mismatch.subject == bad.digest and mismatch.severity == "error"
    assert mismatch.evidence["layer"] == bad.digest and mismatch.evidence["endpoint"] == f"{registry.url}/v2"
    assert bad.digest[:19] in mismatch.title and registry.url in mismatch.title
    assert "pull.failed" not in codes(findings)
    ok, _, output = ctr_digest(containerd, image, hosts_dir)
    assert not ok and ("failed commit" in output or "unexpected commit digest" in output), output


def test_manifest_unknown_everywhere(tmp_path: Path, registry_tls: Registry, lab_image: OciImage) -> None:
    """A tag that no endpoint has is pull.manifest-unknown, not a generic failure."""
    image = f"{registry_tls.host_port}/{LAB_REPO}:no-such-tag"
    containerd_root(tmp_path / "root", registry_tls.host_port, server=registry_tls.url, server_ca=registry_tls.ca_file)
    report, findings, _ = pull(tmp_path / "root", "containerd", image)
    assert not report["ok"] and report["manifest"]["digest"] is None
    unknown = by_code(findings, "pull.manifest-unknown")
    assert unknown.evidence["endpoints"][0]["http_status"] == 404
    assert "pull.failed" not in codes(findings)


def test_upstream_refusing_connections_is_pull_failed_with_phase(tmp_path: Path, closed_port: int) -> None:
    """An upstream with nothing listening gives pull.failed naming the endpoint and the connect phase."""
    host = f"127.0.0.1:{closed_port}"
    containerd_root(tmp_path / "root", host, server=f"https://{host}")
    report, findings, _ = pull(tmp_path / "root", "containerd", f"{host}/lab/app:latest")
    failed = by_code(findings, "pull.failed")
    assert failed.evidence["phase"] == "connect"
    assert failed.evidence["endpoint"] == f"https://{host}/v2/lab/app/manifests/latest"
    assert "connection refused" in report["runtime_error"]
    assert report["endpoints"][0]["kind"] == "refused"


def test_index_resolves_to_this_platform_and_platform_missing(
    tmp_path: Path, registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage],
    containerd: Containerd,
) -> None:
    """An index resolves to the asked platform's manifest (digest = the index, as ctr reports); a missing one is a finding."""
    registry = registry_factory()
    multi = image_factory(seed=31, layers=1, platforms=("linux/amd64", "linux/arm64"))
    push(multi, registry, "lab/multi")
    image = f"{registry.host_port}/lab/multi:latest"
    hosts_dir = containerd_root(tmp_path / "root", registry.host_port, server=registry.url)
    report, _, _ = pull(tmp_path / "root", "containerd", image, platform="linux/arm64")
    assert report["ok"]
    assert report["manifest"]["digest"] == multi.index_digest
    assert report["manifest"]["platform_digest"] == multi.for_platform("linux/arm64").manifest.digest
    assert report["manifest"]["platform"] == "linux/arm64"
    ok, digest, output = ctr_digest(containerd, image, hosts_dir, platform="linux/arm64")
    assert ok and digest == report["manifest"]["digest"], output
    report, findings, _ = pull(tmp_path / "root", "containerd", image, platform="linux/s390x")
    assert not report["ok"]
    missing = by_code(findings, "pull.platform-missing")
    assert missing.evidence["available"] == ["linux/amd64", "linux/arm64"]


# -- CRI-O / containers-image (registries.conf) ---------------------------------------------
def test_crio_mirror_order_matches_skopeo(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, stale_mirror: tuple[Registry, OciImage]
) -> None:
    """With an insecure plain-HTTP mirror first, regtui pulls what skopeo pulls from the same registries.conf."""
    mirror, other = stale_mirror
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    conf = crio_root(tmp_path / "root", registry_tls.host_port, mirrors=[{"location": mirror.host_port, "insecure": True}],
                     cas={registry_tls.host_port: registry_tls.ca_file})
    report, findings, _ = pull(tmp_path / "root", "crio", image)
    assert report["ok"] and report["flavor"] == "containers-image"
    assert report["endpoint"] == f"{mirror.url}/v2"
    rc, digest, err = skopeo_inspect(image, conf, tmp_path / "skopeo", "--cert-dir", str(registry_tls.tls.ca_dir))
    assert rc == 0, err
    assert digest == report["manifest"]["digest"] == other.digest


def test_crio_dead_mirror_then_upstream_like_skopeo(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, closed_port: int
) -> None:
    """A refusing mirror is passed over (mirror.unreachable) and the upstream serves, as skopeo does."""
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    conf = crio_root(tmp_path / "root", registry_tls.host_port,
                     mirrors=[{"location": f"127.0.0.1:{closed_port}", "insecure": True}],
                     cas={registry_tls.host_port: registry_tls.ca_file})
    report, findings, _ = pull(tmp_path / "root", "crio", image)
    assert report["ok"] and report["endpoint"] == f"{registry_tls.url}/v2"
    assert by_code(findings, "mirror.unreachable").evidence["phase"] == "connect"
    rc, digest, err = skopeo_inspect(image, conf, tmp_path / "skopeo", "--cert-dir", str(registry_tls.tls.ca_dir))
    assert rc == 0 and digest == report["manifest"]["digest"] == lab_image.digest, err


def test_crio_credentials_from_auth_json(tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage) -> None:
    """CRI-O sends the auth.json entry for the registry; the pull succeeds and no secret reaches the report."""
    image = f"{registry_tls_auth.host_port}/{LAB_REPO}:{LAB_TAG}"
    crio_root(tmp_path / "root", registry_tls_auth.host_port, cas={registry_tls_auth.host_port: registry_tls_auth.ca_file},
              auths={registry_tls_auth.host_port: LAB_CREDENTIALS})
    report, findings, _ = pull(tmp_path / "root", "crio", image)
    assert report["ok"], report["error"]
    auth = report["endpoints"][0]["authentication"]
    assert auth["status"] == "ok" and auth["method"] == "basic" and auth["credentials"]
    text = json.dumps(report) + json.dumps([f.to_dict() for f in findings])
    assert SECRET not in text


# -- Docker, classic store (daemon.json) ----------------------------------------------------
def test_docker_missing_credentials_predicts_connection_reset(
    tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage, dockerd: DockerDaemon
) -> None:
    """Without credentials dockerd falls back to plain http and reports a reset; regtui names auth.missing and predicts it."""
    image = f"{registry_tls_auth.host_port}/{LAB_REPO}:{LAB_TAG}"
    docker_root(tmp_path / "root", {})
    report, findings, _ = pull(tmp_path / "root", "docker", image)
    assert not report["ok"]
    assert [e["url"].split("://")[0] for e in report["endpoints"]] == ["https", "http"]
    missing = by_code(findings, "auth.missing")
    assert missing.subject == registry_tls_auth.host_port
    assert "connection reset by peer" in report["runtime_error"]
    assert by_code(findings, "pull.failed").evidence["runtime_will_report"] == report["runtime_error"]
    pulled = dockerd.docker_pull(image)
    assert not pulled.ok and "connection reset by peer" in pulled.output, pulled.output


def test_docker_credentials_from_cli_config(tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage) -> None:
    """With root's config.json credentials the classic store pulls over https; no secret in the report."""
    image = f"{registry_tls_auth.host_port}/{LAB_REPO}:{LAB_TAG}"
    docker_root(tmp_path / "root", {"max-concurrent-downloads": 2}, auths={registry_tls_auth.host_port: LAB_CREDENTIALS})
    report, findings, _ = pull(tmp_path / "root", "docker", image)
    assert report["ok"], report["error"]
    assert report["manifest"]["digest"] == lab_image.digest
    assert report["concurrency"] == 2
    assert report["endpoints"][1]["status"] == "untested"  # https served the pull: plain http is never tried
    assert report["endpoints"][0]["authentication"]["method"] == "basic"
    assert SECRET not in json.dumps(report) + json.dumps([f.to_dict() for f in findings])


def test_docker_corrupted_layer_like_dockerd(
    tmp_path: Path, registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage],
    dockerd: DockerDaemon,
) -> None:
    """A corrupted layer fails the classic-store pull in regtui (digest mismatch) and in dockerd."""
    registry = registry_factory()
    image_obj = image_factory(seed=23, layers=2)
    push(image_obj, registry, "lab/corrupt")
    registry.corrupt_blob(image_obj.layers[0].digest)
    image = f"{registry.host_port}/lab/corrupt:latest"
    docker_root(tmp_path / "root", {})
    report, findings, _ = pull(tmp_path / "root", "docker", image)
    assert not report["ok"]
    assert by_code(findings, "pull.digest-mismatch").subject == image_obj.layers[0].digest
    pulled = dockerd.docker_pull(image)
    assert not pulled.ok, pulled.output


def test_docker_tls_corrupted_layer_skips_plain_http(
    tmp_path: Path, registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage],
    cert_factory: Callable[..., Any],
) -> None:
    """After a layer fails on https, dockerd moves on but skips the host's plain http (TLS confirmed): the mismatch stands."""
    registry = registry_factory(tls=cert_factory())
    image_obj = image_factory(seed=24, layers=2)
    push(image_obj, registry, "lab/corrupt")
    registry.corrupt_blob(image_obj.layers[1].digest)
    docker_root(tmp_path / "root", {})
    report, findings, _ = pull(tmp_path / "root", "docker", f"{registry.host_port}/lab/corrupt:latest")
    assert not report["ok"]
    assert [(e["status"], e["served"]) for e in report["endpoints"]] == [("failed", "manifest"), ("skipped", "")]
    assert "confirmedTLSRegistries" in report["endpoints"][1]["reason"]
    assert by_code(findings, "pull.digest-mismatch").subject == image_obj.layers[1].digest
    assert len(report["layers"]) == 2


def test_pull_through_cache_serves_upstream_content(
    tmp_path: Path, registry_tls: Registry, registry_mirror: Registry, lab_image: OciImage, containerd: Containerd
) -> None:
    """A plain-HTTP pull-through cache in front of the TLS upstream serves the pull with upstream's digests, as ctr does."""
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    hosts_dir = containerd_root(tmp_path / "root", registry_tls.host_port, server=registry_tls.url,
                                server_ca=registry_tls.ca_file, mirrors=[{"url": registry_mirror.url}])
    report, findings, ctx = pull(tmp_path / "root", "containerd", image)
    assert report["ok"] and report["endpoint"] == f"{registry_mirror.url}/v2"
    assert report["manifest"]["digest"] == lab_image.digest
    assert all(l["endpoint"] == f"{registry_mirror.url}/v2" for l in report["layers"])
    assert report["endpoints"][0]["served"] == "manifest"
    assert not [f for f in findings if f.code.startswith("mirror.")]
    ok, digest, output = ctr_digest(containerd, image, hosts_dir)
    assert ok and digest == report["manifest"]["digest"], output
