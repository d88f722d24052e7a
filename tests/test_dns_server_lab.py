"""``--dns-server`` replaces the root's resolver for every lookup: DNS panel, TLS probe and test pull agree.

Each case runs the whole ``regtui check`` (CRI-O's route, lab registry under ``registry.lab.test``)
and, as referee, skopeo (containers/image, Go's pure resolver) in a private mount namespace whose
``/etc/resolv.conf`` names only that server and whose ``/etc/hosts`` lacks the name: the runtime's
view of "this server is the resolver". Go's resolver always asks port 53, so the lab DNS servers
listen on port 53 of a loopback address of their own (127.53.x.y).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.dns import Dnsmasq, port_53_address
from lab.fixtures import LAB_REPO, LAB_TAG
from lab.images import OciImage, skopeo_env
from lab.namespaces import can_unshare, run_in_mount_namespace, write_hosts_file
from lab.procs import need_binary
from lab.pullroots import crio_root, docker_root
from lab.registry import Registry
from lab.sockets import UdpBlackHole
from lab.verdicts import HOSTS, check, finding_by_id, lab_image_ref, lab_name, verdict

pytestmark = pytest.mark.lab

NAME = "registry.lab.test"


def _port_53_address() -> str:
    """A loopback address whose UDP and TCP port 53 are free (Go's resolver cannot be given a port)."""
    addr = port_53_address()
    if addr is None:
        pytest.skip("no free port 53 on 127.53.0.0/16")
    return addr


@pytest.fixture
def black_hole_53() -> Iterator[UdpBlackHole]:
    """A UDP socket on ADDR:53 that never answers (DNS queries time out)."""
    if not can_unshare():
        pytest.skip("needs root for port 53 and a mount namespace")
    with UdpBlackHole(_port_53_address(), 53) as hole:
        yield hole


@pytest.fixture
def dns_factory(tmp_path: Path) -> Iterator[Any]:
    """dnsmasq on ADDR:53, configured per test; stopped at the end."""
    if not can_unshare():
        pytest.skip("needs root for port 53 and a mount namespace")
    started: list[Dnsmasq] = []

    def make(**kwargs: Any) -> Dnsmasq:
        server = Dnsmasq(tmp_path / f"dns{len(started)}", host=_port_53_address(), port=53, **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _skopeo(tmp_path: Path, nameserver: str, registries_conf: Path, ref: str,
            cert_dir: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str | None]:
    """skopeo inspect with ``nameserver`` as the only resolver and no hosts entry for the name."""
    ns = tmp_path / "ns"
    ns.mkdir(exist_ok=True)
    resolv = ns / "resolv.conf"
    resolv.write_text(f"nameserver {nameserver}\noptions timeout:1 attempts:1\n")
    hosts = write_hosts_file(ns / "hosts", {})
    policy = ns / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    argv = [need_binary("skopeo"), "--policy", str(policy), "--registries-conf", str(registries_conf), "inspect",
            "--retry-times", "0"]
    if cert_dir is not None:
        argv += ["--cert-dir", str(cert_dir)]
    result = run_in_mount_namespace([*argv, f"docker://{ref}"], hosts_file=hosts,
                                    binds={"/etc/resolv.conf": resolv}, timeout=60, env={**skopeo_env(ns / "env"), **(env or {})})
    digest = json.loads(result.stdout)["Digest"] if result.returncode == 0 else None
    return result.returncode, result.stderr, digest


def _pull_endpoints(data: dict[str, Any]) -> list[dict[str, Any]]:
    return (data.get("pull") or {}).get("endpoints") or []


def _tls_findings(data: dict[str, Any]) -> list[str]:
    """TLS problems reported (``tls.verify-disabled`` as information, dockerd's loopback rule, is no problem)."""
    return [f["code"] for f in data["findings"] if f["code"].startswith("tls.") and f["severity"] != "info"]


def _dns_row(data: dict[str, Any]) -> dict[str, Any]:
    (row,) = [r for r in data["probes"]["dns"] if r["host"] == NAME]
    return row


def test_silent_dns_server_fails_the_pull_at_dns_not_tls(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                         black_hole_53: UdpBlackHole) -> None:
    """--dns-server that never answers, root's hosts file knows the name, CA not trusted: dns.timeout is the
    cause, the pull fails at phase dns with Go's "lookup NAME on SERVER: ... i/o timeout", no TLS finding;
    skopeo with that server as its only resolver fails the same way (Go net/dnsclient_unix.go, no x509)."""
    root = tmp_path / "root"
    conf = crio_root(root, lab_name(registry_tls), hosts=HOSTS)
    server = f"{black_hole_53.host}:53"
    _, data = check(root, lab_image_ref(registry_tls), "crio", timeout=1.0, dns_server=server)
    v = verdict(data, "crio")
    assert v["status"] == "fails", v
    assert (v["cause"]["code"], v["cause"]["phase"]) == ("dns.timeout", "dns"), v
    cause = finding_by_id(data, v["cause"]["finding"])
    assert cause["subject"] == NAME and server in cause["detail"]
    assert f"--dns-server {server} does not answer for {NAME}" in v["summary"], v["summary"]
    assert not _tls_findings(data), _tls_findings(data)
    eps = _pull_endpoints(data)
    assert eps and all(ep["phase"] == "dns" and ep["kind"] == "timeout" for ep in eps), eps
    predicted = f"dial tcp: lookup {NAME} on {server}: i/o timeout"
    assert all(ep["go_error"] == predicted and "x509" not in ep["runtime_error"] for ep in eps), eps
    assert cause["evidence"]["runtime_error"] == predicted
    row = _dns_row(data)
    assert row["used"] == "--dns-server" and row["results"]["--dns-server"]["error"] == "timeout"
    assert row["results"]["system"]["used"] is False and row["results"]["system"]["source"] == "hosts"

    rc, err, _ = _skopeo(tmp_path, black_hole_53.host, conf, lab_image_ref(registry_tls))
    assert rc != 0 and f"dial tcp: lookup {NAME} on {server}:" in err and "i/o timeout" in err, err
    assert "x509" not in err and "certificate" not in err, err


def test_dns_server_that_knows_the_name_makes_the_pull_work(tmp_path: Path, registry_tls: Registry,
                                                            lab_image: OciImage, dns_factory: Any) -> None:
    """--dns-server answers a name the root's resolver does not know: the pull works by that name, no DNS
    error (the root's failure is shown for comparison only); skopeo with that server gets the same digest."""
    dns = dns_factory(hosts={NAME: "127.0.0.1"}, addresses={}, nxdomains=())
    name = lab_name(registry_tls)
    root = tmp_path / "root"
    conf = crio_root(root, name, cas={name: registry_tls.ca_file})
    server = f"{dns.host}:53"
    _, data = check(root, lab_image_ref(registry_tls), "crio", timeout=1.0, dns_server=server)
    v = verdict(data, "crio")
    assert v["status"] == "ok", (v, [(f["code"], f["title"]) for f in data["findings"]])
    codes = {f["code"] for f in data["findings"]}
    assert not codes & {"dns.timeout", "dns.nxdomain"}, codes
    assert data["pull"]["ok"] and data["pull"]["manifest"]["digest"] == lab_image.digest
    row = _dns_row(data)
    assert row["results"]["--dns-server"] == {**row["results"]["--dns-server"], "addresses": ["127.0.0.1"],
                                              "used": True, "server": server}
    assert row["results"]["system"]["used"] is False and not row["results"]["system"]["addresses"]
    mismatch = [f for f in data["findings"] if f["code"] == "dns.mismatch"]
    assert mismatch and "comparison only" in mismatch[0]["detail"]

    rc, err, digest = _skopeo(tmp_path, dns.host, conf, lab_image_ref(registry_tls),
                              cert_dir=root / "etc/containers/certs.d" / name)
    assert rc == 0 and digest == lab_image.digest, err


def test_root_knows_the_name_but_dns_server_does_not(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                     dns_factory: Any) -> None:
    """The root's hosts file knows the name, --dns-server answers NXDOMAIN: the pull fails at DNS with "no such
    host" naming that server (the hosts entry is not used); skopeo with that server fails the same way."""
    dns = dns_factory(addresses={}, nxdomains=("lab.test",))
    name = lab_name(registry_tls)
    root = tmp_path / "root"
    conf = crio_root(root, name, cas={name: registry_tls.ca_file}, hosts=HOSTS)
    server = f"{dns.host}:53"
    _, data = check(root, lab_image_ref(registry_tls), "crio", timeout=1.0, dns_server=server)
    v = verdict(data, "crio")
    assert v["status"] == "fails" and (v["cause"]["code"], v["cause"]["phase"]) == ("dns.nxdomain", "dns"), v
    predicted = f"dial tcp: lookup {NAME} on {server}: no such host"
    assert finding_by_id(data, v["cause"]["finding"])["evidence"]["runtime_error"] == predicted
    assert f"{NAME} does not resolve at --dns-server {server}" in v["summary"], v["summary"]
    eps = _pull_endpoints(data)
    assert eps and all(ep["phase"] == "dns" and ep["go_error"] == predicted for ep in eps), eps
    assert not _tls_findings(data)
    assert _dns_row(data)["results"]["system"]["addresses"] == ["127.0.0.1"]

    rc, err, _ = _skopeo(tmp_path, dns.host, conf, lab_image_ref(registry_tls),
                         cert_dir=root / "etc/containers/certs.d" / name)
    assert rc != 0 and f"dial tcp: lookup {NAME} on {server}: no such host" in err, err


def test_proxy_name_resolves_through_dns_server_too(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                    tinyproxy: Any, dns_factory: Any) -> None:
    """dockerd's proxy named in the root's hosts file but NXDOMAIN at --dns-server: the proxy probe, the test pull
    and the verdict all fail at the proxy's lookup, with Go's "proxyconnect tcp: dial tcp: lookup PROXY on SERVER:
    no such host"; skopeo (Go net/http, HTTPS_PROXY) with that server prints the same."""
    dns = dns_factory()  # lab.test -> 127.0.0.1, nx.test NXDOMAIN
    name = lab_name(registry_tls)
    proxy = f"http://proxy.nx.test:{tinyproxy.port}"
    root = tmp_path / "root"
    docker_root(root, {"proxies": {"https-proxy": proxy}}, cas={name: registry_tls.ca_file},
                hosts={**HOSTS, "proxy.nx.test": "127.0.0.1"})
    server = f"{dns.host}:53"
    _, data = check(root, lab_image_ref(registry_tls), "docker", timeout=1.0, dns_server=server)
    predicted = f"proxyconnect tcp: dial tcp: lookup proxy.nx.test on {server}: no such host"
    v = verdict(data, "docker")
    assert v["status"] == "fails" and v["cause"]["code"] == "dns.nxdomain", v
    assert finding_by_id(data, v["cause"]["finding"])["subject"] == "proxy.nx.test"
    assert [finding_by_id(data, i)["code"] for i in v["chain"]] == ["pull.failed", "proxy.unreachable", "dns.nxdomain"]
    (unreachable,) = [f for f in data["findings"] if f["code"] == "proxy.unreachable"]
    assert unreachable["evidence"]["phase"] == "dns" and unreachable["evidence"]["runtime_error"] == predicted
    eps = [ep for ep in _pull_endpoints(data) if ep["url"].startswith("https://")]
    assert eps and all(ep["go_error"] == predicted for ep in eps), eps
    assert not _tls_findings(data)

    conf = crio_root(tmp_path / "skopeo-root", name, cas={name: registry_tls.ca_file})
    env = {"HTTPS_PROXY": proxy}
    rc, err, _ = _skopeo(tmp_path, dns.host, conf, lab_image_ref(registry_tls),
                         cert_dir=tmp_path / "skopeo-root/etc/containers/certs.d" / name, env=env)
    assert rc != 0 and predicted in err, err
