"""DNS panel end to end against real dnsmasq, a slow DNS server and a black hole, on loopback only."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from lab.dns import Dnsmasq
from lab.probectx import context, fake_root, route, view
from lab.slowdns import SlowDns
from lab.sockets import UdpBlackHole
from regtui.checks import dns as dns_check
from regtui.net.proxy import ProxyEnv
from regtui.probecontext import ProbeResult
from regtui.probes import run_probes

pytestmark = pytest.mark.lab


def _only(result: ProbeResult, code: str):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, [f.code for f in result.findings]
    return found[0]


def test_names_resolve_through_lab_dns(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """registry.lab.test resolves at the lab DNS: no finding, answer, server and time shown."""
    ctx = context(fake_root(tmp_path), dns_port=dnsmasq.port,
                  routes=[route("containerd", ["https://mirror.lab.test:5000", "https://registry.lab.test:5001"])])
    result = asyncio.run(dns_check.probe(ctx))
    assert result.findings == []
    rows = {r["host"]: r for r in result.data["hosts"]}
    assert set(rows) == {"mirror.lab.test", "registry.lab.test"}
    sys = rows["registry.lab.test"]["results"]["system"]
    assert sys["addresses"] == ["127.0.0.1"] and sys["server"] == f"127.0.0.1:{dnsmasq.port}" and sys["source"] == "dns"
    assert rows["mirror.lab.test"]["roles"] == ["mirror"] and rows["mirror.lab.test"]["runtimes"] == ["containerd"]
    assert result.data["resolvers"]["system"]["nameservers"] == [f"127.0.0.1:{dnsmasq.port}"]


def test_nxdomain(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """A mirror under nx.test: dns.nxdomain (error) with the queried name and what the runtime will print."""
    ctx = context(fake_root(tmp_path), dns_port=dnsmasq.port,
                  routes=[route("docker", ["https://mirror.nx.test", "https://registry.lab.test"])])
    f = _only(asyncio.run(dns_check.probe(ctx)), "dns.nxdomain")
    assert f.severity == "error" and f.subject == "mirror.nx.test" and f.runtime == "docker"
    assert f.evidence["error"] == "nxdomain" and f.evidence["queried"] == ["mirror.nx.test."]
    assert f.evidence["runtime_error"] == f"dial tcp: lookup mirror.nx.test on 127.0.0.1:{dnsmasq.port}: no such host"


def test_search_domains_are_applied(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """A single-label registry name is tried with the root's search domain first, as glibc and Go do."""
    root = fake_root(tmp_path, {"/etc/resolv.conf": "nameserver 127.0.0.1\nsearch corp.nx.test lab.test\n"})
    ctx = context(root, dns_port=dnsmasq.port, routes=[route("crio", ["https://registry:5000"])])
    result = asyncio.run(dns_check.probe(ctx))
    assert result.findings == []
    sys = result.data["hosts"][0]["results"]["system"]
    assert sys["qnames"] == ["registry.corp.nx.test.", "registry.lab.test."] and sys["addresses"] == ["127.0.0.1"]


def test_timeout_from_black_hole_nameserver(udp_black_hole: UdpBlackHole, tmp_path: Path) -> None:
    """A nameserver that never answers: dns.timeout (error), in about one timeout."""
    ctx = context(fake_root(tmp_path), dns_port=udp_black_hole.port, timeout=1.0,
                  routes=[route("containerd", ["https://registry.lab.test"])])
    started = time.monotonic()
    f = _only(asyncio.run(dns_check.probe(ctx)), "dns.timeout")
    elapsed = time.monotonic() - started
    assert f.severity == "error" and f.evidence["error"] == "timeout"
    assert "i/o timeout" in f.evidence["runtime_error"]
    assert elapsed < 2 * ctx.resolver.timeout


def test_slow_resolver(tmp_path: Path) -> None:
    """A DNS server answering after 0.7 s: dns.slow (warning) with the measured time."""
    with SlowDns({"registry.lab.test": "127.0.0.1"}, delay=0.7) as server:
        ctx = context(fake_root(tmp_path), dns_port=server.port, timeout=3.0,
                      routes=[route("docker", ["https://registry.lab.test"])])
        f = _only(asyncio.run(dns_check.probe(ctx)), "dns.slow")
    assert f.severity == "warning" and f.evidence["elapsed_ms"] > 500
    assert f.evidence["addresses"] == ["127.0.0.1"]
    assert f.fix.files == ("/etc/resolv.conf",) and f"127.0.0.1:{server.port}" in f.fix.summary


