"""CRI-O / podman route planning: prefix match, rewrite, mirror skips, blocked, insecure, certs, credentials."""

from __future__ import annotations

import os
from pathlib import Path

from regtui.runtimes import crio
from regtui.host import Host
from regtui.refs import parse
from regtui.runtimes.view import RuntimeView
from rootfs import line_of, write_tree

SYSTEM = "/etc/containers/registries.conf"
DROPINS = "/etc/containers/registries.conf.d"
DIGEST = "sha256:" + "4b" * 32

# What an OpenShift ImageContentSourcePolicy renders into registries.conf on every node.
ICSP = """unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]
short-name-mode = ""

[[registry]]
  prefix = ""
  location = "quay.io/openshift-release-dev/ocp-release"
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "mirror.registry.example.com:5000/ocp4/openshift4"

[[registry]]
  prefix = ""
  location = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "mirror.registry.example.com:5000/ocp4/openshift4"
"""

HUB = """[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "mirror.gcr.io"

[[registry.mirror]]
location = "harbor.corp.example/dockerhub-proxy"
pull-from-mirror = "tag-only"

[[registry.mirror]]
location = "nexus.corp.example:8443/hub-by-digest"
pull-from-mirror = "digest-only"
"""

CRIO_UNIT = """[Unit]
Description=Container Runtime Interface for OCI (CRI-O)

[Service]
Type=notify
EnvironmentFile=-/etc/sysconfig/crio
ExecStart=/usr/bin/crio $CRIO_CONFIG_OPTIONS $CRIO_RUNTIME_OPTIONS
"""


def _view(tmp_path: Path, files: dict[str, str | bytes], *, crio_binary: bool = True,
          client_env: dict[str, str] | None = None) -> RuntimeView:
    root = write_tree(tmp_path, files)
    if crio_binary:
        write_tree(root, {"/usr/bin/crio": "#!/bin/sh\n"})
        os.chmod(root / "usr/bin/crio", 0o755)
    return crio.load(Host.from_args(root, {}), client_env=client_env or {})


def _plan(view: RuntimeView, image: str):
    return view.plan(parse(image))


def _urls(route) -> list[tuple[str, str, str]]:
    return [(e.role, e.url, e.status) for e in route.endpoints]


def test_no_match_is_the_reference_itself(tmp_path: Path) -> None:
    """Without a matching [[registry]] the only endpoint is the registry itself, with a default source."""
    route, findings = _plan(_view(tmp_path, {SYSTEM: HUB}), "ghcr.io/fluxcd/flux-cli:v2.3.0")
    assert _urls(route) == [("upstream", "https://ghcr.io/v2", "untested")]
    ep = route.endpoints[0]
    assert ep.repository == "fluxcd/flux-cli"
    assert ep.source.startswith("default (no [[registry]]")
    assert ep.tls.verify and ep.capabilities == ("pull", "resolve")
    assert findings == []


def test_mirrors_in_file_order_primary_last_with_hub_host(tmp_path: Path) -> None:
    """Mirrors come in file order, the primary last; docker.io is reached at registry-1.docker.io."""
    route, findings = _plan(_view(tmp_path, {SYSTEM: HUB}), "docker.io/library/nginx:1.27")
    assert _urls(route) == [
        ("mirror", "https://mirror.gcr.io/v2", "untested"),
        ("mirror", "https://harbor.corp.example/v2", "untested"),
        ("mirror", "https://nexus.corp.example:8443/v2", "skipped"),
        ("upstream", "https://registry-1.docker.io/v2", "untested"),
    ]
    assert [e.source for e in route.endpoints] == [f"{SYSTEM}:{line_of(HUB, 'mirror.gcr.io')}",
                                                  f"{SYSTEM}:{line_of(HUB, 'harbor.corp')}",
                                                  f"{SYSTEM}:{line_of(HUB, 'nexus.corp')}",
                                                  f"{SYSTEM}:3"]
    assert route.endpoints[1].repository == "dockerhub-proxy/library/nginx"
    assert route.endpoints[3].host == "registry-1.docker.io"
    skipped = [f for f in findings if f.code == "mirror.skipped"]
    assert len(skipped) == 1 and skipped[0].severity == "info"
    assert skipped[0].evidence["line"] == line_of(HUB, '"digest-only"')
    assert skipped[0].evidence["value"] == "digest-only"


