"""Fix catalogue, mirrors: remove a dead mirror, move a slow one, switch a scheme, raise concurrency,
wherever the mirror is configured (daemon.json, hosts.toml, registries.conf, registries.yaml, legacy mirrors)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from regtui.config import _yaml
from regtui.findings import finding, fix
from test_fix_kit import CONTAINERD_16, DOCKER_27, containerd_validator, make_root, roundtrip

DJ = "/etc/docker/daemon.json"
HOSTS = "/etc/containerd/certs.d/docker.io/hosts.toml"
CFG = "/etc/containerd/config.toml"
CONTAINERD_CFG = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'


def _mirror_finding(code: str, runtime: str, endpoint: str, source: str, **params: Any):  # type: ignore[no-untyped-def]
    """A mirror finding shaped as regtui.registry.diagnose / checks.mirrors build it."""
    host = endpoint.split("://", 1)[1].split("/", 1)[0]
    return finding(code, host, f"{runtime}: mirror {host}", runtime=runtime, evidence={"source": source},
                   fix=fix(code, host, f"fix {host}", files=[source.rsplit(':', 1)[0]], detail=runtime,
                           params={"runtime": runtime, "endpoint": endpoint, "source": source, **params}))


def test_dead_docker_mirror_removed(tmp_path: Path) -> None:
    """mirror.unreachable (Docker): the entry leaves registry-mirrors, the others and their layout stay."""
    text = '{\n  "registry-mirrors": [\n    "https://dead.example",\n    "https://good.example"\n  ]\n}\n'
    root = make_root(tmp_path, {DJ: text, "/var/lib/dpkg/status": DOCKER_27})
    f = _mirror_finding("mirror.unreachable", "docker", "https://dead.example/v2", f"{DJ}:3")
    r = roundtrip(root, "mirror.unreachable", runtime="docker", finding=f, expect_gone=None)
    assert r.texts[DJ] == '{\n  "registry-mirrors": [\n    "https://good.example"\n  ]\n}\n'


def test_dead_hosts_toml_mirror_removed(tmp_path: Path) -> None:
    """mirror.unreachable (containerd): its [host."..."] table goes; comments of the next table stay."""
    text = ('server = "https://registry-1.docker.io"\n\n[host."https://dead.example"]\n  capabilities = ["pull", "resolve"]\n\n'
            '# the good one\n[host."https://good.example"]\n  capabilities = ["pull", "resolve"]\n')
    root = make_root(tmp_path, {HOSTS: text, CFG: CONTAINERD_CFG, "/var/lib/dpkg/status": CONTAINERD_16})
    f = _mirror_finding("mirror.unreachable", "containerd", "https://dead.example/v2", f"{HOSTS}:3")
    r = roundtrip(root, "mirror.unreachable", runtime="containerd", finding=f, expect_gone=None)
    assert r.texts[HOSTS] == ('server = "https://registry-1.docker.io"\n\n# the good one\n[host."https://good.example"]\n'
                              '  capabilities = ["pull", "resolve"]\n')
    assert r.plan.restart == "none"


def test_last_hosts_toml_mirror_removed_leaves_the_server_as_its_host(tmp_path: Path) -> None:
    """mirror.unreachable, the only [host] table (containerd 1.6): the server takes its place with its TLS settings, so the file stays valid."""
    text = ('server = "https://registry.example:5000"\nskip_verify = true\n\n[host."https://dead.example"]\n'
            '  capabilities = ["pull", "resolve"]\n  ca = "/etc/ssl/dead.crt"\n')
    root = make_root(tmp_path, {HOSTS: text, CFG: CONTAINERD_CFG, "/var/lib/dpkg/status": CONTAINERD_16})
    f = _mirror_finding("mirror.unreachable", "containerd", "https://dead.example/v2", f"{HOSTS}:4")
    r = roundtrip(root, "mirror.unreachable", runtime="containerd", finding=f, expect_gone=None)
    assert tomllib.loads(r.texts[HOSTS]) == {
        "server": "https://registry.example:5000", "skip_verify": True,
        "host": {"https://registry.example:5000": {"capabilities": ["pull", "resolve"], "skip_verify": True}}}


def test_dead_registries_conf_mirror_removed(tmp_path: Path) -> None:
    """mirror.unreachable (CRI-O): the [[registry.mirror]] entry is removed."""
    text = ('[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "dead.example"\n\n'
            '[[registry.mirror]]\nlocation = "good.example"\n')
    root = make_root(tmp_path, {"/etc/containers/registries.conf": text})
    f = _mirror_finding("mirror.unreachable", "crio", "https://dead.example/v2", "/etc/containers/registries.conf:6")
    r = roundtrip(root, "mirror.unreachable", runtime="crio", finding=f, expect_gone=None)
    data = tomllib.loads(r.texts["/etc/containers/registries.conf"])
    assert data["registry"][0]["mirror"] == [{"location": "good.example"}]


def test_dead_k3s_endpoint_removed(tmp_path: Path) -> None:
    """mirror.unreachable (k3s): the endpoint line leaves registries.yaml."""
    text = "mirrors:\n  docker.io:\n    endpoint:\n      - https://dead.example\n      - https://good.example\n"
    root = make_root(tmp_path, {"/etc/rancher/k3s/registries.yaml": text})
    f = _mirror_finding("mirror.unreachable", "k3s", "https://dead.example/v2", "/etc/rancher/k3s/registries.yaml:4")
    r = roundtrip(root, "mirror.unreachable", runtime="k3s", finding=f, expect_gone=None)
    assert r.texts["/etc/rancher/k3s/registries.yaml"] == text.replace("      - https://dead.example\n", "")


def test_dead_legacy_containerd_endpoint_removed(tmp_path: Path) -> None:
    """mirror.unreachable (legacy mirrors): the endpoint leaves the list; containerd still accepts the file."""
    text = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
            '  endpoint = ["https://dead.example", "https://registry-1.docker.io"]\n')
    root = make_root(tmp_path, {CFG: text, "/var/lib/dpkg/status": CONTAINERD_16})
    f = _mirror_finding("mirror.unreachable", "containerd", "https://dead.example/v2", f"{CFG}:3")
    r = roundtrip(root, "mirror.unreachable", runtime="containerd", finding=f, expect_gone=None,
                  validators=containerd_validator())
    assert r.texts[CFG] == text.replace('"https://dead.example", ', "")


def test_slow_docker_mirror_moved_after_the_faster_one(tmp_path: Path) -> None:
    """mirror.slower-than-upstream: the slow mirror moves right after the faster one."""
    text = '{"registry-mirrors": ["https://slow.example", "https://fast.example", "https://third.example"]}\n'
    root = make_root(tmp_path, {DJ: text, "/var/lib/dpkg/status": DOCKER_27})
    f = _mirror_finding("mirror.slower-than-upstream", "docker", "https://slow.example/v2", f"{DJ}:1",
                        after="https://fast.example/v2")
    r = roundtrip(root, "mirror.slower-than-upstream", runtime="docker", finding=f, expect_gone=None)
    assert json.loads(r.texts[DJ])["registry-mirrors"] == ["https://fast.example", "https://slow.example",
                                                           "https://third.example"]


def test_slow_hosts_toml_mirror_moved(tmp_path: Path) -> None:
    """mirror.slower-than-upstream (containerd): the [host] table is moved after the faster one, with its sub-tables."""
    text = ('server = "https://registry-1.docker.io"\n\n[host."https://slow.example"]\n  capabilities = ["pull", "resolve"]\n'
            '  [host."https://slow.example".header]\n    x-team = "a"\n\n[host."https://fast.example"]\n'
            '  capabilities = ["pull", "resolve"]\n')
    root = make_root(tmp_path, {HOSTS: text, CFG: CONTAINERD_CFG, "/var/lib/dpkg/status": CONTAINERD_16})
    f = _mirror_finding("mirror.slower-than-upstream", "containerd", "https://slow.example/v2", f"{HOSTS}:3",
                        after="https://fast.example/v2")
    r = roundtrip(root, "mirror.slower-than-upstream", runtime="containerd", finding=f, expect_gone=None)
    assert list(tomllib.loads(r.texts[HOSTS])["host"]) == ["https://fast.example", "https://slow.example"]
    assert 'x-team = "a"' in r.texts[HOSTS]


def test_slow_k3s_endpoint_moved(tmp_path: Path) -> None:
    """mirror.slower-than-upstream (k3s): the endpoint line moves after the faster one."""
    text = "mirrors:\n  docker.io:\n    endpoint:\n      - https://slow.example\n      - https://fast.example\n"
    root = make_root(tmp_path, {"/etc/rancher/k3s/registries.yaml": text})
    f = _mirror_finding("mirror.slower-than-upstream", "k3s", "https://slow.example/v2", "/etc/rancher/k3s/registries.yaml:4",
                        after="https://fast.example/v2")
    r = roundtrip(root, "mirror.slower-than-upstream", runtime="k3s", finding=f, expect_gone=None)
    assert _yaml.loads(r.texts["/etc/rancher/k3s/registries.yaml"]).data["mirrors"]["docker.io"]["endpoint"] == [
        "https://fast.example", "https://slow.example"]


def test_http_mirror_scheme_switched_in_hosts_toml(tmp_path: Path) -> None:
    """mirror.http-mismatch: [host."https://m:5000"] becomes [host."http://m:5000"], body untouched."""
    text = 'server = "https://registry-1.docker.io"\n\n[host."https://m.example:5000"]\n  capabilities = ["pull", "resolve"]\n'
    root = make_root(tmp_path, {HOSTS: text, CFG: CONTAINERD_CFG, "/var/lib/dpkg/status": CONTAINERD_16})
    f = _mirror_finding("mirror.http-mismatch", "containerd", "https://m.example:5000/v2", f"{HOSTS}:3", scheme="http")
    r = roundtrip(root, "mirror.http-mismatch", runtime="containerd", finding=f, expect_gone=None)
    assert r.texts[HOSTS] == text.replace('"https://m.example:5000"', '"http://m.example:5000"')


def test_http_mirror_scheme_switched_in_daemon_json(tmp_path: Path) -> None:
    """mirror.http-mismatch (Docker): the mirror URL gets http://."""
    root = make_root(tmp_path, {DJ: '{"registry-mirrors": ["https://m.example:5000"]}\n', "/var/lib/dpkg/status": DOCKER_27})
    f = _mirror_finding("mirror.http-mismatch", "docker", "https://m.example:5000/v2", f"{DJ}:1", scheme="http")
    r = roundtrip(root, "mirror.http-mismatch", runtime="docker", finding=f, expect_gone=None)
    assert r.texts[DJ] == '{"registry-mirrors": ["http://m.example:5000"]}\n'


