"""What the runtime said, against the lab: the journal's pull errors held against the verdict of a real check.

containerd's daemon proxy is a closed port, so the verdict's cause is the proxy; the journal (written
by systemd-journal-remote) holds containerd's own error for that failure and a kubelet x509 error on
another registry. The first is explained by the verdict, the second is not and becomes a finding.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.images import OciImage
from lab.journal import JournalEntry, write_journal
from lab.pullroots import containerd_root
from lab.registry import Registry
from lab.verdicts import HOSTS, check, finding_by_id, lab_image_ref, lab_name, verdict
from regtui.report import render

pytestmark = pytest.mark.lab


def _containerd_failed(image: str, url: str, tail: str) -> str:
    """containerd's CRI line for a failed pull of ``image`` whose request to ``url`` ended in ``tail``."""
    inner = (f'rpc error: code = Unknown desc = failed to pull and unpack image \\"{image}\\": failed to resolve '
             f'reference \\"{image}\\": failed to do request: Head \\"{url}\\": {tail}')
    return (f'time="2026-12-04T10:00:00.000000000Z" level=error msg="PullImage \\"{image}\\" failed" '
            f'error="{inner}"')


def _kubelet_failed(image: str, url: str, tail: str) -> str:
    """kubelet's klog line for the same kind of failure."""
    return (f'E1204 10:00:00.000000    2345 remote_image.go:180] "PullImage from image service failed" '
            f'err="rpc error: code = Unknown desc = failed to pull and unpack image \\"{image}\\": failed to resolve '
            f'reference \\"{image}\\": failed to do request: Head \\"{url}\\": {tail}" image="{image}"')


def _manifest_url(image: str) -> str:
    host, rest = image.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    return f"https://{host}/v2/{repo}/manifests/{tag}"


def test_logged_proxy_error_is_explained_and_an_x509_error_elsewhere_is_a_finding(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, closed_port: int,
) -> None:
    """Dead daemon proxy: containerd's logged proxyconnect error is explained by the verdict (proxy, same endpoint);
    kubelet's x509 error on another registry is not, and is a pull.logged-error finding named in runtime_said."""
    name, root, image = lab_name(registry_tls), tmp_path / "root", lab_image_ref(registry_tls)
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
    dropin = root / "etc/systemd/system/containerd.service.d/http-proxy.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text(f'[Service]\nEnvironment="HTTPS_PROXY=http://127.0.0.1:{closed_port}"\n')
    other = "other.lab.test:8443/team/app:1"
    write_journal(root, [
        JournalEntry("containerd.service", 'level=info msg="starting containerd" version=1.6.20', 7200),
        JournalEntry("containerd.service", _containerd_failed(
            image, _manifest_url(image), f"proxyconnect tcp: dial tcp 127.0.0.1:{closed_port}: connect: connection refused"), 1800),
        JournalEntry("kubelet.service", _kubelet_failed(
            other, _manifest_url(other), "tls: failed to verify certificate: x509: certificate signed by unknown authority"), 900),
        JournalEntry("kubelet.service", 'I1204 10:00:00.000000    2345 kubelet.go:2100] "SyncLoop (PLEG)"', 600),
    ])

    report, data = check(root, image, "containerd")  # the JSON is validated against the schema
    v = verdict(data, "containerd")
    assert v["status"] == "fails" and (v["cause"]["code"], v["cause"]["phase"]) == ("proxy.unreachable", "proxy")
    said = data["runtime_said"]
    by_endpoint = {e["endpoint"]: e for e in said["errors"]}
    assert set(by_endpoint) == {name, "other.lab.test:8443"}, said
    proxy, x509 = by_endpoint[name], by_endpoint["other.lab.test:8443"]
    assert (proxy["status"], proxy["phase"], proxy["verdict"], proxy["finding"]) == (
        "explained", "proxy", f"containerd {image}", None), proxy
    assert (x509["status"], x509["phase"], x509["failure"], x509["via"]) == (
        "unexplained", "tls", "tls-unknown-authority", "kubelet"), x509
    logged = finding_by_id(data, x509["finding"])
    assert (logged["code"], logged["severity"], logged["subject"]) == ("pull.logged-error", "warning", "other.lab.test:8443")
    assert logged["evidence"]["runtime_error"] == x509["error"] and "(kubelet.service)" in logged["evidence"]["source"]
    assert [f["code"] for f in data["findings"]].count("pull.logged-error") == 1
    assert x509["finding"] not in v["chain"]

    md = render(report, "markdown")
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings[:2] == ["What the runtime said", "Findings"]
    section = md[md.index("## What the runtime said"):md.index("## Findings")]
    assert "**explained by the verdict**" in section and "**not explained**" in section
    text = render(report, "text")
    block = text[text.index("what the runtime said"):text.index("runtimes:")]
    assert f"explained by the verdict: containerd {name} proxy" in block
    assert "not explained: containerd (via kubelet) other.lab.test:8443 tls" in block
    html = render(report, "html")
    assert html.index("id=runtime-said") < html.index("id=findings")


def test_logged_error_at_an_endpoint_that_serves_now_is_not_reproduced(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
) -> None:
    """A clean containerd host whose journal still holds an old x509 error for the registry: the pull works now,
    so the error is "not reproduced now" and no finding is raised."""
    name, root, image = lab_name(registry_tls), tmp_path / "root", lab_image_ref(registry_tls)
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
    write_journal(root, [JournalEntry("containerd.service", _containerd_failed(
        image, _manifest_url(image), "tls: failed to verify certificate: x509: certificate signed by unknown authority"),
        5400)])
    report, data = check(root, image, "containerd")
    assert verdict(data, "containerd")["status"] == "ok"
    (e,) = data["runtime_said"]["errors"]
    assert (e["status"], e["endpoint"], e["phase"]) == ("not-reproduced", name, "tls"), e
    assert "serves the pull now" in e["reason"]
    assert not [f for f in data["findings"] if f["code"] == "pull.logged-error"]
    assert report.exit_code == 0