def test_pull_from_mirror_tag_only_skipped_for_digest(tmp_path: Path) -> None:
    """A tag-only mirror is skipped for a digest reference, a digest-only one is used."""
    route, findings = _plan(_view(tmp_path, {SYSTEM: HUB}), f"docker.io/library/nginx@{DIGEST}")
    status = {e.host: e.status for e in route.endpoints}
    assert status["harbor.corp.example"] == "skipped"
    assert status["nexus.corp.example:8443"] == "untested"
    assert "tag-only" in route.endpoints[1].reason
    assert [f.evidence["value"] for f in findings if f.code == "mirror.skipped"] == ["tag-only"]


def test_digest_only_mirrors_with_namespace_rewrite(tmp_path: Path) -> None:
    """ICSP mirror-by-digest-only: skipped for a tag, used for a digest, with the namespace rewritten."""
    view = _view(tmp_path, {SYSTEM: ICSP})
    route, findings = _plan(view, f"quay.io/openshift-release-dev/ocp-release@{DIGEST}")
    assert _urls(route) == [("mirror", "https://mirror.registry.example.com:5000/v2", "untested"),
                            ("upstream", "https://quay.io/v2", "untested")]
    assert route.endpoints[0].repository == "ocp4/openshift4"
    assert route.endpoints[1].repository == "openshift-release-dev/ocp-release"
    assert route.endpoints[0].source == f"{SYSTEM}:{line_of(ICSP, 'mirror.registry.example.com')}"
    assert findings == []
    route, findings = _plan(view, "quay.io/openshift-release-dev/ocp-release:4.16.3-x86_64")
    assert [e.status for e in route.endpoints] == ["skipped", "untested"]
    assert "mirror-by-digest-only" in route.endpoints[0].reason
    assert findings[0].code == "mirror.skipped"
    assert findings[0].evidence["line"] == line_of(ICSP, "mirror-by-digest-only")


def test_rewrite_keeps_what_follows_the_prefix(tmp_path: Path) -> None:
    """location + remainder: a namespace prefix maps to another registry's path, tag kept."""
    text = ('[[registry]]\nprefix = "registry.k8s.io"\nlocation = "artifactory.corp.example/k8s-remote"\n'
            '[[registry]]\nprefix = "registry.k8s.io/ingress-nginx"\nlocation = "harbor.corp.example/ingress"\n')
    view = _view(tmp_path, {SYSTEM: text})
    route, _ = _plan(view, "registry.k8s.io/ingress-nginx/controller:v1.11.2")
    assert route.endpoints[0].url == "https://harbor.corp.example/v2"
    assert route.endpoints[0].repository == "ingress/controller"
    route, _ = _plan(view, "registry.k8s.io/pause:3.10")
    assert route.endpoints[0].repository == "k8s-remote/pause"
    assert route.endpoints[0].source == f"{SYSTEM}:3"


def test_docker_io_alpine_prefix_not_applied_pattern_22(tmp_path: Path) -> None:
    """Pattern 22: prefix docker.io/alpine never matches docker.io/library/alpine: mirror.not-applied."""
    text = '[[registry]]\nprefix = "docker.io/alpine"\nlocation = "docker.io/alpine"\n[[registry.mirror]]\nlocation = "mirror.corp.example/alpine"\n'
    route, findings = _plan(_view(tmp_path, {SYSTEM: text}), "docker.io/library/alpine:3.20")
    assert _urls(route) == [("upstream", "https://registry-1.docker.io/v2", "untested")]
    miss = next(f for f in findings if f.code == "mirror.not-applied")
    assert miss.severity == "warning"
    assert miss.evidence["line"] == 2 and miss.evidence["value"] == "docker.io/alpine"
    assert miss.fix.params["new_value"] == "docker.io/library/alpine"
    assert miss.fix.kind == "edit" and miss.fix.restart == "reload crio"


def test_near_misses_port_wildcard_apex_and_index_host(tmp_path: Path) -> None:
    """A prefix with another port, a wildcard for the apex, or index.docker.io is reported as not applied."""
    text = ('[[registry]]\nprefix = "registry.lan:5000"\nlocation = "registry.lan:5000"\ninsecure = true\n'
            '[[registry]]\nprefix = "*.corp.example"\nlocation = "proxy.corp.example"\n'
            '[[registry]]\nprefix = "index.docker.io"\nlocation = "mirror.corp.example/hub"\n')
    view = _view(tmp_path, {SYSTEM: text})
    for image, prefix in (("registry.lan/app:1", "registry.lan:5000"), ("corp.example/app:1", "*.corp.example"),
                          ("docker.io/library/busybox", "index.docker.io")):
        _, findings = _plan(view, image)
        assert [f.evidence["value"] for f in findings if f.code == "mirror.not-applied"] == [prefix], image
    route, findings = _plan(view, "build.corp.example/app:1")
    assert route.endpoints[0].url == "https://proxy.corp.example/v2"
    assert findings == []


