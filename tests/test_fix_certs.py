"""Fix catalogue, certificates: trusting a registry's CA where each runtime reads it, after its fingerprint."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from regtui import fixes
from regtui.config import _yaml
from regtui.findings import finding, fix
from regtui.host import Host
from test_fix_kit import CONTAINERD_16, ca_pem, make_root, roundtrip

HOST = "reg.example:5000"


def _fp(pem: bytes) -> str:
    return hashlib.sha256(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)).hexdigest()


def _trust(runtime: str, pem: bytes, *, with_pem: bool = True, **target: str):  # type: ignore[no-untyped-def]
    """A tls.unknown-authority finding shaped as regtui.checks.tls builds it."""
    fp = _fp(pem)
    params = {"runtime": runtime, "host": HOST, "ca_pem_fingerprint": fp, "ca_subject": "CN=Test Registry CA", **target}
    if with_pem:
        params["ca_pem"] = pem.decode()
    return finding("tls.unknown-authority", HOST, f"{runtime} does not trust {HOST}", runtime=runtime,
                   fix=fix("tls.unknown-authority", HOST, f"trust CN=Test Registry CA for {HOST} in {runtime}", kind="edit",
                           files=[target["install_to"]], detail=runtime, params=params))


def test_docker_ca_installed_in_certs_d(tmp_path: Path) -> None:
    """Docker: the CA becomes /etc/docker/certs.d/<host:port>/ca.crt; the plan asks to check the fingerprint."""
    pem = ca_pem()
    root = make_root(tmp_path, {"/etc/docker/daemon.json": "{}\n"})
    f = _trust("docker", pem, install_to=f"/etc/docker/certs.d/{HOST}/ca.crt", via="certs.d")
    r = roundtrip(root, "tls.unknown-authority", runtime="docker", finding=f, expect_gone=None)
    assert r.texts[f"/etc/docker/certs.d/{HOST}/ca.crt"].encode() == pem
    assert _fp(pem) in r.plan.confirm and "out of band" in r.plan.confirm
    assert r.after[f"/etc/docker/certs.d/{HOST}/ca.crt"][2] == 0o644


def test_existing_other_ca_is_kept_and_the_new_one_added_beside_it(tmp_path: Path) -> None:
    """A ca.crt with another certificate stays; the new CA gets its own file (dockerd reads every *.crt)."""
    old, pem = ca_pem("Old CA"), ca_pem()
    root = make_root(tmp_path, {f"/etc/docker/certs.d/{HOST}/ca.crt": old})
    f = _trust("docker", pem, install_to=f"/etc/docker/certs.d/{HOST}/ca.crt", via="certs.d")
    r = roundtrip(root, "tls.unknown-authority", runtime="docker", finding=f, expect_gone=None)
    assert r.plan.files == (f"/etc/docker/certs.d/{HOST}/regtui-{_fp(pem)[:16]}.crt",)


def test_crio_ca_from_probe_data(tmp_path: Path) -> None:
    """CRI-O/podman: /etc/containers/certs.d; the PEM comes from the TLS probe's ca_candidates."""
    pem = ca_pem()
    root = make_root(tmp_path, {"/etc/containers/registries.conf": ""})
    f = _trust("crio", pem, with_pem=False, install_to=f"/etc/containers/certs.d/{HOST}/ca.crt", via="certs.d")
    # The report's shape: per-endpoint rows under "tls", each panel's whole result under "panels".
    candidates = {_fp(pem): {"subject": "CN=Test Registry CA", "pem": pem.decode()}}
    probes = {"tls": [{"host": HOST}], "panels": {"certs": {"data": {"ca_candidates": candidates}, "error": None}}}
    r = roundtrip(root, "tls.unknown-authority", runtime="crio", finding=f, probes=probes, expect_gone=None)
    assert r.plan.files == (f"/etc/containers/certs.d/{HOST}/ca.crt",)


