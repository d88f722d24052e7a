"""The CA trust fix installs the chain's anchor, and its re-check agrees with the runtime.

A three-level lab PKI (root -> intermediate -> leaf) served two ways: leaf + intermediate (the
server does not send its root) and leaf + intermediate + root. ``regtui fix ... --apply`` on a
temporary root writes the root (never the intermediate): the one the server sends, or the one
given with ``--ca-file``; without it the fix is manual and names the root to supply. Referees:
``ctr images pull --hosts-dir`` on the same hosts directory (containerd reads ``ca`` on top of
the system pool, ``core/remotes/docker/config/hosts.go tlsConfigFromHost``) and ``skopeo
--cert-dir`` on the same certs.d directory (containers/image ``tlsclientconfig.SetupCertificates``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.containerd import Containerd
from lab.images import OciImage, push
from lab.namespaces import run_in_mount_namespace, write_hosts_file
from lab.pki import IssuedCert, fingerprint_sha256
from lab.pullroots import LAB_CONTAINERD_VERSION, containerd_root, crio_root, write_root
from lab.registry import Registry
from lab.require import require_binary
from regtui.cli import main
from regtui.net.tls.certs import parse_pem_bundle

pytestmark = pytest.mark.lab

NAME = "registry.lab.test"
HOSTS = {NAME: "127.0.0.1"}
CODE = "tls.unknown-authority"
CONTAINERD_CONFIG = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                     '  config_path = "/etc/containerd/certs.d"\n')


def _served(registry_factory: Callable[..., Registry], cert: IssuedCert, image: OciImage) -> tuple[Registry, str, str]:
    """A registry serving ``cert``'s chain with the lab image; (registry, host:port, image reference)."""
    registry = registry_factory(tls=cert)
    push(image, registry, "lab/app")
    hostport = f"{NAME}:{registry.port}"
    return registry, hostport, f"{hostport}/lab/app:{image.tag}"


def _fix(root: Path, ref: str, runtime: str, *extra: str) -> int:
    """``regtui fix --code tls.unknown-authority --apply --yes`` on ``root`` (the exit status)."""
    return main(["fix", "--root", str(root), "--image", ref, "--runtime", runtime, "--timeout", "5",
                 "--containerd-version", LAB_CONTAINERD_VERSION, "--no-pull", "--code", CODE, "--apply", "--yes",
                 *extra])


def _trusted(directory: Path) -> set[str]:
    """SHA-256 of every certificate in the ``*.crt`` files of a certs.d / hosts directory."""
    out: set[str] = set()
    for f in directory.glob("*.crt"):
        certs, _ = parse_pem_bundle(f.read_bytes())
        out |= {fingerprint_sha256(c) for c in certs}
    return out


def _containerd_root(root: Path, hostport: str, layout: str) -> Path:
    """containerd trusting nothing for ``hostport``: a hosts.toml naming it, or cert-file mode (no hosts.toml)."""
    if layout == "hosts.toml":
        hosts_dir = containerd_root(root, hostport, server=f"https://{hostport}", hosts=HOSTS)
    else:
        write_root(root, {"/etc/containerd/config.toml": CONTAINERD_CONFIG}, HOSTS)
        hosts_dir = root / "etc/containerd/certs.d"
        hosts_dir.mkdir(parents=True)
    return hosts_dir


@pytest.mark.parametrize("layout", ["hosts.toml", "cert-file"])
@pytest.mark.parametrize("chain", ["with-root", "good"])
def test_containerd_fix_writes_the_root_and_ctr_agrees(
    chain: str, layout: str, registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert],
    lab_image: OciImage, containerd: Containerd, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """containerd without the CA: the applied fix writes the root (sent, or from --ca-file), its re-check says
    fixed (exit 0), and ctr pulls from the same hosts dir."""
    cert = cert_factory(chain)
    _, hostport, ref = _served(registry_factory, cert, lab_image)
    root = tmp_path / "root"
    hosts_dir = _containerd_root(root, hostport, layout)
    hosts_file = write_hosts_file(tmp_path / "hosts", HOSTS)
    before = containerd.ctr_pull(ref, hosts_dir=hosts_dir, hosts_file=hosts_file, timeout=60)
    assert not before.ok and "x509: certificate signed by unknown authority" in before.output

    extra = ["--ca-file", str(cert.ca_file)] if chain == "good" else []
    rc = _fix(root, ref, "containerd", *extra)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "re-check: ok" in out and "restart" not in out.split("to take effect:", 1)[1].splitlines()[0], out

    directory = hosts_dir / hostport
    intermediate = cert.chain_sha256[1]
    assert _trusted(directory) == {cert.ca_sha256} and intermediate not in _trusted(directory)
    pulled = containerd.ctr_pull(ref, hosts_dir=hosts_dir, hosts_file=hosts_file, timeout=60)
    assert pulled.ok, pulled.output[-600:]
    assert pulled.digest == lab_image.digest


