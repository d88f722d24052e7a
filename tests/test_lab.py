"""Smoke tests of the test lab: every component starts for real and behaves as later tests assume."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from lab.containerd import Containerd, containerd_config_dump, write_hosts_toml
from lab.dns import Dnsmasq
from lab.dockerd import DockerDaemon
from lab.fixtures import LAB_CREDENTIALS, LAB_PROXY_CREDENTIALS, LAB_REPO, LAB_TAG
from lab.images import OciImage, push, skopeo_inspect_digest
from lab.namespaces import run_in_mount_namespace
from lab.ntp import Chrony, sntp_query
from lab.pki import IssuedCert, LabPKI
from lab.proxy import TinyProxy, connect_via_proxy
from lab.registry import Registry, http_request
from lab.require import require_binary
from lab.sockets import TcpBlackHole, UdpBlackHole

pytestmark = pytest.mark.lab

LAB_REF = f"{LAB_REPO}:{LAB_TAG}"


def _verify(cert: IssuedCert, root: x509.Certificate, name: str = "registry.lab.test") -> None:
    """Verify a served chain for ``name`` against ``root`` (raises VerificationError)."""
    chain = x509.load_pem_x509_certificates(cert.chain_file.read_bytes())
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(name))
    verifier.verify(chain[0], chain[1:])


# -- PKI ------------------------------------------------------------------------------------
def test_pki_good_chain_verifies_and_fingerprints_match(lab_cert: IssuedCert, lab_pki: LabPKI) -> None:
    """The default leaf verifies through the intermediate, and the recorded fingerprints are the files'."""
    _verify(lab_cert, lab_pki.root.cert)
    leaf = x509.load_pem_x509_certificate(lab_cert.cert_file.read_bytes())
    assert hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest() == lab_cert.leaf_sha256
    assert lab_cert.chain_sha256 == (lab_cert.leaf_sha256, lab_pki.intermediate.sha256)
    assert lab_cert.ca_file.read_bytes() == lab_pki.root.pem
    assert sorted(p.name for p in lab_cert.ca_dir.iterdir()) == ["ca.crt"]


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("no-intermediate", "candidates exhausted"),
        ("expired", "not valid at validation time"),
        ("not-yet-valid", "not valid at validation time"),
        ("wrong-host", "subjectAltName"),
        ("self-signed", "candidates exhausted"),
        ("cn-only", "no subjectAltName"),
        ("sha1", "signature algorithm"),
    ],
)
def test_pki_broken_variants_fail_verification(
    variant: str, reason: str, cert_factory: Callable[..., IssuedCert], lab_pki: LabPKI
) -> None:
    """Each named defect makes a strict verifier reject the served chain for the expected reason."""
    cert = cert_factory(variant)
    with pytest.raises(VerificationError, match=reason):
        _verify(cert, lab_pki.root.cert)


def test_pki_chain_shapes_and_weak_key(cert_factory: Callable[..., IssuedCert], lab_pki: LabPKI) -> None:
    """'with-root' serves three certificates ending in the root; 'rsa1024' has a 1024-bit RSA key."""
    with_root = cert_factory("with-root")
    assert with_root.chain_sha256[-1] == lab_pki.root.sha256 and len(with_root.chain_sha256) == 3
    weak = cert_factory("rsa1024")
    key = weak.leaf.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 1024


# -- registries -----------------------------------------------------------------------------
def test_tls_auth_registry_push_and_skopeo_inspect(
    registry_tls_auth: Registry, lab_image: OciImage, tmp_path: Path
) -> None:
    """skopeo with the lab CA and credentials sees the pushed digest; anonymous /v2/ is 401."""
    assert registry_tls_auth.request("/v2/", authenticate=False).status == 401
    assert registry_tls_auth.auth == LAB_CREDENTIALS
    ref = f"docker://{registry_tls_auth.host_port}/{LAB_REF}"
    rc, err, digest = skopeo_inspect_digest(ref, registry=registry_tls_auth, workdir=tmp_path)
    assert rc == 0, err
    assert digest == lab_image.digest
    # Without the CA the same lookup must fail on trust, proving --cert-dir was what made it work.
    creds = ["--creds", registry_tls_auth.creds or ""]
    rc, err, _ = skopeo_inspect_digest(ref, extra_args=creds, workdir=tmp_path)
    assert rc != 0 and "x509" in err


