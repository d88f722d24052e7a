"""Daemon environments as ground truth: /proc/<pid>/environ parsing, discovery, and proxy.not-applied on a real containerd."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from lab.envdaemon import ContainerdWithEnv, proc_root_for
from lab.probectx import context, fake_root, route, view
from lab.require import require_binary
from lab.sockets import closed_port
from regtui.checks import proxy_live
from regtui.config.systemd import load_unit
from regtui.host import Host
from regtui.net import procenv
from regtui.net.proxy import from_environ

OLD_SECRET = "old-proxy-secret"


def _fake_proc(root: Path, pid: int, comm: str, argv: list[str], environ: dict[str, str]) -> None:
    """A /proc/<pid> entry with comm, cmdline, environ and a stat line."""
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in environ.items()) + b"\0")
    fields = ["S"] + ["0"] * 18 + [str(100 + pid)]
    (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
    (root / "stat").write_text("cpu 0 0 0\nbtime 1700000000\n")


def test_parse_environ_keeps_only_proxy_and_tls_variables() -> None:
    """Secrets in a daemon's environment are dropped; the first of a duplicated name wins, as in Go."""
    raw = b"PATH=/bin\0HTTPS_PROXY=http://a:3128\0DB_PASSWORD=x\0HTTPS_PROXY=http://b:3128\0SSL_CERT_FILE=/c.pem\0junk\0"
    assert procenv.parse_environ(raw) == {"HTTPS_PROXY": "http://a:3128", "SSL_CERT_FILE": "/c.pem"}


