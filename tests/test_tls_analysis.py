"""Certificate analysis by Go's rules, on certificates made in memory (no lab daemons).

Hostile-server captures use in-process loopback sockets only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509

from lab.pki import VARIANTS, IssuedCert, LabPKI
from lab.sockets import TcpBlackHole
from regtui.checks import tls as certs_probe
from regtui.checks.tls_targets import Target, extra_targets, install_target, route_targets
from regtui.findings import finding
from regtui.host import Host
from regtui.model import TLSInputs
from regtui.net.tls.capture import capture, parse_challenge
from regtui.net.tls.certs import describe, fingerprint, parse_pem_bundle, weak_key_reason
from regtui.net.tls.diagnose import Diagnosis, diagnose
from regtui.net.tls.trust import TrustStore
from regtui.net.tls.verify import go_verify
from regtui.net.http import Timeouts
from regtui.net.resolver import Resolver, ResolverConfig
from regtui.options import CheckOptions
from regtui.probes import ProbeContext, ProbeResult
from regtui.runtimes.view import RuntimeView

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def pki() -> LabPKI:
    """One lab PKI for the module."""
    return LabPKI()


@pytest.fixture(scope="module")
def issue(pki: LabPKI, tmp_path_factory: pytest.TempPathFactory):
    """Issue a variant valid a year (unless the variant sets its own window)."""
    counter = iter(range(1000))

    def make(variant: str = "good", **kw: object) -> IssuedCert:
        opts = {**VARIANTS[variant], **kw}
        if not any(k in opts for k in ("expired", "not_yet_valid", "not_after")):
            opts.update(not_before=NOW - dt.timedelta(hours=1), not_after=NOW + dt.timedelta(days=365))
        return pki.issue(tmp_path_factory.mktemp(f"c{next(counter)}"), **opts)

    return make


def served(cert: IssuedCert) -> list[x509.Certificate]:
    """The chain a server configured with ``cert`` sends."""
    return parse_pem_bundle(cert.chain_file.read_bytes())[0]


def trusting(pki: LabPKI) -> TrustStore:
    """A trust store holding only the lab root."""
    return TrustStore(anchors=[pki.root.cert])


def codes(diag: Diagnosis) -> list[str]:
    """Finding codes of a diagnosis."""
    return [p.code for p in diag.problems]


# -- description ------------------------------------------------------------------------------

def test_describe_reports_every_panel_field(issue, pki: LabPKI) -> None:
    """Subject, issuer, SANs, validity with days left, key, Go signature name, fingerprint, CA flag, role."""
    cert = issue()
    leaf, inter = served(cert)
    info = describe(leaf, 0, NOW)
    assert info.role == "leaf" and not info.is_ca and not info.self_signed
    assert info.issuer == "CN=regtui lab intermediate CA"
    assert "DNS:*.lab.test" in info.sans and "IP:127.0.0.1" in info.sans
    assert info.key_type == "EC P-256" and info.key_size == 256
    assert info.signature_algorithm == "SHA256-RSA"
    assert info.sha256 == cert.leaf_sha256
    assert 363 <= info.days_left <= 365
    i_info = describe(inter, 1, NOW)
    assert i_info.role == "intermediate" and i_info.is_ca and i_info.key_type == "RSA" and i_info.key_size == 2048
    assert describe(pki.root.cert, 2, NOW).role == "root"


def test_pem_bundle_skips_blocks_that_do_not_parse(issue) -> None:
    """Like Go's AppendCertsFromPEM: broken blocks are skipped, the rest kept."""
    good = issue().chain_file.read_text()
    bundle = good + "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
    certs, skipped = parse_pem_bundle(bundle)
    assert len(certs) == 2 and skipped == 1


def test_weak_key_thresholds(issue) -> None:
    """RSA 1024 is weak but accepted by Go; 2048 RSA and P-256 are fine."""
    weak = weak_key_reason(served(issue("rsa1024"))[0])
    assert weak is not None and weak[1] is False and "1024" in weak[0]
    assert weak_key_reason(served(issue())[0]) is None
    assert weak_key_reason(served(issue())[1]) is None


# -- Go's verification ------------------------------------------------------------------------

