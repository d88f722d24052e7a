"""The CRI route planner: endpoint order, capabilities, ?ns=, TLS, credentials and proxy per endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from regtui.runtimes import containerd
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.refs import parse
from rootfs import line_of, write_tree

CONFIG = "/etc/containerd/config.toml"
CERTS = "/etc/containerd/certs.d"
DIGEST = "sha256:" + "4f" * 32
PEM_CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

HOSTS_MODE = """version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
"""

# A pull-only in-cluster cache first (digests only), then a full mirror, then Docker Hub.
HUB_HOSTS = """server = "https://registry-1.docker.io"

[host."http://registry-cache.kube-system.svc.cluster.local:5000"]
  capabilities = ["pull"]

[host."https://mirror.gcr.io"]
  capabilities = ["pull", "resolve"]
"""


def _view(tmp_path: Path, files: dict[str, str | bytes], version: str = "1.7.27"):
    """The containerd runtime view of a fake root, on the given containerd version."""
    return containerd.load(Host(root=write_tree(tmp_path, files)), CheckOptions(containerd_version=version))


def test_pull_only_host_skipped_for_tags(tmp_path):
    """A tag needs pull+resolve: the pull-only cache is skipped (mirror.skipped info), the rest in order."""
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS})
    route, findings = view.plan(parse("nginx:1.27"))
    assert [(e.host, e.status) for e in route.endpoints] == [
        ("registry-cache.kube-system.svc.cluster.local:5000", "skipped"),
        ("mirror.gcr.io", "untested"), ("registry-1.docker.io", "untested")]
    assert [e.host for e in route.tried()] == ["mirror.gcr.io", "registry-1.docker.io"]
    (f,) = findings
    assert f.code == "mirror.skipped" and f.severity == "info"
    assert f.evidence["line"] == line_of(HUB_HOSTS, "registry-cache")
    assert "digest" in route.endpoints[0].reason


def test_pull_only_host_used_for_digests(tmp_path):
    """A digest reference needs only pull: the cache is tried first."""
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS})
    route, findings = view.plan(parse(f"nginx@{DIGEST}"))
    assert [e.status for e in route.endpoints] == ["untested"] * 3
    assert route.endpoints[0].url == "http://registry-cache.kube-system.svc.cluster.local:5000/v2"
    assert route.endpoints[0].manifest_url(DIGEST).endswith(f"/library/nginx/manifests/{DIGEST}?ns=docker.io")
    assert findings == []


def test_endpoint_fields_from_hosts_toml(tmp_path):
    """Role, provenance, ?ns= for mirrors only, repository path and the API root."""
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS})
    route, _ = view.plan(parse("nginx:1.27"))
    _, mirror, upstream = route.endpoints
    path = f"{CERTS}/docker.io/hosts.toml"
    assert (mirror.role, mirror.source, mirror.query) == ("mirror", f"{path}:{line_of(HUB_HOSTS, 'mirror.gcr.io')}", "ns=docker.io")
    assert (upstream.role, upstream.source, upstream.query) == ("upstream", f"{path}:1", "")
    assert upstream.repository == "library/nginx"
    assert upstream.manifest_url("1.27") == "https://registry-1.docker.io/v2/library/nginx/manifests/1.27"
    assert "hosts dirs /etc/containerd/certs.d" in route.mode


def test_no_hosts_dir_means_upstream_only(tmp_path):
    """A registry without a dir (and no _default) goes straight to the registry, default provenance."""
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS})
    route, _ = view.plan(parse("ghcr.io/fluxcd/flux-cli:v2.3.0"))
    (e,) = route.endpoints
    assert (e.url, e.source, e.role) == ("https://ghcr.io/v2", "default (no hosts dir for ghcr.io)", "upstream")


def test_every_host_pull_only_fails_tags(tmp_path):
    """If no host can resolve, the tag pull fails: the skip finding is raised to error."""
    text = 'server = "https://cache.corp.example"\ncapabilities = ["pull"]\n'
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/quay.io/hosts.toml": text}, version="2.0.4")
    route, findings = view.plan(parse("quay.io/prometheus/node-exporter:v1.8.1"))
    assert route.tried() == ()
    assert findings[-1].severity == "error" and "no resolve hosts" in route.notes[-1]


def test_tls_inputs_from_hosts_toml(tmp_path):
    """ca and skip_verify become the endpoint's TLS inputs."""
    text = ('[host."https://harbor.corp.example"]\n  ca = "harbor-ca.crt"\n\n'
            '[host."https://10.40.0.12:8443"]\n  skip_verify = true\n')
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/harbor.corp.example/hosts.toml": text,
                            f"{CERTS}/harbor.corp.example/harbor-ca.crt": PEM_CA}, version="2.0.4")
    route, _ = view.plan(parse("harbor.corp.example/platform/api:2.4.1"))
    harbor, ip, upstream = route.endpoints
    assert harbor.tls.verify and harbor.tls.ca_files == (f"{CERTS}/harbor.corp.example/harbor-ca.crt",)
    assert not ip.tls.verify and "skip_verify" in ip.tls.verify_reason
    assert upstream.tls.verify and upstream.tls.ca_files == ()


