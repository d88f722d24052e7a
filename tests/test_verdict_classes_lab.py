"""The verdict for each failure class the probes and the test pull produce, against the lab.

Real registries (one per certificate defect), real runtime configurations in fake roots, the whole
`regtui check`: each class asserts the verdict's status, cause code, endpoint and phase, and where
the cause has a fix, `regtui fix <id> --apply --yes` on the same root and a re-check that is ok.
Classes already covered in test_verdict_lab.py (untrusted CA for containerd, expired certificate,
dead and empty mirrors, dead proxy, missing credentials, unknown tag, DNS, corrupt layer, rate
limit) are not repeated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.certcases import MitmProxy, OldTlsServer, issue_client_auth
from lab.fakeregistry import FakeRegistry, Faults
from lab.fixtures import LAB_CREDENTIALS, LAB_REPO
from lab.images import OciImage, push
from lab.ntp import Chrony
from lab.pki import IssuedCert, LabPKI
from lab.proxy import TinyProxy
from lab.pullroots import containerd_root, crio_root, docker_root
from lab.registry import Registry
from lab.sockets import TcpBlackHole
from lab.verdicts import HOSTS, apply_fix, check, cli_args, finding_by_id, lab_image_ref, lab_name, verdict
from regtui.cli import main

pytestmark = pytest.mark.lab

RUNTIMES = ("containerd", "crio", "docker")


def _root(root: Path, runtime: str, name: str, ca: Path | None = None,
          auths: dict[str, tuple[str, str]] | None = None) -> Path:
    """A root where ``runtime`` pulls from ``name`` (trusting ``ca`` when given, with ``auths``)."""
    if runtime == "containerd":
        containerd_root(root, name, server=f"https://{name}", server_ca=ca, hosts=HOSTS, auths=auths)
    elif runtime == "crio":
        crio_root(root, name, cas={name: ca} if ca else None, hosts=HOSTS, auths=auths)
    else:
        docker_root(root, {}, cas={name: ca} if ca else None, hosts=HOSTS, auths=auths)
    return root


def _served(registry_factory: Callable[..., Registry], image: OciImage, cert: IssuedCert) -> Registry:
    """A private TLS registry serving ``cert`` with the lab image pushed."""
    registry = registry_factory(tls=cert)
    push(image, registry, LAB_REPO)
    return registry


def _cause(v: dict[str, Any]) -> tuple[str, str, str]:
    assert v["cause"] is not None, v
    return v["cause"]["code"], v["cause"]["endpoint"], v["cause"]["phase"]


def _titles(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["severity"], f["code"], f["title"]) for f in data["findings"]]


# -- connect ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_refused_connection_fails_at_the_registry_with_a_concrete_step(runtime: str, tmp_path: Path,
                                                                       closed_port: int) -> None:
    """Nothing listens on the registry's port: fails in the connect phase there, says so, and the step is not "fix the cause"."""
    name = f"registry.lab.test:{closed_port}"
    root = _root(tmp_path / "root", runtime, name)
    report, data = check(root, f"{name}/{LAB_REPO}:latest", runtime, timeout=1.0)
    v = verdict(data, runtime)
    assert v["status"] == "fails" and report.exit_code == 1
    assert _cause(v) == ("pull.failed", f"https://{name}/v2", "connect"), v
    assert f"{name} refuses connections" in v["summary"] and "(registry.lab.test" in v["summary"], v["summary"]
    assert v["fix"] is None and v["manual"].startswith(f"start the registry at {name}"), v["manual"]


# -- TLS, per cause ---------------------------------------------------------------------------------
#: Certificate defect -> (cause code, the summary's words). Each has no automatic fix: the server's
#: certificate must change.
SERVER_SIDE = {
    "wrong-host": ("tls.hostname-mismatch", "certificate is not valid for registry.lab.test"),
    "no-intermediate": ("tls.incomplete-chain", "does not send its intermediate certificate"),
    "not-yet-valid": ("tls.not-yet-valid", "certificate is not valid before "),
    "cn-only": ("tls.cn-only", "no subjectAltName"),
    "sha1": ("tls.weak-signature", "SHA1"),
    "client-auth-only": ("tls.rejected", ""),
}