def test_slow_dns_server_offers_no_resolv_conf_edit(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """A slow --dns-server (not in resolv.conf): dns.slow names it and offers no fix, since none on the host applies."""
    with SlowDns({"registry.lab.test": "127.0.0.1"}, delay=0.7) as server:
        ctx = context(fake_root(tmp_path), dns_port=dnsmasq.port, dns_server=f"127.0.0.1:{server.port}", timeout=3.0,
                      routes=[route("docker", ["https://registry.lab.test"])])
        f = _only(asyncio.run(dns_check.probe(ctx)), "dns.slow")
    assert f.evidence["server"] == f"127.0.0.1:{server.port}" and f.evidence["resolver"] == "--dns-server"
    assert f"--dns-server 127.0.0.1:{server.port}" in f.title and "No fix on this host applies" in f.detail
    assert f.fix is None and "resolv.conf" not in f.detail


def test_slow_dns_server_after_search_domains_offers_the_search_edit(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """A slow --dns-server asked twice because of the root's search domains: the fix is the search line, naming the server."""
    root = fake_root(tmp_path, {"/etc/resolv.conf": "nameserver 127.0.0.1\nsearch corp.nx.test lab.test\n"})
    with SlowDns({"registry.lab.test": "127.0.0.1"}, delay=0.3) as server:
        ctx = context(root, dns_port=dnsmasq.port, dns_server=f"127.0.0.1:{server.port}", timeout=3.0,
                      routes=[route("crio", ["https://registry:5000"])])
        f = _only(asyncio.run(dns_check.probe(ctx)), "dns.slow")
    assert f.evidence["queried"] == ["registry.corp.nx.test.", "registry.lab.test."]
    assert f.fix.files == ("/etc/resolv.conf",) and "search domains" in f.fix.summary
    assert f"--dns-server 127.0.0.1:{server.port}" in f.fix.summary and "closer nameserver" not in f.fix.summary


def test_mismatch_between_two_dns_servers(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """System DNS says 127.0.0.1, --dns-server (a second dnsmasq) says 127.0.0.2: dns.mismatch, both answers
    shown, the --dns-server one marked used and the system one comparison only."""
    other = Dnsmasq(tmp_path / "dns2", addresses={"lab.test": "127.0.0.2"})
    with other:
        ctx = context(fake_root(tmp_path / "root"), dns_port=dnsmasq.port, dns_server=f"127.0.0.1:{other.port}",
                      routes=[route("containerd", ["https://registry.lab.test"])])
        result = asyncio.run(dns_check.probe(ctx))
    f = _only(result, "dns.mismatch")
    assert f.severity == "warning"
    assert f.evidence["system"]["addresses"] == ["127.0.0.1"] and f.evidence["dns_server"]["addresses"] == ["127.0.0.2"]
    row = result.data["hosts"][0]
    assert set(row["results"]) == {"system", "--dns-server"} and row["agree"] is False
    assert row["used"] == "--dns-server" and row["results"]["system"]["used"] is False
    assert result.data["resolvers"]["system"]["role"] == "comparison (not used)"


def test_mismatch_stale_hosts_entry(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """A hosts-file entry (127.0.0.9) overriding DNS (127.0.0.1 at --dns-server): dns.mismatch naming the hosts file."""
    root = fake_root(tmp_path, hosts={"registry.lab.test": "127.0.0.9"})
    ctx = context(root, dns_server=f"127.0.0.1:{dnsmasq.port}", routes=[route("docker", ["https://registry.lab.test"])])
    result = asyncio.run(dns_check.probe(ctx))
    f = _only(result, "dns.mismatch")
    assert f.evidence["system"]["source"] == "hosts" and f.evidence["system"]["addresses"] == ["127.0.0.9"]
    assert f.evidence["dns_server"]["addresses"] == ["127.0.0.1"]
    assert "hosts file" in f.detail
    assert "dns.nxdomain" not in {x.code for x in result.findings}


def test_proxied_host_failure_is_lowered(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """A host only reached through a proxy is resolved by the proxy: NXDOMAIN here is a warning; the proxy host is looked up too."""
    env = ProxyEnv(https_proxy="http://proxy.lab.test:3128")
    ctx = context(fake_root(tmp_path), dns_port=dnsmasq.port, views=[view("docker", env)],
                  routes=[route("docker", ["https://registry.nx.test"], env)])
    result = asyncio.run(dns_check.probe(ctx))
    f = _only(result, "dns.nxdomain")
    assert f.severity == "warning" and "proxy" in f.detail and f.evidence["proxied"] is True
    rows = {r["host"]: r for r in result.data["hosts"]}
    assert rows["proxy.lab.test"]["roles"] == ["proxy"] and rows["proxy.lab.test"]["results"]["system"]["addresses"] == ["127.0.0.1"]


def test_extra_endpoints_and_literals(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """Token realm and redirect hosts from observations are looked up; IP-literal endpoints are listed without lookup."""
    ctx = context(fake_root(tmp_path), dns_port=dnsmasq.port, routes=[route("docker", ["https://127.0.0.1:5000"])],
                  observations={"extra_endpoints": [{"url": "https://auth.lab.test/token", "role": "token"},
                                                    "https://cdn.nx.test/blobs/x"]})
    result = asyncio.run(dns_check.probe(ctx))
    assert {r["host"] for r in result.data["hosts"]} == {"auth.lab.test", "cdn.nx.test"}
    assert result.data["literals"][0]["host"] == "127.0.0.1"
    assert _only(result, "dns.nxdomain").evidence["roles"] == ["redirect"]


def test_correlate_adds_the_requests_log(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """After the probes, the DNS data lists the lookups requests made through the shared resolver."""
    ctx = context(fake_root(tmp_path), dns_port=dnsmasq.port, routes=[route("docker", ["https://registry.lab.test"])])
    results = asyncio.run(run_probes(ctx, panels=("dns",)))
    names = [r["name"] for r in results["dns"].data["requests"]]
    assert "registry.lab.test" in names
