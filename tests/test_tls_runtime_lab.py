"""The certs probe's verdicts against the real runtimes: ctr (containerd 1.6, Go) and skopeo (containers/image, Go).

For each certificate case the probe predicts the error Go will print; ``ctr images pull
--hosts-dir`` and ``skopeo inspect --cert-dir``, given the same trust inputs (the lab root) and
the same names (a private /etc/hosts), must fail with that error, or not fail on TLS at all
when the probe says the chain is trusted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest

from lab.certcases import CertLab, OldTlsServer
from lab.containerd import Containerd
from lab.namespaces import run_in_mount_namespace
from lab.pki import LabPKI
from lab.require import require_binary, require_root
from test_tls_probe_lab import image, make_root, run_certs

pytestmark = pytest.mark.lab

#: Cases whose chain Go refuses, and the finding code the probe gives each.
REFUSED = {
    "no-intermediate": "tls.incomplete-chain",
    "expired": "tls.expired",
    "not-yet-valid": "tls.not-yet-valid",
    "wrong-host": "tls.hostname-mismatch",
    "self-signed": "tls.self-signed",
    "cn-only": "tls.cn-only",
    "sha1": "tls.weak-signature",
    "client-auth-only": "tls.rejected",
}
#: Cases Go accepts (the probe may still warn).
ACCEPTED = ("good", "rsa1024", "with-root")
RUNTIME_CASES = ["no-intermediate", "expired", "not-yet-valid", "wrong-host", "self-signed", "cn-only", "sha1",
                 "client-auth-only", "good", "rsa1024", "with-root"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertLab]:
    """The case registries, for this module."""
    require_binary("docker-registry")
    require_root("runtimes with a private /etc/hosts")
    require_binary("unshare")
    with CertLab(tmp_path_factory.mktemp("certlab-rt"), LabPKI(), cases=RUNTIME_CASES) as cert_lab:
        yield cert_lab


@pytest.fixture(scope="module")
def predictions(lab: CertLab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """The probe's containerd verdict row per case (containerd trusts the lab root)."""
    root = make_root(tmp_path_factory.mktemp("root-rt"), lab, LabPKI("public").root.pem, cases=RUNTIME_CASES)
    run = run_certs(root, [image(lab.hostport(c)) for c in RUNTIME_CASES], runtime="containerd")
    rows = {c: run.endpoint("containerd", lab.hostport(c)) for c in RUNTIME_CASES}
    codes = {c: sorted({f.code for f in run.findings if f.subject == lab.hostport(c)}) for c in RUNTIME_CASES}
    return {c: {**rows[c], "codes": codes[c]} for c in RUNTIME_CASES}


def stem(go_error: str) -> str:
    """The part of Go's message that does not depend on the clock or the Go version's hints."""
    return re.split(r": current time | \(possibly because of ", go_error)[0]


def hosts_dir(tmp: Path, hostport: str, ca: Path) -> Path:
    """A containerd hosts directory trusting ``ca`` for ``hostport`` (a [host] table: 1.6/1.7 need one)."""
    d = tmp / "hosts.d"
    (d / hostport).mkdir(parents=True)
    (d / hostport / "hosts.toml").write_text(
        f'server = "https://{hostport}"\nca = "{ca}"\n\n[host."https://{hostport}"]\n'
        f'  capabilities = ["pull", "resolve"]\n  ca = "{ca}"\n')
    return d


@pytest.mark.parametrize("case", list(REFUSED))
def test_ctr_fails_with_the_predicted_x509_error(case: str, lab: CertLab, predictions: dict, containerd: Containerd,
                                                 tmp_path: Path) -> None:
    """ctr --hosts-dir with the lab root: the x509 error the probe predicted, and the probe's finding code."""
    row = predictions[case]
    go_error = row["verdict"]["go_error"]
    assert go_error and REFUSED[case] in row["codes"]
    hp = lab.hostport(case)
    pulled = containerd.ctr_pull(image(hp), hosts_dir=hosts_dir(tmp_path, hp, lab.pki.write_ca(tmp_path / "ca")),
                                 hosts_file=lab.hosts_file(tmp_path / "hosts"), timeout=60)
    assert not pulled.ok
    assert stem(go_error) in pulled.output, (go_error, pulled.output[-600:])
    if case == "sha1":
        assert "insecure algorithm SHA1-RSA" in pulled.output