@pytest.mark.parametrize("variant", list(SERVER_SIDE))
def test_server_side_certificate_defect_fails_with_its_cause_and_a_manual_step(
    variant: str, tmp_path: Path, lab_pki: LabPKI, cert_factory: Callable[..., IssuedCert],
    registry_factory: Callable[..., Registry], lab_image: OciImage,
) -> None:
    """Each certificate defect Go refuses: containerd fails on that cause, at the registry, TLS phase; the step is by hand."""
    if variant == "client-auth-only":
        cert = issue_client_auth(lab_pki, tmp_path / "client-auth-only")
    else:
        cert = cert_factory(variant)
    registry = _served(registry_factory, lab_image, cert)
    name = lab_name(registry)
    root = _root(tmp_path / "root", "containerd", name, cert.ca_file)
    _, data = check(root, lab_image_ref(registry), "containerd")
    v = verdict(data, "containerd")
    code, words = SERVER_SIDE[variant]
    assert v["status"] == "fails", (v, _titles(data))
    assert _cause(v) == (code, f"https://{name}/v2", "tls"), (v, _titles(data))
    assert words in v["summary"] and f"({name}, TLS handshake)" in v["summary"], v["summary"]
    assert [finding_by_id(data, i)["code"] for i in v["chain"]] == ["pull.failed", code]
    assert v["fix"] is None and v["manual"], v


