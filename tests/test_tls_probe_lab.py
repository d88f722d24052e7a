"""The certs probe end to end: real registries per certificate case, the real route planners on a fake root.

Every case registry listens on its own 127.0.0.x address and is reached by name
(``<case>.lab.test:<port>``) through the fake root's /etc/hosts; the resolver never leaves the
root (resolv.conf points at 127.0.0.1 and every name is in the hosts file). containerd and CRI-O
verify (hosts dir / certs.d trust the lab root); Docker treats 127.0.0.0/8 as insecure, so its
routes show the problems at ``info`` next to the offline ``tls.verify-disabled``.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from cryptography import x509

from lab.certcases import CASES, CertLab, MitmProxy, MutualTlsRegistry, OldTlsServer, TokenAuthRegistry, issue_client_auth
from lab.pki import LabPKI
from lab.proxy import TinyProxy
from lab.require import require_binary, require_root
from lab.sockets import TcpBlackHole
from regtui import engine
from regtui.findings import CATALOGUE
from regtui.net.tls.certs import fingerprint as tls_fingerprint
from regtui.host import Host
from regtui.model import Finding
from regtui.options import CheckOptions
from regtui.probecontext import ProbeResult
from regtui.probes import run_probes
from rootfs import write_tree

pytestmark = pytest.mark.lab

TIMEOUT = 3.0
CONTAINERD_CONFIG = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'


# -- lab -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki() -> LabPKI:
    """The lab CA every case is issued from."""
    return LabPKI()


@pytest.fixture(scope="module")
def cert_lab(pki: LabPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertLab]:
    """One docker-registry per certificate case."""
    require_binary("docker-registry")
    require_binary("htpasswd")
    with CertLab(tmp_path_factory.mktemp("certlab"), pki) as lab:
        yield lab


@pytest.fixture(scope="module")
def public_ca(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """An unrelated CA standing in for the system bundle (trusts nothing in the lab)."""
    return LabPKI("regtui fake public").root.pem


# -- running the probe on a fake root -------------------------------------------------------

class Run:
    """One check's plan and certs probe result."""

    def __init__(self, plan: Any, result: ProbeResult, elapsed: float) -> None:
        self.plan = plan
        self.result = result
        self.elapsed = elapsed

    @property
    def findings(self) -> list[Finding]:
        """The probe's findings (after correlation)."""
        return self.result.findings

    def find(self, code: str, subject: str | None = None, runtime: str | None = None) -> list[Finding]:
        """Findings with ``code`` (about ``subject``, for ``runtime``)."""
        return [f for f in self.findings if f.code == code and (subject is None or f.subject == subject)
                and (runtime is None or f.runtime == runtime or runtime in f.evidence.get("runtimes", []))]

    def one(self, code: str, subject: str, runtime: str | None = None) -> Finding:
        """Exactly one finding with ``code`` about ``subject``."""
        found = self.find(code, subject, runtime)
        assert len(found) == 1, (code, subject, [(f.code, f.subject, f.runtime) for f in self.findings])
        return found[0]

    def endpoint(self, runtime: str, host: str, role: str | None = None) -> dict[str, Any]:
        """The data row of one endpoint."""
        rows = [e for e in self.result.data["endpoints"] if e["runtime"] == runtime and e["host"] == host
                and (role is None or e["role"] == role)]
        assert rows, (runtime, host, [(e["runtime"], e["host"]) for e in self.result.data["endpoints"]])
        return rows[0]


def subject_of(lab: CertLab, case: str) -> str:
    """Finding subject of a case: ``<case>.lab.test:<port>``."""
    return lab.hostport(case)


def image(hostport: str) -> str:
    """An image reference on ``hostport``."""
    return f"{hostport}/lab/app:latest"