def test_go_verify_accepts_good_chain(issue, pki: LabPKI) -> None:
    """Leaf + intermediate to a trusted root verifies; the chain ends at the root."""
    result = go_verify(served(issue()), "registry.lab.test", [pki.root.cert], NOW)
    assert result.ok and result.chain is not None
    assert fingerprint(result.chain[-1]) == pki.root.sha256


def test_go_verify_unknown_authority_text(issue) -> None:
    """Without the root: Go's exact words."""
    result = go_verify(served(issue()), "registry.lab.test", [], NOW)
    assert result.error == "x509: certificate signed by unknown authority"
    assert result.reason == "unknown-authority"


def test_go_verify_validity_text_and_order(issue, pki: LabPKI) -> None:
    """Leaf validity is checked before the name: an expired wrong-name leaf reports expiry."""
    cert = issue("expired", sans=("other.example",))
    result = go_verify(served(cert), "registry.lab.test", [pki.root.cert], NOW)
    assert result.reason == "expired"
    assert result.error.startswith("x509: certificate has expired or is not yet valid: current time ")
    assert " is after " in result.error


def test_go_verify_hostname_rules(issue, pki: LabPKI) -> None:
    """Wildcards match one label; IPs match IP SANs only; messages list the valid names."""
    chain, roots = served(issue()), [pki.root.cert]
    assert go_verify(chain, "a.lab.test", roots, NOW).ok
    assert go_verify(chain, "127.0.0.1", roots, NOW).ok
    deep = go_verify(chain, "a.b.lab.test", roots, NOW)
    assert deep.error == "x509: certificate is valid for localhost, *.lab.test, registry.lab.test, not a.b.lab.test"
    ip = go_verify(chain, "127.0.0.2", roots, NOW)
    assert ip.error == "x509: certificate is valid for 127.0.0.1, not 127.0.0.2"


def test_go_verify_ignores_common_name(issue, pki: LabPKI) -> None:
    """A CN-only certificate is refused even when the CN matches (Go >= 1.15)."""
    chain = served(issue("cn-only", common_name="cn.lab.test"))
    result = go_verify(chain, "cn.lab.test", [pki.root.cert], NOW)
    assert result.error == "x509: certificate relies on legacy Common Name field, use SANs instead"
    other = go_verify(chain, "x.lab.test", [pki.root.cert], NOW)
    assert other.error == "x509: certificate is not valid for any names, but wanted to match x.lab.test"


def test_go_verify_refuses_sha1_with_hint(issue, pki: LabPKI) -> None:
    """A SHA-1 leaf makes the issuer unusable: unknown authority, with the insecure-algorithm hint."""
    result = go_verify(served(issue("sha1")), "registry.lab.test", [pki.root.cert], NOW)
    assert result.error.startswith("x509: certificate signed by unknown authority (possibly because of ")
    assert "insecure algorithm SHA1-RSA" in result.error
    assert 'candidate authority certificate "regtui lab intermediate CA"' in result.error


def test_go_verify_trusts_a_pinned_self_signed_leaf(issue) -> None:
    """A self-signed leaf in the roots pool verifies (roots.contains(leaf))."""
    chain = served(issue("self-signed"))
    assert not go_verify(chain, "registry.lab.test", [], NOW).ok
    assert go_verify(chain, "registry.lab.test", [chain[0]], NOW).ok


# -- diagnosis --------------------------------------------------------------------------------

def test_diagnose_good_chain_has_no_problem(issue, pki: LabPKI) -> None:
    """A good chain with a year of validity: trusted, nothing to report."""
    diag = diagnose(served(issue()), "registry.lab.test", trusting(pki), NOW)
    assert diag.go.ok and diag.ends == "anchor" and codes(diag) == []


def test_diagnose_names_missing_intermediate(issue, pki: LabPKI) -> None:
    """Leaf alone: incomplete chain naming the intermediate by issuer."""
    diag = diagnose(served(issue("no-intermediate")), "registry.lab.test", trusting(pki), NOW)
    assert codes(diag) == ["tls.incomplete-chain"]
    assert diag.missing_issuer == "CN=regtui lab intermediate CA"
    assert diag.go.error == "x509: certificate signed by unknown authority"