def test_localhost_registry_defaults(tmp_path):
    """localhost:5000 without a hosts dir: https with skip_verify and the HTTP fallback."""
    view = _view(tmp_path, {CONFIG: HOSTS_MODE}, version="2.0.4")
    route, _ = view.plan(parse("localhost:5000/dev/app:latest"))
    (e,) = route.endpoints
    assert (e.url, e.tls.verify, e.http_fallback) == ("https://localhost:5000/v2", False, True)


def test_credentials_per_endpoint_host(tmp_path):
    """Each endpoint gets the credentials of its own host; the mirror has none here."""
    text = HOSTS_MODE + ('[plugins."io.containerd.grpc.v1.cri".registry.configs."registry-1.docker.io".auth]\n'
                         '  username = "ci-bot"\n  password = "secret"\n')
    view = _view(tmp_path, {CONFIG: text, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS})
    route, _ = view.plan(parse("nginx"))
    assert route.endpoints[1].credentials is None
    assert route.endpoints[2].credentials == f'{CONFIG}:{line_of(text, "registry-1.docker.io")} (configs."registry-1.docker.io".auth)'


def test_misnamed_dir_without_port(tmp_path):
    """certs.d/myreg for myreg:5000/app is never read: config.hosts-dir-misnamed with a rename fix."""
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/myreg/hosts.toml": 'server = "https://myreg:5000"\n'})
    route, findings = view.plan(parse("myreg:5000/team/app:3"))
    (f,) = [f for f in findings if f.code == "config.hosts-dir-misnamed"]
    assert f.severity == "error"
    assert f.fix.params == {"from": f"{CERTS}/myreg", "to": f"{CERTS}/myreg:5000", "action": "rename"}
    assert f.evidence["looked_for"] == [f"{CERTS}/myreg_5000_", f"{CERTS}/myreg:5000", f"{CERTS}/_default"]
    assert route.endpoints[0].source == "default (no hosts dir for myreg:5000)"


