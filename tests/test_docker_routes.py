"""dockerd's endpoint order for both image stores (SEMANTICS §1.3, §1.4) and secrets in every output."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from regtui.runtimes import docker
from regtui.engine import run_check
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.refs import parse
from regtui.runtimes.view import RuntimeView
from rootfs import line_of, write_tree

DJ = "/etc/docker/daemon.json"
DPKG = "/var/lib/dpkg/status"
CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0FDRVJUCg==\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n"
PASSWORD = "hub-Passw0rd!"
AUTH = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
CLI = json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": AUTH},
                            "registry.lab:5000": {"auth": AUTH}}}, indent=2)
MIRRORS = """{
  "registry-mirrors": [
    "https://mirror.gcr.io",
    "https://hub-cache.corp.example:5000",
    "http://10.20.0.7:5000"
  ],
  "insecure-registries": ["hub-cache.corp.example:5000", "10.20.0.0/16", "registry.lab:5000"]
}
"""
CLASSIC = "Package: docker-ce\nStatus: install ok installed\nVersion: 5:27.5.1-1~debian.12~bookworm\n\n"
MODERN = "Package: docker-ce\nStatus: install ok installed\nVersion: 5:29.1.3-1~debian.12~bookworm\n\n"


def _view(tmp_path: Path, files: dict[str, str | bytes], dpkg: str = CLASSIC) -> RuntimeView:
    host = Host(root=write_tree(tmp_path, {DPKG: dpkg, "/root/.docker/config.json": CLI, **files}))
    return docker.load(host, CheckOptions())


def test_hub_mirrors_in_order_then_upstream(tmp_path: Path) -> None:
    """Hub refs: each mirror in daemon.json order, then https://registry-1.docker.io (system roots only)."""
    view = _view(tmp_path, {DJ: MIRRORS})
    route, findings = view.plan(parse("nginx:1.27"))
    urls = [e.url for e in route.endpoints]
    assert urls == ["https://mirror.gcr.io/v2", "https://hub-cache.corp.example:5000/v2", "http://10.20.0.7:5000/v2",
                    "https://registry-1.docker.io/v2"]
    assert [e.role for e in route.endpoints] == ["mirror", "mirror", "mirror", "upstream"]
    assert [e.source for e in route.endpoints[:3]] == [f"{DJ}:{line_of(MIRRORS, n)}" for n in
                                                       ("mirror.gcr.io", "hub-cache", "10.20.0.7")]
    upstream = route.endpoints[-1]
    assert upstream.source == "default (Docker Hub)" and upstream.tls.verify
    assert "never reads certs.d" in upstream.tls.verify_reason
    assert route.mode == "docker classic store (graphdriver)" and "Engine 27.5" in route.assumed
    assert route.endpoints[0].repository == "library/nginx"
    assert findings == []


def test_insecure_mirror_exact_key_and_cidr(tmp_path: Path) -> None:
    """An insecure mirror (exact host:port) skips verification; an IP mirror is matched by CIDR."""
    route, _ = _view(tmp_path, {DJ: MIRRORS}).plan(parse("alpine"))
    gcr, cache, ip, _hub = route.endpoints
    assert gcr.tls.verify
    assert not cache.tls.verify and "'hub-cache.corp.example:5000'" in cache.tls.verify_reason
    assert ip.url.startswith("http://")
    assert any("depends on resolution" in n for n in route.notes)


def test_mirror_certs_from_its_own_dir(tmp_path: Path) -> None:
    """Classic store: a secure mirror uses certs.d/<mirror host>."""
    files = {DJ: '{"registry-mirrors": ["https://mirror.corp.example"]}',
             "/etc/docker/certs.d/mirror.corp.example/ca.crt": CA}
    route, _ = _view(tmp_path, files).plan(parse("alpine"))
    assert route.endpoints[0].tls.ca_files == ("/etc/docker/certs.d/mirror.corp.example/ca.crt",)


def test_hub_credentials_offered_to_mirrors(tmp_path: Path) -> None:
    """Graphdriver store: Docker Hub credentials go to the mirrors too; the source names config.json:line."""
    view = _view(tmp_path, {DJ: MIRRORS})
    route, _ = view.plan(parse("library/redis"))
    line = line_of(CLI, "index.docker.io")
    assert route.endpoints[-1].credentials == f"/root/.docker/config.json:{line} (auths.\"https://index.docker.io/v1/\")"
    assert "offered to the mirror" in (route.endpoints[0].credentials or "")
    assert view.credentials is not None and view.credentials("mirror.gcr.io") is not None


