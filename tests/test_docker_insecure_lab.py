"""dockerd decides "insecure" from the registry name's resolved addresses: real dockerd 20.10 is the referee.

moby ``registry/config.go isSecureIndex`` -> ``isCIDRMatch`` looks the host name up (``net.LookupIP``) and skips
certificate verification when any address falls in an insecure CIDR; 127.0.0.0/8 is always one. The lab
registry's name resolves to 127.0.0.1 through the lab DNS server only (not through the root's hosts file), so
regtui has to resolve it online the way dockerd does to agree with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.dns import Dnsmasq
from lab.dockerd import DockerDaemon
from lab.images import OciImage, push
from lab.fixtures import LAB_REPO
from lab.pki import IssuedCert
from lab.pullroots import docker_root, plan_context
from lab.registry import Registry
from lab.verdicts import HOSTS, check, lab_image_ref, lab_name, verdict
from regtui import engine
from regtui.cli import main

pytestmark = pytest.mark.lab

_CERT_ERRORS = {"tls.unknown-authority", "tls.expired", "tls.name-mismatch", "tls.not-yet-valid"}


def _codes(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["severity"], f["code"]) for f in data["findings"]}


@pytest.mark.parametrize("variant", ["untrusted", "expired"])
def test_name_resolving_to_loopback_pulls_without_verification_like_dockerd(
    variant: str, tmp_path: Path, lab_cert: IssuedCert, cert_factory: Callable[..., IssuedCert],
    registry_factory: Callable[..., Registry], lab_image: OciImage, dnsmasq: Dnsmasq,
    dockerd_factory: Callable[..., DockerDaemon], hosts_file_factory: Callable[[dict[str, str]], Path],
) -> None:
    """A registry name that resolves to 127.0.0.1: dockerd pulls despite an untrusted or expired certificate, and regtui agrees."""
    registry = registry_factory(tls=lab_cert if variant == "untrusted" else cert_factory("expired"))
    push(lab_image, registry, LAB_REPO)
    image = lab_image_ref(registry)
    daemon = dockerd_factory(daemon_json={}, hosts_file=hosts_file_factory(HOSTS))
    pulled = daemon.docker_pull(image)
    assert pulled.ok, pulled.output
    root = docker_root(tmp_path / "root", {})  # the root's hosts file does not know the name: DNS answers it
    _, data = check(root, image, "docker", dns_server=f"{dnsmasq.host}:{dnsmasq.port}")
    v = verdict(data, "docker")
    assert v["status"] == "ok" and v["cause"] is None, (v, sorted(_codes(data)))
    assert data["pull"]["ok"] and data["pull"]["manifest"]["digest"] == pulled.digest, data["pull"]
    assert not {(s, c) for s, c in _codes(data) if c in _CERT_ERRORS and s != "info"}, sorted(_codes(data))
    assert ("info", "tls.verify-disabled") in _codes(data)
    # The certificate finding says plainly that dockerd skips verification here, and when that stops.
    code = "tls.unknown-authority" if variant == "untrusted" else "tls.expired"
    (cert,) = [f for f in data["findings"] if f["code"] == code]
    words = "unknown authority" if variant == "untrusted" else "expired certificate"
    assert cert["severity"] == "info", cert
    assert (f"dockerd does not verify this loopback registry's certificate (127.0.0.0/8 is always insecure to it; "
            f"see tls.verify-disabled), so the {words} does not fail the pull. It matters if {lab_name(registry)} is "
            "reached by a name or address outside 127.0.0.0/8") in cert["detail"], cert["detail"]
    assert "will fail" not in cert["detail"] and "will once verification" not in cert["detail"], cert["detail"]
    # dockerd reads no certs.d for a registry it does not verify: a CA installed there would change nothing.
    assert cert["fix"] is None or cert["fix"]["kind"] == "manual", cert["fix"]
    if variant == "untrusted":
        assert cert["title"] == (f"docker does not verify loopback registry {lab_name(registry)}: its certificate "
                                 "from an unknown authority does not fail the pull"), cert["title"]
        assert cert["evidence"]["fails_pull"] is False and cert["evidence"]["verified"] is False, cert["evidence"]
        assert "outside 127.0.0.0/8" in cert["evidence"]["matters_if"], cert["evidence"]
    (route,) = [r for r in data["routes"] if r["runtime"] == "docker"]
    https = route["endpoints"][0]
    assert https["url"] == f"https://{lab_name(registry)}/v2" and https["tls"]["verify"] is False, https
    assert "127.0.0.1" in https["tls"]["verify_reason"], https["tls"]
    assert data["pull"]["endpoint"] == https["url"]
    rows = [r for r in data["probes"]["panels"]["certs"]["data"]["endpoints"] if r["url"] == https["url"]]
    assert rows and {r["status"] for r in rows} == {"not-verified"}, rows
    pulled_by_regtui = main(["pull", image, "--root", str(root), "--runtime", "docker", "--docker-store", "classic",
                             "--dns-server", f"{dnsmasq.host}:{dnsmasq.port}", "--timeout", "2", "--format", "json"])
    assert pulled_by_regtui == 0


def test_online_plan_resolves_the_name_into_a_user_cidr_with_the_daemons_resolver(tmp_path: Path) -> None:
    """Online, the engine looks the name up with the probes' resolver (--dns-server) and re-plans: an answer in 10.0.0.0/8 is insecure."""
    image = "nexus.corp.test:5000/team/app:1"
    with Dnsmasq(tmp_path / "dns", hosts={"nexus.corp.test": "10.1.2.3", "safe.corp.test": "192.168.7.7"}) as dns:
        root = docker_root(tmp_path / "root", {"insecure-registries": ["10.0.0.0/8"]})
        ctx, p = plan_context(root, "docker", image, dns_server=f"{dns.host}:{dns.port}")
        (offline,) = p.routes
        assert [e.tls.verify for e in offline.endpoints] == [True]
        assert any("depends on resolution" in n for n in offline.notes)
        asyncio.run(engine.resolve_routes(p, ctx))
    (online,) = p.routes
    assert ctx.routes == p.routes
    https, http = online.endpoints
    assert not https.tls.verify and "10.0.0.0/8" in https.tls.verify_reason and "10.1.2.3" in https.tls.verify_reason
    assert http.url == "http://nexus.corp.test:5000/v2"
    assert ("tls.verify-disabled", "nexus.corp.test:5000") in {(f.code, f.subject) for f in p.findings}
    assert [(lk.name, lk.addresses, lk.resolver) for lk in ctx.resolver.log] == [
        ("nexus.corp.test", ("10.1.2.3",), "--dns-server")]