def test_containerd_ca_added_to_existing_hosts_toml(tmp_path: Path) -> None:
    """containerd with a hosts.toml: the CA file is written beside it and named by the root-level ca key."""
    pem = ca_pem()
    directory = f"/etc/containerd/certs.d/{HOST}"
    hosts = f'# lab registry\nserver = "https://{HOST}"\n\n[host."https://{HOST}"]\n  capabilities = ["pull", "resolve"]\n'
    root = make_root(tmp_path, {f"{directory}/hosts.toml": hosts, "/var/lib/dpkg/status": CONTAINERD_16,
                                "/etc/containerd/config.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                                               '  config_path = "/etc/containerd/certs.d"\n'})
    f = _trust("containerd", pem, install_to=f"{directory}/hosts.toml", via="hosts.toml ca", hosts_toml_table="",
               ca_file=f"{directory}/reg.example_5000-ca.crt")
    r = roundtrip(root, "tls.unknown-authority", runtime="containerd", finding=f, expect_gone=None)
    new = r.texts[f"{directory}/hosts.toml"]
    assert new.startswith("# lab registry\n")
    assert tomllib.loads(new)["ca"] == "reg.example_5000-ca.crt"
    assert r.texts[f"{directory}/reg.example_5000-ca.crt"].encode() == pem


def test_containerd_ca_without_hosts_toml_uses_cert_file_mode(tmp_path: Path) -> None:
    """No hosts.toml: ca.crt in the hosts directory the CRI reads (cert-file mode)."""
    pem = ca_pem()
    root = make_root(tmp_path, {"/var/lib/dpkg/status": CONTAINERD_16,
                                "/etc/containerd/config.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                                               '  config_path = "/etc/containerd/certs.d"\n'})
    f = _trust("containerd", pem, install_to=f"/etc/containerd/certs.d/{HOST}/hosts.toml", via="hosts.toml ca",
               hosts_toml_table="")
    r = roundtrip(root, "tls.unknown-authority", runtime="containerd", finding=f, expect_gone=None)
    assert r.plan.files == (f"/etc/containerd/certs.d/{HOST}/ca.crt",)


def test_containerd_ca_refused_where_the_cri_reads_no_hosts_dir(tmp_path: Path) -> None:
    """config_path unset: nothing is written (only `ctr --hosts-dir` would read it); the refusal says to set it first."""
    root = make_root(tmp_path, {"/var/lib/dpkg/status": CONTAINERD_16, "/etc/containerd/config.toml": "version = 2\n"})
    f = _trust("containerd", ca_pem(), install_to=f"/etc/containerd/certs.d/{HOST}/hosts.toml", via="hosts.toml ca",
               hosts_toml_table="")
    p = fixes.plan(f, Host(root=root))
    assert not p.can_apply and not p.changes
    assert "config.hosts-dir-unused" in p.blocked and "config_path" in p.blocked


def test_k3s_ca_file_and_registries_yaml(tmp_path: Path) -> None:
    """k3s: the CA file under /etc/rancher/k3s and configs."<host>".tls.ca_file in registries.yaml (comments kept)."""
    pem = ca_pem()
    yaml = "# registries for this node\nmirrors:\n  docker.io:\n    endpoint:\n      - https://mirror.example\n"
    root = make_root(tmp_path, {"/etc/rancher/k3s/registries.yaml": yaml})
    f = _trust("k3s", pem, install_to="/etc/rancher/k3s/registries.yaml", via="registries.yaml",
               key=f'configs."{HOST}".tls.ca_file', ca_file="/etc/rancher/k3s/reg.example_5000-ca.crt")
    r = roundtrip(root, "tls.unknown-authority", runtime="k3s", finding=f, expect_gone=None)
    new = r.texts["/etc/rancher/k3s/registries.yaml"]
    assert new.startswith(yaml)
    assert _yaml.loads(new).data["configs"][HOST]["tls"]["ca_file"] == "/etc/rancher/k3s/reg.example_5000-ca.crt"
    assert r.plan.restart == "restart k3s"


def test_fingerprint_mismatch_is_refused(tmp_path: Path) -> None:
    """A PEM whose SHA-256 is not the finding's fingerprint is never installed."""
    pem, other = ca_pem(), ca_pem("Impostor")
    root = make_root(tmp_path, {})
    f = _trust("docker", pem, install_to=f"/etc/docker/certs.d/{HOST}/ca.crt", via="certs.d")
    f.fix.params["ca_pem"] = other.decode()  # type: ignore[index]
    p = fixes.plan(f, Host(root=root))
    assert not p.can_apply and "is not the finding's" in p.blocked and not p.changes


def test_offline_without_the_certificate_says_how_to_get_it(tmp_path: Path) -> None:
    """With no PEM at hand (offline), the plan is refused and says to run with the network."""
    root = make_root(tmp_path, {})
    f = _trust("docker", ca_pem(), with_pem=False, install_to=f"/etc/docker/certs.d/{HOST}/ca.crt", via="certs.d")
    p = fixes.plan(f, Host(root=root))
    assert not p.can_apply and "not --offline" in p.blocked


def _chain_pems(tmp_path: Path) -> tuple[bytes, bytes, bytes]:
    """(root, intermediate, leaf) PEM of a three-level lab PKI."""
    from lab.pki import LabPKI

    pki = LabPKI("anchor")
    issued = pki.issue(tmp_path / "pki")
    served = issued.chain_file.read_bytes().split(b"-----BEGIN CERTIFICATE-----")
    return pki.root.pem, b"-----BEGIN CERTIFICATE-----" + served[2], issued.cert_file.read_bytes()


def _unsent_root(pem_top: bytes, missing: str = "CN=regtui anchor root CA,O=regtui anchor"):  # type: ignore[no-untyped-def]
    """tls.unknown-authority as built when the server sends leaf + intermediate and its root is nowhere here."""
    f = _trust("docker", pem_top, install_to=f"/etc/docker/certs.d/{HOST}/ca.crt", via="certs.d")
    f.fix.params["anchor_missing"] = missing  # type: ignore[index]
    return f


def test_root_not_sent_is_manual_and_names_what_to_supply(tmp_path: Path) -> None:
    """No root at hand: no file is planned (not the intermediate either); the steps ask for --ca-file."""
    _, intermediate, _ = _chain_pems(tmp_path)
    p = fixes.plan(_unsent_root(intermediate), Host(root=make_root(tmp_path, {})))
    assert p.kind == "manual" and not p.changes and not p.can_apply
    assert "--ca-file ROOT.pem" in p.steps and "CN=regtui anchor root CA" in p.steps


def test_supplied_root_is_what_is_written(tmp_path: Path) -> None:
    """--ca-file with the root (in a bundle with other certificates): the root alone is written, its SHA-256 confirmed."""
    root_pem, intermediate, _ = _chain_pems(tmp_path)
    host = Host(root=make_root(tmp_path, {}))
    p = fixes.plan(_unsent_root(intermediate), host, supplied_ca=ca_pem("Unrelated") + intermediate + root_pem)
    assert p.can_apply, p.blocked or p.steps
    (change,) = p.changes
    assert change.after == root_pem and _fp(root_pem) in p.confirm


def test_supplied_file_must_hold_the_issuing_root(tmp_path: Path) -> None:
    """--ca-file with the intermediate, another root, or a CA that is itself issued: refused, nothing planned."""
    root_pem, intermediate, leaf = _chain_pems(tmp_path)
    host = Host(root=make_root(tmp_path, {}))
    for supplied in (intermediate, ca_pem("Other Root")):
        p = fixes.plan(_unsent_root(intermediate), host, supplied_ca=supplied)
        assert not p.can_apply and "no certificate in the --ca-file issued" in p.blocked and not p.changes
    p = fixes.plan(_unsent_root(leaf, "CN=regtui anchor intermediate CA"), host, supplied_ca=intermediate)
    assert not p.can_apply and "supply the root CA" in p.blocked and not p.changes


def test_supplied_file_must_hold_the_anchor_the_server_sent(tmp_path: Path) -> None:
    """Root sent by the server: a --ca-file without that exact certificate is refused; with it, it is written."""
    root_pem, _, _ = _chain_pems(tmp_path)
    host = Host(root=make_root(tmp_path, {}))
    f = _trust("docker", root_pem, install_to=f"/etc/docker/certs.d/{HOST}/ca.crt", via="certs.d")
    p = fixes.plan(f, host, supplied_ca=ca_pem("Other Root"))
    assert not p.can_apply and "does not hold the certificate the chain ends with" in p.blocked
    p = fixes.plan(f, host, supplied_ca=root_pem)
    assert p.can_apply and p.changes[0].after == root_pem
