"""containerd config.toml (v1-v4, imports, CRI registry, pull mode, versions) read as containerd reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regtui.cli import main
from regtui.runtimes import containerd
from regtui.runtimes.containerd.config import load_config
from regtui.runtimes.containerd.model import DEFAULT_CONFIG_PATH_22
from regtui.runtimes.containerd.versions import installed_version, parse_version
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.refs import parse
from rootfs import line_of, write_tree

CONFIG = "/etc/containerd/config.toml"
CERTS = "/etc/containerd/certs.d"

# A kubeadm node on containerd 1.6/1.7: `containerd config default`, trimmed, SystemdCgroup on.
KUBEADM_V2 = """version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = true
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"
"""

# containerd 2.x `config default` style, with the multi-directory config_path from the docs.
DEFAULT_V3 = """version = 3

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'

  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true
"""

HUB_HOSTS = """server = "https://registry-1.docker.io"

[host."https://mirror.gcr.io"]
  capabilities = ["pull", "resolve"]
"""

DPKG_STATUS = """Package: runc
Status: install ok installed
Version: 1.1.12-1

Package: containerd.io
Status: install ok installed
Priority: optional
Section: devel
Maintainer: Containerd team <help@containerd.io>
Architecture: amd64
Version: 1.7.27-1
Provides: containerd, runc
Description: An open and reliable container runtime
"""


def _host(tmp_path: Path, files: dict[str, str | bytes]) -> Host:
    """A fake root with these files."""
    return Host(root=write_tree(tmp_path, files))


def _load(host: Host, version: str | None):
    """containerd.load with the installed version given (None: unknown)."""
    return containerd.load(host, CheckOptions(containerd_version=version))


def _codes(findings) -> list[str]:
    """The codes of findings, in order."""
    return [f.code for f in findings]


def _one(findings, code: str):
    """The single finding with this code (fails with the list otherwise)."""
    matches = [f for f in findings if f.code == code]
    assert len(matches) == 1, [(f.code, f.title) for f in findings]
    return matches[0]


def test_kubeadm_v2_config_on_1_7(tmp_path):
    """A realistic v2 file: config_path read from the grpc.v1.cri registry table, local pull, no errors."""
    view = _load(_host(tmp_path, {CONFIG: KUBEADM_V2}), "1.7.27")
    assert view.name == "containerd"
    assert view.summary["config_path"] == CERTS
    assert view.summary["config_path_source"] == f"{CONFIG}:{line_of(KUBEADM_V2, 'config_path')}"
    assert view.summary["pull_mode"] == "local pull"
    assert view.summary["max_concurrent_downloads"] == 3
    assert not [f for f in view.findings if f.severity == "error"]


def test_garbage_config_toml_stops_containerd(tmp_path):
    """Garbage bytes: config.parse-error (error, says containerd will not start), and no route."""
    host = _host(tmp_path, {CONFIG: b"version = 2\n\x00\xff\xfe\x13[plugins\n\x89PNG\r\n"})
    view = _load(host, "1.7.27")
    f = _one(view.findings, "config.parse-error")
    assert f.severity == "error" and "refuses to start" in f.detail
    assert (f.evidence["file"], f.evidence["line"], f.evidence["column"]) == (CONFIG, 2, 2)
    assert view.summary["starts"] is False
    route, findings = view.plan(parse("nginx:1.27"))
    assert route.endpoints == () and "does not start" in route.notes[0]


def test_toml_syntax_error_has_row_and_column(tmp_path):
    """A syntax error keeps its line and column in the evidence."""
    text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d\n'
    f = _one(_load(_host(tmp_path, {CONFIG: text}), "1.7.27").findings, "config.parse-error")
    assert f.evidence["line"] == 3 and f.evidence["column"]


def test_missing_config_means_defaults(tmp_path):
    """No config.toml: containerd runs on defaults (config_path empty before 2.2), no error."""
    cfg = load_config(_host(tmp_path, {"/etc/": ""}), version=installed_version(Host(root=tmp_path), CheckOptions(containerd_version="1.7.2")))
    assert cfg.starts and cfg.config_path == "" and cfg.sources[0].status == "missing"


def test_config_that_is_a_directory(tmp_path):
    """config.toml is a directory: config.permission, no traceback, and containerd does not start."""
    view = _load(_host(tmp_path, {f"{CONFIG}/": ""}), "1.7.27")
    assert _one(view.findings, "config.permission").evidence["file"] == CONFIG
    assert view.summary["starts"] is False


def test_v1_file_with_v2_plugin_names_is_ignored_on_1_x(tmp_path):
    """No `version = 2`: containerd 1.x reads plugins.cri only, so the grpc.v1.cri registry is ignored."""
    text = '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
    host = _host(tmp_path, {CONFIG: text, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS})
    view = _load(host, "1.6.20")
    f = _one(view.findings, "config.ignored-key")
    assert f.evidence["line"] == 1 and f.fix.params["key"] == "version" and f.fix.params["value"] == 2
    assert view.summary["config_path"] == ""
    assert "config.hosts-dir-unused" in _codes(view.findings)


def test_v1_file_with_short_names_works_on_1_x_and_2_x(tmp_path):
    """plugins.cri in a version-less file is read by 1.x, and migrated by 2.x."""
    text = '[plugins.cri.registry]\n  config_path = "/etc/containerd/certs.d"\n'
    host = _host(tmp_path, {CONFIG: text})
    assert _load(host, "1.6.20").summary["config_path"] == CERTS
    assert _load(host, "2.0.4").summary["config_path"] == CERTS


@pytest.mark.parametrize("file_version, installed, starts", [(3, "1.7.27", False), (4, "2.1.4", False),
                                                             (4, "2.3.0", True), (5, "2.3.0", False)])
def test_unsupported_config_version(tmp_path, file_version, installed, starts):
    """A version the installed containerd rejects: config.version-mismatch at the version line."""
    text = f"version = {file_version}\n\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d'\n"
    view = _load(_host(tmp_path, {CONFIG: text}), installed)
    mismatches = [f for f in view.findings if f.code == "config.version-mismatch"]
    assert view.summary["starts"] is starts
    if starts:
        assert mismatches == []
    else:
        assert mismatches[0].severity == "error" and mismatches[0].evidence["line"] == 1
        assert mismatches[0].evidence["value"] == file_version


def test_v3_on_1_6_starts_but_ignores_v3_tables(tmp_path):
    """containerd 1.6 does not check the version: it boots and ignores the io.containerd.cri.v1.images tables."""
    view = _load(_host(tmp_path, {CONFIG: DEFAULT_V3}), "1.6.20")
    assert view.summary["starts"] is True and view.summary["config_path"] == ""
    assert "config.version-mismatch" in _codes(view.findings)
    assert "config.ignored-key" in _codes(view.findings)


def test_v2_plugin_names_in_v3_file_are_not_migrated(tmp_path):
    """version = 3 with a grpc.v1.cri registry table: not migrated, so config_path stays unset."""
    text = 'version = 3\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
    view = _load(_host(tmp_path, {CONFIG: text}), "2.0.4")
    f = _one(view.findings, "config.version-mismatch")
    assert f.evidence["line"] == 3
    assert "io.containerd.cri.v1.images" in f.fix.summary
    assert view.summary["config_path"] == ""


def test_v2_file_is_migrated_on_2_x(tmp_path):
    """A v2 file on containerd 2.x: the grpc.v1.cri registry is migrated and used."""
    view = _load(_host(tmp_path, {CONFIG: KUBEADM_V2}), "2.0.4")
    assert view.summary["config_path"] == CERTS
    assert not [f for f in view.findings if f.severity == "error"]


def test_mirrors_with_config_path_stop_the_cri(tmp_path):
    """Pattern 14: mirrors next to config_path; the CRI plugin does not load; the fix writes hosts.toml."""
    text = KUBEADM_V2 + ('    [plugins."io.containerd.grpc.v1.cri".registry.mirrors]\n'
                         '      [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
                         '        endpoint = ["https://mirror.gcr.io", "https://registry-1.docker.io"]\n')
    view = _load(_host(tmp_path, {CONFIG: text}), "1.7.27")
    f = _one(view.findings, "config.mirrors-with-config-path")
    assert f.severity == "error" and "unknown service runtime.v1.RuntimeService" in f.detail
    assert f.evidence["line"] == line_of(text, "endpoint =")
    assert f.fix.restart == "restart containerd"
    plan = f.fix.params["hosts_toml"]
    assert set(plan) == {f"{CERTS}/docker.io/hosts.toml"}
    assert 'server = "https://registry-1.docker.io"' in plan[f"{CERTS}/docker.io/hosts.toml"]
    assert '[host."https://mirror.gcr.io"]' in plan[f"{CERTS}/docker.io/hosts.toml"]
    assert view.summary["cri_loads"] is False
    route, _ = view.plan(parse("nginx"))
    assert route.endpoints == () and "unknown service" in route.notes[0]


# The killer.sh CKS environment: a v2 file with only mirrors, no config_path.
CKS_MIRRORS = """version = 2
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
  endpoint = ["https://registry-1.docker.io"]
