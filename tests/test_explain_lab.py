"""`regtui explain` fed the real runtimes' errors: ctr (containerd), skopeo (containers/image) and dockerd.

For each failure class the real runtime pulls from a lab registry and fails; its own error text is
given to `regtui explain` with a root configured as that runtime was, and the verdict's cause must
be one the text's reading names, at the endpoint the text names. An error the current state no
longer produces (the CA was installed since) must be called unexplained.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.containerd import Containerd
from lab.dns import Dnsmasq, port_53_address
from lab.dockerd import DockerDaemon
from lab.fakeregistry import FakeRegistry, Faults
from lab.fixtures import LAB_REPO
from lab.images import OciImage, push, skopeo_env
from lab.namespaces import can_unshare, run_in_mount_namespace, write_hosts_file
from lab.ntp import Chrony
from lab.pki import IssuedCert
from lab.pullroots import LAB_CONTAINERD_VERSION, containerd_root, crio_root, docker_root
from lab.registry import Registry
from lab.require import require_binary
from lab.verdicts import HOSTS, finding_by_id, lab_image_ref, lab_name
from regtui.cli import main
from regtui.explain import endpoint_host

pytestmark = pytest.mark.lab


def _explain(root: Path, text: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    """`regtui explain --format json` on ``root`` with the runtime's own text (image and runtime from the text)."""
    capsys.readouterr()
    rc = main(["explain", "--root", str(root), "--timeout", "2", "--containerd-version", LAB_CONTAINERD_VERSION,
               "--docker-store", "classic", "--format", "json", *extra, text])
    return rc, json.loads(capsys.readouterr().out)


def _agrees(data: dict[str, Any], failure: str, host: str, cause: str) -> None:
    """The reading names ``failure`` at ``host``; the verdict fails on ``cause`` there, a cause the reading lists."""
    parsed, v = data["parsed"], data["verdict"]
    assert (parsed["failure"], parsed["host"]) == (failure, host), parsed
    assert v["status"] == "fails" and v["cause"]["code"] == cause, v
    assert cause in [c["code"] for c in parsed["causes"]], parsed["causes"]
    assert endpoint_host(v["cause"]["endpoint"]) == host, v
    assert data["explains"]["explains"] is True, data["explains"]


def _ctr(containerd: Containerd, image: str, hosts_dir: Path, hosts_file: Path) -> str:
    pulled = containerd.ctr_pull(image, hosts_dir=hosts_dir, hosts_file=hosts_file, timeout=60)
    assert not pulled.ok, pulled.output
    return pulled.output.strip().splitlines()[-1]