def test_hosts_toml_errors_reported_once(tmp_path):
    """A broken hosts.toml is reported by load(); the route falls back to cert files without repeating it."""
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/docker.io/hosts.toml": b"\x00\x01garbage ["})
    assert [f.code for f in view.findings].count("config.parse-error") == 1
    route, findings = view.plan(parse("nginx"))
    assert [e.url for e in route.endpoints] == ["https://registry-1.docker.io/v2"]
    assert "hosts.toml rejected" in route.notes[0]
    assert "config.parse-error" not in [f.code for f in findings]


# Legacy mirrors, the way many clusters still configure them.
LEGACY = """version = 2
[plugins."io.containerd.grpc.v1.cri".registry.mirrors]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["https://mirror.gcr.io", "harbor.corp.example/v2/dockerhub"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."*"]
    endpoint = ["https://pull-through.corp.example"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5000"]
    endpoint = ["localhost:5000"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."quay.io"]
    endpoint = ["https://quay-mirror.corp.example", "https://quay.io"]
"""


def test_legacy_mirrors_then_hub_upstream(tmp_path):
    """Mirrors in order, scheme-less gets https, registry-1.docker.io appended; no /v2 added to a path."""
    view = _view(tmp_path, {CONFIG: LEGACY})
    route, _ = view.plan(parse("nginx"))
    assert [e.url for e in route.endpoints] == ["https://mirror.gcr.io/v2", "https://harbor.corp.example/v2/dockerhub",
                                                "https://registry-1.docker.io/v2"]
    assert [e.query for e in route.endpoints] == ["ns=docker.io", "ns=docker.io", ""]
    assert route.endpoints[0].source == f"{CONFIG}:{line_of(LEGACY, 'mirror.gcr.io')}"
    assert route.endpoints[2].source == "default (upstream of docker.io)"
    assert "legacy registry config" in route.mode


def test_legacy_wildcard_applies_without_exact_entry(tmp_path):
    """The "*" entry serves registries without their own mirrors entry."""
    route, _ = _view(tmp_path, {CONFIG: LEGACY}).plan(parse("ghcr.io/org/tool:1"))
    assert [e.url for e in route.endpoints] == ["https://pull-through.corp.example/v2", "https://ghcr.io/v2"]
    assert '"*"' in route.notes[0]


def test_legacy_localhost_is_plain_http(tmp_path):
    """A scheme-less localhost endpoint is http, and the upstream is not appended (same host)."""
    route, _ = _view(tmp_path, {CONFIG: LEGACY}).plan(parse("localhost:5000/dev/app"))
    (e,) = route.endpoints
    assert (e.url, e.tls.verify) == ("http://localhost:5000/v2", False)


def test_legacy_upstream_not_duplicated(tmp_path):
    """An endpoint with the registry's own host means no extra upstream entry."""
    route, _ = _view(tmp_path, {CONFIG: LEGACY}).plan(parse("quay.io/org/app:1"))
    assert [e.host for e in route.endpoints] == ["quay-mirror.corp.example", "quay.io"]
    assert route.endpoints[1].role == "upstream"


@pytest.mark.parametrize("version", ["1.7.27", "2.1.4"])
def test_legacy_mirrors_force_local_pull(tmp_path, version):
    """Legacy mirrors mean local pull (2.1+ falls back from the transfer service) and a legacy warning."""
    view = _view(tmp_path, {CONFIG: LEGACY}, version=version)
    assert view.summary["pull_mode"] == "local pull"
    assert "config.legacy-registry-config" in [f.code for f in view.findings]


def test_route_proxy_decisions(tmp_path):
    """Every endpoint carries the daemon's proxy decision: NO_PROXY by suffix, loopback never proxied."""
    dropin = ('[Service]\nEnvironment="HTTP_PROXY=http://proxy.corp.example:3128" '
              '"HTTPS_PROXY=http://proxy.corp.example:3128" "NO_PROXY=.svc.cluster.local,.corp.example"\n')
    view = _view(tmp_path, {CONFIG: HOSTS_MODE, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS,
                            "/etc/systemd/system/containerd.service.d/http-proxy.conf": dropin})
    route, _ = view.plan(parse(f"nginx@{DIGEST}"))
    cache, mirror, upstream = route.endpoints
    assert cache.proxy is None and ".svc.cluster.local" in cache.proxy_reason
    assert mirror.proxy == upstream.proxy == "http://proxy.corp.example:3128"
    route, _ = view.plan(parse("127.0.0.1:5000/app"))
    assert route.endpoints[0].proxy is None