@pytest.mark.parametrize("case", ACCEPTED)
def test_ctr_passes_tls_where_the_probe_trusts(case: str, lab: CertLab, predictions: dict, containerd: Containerd,
                                              tmp_path: Path) -> None:
    """Chains the probe calls trusted get past TLS in ctr (the pull then fails only for lack of an image)."""
    assert predictions[case]["status"] == "trusted"
    hp = lab.hostport(case)
    pulled = containerd.ctr_pull(image(hp), hosts_dir=hosts_dir(tmp_path, hp, lab.pki.write_ca(tmp_path / "ca")),
                                 hosts_file=lab.hosts_file(tmp_path / "hosts"), timeout=60)
    assert "x509" not in pulled.output and "tls:" not in pulled.output
    assert "not found" in pulled.output


def test_ctr_without_the_ca_reports_unknown_authority(lab: CertLab, containerd: Containerd, tmp_path: Path) -> None:
    """No trust input at all: Go's unknown-authority, which the probe predicts for a runtime without the CA."""
    hp = lab.hostport("good")
    d = tmp_path / "hosts.d"
    (d / hp).mkdir(parents=True)
    (d / hp / "hosts.toml").write_text(f'server = "https://{hp}"\n\n[host."https://{hp}"]\n  capabilities = ["pull", "resolve"]\n')
    pulled = containerd.ctr_pull(image(hp), hosts_dir=d, hosts_file=lab.hosts_file(tmp_path / "hosts"), timeout=60)
    assert "x509: certificate signed by unknown authority" in pulled.output


def test_ctr_refuses_the_old_protocol_server(lab: CertLab, containerd: Containerd, tmp_path: Path) -> None:
    """The TLS 1.0-only server: ctr fails with exactly the runtime error tls.old-protocol quotes."""
    require_binary("openssl")
    with OldTlsServer(tmp_path / "old", lab.certs["good"], host="127.0.0.62") as server:
        hp = f"old.lab.test:{server.port}"
        root = make_root(tmp_path / "root", lab, LabPKI("public").root.pem, cases=[hp], names={"old.lab.test": "127.0.0.62"})
        run = run_certs(root, [image(hp)], runtime="containerd")
        predicted = run.one("tls.old-protocol", hp).evidence["runtime_error"]
        pulled = containerd.ctr_pull(image(hp), hosts_dir=hosts_dir(tmp_path, hp, lab.pki.write_ca(tmp_path / "ca")),
                                     hosts_file=lab.hosts_file(tmp_path / "hosts", {"old.lab.test": "127.0.0.62"}),
                                     timeout=60)
    assert predicted in pulled.output, pulled.output[-600:]


@pytest.mark.parametrize("case", ["no-intermediate", "expired", "wrong-host", "self-signed", "cn-only", "sha1"])
def test_skopeo_agrees_with_the_probe(case: str, lab: CertLab, predictions: dict, tmp_path: Path) -> None:
    """skopeo (containers/image, as CRI-O and podman) with --cert-dir holding the lab root: the predicted error."""
    skopeo = require_binary("skopeo")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    hp = lab.hostport(case)
    result = run_in_mount_namespace(
        [skopeo, "--policy", str(policy), "inspect", "--retry-times", "0", "--cert-dir", str(lab.certs[case].ca_dir),
         f"docker://{image(hp)}"],
        hosts_file=lab.hosts_file(tmp_path / "hosts"), timeout=60)
    assert result.returncode != 0
    assert stem(predictions[case]["verdict"]["go_error"]) in result.stderr, result.stderr[-600:]