def test_pattern2_mirrors_not_applied_to_other_registries(tmp_path: Path) -> None:
    """Pattern 2: ghcr.io refs skip every mirror, with one mirror.not-applied warning."""
    route, findings = _view(tmp_path, {DJ: MIRRORS}).plan(parse("ghcr.io/org/app:2"))
    assert [e.status for e in route.endpoints[:3]] == ["skipped"] * 3
    assert all("Docker Hub only" in e.reason for e in route.endpoints[:3])
    assert [e.url for e in route.tried()] == ["https://ghcr.io/v2"]
    [f] = [f for f in findings if f.code == "mirror.not-applied"]
    assert f.severity == "warning" and f.evidence["line"] == line_of(MIRRORS, "mirror.gcr.io")
    assert f.fix is not None and f.fix.kind == "manual"


def test_mirrors_not_applied_to_registry_1(tmp_path: Path) -> None:
    """registry-1.docker.io/library/x is not a Hub reference: mirrors are skipped and certs.d is read for it."""
    files = {DJ: MIRRORS, "/etc/docker/certs.d/registry-1.docker.io/ca.crt": CA}
    route, findings = _view(tmp_path, files).plan(parse("registry-1.docker.io/library/nginx"))
    assert [e.url for e in route.tried()] == ["https://registry-1.docker.io/v2"]
    assert route.tried()[0].tls.ca_files == ("/etc/docker/certs.d/registry-1.docker.io/ca.crt",)
    [f] = [f for f in findings if f.code == "mirror.not-applied"]
    assert "not a Docker Hub reference" in f.detail and "nginx:latest" in f.detail


def test_insecure_registry_https_then_http(tmp_path: Path) -> None:
    """An insecure registry (exact key): https without verification, then http; certs.d not read."""
    view = _view(tmp_path, {DJ: MIRRORS, "/etc/docker/certs.d/registry.lab:5000/client.cert": CA,
                            "/etc/docker/certs.d/registry.lab:5000/client.key": KEY})
    route, findings = view.plan(parse("registry.lab:5000/team/api:3"))
    https, http = route.tried()
    assert (https.url, http.url) == ("https://registry.lab:5000/v2", "http://registry.lab:5000/v2")
    assert not https.tls.verify and https.http_fallback and https.tls.client_cert == ()
    assert https.source == f"{DJ}:{line_of(MIRRORS, 'insecure-registries')}"
    assert https.credentials and https.credentials.startswith("/root/.docker/config.json:")
    assert [f.code for f in findings if f.code == "config.hosts-dir-unused"] == ["config.hosts-dir-unused"]


def test_localhost_and_loopback_names_always_insecure(tmp_path: Path) -> None:
    """localhost and names in /etc/hosts on 127.x are insecure through the always-present 127.0.0.0/8."""
    view = _view(tmp_path, {DJ: "{}", "/etc/hosts": "127.0.0.1 localhost\n127.0.0.2 registry.local.test\n"})
    for ref in ("localhost:5000/app", "registry.local.test:5443/app", "127.0.0.1:5000/app"):
        route, _ = view.plan(parse(ref))
        first = route.tried()[0]
        assert not first.tls.verify and "127.0.0.0/8 is always insecure" in first.tls.verify_reason
        assert first.source == "default (127.0.0.0/8 is always insecure)"
        assert route.tried()[1].url.startswith("http://")


def test_secure_registry_certs_and_misnamed_dir(tmp_path: Path) -> None:
    """Pattern 10: certs.d/registry.corp (no port) is misnamed for registry.corp:8443 refs."""
    route, findings = _view(tmp_path, {DJ: "{}", "/etc/docker/certs.d/registry.corp/ca.crt": CA}).plan(
        parse("registry.corp:8443/app:1"))
    [ep] = route.tried()
    assert ep.tls.verify and ep.tls.ca_files == ()
    [f] = [f for f in findings if f.code == "config.hosts-dir-misnamed"]
    assert f.fix is not None and f.fix.params["to"] == "/etc/docker/certs.d/registry.corp:8443"


def test_broken_certs_dir_noted_on_route(tmp_path: Path) -> None:
    """A .cert without .key in the registry's certs.d: finding plus a route note that the pull fails first."""
    route, findings = _view(tmp_path, {DJ: "{}", "/etc/docker/certs.d/registry.corp/client.cert": CA}).plan(
        parse("registry.corp/app"))
    assert any(f.code == "config.invalid-value" for f in findings)
    assert any("fails before sending any request" in n for n in route.notes)


