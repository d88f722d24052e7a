"""Proxy, DNS and clock panels together, on real runtime config files read by the real planners, against lab servers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path

import pytest

from lab.dns import Dnsmasq
from lab.ntp import Chrony
from lab.probectx import fake_root
from lab.proxy import TinyProxy
from lab.sockets import TcpBlackHole, UdpBlackHole
from regtui import engine
from regtui.checks import proxy_live
from regtui.host import Host
from regtui.net import procenv
from regtui.net.proxy import from_environ
from regtui.net.resolver import Resolver
from regtui.options import CheckOptions
from regtui.probes import ProbeResult, run_probes
from regtui.runtimes.view import RuntimeView

PANELS = ("proxy", "dns", "clock")


def _plan_context(root: Path, images: list[str], *, runtime: str, dns_port: int, timeout: float = 1.0,
                  ntp_servers: tuple[str, ...] = ()):
    """Plan with the real config readers and planners, then a probe context whose system resolver is the lab DNS."""
    options = CheckOptions(root=str(root), images=tuple(images), runtime=runtime, timeout=timeout,
                           ntp_servers=ntp_servers, no_pull=True)
    host = Host(root=root, environ={})
    p = engine.plan(options, host)
    assert p.routes and not p.errors, p.errors
    ctx = engine.probe_context(p)
    cfg = dataclasses.replace(ctx.resolver.config, nameservers=(("127.0.0.1", dns_port),))
    ctx.resolver = Resolver(cfg, timeout)
    return p, ctx


def _codes(results: dict[str, ProbeResult]) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in results.values():
        assert r.error is None, r.error
        for f in r.findings:
            out.setdefault(f.code, []).append(f)
    return out


@pytest.mark.lab
def test_docker_daemon_json_https_proxy_on_plain_proxy(tinyproxy: TinyProxy, dnsmasq: Dnsmasq, chrony: Chrony,
                                                       tmp_path: Path) -> None:
    """daemon.json proxies.https-proxy = https:// to tinyproxy: the docker planner's route gets proxy.scheme-tls, fix in daemon.json."""
    root = fake_root(tmp_path, {
        "/etc/docker/daemon.json": json.dumps({"proxies": {"https-proxy": f"https://127.0.0.1:{tinyproxy.port}"}}),
        "/etc/chrony/chrony.conf": f"server 127.0.0.1 port {chrony.port}\n",
    })
    _, ctx = _plan_context(root, ["registry.lab.test:5000/lab/app:latest"], runtime="docker", dns_port=dnsmasq.port)
    results = asyncio.run(run_probes(ctx, panels=PANELS))
    codes = _codes(results)
    [f] = codes["proxy.scheme-tls"]
    assert f.severity == "error" and f.runtime == "docker"
    assert f.fix is not None and f.fix.files == ("/etc/docker/daemon.json",)
    assert "daemon.json" in f.evidence["sources"][0]
    assert "dns.nxdomain" not in codes and "clock.skew" not in codes
    [ep] = results["proxy"].data["runtimes"]["docker"]["endpoints"]
    assert ep["configured"]["variable"] == "HTTPS_PROXY" and ep["target"] == "registry.lab.test:5000"
    assert abs(results["clock"].data["skew_seconds"]) < 1


@pytest.mark.lab
def test_containerd_hosts_toml_mirror_nxdomain_and_ntp_ahead(dnsmasq: Dnsmasq, chrony_ahead: Chrony,
                                                             tmp_path: Path) -> None:
    """A containerd hosts.toml mirror under nx.test and chrony.conf at a +600 s server: dns.nxdomain and clock.skew."""
    root = fake_root(tmp_path, {
        "/etc/containerd/config.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                       '  config_path = "/etc/containerd/certs.d"\n',
        "/etc/containerd/certs.d/registry.lab.test:5000/hosts.toml":
            'server = "https://registry.lab.test:5000"\n[host."https://mirror.nx.test:5001"]\n'
            '  capabilities = ["pull", "resolve"]\n',
        "/etc/chrony/chrony.conf": f"server 127.0.0.1 port {chrony_ahead.port}\n",
    })
    p, ctx = _plan_context(root, ["registry.lab.test:5000/lab/app:latest"], runtime="containerd", dns_port=dnsmasq.port)
    assert [e.host for e in p.routes[0].tried()] == ["mirror.nx.test:5001", "registry.lab.test:5000"]
    codes = _codes(asyncio.run(run_probes(ctx, panels=PANELS)))
    [nx] = codes["dns.nxdomain"]
    assert nx.subject == "mirror.nx.test" and nx.severity == "error" and nx.runtime == "containerd"
    [skew] = codes["clock.skew"]
    assert skew.severity == "error" and skew.evidence["skew_seconds"] == pytest.approx(-600, abs=5)


