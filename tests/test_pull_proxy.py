"""The test pull through the daemon's proxy (from containerd's systemd drop-in), with credentials
for the proxy that must never appear anywhere, and a proxy that refuses the tunnel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.fixtures import LAB_PROXY_CREDENTIALS
from lab.images import OciImage, push
from lab.pki import IssuedCert
from lab.proxy import TinyProxy
from lab.pullroots import containerd_root, plan_context, write_root
from lab.registry import Registry
from regtui.refs import parse
from regtui.registry.pull import test_pull as run_test_pull
from test_pull_lab import assert_timings_consistent, by_code

pytestmark = pytest.mark.lab

NAME = "registry.lab.test"


def proxied_root(tmp_path: Path, registry: Registry, proxy_url: str) -> Path:
    """containerd with HTTPS_PROXY in a systemd drop-in and a hosts.toml for registry.lab.test:PORT."""
    root = tmp_path / "root"
    host_port = f"{NAME}:{registry.port}"
    containerd_root(root, host_port, server=f"https://{host_port}", server_ca=registry.ca_file, hosts={NAME: "127.0.0.1"})
    write_root(root, {
        "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n",
        "/etc/systemd/system/containerd.service.d/http-proxy.conf": f'[Service]\nEnvironment="HTTPS_PROXY={proxy_url}"\n',
    }, hosts={NAME: "127.0.0.1"})
    return root


@pytest.fixture
def named_registry(registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert],
                   image_factory: Callable[..., OciImage]) -> tuple[Registry, OciImage]:
    """A TLS registry holding lab/app:latest, reachable as registry.lab.test (loopback IPs are never proxied)."""
    registry = registry_factory(tls=cert_factory())
    image = image_factory(seed=17, layers=2)
    push(image, registry, "lab/app")
    return registry, image


def test_pull_through_authenticating_proxy(
    tmp_path: Path, named_registry: tuple[Registry, OciImage], tinyproxy_factory: Callable[..., TinyProxy],
    hosts_file_factory: Callable[[dict[str, str]], Path],
) -> None:
    """The pull tunnels through the daemon's proxy with its credentials; the report shows it redacted, never the password."""
    registry, image = named_registry
    proxy = tinyproxy_factory(auth=LAB_PROXY_CREDENTIALS, hosts_file=hosts_file_factory({NAME: "127.0.0.1"}))
    root = proxied_root(tmp_path, registry, proxy.url)
    ref = f"{NAME}:{registry.port}/lab/app:latest"
    ctx, _ = plan_context(root, "containerd", ref)
    report, findings = asyncio.run(run_test_pull(ctx, parse(ref), "containerd"))
    assert report["ok"], report["error"]
    assert report["manifest"]["digest"] == image.digest
    assert f"CONNECT {NAME}:{registry.port}" in proxy.proxy_log()
    assert ctx.routes[0].endpoints[0].proxy == f"http://***@127.0.0.1:{proxy.port}"
    assert_timings_consistent(report)
    assert any(not b["timings_ms"]["reused"] and b["timings_ms"]["connect"] > 0 for b in report["layers"] + [report["config"]])
    text = json.dumps(report) + json.dumps([f.to_dict() for f in findings])
    assert LAB_PROXY_CREDENTIALS[1] not in text


def test_proxy_refusing_the_tunnel_is_the_proxy_phase(
    tmp_path: Path, named_registry: tuple[Registry, OciImage], tinyproxy_deny: TinyProxy
) -> None:
    """A proxy answering 403 to CONNECT fails the pull at the proxy phase (pull.failed names it)."""
    registry, _ = named_registry
    root = proxied_root(tmp_path, registry, tinyproxy_deny.url)
    ref = f"{NAME}:{registry.port}/lab/app:latest"
    ctx, _ = plan_context(root, "containerd", ref)
    report, findings = asyncio.run(run_test_pull(ctx, parse(ref), "containerd"))
    assert not report["ok"]
    failed = by_code(findings, "pull.failed")
    assert failed.evidence["phase"] == "proxy"
    assert "proxyconnect" in report["runtime_error"]