def make_root(tmp: Path, lab: CertLab, public_ca: bytes, *, cases: list[str], trust: dict[str, bool] | None = None,
              names: dict[str, str] | None = None, files: dict[str, str | bytes] | None = None) -> Path:
    """A fake root: hosts for the lab names, resolv.conf on loopback, containerd and CRI-O trusting the lab root.

    ``trust`` says per runtime (``containerd``, ``crio``) whether it gets the lab root for the
    case hosts (default both).
    """
    trust = {"containerd": True, "crio": True, **(trust or {})}
    root_pem = lab.pki.root.pem
    hosts = {**lab.names(), **(names or {})}
    tree: dict[str, str | bytes] = {
        "/etc/hosts": "127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in hosts.items()),
        "/etc/resolv.conf": "nameserver 127.0.0.1\n",
        "/etc/ssl/certs/ca-certificates.crt": public_ca,
        "/etc/containerd/config.toml": CONTAINERD_CONFIG,
        "/etc/containerd/certs.d/": "",
        "/etc/containers/registries.conf": "unqualified-search-registries = []\n",
        "/etc/docker/daemon.json": "{}\n",
    }
    for case in cases:
        hp = lab.hostport(case) if case in lab.registries else case
        if trust["containerd"]:
            tree[f"/etc/containerd/certs.d/{hp}/ca.crt"] = root_pem
        if trust["crio"]:
            tree[f"/etc/containers/certs.d/{hp}/ca.crt"] = root_pem
    tree.update(files or {})
    return write_tree(tmp, tree)


def run_certs(root: Path, images: list[str], *, runtime: str = "auto", clock: Callable[[], datetime] | None = None,
              observations: dict[str, Any] | None = None, timeout: float = TIMEOUT) -> Run:
    """Plan with the real runtime readers, then run the certs probe (and its correlation)."""
    host = Host(root=root, environ={}, clock=clock or (lambda: datetime.now(timezone.utc)))
    options = CheckOptions(root=str(root), images=tuple(images), runtime=runtime, containerd_version="2.0",
                           docker_store="classic", timeout=timeout)
    plan = engine.plan(options, host)
    ctx = engine.probe_context(plan)
    ctx.observations.update(observations or {})
    started = time.monotonic()
    results = asyncio.run(run_probes(ctx, panels=("certs",)))
    elapsed = time.monotonic() - started
    result = results["certs"]
    assert result.error is None, result.error
    return Run(plan, result, elapsed)