# -- containerd (ctr) -----------------------------------------------------------------------------
def test_ctr_refused_connection_is_explained_by_the_connect_verdict(
        tmp_path: Path, containerd: Containerd, closed_port: int, hosts_file_factory: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """ctr against a closed port: the text reads connect-refused there, and the verdict fails in connect at it."""
    name = f"registry.lab.test:{closed_port}"
    root = tmp_path / "root"
    hosts_dir = containerd_root(root, name, server=f"https://{name}", hosts=HOSTS)
    text = _ctr(containerd, f"{name}/{LAB_REPO}:latest", hosts_dir, hosts_file_factory(HOSTS))
    assert "connection refused" in text
    rc, data = _explain(root, text, capsys)
    assert rc == 1 and data["runtime"] == "containerd"
    assert data["parsed"]["phase"] == data["verdict"]["cause"]["phase"] == "connect"
    _agrees(data, "connect-refused", name, "pull.failed")


def test_ctr_behind_a_dead_proxy_is_explained_by_proxy_unreachable(
        tmp_path: Path, containerd: Containerd, registry_tls: Registry, lab_image: OciImage, closed_port: int,
        hosts_file_factory: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    """ctr with HTTPS_PROXY at a closed port (as the root's containerd drop-in sets it): proxyconnect, explained by
    proxy.unreachable in the proxy phase at the registry it was tunnelling to."""
    name = lab_name(registry_tls)
    proxy = f"http://127.0.0.1:{closed_port}"
    root = tmp_path / "root"
    hosts_dir = containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
    dropin = root / "etc/systemd/system/containerd.service.d/http-proxy.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text(f'[Service]\nEnvironment="HTTPS_PROXY={proxy}"\n')
    pulled = containerd.ctr_pull(lab_image_ref(registry_tls), hosts_dir=hosts_dir,
                                 hosts_file=hosts_file_factory(HOSTS), env={"HTTPS_PROXY": proxy}, timeout=60)
    assert not pulled.ok
    text = pulled.output.strip().splitlines()[-1]
    assert "proxyconnect tcp" in text, text
    rc, data = _explain(root, text, capsys)
    assert rc == 1 and data["parsed"]["details"]["proxy"] == f"127.0.0.1:{closed_port}"
    assert data["verdict"]["cause"]["phase"] == "proxy"
    _agrees(data, "proxy-refused-connection", name, "proxy.unreachable")


def test_ctr_unknown_authority_is_explained_until_the_ca_is_installed(
        tmp_path: Path, containerd: Containerd, registry_tls: Registry, lab_image: OciImage,
        hosts_file_factory: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    """ctr without the registry's CA: explained by tls.unknown-authority; on a root that trusts it now, not explained."""
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    root = tmp_path / "root"
    hosts_dir = containerd_root(root, name, server=f"https://{name}", hosts=HOSTS)
    text = _ctr(containerd, image, hosts_dir, hosts_file_factory(HOSTS))
    assert "x509: certificate signed by unknown authority" in text
    rc, data = _explain(root, text, capsys)
    assert rc == 1 and data["image"] == image
    _agrees(data, "tls-unknown-authority", name, "tls.unknown-authority")
    assert data["verdict"]["fix"], "installing the CA is the fix"

    fixed = tmp_path / "fixed"
    containerd_root(fixed, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
    rc, data = _explain(fixed, text, capsys)
    assert rc == 0 and data["verdict"]["status"] == "ok"
    assert data["explains"]["explains"] is False and "works now" in data["explains"]["reason"]


def test_ctr_unknown_tag_is_explained_by_manifest_unknown(
        tmp_path: Path, containerd: Containerd, registry_tls: Registry, lab_image: OciImage,
        hosts_file_factory: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    """ctr asking for a tag the registry lacks: not-found, explained by pull.manifest-unknown at that registry."""
    name = lab_name(registry_tls)
    root = tmp_path / "root"
    hosts_dir = containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
    text = _ctr(containerd, lab_image_ref(registry_tls, "no-such-tag"), hosts_dir, hosts_file_factory(HOSTS))
    rc, data = _explain(root, text, capsys)
    assert rc == 1
    _agrees(data, "not-found", name, "pull.manifest-unknown")


def test_ctr_without_credentials_is_explained_by_auth_missing(
        tmp_path: Path, containerd: Containerd, registry_tls_auth: Registry, lab_image: OciImage,
        hosts_file_factory: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    """ctr against the htpasswd registry without credentials: an auth failure, explained by auth.missing."""
    name = lab_name(registry_tls_auth)
    root = tmp_path / "root"
    hosts_dir = containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls_auth.ca_file, hosts=HOSTS)
    text = _ctr(containerd, lab_image_ref(registry_tls_auth), hosts_dir, hosts_file_factory(HOSTS))
    rc, data = _explain(root, text, capsys)
    assert rc == 1 and data["parsed"]["phase"] == "auth", data["parsed"]
    assert data["parsed"]["failure"].startswith("auth-")
    _agrees(data, data["parsed"]["failure"], name, "auth.missing")


def test_ctr_rate_limited_is_explained_by_auth_rate_limited(
        tmp_path: Path, containerd: Containerd, lab_image: OciImage, hosts_file_factory: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """ctr against a registry answering 429 toomanyrequests to manifests: rate-limited, explained by auth.rate-limited."""
    with FakeRegistry(lab_image.layout_dir, faults=Faults(status_429=True)) as limited:
        root = tmp_path / "root"
        hosts_dir = containerd_root(root, limited.host_port, server=limited.url)
        text = _ctr(containerd, f"{limited.host_port}/{LAB_REPO}:latest", hosts_dir, hosts_file_factory(HOSTS))
        assert "429 Too Many Requests" in text, text
        rc, data = _explain(root, text, capsys)
    assert rc == 1 and data["runtime"] == "containerd"
    assert data["parsed"]["phase"] == data["verdict"]["cause"]["phase"] == "manifest", data["parsed"]
    assert data["parsed"]["causes"][0]["code"] == "auth.rate-limited"
    _agrees(data, "rate-limited", limited.host_port, "auth.rate-limited")


def test_ctr_corrupt_layer_is_explained_by_digest_mismatch(
        tmp_path: Path, containerd: Containerd, registry_factory: Callable[..., Registry],
        image_factory: Callable[..., OciImage], hosts_file_factory: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """ctr fetching a layer whose stored bytes no longer hash to its digest: digest-mismatch, explained by
    pull.digest-mismatch; the text's two digests are the layer's and the hash of what was served."""
    registry = registry_factory()
    image = image_factory(seed=1717)  # content of its own: no other test's pull left this layer in containerd's store
    push(image, registry, LAB_REPO)
    layer = image.layers[0].digest
    registry.corrupt_blob(layer)
    root = tmp_path / "root"
    hosts_dir = containerd_root(root, registry.host_port, server=registry.url)
    ref = f"{registry.host_port}/{LAB_REPO}:latest"
    text = _ctr(containerd, ref, hosts_dir, hosts_file_factory(HOSTS))
    assert f'failed commit on ref "layer-{layer}"' in text and "unexpected commit digest" in text, text
    rc, data = _explain(root, text, capsys, "--image", ref)
    parsed, v = data["parsed"], data["verdict"]
    assert rc == 1 and (parsed["failure"], parsed["phase"]) == ("digest-mismatch", "blob"), parsed
    assert parsed["details"]["expected"] == layer and parsed["details"]["actual"] != layer, parsed
    assert parsed["causes"][0]["code"] == "pull.digest-mismatch"
    # ctr's commit error names the layer but no endpoint: the verdict's cause is that layer, at the registry.
    assert parsed["host"] is None
    assert v["status"] == "fails" and v["cause"]["code"] == "pull.digest-mismatch", v
    assert (v["cause"]["phase"], endpoint_host(v["cause"]["endpoint"])) == ("blob", registry.host_port), v
    assert finding_by_id(data["report"], v["cause"]["finding"])["subject"] == layer
    assert data["explains"]["explains"] is True, data["explains"]


# -- containers/image (skopeo, as CRI-O and podman) -----------------------------------------------
def _skopeo(tmp_path: Path, image: str, hosts_file: Path, cert_dir: Path | None = None) -> str:
    skopeo = require_binary("skopeo")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    argv = [skopeo, "--policy", str(policy), "inspect", "--retry-times", "0"]
    if cert_dir is not None:
        argv += ["--cert-dir", str(cert_dir)]
    result = run_in_mount_namespace([*argv, f"docker://{image}"], hosts_file=hosts_file, timeout=60)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


def test_skopeo_expired_certificate_is_explained_by_tls_expired(
        tmp_path: Path, cert_factory: Callable[..., IssuedCert], registry_factory: Callable[..., Registry],
        lab_image: OciImage, hosts_file_factory: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    """skopeo trusting the CA of a registry whose leaf expired: CRI-O's verdict fails on tls.expired there."""
    cert = cert_factory("expired")
    registry = registry_factory(tls=cert)
    push(lab_image, registry, LAB_REPO)
    name = lab_name(registry)
    root = tmp_path / "root"
    crio_root(root, name, cas={name: cert.ca_file}, hosts=HOSTS)
    text = _skopeo(tmp_path, lab_image_ref(registry), hosts_file_factory(HOSTS), cert.ca_dir)
    assert "certificate has expired or is not yet valid" in text
    rc, data = _explain(root, text, capsys)
    assert rc == 1 and data["runtime"] == "crio" and data["parsed"]["producer"] == "containers/image"
    assert "current_time" in data["parsed"]["details"]
    _agrees(data, "tls-expired", name, "tls.expired")


def test_skopeo_unknown_authority_is_explained_for_crio(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, hosts_file_factory: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """skopeo without the lab CA: containers/image's wording is read as CRI-O's, explained by tls.unknown-authority."""
    name = lab_name(registry_tls)
    root = tmp_path / "root"
    crio_root(root, name, hosts=HOSTS)
    text = _skopeo(tmp_path, lab_image_ref(registry_tls), hosts_file_factory(HOSTS))
    rc, data = _explain(root, text, capsys)
    assert rc == 1 and data["runtime"] == "crio"
    _agrees(data, "tls-unknown-authority", name, "tls.unknown-authority")


@pytest.fixture
def nx_resolver(tmp_path: Path) -> Iterator[Dnsmasq]:
    """dnsmasq on port 53 of a loopback address of its own, answering NXDOMAIN for everything under lab.test."""
    if not can_unshare():
        pytest.skip("needs root for port 53 and a mount namespace")
    addr = port_53_address()
    if addr is None:
        pytest.skip("no free port 53 on 127.53.0.0/16")
    server = Dnsmasq(tmp_path / "dns", host=addr, port=53, addresses={}, nxdomains=("lab.test",))
    server.start()
    yield server
    server.stop()


def test_skopeo_unresolvable_name_is_explained_by_dns_nxdomain_at_the_same_server(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, nx_resolver: Dnsmasq,
        capsys: pytest.CaptureFixture[str]) -> None:
    """skopeo whose only resolver (resolv.conf) does not know the registry's name: dns-nxdomain naming that
    resolver; explain with --dns-server at the same server fails on dns.nxdomain there."""
    name = lab_name(registry_tls)
    server = f"{nx_resolver.host}:53"
    root = tmp_path / "root"
    conf = crio_root(root, name, cas={name: registry_tls.ca_file})
    ns = tmp_path / "ns"
    ns.mkdir()
    (ns / "resolv.conf").write_text(f"nameserver {nx_resolver.host}\noptions timeout:1 attempts:1\n")
    policy = ns / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    argv = [require_binary("skopeo"), "--policy", str(policy), "--registries-conf", str(conf), "inspect",
            "--retry-times", "0", "--cert-dir", str(registry_tls.tls.ca_dir), f"docker://{lab_image_ref(registry_tls)}"]
    result = run_in_mount_namespace(argv, hosts_file=write_hosts_file(ns / "hosts", {}),
                                    binds={"/etc/resolv.conf": ns / "resolv.conf"}, timeout=60,
                                    env=skopeo_env(ns / "env"))
    assert result.returncode != 0, result.stdout
    text = result.stderr.strip().splitlines()[-1]
    assert f"lookup registry.lab.test on {server}: no such host" in text, text
    rc, data = _explain(root, text, capsys, "--dns-server", server)
    parsed, v = data["parsed"], data["verdict"]
    assert rc == 1 and data["runtime"] == "crio" and parsed["phase"] == v["cause"]["phase"] == "dns", (parsed, v)
    assert parsed["details"] == {**parsed["details"], "name": "registry.lab.test", "resolver": server}
    assert f"does not resolve at --dns-server {server}" in v["summary"], v["summary"]
    _agrees(data, "dns-nxdomain", name, "dns.nxdomain")


def test_skopeo_not_yet_valid_certificate_is_explained_by_the_clock_behind_ntp(
        tmp_path: Path, cert_factory: Callable[..., IssuedCert], registry_factory: Callable[..., Registry],
        lab_image: OciImage, chrony: Chrony, chrony_ahead: Chrony, hosts_file_factory: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """A certificate valid from 5 min ahead, as a host whose clock is 10 min behind sees a fresh one: skopeo's
    "current time ... is before ..." is read as the clock first, and with the NTP server that is 10 min ahead
    the verdict fails on clock.skew there; against NTP at true time the same text is the certificate's own."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    cert = cert_factory(not_before=now + dt.timedelta(seconds=300), not_after=now + dt.timedelta(days=30))
    registry = registry_factory(tls=cert)
    push(lab_image, registry, LAB_REPO)
    name = lab_name(registry)
    root = tmp_path / "root"
    crio_root(root, name, cas={name: cert.ca_file}, hosts=HOSTS)
    text = _skopeo(tmp_path, lab_image_ref(registry), hosts_file_factory(HOSTS), cert.ca_dir)
    assert "certificate has expired or is not yet valid: current time" in text and " is before " in text, text
    rc, data = _explain(root, text, capsys, "--ntp-server", f"127.0.0.1:{chrony_ahead.port}")
    parsed, v = data["parsed"], data["verdict"]
    assert rc == 1 and parsed["causes"][0]["code"] == "clock.skew", parsed["causes"]
    assert dt.datetime.fromisoformat(parsed["details"]["bound"].replace("Z", "+00:00")) == now + dt.timedelta(seconds=300)
    assert "clock is 600 s behind" in v["summary"], v["summary"]
    _agrees(data, "tls-not-yet-valid", name, "clock.skew")

    rc, data = _explain(root, text, capsys, "--ntp-server", f"127.0.0.1:{chrony.port}")
    assert rc == 1 and "clock" not in data["verdict"]["summary"], data["verdict"]
    _agrees(data, "tls-not-yet-valid", name, "tls.not-yet-valid")


# -- dockerd --------------------------------------------------------------------------------------
def test_dockerd_unknown_tag_is_explained_by_manifest_unknown(
        tmp_path: Path, dockerd: DockerDaemon, registry_tls: Registry, lab_image: OciImage,
        capsys: pytest.CaptureFixture[str]) -> None:
    """docker pull of a missing tag: dockerd's `manifest ... not found`, explained by pull.manifest-unknown."""
    hp = registry_tls.host_port
    pulled = dockerd.docker_pull(f"{hp}/{LAB_REPO}:no-such-tag", timeout=60)
    assert not pulled.ok
    text = pulled.output.strip().splitlines()[-1]
    root = docker_root(tmp_path / "root", {}, cas={hp: registry_tls.ca_file})
    rc, data = _explain(root, text, capsys)
    assert rc == 1 and data["runtime"] == "docker" and data["parsed"]["producer"] == "moby"
    _agrees(data, "not-found", hp, "pull.manifest-unknown")


def test_dockerd_without_credentials_hides_the_401_behind_its_http_retry(
        tmp_path: Path, dockerd: DockerDaemon, registry_tls_auth: Registry, lab_image: OciImage,
        capsys: pytest.CaptureFixture[str]) -> None:
    """docker pull from the loopback htpasswd registry without login: dockerd's plain-HTTP retry is reset and the
    text names neither image nor 401; with --image the verdict at that endpoint (auth.missing) explains it."""
    hp = registry_tls_auth.host_port
    image = f"{hp}/{LAB_REPO}:latest"
    pulled = dockerd.docker_pull(image, timeout=60)
    assert not pulled.ok
    text = pulled.output.strip().splitlines()[-1]
    assert "connection reset by peer" in text, text
    root = docker_root(tmp_path / "root", {}, cas={hp: registry_tls_auth.ca_file})
    rc, data = _explain(root, text, capsys, "--image", image)
    parsed, v = data["parsed"], data["verdict"]
    assert rc == 1 and data["runtime"] == "docker" and (parsed["failure"], parsed["host"]) == ("reset", hp)
    assert "plain-HTTP retry" in parsed["causes"][0]["why"]
    assert v["status"] == "fails" and v["cause"]["code"] == "auth.missing" and endpoint_host(v["cause"]["endpoint"]) == hp
    assert data["explains"]["explains"] is True, data["explains"]
