"""The lean body path for 2xx blob answers: which blobs take it, that it keeps every rule of the
httpx path (resume, retries, stall, size bounds, digest check, redirects, proxies, TLS) and that
each case it cannot take falls back to httpx. ``body_reader`` in the report says which path read
the blob's last body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import resource
import shutil
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.fakeregistry import FakeRegistry, Faults
from lab.fixtures import LAB_PROXY_CREDENTIALS
from lab.images import OciImage, build_oci_layout, push
from lab.pki import IssuedCert, LabPKI
from lab.proxy import TinyProxy
from lab.pullroots import containerd_root, plan_context
from lab.registry import Registry
from regtui.net.http import STREAM_BUFFER, make_client
from regtui.net.resolver import Resolver, ResolverConfig
from regtui.refs import parse
from regtui.registry.blobs import download_blob
from regtui.registry.client import BODY_READER_ENV, LEAN_MIN_BYTES
from regtui.registry.flavors import flavor_for
from regtui.registry.manifest import Descriptor
from regtui.registry.pull import open_session
from regtui.registry.pull import test_pull as run_test_pull
from test_pull_faults import USER, PASSWORD, big_image, fake, layer, many_layers, pull_from  # noqa: F401 - fixtures
from test_pull_lab import assert_timings_consistent, by_code, codes
from test_pull_proxy import NAME, named_registry, proxied_root  # noqa: F401 - fixture

MiB = 1024 * 1024


def body_threads() -> list[threading.Thread]:
    """Threads still reading a taken-over body."""
    return [t for t in threading.enumerate() if t.name == "regtui-body" and t.is_alive()]


def blobs_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The config and layer entries of a pull report."""
    return ([report["config"]] if report["config"] else []) + report["layers"]


def pull_into(tmp_path: Path, reg: FakeRegistry, out: Path, *, timeout: float = 2.0,
              **root_kwargs: Any) -> tuple[dict[str, Any], list[Any]]:
    """Pull ``reg``'s lab/app:latest as containerd into the OCI layout ``out``."""
    containerd_root(tmp_path / "root", reg.host_port, server=reg.url, **root_kwargs)
    image = f"{reg.host_port}/lab/app:latest"
    ctx, _ = plan_context(tmp_path / "root", "containerd", image, timeout=timeout)
    return asyncio.run(run_test_pull(ctx, parse(image), "containerd", output_dir=str(out)))


def download_one(tmp_path: Path, reg: FakeRegistry, desc: Any, *, timeout: float = 2.0, sink: Any = None,
                 streams: str | None = None) -> Any:
    """Download one blob of ``reg``'s lab/app:latest through a containerd session (``streams``: that client's stream kind)."""
    containerd_root(tmp_path / "root", reg.host_port, server=reg.url)
    image = f"{reg.host_port}/lab/app:latest"
    ctx, _ = plan_context(tmp_path / "root", "containerd", image, timeout=timeout)
    route = ctx.routes[0]

    async def run() -> Any:
        session = open_session(ctx, route.endpoints[0], ctx.view("containerd"), flavor_for(route), 2)
        if streams is not None:
            session._clients[None] = make_client(session.resolver, session.ssl_context, timeouts=session.timeouts,
                                                 streams=streams)
        try:
            return await download_blob(session, Descriptor(desc.media_type, desc.digest, desc.size), sink=sink)
        finally:
            await session.aclose()

    return asyncio.run(run())


def assert_layout_holds(out: Path, image: OciImage) -> None:
    """Every layer of ``image`` is in ``out`` under its digest with the right bytes, and no partial file is left."""
    for desc in image.layers:
        algorithm, hexdigest = desc.digest.split(":", 1)
        data = (out / "blobs" / algorithm / hexdigest).read_bytes()
        assert hashlib.sha256(data).hexdigest() == hexdigest
    assert not list(out.rglob("*.partial"))