def test_blocked_without_mirrors_refuses(tmp_path: Path) -> None:
    """blocked = true with no usable mirror: every endpoint skipped and config.blocked is an error."""
    dropin = '[[registry]]\nlocation = "docker.io"\nblocked = true\n'
    route, findings = _plan(_view(tmp_path, {f"{DROPINS}/99-block-hub.conf": dropin}), "docker.io/library/nginx")
    assert route.tried() == ()
    assert "is blocked in registries.conf" in route.endpoints[0].reason
    blocked = next(f for f in findings if f.code == "config.blocked")
    assert blocked.severity == "error"
    assert blocked.evidence["file"] == f"{DROPINS}/99-block-hub.conf" and blocked.evidence["line"] == 3
    assert blocked.fix.params == {"file": f"{DROPINS}/99-block-hub.conf", "line": 3, "prefix": "docker.io",
                                  "key": "blocked", "value": False}


def test_blocked_with_mirrors_tries_only_mirrors(tmp_path: Path) -> None:
    """NeverContactSource: a blocked primary is skipped but its mirrors are still tried (info)."""
    text = ('[[registry]]\nprefix = "quay.io/openshift-release-dev"\nlocation = "quay.io/openshift-release-dev"\n'
            'blocked = true\n[[registry.mirror]]\nlocation = "mirror.registry.example.com:5000/ocp4"\n')
    route, findings = _plan(_view(tmp_path, {SYSTEM: text}), f"quay.io/openshift-release-dev/ocp-release@{DIGEST}")
    assert [(e.role, e.status) for e in route.endpoints] == [("mirror", "untested"), ("upstream", "skipped")]
    blocked = next(f for f in findings if f.code == "config.blocked")
    assert blocked.severity == "info"


def test_mirror_under_a_blocked_entry_is_skipped(tmp_path: Path) -> None:
    """A mirror whose own name falls under a blocked entry fails before any request."""
    text = (HUB + '\n[[registry]]\nlocation = "mirror.gcr.io"\nblocked = true\n')
    route, findings = _plan(_view(tmp_path, {SYSTEM: text}), "docker.io/library/nginx")
    assert route.endpoints[0].status == "skipped"
    assert "mirror.gcr.io is blocked" in route.endpoints[0].reason
    assert any(f.code == "mirror.skipped" and f.evidence["key"] == "blocked" for f in findings)


def test_insecure_turns_verify_off_and_allows_http(tmp_path: Path) -> None:
    """insecure = true: no verification, plain-HTTP fallback, reason names the file line."""
    text = '[[registry]]\nlocation = "registry.lan:5000"\ninsecure = true\n'
    route, _ = _plan(_view(tmp_path, {SYSTEM: text}), "registry.lan:5000/team/app:2")
    ep = route.endpoints[0]
    assert ep.url == "https://registry.lan:5000/v2"
    assert ep.tls.verify is False and ep.http_fallback is True
    assert ep.tls.verify_reason == f"insecure = true ({SYSTEM}:2)"


def test_certs_dir_chain_first_existing_no_merge(tmp_path: Path) -> None:
    """/etc/containers/certs.d/<host> wins over /etc/docker/certs.d/<host>, which is reported unused."""
    files = {
        "/etc/containers/certs.d/registry.corp.example:5000/ca.crt": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
        "/etc/docker/certs.d/registry.corp.example:5000/client.cert": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
        "/etc/docker/certs.d/registry.corp.example:5000/client.key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
    }
    route, findings = _plan(_view(tmp_path, files), "registry.corp.example:5000/app:1")
    tls = route.endpoints[0].tls
    assert tls.ca_files == ("/etc/containers/certs.d/registry.corp.example:5000/ca.crt",)
    assert tls.client_cert == ()
    unused = next(f for f in findings if f.code == "config.hosts-dir-unused")
    assert unused.subject == "/etc/docker/certs.d/registry.corp.example:5000"


