"""Fix catalogue, containerd: legacy mirrors/TLS to hosts.toml, config_path, credentials key, hosts.toml edits.
The installed containerd (1.6) validates every config.toml written for 1.x."""

from __future__ import annotations

import tomllib
from pathlib import Path

from regtui import engine, fixes
from regtui.host import Host
from regtui.options import CheckOptions
from test_fix_kit import CONTAINERD_16, ca_pem, containerd_validator, make_root, roundtrip

CFG = "/etc/containerd/config.toml"
DPKG = "/var/lib/dpkg/status"
LEGACY = '''# containerd config (hand-written)
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"  # keep me

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"

    # corporate mirror
    [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
      [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
        endpoint = ["https://mirror.corp.example", "https://registry-1.docker.io"]

    [plugins."io.containerd.grpc.v1.cri".registry.configs."mirror.corp.example".tls]
      ca_file = "/etc/ssl/corp-ca.pem"
    [plugins."io.containerd.grpc.v1.cri".registry.configs."mirror.corp.example".auth]
      username = "puller"
      password = "s3cret"

[metrics]
  address = "127.0.0.1:1338"
'''


def _files(config: str, **more: str | bytes) -> dict[str, str | bytes]:
    return {CFG: config, DPKG: CONTAINERD_16, "/etc/ssl/corp-ca.pem": ca_pem("Corp CA"), **more}


def test_mirrors_next_to_config_path_migrate_to_hosts_toml(tmp_path: Path) -> None:
    """Legacy mirrors + config_path (CRI does not load): mirrors and TLS move to hosts.toml, comments and auth stay."""
    validators = containerd_validator()
    root = make_root(tmp_path, _files(LEGACY), {CFG: 0o600})
    r = roundtrip(root, "config.mirrors-with-config-path", runtime="containerd", validators=validators)
    cfg = r.texts[CFG]
    assert "# containerd config (hand-written)" in cfg and 'sandbox_image = "registry.k8s.io/pause:3.9"  # keep me' in cfg
    assert "mirrors" not in cfg and ".tls]" not in cfg and 'password = "s3cret"' in cfg
    assert tomllib.loads(r.texts["/etc/containerd/certs.d/docker.io/hosts.toml"]) == {
        "server": "https://registry-1.docker.io",
        "host": {"https://mirror.corp.example": {"capabilities": ["pull", "resolve"], "ca": "/etc/ssl/corp-ca.pem"}}}
    assert [c for c in r.result.checks if c.name == "containerd config dump"][0].status == "ok"
    assert r.plan.restart == "restart containerd"
    assert "s3cret" not in fixes.render(r.plan)