"""


@pytest.mark.parametrize("installed, broken", [("2.2.0", True), ("2.2.1", True), ("2.2.2", False), ("2.1.4", False)])
def test_mirrors_only_hit_the_2_2_0_default_regression(tmp_path, installed, broken):
    """Pattern 14: on 2.2.0-2.2.1 the default config_path makes mirrors-only configs fail the CRI load."""
    view = _load(_host(tmp_path, {CONFIG: CKS_MIRRORS}), installed)
    conflicts = [f for f in view.findings if f.code == "config.mirrors-with-config-path"]
    assert bool(conflicts) is broken
    if broken:
        assert conflicts[0].fix.params["upgrade_to"] == "2.2.2"
        assert "regression" in conflicts[0].detail
    else:
        assert "config.legacy-registry-config" in _codes(view.findings)


def test_tls_with_config_path_stops_the_cri_on_1_x(tmp_path):
    """On 1.x, configs.tls next to config_path is also a CRI load failure."""
    text = KUBEADM_V2 + ('    [plugins."io.containerd.grpc.v1.cri".registry.configs."harbor.corp.example".tls]\n'
                         '      insecure_skip_verify = true\n')
    view = _load(_host(tmp_path, {CONFIG: text}), "1.6.20")
    f = _one(view.findings, "config.mirrors-with-config-path")
    assert "configs.tls" in f.title and view.summary["cri_loads"] is False


def test_configs_tls_is_ignored_on_2_x(tmp_path):
    """Pattern 15: configs."host".tls has no effect on 2.x; the fix is a hosts.toml with skip_verify."""
    text = """version = 3
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = '/etc/containerd/certs.d'
[plugins.'io.containerd.cri.v1.images'.registry.configs.'harbor.corp.example'.tls]
  insecure_skip_verify = true
  ca_file = '/etc/pki/harbor-ca.pem'
