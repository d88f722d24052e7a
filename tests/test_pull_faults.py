"""The test pull against a registry that misbehaves on purpose: cut connections, 503s, throttling,
rate limits, CDN redirects, and hostile answers (huge manifests, endless bodies, garbage, lying
digest headers). Routes come from the real containerd planner on a hosts.toml in a fake root.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.fakeregistry import FakeRegistry, Faults
from lab.images import OciImage, build_oci_layout
from lab.pullroots import containerd_root, plan_context
from regtui.model import Finding
from regtui.net.http import STREAM_BUFFER
from regtui.refs import parse
from regtui.registry.pull import test_pull as run_test_pull
from test_pull_lab import assert_timings_consistent, by_code, codes

MiB = 1024 * 1024
USER, PASSWORD = "fakeuser", "fake-password-do-not-leak"


@pytest.fixture(scope="module")
def big_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """Four 1 MiB layers (random data: incompressible)."""
    return build_oci_layout(tmp_path_factory.mktemp("big") / "layout", layers=4, layer_size=MiB, seed=41)


@pytest.fixture(scope="module")
def many_layers(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """Six small layers."""
    return build_oci_layout(tmp_path_factory.mktemp("many") / "layout", layers=6, layer_size=2048, seed=42)


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeRegistry]]:
    """Start fake registries for one test; all are stopped afterwards."""
    started: list[FakeRegistry] = []

    def make(image: OciImage | None, **kwargs: Any) -> FakeRegistry:
        reg = FakeRegistry(image.layout_dir if image else None, **kwargs).start()
        started.append(reg)
        return reg

    yield make
    for reg in started:
        reg.stop()


def pull_from(tmp_path: Path, reg: FakeRegistry, *, timeout: float = 2.0, **root_kwargs: Any) -> tuple[dict[str, Any], list[Finding], Any]:
    """Plan ``reg``'s lab/app:latest through a containerd hosts.toml and pull it."""
    hosts = root_kwargs.pop("hosts", None)
    containerd_root(tmp_path / "root", reg.host_port, server=reg.url, hosts=hosts, **root_kwargs)
    image = f"{reg.host_port}/lab/app:latest"
    ctx, _ = plan_context(tmp_path / "root", "containerd", image, timeout=timeout)
    report, findings = asyncio.run(run_test_pull(ctx, parse(image), "containerd"))
    return report, findings, ctx


def layer(report: dict[str, Any], digest: str) -> dict[str, Any]:
    """The report entry of one layer."""
    return next(l for l in report["layers"] if l["digest"] == digest)