def test_without_the_root_the_fix_is_manual_and_names_it(
    registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert], lab_image: OciImage,
    containerd: Containerd, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Leaf + intermediate and no root anywhere: nothing is written (the intermediate is not offered), the fix
    says which root to supply with --ca-file, exit 1; ctr still fails, as regtui still reports."""
    cert = cert_factory("good")
    _, hostport, ref = _served(registry_factory, cert, lab_image)
    root = tmp_path / "root"
    hosts_dir = _containerd_root(root, hostport, "hosts.toml")
    toml_before = (hosts_dir / hostport / "hosts.toml").read_bytes()

    rc = _fix(root, ref, "containerd")
    out = capsys.readouterr().out
    assert rc == 1
    assert "[manual]" in out and "--ca-file ROOT.pem" in out and "CN=regtui lab root CA" in out, out
    assert (hosts_dir / hostport / "hosts.toml").read_bytes() == toml_before
    assert _trusted(hosts_dir / hostport) == set()
    pulled = containerd.ctr_pull(ref, hosts_dir=hosts_dir, hosts_file=write_hosts_file(tmp_path / "hosts", HOSTS),
                                 timeout=60)
    assert "x509: certificate signed by unknown authority" in pulled.output


def test_a_supplied_file_that_does_not_complete_the_chain_is_refused(
    registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert], lab_image: OciImage,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """--ca-file holding the intermediate (not the root) or another PKI's root: refused, nothing written."""
    from lab.pki import LabPKI

    cert = cert_factory("good")
    _, hostport, ref = _served(registry_factory, cert, lab_image)
    root = tmp_path / "root"
    hosts_dir = _containerd_root(root, hostport, "hosts.toml")
    chain = cert.chain_file.read_bytes()
    intermediate = tmp_path / "intermediate.pem"
    intermediate.write_bytes(b"-----BEGIN CERTIFICATE-----" + chain.split(b"-----BEGIN CERTIFICATE-----")[2])
    other = LabPKI("other").write_ca(tmp_path / "other")
    for supplied, words in ((intermediate, "no certificate in the --ca-file issued"),
                            (other, "no certificate in the --ca-file issued")):
        assert _fix(root, ref, "containerd", "--ca-file", str(supplied)) == 1
        out = capsys.readouterr().out
        assert words in out, out
        assert _trusted(hosts_dir / hostport) == set()


@pytest.mark.parametrize("chain", ["with-root", "good"])
def test_crio_fix_writes_the_root_and_skopeo_agrees(
    chain: str, registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert],
    lab_image: OciImage, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """CRI-O/podman without the CA: the fix writes the root into certs.d, its re-check says fixed (exit 0), and
    skopeo (containers/image) with that certs.d directory and registries.conf inspects the image."""
    skopeo = require_binary("skopeo")
    cert = cert_factory(chain)
    _, hostport, ref = _served(registry_factory, cert, lab_image)
    root = tmp_path / "root"
    conf = crio_root(root, hostport, hosts=HOSTS)
    (root / "etc/crio").mkdir(parents=True, exist_ok=True)
    extra = ["--ca-file", str(cert.ca_file)] if chain == "good" else []
    rc = _fix(root, ref, "crio", *extra)
    out = capsys.readouterr().out
    assert rc == 0, out
    cert_dir = root / "etc/containers/certs.d" / hostport
    assert _trusted(cert_dir) == {cert.ca_sha256}

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    result = run_in_mount_namespace(
        [skopeo, "--policy", str(policy), "--registries-conf", str(conf), "inspect", "--retry-times", "0",
         "--cert-dir", str(cert_dir), "--format", "{{.Digest}}", f"docker://{ref}"],
        hosts_file=write_hosts_file(tmp_path / "hosts", HOSTS), timeout=60)
    assert result.returncode == 0, result.stderr[-600:]
    assert result.stdout.strip() == lab_image.digest