"""
    view = _load(_host(tmp_path, {CONFIG: text}), "2.0.4")
    f = _one(view.findings, "config.ignored-key")
    assert f.evidence["line"] == 4 and f.severity == "warning"
    assert f.fix.params["hosts_toml_path"] == f"{CERTS}/harbor.corp.example/hosts.toml"
    assert "skip_verify = true" in f.fix.params["hosts_toml"]
    assert 'ca = "/etc/pki/harbor-ca.pem"' in f.fix.params["hosts_toml"]
    route, _ = view.plan(parse("harbor.corp.example/team/app:1.0"))
    assert route.endpoints[0].tls.verify is True


def test_configs_tls_works_on_1_x_legacy(tmp_path):
    """On 1.7 without config_path, configs.tls applies to the endpoint (and is flagged as legacy)."""
    text = """version = 2
[plugins."io.containerd.grpc.v1.cri".registry.configs."harbor.corp.example".tls]
  insecure_skip_verify = true
"""
    view = _load(_host(tmp_path, {CONFIG: text}), "1.7.27")
    assert "config.legacy-registry-config" in _codes(view.findings)
    route, _ = view.plan(parse("harbor.corp.example/team/app:1.0"))
    assert route.endpoints[0].tls.verify is False and "insecure_skip_verify" in route.endpoints[0].tls.verify_reason


def test_docker_io_auth_key_is_never_used(tmp_path):
    """Pattern 16: configs."docker.io".auth is keyed wrong; the fix copies it under registry-1.docker.io."""
    text = KUBEADM_V2 + ('    [plugins."io.containerd.grpc.v1.cri".registry.configs."docker.io".auth]\n'
                         '      username = "ci-bot"\n      password = "dckr_pat_S3cr3tT0ken"\n')
    view = _load(_host(tmp_path, {CONFIG: text}), "1.7.27")
    f = _one(view.findings, "auth.wrong-key")
    assert f.evidence["line"] == line_of(text, 'configs."docker.io".auth')
    assert f.fix.params["to_host"] == "registry-1.docker.io"
    assert f.fix.params["new_key"].endswith('configs."registry-1.docker.io".auth')
    assert view.credentials("registry-1.docker.io") is None
    route, _ = view.plan(parse("nginx"))
    assert route.endpoints[-1].host == "registry-1.docker.io" and route.endpoints[-1].credentials is None


def test_credentials_keyed_by_endpoint_host(tmp_path):
    """Credentials come from configs."<endpoint host>".auth: user/password, identity token or base64 auth."""
    text = KUBEADM_V2 + """    [plugins."io.containerd.grpc.v1.cri".registry.configs."registry-1.docker.io".auth]
      auth = "Y2ktYm90OnBhc3N3b3Jk"
    [plugins."io.containerd.grpc.v1.cri".registry.configs."harbor.corp.example".auth]
      identitytoken = "eyJhbGciOi.token"