# -- retries and resume -----------------------------------------------------------------------
def test_mid_stream_drop_is_resumed_with_range(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """A connection cut half-way through a layer is resumed with Range, not refetched; pull.retried reports it."""
    target = big_image.layers[2]
    reg = fake(big_image, faults=Faults(drop_once={target.digest}))
    report, findings, _ = pull_from(tmp_path, reg)
    assert report["ok"], report["error"]
    entry = layer(report, target.digest)
    assert entry["attempts"] == 2 and entry["resumed"]
    assert target.size <= entry["received"] < target.size * 1.1
    ranges = [r.headers.get("Range") for r in reg.requests_to(target.digest)]
    assert ranges[0] is None and ranges[1] == f"bytes={target.size // 2}-"
    retried = by_code(findings, "pull.retried")
    assert retried.subject == target.digest and retried.evidence["resumed"]
    assert_timings_consistent(report)


def test_server_ignoring_range_is_hashed_again(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """When the server answers 200 to a Range request, the layer is hashed from the start and still verifies."""
    target = big_image.layers[0]
    reg = fake(big_image, faults=Faults(drop_once={target.digest}, ignore_range=True))
    report, findings, _ = pull_from(tmp_path, reg)
    assert report["ok"]
    entry = layer(report, target.digest)
    assert entry["attempts"] == 2 and not entry["resumed"]
    assert entry["received"] >= target.size * 1.4
    assert "pull.retried" in codes(findings)


def test_transient_503s_are_retried_with_backoff(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """Two 503s before a layer succeeds cost two retries with backoff, counted as waiting inside the layer's ttfb."""
    target = many_layers.layers[1]
    reg = fake(many_layers, faults=Faults(fail_first={target.digest: 2}))
    report, findings, _ = pull_from(tmp_path, reg)
    assert report["ok"]
    entry = layer(report, target.digest)
    assert entry["attempts"] == 3 and [r["status"] for r in entry["retries"]] == [503, 503]
    assert entry["waited_ms"] >= 600 and entry["timings_ms"]["ttfb"] >= entry["waited_ms"]
    assert_timings_consistent(report)


def test_retries_are_bounded(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """A layer that keeps failing stops after the attempt limit and the pull fails naming the blob phase."""
    target = many_layers.layers[0]
    reg = fake(many_layers, faults=Faults(fail_first={target.digest: 50}))
    report, findings, _ = pull_from(tmp_path, reg)
    assert not report["ok"]
    entry = layer(report, target.digest)
    assert entry["attempts"] == 3
    # containerd asks every host of the route in turn (the server is listed twice in hosts.toml).
    assert len(entry["tried"]) == len(report["endpoints"]) - 1
    assert len(reg.requests_to(target.digest)) == 3 * len(report["endpoints"])
    assert by_code(findings, "pull.failed").evidence["phase"] == "blob"


# -- speed ------------------------------------------------------------------------------------
def test_throttled_layer_is_a_slow_layer(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """One layer served at 2 MiB/s among fast ones is pull.slow-layer, naming that layer."""
    target = big_image.layers[3]
    reg = fake(big_image, faults=Faults(throttle={target.digest: 2 * MiB}))
    report, findings, _ = pull_from(tmp_path, reg)
    assert report["ok"]
    slow = by_code(findings, "pull.slow-layer")
    assert slow.subject == target.digest
    assert slow.evidence["bytes_per_second"] < slow.evidence["median_bytes_per_second"] / 4


def test_one_download_at_a_time_is_low_concurrency(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """containerd's max_concurrent_downloads = 1 serialises a slow registry: pull.low-concurrency cites the setting."""
    reg = fake(many_layers, faults=Faults(delay=0.12))
    report, findings, _ = pull_from(tmp_path, reg, max_concurrent_downloads=1)
    assert report["ok"] and report["concurrency"] == 1
    starts = sorted(b["started_ms"] for b in [report["config"], *report["layers"]])
    ends = sorted(b["started_ms"] + b["timings_ms"]["total"] for b in [report["config"], *report["layers"]])
    assert all(s >= e - 1 for s, e in zip(starts[1:], ends[:-1]))  # strictly one after another
    low = by_code(findings, "pull.low-concurrency")
    assert low.evidence["concurrency"] == 1 and low.evidence["blobs"] == 7
    assert low.evidence["concurrency_source"].startswith("/etc/containerd/config.toml")
    assert low.fix is not None and low.fix.files == ("/etc/containerd/config.toml",)


def test_default_concurrency_runs_three_at_once(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """With the default of 3, three blobs download at the same time and a fourth waits."""
    reg = fake(many_layers, faults=Faults(delay=0.2))
    report, _, _ = pull_from(tmp_path, reg)
    blobs = [report["config"], *report["layers"]]
    starts = sorted(b["started_ms"] for b in blobs)
    assert starts[2] - starts[0] < 100 and starts[3] - starts[0] >= 150


# -- rate limits ------------------------------------------------------------------------------
def test_ratelimit_remaining_zero(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """ratelimit-remaining: 0 on the manifest answers is auth.rate-limited with the headers as evidence."""
    reg = fake(many_layers, faults=Faults(ratelimit=(100, 0)))
    report, findings, _ = pull_from(tmp_path, reg)
    limited = by_code(findings, "auth.rate-limited")
    assert limited.evidence["ratelimit"]["remaining"] == "0;w=21600"


def test_429_fails_the_pull_as_rate_limited(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """A 429 on the manifest is auth.rate-limited (Retry-After kept) and the pull fails."""
    reg = fake(many_layers, faults=Faults(status_429=True))
    report, findings, _ = pull_from(tmp_path, reg)
    assert not report["ok"]
    limited = by_code(findings, "auth.rate-limited")
    assert limited.evidence["http_status"] == 429 and limited.evidence["retry_after"] == "60"
    assert "toomanyrequests" in report["runtime_error"] or "429" in report["runtime_error"]


# -- redirects --------------------------------------------------------------------------------
def test_cdn_redirect_drops_authorization_and_is_an_extra_endpoint(
    tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]
) -> None:
    """Blobs redirected to another host get no Authorization; that host is recorded with DNS and proxy evidence."""
    cdn = fake(many_layers, cdn=True, host="127.0.0.2")
    front = fake(many_layers, faults=Faults(basic_auth=(USER, PASSWORD), redirect_to=f"http://cdn.lab.test:{cdn.port}"))
    report, findings, ctx = pull_from(tmp_path, front, auths={front.host_port: (USER, PASSWORD)},
                                      hosts={"cdn.lab.test": "127.0.0.2"})
    assert report["ok"], report["error"]
    blob_requests = cdn.requests_to("/blobs/")
    assert len(blob_requests) == 7
    assert all("Authorization" not in r.headers for r in blob_requests)
    assert all("Authorization" in r.headers for r in front.requests_to("/blobs/"))
    (extra,) = report["extra_endpoints"]
    assert extra["host"] == f"cdn.lab.test:{cdn.port}" and extra["kind"] == "redirect"
    assert extra["via"] == f"{front.url}/v2" and extra["authorization_sent"] is False
    assert extra["dns"]["addresses"] == ["127.0.0.2"] and extra["dns"]["source"] == "hosts"
    assert extra["proxy"] is None and extra["proxy_reason"] == "direct: HTTP_PROXY is not set"
    assert ctx.observations["extra_endpoints"][0]["host"] == extra["host"]
    assert "tls_session" not in extra  # plain-HTTP CDN: no TLS evidence to give
    text = json.dumps(report) + json.dumps([f.to_dict() for f in findings])
    assert "cdn-signature-SECRET" not in text and PASSWORD not in text
    assert_timings_consistent(report)


# -- hostile servers --------------------------------------------------------------------------
@pytest.mark.parametrize(("faults", "phase", "kind"), [
    (Faults(huge_manifest=True), "manifest", "too-large"),
    (Faults(garbage=True), "http", "not-http"),
])
def test_hostile_manifest_answers_are_findings(
    tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry], faults: Faults, phase: str, kind: str
) -> None:
    """A 5 MiB manifest or a non-HTTP answer fails the pull with a finding naming the phase, never a traceback."""
    reg = fake(many_layers, faults=faults)
    report, findings, _ = pull_from(tmp_path, reg)
    assert not report["ok"]
    failed = by_code(findings, "pull.failed")
    assert (failed.evidence["failure"]["phase"], failed.evidence["failure"]["kind"]) == (phase, kind)


def test_lying_digest_header_is_a_digest_mismatch(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """A Docker-Content-Digest that does not match the manifest body is pull.digest-mismatch, not success."""
    reg = fake(many_layers, faults=Faults(wrong_digest_header=True))
    report, findings, _ = pull_from(tmp_path, reg)
    assert not report["ok"]
    mismatch = by_code(findings, "pull.digest-mismatch")
    assert mismatch.subject == reg.host_port
    assert mismatch.evidence["failure"]["details"]["claimed_by"] in ("Docker-Content-Digest", "the digest asked for")


def test_endless_blob_body_is_cut_at_its_size(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """A blob body that never ends is read only up to the declared size and reported as a digest mismatch."""
    reg = fake(many_layers, faults=Faults(endless_blobs=True))
    report, findings, _ = pull_from(tmp_path, reg)
    assert not report["ok"]
    blobs = [report["config"], *report["layers"]]
    assert all(b["received"] <= b["size"] + STREAM_BUFFER for b in blobs)  # at most one read past the size
    assert "pull.digest-mismatch" in codes(findings)


def test_head_refused_and_missing_digest_header_still_resolve(
    tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]
) -> None:
    """HEAD answered 405 and no Docker-Content-Digest: containerd GETs and hashes; the digest is still right."""
    reg = fake(many_layers, faults=Faults(head_405=True, no_digest_header=True))
    report, findings, _ = pull_from(tmp_path, reg)
    assert report["ok"] and report["manifest"]["digest"] == many_layers.digest
    assert [r.method for r in reg.requests_to("/manifests/")][:2] == ["HEAD", "GET"]


def test_progress_reports_bytes_so_far_per_layer(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """The progress callback sees each layer's bytes grow to its size (what the workbench draws)."""
    reg = fake(big_image, faults=Faults(throttle={b.digest: 8 * MiB for b in big_image.layers}))
    containerd_root(tmp_path / "root", reg.host_port, server=reg.url)
    image = f"{reg.host_port}/lab/app:latest"
    ctx, _ = plan_context(tmp_path / "root", "containerd", image)
    seen: dict[str, list[tuple[int, int]]] = {}
    report, _ = asyncio.run(run_test_pull(ctx, parse(image), "containerd",
                                          progress=lambda d, n, size: seen.setdefault(d, []).append((n, size))))
    assert report["ok"]
    for blob in big_image.layers:
        calls = seen[blob.digest]
        assert calls[-1] == (blob.size, blob.size) and len(calls) >= 3
        assert [n for n, _ in calls] == sorted(n for n, _ in calls)


def test_garbage_redirect_location_is_a_finding(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry]) -> None:
    """A blob redirect to an unparsable URL fails the pull with a finding, not a traceback."""
    reg = fake(many_layers, faults=Faults(redirect_to="http://[not-a-host"))
    report, findings, _ = pull_from(tmp_path, reg)
    assert not report["ok"]
    assert "pull.failed" in codes(findings)
    assert all(not b["ok"] for b in [report["config"], *report["layers"]])