# -- which path reads which body ----------------------------------------------------------------
def test_large_blobs_over_tls_take_the_lean_path(tmp_path: Path, fake: Callable[..., FakeRegistry],
                                                 cert_factory: Callable[..., IssuedCert],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """By default layers of 3 MiB and more over TLS are read by the lean path, smaller ones and the config by httpx; bytes, timings, TLS evidence hold."""
    monkeypatch.delenv(BODY_READER_ENV, raising=False)
    sizes = [LEAN_MIN_BYTES + 64 * 1024, 2 * MiB, 4 * MiB, LEAN_MIN_BYTES - 64 * 1024]  # payloads; blobs are a little larger
    image = build_oci_layout(tmp_path / "image", layers=len(sizes), layer_size=sizes, seed=43)
    cert = cert_factory()
    reg = fake(image, tls=cert)
    out = tmp_path / "out"
    report, findings = pull_into(tmp_path, reg, out, server_ca=cert.ca_file)
    assert report["ok"], report["error"]
    readers = [l["body_reader"] for l in report["layers"]]
    assert readers == ["lean" if l["size"] >= LEAN_MIN_BYTES else "httpx" for l in report["layers"]]
    assert readers == ["lean", "httpx", "lean", "httpx"]
    assert report["config"]["size"] < LEAN_MIN_BYTES and report["config"]["body_reader"] == "httpx"
    assert all(l["received"] == l["size"] and l["attempts"] == 1 for l in report["layers"])
    assert_layout_holds(out, image)
    assert_timings_consistent(report)
    fresh = [l for l in report["layers"] if not l["timings_ms"]["reused"]]
    assert fresh and all(l["timings_ms"]["tls"] > 0 and l["timings_ms"]["transfer"] > 0 for l in fresh)
    assert not [f for f in findings if f.severity == "error"]


def test_switch_forces_httpx(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """REGTUI_BLOB_BODY=httpx reads every body through httpx (the old path, for comparison)."""
    monkeypatch.setenv(BODY_READER_ENV, "httpx")
    reg = fake(big_image)
    report, _ = pull_into(tmp_path, reg, tmp_path / "out")
    assert report["ok"], report["error"]
    assert {b["body_reader"] for b in blobs_of(report)} == {"httpx"}
    assert_layout_holds(tmp_path / "out", big_image)


def test_switch_lean_takes_small_blobs_too(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """REGTUI_BLOB_BODY=lean reads even 2 KiB blobs through the lean path, over plain HTTP."""
    monkeypatch.setenv(BODY_READER_ENV, "lean")
    reg = fake(many_layers)
    report, _ = pull_into(tmp_path, reg, tmp_path / "out")
    assert report["ok"], report["error"]
    assert {b["body_reader"] for b in blobs_of(report)} == {"lean"}
    assert_layout_holds(tmp_path / "out", many_layers)


# -- fallbacks ------------------------------------------------------------------------------------
def test_chunked_body_falls_back_to_httpx(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob sent with Transfer-Encoding: chunked is read by httpx even when the lean path is forced."""
    monkeypatch.setenv(BODY_READER_ENV, "lean")
    reg = fake(big_image, faults=Faults(chunked_blobs=True))
    report, _ = pull_into(tmp_path, reg, tmp_path / "out")
    assert report["ok"], report["error"]
    assert {b["body_reader"] for b in blobs_of(report)} == {"httpx"}
    assert_layout_holds(tmp_path / "out", big_image)


def test_stream_without_takeover_falls_back_to_httpx(tmp_path: Path, big_image: OciImage,
                                                     fake: Callable[..., FakeRegistry],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection on another stream (anyio's, as through an https:// proxy) is read by httpx, and verified."""
    monkeypatch.setenv(BODY_READER_ENV, "lean")
    reg = fake(big_image)
    desc = big_image.layers[0]
    result = download_one(tmp_path, reg, desc, streams="anyio")
    assert result.ok and result.body_reader == "httpx" and result.received == desc.size


# -- the rules of the httpx path hold on the lean path ---------------------------------------------
@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every 2xx blob body takes the lean path."""
    monkeypatch.setenv(BODY_READER_ENV, "lean")


def test_lean_mid_stream_drop_is_resumed_with_range(tmp_path: Path, big_image: OciImage,
                                                    fake: Callable[..., FakeRegistry], lean: None) -> None:
    """A connection cut half-way through a lean body is resumed with Range, hashed across both parts."""
    target = big_image.layers[2]
    reg = fake(big_image, faults=Faults(drop_once={target.digest}))
    report, findings = pull_into(tmp_path, reg, tmp_path / "out")
    assert report["ok"], report["error"]
    entry = layer(report, target.digest)
    assert entry["attempts"] == 2 and entry["resumed"] and entry["body_reader"] == "lean"
    assert entry["retries"][0]["kind"] == "closed" and 0 < entry["retries"][0]["bytes_so_far"] < target.size
    assert target.size <= entry["received"] < target.size * 1.1
    ranges = [r.headers.get("Range") for r in reg.requests_to(target.digest) if r.method == "GET"]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert "pull.retried" in codes(findings)
    assert_layout_holds(tmp_path / "out", big_image)
    assert_timings_consistent(report)


def test_lean_server_ignoring_range_is_hashed_again(tmp_path: Path, big_image: OciImage,
                                                    fake: Callable[..., FakeRegistry], lean: None) -> None:
    """A server that answers a resume with the whole blob (200) is hashed from the start again on the lean path."""
    target = big_image.layers[1]
    reg = fake(big_image, faults=Faults(drop_once={target.digest}, ignore_range=True))
    report, _ = pull_into(tmp_path, reg, tmp_path / "out")
    assert report["ok"], report["error"]
    entry = layer(report, target.digest)
    assert entry["attempts"] == 2 and not entry["resumed"] and entry["body_reader"] == "lean"
    assert entry["received"] > target.size
    assert_layout_holds(tmp_path / "out", big_image)


def test_lean_transient_503s_are_retried(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry],
                                         lean: None) -> None:
    """503 answers stay on httpx and are retried; the 2xx body that follows is read lean."""
    target = big_image.layers[0]
    reg = fake(big_image, faults=Faults(fail_first={target.digest: 2}))
    report, _ = pull_into(tmp_path, reg, tmp_path / "out")
    assert report["ok"], report["error"]
    entry = layer(report, target.digest)
    assert entry["attempts"] == 3 and [r["status"] for r in entry["retries"]] == [503, 503]
    assert entry["body_reader"] == "lean"


def test_lean_endless_body_is_cut_at_its_size(tmp_path: Path, many_layers: OciImage, fake: Callable[..., FakeRegistry],
                                              lean: None) -> None:
    """A body without Content-Length that never ends is refused one read past the declared size; no file is left."""
    reg = fake(many_layers, faults=Faults(endless_blobs=True))
    out = tmp_path / "out"
    report, findings = pull_into(tmp_path, reg, out)
    assert not report["ok"]
    assert all(b["body_reader"] == "lean" and b["size"] < b["received"] <= b["size"] + STREAM_BUFFER
               for b in blobs_of(report))
    assert "pull.digest-mismatch" in codes(findings)
    assert not [p for p in out.rglob("*") if p.is_file() and "sha256" in p.parts and p.stat().st_size != 0
                and p.name in {b["digest"].split(":")[1] for b in blobs_of(report)}]
    assert not list(out.rglob("*.partial"))


def test_lean_wrong_content_is_a_digest_mismatch_and_leaves_no_file(
    tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry], lean: None
) -> None:
    """A layer whose bytes do not hash to its digest fails with pull.digest-mismatch and nothing is kept of it."""
    layout = tmp_path / "layout"
    shutil.copytree(big_image.layout_dir, layout)
    target = big_image.layers[3]
    algorithm, hexdigest = target.digest.split(":", 1)
    path = layout / "blobs" / algorithm / hexdigest
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    reg = FakeRegistry(layout).start()
    try:
        out = tmp_path / "out"
        report, findings = pull_into(tmp_path, reg, out)
    finally:
        reg.stop()
    assert not report["ok"]
    entry = layer(report, target.digest)
    assert entry["body_reader"] == "lean" and entry["error"]["kind"] == "digest-mismatch"
    assert by_code(findings, "pull.digest-mismatch").subject == target.digest
    assert not (out / "blobs" / algorithm / hexdigest).exists()
    assert not list(out.rglob("*.partial"))


def test_lean_stalled_body_is_stalled(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry],
                                      lean: None) -> None:
    """A lean body that brings fewer than 64 KiB per --timeout window ends as a stalled blob failure, retried once."""
    target = big_image.layers[0]
    reg = fake(big_image, faults=Faults(throttle={target.digest: 1024.0}))
    report, _ = pull_into(tmp_path, reg, tmp_path / "out", timeout=0.5)
    assert not report["ok"]
    entry = layer(report, target.digest)
    assert entry["body_reader"] == "lean" and entry["attempts"] == 2
    assert [r["kind"] for r in entry["retries"]] == ["stalled", "stalled"]
    assert entry["error"]["timed_out"] and entry["error"]["details"]["window_bytes"] < 64 * 1024
    assert not list((tmp_path / "out").rglob("*.partial"))
    assert not body_threads(), "a stalled body's thread must have let go before the pull ends"


def test_lean_cdn_redirect_target_gets_no_authorization(tmp_path: Path, big_image: OciImage,
                                                        fake: Callable[..., FakeRegistry], lean: None) -> None:
    """Blobs redirected to another host are read lean from that host, which never sees the registry's credentials."""
    cdn = fake(big_image, cdn=True, host="127.0.0.2")
    front = fake(big_image, faults=Faults(basic_auth=(USER, PASSWORD), redirect_to=f"http://cdn.lab.test:{cdn.port}"))
    report, findings, _ = pull_from(tmp_path, front, auths={front.host_port: (USER, PASSWORD)},
                                    hosts={"cdn.lab.test": "127.0.0.2"})
    assert report["ok"], report["error"]
    assert {b["body_reader"] for b in blobs_of(report)} == {"lean"}
    assert len(cdn.requests_to("/blobs/")) == 5
    assert all("Authorization" not in r.headers for r in cdn.requests_to("/blobs/"))
    assert all("Authorization" in r.headers for r in front.requests_to("/blobs/"))
    assert report["extra_endpoints"][0]["authorization_sent"] is False
    text = json.dumps(report) + json.dumps([f.to_dict() for f in findings])
    assert "cdn-signature-SECRET" not in text and PASSWORD not in text
    assert_timings_consistent(report)


@pytest.mark.lab
def test_lean_through_authenticating_proxy(
    tmp_path: Path, named_registry: tuple[Registry, OciImage], tinyproxy_factory: Callable[..., TinyProxy],
    hosts_file_factory: Callable[[dict[str, str]], Path], lean: None,
) -> None:
    """Through a proxy with CONNECT and credentials, the real registry's blobs are read lean over the tunnel's TLS."""
    registry, image = named_registry
    proxy = tinyproxy_factory(auth=LAB_PROXY_CREDENTIALS, hosts_file=hosts_file_factory({NAME: "127.0.0.1"}))
    root = proxied_root(tmp_path, registry, proxy.url)
    ref = f"{NAME}:{registry.port}/lab/app:latest"
    ctx, _ = plan_context(root, "containerd", ref)
    report, findings = asyncio.run(run_test_pull(ctx, parse(ref), "containerd", output_dir=str(tmp_path / "out")))
    assert report["ok"], report["error"]
    assert {b["body_reader"] for b in blobs_of(report)} == {"lean"}
    assert f"CONNECT {NAME}:{registry.port}" in proxy.proxy_log()
    assert_layout_holds(tmp_path / "out", image)
    assert_timings_consistent(report)
    text = json.dumps(report) + json.dumps([f.to_dict() for f in findings])
    assert LAB_PROXY_CREDENTIALS[1] not in text


@pytest.mark.lab
def test_lean_from_the_real_registry_by_default(tmp_path: Path, registry_factory: Callable[..., Registry],
                                                cert_factory: Callable[..., IssuedCert],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian's docker-registry over TLS with htpasswd: its 4 MiB layers are read lean by default and verified."""
    monkeypatch.delenv(BODY_READER_ENV, raising=False)
    registry = registry_factory(tls=cert_factory(), auth=(USER, PASSWORD))
    image = build_oci_layout(tmp_path / "image", layers=3, layer_size=4 * MiB, seed=7)
    push(image, registry, "lab/app")
    containerd_root(tmp_path / "root", registry.host_port, server=registry.url, server_ca=registry.ca_file,
                    auths={registry.host_port: (USER, PASSWORD)})
    ref = f"{registry.host_port}/lab/app:latest"
    ctx, _ = plan_context(tmp_path / "root", "containerd", ref)
    report, _ = asyncio.run(run_test_pull(ctx, parse(ref), "containerd", output_dir=str(tmp_path / "out")))
    assert report["ok"], report["error"]
    assert [l["body_reader"] for l in report["layers"]] == ["lean"] * 3
    assert_layout_holds(tmp_path / "out", image)
    assert_timings_consistent(report)


# -- the takeover itself: where the header block ends ------------------------------------------------
BODY = bytes(range(256)) * 1024  # 256 KiB


async def _serve_once(answer: list[bytes]) -> tuple[asyncio.AbstractServer, int]:
    """A one-shot HTTP server on loopback that reads a request and writes ``answer`` piece by piece."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for piece in answer:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.005)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _take(answer: list[bytes], *, read_first: bool = False) -> tuple[bool, bytes]:
    """GET from a server sending ``answer``; whether the body could be taken over, and the body as received."""
    server, port = await _serve_once(answer)
    resolver = Resolver(ResolverConfig((("127.0.0.1", 53),)), 1.0)  # an address literal: never asked
    client = make_client(resolver, ssl.create_default_context(), streams="asyncio")
    got = bytearray()
    try:
        async with client.stream("GET", f"http://127.0.0.1:{port}/blob") as response:
            stream = response.extensions["network_stream"]
            chunks = response.aiter_raw()
            if read_first:
                got += await chunks.__anext__()
            done = stream.take_body(lambda view: got.extend(view), int(response.headers["content-length"]) - len(got))
            if done is None:
                async for chunk in chunks:
                    got += chunk
                return False, bytes(got)
            await asyncio.wait_for(done, 5)
            return True, bytes(got)
    finally:
        await client.aclose()
        server.close()


HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY)


@pytest.mark.parametrize("answer", [
    [HEAD + BODY],
    [b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD + BODY[:1000], BODY[1000:]],
    [bytes([b]) for b in HEAD] + [BODY],
    [HEAD.replace(b"\r\n", b"\n") + BODY[:5], BODY[5:]],
], ids=["one-write", "informational-first", "headers-byte-by-byte", "bare-newlines"])
def test_body_is_taken_over_whole_wherever_the_headers_end(answer: list[bytes]) -> None:
    """The body taken over is exactly the body, whether it arrives with the headers, after a 1xx, or after dripped headers."""
    taken, body = asyncio.run(_take(answer))
    assert taken and body == BODY


def test_body_already_read_by_httpx_is_not_taken_over() -> None:
    """Once httpx has read part of a body, the takeover is refused and httpx reads the rest."""
    taken, body = asyncio.run(_take([HEAD + BODY[:100], BODY[100:]], read_first=True))
    assert not taken and body == BODY


def test_body_is_consumed_off_the_event_loop() -> None:
    """A taken-over body is read and consumed by a worker thread, so the event loop (and other bodies) are not held up."""
    loop_thread = threading.get_ident()
    seen: set[int] = set()

    async def run() -> bytes:
        server, port = await _serve_once([HEAD + BODY])
        resolver = Resolver(ResolverConfig((("127.0.0.1", 53),)), 1.0)
        client = make_client(resolver, ssl.create_default_context(), streams="asyncio")
        got = bytearray()

        def consume(view: memoryview) -> None:
            seen.add(threading.get_ident())
            got.extend(view)

        try:
            async with client.stream("GET", f"http://127.0.0.1:{port}/blob") as response:
                taken = response.extensions["network_stream"].take_body(consume, len(BODY))
                assert taken is not None
                await asyncio.wait_for(taken, 5)
            return bytes(got)
        finally:
            await client.aclose()
            server.close()

    assert asyncio.run(run()) == BODY
    assert seen and loop_thread not in seen


def test_lean_progress_is_reported_on_the_event_loop(tmp_path: Path, big_image: OciImage,
                                                      fake: Callable[..., FakeRegistry], lean: None) -> None:
    """Progress callbacks of lean bodies run on the event loop's thread (a UI may update from them), and end at each size."""
    reg = fake(big_image, faults=Faults(throttle={d.digest: 4 * MiB for d in big_image.layers}))
    containerd_root(tmp_path / "root", reg.host_port, server=reg.url)
    image = f"{reg.host_port}/lab/app:latest"
    ctx, _ = plan_context(tmp_path / "root", "containerd", image, timeout=5.0)
    calls: list[tuple[int, str, int, int]] = []

    def progress(digest: str, so_far: int, size: int) -> None:
        calls.append((threading.get_ident(), digest, so_far, size))

    report, _ = asyncio.run(run_test_pull(ctx, parse(image), "containerd", progress=progress))
    assert report["ok"], report["error"]
    assert {l["body_reader"] for l in report["layers"]} == {"lean"}
    assert calls and {t for t, *_ in calls} == {threading.get_ident()}
    last = {d: so_far for _, d, so_far, _ in calls}
    assert all(last[l.digest] == l.size for l in big_image.layers)
    assert any(0 < so_far < size for _, _, so_far, size in calls), "progress while the bodies arrive, not only at the end"


def test_lean_with_a_client_certificate(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry],
                                        lean: None) -> None:
    """A registry that demands a client certificate gets the one hosts.toml names on every lean connection; without it the pull fails."""
    pki = LabPKI()
    server = pki.issue(tmp_path / "pki")
    client = pki.issue(tmp_path / "pki", name="client", client=True)
    reg = fake(big_image, tls=server, client_ca=server.ca_file)
    out = tmp_path / "out"
    report, findings = pull_into(tmp_path, reg, out, server_ca=server.ca_file,
                                 server_client=(client.chain_file, client.key_file))
    assert report["ok"], report["error"]
    assert [l["body_reader"] for l in report["layers"]] == ["lean"] * 4
    assert_layout_holds(out, big_image)
    assert not [f for f in findings if f.severity == "error"]
    shutil.rmtree(tmp_path / "root")
    report, _ = pull_into(tmp_path, reg, tmp_path / "out2", server_ca=server.ca_file)
    assert not report["ok"]


def test_cancelled_pull_stops_its_body_threads_at_once(tmp_path: Path, big_image: OciImage,
                                                       fake: Callable[..., FakeRegistry], lean: None) -> None:
    """Cancelling a pull in the middle of lean bodies stops their threads promptly and leaves no partial file."""
    reg = fake(big_image, faults=Faults(throttle={d.digest: 128 * 1024 for d in big_image.layers}))
    containerd_root(tmp_path / "root", reg.host_port, server=reg.url)
    image = f"{reg.host_port}/lab/app:latest"
    ctx, _ = plan_context(tmp_path / "root", "containerd", image, timeout=30.0)
    out = tmp_path / "out"

    async def run() -> float:
        task = asyncio.create_task(run_test_pull(ctx, parse(image), "containerd", output_dir=str(out)))
        for _ in range(100):  # until a body thread runs (bounded: 10 s)
            if body_threads():
                break
            await asyncio.sleep(0.1)
        assert body_threads(), "no body was taken over"
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        return time.monotonic() - began

    took = asyncio.run(run())
    assert took < 5, f"cancelling took {took:.1f} s with a 30 s read timeout"
    assert not body_threads()
    assert not list(out.rglob("*.partial"))


# -- review findings: resets, slow disks, no threads, high descriptors ------------------------------
async def _tls_reset_after_request(cert: IssuedCert, answer: bytes) -> tuple[str, str, str]:
    """A TLS server that sends ``answer`` and then resets the connection: the failure a pull session classifies."""
    from regtui.registry.errors import classify_exception

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert.chain_file, cert.key_file)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer:
            writer.write(answer)
            await writer.drain()
            await asyncio.sleep(0.1)
        sock = writer.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    resolver = Resolver(ResolverConfig((("127.0.0.1", 53),)), 1.0)
    client = make_client(resolver, ssl.create_default_context(cafile=str(cert.ca_file)), streams="asyncio")
    url = f"https://127.0.0.1:{port}/v2/"
    try:
        if not answer:
            await client.get(url)
        else:
            async with client.stream("GET", url) as response:
                taken = response.extensions["network_stream"].take_body(lambda view: None, 1 << 20)
                assert taken is not None
                await asyncio.wait_for(taken, 5)
        raise AssertionError("the reset went unnoticed")
    except Exception as exc:  # noqa: BLE001 - the classifier is what is tested
        failure = classify_exception(exc, url)
        return failure.kind, failure.message, failure.go_error
    finally:
        await client.aclose()
        server.close()


@pytest.mark.parametrize("when", ["before-headers", "mid-body"])
def test_tls_reset_is_a_reset_not_an_eof(when: str, cert_factory: Callable[..., IssuedCert]) -> None:
    """A peer that resets a TLS connection is reported as Go does ("connection reset by peer"), not as a clean close."""
    answer = b"" if when == "before-headers" else b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 1000
    kind, message, go_error = asyncio.run(_tls_reset_after_request(cert_factory(), answer))
    assert kind == "reset", (kind, message)
    assert "connection reset by peer" in go_error


class _SlowDisk:
    """A sink whose third write blocks for longer than the stall window (a disk under writeback)."""

    def __init__(self, pause: float) -> None:
        self.pause, self.calls, self.size = pause, 0, 0
        self.data = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> None:
        self.calls += 1
        if self.calls == 3:
            time.sleep(self.pause)
        self.data.update(data)
        self.size += len(data)

    def restart(self) -> None:
        self.data, self.size = hashlib.sha256(), 0

    def commit(self) -> None:
        """Nothing to keep."""

    def abort(self) -> None:
        """Nothing to remove."""


def test_slow_disk_is_not_a_stalled_server(tmp_path: Path, fake: Callable[..., FakeRegistry], lean: None) -> None:
    """A file write that blocks past the stall window does not fail the blob: one attempt, every byte written once."""
    image = build_oci_layout(tmp_path / "image", layers=1, layer_size=4 * MiB, seed=44)
    reg = fake(image)
    desc = image.layers[0]
    sink = _SlowDisk(pause=3.0)
    result = download_one(tmp_path, reg, desc, timeout=0.5, sink=sink)
    assert result.ok and result.attempts == 1 and not result.retries, result.retries
    assert result.body_reader == "lean"
    assert sink.size == desc.size and "sha256:" + sink.data.hexdigest() == desc.digest
    assert [r.headers.get("Range") for r in reg.requests_to(desc.digest) if r.method == "GET"] == [None]


def test_no_thread_to_be_had_falls_back_to_httpx(tmp_path: Path, big_image: OciImage, fake: Callable[..., FakeRegistry],
                                                 lean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a host that cannot start a thread the body is read by httpx, and the pull still succeeds."""
    from regtui.net import pipe

    def refuse(self: Any) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(pipe.TakenBody, "start", refuse)
    reg = fake(big_image)
    report, _ = pull_into(tmp_path, reg, tmp_path / "out")
    assert report["ok"], report["error"]
    assert {l["body_reader"] for l in report["layers"]} == {"httpx"}
    assert_layout_holds(tmp_path / "out", big_image)


def test_pooled_connection_reused_above_descriptor_1024() -> None:
    """An idle connection whose descriptor is above 1024 is still reused (the readability check is not select())."""
    async def run() -> int:
        connections = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            try:
                for _ in range(10):
                    await reader.readuntil(b"\r\n\r\n")
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
        client = make_client(Resolver(ResolverConfig((("127.0.0.1", 53),)), 1.0), ssl.create_default_context(),
                             streams="asyncio")
        try:
            for _ in range(5):
                response = await client.get(f"http://127.0.0.1:{port}/x")
                assert response.content == b"ok"
            return connections
        finally:
            await client.aclose()
            server.close()
            for fd in filler:
                os.close(fd)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    assert asyncio.run(run()) == 1