"""
    view = _load(_host(tmp_path, {CONFIG: text}), "1.7.27")
    hub = view.credentials("registry-1.docker.io")
    assert (hub.username, hub.secret, hub.kind) == ("ci-bot", "password", "basic")
    assert view.credentials("harbor.corp.example").kind == "identitytoken"
    assert "auth.wrong-key" not in _codes(view.findings)


def test_deprecated_auths_map_to_the_url_host(tmp_path):
    """auths."https://index.docker.io/v1/" becomes credentials for index.docker.io: the wrong key for Hub."""
    text = KUBEADM_V2 + ('    [plugins."io.containerd.grpc.v1.cri".registry.auths."https://index.docker.io/v1/"]\n'
                         '      auth = "Y2ktYm90OnBhc3N3b3Jk"\n'
                         '    [plugins."io.containerd.grpc.v1.cri".registry.auths."https://harbor.corp.example"]\n'
                         '      username = "robot$ci"\n      password = "x"\n')
    view = _load(_host(tmp_path, {CONFIG: text}), "1.7.27")
    assert view.credentials("harbor.corp.example").username == "robot$ci"
    assert _one(view.findings, "auth.wrong-key").evidence["key"] == "index.docker.io"
    assert "auths" in _one(view.findings, "config.legacy-registry-config").evidence["settings"]


def test_malformed_auth_blob(tmp_path):
    """An auth value that is not base64 of user:password is auth.malformed (error)."""
    text = KUBEADM_V2 + ('    [plugins."io.containerd.grpc.v1.cri".registry.configs."registry-1.docker.io".auth]\n'
                         '      auth = "not base64!"\n')
    f = _one(_load(_host(tmp_path, {CONFIG: text}), "1.7.27").findings, "auth.malformed")
    assert f.severity == "error" and f.evidence["value"] == "***"


def test_multi_dir_config_path_unused_in_transfer_mode(tmp_path):
    """Pattern 13: 2.1+ transfer service with a two-directory config_path reads no hosts.toml at all."""
    host = _host(tmp_path, {CONFIG: DEFAULT_V3, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS})
    view = _load(host, "2.1.4")
    assert view.summary["pull_mode"] == "transfer service"
    f = next(f for f in view.findings if f.code == "config.hosts-dir-unused" and f.severity == "warning")
    assert f.evidence["line"] == line_of(DEFAULT_V3, "config_path")
    assert f.fix.params["value"] == CERTS
    assert f.fix.params["alternative"]["key"] == "use_local_image_pull"
    route, findings = view.plan(parse("nginx:1.27"))
    assert [e.url for e in route.endpoints] == ["https://registry-1.docker.io/v2"]
    assert "mirror.not-applied" in _codes(findings)


def test_multi_dir_works_with_local_pull(tmp_path):
    """use_local_image_pull = true splits config_path correctly: the mirror is used."""
    text = DEFAULT_V3.replace("  snapshotter = 'overlayfs'", "  snapshotter = 'overlayfs'\n  use_local_image_pull = true")
    view = _load(_host(tmp_path, {CONFIG: text, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS}), "2.1.4")
    assert view.summary["pull_mode"] == "local pull"
    assert "use_local_image_pull" in view.summary["pull_mode_reason"]
    route, _ = view.plan(parse("nginx:1.27"))
    assert [e.host for e in route.endpoints] == ["mirror.gcr.io", "registry-1.docker.io"]


def test_transfer_incompatible_settings_force_local_pull(tmp_path):
    """max_concurrent_downloads != 3 makes the CRI fall back to local pull (CheckLocalImagePullConfigs)."""
    text = DEFAULT_V3.replace("  snapshotter = 'overlayfs'", "  snapshotter = 'overlayfs'\n  max_concurrent_downloads = 10")
    view = _load(_host(tmp_path, {CONFIG: text}), "2.1.4")
    assert view.summary["pull_mode"] == "local pull"
    assert "max_concurrent_downloads = 10" in view.summary["pull_mode_reason"]
    assert view.summary["max_concurrent_downloads"] == 10


def test_transfer_concurrency_comes_from_the_transfer_plugin(tmp_path):
    """In transfer mode the download limit is the transfer plugin's max_concurrent_downloads."""
    text = DEFAULT_V3 + "\n[plugins.'io.containerd.transfer.v1.local']\n  max_concurrent_downloads = 8\n"
    view = _load(_host(tmp_path, {CONFIG: text}), "2.1.4")
    assert view.summary["max_concurrent_downloads"] == 8
    assert view.summary["max_concurrent_downloads_source"] == f"{CONFIG}:{line_of(text, 'max_concurrent_downloads')}"


