"""The crio runtime view: detection, crio.conf and its drop-ins, the daemon's environment, garbage input."""

from __future__ import annotations

import os
from pathlib import Path

from regtui.runtimes import crio
from regtui.runtimes.crio.config import load_config
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.refs import parse
from rootfs import line_of, write_tree

CRIO_CONF = """# The CRI-O configuration file specifies all of the available configuration
# options and command-line flags for the crio(8) OCI Kubernetes Container Runtime
# daemon, but in a TOML format that can be more easily modified and versioned.

[crio]

[crio.api]
listen = "/var/run/crio/crio.sock"

[crio.runtime]
default_runtime = "crun"

[crio.image]
default_transport = "docker://"
pause_image = "registry.k8s.io/pause:3.10"
insecure_registries = ["registry.lan:5000", "10.20.0.0/16"]
registries = ["docker.io", "quay.io"]
"""

CRIO_UNIT = """[Unit]
Description=Container Runtime Interface for OCI (CRI-O)
Documentation=https://github.com/cri-o/cri-o
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=-/etc/sysconfig/crio
Environment=GOTRACEBACK=crash
ExecStart=/usr/local/bin/crio \\
          $CRIO_CONFIG_OPTIONS \\
          $CRIO_RUNTIME_OPTIONS \\
          $CRIO_STORAGE_OPTIONS \\
          $CRIO_NETWORK_OPTIONS \\
          $CRIO_METRICS_OPTIONS
"""


def _host(tmp_path: Path, files: dict[str, str | bytes]) -> Host:
    return Host.from_args(write_tree(tmp_path, files), {})


def _exe(root: Path, path: str) -> None:
    write_tree(root, {path: "#!/bin/sh\n"})
    os.chmod(root / path.lstrip("/"), 0o755)


def test_detect_binaries_and_dirs(tmp_path: Path) -> None:
    """crio/podman/skopeo binaries, /etc/containers, /etc/crio and crio.service are detection evidence."""
    assert crio.detect(_host(tmp_path / "empty", {"/etc/hostname": "n\n"})) == []
    root = write_tree(tmp_path / "node", {"/etc/containers/policy.json": "{}", "/etc/crio/crio.conf": CRIO_CONF,
                                          "/usr/lib/systemd/system/crio.service": CRIO_UNIT})
    _exe(root, "/usr/bin/podman")
    _exe(root, "/usr/local/bin/crio")
    assert crio.detect(Host.from_args(root, {})) == [
        "/usr/local/bin/crio", "/usr/bin/podman", "/etc/containers", "/etc/crio",
        "/usr/lib/systemd/system/crio.service"]


def test_crio_conf_legacy_registries_is_ignored_key(tmp_path: Path) -> None:
    """[crio.image] registries has no effect: config.ignored-key pointing at its line with a drop-in fix."""
    view = crio.load(_host(tmp_path, {"/etc/crio/crio.conf": CRIO_CONF}), CheckOptions(), client_env={})
    ignored = next(f for f in view.findings if f.code == "config.ignored-key")
    assert ignored.evidence["file"] == "/etc/crio/crio.conf"
    assert ignored.evidence["line"] == line_of(CRIO_CONF, "registries = [\"docker.io\"")
    assert ignored.fix.params["new_key"] == "unqualified-search-registries"
    assert ignored.fix.params["value"] == ["docker.io", "quay.io"]
    assert view.summary["insecure_registries"] == ["registry.lan:5000", "10.20.0.0/16"]


def test_crio_insecure_registries_apply_to_crio_only(tmp_path: Path) -> None:
    """crio.conf insecure_registries turns verification off for an exact host or an IP in a CIDR."""
    view = crio.load(_host(tmp_path, {"/etc/crio/crio.conf": CRIO_CONF}), client_env={})
    for image in ("registry.lan:5000/app:1", "10.20.3.4:5000/app:1"):
        ep = view.plan(parse(image))[0].endpoints[0]
        assert ep.tls.verify is False and "insecure_registries" in ep.tls.verify_reason, image
    assert view.plan(parse("registry.lan:5001/app:1"))[0].endpoints[0].tls.verify is True