def test_plain_http_registry_listed_insecure_for_docker(tmp_path: Path) -> None:
    """mirror.http-mismatch on a registry's own endpoint (Docker): the host joins insecure-registries."""
    root = make_root(tmp_path, {DJ: '{\n  "debug": true\n}\n', "/var/lib/dpkg/status": DOCKER_27})
    f = _mirror_finding("mirror.http-mismatch", "docker", "https://reg.example:5000/v2", "default (registry)", scheme="http")
    r = roundtrip(root, "mirror.http-mismatch", runtime="docker", finding=f, expect_gone=None)
    assert json.loads(r.texts[DJ]) == {"debug": True, "insecure-registries": ["reg.example:5000"]}
    assert r.plan.restart == "reload docker"


def test_http_mirror_in_registries_conf_marked_insecure(tmp_path: Path) -> None:
    """mirror.http-mismatch (CRI-O): the mirror entry gets insecure = true (registries.conf has no scheme)."""
    text = '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "m.example:5000"\n'
    root = make_root(tmp_path, {"/etc/containers/registries.conf": text})
    f = _mirror_finding("mirror.http-mismatch", "crio", "https://m.example:5000/v2", "/etc/containers/registries.conf:6",
                        scheme="http")
    r = roundtrip(root, "mirror.http-mismatch", runtime="crio", finding=f, expect_gone=None)
    assert tomllib.loads(r.texts["/etc/containers/registries.conf"])["registry"][0]["mirror"] == [
        {"location": "m.example:5000", "insecure": True}]