def test_find_daemon_skips_shims_and_rancher_containerd(tmp_path: Path) -> None:
    """containerd is the real daemon, not a shim and not k3s's embedded one; start time comes from stat + btime."""
    _fake_proc(tmp_path, 10, "containerd-shim", ["/usr/bin/containerd-shim-runc-v2"], {"HTTPS_PROXY": "http://shim:1"})
    _fake_proc(tmp_path, 11, "containerd", ["containerd", "-c", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"],
               {"HTTPS_PROXY": "http://k3s:1"})
    _fake_proc(tmp_path, 12, "containerd", ["/usr/bin/containerd"], {"HTTPS_PROXY": "http://real:1"})
    proc = procenv.find_daemon("containerd", str(tmp_path))
    assert proc is not None and proc.pid == 12 and proc.environ == {"HTTPS_PROXY": "http://real:1"}
    assert proc.started_at == pytest.approx(1700000000 + 112 / os.sysconf("SC_CLK_TCK"))
    k3s = procenv.find_daemon("k3s", str(tmp_path))
    assert k3s is not None and k3s.pid == 11 and "embedded containerd" in k3s.note


def test_k3s_process_maps_containerd_prefix(tmp_path: Path) -> None:
    """Without the embedded containerd visible, k3s's CONTAINERD_HTTPS_PROXY is what its containerd gets."""
    _fake_proc(tmp_path, 20, "k3s-server", ["/usr/local/bin/k3s", "server"],
               {"HTTPS_PROXY": "http://general:1", "CONTAINERD_HTTPS_PROXY": "http://ctr:1", "NO_PROXY": "10.0.0.0/8"})
    proc = procenv.find_daemon("k3s", str(tmp_path))
    assert proc is not None and proc.environ == {"HTTPS_PROXY": "http://ctr:1", "NO_PROXY": "10.0.0.0/8"}
    env = proc.proxy_env()
    assert env is not None and env.https_proxy == "http://ctr:1" and env.sources["HTTPS_PROXY"] == "/proc/20/environ"


def test_compare_skips_daemon_json_values() -> None:
    """Values dockerd takes from daemon.json never show in /proc/<pid>/environ, so they are not compared."""
    configured = from_environ({"HTTPS_PROXY": "http://json:1", "NO_PROXY": "a"},
                              {"HTTPS_PROXY": "/etc/docker/daemon.json:3", "NO_PROXY": "/etc/default/docker:1"})
    running = from_environ({"NO_PROXY": "b"})
    diffs, skipped = proxy_live.compare_envs(configured, running)
    assert skipped == ["HTTPS_PROXY"]
    assert diffs == {"NO_PROXY": {"configured": "a", "running": "b", "source": "/etc/default/docker:1"}}


def _containerd_root(tmp_path: Path, https_proxy: str) -> tuple[Path, object]:
    """A root whose containerd drop-in sets ``https_proxy``; returns the root and the view built from it."""
    root = fake_root(tmp_path / "root", {
        "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n",
        "/etc/systemd/system/containerd.service.d/http-proxy.conf":
            f'[Service]\nEnvironment="HTTPS_PROXY={https_proxy}"\nEnvironment="NO_PROXY=.lab.test"\n',
    })
    unit = load_unit(Host(root=root), "containerd.service", "containerd")
    env = from_environ(unit.environment, unit.env_sources, label="containerd")
    return root, view("containerd", env)


@pytest.mark.lab
def test_not_applied_against_real_containerd(tmp_path: Path) -> None:
    """containerd started with an old HTTPS_PROXY, drop-in now says another: proxy.not-applied with both values, restart command."""
    require_binary("containerd")
    old_port, new_port = closed_port(), closed_port()
    old = f"http://user:{OLD_SECRET}@127.0.0.1:{old_port}"
    with ContainerdWithEnv(tmp_path / "containerd", extra_env={"HTTPS_PROXY": old, "NO_PROXY": ".lab.test"}) as daemon:
        assert daemon.process is not None and daemon.process.pid is not None
        proc_root = proc_root_for(tmp_path / "proc", [daemon.process.pid])
        root, v = _containerd_root(tmp_path, f"http://127.0.0.1:{new_port}")
        ctx = context(root, views=[v], routes=[route("containerd", ["https://registry.example.com"], v.proxy_env)],
                      extra={"proc_root": str(proc_root)}, timeout=0.5)
        result = asyncio.run(proxy_live.probe(ctx))
    [f] = [f for f in result.findings if f.code == "proxy.not-applied"]
    assert f.severity == "warning" and f.runtime == "containerd"
    assert f.evidence["pid"] == daemon.process.pid and f.evidence["process"] == "containerd"
    diff = f.evidence["differences"]["HTTPS_PROXY"]
    assert diff["configured"] == f"http://127.0.0.1:{new_port}" and diff["running"] == f"http://***@127.0.0.1:{old_port}"
    assert diff["source"] == "/etc/systemd/system/containerd.service.d/http-proxy.conf:2"
    assert f.fix is not None and f.fix.kind == "command"
    assert f.fix.params["command"] == "systemctl daemon-reload && systemctl restart containerd"
    [ep] = result.data["runtimes"]["containerd"]["endpoints"]
    assert ep["configured"]["proxy"] == f"http://127.0.0.1:{new_port}"
    assert ep["running"]["proxy"] == f"http://***@127.0.0.1:{old_port}"
    assert {p["address"] for p in result.data["proxies"]} == {f"127.0.0.1:{new_port}", f"127.0.0.1:{old_port}"}
    titles = {x.subject: x.title for x in result.findings if x.code == "proxy.unreachable"}
    assert "next restart" in titles[f"127.0.0.1:{new_port}"] and "running daemon" in titles[f"127.0.0.1:{old_port}"]
    assert OLD_SECRET not in json.dumps(result.data) + json.dumps([x.to_dict() for x in result.findings])


@pytest.mark.lab
def test_no_finding_when_process_matches_files(tmp_path: Path) -> None:
    """The same HTTPS_PROXY and NO_PROXY in the drop-in and the running containerd: no proxy.not-applied."""
    require_binary("containerd")
    env = {"HTTPS_PROXY": "http://127.0.0.1:8080", "NO_PROXY": ".lab.test"}
    with ContainerdWithEnv(tmp_path / "containerd", extra_env=env) as daemon:
        assert daemon.process is not None and daemon.process.pid is not None
        proc_root = proc_root_for(tmp_path / "proc", [daemon.process.pid])
        root, v = _containerd_root(tmp_path, "http://127.0.0.1:8080")
        ctx = context(root, views=[v], extra={"proc_root": str(proc_root)}, timeout=0.5)
        result = asyncio.run(proxy_live.probe(ctx))
    assert "proxy.not-applied" not in {f.code for f in result.findings}
    running = result.data["runtimes"]["containerd"]["running"]
    assert running["pid"] == daemon.process.pid and running["differences"] == {}
