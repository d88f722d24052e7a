"""The mirrors probe against real registries: every endpoint of every route, concurrently.

Routes are planned by the real containerd, CRI-O and Docker planners from configs in fake roots;
the endpoints are lab registries (a stale one, an empty one, TLS with htpasswd), black holes,
closed ports, an NXDOMAIN name from the lab dnsmasq, and a slow registry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lab.dns import Dnsmasq
from lab.fakeregistry import FakeRegistry, Faults
from lab.fixtures import LAB_CREDENTIALS, LAB_REPO, LAB_TAG
from lab.images import OciImage, push
from lab.pullroots import containerd_root, crio_root, docker_root, plan_context
from lab.registry import Registry
from lab.sockets import TcpBlackHole
from regtui.checks import mirrors
from regtui.probecontext import ProbeContext, ProbeResult
from test_pull_lab import by_code, codes

pytestmark = pytest.mark.lab

IMAGE_PATH = f"{LAB_REPO}:{LAB_TAG}"


def probe(ctx: ProbeContext) -> ProbeResult:
    """Run the mirrors probe."""
    return asyncio.run(mirrors.probe(ctx))


def rows(result: ProbeResult, runtime: str | None = None) -> list[dict[str, Any]]:
    """The endpoint rows of the (only, or ``runtime``'s) route."""
    routes = [r for r in result.data["routes"] if runtime is None or r["runtime"] == runtime]
    assert len(routes) == 1
    return routes[0]["endpoints"]


def containerd_ctx(tmp_path: Path, upstream: Registry, mirrors_: list[dict[str, Any]], **kwargs: Any) -> ProbeContext:
    """A context for lab/app:latest on ``upstream`` with containerd mirrors in hosts.toml."""
    timeout = kwargs.pop("timeout", 2.0)
    dns_server = kwargs.pop("dns_server", None)
    containerd_root(tmp_path / "root", upstream.host_port, server=upstream.url, server_ca=upstream.ca_file,
                    mirrors=mirrors_, **kwargs)
    ctx, _ = plan_context(tmp_path / "root", "containerd", f"{upstream.host_port}/{IMAGE_PATH}", timeout=timeout,
                          dns_server=dns_server)
    return ctx


@pytest.fixture
def stale(registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage]) -> tuple[Registry, OciImage]:
    """A plain-HTTP registry serving another image under lab/app:latest."""
    reg = registry_factory()
    other = image_factory(seed=77, layers=1)
    push(other, reg, LAB_REPO)
    return reg, other


@pytest.fixture
def slow_mirror(lab_image: OciImage) -> Iterator[FakeRegistry]:
    """The lab image served with 0.3 s added to every answer."""
    with FakeRegistry(lab_image.layout_dir, faults=Faults(delay=0.3)) as reg:
        yield reg