def test_dropin_global_auth_file_and_flag_precedence(tmp_path: Path) -> None:
    """crio.conf.d overrides crio.conf; --global-auth-file in ExecStart (via $CRIO_CONFIG_OPTIONS) wins."""
    files = {
        "/etc/crio/crio.conf": '[crio.image]\nglobal_auth_file = "/etc/crio/auth-main.json"\n',
        "/etc/crio/crio.conf.d/20-auth.conf": '[crio.image]\nglobal_auth_file = "/var/lib/kubelet/config.json"\n',
    }
    conf = load_config(_host(tmp_path / "a", files), client_env={})[0].crio
    assert conf.global_auth_file == "/var/lib/kubelet/config.json"
    assert conf.global_auth_file_source == "/etc/crio/crio.conf.d/20-auth.conf:2"
    files["/usr/lib/systemd/system/crio.service"] = CRIO_UNIT
    files["/etc/sysconfig/crio"] = "CRIO_CONFIG_OPTIONS=--global-auth-file=/etc/crio/pull-secret.json\n"
    conf = load_config(_host(tmp_path / "b", files), client_env={})[0].crio
    assert conf.global_auth_file == "/etc/crio/pull-secret.json"
    assert conf.global_auth_file_source == "/usr/lib/systemd/system/crio.service:10"


def test_env_file_without_unit_is_assumed(tmp_path: Path) -> None:
    """No crio.service under the root: /etc/sysconfig/crio is still read, and said to be assumed."""
    view = crio.load(_host(tmp_path, {"/etc/crio/crio.conf": CRIO_CONF,
                                      "/etc/sysconfig/crio": "HTTPS_PROXY=http://proxy.corp:3128\nNO_PROXY=.svc,.lan\n"}),
                     client_env={})
    assert view.proxy_env.https_proxy == "http://proxy.corp:3128"
    src = next(s for s in view.sources if s.path == "/etc/sysconfig/crio")
    assert "assumed" in src.detail


def test_dropin_without_unit_applies_after_the_packaged_env_file(tmp_path: Path) -> None:
    """A crio.service.d drop-in with no unit file: /etc/sysconfig/crio is still read, with systemd's precedence."""
    dropin = ("[Service]\nEnvironment=HTTPS_PROXY=http://dropin.corp:3128 HTTP_PROXY=http://dropin.corp:3128\n"
              "EnvironmentFile=-/etc/crio/proxy.env\n")
    view = crio.load(_host(tmp_path, {
        "/etc/systemd/system/crio.service.d/10-proxy.conf": dropin,
        "/etc/sysconfig/crio": "HTTPS_PROXY=http://sysconfig.corp:3128\nNO_PROXY=.first\n",
        "/etc/crio/proxy.env": "NO_PROXY=.second\n"}), client_env={})
    env = view.proxy_env
    # EnvironmentFile= beats Environment=; of two files the later one wins; the drop-in's file comes later.
    assert (env.https_proxy, env.sources["HTTPS_PROXY"]) == ("http://sysconfig.corp:3128", "/etc/sysconfig/crio:1")
    assert (env.no_proxy, env.sources["NO_PROXY"]) == (".second", "/etc/crio/proxy.env:1")
    assert (env.http_proxy, env.sources["HTTP_PROXY"]) == (
        "http://dropin.corp:3128", "/etc/systemd/system/crio.service.d/10-proxy.conf:2")
    assert "assumed" in next(s for s in view.sources if s.path == "/etc/sysconfig/crio").detail


def test_unit_without_the_env_file_does_not_read_it(tmp_path: Path) -> None:
    """A crio.service that names no EnvironmentFile: /etc/sysconfig/crio is not CRI-O's environment."""
    view = crio.load(_host(tmp_path, {"/etc/systemd/system/crio.service": "[Service]\nExecStart=/usr/bin/crio\n",
                                      "/etc/sysconfig/crio": "HTTPS_PROXY=http://sysconfig.corp:3128\n"}),
                     client_env={"HTTPS_PROXY": "http://shell.corp:3128"})
    assert view.proxy_env.https_proxy == ""


def test_podman_reads_shell_override_crio_does_not(tmp_path: Path) -> None:
    """With CRI-O present, a shell CONTAINERS_REGISTRIES_CONF is shown as read by podman only."""
    files = {"/etc/crio/crio.conf": CRIO_CONF, "/etc/containers/registries.conf": 'unqualified-search-registries = ["docker.io"]\n',
             "/home/ci/registries.conf": 'unqualified-search-registries = ["quay.io"]\n'}
    view = crio.load(_host(tmp_path, files), client_env={"CONTAINERS_REGISTRIES_CONF": "/home/ci/registries.conf"})
    assert view.summary["unqualified_search_registries"] == ["docker.io"]
    note = next(s for s in view.sources if s.path == "/home/ci/registries.conf")
    assert note.status == "ignored" and "CRI-O does not" in note.detail