def test_config_path_unset_while_hosts_dirs_exist(tmp_path):
    """certs.d/<host> dirs with config_path empty (1.7 default): config.hosts-dir-unused with an edit fix."""
    text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.9"\n'
    view = _load(_host(tmp_path, {CONFIG: text, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS}), "1.7.27")
    f = next(f for f in view.findings if f.code == "config.hosts-dir-unused" and f.severity == "warning")
    assert f.fix.params == {"table": 'plugins."io.containerd.grpc.v1.cri".registry', "key": "config_path",
                            "value": CERTS, "line": 2, "requires": None}
    assert f.evidence["line"] == 2


def test_certs_d_alone_has_no_duplicate_findings(tmp_path, capsys):
    """A root with only containerd's certs.d: config.hosts-dir-unused once, and no (code, subject) twice in the check."""
    write_tree(tmp_path, {f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS})
    assert main(["check", "--offline", "--root", str(tmp_path), "--format", "json"]) == 0
    pairs = [(f["code"], f["subject"]) for f in json.loads(capsys.readouterr().out)["findings"]]
    assert pairs == [("config.hosts-dir-unused", CERTS)]
    assert main(["check", "--offline", "--root", str(tmp_path), "--format", "json",
                 "--image", "docker.io/library/busybox:1", "--image", "127.0.0.1:5000/app:1"]) == 0
    pairs = [(f["code"], f["subject"]) for f in json.loads(capsys.readouterr().out)["findings"]]
    assert pairs and len(pairs) == len(set(pairs)), pairs