def test_diagnose_untrusted_root_sent_and_root_sent(issue, pki: LabPKI) -> None:
    """Root sent but not trusted: unknown authority with the root as candidate, plus root-sent."""
    diag = diagnose(served(issue("with-root")), "registry.lab.test", TrustStore(), NOW)
    assert set(codes(diag)) == {"tls.unknown-authority", "tls.root-sent"}
    assert fingerprint(diag.candidate) == pki.root.sha256
    trusted = diagnose(served(issue("with-root")), "registry.lab.test", trusting(pki), NOW)
    assert codes(trusted) == ["tls.root-sent"] and trusted.go.ok


def test_diagnose_finds_root_in_other_trust_sources(issue, pki: LabPKI) -> None:
    """The root another runtime trusts becomes the candidate for the runtime that lacks it."""
    diag = diagnose(served(issue()), "registry.lab.test", TrustStore(), NOW, known=[pki.root.cert])
    assert codes(diag) == ["tls.unknown-authority"]
    assert fingerprint(diag.candidate) == pki.root.sha256 and diag.ends == "untrusted-root"


def test_diagnose_unknown_root_not_sent_offers_top_intermediate(issue, pki: LabPKI) -> None:
    """No root anywhere: the topmost sent certificate is the candidate and the root is named as missing."""
    diag = diagnose(served(issue()), "registry.lab.test", TrustStore(), NOW)
    assert codes(diag) == ["tls.unknown-authority"]
    assert fingerprint(diag.candidate) == pki.intermediate.sha256
    assert diag.missing_issuer == pki.root.cert.subject.rfc4514_string()


@pytest.mark.parametrize("variant,code", [
    ("expired", "tls.expired"), ("not-yet-valid", "tls.not-yet-valid"), ("wrong-host", "tls.hostname-mismatch"),
    ("self-signed", "tls.self-signed"), ("cn-only", "tls.cn-only"), ("sha1", "tls.weak-signature"),
    ("rsa1024", "tls.weak-key"),
])
def test_diagnose_names_each_defect(variant: str, code: str, issue, pki: LabPKI) -> None:
    """Each lab defect maps to exactly its finding code (trusted root, so nothing else is wrong)."""
    diag = diagnose(served(issue(variant)), "registry.lab.test", trusting(pki), NOW)
    assert codes(diag) == [code]
    assert diag.problems[0].cert is not None and diag.problems[0].cert.role == "leaf"


def test_diagnose_expiry_windows(issue, pki: LabPKI) -> None:
    """Within 60 days: expires-soon with the days left."""
    soon = diagnose(served(issue(not_after=NOW + dt.timedelta(days=10))), "registry.lab.test", trusting(pki), NOW)
    assert codes(soon) == ["tls.expires-soon"] and soon.problems[0].facts["days_left"] in (9, 10)


# -- challenge parsing ------------------------------------------------------------------------

def test_parse_challenge_bearer_basic_and_garbage() -> None:
    """Bearer realm and service are read; Basic has no realm; garbage gives empty fields."""
    c = parse_challenge(401, 'Bearer realm="https://auth.lab.test/token",service="registry.docker.io",scope="x"')
    assert (c.scheme, c.realm, c.service) == ("Bearer", "https://auth.lab.test/token", "registry.docker.io")
    assert parse_challenge(401, 'Basic realm="regtui-lab"').scheme == "Basic"
    junk = parse_challenge(401, "\x00\x01 ==== ,,,")
    assert junk.realm == "" and junk.status == 401


# -- install targets --------------------------------------------------------------------------

def _ctx(tmp_path: Path, views: list[RuntimeView]) -> ProbeContext:
    host = Host.from_args(tmp_path, {})
    return ProbeContext(host, CheckOptions(root=str(tmp_path)), [], views,
                        Resolver(ResolverConfig(nameservers=(("127.0.0.1", 53),))), Timeouts(1, 1))


def _t(runtime: str, role: str = "upstream", source: str = "default", config_host: str = "reg.lab.test:5000",
       url: str = "https://reg.lab.test:5000/v2") -> Target:
    return Target(runtime, "reg.lab.test:5000/app:1", role, url, "reg.lab.test", 5000, TLSInputs(),
                              config_host, url, source)