def test_stale_mirror_and_row_contents(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, stale: tuple[Registry, OciImage]
) -> None:
    """A mirror whose tag digest differs from upstream's is mirror.stale; each row has status, digest, latency, auth."""
    mirror, other = stale
    ctx = containerd_ctx(tmp_path, registry_tls, [{"url": mirror.url}])
    result = probe(ctx)
    first, upstream = rows(result)[0], rows(result)[-1]
    assert (first["status"], first["http_status"], first["digest"]) == ("ok", 200, other.digest)
    assert (upstream["status"], upstream["digest"]) == ("ok", lab_image.digest)
    assert first["latency_ms"] > 0 and first["authentication"]["label"] == "anonymous"
    assert first["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    finding = by_code(result.findings, "mirror.stale")
    assert finding.subject == mirror.host_port
    assert finding.evidence["mirror_digest"] == other.digest and finding.evidence["upstream_digest"] == lab_image.digest
    assert first["key"] == ctx.routes[0].endpoints[0].key and first["url"] == f"{mirror.url}/v2"
    assert ctx.observations["endpoint_status"][("containerd", first["key"])][0] == "ok"


def test_empty_mirror_is_missing_image(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                       registry_factory: Callable[..., Registry]) -> None:
    """A mirror answering 404 for the tag is mirror.missing-image; its row says failed at the manifest phase."""
    empty = registry_factory()
    result = probe(containerd_ctx(tmp_path, registry_tls, [{"url": empty.url}]))
    row = rows(result)[0]
    assert (row["status"], row["phase"], row["http_status"]) == ("failed", "manifest", 404)
    assert by_code(result.findings, "mirror.missing-image").subject == empty.host_port
    assert "mirror.stale" not in codes(result.findings)


def test_unreachable_mirrors_by_phase_and_fallback(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, tcp_black_hole: TcpBlackHole, closed_port: int,
    dnsmasq: Dnsmasq,
) -> None:
    """Black hole (tls timeout), closed port (connect) and NXDOMAIN (dns) mirrors: one finding each, probed at once."""
    timeout = 1.0
    ctx = containerd_ctx(tmp_path, registry_tls, [
        {"url": f"https://{tcp_black_hole.host_port}", "skip_verify": True},
        {"url": f"http://127.0.0.1:{closed_port}"},
        {"url": f"http://mirror.nx.test:{closed_port}"},
    ], timeout=timeout, dns_server=f"{dnsmasq.host}:{dnsmasq.port}", hosts={})
    began = time.monotonic()
    result = probe(ctx)
    elapsed = time.monotonic() - began
    assert elapsed < 2 * timeout + 1.0, "endpoints are probed concurrently: about one timeout in all"
    found = {f.subject: f for f in result.findings if f.code == "mirror.unreachable"}
    assert found[tcp_black_hole.host_port].evidence["phase"] == "tls"
    assert found[tcp_black_hole.host_port].evidence["timed_out"]
    assert "waits 1 s" in found[tcp_black_hole.host_port].detail
    assert found[f"127.0.0.1:{closed_port}"].evidence["phase"] == "connect"
    assert "connection refused" in found[f"127.0.0.1:{closed_port}"].evidence["runtime_will_report"]
    nx = found[f"mirror.nx.test:{closed_port}"]
    assert nx.evidence["phase"] == "dns" and nx.evidence["kind"] == "nxdomain"
    assert "every pull pays its timeout" in nx.detail
    fallback = by_code(result.findings, "mirror.fallback-upstream")
    assert fallback.severity == "info" and len(fallback.evidence["mirrors"]) == 3
    assert rows(result)[-1]["status"] == "ok"


def test_scheme_mismatches_both_ways(
    tmp_path: Path, registry_tls: Registry, registry_plain: Registry, lab_image: OciImage
) -> None:
    """https:// to a plain-HTTP registry and http:// to a TLS one are both mirror.http-mismatch, confirmed by a second connection."""
    ctx = containerd_ctx(tmp_path, registry_tls, [
        {"url": f"https://{registry_plain.host_port}", "skip_verify": True},
        {"url": f"http://{registry_tls.host_port}"},
    ])
    result = probe(ctx)
    found = {f.subject: f for f in result.findings if f.code == "mirror.http-mismatch"}
    plain = found[registry_plain.host_port]
    assert plain.evidence["kind"] == "http-to-https"
    assert plain.evidence["go_error"] == "http: server gave HTTP response to HTTPS client"
    assert plain.fix is not None and plain.fix.params["scheme"] == "http"
    assert "speaks plain HTTP" in plain.title
    tls = [f for f in result.findings if f.code == "mirror.http-mismatch" and "speaks HTTPS" in f.title]
    assert len(tls) == 1 and tls[0].evidence["kind"] == "https-to-http"


def test_slow_mirror_is_slower_than_upstream(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, slow_mirror: FakeRegistry
) -> None:
    """A mirror that takes 0.3 s per answer ahead of a fast upstream is mirror.slower-than-upstream (measured)."""
    result = probe(containerd_ctx(tmp_path, registry_tls, [{"url": slow_mirror.url}]))
    slow = by_code(result.findings, "mirror.slower-than-upstream")
    assert slow.subject == slow_mirror.host_port
    assert slow.evidence["latency_ms"] >= 600 and slow.evidence["faster_latency_ms"] < slow.evidence["latency_ms"] / 2
    assert "mirror.stale" not in codes(result.findings)


def test_auth_missing_and_rejected_on_crio_routes(
    tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage
) -> None:
    """An htpasswd registry without credentials is auth.missing; with a wrong password auth.rejected (no secret shown)."""
    image = f"{registry_tls_auth.host_port}/{IMAGE_PATH}"
    cas = {registry_tls_auth.host_port: registry_tls_auth.ca_file}
    crio_root(tmp_path / "none", registry_tls_auth.host_port, cas=cas)
    ctx, _ = plan_context(tmp_path / "none", "crio", image)
    result = probe(ctx)
    missing = by_code(result.findings, "auth.missing")
    assert missing.evidence["authentication"]["scheme"] == "basic" and rows(result)[0]["authentication"]["status"] == "missing"
    crio_root(tmp_path / "wrong", registry_tls_auth.host_port, cas=cas,
              auths={registry_tls_auth.host_port: (LAB_CREDENTIALS[0], "not-the-password")})
    ctx, _ = plan_context(tmp_path / "wrong", "crio", image)
    result = probe(ctx)
    rejected = by_code(result.findings, "auth.rejected")
    assert rejected.evidence["authentication"]["credentials"].startswith("/run/containers/0/auth.json")
    assert "not-the-password" not in repr(result.data) + repr([f.to_dict() for f in result.findings])


def test_rate_limit_headers_on_head(tmp_path: Path, registry_tls: Registry, lab_image: OciImage) -> None:
    """ratelimit-remaining 0 on the manifest HEAD is auth.rate-limited; the row keeps the headers."""
    with FakeRegistry(lab_image.layout_dir, faults=Faults(ratelimit=(100, 0))) as limited:
        result = probe(containerd_ctx(tmp_path, registry_tls, [{"url": limited.url}]))
    assert rows(result)[0]["ratelimit"]["remaining"] == "0;w=21600"
    assert by_code(result.findings, "auth.rate-limited").subject == limited.host_port


def test_registry_dates_are_recorded_for_the_clock_probe(
    tmp_path: Path, registry_tls: Registry, registry_plain: Registry, lab_image: OciImage
) -> None:
    """Every endpoint's Date header is kept with the local time for the clock probe."""
    ctx = containerd_ctx(tmp_path, registry_tls, [{"url": registry_plain.url}])
    probe(ctx)
    dates = ctx.observations["registry_dates"]
    assert {d["endpoint"] for d in dates} == {f"{registry_plain.url}/v2", f"{registry_tls.url}/v2"}
    for d in dates:
        assert datetime.strptime(d["date"], "%a, %d %b %Y %H:%M:%S GMT")
        assert datetime.fromisoformat(d["local_time"]).tzinfo is not None


def test_docker_skips_plain_http_once_https_answered(tmp_path: Path, registry_tls: Registry, lab_image: OciImage) -> None:
    """On Docker's insecure pair (https then http) the http endpoint is shown skipped once https answered."""
    docker_root(tmp_path / "root", {})
    ctx, _ = plan_context(tmp_path / "root", "docker", f"{registry_tls.host_port}/{IMAGE_PATH}")
    result = probe(ctx)
    https, http = rows(result)
    assert https["status"] == "ok" and https["digest"] == lab_image.digest
    assert http["status"] == "skipped" and "confirmedTLSRegistries" in http["reason"]
    assert not [f for f in result.findings if f.code.startswith("mirror.")]


def test_routes_of_several_runtimes_probe_concurrently(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, tcp_black_hole: TcpBlackHole
) -> None:
    """Black-holed mirrors on a containerd and a CRI-O route together cost about one timeout."""
    timeout = 1.0
    image = f"{registry_tls.host_port}/{IMAGE_PATH}"
    containerd_root(tmp_path / "root", registry_tls.host_port, server=registry_tls.url, server_ca=registry_tls.ca_file,
                    mirrors=[{"url": f"https://{tcp_black_hole.host_port}", "skip_verify": True}])
    crio_root(tmp_path / "root", registry_tls.host_port, mirrors=[{"location": tcp_black_hole.host_port}],
              cas={registry_tls.host_port: registry_tls.ca_file, tcp_black_hole.host_port: registry_tls.ca_file})
    ctx, _ = plan_context(tmp_path / "root", "containerd", image, timeout=timeout)
    crio_ctx, _ = plan_context(tmp_path / "root", "crio", image, timeout=timeout)
    ctx.routes += crio_ctx.routes
    ctx.views += crio_ctx.views
    began = time.monotonic()
    result = probe(ctx)
    assert time.monotonic() - began < 2 * timeout + 1.0
    unreachable = [f for f in result.findings if f.code == "mirror.unreachable"]
    assert {f.runtime for f in unreachable} == {"containerd", "crio"}
    assert all(r["endpoints"][-1]["status"] == "ok" for r in result.data["routes"])