@pytest.mark.parametrize("installed, expected", [("2.1.4", ""), ("2.2.0", DEFAULT_CONFIG_PATH_22),
                                                 ("2.2.2", DEFAULT_CONFIG_PATH_22), ("1.6.20", "")])
def test_default_config_path_per_version(tmp_path, installed, expected):
    """The default config_path: empty up to 2.1, both certs.d dirs from 2.2."""
    view = _load(_host(tmp_path, {CONFIG: "version = 3\n" if installed >= "2" else "version = 2\n"}), installed)
    assert view.summary["config_path"] == expected
    assert view.summary["config_path_source"].startswith("default (")


def test_ctr_has_no_default_hosts_dir(tmp_path):
    """Pattern 12: hosts dirs exist, so an info finding recommends ctr --hosts-dir."""
    view = _load(_host(tmp_path, {CONFIG: KUBEADM_V2, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS}), "1.7.27")
    f = next(f for f in view.findings if f.code == "config.hosts-dir-unused")
    assert f.severity == "info" and f.fix.kind == "command"
    assert f.fix.params["command"] == f"ctr images pull --hosts-dir {CERTS} <image>"


def test_imports_are_merged_after_the_main_file(tmp_path):
    """imports (relative glob) override the main file: config_path comes from the imported drop-in."""
    main = KUBEADM_V2.replace('version = 2\n', 'version = 2\nimports = ["conf.d/*.toml"]\n')
    drop = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/srv/registry-hosts"\n'
    view = _load(_host(tmp_path, {CONFIG: main, "/etc/containerd/conf.d/50-registry.toml": drop}), "1.7.27")
    assert view.summary["config_path"] == "/srv/registry-hosts"
    assert view.summary["config_path_source"] == "/etc/containerd/conf.d/50-registry.toml:3"
    assert view.summary["imports"] == ["/etc/containerd/conf.d/50-registry.toml"]


def test_garbage_import_stops_containerd(tmp_path):
    """A broken imported file is as fatal as a broken main file."""
    main = 'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n'
    view = _load(_host(tmp_path, {CONFIG: main, "/etc/containerd/conf.d/x.toml": b"\xff\xfe\x00garbage"}), "1.7.27")
    assert view.summary["starts"] is False
    assert _one(view.findings, "config.parse-error").evidence["file"] == "/etc/containerd/conf.d/x.toml"


@pytest.mark.parametrize("snippet", [
    '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ["/etc/containerd/certs.d"]\n',
    '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = "https://mirror.gcr.io"\n',
    '[plugins."io.containerd.grpc.v1.cri".registry.headers]\n  X-Team = "infra"\n',
    '[plugins."io.containerd.grpc.v1.cri"]\n  max_concurrent_downloads = "5"\n',
    '[plugins."io.containerd.grpc.v1.cri".registry.configs."h".tls]\n  insecure_skip_verify = "yes"\n',
    '[plugins."io.containerd.grpc.v1.cri"]\n  registry = "oops"\n',
])
def test_wrong_types_are_invalid_values_not_tracebacks(tmp_path, snippet):
    """A string where a list is expected (and similar): config.invalid-value at its line; containerd exits."""
    text = "version = 2\n" + snippet
    view = _load(_host(tmp_path, {CONFIG: text}), "1.6.20")
    f = _one(view.findings, "config.invalid-value")
    assert f.severity == "error" and f.evidence["line"] in (2, 3)
    assert view.summary["starts"] is False


@pytest.mark.parametrize("text", ['version = "2"\n', 'version = 2\nplugins = 3\n', 'version = 2\nimports = "x.toml"\n'])
def test_wrong_top_level_types(tmp_path, text):
    """version, plugins and imports of the wrong type are reported, containerd does not start."""
    view = _load(_host(tmp_path, {CONFIG: text}), "1.7.27")
    assert _one(view.findings, "config.invalid-value").evidence["line"] in (1, 2)
    assert view.summary["starts"] is False