def test_misnamed_certs_dir_is_reported(tmp_path: Path) -> None:
    """certs.d/<host> without the port the image uses is never read: hosts-dir-misnamed."""
    files = {"/etc/containers/certs.d/registry.corp.example/ca.crt": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"}
    route, findings = _plan(_view(tmp_path, files), "registry.corp.example:5000/app:1")
    assert route.endpoints[0].tls.ca_files == ()
    assert any(f.code == "config.hosts-dir-misnamed" for f in findings)


def test_credentials_per_endpoint_host(tmp_path: Path) -> None:
    """Each endpoint's credentials come from the auth entry for its own name; mirrors don't get Hub's."""
    auth = ('{\n  "auths": {\n    "docker.io": {"auth": "aHVidXNlcjpodWJwYXNz"},\n'
            '    "harbor.corp.example": {"auth": "cm9ib3QkY2k6czNjcjN0"}\n  }\n}\n')
    route, _ = _plan(_view(tmp_path, {SYSTEM: HUB, "/run/containers/0/auth.json": auth}), "docker.io/library/nginx")
    creds = {e.host: e.credentials for e in route.endpoints}
    assert creds["mirror.gcr.io"] is None
    assert creds["harbor.corp.example"] == "/run/containers/0/auth.json:4 (harbor.corp.example)"
    assert creds["registry-1.docker.io"] == "/run/containers/0/auth.json:3 (docker.io)"
    assert any("imagePullSecrets" in n for n in route.notes)


def test_broken_auth_file_fails_endpoints(tmp_path: Path) -> None:
    """A broken auth file in the chain fails every endpoint before any request (public images too)."""
    route, _ = _plan(_view(tmp_path, {"/root/.docker/config.json": '{"auths": {"ghcr.io": {"auth": "eDp5"},}}'}),
                     "ghcr.io/fluxcd/flux-cli:v2.3.0")
    assert route.endpoints[0].status == "failed"
    assert "reading JSON file" in route.endpoints[0].reason


def test_refused_configuration_has_no_route(tmp_path: Path) -> None:
    """Pattern 23 in a drop-in: no endpoint at all, and a note naming the error."""
    dropin = '[[registry]]\nprefix = "docker.io"\nlocation = "https://mirror.corp.example"\n'
    route, findings = _plan(_view(tmp_path, {SYSTEM: HUB, f"{DROPINS}/10-mirror.conf": dropin}), "docker.io/library/nginx")
    assert route.endpoints == () and findings == []
    assert any("URI schemes are not supported" in n for n in route.notes)


def test_location_that_is_not_a_host_fails_rewrite(tmp_path: Path) -> None:
    """A mirror location without a dot or port ("mirror/hub") rewrites to a non-canonical name: no route."""
    text = '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "localmirror/hub"\n'
    route, findings = _plan(_view(tmp_path, {SYSTEM: text}), "docker.io/library/nginx")
    assert route.endpoints == ()
    err = next(f for f in findings if f.code == "config.invalid-value")
    assert err.evidence["error"] == "rewriting reference: repository name must be canonical"
    assert err.evidence["line"] == 5


def test_proxy_from_crio_unit_environment(tmp_path: Path) -> None:
    """Endpoints carry the proxy decision from crio.service's environment file, NO_PROXY included."""
    files = {
        "/usr/lib/systemd/system/crio.service": CRIO_UNIT,
        "/etc/sysconfig/crio": ("CRIO_CONFIG_OPTIONS=\nHTTPS_PROXY=http://proxy.corp.example:3128\n"
                                "NO_PROXY=.corp.example,10.0.0.0/8\n"),
        SYSTEM: HUB,
    }
    view = _view(tmp_path, files)
    route, _ = _plan(view, "docker.io/library/nginx")
    proxies = {e.host: e.proxy for e in route.endpoints}
    assert proxies["mirror.gcr.io"] == "http://proxy.corp.example:3128"
    assert proxies["harbor.corp.example"] is None
    assert view.proxy_env.sources["HTTPS_PROXY"] == "/etc/sysconfig/crio:2"


def test_prefix_without_port_matches_ported_reference_with_note(tmp_path: Path) -> None:
    """The containers/image quirk: prefix registry.lan matches registry.lan:5000/..., noted on the route."""
    text = '[[registry]]\nlocation = "registry.lan"\ninsecure = true\n'
    route, _ = _plan(_view(tmp_path, {SYSTEM: text}), "registry.lan:5000/app:1")
    assert route.endpoints[0].url == "https://registry.lan:5000/v2"
    assert route.endpoints[0].tls.verify is False
    assert any("quirk" in n for n in route.notes)
