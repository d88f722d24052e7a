"""Cross-runtime offline checks: proxy variables by Go's rules, disabled verification, unreadable files."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from regtui.cli import main
from regtui.engine import plan
from regtui.host import Host
from regtui.options import CheckOptions
from rootfs import line_of, write_tree

CONTAINERD_UNIT = "[Service]\nExecStart=/usr/bin/containerd\n"
DROPIN = """[Service]
Environment="HTTP_PROXY=http://proxy.corp.example:3128"
Environment="NO_PROXY=localhost,.corp.example"
Environment="http_proxy=http://other.corp.example:8080"
"""
HOSTS_TOML = """server = "https://registry-1.docker.io"

[host."https://10.20.0.15:5000"]
  capabilities = ["pull", "resolve"]

[host."https://cache.svc.cluster.local"]
  capabilities = ["pull", "resolve"]
"""


def _plan(tmp_path: Path, files: dict[str, str], image: str = "alpine", runtime: str = "containerd", env=None):
    write_tree(tmp_path, {"/etc/resolv.conf": "nameserver 127.0.0.1\n", **files})
    host = Host.from_args(tmp_path, env or {})
    return plan(CheckOptions(root=str(tmp_path), images=(image,), runtime=runtime, offline=True), host)


def _codes(p) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in p.findings:
        out.setdefault(f.code, []).append(f)
    return out


def test_http_proxy_without_https_proxy(tmp_path: Path) -> None:
    """Pattern 9: HTTP_PROXY alone in containerd's drop-in is proxy.https-missing, pointing at its line."""
    p = _plan(tmp_path, {"/lib/systemd/system/containerd.service": CONTAINERD_UNIT,
                         "/etc/systemd/system/containerd.service.d/proxy.conf": DROPIN})
    (f,) = _codes(p)["proxy.https-missing"]
    assert f.severity == "warning" and f.runtime == "containerd"
    assert f.evidence["file"] == "/etc/systemd/system/containerd.service.d/proxy.conf"
    assert f.evidence["line"] == line_of(DROPIN, "HTTP_PROXY=")
    assert "registry-1.docker.io" in f.evidence["https_endpoints"]
    assert f.fix and f.fix.restart == "restart containerd"
    # and the route really goes direct, as Go would
    assert all(ep.proxy is None for r in p.routes for ep in r.endpoints)


def test_case_conflict(tmp_path: Path) -> None:
    """Upper- and lowercase HTTP_PROXY that disagree are proxy.case-conflict naming both values."""
    p = _plan(tmp_path, {"/lib/systemd/system/containerd.service": CONTAINERD_UNIT,
                         "/etc/systemd/system/containerd.service.d/proxy.conf": DROPIN})
    (f,) = _codes(p)["proxy.case-conflict"]
    assert f.evidence["upper"] == "http://proxy.corp.example:3128"
    assert f.evidence["lower"] == "http://other.corp.example:8080"
    assert f.evidence["line"] == line_of(DROPIN, "http_proxy=")


def test_private_and_cluster_mirrors_through_proxy(tmp_path: Path) -> None:
    """Private-address and in-cluster mirrors sent through HTTPS_PROXY are proxy.bypass-missing; Hub is not."""
    dropin = '[Service]\nEnvironment="HTTPS_PROXY=http://proxy.corp.example:3128"\n'
    p = _plan(tmp_path, {
        "/lib/systemd/system/containerd.service": CONTAINERD_UNIT,
        "/etc/systemd/system/containerd.service.d/proxy.conf": dropin,
        "/etc/containerd/config.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n',
        "/etc/containerd/certs.d/docker.io/hosts.toml": HOSTS_TOML,
    })
    subjects = {f.subject for f in _codes(p).get("proxy.bypass-missing", [])}
    assert subjects == {"10.20.0.15:5000", "cache.svc.cluster.local"}


def test_no_proxy_cidr_covers_ip_mirror(tmp_path: Path) -> None:
    """A NO_PROXY CIDR covers an IP-literal mirror, so no bypass finding for it."""
    dropin = '[Service]\nEnvironment="HTTPS_PROXY=http://proxy.corp.example:3128" "NO_PROXY=10.0.0.0/8,.svc.cluster.local"\n'
    p = _plan(tmp_path, {
        "/lib/systemd/system/containerd.service": CONTAINERD_UNIT,
        "/etc/systemd/system/containerd.service.d/proxy.conf": dropin,
        "/etc/containerd/config.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n',
        "/etc/containerd/certs.d/docker.io/hosts.toml": HOSTS_TOML,
    })
    assert "proxy.bypass-missing" not in _codes(p)
    eps = {ep.host: ep for r in p.routes for ep in r.endpoints}
    assert eps["10.20.0.15:5000"].proxy is None and "10.0.0.0/8" in eps["10.20.0.15:5000"].proxy_reason
    assert eps["registry-1.docker.io"].proxy == "http://proxy.corp.example:3128"


def test_daemon_differs_from_shell(tmp_path: Path) -> None:
    """The shell having a proxy the daemon lacks is proxy.daemon-differs (info)."""
    p = _plan(tmp_path, {"/lib/systemd/system/containerd.service": CONTAINERD_UNIT},
              env={"HTTPS_PROXY": "http://shell-proxy:3128"})
    (f,) = _codes(p)["proxy.daemon-differs"]
    assert f.severity == "info" and f.evidence["differences"]["HTTPS_PROXY"] == {"daemon": "", "shell": "http://shell-proxy:3128"}


def test_verify_disabled_for_docker_loopback(tmp_path: Path) -> None:
    """Docker skips verification for a registry on 127.0.0.0/8: tls.verify-disabled says why."""
    p = _plan(tmp_path, {"/etc/docker/daemon.json": "{}\n"}, image="127.0.0.1:5000/app:1", runtime="docker")
    (f,) = _codes(p)["tls.verify-disabled"]
    assert f.subject == "127.0.0.1:5000" and f.runtime == "docker" and "127.0.0.0/8" in f.evidence["reason"]
    assert f.severity == "info" and f.fix is None, "no daemon.json setting turns verification on for 127.0.0.0/8"


def test_verify_disabled_by_a_user_cidr_is_a_warning_with_a_fix(tmp_path: Path) -> None:
    """A user-written insecure-registries CIDR is a choice with a fix (trust the CA instead): warning, with steps
    (no planner writes it, so the report does not call it an edit)."""
    p = _plan(tmp_path, {"/etc/docker/daemon.json": '{"insecure-registries": ["10.0.0.0/8"]}\n'},
              image="10.1.2.3:5000/app:1", runtime="docker")
    (f,) = _codes(p)["tls.verify-disabled"]
    assert f.severity == "warning" and f.fix is not None and f.fix.kind == "manual"


def test_unreadable_file_is_a_permission_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A daemon.json the process may not open is config.permission with the OS error, not a crash.

    Tests run as root, which reads anything, so the permission error is injected at os.open.
    """
    write_tree(tmp_path, {"/etc/docker/daemon.json": '{"debug": true}\n'})
    target = str(tmp_path / "etc/docker/daemon.json")
    real_open = os.open

    def deny(path, flags, *a, **kw):
        if os.fspath(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", deny)
    rc = main(["check", "--offline", "--root", str(tmp_path), "--runtime", "docker", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    perm = [f for f in data["findings"] if f["code"] == "config.permission"]
    assert perm and perm[0]["subject"] == "/etc/docker/daemon.json"
    assert perm[0]["evidence"]["error"] == "Permission denied"
    assert data["errors"] == [] and rc in (0, 1)