def test_garbage_crio_conf_is_parse_error(tmp_path: Path) -> None:
    """An unparsable crio.conf drop-in is a parse error with its line; a wrong type is an invalid value."""
    view = crio.load(_host(tmp_path, {"/etc/crio/crio.conf": CRIO_CONF,
                                      "/etc/crio/crio.conf.d/01-broken.conf": "[crio.image\nglobal_auth_file = 1\n"}),
                     client_env={})
    err = next(f for f in view.findings if f.code == "config.parse-error")
    assert err.evidence["file"] == "/etc/crio/crio.conf.d/01-broken.conf" and err.evidence["line"] == 1
    view = crio.load(_host(tmp_path / "b", {"/etc/crio/crio.conf": "[crio.image]\nglobal_auth_file = 1\n"}), client_env={})
    err = next(f for f in view.findings if f.code == "config.invalid-value")
    assert err.evidence["line"] == 2 and err.fix.restart == "restart crio"


def test_garbage_everywhere_never_raises(tmp_path: Path) -> None:
    """Binary junk in every file the view reads gives findings, never an exception."""
    junk = b"\x00\xff\xfe\x89PNG\r\n\x1a\n[[[=\"\n"
    paths = ["/etc/containers/registries.conf", "/etc/containers/registries.conf.d/01.conf",
             "/root/.config/containers/registries.conf.d/02.conf", "/var/cache/containers/short-name-aliases.conf",
             "/etc/crio/crio.conf", "/etc/crio/crio.conf.d/01.conf", "/run/containers/0/auth.json",
             "/root/.config/containers/auth.json", "/root/.docker/config.json", "/root/.dockercfg",
             "/etc/sysconfig/crio", "/etc/systemd/system/crio.service.d/x.conf",
             "/etc/containers/certs.d/docker.io/ca.crt"]
    view = crio.load(_host(tmp_path, {p: junk for p in paths}), client_env={})
    codes = {f.code for f in view.findings}
    assert "config.parse-error" in codes
    route, _ = view.plan(parse("alpine"))
    assert route.endpoints == () and route.notes


def test_wrong_shapes_never_raise(tmp_path: Path) -> None:
    """Strings where tables are expected and vice versa: findings, not exceptions."""
    files = {
        "/etc/containers/registries.conf": 'registry = "docker.io"\naliases = ["x"]\ncredential-helpers = "pass"\n',
        "/etc/containers/registries.conf.d/01.conf": '[[registry]]\nmirror = "x"\n[[registry]]\nprefix = 5\n',
        "/etc/crio/crio.conf": 'crio = "x"\n',
        "/run/containers/0/auth.json": '["quay.io"]',
        "/root/.docker/config.json": '{"auths": {"quay.io": "abc"}, "credHelpers": ["x"]}',
        "/root/.dockercfg": '{"quay.io": {"auth": 5}}',
    }
    view = crio.load(_host(tmp_path, files), client_env={})
    assert {"config.invalid-value"} <= {f.code for f in view.findings}
    assert view.plan(parse("quay.io/a/b:1"))[0].endpoints == ()


def test_every_finding_has_file_and_line_keys(tmp_path: Path) -> None:
    """Provenance: each finding's evidence names a file and a line (possibly unknown)."""
    files = {
        "/etc/containers/registries.conf": ('unqualified-search-registries = ["a.example", "b.example"]\n'
                                            'short-name-mode = "enforcing"\n[[registry]]\nlocation = "quay.io"\n'
                                            'mirror-by-digest = true\n'),
        "/run/containers/0/auth.json": '{"auths": {"quay.io": {"auth": "???"}}}',
        "/etc/crio/crio.conf": CRIO_CONF,
    }
    view = crio.load(_host(tmp_path, files), client_env={})
    findings = view.findings + view.plan(parse("docker.io/alpine:3"))[1]
    assert findings
    for f in findings:
        assert "file" in f.evidence and "line" in f.evidence, f.code
        assert f.runtime == "crio"