def test_hub_certs_dir_unused_in_classic(tmp_path: Path) -> None:
    """certs.d/docker.io is never read for Docker Hub by the classic store."""
    _, findings = _view(tmp_path, {DJ: "{}", "/etc/docker/certs.d/docker.io/proxy-ca.crt": CA}).plan(parse("alpine"))
    [f] = findings
    assert f.code == "config.hosts-dir-unused" and f.fix is not None and f.fix.kind == "command"


def test_proxy_decisions_on_endpoints(tmp_path: Path) -> None:
    """Each endpoint carries the daemon's proxy decision (NO_PROXY from daemon.json proxies)."""
    files = {DJ: '{"registry-mirrors": ["https://10.20.0.7:5000"], "proxies": '
                 '{"https-proxy": "http://u:Secr3tProxy@proxy.corp:3128", "no-proxy": "10.0.0.0/8"}}'}
    route, _ = _view(tmp_path, files).plan(parse("alpine"))
    mirror, hub = route.endpoints
    assert mirror.proxy is None and "10.0.0.0/8" in mirror.proxy_reason
    assert hub.proxy == "http://***@proxy.corp:3128"


def test_containerd_store_merges_mirrors(tmp_path: Path) -> None:
    """§1.4: containerd store, no hosts.toml: daemon.json mirrors (/v2 added, ns=docker.io) then upstream."""
    files = {DJ: '{\n  "registry-mirrors": ["https://nexus.corp/repository/hub"]\n}\n',
             "/etc/docker/certs.d/docker.io/ca.crt": CA}
    view = _view(tmp_path, files, dpkg=MODERN)
    assert view.summary["image_store"] == "containerd"
    route, _ = view.plan(parse("alpine"))
    mirror, upstream = route.endpoints
    assert mirror.url == "https://nexus.corp/repository/hub/v2" and mirror.query == "ns=docker.io"
    assert mirror.source == f"{DJ}:2"
    assert mirror.tls.ca_files == ("/etc/docker/certs.d/docker.io/ca.crt",)
    assert mirror.credentials is None
    assert upstream.url == "https://registry-1.docker.io/v2" and upstream.credentials
    assert route.mode == "docker containerd image store"
    assert view.credentials is not None and view.credentials("nexus.corp") is None


def test_containerd_store_hosts_toml_wins(tmp_path: Path) -> None:
    """hosts.toml with several hosts: its order is used and daemon.json mirrors are ignored (warning)."""
    hosts = ('server = "https://registry-1.docker.io"\n\n[host."https://harbor.corp/v2/dockerhub"]\n'
             '  capabilities = ["pull", "resolve"]\n  override_path = true\n')
    files = {DJ: '{"registry-mirrors": ["https://mirror.gcr.io"]}', "/etc/docker/certs.d/docker.io/hosts.toml": hosts}
    route, findings = _view(tmp_path, files, dpkg=MODERN).plan(parse("alpine"))
    assert [e.url for e in route.endpoints] == ["https://harbor.corp/v2/dockerhub", "https://registry-1.docker.io/v2"]
    assert route.endpoints[0].source == f"/etc/docker/certs.d/docker.io/hosts.toml:{line_of(hosts, 'harbor')}"
    assert [f.code for f in findings] == ["mirror.not-applied"]


def test_containerd_store_insecure_legacy(tmp_path: Path) -> None:
    """Legacy insecure-registries in the containerd store: no verification plus HTTP fallback."""
    view = _view(tmp_path, {DJ: '{"insecure-registries": ["registry.lab:5000"]}'}, dpkg=MODERN)
    route, _ = view.plan(parse("registry.lab:5000/app"))
    [ep] = route.endpoints
    assert not ep.tls.verify and ep.http_fallback


def test_pattern7_containerd_certs_dir_unused(tmp_path: Path) -> None:
    """Pattern 7: /etc/containerd/certs.d/<host>/hosts.toml is not read by dockerd's containerd store."""
    files = {DJ: "{}", "/etc/containerd/certs.d/registry.lab:5000/hosts.toml":
             'server = "https://registry.lab:5000"\n[host."https://registry.lab:5000"]\n  skip_verify = true\n'}
    view = _view(tmp_path, files, dpkg=MODERN)
    [f] = [f for f in view.findings if f.code == "config.hosts-dir-unused"]
    assert f.subject == "/etc/containerd/certs.d/registry.lab:5000"
    assert f.fix is not None and f.fix.params["to"] == "/etc/docker/certs.d/registry.lab:5000"
    route, _ = view.plan(parse("registry.lab:5000/app"))
    assert route.tried()[0].tls.verify