def test_version_from_options(tmp_path):
    """--containerd-version wins over everything."""
    v = installed_version(_host(tmp_path, {"/var/lib/dpkg/status": DPKG_STATUS}), CheckOptions(containerd_version="2.1"))
    assert (v.version, v.source) == ((2, 1, 0), "options")


def test_version_from_dpkg(tmp_path):
    """dpkg status under the root gives the containerd.io package version."""
    v = installed_version(_host(tmp_path, {"/var/lib/dpkg/status": DPKG_STATUS}), CheckOptions())
    assert v.version == (1, 7, 27) and "containerd.io" in v.source


def test_unknown_version_is_assumed_and_said(tmp_path):
    """No dpkg, not live: the version is assumed from the config version, and the summary says so."""
    view = _load(_host(tmp_path, {CONFIG: DEFAULT_V3}), None)
    assert view.summary["version_assumed"] is True
    assert view.summary["version_source"].startswith("assumed 2.1")
    route, _ = view.plan(parse("nginx"))
    assert route.assumed.startswith("assumed")


@pytest.mark.parametrize("text, expected", [("1.6.20~ds1-1+deb12u3", (1, 6, 20)), ("1:1.7.27-1", (1, 7, 27)),
                                            ("containerd containerd.io 1.7.27 05044ec", (1, 7, 27)),
                                            ("v2.1.4", (2, 1, 4)), ("garbage", None)])
def test_parse_version(text, expected):
    """Package and --version strings give (major, minor, patch)."""
    assert parse_version(text) == expected


def test_proxy_from_systemd_drop_in(tmp_path):
    """The daemon's proxy comes from the containerd.service drop-in; registry endpoints use it."""
    dropin = ('[Service]\nEnvironment="HTTPS_PROXY=http://proxy.corp.example:3128"\n'
              'Environment="NO_PROXY=localhost,127.0.0.1,10.0.0.0/8,.svc,.cluster.local,mirror.gcr.io"\n')
    host = _host(tmp_path, {CONFIG: KUBEADM_V2, f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS,
                            "/etc/systemd/system/containerd.service.d/http-proxy.conf": dropin})
    view = _load(host, "1.7.27")
    assert view.proxy_env.https_proxy == "http://proxy.corp.example:3128"
    route, _ = view.plan(parse("nginx"))
    mirror, upstream = route.endpoints
    assert mirror.proxy is None and "mirror.gcr.io" in mirror.proxy_reason
    assert upstream.proxy == "http://proxy.corp.example:3128"


def test_detect(tmp_path):
    """The config file and the binary under the root are the detection evidence."""
    host = _host(tmp_path, {CONFIG: KUBEADM_V2, "/usr/bin/containerd": "#!/bin/sh\n"})
    (tmp_path / "usr/bin/containerd").chmod(0o755)
    assert containerd.detect(host) == [CONFIG, "/usr/bin/containerd"]
    assert containerd.detect(_host(tmp_path / "empty", {"/etc/": ""})) == []