@pytest.mark.lab
def test_black_holes_everywhere_cost_about_one_timeout(tcp_black_hole: TcpBlackHole, udp_black_hole: UdpBlackHole,
                                                       tmp_path: Path) -> None:
    """Proxy, DNS server and NTP server all black holes: the three panels, run concurrently, finish in about one timeout."""
    timeout = 1.0
    root = fake_root(tmp_path, {
        "/etc/systemd/system/containerd.service.d/proxy.conf":
            f'[Service]\nEnvironment="HTTPS_PROXY={tcp_black_hole.url}"\n',
        "/etc/containerd/config.toml": "version = 2\n",
        "/etc/chrony/chrony.conf": f"server 127.0.0.1 port {udp_black_hole.port}\n",
    })
    _, ctx = _plan_context(root, ["registry.lab.test:5000/lab/app:latest"], runtime="containerd",
                           dns_port=udp_black_hole.port, timeout=timeout)
    started = time.monotonic()
    results = asyncio.run(run_probes(ctx, panels=PANELS))
    elapsed = time.monotonic() - started
    codes = _codes(results)
    assert codes["proxy.unreachable"][0].evidence["phase"] == "answer"
    assert codes["dns.timeout"][0].subject == "registry.lab.test"
    assert codes["clock.ntp-unreachable"][0].severity == "warning"
    assert max(r.elapsed_ms for r in results.values()) / 1000 < 2 * timeout
    assert elapsed < 2 * timeout + 0.5


def test_daemon_json_changed_after_dockerd_started(tmp_path: Path) -> None:
    """dockerd's daemon.json proxies cannot be read from /proc; a daemon.json newer than the process is proxy.not-applied."""
    root = fake_root(tmp_path / "root", {"/etc/docker/daemon.json": '{"proxies": {"https-proxy": "http://new:3128"}}'})
    proc = tmp_path / "proc" / "42"
    proc.mkdir(parents=True)
    (proc / "comm").write_text("dockerd\n")
    (proc / "cmdline").write_bytes(b"/usr/bin/dockerd\0")
    (proc / "environ").write_bytes(b"PATH=/bin\0")
    (proc / "stat").write_text("42 (dockerd) S " + " ".join(["0"] * 18) + " 100\n")
    (tmp_path / "proc" / "stat").write_text(f"btime {int(time.time()) - 3600}\n")
    os.utime(root / "etc/docker/daemon.json")
    env = from_environ({"HTTPS_PROXY": "http://new:3128"},
                       {"HTTPS_PROXY": "/etc/docker/daemon.json:1 (daemon.json proxies.https-proxy)"})
    view = RuntimeView("docker", ["/etc/docker/daemon.json"], proxy_env=env)
    proc_info = procenv.find_daemon("docker", str(tmp_path / "proc"))
    assert proc_info is not None and "daemon.json" in proc_info.note
    [f] = proxy_live._not_applied(Host(root=root), view, proc_info)
    assert f.code == "proxy.not-applied" and f.evidence["differences"]["HTTPS_PROXY"]["file_modified"] > \
        f.evidence["differences"]["HTTPS_PROXY"]["daemon_started"]
    assert f.fix is not None and f.fix.files == ("/etc/docker/daemon.json",)
    assert f.fix.params["command"] == "systemctl daemon-reload && systemctl restart docker"