def test_containerd_store_pull_only_mirror_skipped_for_tags(tmp_path: Path) -> None:
    """A pull-only hosts.toml mirror is skipped for a tag and used for a digest."""
    hosts = 'server = "https://quay.io"\n[host."https://quay-cache.corp"]\n  capabilities = ["pull"]\n'
    view = _view(tmp_path, {DJ: "{}", "/etc/docker/certs.d/quay.io/hosts.toml": hosts}, dpkg=MODERN)
    route, findings = view.plan(parse("quay.io/org/app:1"))
    assert route.endpoints[0].status == "skipped" and [f.code for f in findings] == ["mirror.skipped"]
    digest = "quay.io/org/app@sha256:" + "a" * 64
    route, _ = view.plan(parse(digest))
    assert route.endpoints[0].status == "untested"


def test_secrets_absent_from_all_outputs(tmp_path: Path) -> None:
    """Passwords, auth blobs and proxy credentials appear nowhere in the report JSON."""
    files = {DJ: json.dumps({"registry-mirrors": ["https://bob:MirrorPw9@mirror.lab"],
                             "registry-mirror": "https://carl:SingularPw7@m2.lab",
                             "proxies": {"https-proxy": "http://svc:Pr0xyPw@proxy.corp:3128"}}),
             "/etc/systemd/system/docker.service.d/proxy.conf":
                 '[Service]\nEnvironment="HTTP_PROXY=http://svc:EnvPw5@proxy.corp:3128"\n',
             "/root/.docker/config.json": json.dumps({"auths": {"registry-1.docker.io": {"auth": AUTH},
                                                                "ghcr.io": {"auth": "bm9jb2xvbg=="}}})}
    root = write_tree(tmp_path, {DPKG: CLASSIC, **files})
    report = run_check(CheckOptions(root=str(root), images=("alpine", "ghcr.io/a/b"), runtime="docker", offline=True),
                       Host(root=root))
    dumped = json.dumps(report.to_dict())
    for secret in ("MirrorPw9", "SingularPw7", "Pr0xyPw", "EnvPw5", PASSWORD, AUTH, "bm9jb2xvbg=="):
        assert secret not in dumped, secret
    assert "config.invalid-value" in dumped and "auth.wrong-key" in dumped


def test_view_contract(tmp_path: Path) -> None:
    """load() returns a RuntimeView named docker with sources, summary and a planner."""
    view = _view(tmp_path, {DJ: MIRRORS})
    assert view.name == "docker" and view.planner is not None
    assert {s.kind for s in view.sources} >= {"daemon.json", "docker CLI config.json", "certs.d directory"}
    assert view.summary["registry_mirrors"][0] == "https://mirror.gcr.io/"
    assert view.summary["starts"] is True


def test_garbage_hosts_toml_and_env_file_never_raise(tmp_path: Path) -> None:
    """Junk in /etc/docker/certs.d/<host>/hosts.toml and in an EnvironmentFile become findings, not tracebacks."""
    files = {DJ: "{}", "/etc/docker/certs.d/docker.io/hosts.toml": b"\xff\xfe[host.\x00 = = \n",
             "/etc/systemd/system/docker.service.d/env.conf": "[Service]\nEnvironmentFile=/etc/docker/env\n",
             "/etc/docker/env": b"HTTPS_PROXY='unterminated\n\xff\xfe\x00\n"}
    view = _view(tmp_path, files, dpkg=MODERN)
    route, findings = view.plan(parse("alpine"))
    assert route.endpoints[-1].url == "https://registry-1.docker.io/v2"
    assert any(f.code == "config.parse-error" for f in findings + view.findings)


def test_dns_server_replaces_the_hosts_file_for_insecure_decisions(tmp_path: Path) -> None:
    """With --dns-server the root's /etc/hosts (127.0.0.2 for the name) does not make the registry insecure."""
    host = Host(root=write_tree(tmp_path, {DPKG: CLASSIC, DJ: "{}", "/etc/hosts": "127.0.0.2 registry.local.test\n"}))
    route, _ = docker.load(host, CheckOptions(dns_server="127.0.0.1:5353")).plan(parse("registry.local.test:5443/app"))
    first = route.tried()[0]
    assert first.url.startswith("https://") and first.tls.verify, first.tls
    assert "/etc/hosts" not in first.tls.verify_reason
    route, _ = docker.load(host, CheckOptions()).plan(parse("registry.local.test:5443/app"))
    assert not route.tried()[0].tls.verify