def test_secrets_never_leak(tmp_path):
    """Passwords, auth blobs, tokens and proxy credentials appear in no finding, source, summary or endpoint."""
    secrets = ["hunter2-S3cr3t", "Y2ktYm90Omh1bnRlcjItUzNjcjN0", "eyJhbGciOiJSUzI1NiJ9.s3cr3t", "pr0xyPa55",
               "ZGVwbG95OnRva2Vu"]
    text = f"""version = 2
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
  endpoint = ["https://deploy:{secrets[0]}@mirror.corp.example"]
[plugins."io.containerd.grpc.v1.cri".registry.configs."docker.io".auth]
  username = "ci-bot"
  password = "{secrets[0]}"
[plugins."io.containerd.grpc.v1.cri".registry.configs."mirror.corp.example".auth]
  auth = "{secrets[1]}"
[plugins."io.containerd.grpc.v1.cri".registry.configs."quay.io".auth]
  identitytoken = "{secrets[2]}"
[plugins."io.containerd.grpc.v1.cri".registry.configs."bad.example".auth]
  auth = "{secrets[1]}!!"
[plugins."io.containerd.grpc.v1.cri".registry.headers]
  Authorization = ["Basic {secrets[4]}"]
"""
    dropin = f'[Service]\nEnvironment="HTTPS_PROXY=http://svc:{secrets[3]}@proxy.corp.example:3128"\n'
    hosts = f'[host."https://harbor.corp.example"]\n  [host."https://harbor.corp.example".header]\n    Authorization = "Basic {secrets[4]}"\n'
    host = _host(tmp_path, {CONFIG: text, "/etc/systemd/system/containerd.service.d/proxy.conf": dropin,
                            f"{CERTS}/quay.io/hosts.toml": hosts})
    outputs = []
    for version in ("1.7.27", "2.1.4", "2.2.0"):
        view = _load(host, version)
        outputs += [f.to_dict() for f in view.findings] + [s.to_dict() for s in view.sources] + [view.summary]
        for ref in ("nginx", "quay.io/org/app:1"):
            route, findings = view.plan(parse(ref))
            outputs += [route.to_dict()] + [f.to_dict() for f in findings]
    dumped = json.dumps(outputs, default=str)
    for secret in secrets:
        assert secret not in dumped


def test_wrong_typed_secret_header_is_masked(tmp_path):
    """An Authorization header written as a string (wrong type) is reported without its value."""
    text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.headers]\n  Authorization = "Basic ZGVwbG95OnMzY3JldA=="\n'
    view = _load(_host(tmp_path, {CONFIG: text}), "1.7.27")
    f = _one(view.findings, "config.invalid-value")
    assert f.evidence["value"] == "***"
    assert "ZGVwbG95" not in json.dumps([x.to_dict() for x in view.findings] + [view.summary])


CONFIGS_AUTH = KUBEADM_V2 + ('    [plugins."io.containerd.grpc.v1.cri".registry.configs."harbor.corp.example".auth]\n'
                             '      username = "robot$ci"\n      password = "s3cr3t-configs-auth"\n')


@pytest.mark.parametrize("version, warned", [("1.6.20", False), ("1.7.8", False), ("1.7.9", True),
                                             ("2.0.5", True), ("2.1.4", True)])
def test_configs_auth_is_deprecated_from_1_7_9(tmp_path, version, warned):
    """configs."<host>".auth: containerd warns "`configs` is deprecated, please use `config_path` instead" from 1.7.9.

    containerd ``pkg/cri/config/config.go ValidatePluginConfig`` (1.7.9+) and ``internal/cri/config/config.go
    ValidateImageConfig`` (2.x) warn for any ``configs`` entry (``deprecation.CRIRegistryConfigs``: removed in
    v2.4, "Use `config_path` instead"); 1.6 and 1.7.0-1.7.8 warn for ``configs.tls`` only (the 1.6 daemon is the
    referee in ``test_containerd_lab.py``). The credentials still apply.
    """
    view = _load(_host(tmp_path, {CONFIG: CONFIGS_AUTH}), version)
    assert view.credentials("harbor.corp.example").username == "robot$ci"
    found = [f for f in view.findings if f.code == "config.legacy-registry-config"]
    if not warned:
        assert found == []
        return
    [f] = found
    line = line_of(CONFIGS_AUTH, 'configs."harbor.corp.example".auth')
    assert f.severity == "warning" and f.title.startswith(f"{CONFIG}:{line}: ")
    assert "`configs` is deprecated, please use `config_path` instead" in f.title
    assert f.evidence["hosts"] == ["harbor.corp.example"] and f.evidence["line"] == line
    assert "imagePullSecret" in f.detail and "v2.4" in f.detail
    assert f.fix is not None and f.fix.kind == "manual"
    assert "s3cr3t-configs-auth" not in json.dumps(f.to_dict())