@pytest.mark.parametrize("variant,warning", [("rsa1024", "tls.weak-key"), ("with-root", "tls.root-sent")])
def test_certificate_go_accepts_is_ok(variant: str, warning: str, tmp_path: Path,
                                      cert_factory: Callable[..., IssuedCert],
                                      registry_factory: Callable[..., Registry], lab_image: OciImage) -> None:
    """A 1024-bit RSA leaf or a chain that includes the root: Go pulls, so the verdict is ok (the note stays a note)."""
    cert = cert_factory(variant)
    registry = _served(registry_factory, lab_image, cert)
    root = _root(tmp_path / "root", "containerd", lab_name(registry), cert.ca_file)
    report, data = check(root, lab_image_ref(registry), "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "ok" and v["cause"] is None, (v, _titles(data))
    assert warning in {f["code"] for f in data["findings"]}
    assert not [f for f in data["findings"] if f["severity"] == "error"], _titles(data)


@pytest.mark.parametrize("runtime", ["containerd", "crio"])
def test_self_signed_registry_fails_and_trusting_it_makes_it_ok(runtime: str, tmp_path: Path,
                                                                cert_factory: Callable[..., IssuedCert],
                                                                registry_factory: Callable[..., Registry],
                                                                lab_image: OciImage) -> None:
    """A self-signed leaf nobody trusts: fails on tls.self-signed; its fix (trust that certificate), applied, gives ok."""
    registry = _served(registry_factory, lab_image, cert_factory("self-signed"))
    name, image = lab_name(registry), lab_image_ref(registry)
    root = _root(tmp_path / "root", runtime, name)
    _, data = check(root, image, runtime)
    v = verdict(data, runtime)
    assert v["status"] == "fails", (v, _titles(data))
    assert _cause(v) == ("tls.self-signed", f"https://{name}/v2", "tls")
    assert v["fix"] == finding_by_id(data, v["cause"]["finding"])["fix"]["id"]
    assert apply_fix(root, v["fix"], image, runtime) == 0
    _, after = check(root, image, runtime)
    assert verdict(after, runtime)["status"] == "ok", (verdict(after, runtime), _titles(after))


def test_unknown_authority_for_crio_fails_and_installing_the_ca_makes_it_ok(tmp_path: Path, registry_tls: Registry,
                                                                            lab_image: OciImage) -> None:
    """CRI-O without the registry's CA: fails on tls.unknown-authority; the fix installs it in certs.d and the re-check is ok."""
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    root = _root(tmp_path / "root", "crio", name)
    _, data = check(root, image, "crio")
    v = verdict(data, "crio")
    assert v["status"] == "fails", (v, _titles(data))
    assert _cause(v) == ("tls.unknown-authority", f"https://{name}/v2", "tls")
    assert v["fix"] is not None
    assert apply_fix(root, v["fix"], image, "crio", "--ca-file", str(registry_tls.ca_file)) == 0  # root not sent
    assert (root / f"etc/containers/certs.d/{name}").is_dir()
    _, after = check(root, image, "crio")
    assert verdict(after, "crio")["status"] == "ok", (verdict(after, "crio"), _titles(after))


def test_dockerd_does_not_verify_a_loopback_registry_so_a_self_signed_one_pulls(
    tmp_path: Path, cert_factory: Callable[..., IssuedCert], registry_factory: Callable[..., Registry],
    lab_image: OciImage,
) -> None:
    """dockerd always treats 127.0.0.0/8 as insecure: a self-signed loopback registry pulls (ok); verification-off is
    information with no fix (no daemon.json setting changes the built-in range)."""
    registry = _served(registry_factory, lab_image, cert_factory("self-signed"))
    name, image = lab_name(registry), lab_image_ref(registry)
    root = _root(tmp_path / "root", "docker", name)
    report, data = check(root, image, "docker")
    v = verdict(data, "docker")
    assert v["status"] == "ok" and v["cause"] is None, (v, _titles(data))
    (off,) = [f for f in data["findings"] if f["code"] == "tls.verify-disabled"]
    assert off["severity"] == "info" and off["fix"] is None
    assert report.exit_code == 0


# -- proxy ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["deny", "auth"])
def test_proxy_refusing_the_tunnel_fails_naming_the_proxy(kind: str, tmp_path: Path, registry_tls: Registry,
                                                          lab_image: OciImage, tinyproxy_deny: TinyProxy,
                                                          tinyproxy_auth: TinyProxy) -> None:
    """containerd's proxy answers CONNECT with 403 (policy) or 407 (no credentials): fails on proxy.connect-refused, by hand."""
    proxy, status = (tinyproxy_deny.url, "403") if kind == "deny" else (tinyproxy_auth.url_without_auth, "407")
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    root = _root(tmp_path / "root", "containerd", name, registry_tls.ca_file)
    dropin = root / "etc/systemd/system/containerd.service.d/http-proxy.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text(f'[Service]\nEnvironment="HTTPS_PROXY={proxy}"\n')
    _, data = check(root, image, "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails", (v, _titles(data))
    assert _cause(v) == ("proxy.connect-refused", f"https://{name}/v2", "proxy")
    assert f"its proxy {proxy} refuses the tunnel ({status})" in v["summary"], v["summary"]
    assert v["fix"] is None and v["manual"]
    assert finding_by_id(data, v["chain"][0])["title"].endswith("(proxy)")


def test_tls_1_0_only_server_fails_on_old_protocol(tmp_path: Path, lab_cert: IssuedCert) -> None:
    """A server that speaks only TLS 1.0: containerd (Go, TLS 1.2 at least) fails on tls.old-protocol there, by hand."""
    with OldTlsServer(tmp_path / "old", lab_cert) as server:
        name = f"registry.lab.test:{server.port}"
        root = _root(tmp_path / "root", "containerd", name, lab_cert.ca_file)
        _, data = check(root, f"{name}/{LAB_REPO}:latest", "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails", (v, _titles(data))
    assert _cause(v) == ("tls.old-protocol", f"https://{name}/v2", "tls")
    assert "TLSv1" in v["summary"] and v["fix"] is None and v["manual"]


def test_tls_inspecting_proxy_fails_naming_the_proxy_and_trusting_its_ca_makes_it_ok(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage
) -> None:
    """containerd through a TLS-inspecting proxy whose CA it lacks: fails on tls.intercepted (the proxy), not the registry; its fix gives ok."""
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    root = _root(tmp_path / "root", "containerd", name, registry_tls.ca_file)
    with MitmProxy(tmp_path / "mitm", {"registry.lab.test": "127.0.0.1"}) as mitm:
        proxy = f"http://127.0.0.1:{mitm.port}"
        dropin = root / "etc/systemd/system/containerd.service.d/http-proxy.conf"
        dropin.parent.mkdir(parents=True)
        dropin.write_text(f'[Service]\nEnvironment="HTTPS_PROXY={proxy}"\n')
        _, data = check(root, image, "containerd")
        v = verdict(data, "containerd")
        assert v["status"] == "fails", (v, _titles(data))
        assert _cause(v) == ("tls.intercepted", f"https://{name}/v2", "tls")
        assert [finding_by_id(data, i)["code"] for i in v["chain"]] == [
            "pull.failed", "tls.unknown-authority", "tls.intercepted"]
        assert f"its proxy {proxy} inspects TLS" in v["summary"], v["summary"]
        pull_failed = finding_by_id(data, v["chain"][0])
        assert f"the proxy {proxy}" in pull_failed["detail"]
        assert pull_failed["fix"]["summary"].startswith(f"regtui fix {v['fix']}"), pull_failed["fix"]
        assert v["fix"] == finding_by_id(data, v["cause"]["finding"])["fix"]["id"]
        # The proxy sends leaf + intermediate: its root is supplied, as the fix's steps ask.
        proxy_root = mitm.ca.write_ca(tmp_path / "proxy-ca")
        assert apply_fix(root, v["fix"], image, "containerd", "--ca-file", str(proxy_root)) == 0
        _, after = check(root, image, "containerd")
        assert mitm.connects
    assert verdict(after, "containerd")["status"] == "ok", (verdict(after, "containerd"), _titles(after))


# -- auth -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrong_password_fails_with_auth_rejected(runtime: str, tmp_path: Path, registry_tls_auth: Registry,
                                                  lab_image: OciImage) -> None:
    """Credentials the registry refuses: fails on auth.rejected at the registry; the step is by hand; right ones give ok."""
    name, image = lab_name(registry_tls_auth), lab_image_ref(registry_tls_auth)
    user, password = LAB_CREDENTIALS
    root = _root(tmp_path / "root", runtime, name, registry_tls_auth.ca_file, auths={name: (user, "not-" + password)})
    _, data = check(root, image, runtime)
    v = verdict(data, runtime)
    assert v["status"] == "fails", (v, _titles(data))
    assert _cause(v)[:2] == ("auth.rejected", f"https://{name}/v2") and v["cause"]["phase"] in ("auth", "http")
    assert f"{name} refuses the credentials" in v["summary"]
    assert v["fix"] is None and v["manual"]
    assert "not-" + password not in str(data)
    good = _root(tmp_path / "good", runtime, name, registry_tls_auth.ca_file, auths={name: (user, password)})
    _, after = check(good, image, runtime)
    assert verdict(after, runtime)["status"] == "ok", (verdict(after, runtime), _titles(after))


# -- mirrors ----------------------------------------------------------------------------------------
def test_stale_mirror_is_degraded_with_mirror_stale(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                    registry_factory: Callable[..., Registry],
                                                    image_factory: Callable[..., OciImage]) -> None:
    """A mirror serving another image under the tag, before a good upstream: degraded, cause mirror.stale at the mirror."""
    stale = registry_factory()
    push(image_factory(seed=33), stale, LAB_REPO)
    name = lab_name(registry_tls)
    root = tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS,
                    mirrors=[{"url": stale.url}])
    report, data = check(root, lab_image_ref(registry_tls), "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "degraded" and report.exit_code == 0, (v, _titles(data))
    assert _cause(v) == ("mirror.stale", f"{stale.url}/v2", "manifest")
    assert v["endpoint"] == f"{stale.url}/v2"
    assert f"mirror {stale.host_port} serves another image" in v["summary"]
    assert v["fix"] is None and v["manual"]


def test_dead_mirror_is_degraded_and_removing_it_makes_it_ok(tmp_path: Path, registry_tls: Registry,
                                                             lab_image: OciImage, tcp_black_hole: TcpBlackHole) -> None:
    """A black-holed mirror before a good upstream: degraded on mirror.unreachable; its fix removes it and the re-check is ok."""
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    root = tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS,
                    mirrors=[{"url": f"https://{tcp_black_hole.host_port}", "skip_verify": True}])
    _, data = check(root, image, "containerd", timeout=1.0)
    v = verdict(data, "containerd")
    assert v["status"] == "degraded", (v, _titles(data))
    assert v["cause"]["code"] == "mirror.unreachable" and tcp_black_hole.host_port in v["cause"]["endpoint"]
    assert v["fix"] is not None, v
    assert apply_fix(root, v["fix"], image, "containerd") == 0
    assert tcp_black_hole.host_port not in (root / f"etc/containerd/certs.d/{name}/hosts.toml").read_text()
    _, after = check(root, image, "containerd", timeout=1.0)
    assert verdict(after, "containerd")["status"] == "ok", (verdict(after, "containerd"), _titles(after))


@pytest.mark.parametrize("runtime", ["containerd", "crio"])
def test_https_mirror_that_speaks_http_is_degraded_and_its_scheme_fix_makes_it_ok(
    runtime: str, tmp_path: Path, registry_tls: Registry, registry_plain: Registry, lab_image: OciImage
) -> None:
    """A plain-HTTP mirror configured as HTTPS before a good upstream: degraded on mirror.http-mismatch; the scheme fix gives ok from the mirror."""
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    root = tmp_path / "root"
    if runtime == "containerd":
        containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS,
                        mirrors=[{"url": f"https://{registry_plain.host_port}"}])
    else:
        crio_root(root, name, cas={name: registry_tls.ca_file}, hosts=HOSTS,
                  mirrors=[{"location": registry_plain.host_port}])
    _, data = check(root, image, runtime)
    v = verdict(data, runtime)
    assert v["status"] == "degraded", (v, _titles(data))
    assert _cause(v) == ("mirror.http-mismatch", f"https://{registry_plain.host_port}/v2", "tls")
    assert v["fix"] is not None, v
    assert apply_fix(root, v["fix"], image, runtime) == 0
    _, after = check(root, image, runtime)
    v = verdict(after, runtime)
    assert v["status"] == "ok" and registry_plain.host_port in v["summary"], (v, _titles(after))