def test_cri_without_config_path_gets_no_ca_until_it_reads_the_hosts_dir(
    registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert], lab_image: OciImage,
    containerd: Containerd, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """config_path unset: the CA fix writes nothing (a CA there reaches `ctr --hosts-dir` only, not the CRI, so
    regtui's re-check and ctr disagreed); once config.hosts-dir-unused sets it, the fix applies and ctr pulls."""
    cert = cert_factory("with-root")
    _, hostport, ref = _served(registry_factory, cert, lab_image)
    root = tmp_path / "root"
    hosts_dir = _containerd_root(root, hostport, "hosts.toml")
    (root / "etc/containerd/config.toml").write_text("version = 2\n")
    toml_before = (hosts_dir / hostport / "hosts.toml").read_bytes()

    assert _fix(root, ref, "containerd") == 1
    out = capsys.readouterr().out
    assert "set config_path first" in out and "config.hosts-dir-unused" in out, out
    assert (hosts_dir / hostport / "hosts.toml").read_bytes() == toml_before and _trusted(hosts_dir / hostport) == set()

    rc = main(["fix", "config.hosts-dir-unused@etc/containerd/config.toml#config_path", "--root", str(root),
               "--image", ref, "--runtime", "containerd", "--offline", "--containerd-version", LAB_CONTAINERD_VERSION,
               "--apply", "--yes"])
    out = capsys.readouterr().out
    assert rc == 0 and "restart containerd" in out, out
    assert _fix(root, ref, "containerd") == 0, capsys.readouterr().out
    assert _trusted(hosts_dir / hostport) == {cert.ca_sha256}
    pulled = containerd.ctr_pull(ref, hosts_dir=hosts_dir, hosts_file=write_hosts_file(tmp_path / "hosts", HOSTS),
                                 timeout=60)
    assert pulled.ok and pulled.digest == lab_image.digest, pulled.output[-600:]


def test_every_output_gives_the_fix_command_with_the_root_it_needs(
    registry_factory: Callable[..., Registry], cert_factory: Callable[..., IssuedCert], lab_image: OciImage,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """No root anywhere: the verdict's fix command asks for it (--ca-file ROOT.pem) in the text, JSON-derived Markdown
    and HTML reports alike, so the command a report shows is the one `regtui fix` applies; with the root it does."""
    cert = cert_factory("good")
    _, hostport, ref = _served(registry_factory, cert, lab_image)
    root = tmp_path / "root"
    hosts_dir = _containerd_root(root, hostport, "hosts.toml")
    common = ["--root", str(root), "--image", ref, "--runtime", "containerd", "--timeout", "5",
              "--containerd-version", LAB_CONTAINERD_VERSION, "--no-pull"]
    outputs = {}
    for fmt in ("text", "markdown", "html", "json"):
        main(["check", *common, "--format", fmt])
        outputs[fmt] = capsys.readouterr().out
    (v,) = json.loads(outputs["json"])["verdicts"]
    assert v["status"] == "fails" and v["cause"]["code"] == CODE and v["fix"], v
    command = f"regtui fix {v['fix']} --ca-file ROOT.pem"
    for fmt in ("text", "markdown", "html"):
        assert command in outputs[fmt], (fmt, outputs[fmt][-3000:])
        assert f"regtui fix {v['fix']}`" not in outputs[fmt] and f"regtui fix {v['fix']}<" not in outputs[fmt], fmt
    assert main(["fix", v["fix"], *common, "--ca-file", str(cert.ca_file), "--apply", "--yes"]) == 0
    assert _trusted(hosts_dir / hostport), "the root was written next to hosts.toml"