def test_install_target_per_runtime(tmp_path: Path) -> None:
    """Each runtime's place for a CA: certs.d for Docker and containers, hosts.toml under config_path for containerd."""
    ctx = _ctx(tmp_path, [RuntimeView("containerd", [], summary={"hosts_roots": ["/etc/containerd/certs.d"]})])
    assert install_target(ctx, _t("docker"))["install_to"] == "/etc/docker/certs.d/reg.lab.test:5000/ca.crt"
    assert install_target(ctx, _t("crio"))["install_to"] == "/etc/containers/certs.d/reg.lab.test:5000/ca.crt"
    up = install_target(ctx, _t("containerd"))
    assert up["install_to"] == "/etc/containerd/certs.d/reg.lab.test:5000/hosts.toml" and up["hosts_toml_table"] == ""
    mirror = install_target(ctx, _t("containerd", "mirror", "/etc/containerd/certs.d/reg.lab.test:5000/hosts.toml:4",
                                                "mirror.lab.test", "https://mirror.lab.test/v2"))
    assert mirror["hosts_toml_table"] == 'host."https://mirror.lab.test"'
    assert mirror["install_to"] == "/etc/containerd/certs.d/reg.lab.test:5000/hosts.toml"
    store = _ctx(tmp_path, [RuntimeView("docker", [], summary={"image_store": "containerd"})])
    docker_mirror = install_target(store, _t("docker", "mirror", "default", "mirror.lab.test",
                                                         "https://mirror.lab.test/v2"))
    assert docker_mirror["install_to"] == "/etc/docker/certs.d/reg.lab.test:5000/ca.crt"


def test_targets_carry_the_daemons_proxy_redacted_for_display(tmp_path: Path) -> None:
    """Route endpoints become targets with the daemon's proxy: full URL for the connection, masked for display."""
    from regtui.model import Route
    from regtui.net.proxy import from_environ
    from regtui.runtimes.endpoints import endpoint

    env = from_environ({"HTTPS_PROXY": "http://user:pw@proxy.lab.test:3128"})
    ep = endpoint("https://reg.lab.test:5000/v2", "reg.lab.test:5000", "upstream", "default", "app", env)
    plain = endpoint("http://plain.lab.test:5000/v2", "plain.lab.test:5000", "mirror", "x", "app", env)
    ctx = _ctx(tmp_path, [RuntimeView("containerd", [], proxy_env=env)])
    ctx.routes = [Route("containerd", "reg.lab.test:5000/app:1", (plain, ep))]
    targets = route_targets(ctx)
    tls_target = next(t for t in targets if t.use_tls)
    assert tls_target.proxy_url == "http://user:pw@proxy.lab.test:3128"
    assert tls_target.proxy_shown == "http://***@proxy.lab.test:3128" and "pw" not in repr(tls_target)
    assert tls_target.api_path == "/v2/" and tls_target.hostport == "reg.lab.test:5000"
    assert next(t for t in targets if not t.use_tls).proxy_url is None  # HTTP_PROXY unset: direct


def test_extra_endpoints_accept_every_documented_shape(tmp_path: Path) -> None:
    """Dicts (inheriting TLS inputs from 'from'), Endpoint objects, (runtime, Endpoint) pairs and bare URLs."""
    from regtui.model import Endpoint, Route
    from regtui.net.proxy import ProxyEnv

    ca = TLSInputs(ca_files=("/etc/containerd/certs.d/reg/ca.crt",))
    up = Endpoint("https://reg.lab.test/v2", "reg.lab.test", "upstream", "default", "app", tls=ca)
    ctx = _ctx(tmp_path, [RuntimeView("containerd", [], proxy_env=ProxyEnv())])
    ctx.routes = [Route("containerd", "reg.lab.test/app:1", (up,))]
    known = route_targets(ctx)
    ctx.observations["extra_endpoints"] = [
        {"url": "https://cdn.lab.test/blob", "from": "https://reg.lab.test/v2"},
        Endpoint("https://cdn2.lab.test/x", "cdn2.lab.test", "blob-redirect", "observed", "app"),
        ("containerd", Endpoint("https://cdn3.lab.test/x", "cdn3.lab.test", "blob-redirect", "observed", "app")),
        "https://cdn4.lab.test/x",
        "http://plain.lab.test/x",
        {"no": "url"},
    ]
    extra = {t.host: t for t in extra_targets(ctx, known)}
    assert set(extra) == {"cdn.lab.test", "cdn2.lab.test", "cdn3.lab.test", "cdn4.lab.test"}
    assert extra["cdn.lab.test"].tls == ca and extra["cdn.lab.test"].config_host == "reg.lab.test"
    assert all(t.role == "blob-redirect" and t.api_path == "" for t in extra.values())