# -- clock ------------------------------------------------------------------------------------------
def _ntp(server: Chrony) -> dict[str, Any]:
    return {"ntp_servers": (f"127.0.0.1:{server.port}",)}


def _window(start: int, days: int = 30) -> dict[str, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    return {"not_before": now + dt.timedelta(seconds=start), "not_after": now + dt.timedelta(days=days)}


def test_clock_behind_with_a_good_certificate_pulls_and_lists_the_skew_on_its_own(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, chrony_ahead: Chrony
) -> None:
    """NTP 600 s ahead, nothing else wrong: the pull works (ok), clock.skew is an independent error, exit 1."""
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    root = _root(tmp_path / "root", "containerd", name, registry_tls.ca_file)
    report, data = check(root, image, "containerd", **_ntp(chrony_ahead))
    v = verdict(data, "containerd")
    assert v["status"] == "ok" and v["cause"] is None, v
    (skew,) = [f for f in data["findings"] if f["code"] == "clock.skew"]
    assert skew["severity"] == "error" and skew["id"] in data["independent_findings"]
    assert report.exit_code == 1


def test_certificate_not_yet_valid_because_the_clock_is_behind_names_the_clock(
    tmp_path: Path, lab_image: OciImage, chrony_ahead: Chrony, cert_factory: Callable[..., IssuedCert],
    registry_factory: Callable[..., Registry], capsys: pytest.CaptureFixture[str],
) -> None:
    """A certificate valid from 5 min ahead, NTP 10 min ahead: fails on clock.skew, the certificate finding in its chain; the fix is the clock command."""
    registry = _served(registry_factory, lab_image, cert_factory(**_window(300)))
    name, image = lab_name(registry), lab_image_ref(registry)
    root = _root(tmp_path / "root", "containerd", name, registry.ca_file)
    _, data = check(root, image, "containerd", **_ntp(chrony_ahead))
    v = verdict(data, "containerd")
    assert v["status"] == "fails", (v, _titles(data))
    assert _cause(v) == ("clock.skew", f"https://{name}/v2", "tls")
    assert [finding_by_id(data, i)["code"] for i in v["chain"]] == ["pull.failed", "tls.not-yet-valid", "clock.skew"]
    assert "clock is 600 s behind, so the certificate seems not yet valid" in v["summary"], v["summary"]
    assert finding_by_id(data, v["chain"][1])["evidence"]["explained_by_clock"] is True
    pull_failed = finding_by_id(data, v["chain"][0])
    assert "this host's clock" in pull_failed["detail"] and pull_failed["title"].endswith("(clock)")
    # The fix steps the clock: a command regtui shows (it never steps a clock on its own).
    assert v["fix"] == "clock.skew@clock"
    rc = main(["fix", v["fix"], *cli_args(root, image, "containerd"), "--no-pull",
               "--ntp-server", f"127.0.0.1:{chrony_ahead.port}"])
    out = capsys.readouterr().out
    assert rc == 0 and ("chronyc" in out or "timedatectl" in out), out


def test_certificate_not_yet_valid_beyond_the_skew_blames_the_certificate(
    tmp_path: Path, lab_image: OciImage, chrony_ahead: Chrony, cert_factory: Callable[..., IssuedCert],
    registry_factory: Callable[..., Registry],
) -> None:
    """A certificate valid from tomorrow, NTP 10 min ahead: the skew does not explain it, the cause is tls.not-yet-valid."""
    registry = _served(registry_factory, lab_image, cert_factory(**_window(86400)))
    name, image = lab_name(registry), lab_image_ref(registry)
    root = _root(tmp_path / "root", "containerd", name, registry.ca_file)
    _, data = check(root, image, "containerd", **_ntp(chrony_ahead))
    v = verdict(data, "containerd")
    assert v["status"] == "fails", (v, _titles(data))
    assert _cause(v) == ("tls.not-yet-valid", f"https://{name}/v2", "tls"), v
    assert "clock" not in v["summary"] and v["fix"] is None
    (skew,) = [f for f in data["findings"] if f["code"] == "clock.skew"]
    assert skew["id"] in data["independent_findings"]


# -- manifest and rate limit for containerd -------------------------------------------------------
def test_containerd_missing_tag_and_rate_limit(tmp_path: Path, registry_tls: Registry, lab_image: OciImage) -> None:
    """containerd: an unknown tag fails on pull.manifest-unknown, a 429 on auth.rate-limited, each at its registry, by hand."""
    name = lab_name(registry_tls)
    root = _root(tmp_path / "root", "containerd", name, registry_tls.ca_file)
    _, data = check(root, lab_image_ref(registry_tls, "no-such-tag"), "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails" and _cause(v) == ("pull.manifest-unknown", f"https://{name}/v2", "manifest"), v
    assert v["fix"] is None and v["manual"]
    with FakeRegistry(lab_image.layout_dir, faults=Faults(status_429=True)) as limited:
        root = tmp_path / "limited"
        containerd_root(root, limited.host_port, server=limited.url)
        _, data = check(root, f"{limited.host_port}/{LAB_REPO}:latest", "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails" and _cause(v) == ("auth.rate-limited", f"{limited.url}/v2", "manifest"), v
    assert f"{limited.host_port} rate-limits pulls" in v["summary"] and v["fix"] is None
