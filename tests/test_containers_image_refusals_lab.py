"""Configurations that make containers/image refuse a pull before any request, with skopeo as referee.

Each case writes a fake root for CRI-O whose registries.conf (or certs.d) the runtime cannot use,
runs regtui's whole check against the lab registry, and runs ``skopeo inspect`` on the same file:
both must say the pull fails, for the same reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.fixtures import LAB_REPO, LAB_TAG
from lab.images import OciImage
from lab.pullroots import crio_root
from lab.registry import Registry
from regtui.engine import run_check
from regtui.host import Host
from regtui.report import Report
from regtui.options import CheckOptions
from test_pull_lab import skopeo_inspect

pytestmark = pytest.mark.lab


def check(root: Path, image: str) -> Report:
    """regtui's whole check (probes and test pull included) of ``image`` for CRI-O under ``root``."""
    options = CheckOptions(root=str(root), images=(image,), runtime="crio", timeout=2.0)
    return run_check(options, Host(root=root, environ={}))


def test_v1_search_entry_with_scheme_refuses_like_skopeo(tmp_path: Path, registry_tls: Registry,
                                                         lab_image: OciImage) -> None:
    """A v1 [registries.search] entry with http:// stops loading (ConvertToV2 + postProcessRegistries): skopeo and regtui fail."""
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    conf = crio_root(tmp_path / "root", registry_tls.host_port, cas={registry_tls.host_port: registry_tls.ca_file})
    conf.write_text(f'# v1 format\n[registries.search]\nregistries = ["http://{registry_tls.host_port}"]\n')
    report = check(tmp_path / "root", image)
    [verdict] = report.verdicts
    assert verdict.status == "fails", verdict.summary
    assert verdict.cause is not None and verdict.cause.phase == "config"
    cause = next(f for f in report.findings if f.id == verdict.cause.finding)
    message = f"invalid location 'http://{registry_tls.host_port}': URI schemes are not supported"
    assert cause.code == "config.invalid-value" and cause.evidence["error"] == message
    assert cause.evidence["file"] == "/etc/containers/registries.conf" and cause.evidence["line"] == 3
    assert report.pull is None or not report.pull.get("ok")
    rc, _, err = skopeo_inspect(image, conf, tmp_path / "skopeo", "--cert-dir", str(registry_tls.tls.ca_dir))
    assert rc != 0 and message in err, err


def test_dangling_client_cert_fails_like_skopeo(tmp_path: Path, registry_tls: Registry, lab_image: OciImage) -> None:
    """A certs.d/<host> whose client.cert link dangles fails the pull in skopeo (SetupCertificates) and in regtui.

    Without the dangling link the same directory pulls (control), so the link alone makes the difference.
    """
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    root = tmp_path / "root"
    conf = crio_root(root, registry_tls.host_port, cas={registry_tls.host_port: registry_tls.ca_file})
    certs = root / "etc/containers/certs.d" / registry_tls.host_port
    (certs / "client.key").write_text("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n")
    control = check(root, image)
    assert [v.status for v in control.verdicts] == ["fails"]  # a lone client.key: missing client.cert (control case)
    rc, _, err = skopeo_inspect(image, conf, tmp_path / "skopeo", "--cert-dir", str(certs))
    assert rc != 0 and "missing client certificate client.cert for key client.key" in err, err
    os.symlink("/nonexistent/lab/client.pem", certs / "client.cert")
    report = check(root, image)
    [verdict] = report.verdicts
    assert verdict.status == "fails", verdict.summary
    assert verdict.cause is not None and verdict.cause.code == "tls.cert-file-unreadable"
    assert verdict.cause.phase == "config"
    [endpoint] = report.routes[0].endpoints
    assert endpoint.status == "failed" and endpoint.tls.client_cert == ()
    assert report.pull is not None and not report.pull["ok"]
    host_dir = f"/etc/containers/certs.d/{registry_tls.host_port}"
    assert report.pull["endpoints"][0]["phase"] == "config"
    assert report.pull["endpoints"][0]["go_error"] == f"open {host_dir}/client.cert: no such file or directory"
    rc, _, err = skopeo_inspect(image, conf, tmp_path / "skopeo", "--cert-dir", str(certs))
    assert rc != 0 and f"open {certs}/client.cert: no such file or directory" in err, err
    os.remove(certs / "client.cert")
    os.remove(certs / "client.key")
    rc, digest, err = skopeo_inspect(image, conf, tmp_path / "skopeo", "--cert-dir", str(certs))
    assert rc == 0 and digest == lab_image.digest, err
    assert [v.status for v in check(root, image).verdicts] == ["ok"]