def test_multi_platform_index_push(
    registry_plain: Registry, image_factory: Callable[..., OciImage]
) -> None:
    """An image index with amd64 and arm64 is pushed with its digests unchanged."""
    image = image_factory(platforms=("linux/amd64", "linux/arm64"), seed=42, layers=1)
    assert push(image, registry_plain, "lab/multi") == image.index_digest
    index = json.loads(registry_plain.manifest("lab/multi", "latest").body)
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    arm = image.for_platform("linux/arm64")
    assert registry_plain.manifest_digest("lab/multi", arm.manifest.digest) == arm.manifest.digest


def test_registry_with_broken_certificate_starts_and_is_rejected(
    registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert]
) -> None:
    """A registry serving an expired leaf starts, and a verifying client rejects it as expired."""
    registry = registry_factory(tls=cert_factory("expired"))
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        registry.request("/v2/", timeout=5)
    assert registry.request("/v2/", verify=False, timeout=5).status == 200


def test_pull_through_mirror_serves_upstream_digest(
    registry_mirror: Registry, registry_tls: Registry, lab_image: OciImage
) -> None:
    """The plain-HTTP mirror fetches the manifest and a layer from the TLS upstream."""
    assert registry_mirror.scheme == "http" and registry_tls.scheme == "https"
    assert registry_mirror.manifest_digest(LAB_REPO, LAB_TAG) == lab_image.digest
    layer = lab_image.layers[0]
    blob = registry_mirror.blob(LAB_REPO, layer.digest)
    assert blob.status == 200
    assert "sha256:" + hashlib.sha256(blob.body).hexdigest() == layer.digest


def test_corrupted_layer_no_longer_matches_digest(
    registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage]
) -> None:
    """After corrupt_blob the registry serves same-length bytes that hash to something else."""
    registry = registry_factory()
    image = image_factory(seed=7)
    push(image, registry, "lab/corrupt")
    layer = image.layers[0]
    before = registry.blob("lab/corrupt", layer.digest)
    assert "sha256:" + hashlib.sha256(before.body).hexdigest() == layer.digest
    registry.corrupt_blob(layer.digest)
    after = registry.blob("lab/corrupt", layer.digest)
    assert after.status == 200 and len(after.body) == layer.size
    assert "sha256:" + hashlib.sha256(after.body).hexdigest() != layer.digest