def test_docker_download_concurrency_raised(tmp_path: Path) -> None:
    """pull.low-concurrency (Docker): max-concurrent-downloads is set (reloadable)."""
    root = make_root(tmp_path, {DJ: '{\n  "debug": true\n}\n', "/var/lib/dpkg/status": DOCKER_27})
    f = finding("pull.low-concurrency", "docker", "docker downloads 3 layers at a time", runtime="docker",
                fix=fix("pull.low-concurrency", "docker", "raise max-concurrent-downloads to 8", files=[DJ],
                        restart="reload docker", params={"runtime": "docker", "value": 8}))
    r = roundtrip(root, "pull.low-concurrency", runtime="docker", finding=f, expect_gone=None)
    assert json.loads(r.texts[DJ]) == {"debug": True, "max-concurrent-downloads": 8}


def test_containerd_download_concurrency_raised_in_cri(tmp_path: Path) -> None:
    """pull.low-concurrency (containerd 1.6, local pulls): the CRI plugin's max_concurrent_downloads."""
    root = make_root(tmp_path, {CFG: 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause:3.9"\n',
                                "/var/lib/dpkg/status": CONTAINERD_16})
    f = finding("pull.low-concurrency", "containerd", "containerd downloads 3 layers at a time", runtime="containerd",
                fix=fix("pull.low-concurrency", "containerd", "raise max_concurrent_downloads to 6", files=[CFG],
                        restart="restart containerd", params={"runtime": "containerd", "value": 6}))
    r = roundtrip(root, "pull.low-concurrency", runtime="containerd", finding=f, expect_gone=None,
                  validators=containerd_validator())
    assert r.texts[CFG].endswith('  sandbox_image = "pause:3.9"\n  max_concurrent_downloads = 6\n')


