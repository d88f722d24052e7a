"""Verdicts against the lab: real registries, real runtime configs in fake roots, the whole `regtui check`.

Each failure class gives the status, cause code and endpoint a user needs; where the cause has a fix,
`regtui fix <id> --apply --yes` is applied and the re-check's verdict is ok.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lab.dns import Dnsmasq
from lab.fakeregistry import FakeRegistry, Faults
from lab.fixtures import LAB_REPO, LAB_TAG
from lab.images import OciImage, push
from lab.pki import IssuedCert
from lab.pullroots import containerd_root, crio_root, docker_root
from lab.registry import Registry
from lab.sockets import TcpBlackHole
from lab.verdicts import HOSTS, check, finding_by_id, verdict
from lab.verdicts import cli_args as _args
from lab.verdicts import lab_image_ref as _image
from lab.verdicts import lab_name as _name
from regtui.cli import main

pytestmark = pytest.mark.lab


def test_clean_host_is_ok_for_every_runtime(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """containerd, CRI-O and Docker all configured for a TLS registry they trust: ok everywhere, no error finding."""
    name, root = _name(registry_tls), tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
    crio_root(root, name, cas={name: registry_tls.ca_file}, hosts=HOSTS)
    docker_root(root, {}, cas={name: registry_tls.ca_file}, hosts=HOSTS)
    report, data = check(root, _image(registry_tls))
    assert {v["runtime"]: v["status"] for v in data["verdicts"]} == {"docker": "ok", "containerd": "ok", "crio": "ok"}
    assert all(v["cause"] is None and v["fix"] is None for v in data["verdicts"])
    assert not [f for f in data["findings"] if f["severity"] == "error"]
    assert report.exit_code == 0
    rc = main(["check", *_args(root, _image(registry_tls), "containerd")])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and out[1] == f"[ok] containerd pulls {_image(registry_tls)} from {name}."


def test_untrusted_ca_fails_and_its_fix_makes_it_ok(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """containerd without the registry's CA: fails on tls.unknown-authority at that endpoint; its fix, applied, gives ok."""
    name, root = _name(registry_tls), tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", hosts=HOSTS)
    report, data = check(root, _image(registry_tls), "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails" and report.exit_code == 1
    assert (v["cause"]["code"], v["cause"]["endpoint"], v["cause"]["phase"]) == (
        "tls.unknown-authority", f"https://{name}/v2", "tls")
    cause = finding_by_id(data, v["cause"]["finding"])
    assert v["fix"] == cause["fix"]["id"] and cause["fix"]["kind"] == "edit"
    assert [finding_by_id(data, i)["code"] for i in v["chain"]] == ["pull.failed", "tls.unknown-authority"]
    assert f"({name}, TLS handshake)" in v["summary"]

    rc = main(["check", *_args(root, _image(registry_tls), "containerd")])
    text = capsys.readouterr().out
    assert rc == 1 and text.splitlines()[1].startswith("[XX] containerd cannot pull")
    assert f"fix: regtui fix {v['fix']}" in text

    rc = main(["fix", v["fix"], *_args(root, _image(registry_tls), "containerd"), "--no-pull", "--apply", "--yes",
               "--ca-file", str(registry_tls.ca_file)])  # the server does not send its root
    assert rc == 0, capsys.readouterr().out
    _, after = check(root, _image(registry_tls), "containerd")
    assert verdict(after, "containerd")["status"] == "ok", (verdict(after, "containerd"), [(f["id"], f["title"]) for f in after["findings"]])


def test_expired_certificate_fails_with_the_date_and_no_fix(tmp_path: Path, registry_factory: Callable[..., Registry],
                                                            cert_factory: Callable[..., IssuedCert],
                                                            lab_image: OciImage) -> None:
    """An expired leaf at the registry: fails on tls.expired, the summary gives the date, the fix is by hand."""
    cert = cert_factory("expired")
    registry = registry_factory(tls=cert)
    push(lab_image, registry, LAB_REPO)
    name, root = _name(registry), tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", server_ca=cert.ca_file, hosts=HOSTS)
    _, data = check(root, _image(registry), "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails" and v["cause"]["code"] == "tls.expired"
    assert "certificate expired on " in v["summary"] and v["fix"] is None and v["manual"]


@pytest.mark.parametrize("kind", ["black-hole", "missing-image"])
def test_failing_mirror_before_a_good_upstream_is_degraded(
    kind: str, tmp_path: Path, registry_tls: Registry, lab_image: OciImage, tcp_black_hole: TcpBlackHole,
    registry_factory: Callable[..., Registry],
) -> None:
    """A black-holed or empty (404) mirror before a good upstream: degraded, the mirror is the cause."""
    if kind == "black-hole":
        mirror = {"url": f"https://{tcp_black_hole.host_port}", "skip_verify": True}
        code, host = "mirror.unreachable", tcp_black_hole.host_port
    else:
        empty = registry_factory()
        mirror = {"url": empty.url}
        code, host = "mirror.missing-image", empty.host_port
    name, root = _name(registry_tls), tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS, mirrors=[mirror])
    report, data = check(root, _image(registry_tls), "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "degraded", v
    assert v["cause"]["code"] == code and host in v["cause"]["endpoint"]
    assert v["endpoint"] == f"https://{name}/v2" and f"from {name}, but" in v["summary"]
    if kind == "black-hole":
        assert "every pull waits" in v["summary"], v["summary"]
    assert report.exit_code == 0


def test_dead_daemon_proxy_fails_naming_the_proxy(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                  closed_port: int) -> None:
    """containerd's HTTPS_PROXY points at a closed port: fails, the cause is proxy.unreachable, the registry is not blamed."""
    name, root = _name(registry_tls), tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
    dropin = root / "etc/systemd/system/containerd.service.d/http-proxy.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text(f'[Service]\nEnvironment="HTTPS_PROXY=http://127.0.0.1:{closed_port}"\n')
    _, data = check(root, _image(registry_tls), "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails" and (v["cause"]["code"], v["cause"]["phase"]) == ("proxy.unreachable", "proxy")
    assert f"127.0.0.1:{closed_port}" in v["summary"]
    for route in data["routes"]:
        for ep in route["endpoints"]:
            assert ep["status"] != "failed" or f"proxy 127.0.0.1:{closed_port}" in ep["reason"], ep


def test_missing_credentials_fail_with_auth_missing(tmp_path: Path, registry_tls_auth: Registry,
                                                    lab_image: OciImage) -> None:
    """CRI-O against an htpasswd registry with no credentials: fails on auth.missing at the registry."""
    name, root = _name(registry_tls_auth), tmp_path / "root"
    crio_root(root, name, cas={name: registry_tls_auth.ca_file}, hosts=HOSTS)
    _, data = check(root, _image(registry_tls_auth), "crio")
    v = verdict(data, "crio")
    assert v["status"] == "fails" and v["cause"]["code"] == "auth.missing"
    assert v["cause"]["endpoint"] == f"https://{name}/v2" and v["cause"]["phase"] in ("auth", "http")


def test_missing_tag_fails_with_manifest_unknown(tmp_path: Path, registry_tls: Registry, lab_image: OciImage) -> None:
    """A tag the registry does not have: fails on pull.manifest-unknown."""
    name, root = _name(registry_tls), tmp_path / "root"
    crio_root(root, name, cas={name: registry_tls.ca_file}, hosts=HOSTS)
    _, data = check(root, _image(registry_tls, "no-such-tag"), "crio")
    v = verdict(data, "crio")
    assert v["status"] == "fails" and v["cause"]["code"] == "pull.manifest-unknown"


def test_no_pull_on_a_clean_host_is_unknown_and_says_what_was_not_tested(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage
) -> None:
    """--no-pull with a working endpoint: unknown, with the untested test pull named."""
    name, root = _name(registry_tls), tmp_path / "root"
    crio_root(root, name, cas={name: registry_tls.ca_file}, hosts=HOSTS)
    _, data = check(root, _image(registry_tls), "crio", no_pull=True)
    v = verdict(data, "crio")
    assert v["status"] == "unknown" and any("--no-pull" in u for u in v["untested"])



def test_name_that_does_not_resolve_fails_with_dns(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                   dnsmasq: Dnsmasq) -> None:
    """A registry name the resolver answers NXDOMAIN for: fails, the cause is dns.nxdomain (the resolver, not the registry)."""
    name, root = f"registry.nx.test:{registry_tls.port}", tmp_path / "root"
    crio_root(root, name, cas={name: registry_tls.ca_file})
    _, data = check(root, f"{name}/{LAB_REPO}:{LAB_TAG}", "crio", dns_server=f"{dnsmasq.host}:{dnsmasq.port}")
    v = verdict(data, "crio")
    # The root's resolv.conf names 127.0.0.1:53, where nothing answers: what the runtime would use times out.
    assert v["status"] == "fails" and v["cause"]["code"] in ("dns.nxdomain", "dns.timeout"), v
    assert v["cause"]["phase"] == "dns" and "registry.nx.test" in v["summary"], v


def test_corrupt_layer_fails_with_digest_mismatch(tmp_path: Path, registry_factory: Callable[..., Registry],
                                                  image_factory: Callable[..., OciImage]) -> None:
    """A stored layer whose bytes no longer match its digest: fails on pull.digest-mismatch."""
    registry = registry_factory()
    image = image_factory(seed=21)
    push(image, registry, LAB_REPO)
    registry.corrupt_blob(image.layers[0].digest)
    root = tmp_path / "root"
    containerd_root(root, registry.host_port, server=registry.url)
    _, data = check(root, f"{registry.host_port}/{LAB_REPO}:{LAB_TAG}", "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails" and v["cause"]["code"] == "pull.digest-mismatch"


def test_rate_limited_registry_fails_with_rate_limit(tmp_path: Path, lab_image: OciImage) -> None:
    """A registry answering 429 to every manifest request: fails on auth.rate-limited."""
    with FakeRegistry(lab_image.layout_dir, faults=Faults(status_429=True)) as limited:
        root = tmp_path / "root"
        crio_root(root, limited.host_port, insecure=True)
        _, data = check(root, f"{limited.host_port}/{LAB_REPO}:{LAB_TAG}", "crio")
    v = verdict(data, "crio")
    assert v["status"] == "fails" and v["cause"]["code"] == "auth.rate-limited"


def test_dockerd_behind_a_dead_proxy_blames_the_proxy(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                      closed_port: int) -> None:
    """dockerd's proxy is a closed port: its plain-http retry ends in a reset, but the verdict names the proxy."""
    name, root = _name(registry_tls), tmp_path / "root"
    docker_root(root, {"proxies": {"https-proxy": f"http://127.0.0.1:{closed_port}"}},
                cas={name: registry_tls.ca_file}, hosts=HOSTS)
    _, data = check(root, _image(registry_tls), "docker")
    v = verdict(data, "docker")
    assert v["status"] == "fails" and (v["cause"]["code"], v["cause"]["phase"]) == ("proxy.unreachable", "proxy")
    assert v["cause"]["endpoint"].startswith("https://")
    (pull_failed,) = [f for f in data["findings"] if f["code"] == "pull.failed"]
    assert f"127.0.0.1:{closed_port}" in v["summary"]
    assert f"starts at the proxy http://127.0.0.1:{closed_port}" in pull_failed["detail"]
    assert pull_failed["title"].endswith("(proxy)")
    assert "mirror.http-mismatch" not in {f["code"] for f in data["findings"]}, "dockerd's http retry is no setting"
    assert data["independent_findings"] == []