@pytest.fixture(scope="module")
def trusted_run(cert_lab: CertLab, public_ca: bytes, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Every case, with containerd and CRI-O trusting the lab root (plus Docker, which does not verify)."""
    cases = list(CASES)
    root = make_root(tmp_path_factory.mktemp("root-trusted"), cert_lab, public_ca, cases=cases)
    return run_certs(root, [image(cert_lab.hostport(c)) for c in cases])


# -- one chain, verified ----------------------------------------------------------------------

def test_good_chain_is_shown_and_trusted(trusted_run: Run, cert_lab: CertLab) -> None:
    """The good registry: both verifying runtimes trust it; the panel shows the chain in detail."""
    hp = subject_of(cert_lab, "good")
    assert not [f for f in trusted_run.findings if f.subject == hp and f.runtime != "docker"]
    for runtime in ("containerd", "crio"):
        row = trusted_run.endpoint(runtime, hp)
        assert row["status"] == "trusted" and row["verdict"]["go_error"] is None
        assert row["trust"]["ca_files"] == [f"/etc/{'containerd' if runtime == 'containerd' else 'containers'}/certs.d/{hp}/ca.crt"]
    cap = trusted_run.result.data["captures"][hp]
    assert cap["tls_version"] == "TLSv1.3" and cap["server_name"] == "good.lab.test"
    leaf, inter = cap["certificates"]
    assert leaf["sha256"] == cert_lab.certs["good"].leaf_sha256 and leaf["role"] == "leaf"
    assert inter["subject"] == "CN=regtui lab intermediate CA" and inter["is_ca"] and inter["position"] == 1
    assert leaf["days_left"] >= 360 and leaf["key_type"] == "EC P-256" and leaf["signature_algorithm"] == "SHA256-RSA"


def test_incomplete_chain_names_missing_intermediate(trusted_run: Run, cert_lab: CertLab) -> None:
    """Leaf without its intermediate: tls.incomplete-chain names the issuer; the runtime error is Go's."""
    f = trusted_run.one("tls.incomplete-chain", subject_of(cert_lab, "no-intermediate"))
    assert f.severity == "error"
    assert f.evidence["missing_issuer"] == "CN=regtui lab intermediate CA"
    assert f.evidence["runtime_error"] == "x509: certificate signed by unknown authority"
    assert {"containerd", "crio"} <= set(f.evidence["verifying_runtimes"])
    assert f.fix is not None and f.fix.kind == "manual"


def test_expired_and_not_yet_valid_name_the_certificate(trusted_run: Run, cert_lab: CertLab) -> None:
    """Expired / not-yet-valid leaf: which certificate, its window, Go's error, and the clock's verdict."""
    expired = trusted_run.one("tls.expired", subject_of(cert_lab, "expired"))
    assert expired.severity == "error" and expired.evidence["certificate"]["role"] == "leaf"
    assert expired.evidence["certificate"]["sha256"] == cert_lab.certs["expired"].leaf_sha256
    assert expired.evidence["go_error"].startswith("x509: certificate has expired or is not yet valid: current time")
    assert " is after " in expired.evidence["go_error"]
    early = trusted_run.one("tls.not-yet-valid", subject_of(cert_lab, "not-yet-valid"))
    assert " is before " in early.evidence["go_error"] and early.severity == "error"
    for f in (expired, early):  # registry Date headers agree with the local clock: not explained
        assert f.evidence["explained_by_clock"] is False and abs(f.evidence["clock_skew_seconds"]) < 5


def test_hostname_mismatch_lists_valid_names(trusted_run: Run, cert_lab: CertLab) -> None:
    """Wrong name: the names it is valid for, and the name the runtimes asked for."""
    f = trusted_run.one("tls.hostname-mismatch", subject_of(cert_lab, "wrong-host"))
    assert f.evidence["valid_for"] == ["wrong.lab.invalid"] and f.evidence["wanted"] == "wrong-host.lab.test"
    assert f.evidence["go_error"] == "x509: certificate is valid for wrong.lab.invalid, not wrong-host.lab.test"
    assert f.severity == "error"


def test_self_signed_per_runtime_with_pin_fix(trusted_run: Run, cert_lab: CertLab) -> None:
    """Self-signed leaf: one finding per verifying runtime, each with its own install path and the leaf's fingerprint."""
    hp = subject_of(cert_lab, "self-signed")
    leaf_fp = cert_lab.certs["self-signed"].leaf_sha256
    by_runtime = {f.runtime: f for f in trusted_run.find("tls.self-signed", hp)}
    assert {"containerd", "crio"} <= set(by_runtime)
    assert by_runtime["containerd"].fix.params["install_to"] == f"/etc/containerd/certs.d/{hp}/hosts.toml"
    assert by_runtime["crio"].fix.params["install_to"] == f"/etc/containers/certs.d/{hp}/ca.crt"
    for f in (by_runtime["containerd"], by_runtime["crio"]):
        assert f.severity == "error" and f.fix.kind == "edit"
        assert f.fix.params["ca_pem_fingerprint"] == leaf_fp and f.fix.params["host"] == hp
    assert leaf_fp in trusted_run.result.data["ca_candidates"]


def test_cn_only_is_rejected_as_go_does(trusted_run: Run, cert_lab: CertLab) -> None:
    """CN-only leaf whose CN matches: tls.cn-only with Go's legacy-CN message."""
    f = trusted_run.one("tls.cn-only", subject_of(cert_lab, "cn-only"))
    assert f.evidence["common_name"] == "cn-only.lab.test" and f.severity == "error"
    assert f.evidence["go_error"] == "x509: certificate relies on legacy Common Name field, use SANs instead"


def test_sha1_signature_is_rejected(trusted_run: Run, cert_lab: CertLab) -> None:
    """SHA-1-signed leaf: tls.weak-signature; the runtime error carries Go's insecure-algorithm hint."""
    f = trusted_run.one("tls.weak-signature", subject_of(cert_lab, "sha1"))
    assert f.severity == "error" and f.evidence["signature_algorithm"] == "SHA1-RSA"
    assert "insecure algorithm SHA1-RSA" in f.evidence["runtime_error"]


def test_rsa1024_is_a_weak_key_warning(trusted_run: Run, cert_lab: CertLab) -> None:
    """RSA 1024: weak key, a warning (Go still accepts it), and the chain otherwise verifies."""
    hp = subject_of(cert_lab, "rsa1024")
    f = trusted_run.one("tls.weak-key", hp)
    assert f.severity == "warning" and f.evidence["key_size"] == 1024 and f.evidence["go_refuses"] is False
    assert trusted_run.endpoint("containerd", hp)["status"] == "trusted"


def test_expiry_within_30_days_warns_and_within_60_informs(trusted_run: Run, cert_lab: CertLab) -> None:
    """10 days left: warning; 45 days left: info."""
    soon = trusted_run.one("tls.expires-soon", subject_of(cert_lab, "expires-soon"))
    later = trusted_run.one("tls.expires-soon", subject_of(cert_lab, "expires-later"))
    assert soon.severity == "warning" and soon.evidence["days_left"] in (9, 10)
    assert later.severity == "info" and later.evidence["days_left"] in (44, 45)


def test_root_sent_is_information(trusted_run: Run, cert_lab: CertLab) -> None:
    """Server sends its root: tls.root-sent (info, no fix); the chain is still trusted."""
    hp = subject_of(cert_lab, "with-root")
    f = trusted_run.one("tls.root-sent", hp)
    assert f.severity == "info" and f.fix is None
    assert f.evidence["certificate"]["sha256"] == cert_lab.pki.root.sha256
    assert trusted_run.endpoint("crio", hp)["status"] == "trusted"


def test_key_usage_refusal_quotes_go(trusted_run: Run, cert_lab: CertLab) -> None:
    """A server certificate for clientAuth only: no specific code fits, so tls.rejected quotes Go's error."""
    f = trusted_run.one("tls.rejected", subject_of(cert_lab, "client-auth-only"))
    assert f.severity == "error" and f.evidence["go_reason"] == "usage"
    assert f.evidence["runtime_error"] == "x509: certificate specifies an incompatible key usage"


def test_docker_routes_show_problems_at_info(trusted_run: Run, cert_lab: CertLab) -> None:
    """Docker skips verification for 127.0.0.0/8 names: tls.verify-disabled offline, certificate problems at info."""
    hp = subject_of(cert_lab, "self-signed")
    disabled = [f for f in trusted_run.plan.findings if f.code == "tls.verify-disabled" and f.subject == hp]
    assert disabled and disabled[0].runtime == "docker"
    docker = [f for f in trusted_run.find("tls.self-signed", hp) if f.runtime == "docker"]
    assert len(docker) == 1 and docker[0].severity == "info" and "does not verify" in docker[0].detail
    assert trusted_run.endpoint("docker", hp)["status"] == "not-verified"


def assert_candidates_complete(run: Run) -> None:
    """Every fingerprint a fix proposes to trust has its PEM in the data, and only those."""
    wanted = {f.fix.params["ca_pem_fingerprint"] for f in run.findings if f.fix and f.fix.params.get("ca_pem_fingerprint")}
    assert set(run.result.data["ca_candidates"]) == wanted
    for fp, entry in run.result.data["ca_candidates"].items():
        assert tls_fingerprint(x509.load_pem_x509_certificate(entry["pem"].encode())) == fp


def test_every_finding_is_catalogued_json_ready_and_resolvable(trusted_run: Run) -> None:
    """All findings are catalogued certs findings, serialise to JSON, and each proposed CA's PEM is in the data."""
    assert trusted_run.findings
    for f in trusted_run.findings:
        assert f.code in CATALOGUE and f.panel == "certs"
        json.dumps(f.to_dict())
    json.dumps(trusted_run.result.data)
    assert_candidates_complete(trusted_run)


# -- trust inputs --------------------------------------------------------------------------

def test_unknown_authority_fix_installs_root_and_then_verifies(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """No CA for containerd: unknown-authority with the root's fingerprint; installing the PEM where the fix says clears it."""
    hp = subject_of(cert_lab, "with-root")
    root = make_root(tmp_path, cert_lab, public_ca, cases=["with-root"], trust={"containerd": False, "crio": False})
    run = run_certs(root, [image(hp)], runtime="containerd")
    f = run.one("tls.unknown-authority", hp, "containerd")
    params = f.fix.params
    assert f.severity == "error" and f.fix.kind == "edit"
    assert params["ca_pem_fingerprint"] == cert_lab.pki.root.sha256 and params["runtime"] == "containerd"
    assert params["install_to"] == f"/etc/containerd/certs.d/{hp}/hosts.toml"
    assert f.evidence["candidate_ca"]["sent_by_server"] is True
    assert f.evidence["runtime_error"] == "x509: certificate signed by unknown authority"
    pem = run.result.data["ca_candidates"][params["ca_pem_fingerprint"]]["pem"]
    assert x509.load_pem_x509_certificate(pem.encode()).subject == cert_lab.pki.root.cert.subject
    # Apply the fix as the fix engine would: the PEM at ca_file, referenced from hosts.toml.
    write_tree(root, {params["ca_file"]: pem, params["install_to"]: f'ca = "{params["ca_file"]}"\n'})
    again = run_certs(root, [image(hp)], runtime="containerd")
    assert not again.find("tls.unknown-authority", hp)
    assert again.endpoint("containerd", hp)["status"] == "trusted"


def test_trust_differs_between_runtimes(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """CRI-O trusts the registry, containerd does not: tls.trust-differs naming the anchor CRI-O uses."""
    hp = subject_of(cert_lab, "good")
    root = make_root(tmp_path, cert_lab, public_ca, cases=["good"], trust={"containerd": False, "crio": True})
    run = run_certs(root, [image(hp)])
    f = run.one("tls.trust-differs", hp)
    assert f.runtime == "containerd" and f.severity == "warning"
    assert f.evidence["trusting"]["runtime"] == "crio"
    assert f.evidence["trusting"]["anchor"]["sha256"] == cert_lab.pki.root.sha256
    assert f.fix.params["ca_pem_fingerprint"] == cert_lab.pki.root.sha256 and f.fix.params["copy_from"] == "crio"
    # containerd's own unknown-authority offers the same root, found in CRI-O's trust inputs.
    ua = run.one("tls.unknown-authority", hp, "containerd")
    assert ua.fix.params["ca_pem_fingerprint"] == cert_lab.pki.root.sha256
    assert_candidates_complete(run)


def test_client_certificate_from_trust_inputs_is_presented(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """A registry requiring a client certificate: containerd's hosts.toml pair gets past it, CRI-O (none) does not; no key leaks."""
    client = issue_client_auth(cert_lab.pki, tmp_path / "client")
    reg = MutualTlsRegistry(tmp_path / "mtls", client_ca=cert_lab.pki.write_ca(tmp_path / "client-ca"),
                            host="127.0.0.63", tls=cert_lab.certs["good"])
    with reg:
        hp = f"mtls.lab.test:{reg.port}"
        d = f"/etc/containerd/certs.d/{hp}"
        files = {f"{d}/client.cert": client.chain_file.read_bytes(), f"{d}/client.key": client.key_file.read_bytes(),
                 f"{d}/hosts.toml": f'server = "https://{hp}"\nca = "{d}/ca.crt"\nclient = [["{d}/client.cert", "{d}/client.key"]]\n'}
        root = make_root(tmp_path / "root", cert_lab, public_ca, cases=[hp], names={"mtls.lab.test": "127.0.0.63"},
                         files=files)
        run = run_certs(root, [image(hp)])
    captures = run.result.data["captures"]
    with_cert = captures[run.endpoint("containerd", hp)["capture"]]
    without = captures[run.endpoint("crio", hp)["capture"]]
    assert with_cert["client_certificate"] is True and with_cert["challenge"]["status"] == 200
    assert without["client_certificate"] is False and without["error_kind"] == "http" and without["challenge"] is None
    assert run.endpoint("containerd", hp)["status"] == run.endpoint("crio", hp)["status"] == "trusted"
    blob = json.dumps(run.result.data) + json.dumps([f.to_dict() for f in run.findings])
    assert "PRIVATE KEY" not in blob and client.key_file.read_text().splitlines()[1] not in blob


# -- protocol ---------------------------------------------------------------------------------

def test_old_protocol_server_is_an_error(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """An OpenSSL server offering only TLS 1.0: tls.old-protocol (error: Go refuses below 1.2)."""
    require_binary("openssl")
    cert = cert_lab.certs["good"]
    with OldTlsServer(tmp_path / "old", cert, host="127.0.0.60") as server:
        hp = f"old.lab.test:{server.port}"
        root = make_root(tmp_path / "root", cert_lab, public_ca, cases=[hp], names={"old.lab.test": "127.0.0.60"})
        run = run_certs(root, [image(hp)], runtime="containerd")
    f = run.one("tls.old-protocol", hp)
    assert f.severity == "error" and f.evidence["tls_version"] == "TLSv1"
    assert f.evidence["runtime_error"] == "remote error: tls: protocol version not supported"
    assert f.evidence["runtime_error_alternative"] == "tls: server selected unsupported protocol version 301"
    assert run.endpoint("containerd", hp)["status"] == "trusted"  # the chain itself is fine


# -- proxies ----------------------------------------------------------------------------------

def _proxy_dropin(url: str) -> dict[str, str]:
    return {"/etc/systemd/system/containerd.service.d/http-proxy.conf": f'[Service]\nEnvironment="HTTPS_PROXY={url}"\n'}


def test_inspecting_proxy_is_detected_and_secrets_stay_hidden(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """Through a TLS-inspecting proxy: tls.intercepted with both chains, the proxy CA to trust; no proxy password anywhere."""
    hp = subject_of(cert_lab, "good")
    with MitmProxy(tmp_path / "mitm", cert_lab.names()) as mitm:
        url = f"http://inspector:s3cret-pw@127.0.0.1:{mitm.port}"
        root = make_root(tmp_path / "root", cert_lab, public_ca, cases=["good"], files=_proxy_dropin(url))
        run = run_certs(root, [image(hp)], runtime="containerd")
        assert mitm.connects and mitm.connects[0] == hp
    f = run.one("tls.intercepted", hp)
    assert f.severity == "warning" and f.runtime == "containerd"
    assert f.evidence["direct"]["leaf_sha256"] == cert_lab.certs["good"].leaf_sha256
    assert f.evidence["through_proxy"]["issuer"] == "CN=regtui lab inspecting proxy intermediate CA"
    assert f.evidence["proxy_ca"]["sha256"] == mitm.intermediate_sha256
    assert f.fix is not None and f.fix.params["ca_pem_fingerprint"] == mitm.intermediate_sha256
    ua = run.one("tls.unknown-authority", hp, "containerd")
    assert ua.evidence["missing_issuer"] == "CN=regtui lab inspecting proxy root CA,O=regtui lab inspecting proxy"
    assert_candidates_complete(run)
    blob = json.dumps([x.to_dict() for x in run.findings]) + json.dumps(run.result.data)
    assert "s3cret-pw" not in blob and "inspector" not in blob
    assert "http://***@127.0.0.1" in blob


def test_honest_proxy_tunnels_the_same_chain(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """Through tinyproxy (CONNECT, no inspection): the captured chain is the server's, nothing intercepted."""
    require_binary("tinyproxy")
    require_root("tinyproxy with a lab hosts file")
    hp = subject_of(cert_lab, "good")
    with TinyProxy(tmp_path / "tinyproxy", hosts_file=cert_lab.hosts_file(tmp_path / "hosts")) as proxy:
        root = make_root(tmp_path / "root", cert_lab, public_ca, cases=["good"], files=_proxy_dropin(proxy.url))
        run = run_certs(root, [image(hp)], runtime="containerd")
        assert f"CONNECT {hp}" in proxy.proxy_log()
    assert not run.find("tls.intercepted")
    row = run.endpoint("containerd", hp)
    assert row["status"] == "trusted" and row["proxy"] == proxy.url
    via = run.result.data["captures"][row["capture"]]
    assert via["via"] == proxy.url and via["certificates"][0]["sha256"] == cert_lab.certs["good"].leaf_sha256


def test_https_proxy_is_spoken_tls_to(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """HTTPS_PROXY=https://...: TLS to the proxy, CONNECT inside it, then the server's own chain (not intercepted)."""
    hp = subject_of(cert_lab, "good")
    with MitmProxy(tmp_path / "tunnel", cert_lab.names(), inspect=False, listen_tls=cert_lab.certs["good"]) as proxy:
        root = make_root(tmp_path / "root", cert_lab, public_ca, cases=["good"], files=_proxy_dropin(proxy.url))
        run = run_certs(root, [image(hp)], runtime="containerd")
        assert proxy.connects == [hp]
    row = run.endpoint("containerd", hp)
    via = run.result.data["captures"][row["capture"]]
    assert via["via"] == proxy.url and via["challenge"]["status"] == 200
    assert via["certificates"][0]["sha256"] == cert_lab.certs["good"].leaf_sha256
    assert row["status"] == "trusted" and not run.find("tls.intercepted")


# -- more endpoints: token realm, blob redirects ----------------------------------------------

def test_token_realm_is_found_and_checked(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """The registry's Bearer realm (on the expired server) is captured and judged with the registry's trust inputs."""
    require_binary("docker-registry")
    realm = f"https://{cert_lab.hostport('expired')}/token"
    reg = TokenAuthRegistry(tmp_path / "token-reg", realm=realm, bundle=cert_lab.pki.write_ca(tmp_path / "bundle"),
                            host="127.0.0.61", tls=cert_lab.certs["good"])
    with reg:
        hp = f"tokened.lab.test:{reg.port}"
        root = make_root(tmp_path / "root", cert_lab, public_ca, cases=[hp], names={"tokened.lab.test": "127.0.0.61"})
        run = run_certs(root, [image(hp)], runtime="containerd")
    assert run.result.data["realms"][0]["realm"] == realm
    row = run.endpoint("containerd", cert_lab.hostport("expired"), role="token-realm")
    assert row["trust"]["ca_files"] == [f"/etc/containerd/certs.d/{hp}/ca.crt"]  # the registry's inputs
    f = run.one("tls.expired", cert_lab.hostport("expired"))
    assert f.evidence["roles"] == ["token-realm"] and f.evidence["endpoints"] == [realm]


def test_blob_redirect_hosts_from_other_probes_are_checked(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """A redirect host recorded in observations["extra_endpoints"] is captured with its registry's trust."""
    hp = subject_of(cert_lab, "good")
    redirect = f"https://{cert_lab.hostport('wrong-host')}/blobs/sha256:abc"
    root = make_root(tmp_path, cert_lab, public_ca, cases=["good"])
    run = run_certs(root, [image(hp)], runtime="containerd",
                    observations={"extra_endpoints": [{"url": redirect, "runtime": "containerd", "from": f"https://{hp}/v2"}]})
    f = run.one("tls.hostname-mismatch", cert_lab.hostport("wrong-host"))
    assert f.evidence["roles"] == ["blob-redirect"] and f.evidence["wanted"] == "wrong-host.lab.test"


# -- clock ------------------------------------------------------------------------------------

def test_clock_behind_explains_not_yet_valid(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """Host clock two days behind: the good chain looks not-yet-valid, and the registry's Date explains it."""
    hp = subject_of(cert_lab, "good")
    root = make_root(tmp_path, cert_lab, public_ca, cases=["good"])
    run = run_certs(root, [image(hp)], runtime="containerd",
                    clock=lambda: datetime.now(timezone.utc) - timedelta(days=2))
    early = run.find("tls.not-yet-valid", hp)
    assert early and all(f.evidence["explained_by_clock"] is True for f in early)
    assert all(-172900 < f.evidence["clock_skew_seconds"] < -172700 for f in early)
    assert any(f.evidence["certificate"]["role"] == "leaf" for f in early)
    assert "explained by this host's clock" in early[0].title


# -- concurrency ------------------------------------------------------------------------------

def test_black_holed_endpoints_cost_one_timeout(cert_lab: CertLab, public_ca: bytes, tmp_path: Path) -> None:
    """Three black-holed mirrors before a good upstream: probed concurrently, the check costs about one timeout."""
    timeout = 1.0
    holes = [TcpBlackHole(host=f"127.0.0.{70 + i}").start() for i in range(3)]
    try:
        names = {f"hole{i}.lab.test": h.host for i, h in enumerate(holes)}
        hp = subject_of(cert_lab, "good")
        mirrors = "".join(f'[host."https://hole{i}.lab.test:{h.port}"]\n  capabilities = ["pull", "resolve"]\n'
                          for i, h in enumerate(holes))
        root = make_root(tmp_path, cert_lab, public_ca, cases=["good"], names=names,
                         files={f"/etc/containerd/certs.d/{hp}/hosts.toml":
                                f'server = "https://{hp}"\nca = "/etc/containerd/certs.d/{hp}/ca.crt"\n\n' + mirrors})
        run = run_certs(root, [image(hp)], runtime="containerd", timeout=timeout)
    finally:
        for h in holes:
            h.stop()
    caps = run.result.data["captures"]
    for i, h in enumerate(holes):
        assert caps[f"hole{i}.lab.test:{h.port}"]["error_kind"] == "timeout"
    assert run.endpoint("containerd", hp)["status"] in ("trusted", "rejected")
    assert run.elapsed < 2 * timeout  # sequential probing would cost 3 timeouts