def test_containerd_concurrency_in_transfer_mode_goes_to_the_transfer_plugin(tmp_path: Path) -> None:
    """containerd 2.1+ transfer mode: the transfer plugin's limit (the CRI one would force local pulls)."""
    root = make_root(tmp_path, {CFG: "version = 3\n"})
    f = finding("pull.low-concurrency", "containerd", "containerd downloads 3 layers at a time", runtime="containerd",
                fix=fix("pull.low-concurrency", "containerd", "raise the limit", files=[CFG],
                        restart="restart containerd", params={"runtime": "containerd", "value": 6}))
    r = roundtrip(root, "pull.low-concurrency", runtime="containerd", finding=f, expect_gone=None,
                  containerd_version="2.1.4")
    assert tomllib.loads(r.texts[CFG])["plugins"]["io.containerd.transfer.v1.local"]["max_concurrent_downloads"] == 6


def test_slow_registries_conf_mirror_moved(tmp_path: Path) -> None:
    """mirror.slower-than-upstream (CRI-O): the [[registry.mirror]] block moves after the faster one."""
    text = ('[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = "slow.example"\n\n'
            '[[registry.mirror]]\nlocation = "fast.example"\n')
    root = make_root(tmp_path, {"/etc/containers/registries.conf": text})
    f = _mirror_finding("mirror.slower-than-upstream", "crio", "https://slow.example/v2",
                        "/etc/containers/registries.conf:6", after="https://fast.example/v2")
    r = roundtrip(root, "mirror.slower-than-upstream", runtime="crio", finding=f, expect_gone=None)
    assert [m["location"] for m in tomllib.loads(r.texts["/etc/containers/registries.conf"])["registry"][0]["mirror"]] == [
        "fast.example", "slow.example"]