# -- correlation with the clock ---------------------------------------------------------------

def _validity_finding(not_before: str, not_after: str, local: str) -> object:
    return finding("tls.not-yet-valid", "reg.lab.test:5000", "t", "d",
                   evidence={"not_before": not_before, "not_after": not_after, "local_time": local})


def test_correlate_says_whether_clock_skew_explains_validity(tmp_path: Path) -> None:
    """Local clock 2 days behind (skew -172800 s): 'not yet valid' is explained; a far-future cert is not."""
    ctx = _ctx(tmp_path, [])
    explained = _validity_finding("2026-03-02T00:00:00Z", "2027-03-01T00:00:00Z", "2026-03-01T00:00:00Z")
    not_explained = _validity_finding("2026-06-01T00:00:00Z", "2027-03-01T00:00:00Z", "2026-03-01T00:00:00Z")
    results = {
        "certs": ProbeResult("certs", {}, [explained, not_explained]),
        "clock": ProbeResult("clock", {"skew_seconds": -172800.0, "skew_kind": "ntp", "skew_source": "ntp (lab)",
                                       "skew_uncertainty_seconds": 0.01}),
    }
    assert certs_probe.correlate(results, ctx) == []
    first, second = results["certs"].findings
    assert first.evidence["explained_by_clock"] is True and first.evidence["clock_skew_seconds"] == -172800.0
    assert "clock" in first.title
    assert second.evidence["explained_by_clock"] is False


# -- captures against hostile or silent servers -----------------------------------------------

def _resolver() -> Resolver:
    return Resolver(ResolverConfig(nameservers=(("127.0.0.1", 53),), hosts={"h.lab.test": ("127.0.0.1",)}))


class _Server:
    """A one-shot loopback TCP server thread running ``behaviour(conn)`` for each client."""

    def __init__(self, behaviour) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                self.behaviour(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_server_ctx(issue) -> ssl.SSLContext:
    """A server context with a good lab chain."""
    cert = issue()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert.chain_file), str(cert.key_file))
    return ctx


def test_capture_plain_http_on_tls_port_is_named() -> None:
    """A server answering with HTTP instead of TLS: a handshake error that says so, no traceback."""
    server = _Server(lambda c: (c.recv(4096), c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")))
    try:
        cap = asyncio.run(capture(_resolver(), "h.lab.test", server.port, timeouts=Timeouts(2, 2)))
    finally:
        server.close()
    assert not cap.ok and cap.error_kind == "handshake" and "plain HTTP" in cap.error


def test_capture_survives_endless_headers(tls_server_ctx: ssl.SSLContext) -> None:
    """A server streaming headers forever: the chain is kept, the request stops at the header limit."""
    def endless(conn: socket.socket) -> None:
        with tls_server_ctx.wrap_socket(conn, server_side=True) as s:
            s.recv(4096)
            s.sendall(b"HTTP/1.1 401 Unauthorized\r\n")
            for _ in range(20000):
                s.sendall(b"X-Junk: " + b"a" * 100 + b"\r\n")

    server = _Server(endless)
    try:
        cap = asyncio.run(capture(_resolver(), "h.lab.test", server.port, timeouts=Timeouts(3, 3)))
    finally:
        server.close()
    assert cap.ok and len(cap.certs) == 2
    assert cap.error_kind == "http" and "larger than" in cap.error


def test_capture_black_hole_costs_one_timeout() -> None:
    """TCP accepted but never answered: one read timeout, reported as such."""
    with TcpBlackHole() as hole:
        started = time.monotonic()
        cap = asyncio.run(capture(_resolver(), "h.lab.test", hole.port, timeouts=Timeouts(0.5, 0.5)))
        elapsed = time.monotonic() - started
    assert cap.error_kind == "timeout" and "TLS handshake" in cap.error
    assert elapsed < 0.5 + 0.5


def test_capture_unresolvable_name_is_a_dns_error() -> None:
    """A name the resolver cannot answer: error kind dns, the resolver's message."""
    resolver = Resolver(ResolverConfig(nameservers=(("127.0.0.1", 9),), hosts={}), timeout=0.3)
    cap = asyncio.run(capture(resolver, "nowhere.lab.test", 443, timeouts=Timeouts(0.5, 0.5)))
    assert cap.error_kind == "dns" and not cap.ok
