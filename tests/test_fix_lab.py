"""Network fixes against the lab: the live probe finds the problem, the fix removes it, the runtime's
own client (skopeo) and regtui's test pull agree, and undo brings the problem back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.images import OciImage, push, skopeo_inspect_digest
from lab.pki import IssuedCert
from lab.proxy import TinyProxy
from lab.registry import Registry
from lab.require import require_binary
from regtui import engine, fixes
from regtui.cli import main
from regtui.host import Host
from regtui.options import CheckOptions
from test_fix_kit import DOCKER_27, make_root

pytestmark = pytest.mark.lab


def _network(options: CheckOptions, host: Host) -> engine.NetworkResults:
    p = engine.plan(options, host)
    return asyncio.run(engine.network(p, engine.probe_context(p)))


def test_trusting_a_self_signed_registry_makes_the_pull_succeed(
    registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert],
    image_factory: Callable[..., OciImage], tmp_path: Path,
) -> None:
    """CRI-O/podman vs a self-signed registry: the CA is installed in certs.d after its fingerprint; pulls work."""
    require_binary("skopeo")
    cert = cert_factory("self-signed")
    registry = registry_factory(tls=cert)
    image = image_factory(seed=11, layers=1)
    push(image, registry, "lab/app")
    ref = f"{registry.host_port}/lab/app:{image.tag}"
    root = make_root(tmp_path, {"/etc/containers/registries.conf": "", "/etc/crio/": ""})
    host = Host.from_args(root, {})
    options = CheckOptions(root=str(root), images=(ref,), runtime="crio", timeout=5.0)

    before = _network(options, host)
    assert before.pull is not None and not before.pull["ok"]
    trust = next(f for f in before.findings if f.code in ("tls.self-signed", "tls.unknown-authority")
                 and f.runtime == "crio" and f.fix is not None)
    report = engine.build_report(engine.plan(options, host), before)  # the shape `regtui fix` passes
    plan = fixes.plan(trust, host, options=options, probes=report.probes)
    assert plan.can_apply, plan.blocked
    assert cert.leaf_sha256 in plan.confirm
    (ca_path,) = plan.files
    assert ca_path == f"/etc/containers/certs.d/{registry.host_port}/ca.crt"

    result = fixes.apply(plan, options, host=host, probes=before.probes)
    assert result.applied and result.gone is True, result.message

    after = _network(options, host)
    assert after.pull is not None and after.pull["ok"], after.pull
    assert after.pull["manifest"]["digest"] == image.digest
    cert_dir = str(host.resolve(ca_path).parent)
    rc, err, digest = skopeo_inspect_digest(f"docker://{ref}", extra_args=["--cert-dir", cert_dir], workdir=tmp_path)
    assert rc == 0 and digest == image.digest, err

    assert fixes.undo(str(result.backup_id), options, host=host).ok
    again = _network(options, host)
    assert again.pull is not None and not again.pull["ok"]

    # The same through the command line: --code applies it, the live re-check confirms, exit 0.
    rc = main(["fix", "--root", str(root), "--image", ref, "--runtime", "crio", "--no-pull", "--timeout", "5",
               "--code", trust.code, "--apply", "--yes"])
    assert rc == 0
    assert _network(options, host).pull["ok"]  # type: ignore[index]


def test_https_proxy_scheme_fixed_for_a_plain_http_proxy(tinyproxy: TinyProxy, tmp_path: Path) -> None:
    """HTTPS_PROXY=https:// pointing at tinyproxy (plain HTTP): the live probe flags it; the fix writes http://
    in dockerd's drop-in and the re-run probe no longer flags it."""
    dropin = "/etc/systemd/system/docker.service.d/http-proxy.conf"
    proxy = f"{tinyproxy.host}:{tinyproxy.port}"
    root = make_root(tmp_path, {
        "/lib/systemd/system/docker.service": "[Service]\nExecStart=/usr/bin/dockerd -H fd://\n",
        dropin: f'[Service]\nEnvironment="HTTPS_PROXY=https://{proxy}" "NO_PROXY=localhost"\n',
        "/var/lib/dpkg/status": DOCKER_27, "/etc/docker/daemon.json": "{}\n"})
    host = Host.from_args(root, {})
    options = CheckOptions(root=str(root), images=("registry.example.invalid/app:1",), runtime="docker",
                           timeout=3.0, no_pull=True)
    before = _network(options, host)
    found = [f for f in before.findings if f.code == "proxy.scheme-tls"]
    assert found, [f.code for f in before.findings]
    result = fixes.apply(found[0], options, host=host, probes=before.probes)
    assert result.applied and result.gone is True, result.message
    assert f"HTTPS_PROXY=http://{proxy}" in (root / dropin.lstrip("/")).read_text()
    assert result.restart_command == "systemctl daemon-reload && systemctl restart docker"