# -- proxy ----------------------------------------------------------------------------------
def test_tinyproxy_connect_tunnels_to_registry(tinyproxy: TinyProxy, registry_tls_auth: Registry) -> None:
    """CONNECT through tinyproxy to a lab registry's high port gives a working TLS tunnel."""
    status, line, tunnel = connect_via_proxy(tinyproxy.host, tinyproxy.port, registry_tls_auth.host_port)
    assert status == 200, line
    assert tunnel is not None
    context = ssl.create_default_context(cafile=str(registry_tls_auth.ca_file))
    with context.wrap_socket(tunnel, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = tls.recv(64)
    assert answer.startswith(b"HTTP/1.1 401")


def test_tinyproxy_auth_requires_credentials(tinyproxy_auth: TinyProxy, registry_plain: Registry) -> None:
    """Without Proxy-Authorization the auth proxy answers 407; with it, CONNECT succeeds."""
    status, line, _ = connect_via_proxy(tinyproxy_auth.host, tinyproxy_auth.port, registry_plain.host_port)
    assert status == 407, line
    status, line, tunnel = connect_via_proxy(
        tinyproxy_auth.host, tinyproxy_auth.port, registry_plain.host_port, auth=LAB_PROXY_CREDENTIALS
    )
    assert status == 200, line
    assert tunnel is not None
    tunnel.close()


def test_tinyproxy_deny_variant_refuses_connect(
    tinyproxy_deny: TinyProxy, registry_plain: Registry
) -> None:
    """The deny proxy answers 403 to CONNECT towards a lab port."""
    status, line, _ = connect_via_proxy(tinyproxy_deny.host, tinyproxy_deny.port, registry_plain.host_port)
    assert status == 403, line


def test_closed_port_refuses(closed_port: int) -> None:
    """Connecting to the closed port is refused at once."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port), timeout=2).close()


def test_black_holes_accept_but_never_answer(
    tcp_black_hole: TcpBlackHole, udp_black_hole: UdpBlackHole
) -> None:
    """TCP connects then reads time out; an SNTP request to the UDP hole times out."""
    with socket.create_connection((tcp_black_hole.host, tcp_black_hole.port), timeout=2) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    with pytest.raises(TimeoutError):
        sntp_query(udp_black_hole.host, udp_black_hole.port, timeout=0.5)


# -- NTP and DNS ----------------------------------------------------------------------------
def test_chrony_serves_current_time(chrony: Chrony) -> None:
    """chronyd answers a 48-byte SNTP request with a server-mode reply carrying the current time."""
    answer = sntp_query(chrony.host, chrony.port)
    assert answer.mode == 4 and answer.stratum == 8
    assert abs(answer.transmit - time.time()) < 2


def test_chrony_ahead_serves_time_600s_ahead(chrony_ahead: Chrony) -> None:
    """chronyd under libfaketime answers with a clock ten minutes ahead."""
    answer = sntp_query(chrony_ahead.host, chrony_ahead.port)
    assert answer.mode == 4
    assert abs(answer.transmit - time.time() - 600) < 5
    assert abs(answer.offset - 600) < 5


def test_dnsmasq_answers_lab_zone_and_nxdomain(dnsmasq: Dnsmasq) -> None:
    """registry.lab.test resolves to 127.0.0.1 and x.nx.test is NXDOMAIN."""
    import dns.message
    import dns.query
    import dns.rcode

    host, port = dnsmasq.nameserver
    reply = dns.query.udp(dns.message.make_query("registry.lab.test", "A"), host, port=port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR
    assert [rr.to_text() for rrset in reply.answer for rr in rrset] == ["127.0.0.1"]
    reply = dns.query.udp(dns.message.make_query("x.nx.test", "A"), host, port=port, timeout=2)
    assert reply.rcode() == dns.rcode.NXDOMAIN


# -- name resolution in a private mount namespace -------------------------------------------
def test_hosts_namespace_resolves_lab_name_to_other_loopback(
    hosts_file_factory: Callable[[dict[str, str]], Path],
    registry_factory: Callable[..., Registry],
    cert_factory: Callable[..., IssuedCert],
    image_factory: Callable[..., OciImage],
    tmp_path: Path,
) -> None:
    """skopeo inside the namespace reaches registry.lab.test on 127.0.0.2; /etc/hosts is untouched."""
    machine_hosts = Path("/etc/hosts").read_bytes()
    cert = cert_factory()
    registry = registry_factory(host="127.0.0.2", tls=cert)
    image = image_factory(seed=11)
    push(image, registry, "lab/named")
    hosts = hosts_file_factory({"registry.lab.test": "127.0.0.2"})
    argv = [
        require_binary("skopeo"), "--policy", str(_accept_all_policy(tmp_path)), "inspect",
        "--cert-dir", str(cert.ca_dir), f"docker://registry.lab.test:{registry.port}/lab/named:latest",
    ]
    result = run_in_mount_namespace(argv, hosts_file=hosts, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Digest"] == image.digest
    assert Path("/etc/hosts").read_bytes() == machine_hosts


def _accept_all_policy(directory: Path) -> Path:
    """A containers signature policy accepting anything."""
    path = directory / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return path


# -- containerd -----------------------------------------------------------------------------
def test_containerd_pulls_through_hosts_dir_with_ca(
    containerd: Containerd, registry_tls_auth: Registry, lab_image: OciImage, tmp_path: Path
) -> None:
    """ctr pull with a hosts.toml naming the lab CA gets the pushed digest; without ca it fails on x509."""
    ref = f"{registry_tls_auth.host_port}/{LAB_REF}"
    good = tmp_path / "good"
    write_hosts_toml(good, registry_tls_auth.host_port, server=registry_tls_auth.url,
                     hosts=[{"url": registry_tls_auth.url, "ca": registry_tls_auth.ca_file}])
    pulled = containerd.ctr_pull(ref, hosts_dir=good, user=registry_tls_auth.creds)
    assert pulled.ok, pulled.output
    assert pulled.digest == lab_image.digest
    no_ca = tmp_path / "no-ca"
    write_hosts_toml(no_ca, registry_tls_auth.host_port, server=registry_tls_auth.url,
                     hosts=[{"url": registry_tls_auth.url}])
    refused = containerd.ctr_pull(ref, hosts_dir=no_ca, user=registry_tls_auth.creds)
    assert not refused.ok and "x509" in refused.output


def test_containerd_config_dump_accepts_valid_and_rejects_garbage(
    containerd: Containerd, tmp_path: Path
) -> None:
    """The real containerd accepts the lab's config and rejects a file that is not TOML."""
    rc, output = containerd_config_dump(containerd.config_path)
    assert rc == 0, output
    assert containerd.address in output
    garbage = tmp_path / "garbage.toml"
    garbage.write_text("version = 2\n[plugins\nthis is not toml\n")
    rc, output = containerd_config_dump(garbage)
    assert rc != 0 and "toml" in output.lower()


# -- dockerd --------------------------------------------------------------------------------
def test_dockerd_pulls_from_loopback_registry(
    dockerd: DockerDaemon, registry_tls: Registry, lab_image: OciImage
) -> None:
    """dockerd pulls 127.0.0.1:PORT from a TLS registry it does not trust (127.0.0.0/8 is insecure)."""
    pulled = dockerd.docker_pull(f"{registry_tls.host_port}/{LAB_REF}")
    assert pulled.ok, pulled.output
    assert pulled.digest == lab_image.digest


def test_dockerd_in_namespace_with_insecure_registry_name(
    dockerd_factory: Callable[..., DockerDaemon],
    hosts_file_factory: Callable[[dict[str, str]], Path],
    registry_factory: Callable[..., Registry],
    image_factory: Callable[..., OciImage],
) -> None:
    """A dockerd started with a lab hosts file and insecure-registries pulls registry.lab.test over HTTP."""
    registry = registry_factory(host="127.0.0.3")
    image = image_factory(seed=5)
    push(image, registry, "lab/named")
    name = f"registry.lab.test:{registry.port}"
    daemon = dockerd_factory(
        daemon_json={"insecure-registries": [name]},
        hosts_file=hosts_file_factory({"registry.lab.test": "127.0.0.3"}),
    )
    pulled = daemon.docker_pull(f"{name}/lab/named:latest")
    assert pulled.ok, pulled.output
    assert pulled.digest == image.digest


def test_dockerd_pulls_by_name_through_tinyproxy(
    dockerd_factory: Callable[..., DockerDaemon],
    tinyproxy_factory: Callable[..., TinyProxy],
    hosts_file_factory: Callable[[dict[str, str]], Path],
    registry_factory: Callable[..., Registry],
    cert_factory: Callable[..., IssuedCert],
    image_factory: Callable[..., OciImage],
) -> None:
    """dockerd with HTTPS_PROXY in its environment tunnels a pull of a lab name through tinyproxy."""
    registry = registry_factory(host="127.0.0.4", tls=cert_factory())
    image = image_factory(seed=9)
    push(image, registry, "lab/proxied")
    hosts = hosts_file_factory({"registry.lab.test": "127.0.0.4"})
    # Go never proxies loopback IPs, so the pull uses a name; the proxy must resolve it too.
    proxy = tinyproxy_factory(hosts_file=hosts)
    daemon = dockerd_factory(hosts_file=hosts, env={"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url})
    pulled = daemon.docker_pull(f"registry.lab.test:{registry.port}/lab/proxied:latest")
    assert pulled.ok, pulled.output
    assert pulled.digest == image.digest
    assert f"CONNECT registry.lab.test:{registry.port}" in proxy.proxy_log()


def test_plain_http_request_helper_ignores_proxies(
    registry_plain: Registry, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    """http_request never uses environment proxies: a dead HTTP_PROXY does not break it."""
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port}")
    assert http_request(registry_plain.url + "/v2/", timeout=5).status == 200


# -- prerequisites policy -------------------------------------------------------------------
def test_missing_binary_skips_locally_and_fails_when_lab_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """require_binary skips without REGTUI_REQUIRE_LAB and fails with REGTUI_REQUIRE_LAB=1."""
    missing = "regtui-lab-no-such-binary"
    monkeypatch.delenv("REGTUI_REQUIRE_LAB", raising=False)
    with pytest.raises(pytest.skip.Exception, match=missing):
        require_binary(missing)
    monkeypatch.setenv("REGTUI_REQUIRE_LAB", "1")
    with pytest.raises(pytest.fail.Exception, match=missing):
        require_binary(missing)
    assert require_binary("sh").endswith("/sh")