def test_legacy_mirrors_without_config_path_set_one_directory(tmp_path: Path) -> None:
    """Legacy mirrors alone: hosts.toml written, config_path set to /etc/containerd/certs.d (a single directory)."""
    config = LEGACY.replace('    config_path = "/etc/containerd/certs.d"\n', "")
    root = make_root(tmp_path, _files(config))
    r = roundtrip(root, "config.legacy-registry-config", runtime="containerd", validators=containerd_validator())
    data = tomllib.loads(r.texts[CFG])
    assert data["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert "/etc/containerd/certs.d/docker.io/hosts.toml" in r.plan.files


def test_tls_only_host_gets_a_host_stub_for_containerd_1x(tmp_path: Path) -> None:
    """configs."reg".tls without a mirror: a root-level hosts.toml with an empty [host] (containerd < 2.0 needs one)."""
    config = '''version = 2
[plugins."io.containerd.grpc.v1.cri".registry.configs."reg.example:5000".tls]
  insecure_skip_verify = true
'''
    root = make_root(tmp_path, _files(config))
    r = roundtrip(root, "config.legacy-registry-config", runtime="containerd", validators=containerd_validator())
    hosts = tomllib.loads(r.texts["/etc/containerd/certs.d/reg.example:5000/hosts.toml"])
    assert hosts == {"server": "https://reg.example:5000", "skip_verify": True, "host": {}}


def test_containerd_2_tls_table_moves_to_hosts_toml(tmp_path: Path) -> None:
    """containerd 2.x ignores configs.*.tls: it is written as hosts.toml and config_path is set."""
    config = '''version = 3
[plugins."io.containerd.cri.v1.images".registry]
  config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.cri.v1.images".registry.configs."reg.example".tls]
  ca_file = "/etc/ssl/corp-ca.pem"
'''
    root = make_root(tmp_path, {CFG: config, "/etc/ssl/corp-ca.pem": ca_pem()})
    r = roundtrip(root, "config.ignored-key", runtime="containerd", containerd_version="2.1.4",
                  match=lambda f: "tls" in f.title)
    assert tomllib.loads(r.texts["/etc/containerd/certs.d/reg.example/hosts.toml"]) == {
        "server": "https://reg.example", "ca": "/etc/ssl/corp-ca.pem"}
    assert "tls" not in r.texts[CFG]


def test_config_path_set_when_hosts_dirs_exist(tmp_path: Path) -> None:
    """config_path empty on 1.6 with /etc/containerd/certs.d dirs: config_path is set in the CRI registry table."""
    config = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause:3.9"\n'
    hosts = 'server = "https://reg.example"\n\n[host."https://mirror.example"]\n  capabilities = ["pull", "resolve"]\n'
    root = make_root(tmp_path, {CFG: config, DPKG: CONTAINERD_16, "/etc/containerd/certs.d/reg.example/hosts.toml": hosts})
    r = roundtrip(root, "config.hosts-dir-unused", runtime="containerd", validators=containerd_validator(),
                  match=lambda f: f.fix.params.get("key") == "config_path")
    assert r.texts[CFG] == config + '\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'


def test_multi_directory_config_path_in_transfer_mode_becomes_one(tmp_path: Path) -> None:
    """containerd 2.2 transfer mode with config_path a:b: set to the first directory."""
    config = ('version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n'
              '  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"\n')
    hosts = 'server = "https://reg.example"\n[host."https://mirror.example"]\n  capabilities = ["pull", "resolve"]\n'
    root = make_root(tmp_path, {CFG: config, "/etc/containerd/certs.d/reg.example/hosts.toml": hosts})
    r = roundtrip(root, "config.hosts-dir-unused", runtime="containerd", containerd_version="2.2.2",
                  match=lambda f: f.fix.params.get("key") == "config_path")
    assert r.texts[CFG] == config.replace(":/etc/docker/certs.d", "")


def test_config_path_refused_while_legacy_mirrors_remain(tmp_path: Path) -> None:
    """Setting config_path next to legacy mirrors would stop the CRI plugin: the plan is refused and says why."""
    config = LEGACY.replace('    config_path = "/etc/containerd/certs.d"\n', "")
    root = make_root(tmp_path, _files(config, **{"/etc/containerd/certs.d/quay.io/hosts.toml": 'server = "https://quay.io"\n'}))
    host = Host(root=root)
    options = CheckOptions(root=str(root), runtime="containerd", offline=True)
    f = next(f for f in engine.plan(options, host).findings
             if f.code == "config.hosts-dir-unused" and f.fix and f.fix.params.get("key") == "config_path")
    p = fixes.plan(f, host, options=options)
    assert not p.can_apply and "config.legacy-registry-config" in p.blocked


def test_hub_credentials_copied_to_registry_1(tmp_path: Path) -> None:
    """configs."docker.io".auth is copied to configs."registry-1.docker.io".auth; the preview masks the password."""
    config = '''version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
  [plugins."io.containerd.grpc.v1.cri".registry.configs."docker.io".auth]
    username = "hubuser"
    password = "hub-pass-1234"
'''
    root = make_root(tmp_path, {CFG: config, DPKG: CONTAINERD_16}, {CFG: 0o600})
    r = roundtrip(root, "auth.wrong-key", runtime="containerd", validators=containerd_validator())
    data = tomllib.loads(r.texts[CFG])["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"]
    assert data["registry-1.docker.io"]["auth"] == {"username": "hubuser", "password": "hub-pass-1234"}
    assert "hub-pass-1234" not in fixes.render(r.plan)


def test_version_line_added_to_v1_file_with_v2_plugin_names(tmp_path: Path) -> None:
    """A version-less file using io.containerd.grpc.v1.cri on 1.6: `version = 2` is added, comments kept."""
    config = '# no version line\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
    root = make_root(tmp_path, {CFG: config, DPKG: CONTAINERD_16})
    r = roundtrip(root, "config.ignored-key", runtime="containerd", validators=containerd_validator())
    assert r.texts[CFG] == "# no version line\nversion = 2\n\n" + config.split("\n", 1)[1]


def test_hosts_toml_lookalike_key_renamed(tmp_path: Path) -> None:
    """insecure_skip_verify in a hosts.toml host table becomes skip_verify; the rest of the file is untouched."""
    hosts = ('server = "https://reg.example"\n\n# our mirror\n[host."https://mirror.example"]\n'
             '  capabilities = ["pull", "resolve"]\n  insecure_skip_verify = true  # self-signed\n')
    root = make_root(tmp_path, {CFG: 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                     '  config_path = "/etc/containerd/certs.d"\n', DPKG: CONTAINERD_16,
                                "/etc/containerd/certs.d/reg.example/hosts.toml": hosts})
    r = roundtrip(root, "config.ignored-key", runtime="containerd")
    assert r.texts["/etc/containerd/certs.d/reg.example/hosts.toml"] == hosts.replace("insecure_skip_verify", "skip_verify")


def test_hosts_toml_bad_capability_dropped(tmp_path: Path) -> None:
    """An unknown capability (containerd falls back to cert files) is dropped from the list."""
    hosts = 'server = "https://reg.example"\n[host."https://mirror.example"]\n  capabilities = ["pull", "resolve", "fetch"]\n'
    root = make_root(tmp_path, {CFG: 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                     '  config_path = "/etc/containerd/certs.d"\n', DPKG: CONTAINERD_16,
                                "/etc/containerd/certs.d/reg.example/hosts.toml": hosts})
    r = roundtrip(root, "config.invalid-value", runtime="containerd")
    assert r.texts["/etc/containerd/certs.d/reg.example/hosts.toml"] == hosts.replace(', "fetch"', "")


def test_misnamed_hosts_dir_renamed(tmp_path: Path) -> None:
    """certs.d/reg.example for reg.example:5000/app: renamed so containerd finds it."""
    hosts = 'server = "https://reg.example:5000"\n[host."https://reg.example:5000"]\n  skip_verify = true\n'
    root = make_root(tmp_path, {CFG: 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                     '  config_path = "/etc/containerd/certs.d"\n', DPKG: CONTAINERD_16,
                                "/etc/containerd/certs.d/reg.example/hosts.toml": hosts})
    r = roundtrip(root, "config.hosts-dir-misnamed", runtime="containerd", images=("reg.example:5000/app:1",))
    assert r.plan.files == ("/etc/containerd/certs.d/reg.example:5000/hosts.toml",
                            "/etc/containerd/certs.d/reg.example/hosts.toml")
    assert r.plan.remove_dirs == ("/etc/containerd/certs.d/reg.example",)