def test_insecure_plain_http_registry_pulls_over_http_without_degrading_like_dockerd(
    tmp_path: Path, registry_plain: Registry, lab_image: OciImage, dockerd_factory: Callable[..., DockerDaemon],
) -> None:
    """insecure-registries on a plain-HTTP registry: dockerd tries https, then serves over http; regtui names http, verdict ok."""
    image = f"{registry_plain.host_port}/{LAB_REPO}"
    config = {"insecure-registries": [registry_plain.host_port]}
    pulled = dockerd_factory(daemon_json=config).docker_pull(image)
    assert pulled.ok and pulled.digest == lab_image.digest, pulled.output
    _, data = check(docker_root(tmp_path / "root", config), image, "docker")
    served = f"http://{registry_plain.host_port}/v2"
    assert data["pull"]["ok"] and data["pull"]["endpoint"] == served
    assert data["pull"]["manifest"]["digest"] == pulled.digest
    v = verdict(data, "docker")
    # The https try answered by plain HTTP is how dockerd reaches any insecure registry: nothing to fix, no cost.
    assert v["status"] == "ok" and v["endpoint"] == served and v["cause"] is None, v
    assert v["summary"].endswith(f"from {registry_plain.host_port} over plain http."), v
    (route,) = [r for r in data["routes"] if r["runtime"] == "docker"]
    rows = {e["url"]: e for e in route["endpoints"]}
    assert rows[served]["status"] == "ok" and rows[served]["key"] == v["endpoint_key"], rows
    assert rows[f"https://{registry_plain.host_port}/v2"]["http_fallback"] is True, rows
    assert not [f for f in data["findings"] if f["severity"] == "error"], data["findings"]
