"""daemon.json validated as dockerd validates it; ExecStart conflicts; proxy env; image store (SEMANTICS §1.1-§1.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regtui.runtimes import docker
from regtui.runtimes.docker.daemon import load_daemon_config
from regtui.runtimes.docker.flags import parse_exec_start
from regtui.runtimes.docker.keys import FLAG_ONLY_KEYS, KNOWN_KEYS_20_10, KNOWN_KEYS_CURRENT, effective_keys, known_keys
from regtui.runtimes.docker.model import DaemonConfig
from regtui.runtimes.docker.proxy import proxy_env
from regtui.runtimes.docker.registry import validate_mirror
from regtui.runtimes.docker.store import decide_store
from regtui.host import Host
from regtui.options import CheckOptions
from rootfs import line_of, write_tree

DJ = "/etc/docker/daemon.json"
UNIT = "/lib/systemd/system/docker.service"
DPKG = "/var/lib/dpkg/status"
VENDOR_UNIT = """[Unit]
Description=Docker Application Container Engine
After=network-online.target containerd.service

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
ExecReload=/bin/kill -s HUP $MAINPID
Restart=always

[Install]
WantedBy=multi-user.target
"""


def _dpkg(version: str, package: str = "docker-ce") -> str:
    return f"Package: containerd.io\nStatus: install ok installed\nVersion: 1.7.27-1\n\n" \
           f"Package: {package}\nStatus: install ok installed\nVersion: {version}\n\n"


def _load(tmp_path: Path, files: dict[str, str | bytes], version: str | None = "5:27.5.1-1~debian.12~bookworm",
          **options: str) -> DaemonConfig:
    tree = dict(files)
    if version:
        tree[DPKG] = _dpkg(version)
    host = Host(root=write_tree(tmp_path, tree))
    cfg = load_daemon_config(host, CheckOptions(**options))  # type: ignore[arg-type]
    cfg.store, cfg.store_reason = decide_store(host, cfg, CheckOptions(**options))  # type: ignore[arg-type]
    return cfg


def _codes(cfg: DaemonConfig) -> list[str]:
    return [f.code for f in cfg.findings]


def test_key_tables_are_consistent() -> None:
    """Every flag-only key is a valid key somewhere, and the 20.10 table is the captured binary's."""
    assert "registry-mirror" in KNOWN_KEYS_20_10 and "http-proxy" not in KNOWN_KEYS_20_10
    assert "http-proxy" in KNOWN_KEYS_CURRENT and "graph" not in KNOWN_KEYS_CURRENT
    assert set(FLAG_ONLY_KEYS) <= KNOWN_KEYS_20_10 | KNOWN_KEYS_CURRENT
    assert "registry-mirrors" in effective_keys(None) and "registry-mirror" not in effective_keys(None)
    # moby's 25.0 branch still defines --oom-score-adjust (and refuses a value); 26.0 does not.
    assert "oom-score-adjust" in known_keys((25, 0)) and "oom-score-adjust" not in known_keys((26, 0))
    assert known_keys((20, 10)) == KNOWN_KEYS_20_10


def test_empty_and_missing_file_are_fine(tmp_path: Path) -> None:
    """An empty daemon.json and a missing default one both start dockerd with defaults."""
    assert _load(tmp_path, {DJ: "  \n"}).fatal == []
    cfg = _load(tmp_path / "b", {"/etc/docker/": ""})
    assert cfg.fatal == [] and cfg.parsed is not None and cfg.parsed.status == "missing"


def test_utf16_and_bom_accepted(tmp_path: Path) -> None:
    """UTF-16LE with BOM and UTF-8 with BOM parse like dockerd's BOM-aware decoder."""
    text = '{"registry-mirrors": ["https://mirror.lab"]}'
    cfg = _load(tmp_path, {DJ: b"\xff\xfe" + text.encode("utf-16-le")})
    assert cfg.fatal == [] and [m.url for m in cfg.mirrors] == ["https://mirror.lab/"]
    cfg = _load(tmp_path / "b", {DJ: b"\xef\xbb\xbf" + text.encode()})
    assert cfg.fatal == [] and len(cfg.mirrors) == 1


def test_garbage_daemon_json_parse_error(tmp_path: Path) -> None:
    """A trailing comma (the classic hand edit) is config.parse-error with line and column; dockerd won't start."""
    text = '{\n  "registry-mirrors": ["https://mirror.lab"],\n  "debug": true,\n}\n'
    cfg = _load(tmp_path, {DJ: text})
    [f] = cfg.findings
    assert f.code == "config.parse-error" and f.evidence["line"] == 4 and f.evidence["column"] == 1
    assert cfg.fatal


@pytest.mark.parametrize("content", [b"\x00\x01\x02\xff\xfe\xfd", b"\xc3\x28{}", b"[1, 2, 3]", b'"just a string"',
                                     b"{" * 5000])
def test_garbage_bytes_never_raise(tmp_path: Path, content: bytes) -> None:
    """Binary junk, a non-object document and deep nesting become findings, never tracebacks."""
    cfg = _load(tmp_path, {DJ: content})
    assert cfg.fatal and cfg.findings
    assert cfg.findings[0].code in ("config.parse-error", "config.invalid-value")


def test_unknown_key_with_rename_fix(tmp_path: Path) -> None:
    """A typo is fatal (config.unknown-key) with dockerd's message and a rename to the nearest key."""
    text = '{\n  "registry-mirrors": ["https://mirror.lab"],\n  "insecure-registires": ["reg.lab:5000"]\n}\n'
    cfg = _load(tmp_path, {DJ: text})
    [f] = cfg.findings
    assert f.code == "config.unknown-key" and f.severity == "error"
    assert f.evidence["line"] == 3
    assert f.evidence["error"] == ("the following directives don't match any configuration option: "
                                   "insecure-registires")
    assert f.fix is not None and f.fix.params["new_key"] == "insecure-registries"
    assert f.fix.restart == "restart docker"


def test_unknown_key_case_and_whitespace(tmp_path: Path) -> None:
    """Keys are case-sensitive and exact: 'Debug' and 'debug ' are fatal with the obvious fix."""
    cfg = _load(tmp_path, {DJ: '{"Debug": true, "log-level ": "info"}'})
    fixes = {f.evidence["key"]: f.fix.params["new_key"] for f in cfg.findings if f.fix}
    assert fixes == {"Debug": "debug", "log-level ": "log-level"}


def test_version_specific_keys(tmp_path: Path) -> None:
    """proxies is unknown to Engine 20.10 (fatal there) and valid on 23+."""
    text = '{"proxies": {"https-proxy": "http://proxy.corp:3128"}}'
    old = _load(tmp_path, {DJ: text}, version="20.10.24+dfsg1-1+deb12u1+b6")
    assert _codes(old) == ["config.unknown-key"]
    assert "needs a newer Engine" in old.findings[0].detail
    assert _load(tmp_path / "b", {DJ: text}).fatal == []


def test_pattern4_singular_keys_ignored(tmp_path: Path) -> None:
    """Pattern 4: registry-mirror / insecure-registry pass validation and do nothing; fix moves them."""
    text = ('{\n  "registry-mirror": "https://mirror.lab",\n  "insecure-registry": ["reg.lab:5000"],\n'
            '  "insecure-registries": ["other.lab"]\n}\n')
    cfg = _load(tmp_path, {DJ: text})
    assert cfg.fatal == [] and cfg.mirrors == []
    found = {f.evidence["key"]: f for f in cfg.findings}
    assert set(found) == {"registry-mirror", "insecure-registry"}
    mirror = found["registry-mirror"]
    assert mirror.code == "config.ignored-key" and mirror.severity == "warning"
    assert mirror.evidence["line"] == line_of(text, '"registry-mirror"')
    assert mirror.fix is not None and mirror.fix.params["new_key"] == "registry-mirrors"
    insecure = found["insecure-registry"]
    assert insecure.fix is not None and insecure.fix.params == {
        "key": "insecure-registry", "new_key": "insecure-registries", "merge": True, "value": ["reg.lab:5000"]}
    assert insecure.fix.restart == "reload docker"
    assert "reg.lab:5000" not in cfg.insecure_hosts


def test_top_level_proxy_key_ignored(tmp_path: Path) -> None:
    """A top-level https-proxy is a flag name, not a field: ignored; it belongs in proxies."""
    cfg = _load(tmp_path, {DJ: '{"https-proxy": "http://proxy.corp:3128"}'})
    [f] = cfg.findings
    assert f.code == "config.ignored-key" and f.fix is not None and f.fix.params["new_key"] == "proxies.https-proxy"
    assert proxy_env(cfg).https_proxy == ""


def test_nested_object_is_flattened(tmp_path: Path) -> None:
    """dockerd flattens one level: {"registry": {"mirrors": []}} is an unknown 'mirrors'."""
    cfg = _load(tmp_path, {DJ: '{\n  "registry": {\n    "mirrors": ["https://m.lab"]\n  }\n}\n'})
    [f] = cfg.findings
    assert f.code == "config.unknown-key" and f.evidence["key"] == "mirrors" and f.evidence["line"] == 3
    ignored = _load(tmp_path / "b", {DJ: '{"tuning": {"debug": true}}'})
    assert _codes(ignored) == ["config.ignored-key"]


def test_wrong_types_are_fatal(tmp_path: Path) -> None:
    """A string where a list is expected, a quoted number, a string bool: each stops dockerd."""
    text = ('{\n  "registry-mirrors": "https://mirror.lab",\n  "max-concurrent-downloads": "10",\n'
            '  "debug": "true",\n  "features": {"containerd-snapshotter": "yes"}\n}\n')
    cfg = _load(tmp_path, {DJ: text})
    by_key = {f.evidence["key"]: f for f in cfg.findings}
    assert set(by_key) == {"registry-mirrors", "max-concurrent-downloads", "debug", "features"}
    assert all(f.code == "config.invalid-value" and f.severity == "error" for f in by_key.values())
    assert by_key["registry-mirrors"].evidence["error"] == (
        "json: cannot unmarshal string into Go struct field Config.registry-mirrors of type []string")
    assert by_key["registry-mirrors"].fix.params["new"] == ["https://mirror.lab"]  # type: ignore[union-attr]
    assert by_key["max-concurrent-downloads"].fix.params["new"] == 10  # type: ignore[union-attr]
    assert by_key["max-concurrent-downloads"].evidence["line"] == 3


@pytest.mark.parametrize("raw, error, new", [
    ("mirror.lab:5000", "no scheme specified", "https://mirror.lab:5000"),
    ("ftp://mirror.lab", 'unsupported scheme "ftp"', "https://mirror.lab"),
    ("https://mirror.lab/?x=1", "query or fragment", "https://mirror.lab/"),
    ("https://bob:hunter2@mirror.lab", "username/password not allowed", "https://mirror.lab"),
])
def test_pattern3_invalid_mirrors(tmp_path: Path, raw: str, error: str, new: str) -> None:
    """Pattern 3: mirror entries dockerd refuses, each with its own message and a normalised value."""
    text = json.dumps({"registry-mirrors": [raw]}, indent=2)
    cfg = _load(tmp_path, {DJ: text})
    [f] = cfg.findings
    assert f.code == "config.invalid-value" and error in f.evidence["error"]
    assert f.evidence["line"] == 3
    assert f.fix is not None and f.fix.params["new"] == new and f.fix.restart == "reload docker"
    assert "hunter2" not in json.dumps(f.to_dict())


def test_mirror_path_depends_on_engine() -> None:
    """A mirror path is allowed since Engine 25; 20.10 refuses it; trailing / is normalised."""
    assert validate_mirror("https://nexus.lab/repository/hub", (26, 1))[0] == "https://nexus.lab/repository/hub/"
    assert "path, query, or fragment" in validate_mirror("https://nexus.lab/repository/hub", (20, 10))[1]


def test_mirrors_normalised_and_deduplicated(tmp_path: Path) -> None:
    """Trailing slashes are normalised and duplicates dropped, order kept."""
    text = '{"registry-mirrors": ["https://a.lab", "https://b.lab/", "https://a.lab/"]}'
    assert [m.url for m in _load(tmp_path, {DJ: text}).mirrors] == ["https://a.lab/", "https://b.lab/"]


def test_insecure_entry_rules(tmp_path: Path) -> None:
    """http:// is stripped with a warning; other schemes, hyphens and paths are fatal; CIDR vs host:port."""
    text = json.dumps({"insecure-registries": ["http://reg.lab:5000", "10.0.0.0/8", "-bad.lab", "ftp://x.lab",
                                               "reg.lab:5000/", "plain.lab"]}, indent=2)
    cfg = _load(tmp_path, {DJ: text})
    sev = {f.evidence["value"]: f.severity for f in cfg.findings}
    assert sev == {"http://reg.lab:5000": "warning", "-bad.lab": "error", "ftp://x.lab": "error",
                   "reg.lab:5000/": "error"}
    assert set(cfg.insecure_hosts) == {"reg.lab:5000", "plain.lab"}
    assert [str(n) for n, _ in cfg.insecure_cidrs] == ["10.0.0.0/8", "127.0.0.0/8"]  # ::1/128 only from Engine 28


def test_docker_io_insecure_has_no_effect(tmp_path: Path) -> None:
    """docker.io in insecure-registries is overridden: Docker Hub stays secure."""
    cfg = _load(tmp_path, {DJ: '{"insecure-registries": ["docker.io"]}'})
    assert _codes(cfg) == ["config.ignored-key"]
    assert cfg.insecure_reason("docker.io").insecure is False


def test_insecure_decisions(tmp_path: Path) -> None:
    """Exact host:port, CIDR on IP literals, localhost and /etc/hosts names in 127.0.0.0/8."""
    cfg = _load(tmp_path, {DJ: '{"insecure-registries": ["reg.lab:5000", "192.168.0.0/16"]}',
                           "/etc/hosts": "127.0.0.1 localhost\n127.0.1.1 harbor.lab harbor\n10.9.9.9 far.lab\n"})
    assert cfg.insecure_reason("reg.lab:5000").insecure
    assert not cfg.insecure_reason("reg.lab").insecure
    assert cfg.insecure_reason("192.168.3.4:5000").source.endswith(":1")
    loop = cfg.insecure_reason("harbor.lab:443")
    assert loop.insecure and loop.source == "default (127.0.0.0/8 is always insecure)"
    assert cfg.insecure_reason("localhost:5000").insecure
    unknown = cfg.insecure_reason("nexus.corp")
    assert not unknown.insecure and unknown.caveat.startswith("depends on resolution")


def test_negative_concurrency_is_fatal(tmp_path: Path) -> None:
    """max-concurrent-downloads below zero stops dockerd with its message."""
    cfg = _load(tmp_path, {DJ: '{"max-concurrent-downloads": -1}'})
    [f] = cfg.findings
    assert f.evidence["error"] == "invalid max concurrent downloads: -1"


def test_pattern5_flag_conflict_hosts(tmp_path: Path) -> None:
    """Pattern 5: "hosts" in daemon.json with -H fd:// in ExecStart; fix keeps the file and edits a drop-in."""
    text = '{\n  "hosts": ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"]\n}\n'
    cfg = _load(tmp_path, {DJ: text, UNIT: VENDOR_UNIT})
    [f] = cfg.findings
    assert f.code == "config.flag-conflict" and f.severity == "error" and f.evidence["line"] == 2
    assert f.evidence["flag_source"] == f"{UNIT}:{line_of(VENDOR_UNIT, 'ExecStart=')}"
    assert "specified both as a flag and in the configuration file: hosts" in f.evidence["error"]
    assert f.fix is not None and f.fix.files == ("/etc/systemd/system/docker.service.d/override.conf",)
    assert f.fix.params["exec_start"] == ["/usr/bin/dockerd", "--containerd=/run/containerd/containerd.sock"]
    assert f.fix.params["flag"] == "-H" and f.fix.restart == "restart docker"


def _docker_opts(env_file: str, daemon_json: str | None = None) -> dict[str, str | bytes]:
    """The vendor unit, a drop-in running ``dockerd $DOCKER_OPTS`` and /etc/default/docker holding ``env_file``."""
    dropin = "/etc/systemd/system/docker.service.d/options.conf"
    files: dict[str, str | bytes] = {
        UNIT: VENDOR_UNIT, "/etc/default/docker": env_file,
        dropin: "[Service]\nEnvironmentFile=-/etc/default/docker\nExecStart=\nExecStart=/usr/bin/dockerd $DOCKER_OPTS\n"}
    if daemon_json is not None:
        files[DJ] = daemon_json
    return files


def test_flag_conflict_from_dropin_with_env_expansion(tmp_path: Path) -> None:
    """An ExecStart in a drop-in using $DOCKER_OPTS from an EnvironmentFile conflicts with insecure-registries."""
    cfg = _load(tmp_path, _docker_opts('DOCKER_OPTS="--insecure-registry reg.lab:5000 --debug"\n',
                                       '{"insecure-registries": ["reg.lab:5000"], "debug": false}'))
    keys = sorted(f.evidence["key"] for f in cfg.findings if f.code == "config.flag-conflict")
    assert keys == ["debug", "insecure-registries"]
    conflict = next(f for f in cfg.findings if f.evidence["key"] == "insecure-registries")
    assert conflict.evidence["flag_source"] == "/etc/default/docker:1"
    assert conflict.fix is not None and conflict.fix.files == ("/etc/default/docker",)
    assert conflict.fix.params["exec_start"] is None


def test_exec_start_variable_with_quotes_is_unquoted(tmp_path: Path) -> None:
    """A quoted word in $DOCKER_OPTS reaches dockerd without its quotes, as systemd splits it."""
    cfg = _load(tmp_path, _docker_opts("DOCKER_OPTS='--insecure-registry \"reg.lab:5000\"'\n"))
    assert [(f.name, f.value, f.source) for f in cfg.flags] == [
        ("insecure-registry", "reg.lab:5000", "/etc/default/docker:1")]
    assert cfg.insecure_reason("reg.lab:5000").insecure


def test_parse_exec_start_forms() -> None:
    """Long, short, inline and boolean flags are parsed as pflag does."""
    flags = parse_exec_start(["/usr/bin/dockerd", "-H", "fd://", "-Dl", "debug", "--iptables=false",
                              "--registry-mirror=https://m.lab", "-s", "overlay2"], "u:3")
    assert [(f.name, f.value) for f in flags] == [("host", "fd://"), ("debug", "true"), ("log-level", "debug"),
                                                   ("iptables", "false"), ("registry-mirror", "https://m.lab"),
                                                   ("storage-driver", "overlay2")]
    assert [f.written for f in flags][:3] == ["-H", "-D", "-l"]


def test_mirrors_from_command_line(tmp_path: Path) -> None:
    """--registry-mirror on the ExecStart is used when daemon.json has none, with its provenance."""
    unit = VENDOR_UNIT.replace("-H fd://", "-H fd:// --registry-mirror https://m.lab")
    cfg = _load(tmp_path, {UNIT: unit})
    [m] = cfg.mirrors
    assert m.url == "https://m.lab/" and m.source == f"--registry-mirror at {UNIT}:{line_of(unit, 'ExecStart=')}"


def test_config_file_flag_missing_is_fatal(tmp_path: Path) -> None:
    """--config-file pointing at a missing file stops dockerd (the default path may be missing)."""
    unit = VENDOR_UNIT.replace("-H fd://", "--config-file /etc/docker/custom.json")
    cfg = _load(tmp_path, {UNIT: unit})
    assert cfg.path == "/etc/docker/custom.json" and cfg.fatal
    assert cfg.findings[0].fix is not None and cfg.findings[0].fix.params["action"] == "create"


def test_proxy_env_precedence(tmp_path: Path) -> None:
    """systemd Environment and EnvironmentFile, overridden by daemon.json proxies; secrets masked in display."""
    files = {
        UNIT: VENDOR_UNIT,
        "/etc/systemd/system/docker.service.d/http-proxy.conf":
            '[Service]\nEnvironment="HTTP_PROXY=http://proxy.corp:3128" "NO_PROXY=localhost,.corp"\n'
            "EnvironmentFile=/etc/docker/proxy.env\n",
        "/etc/docker/proxy.env": "HTTPS_PROXY=http://old-proxy.corp:3128\n",
        DJ: '{\n  "proxies": {\n    "https-proxy": "http://svc:Pr0xyPw@proxy.corp:3128"\n  }\n}\n',
    }
    env = proxy_env(_load(tmp_path, files))
    assert env.http_proxy == "http://proxy.corp:3128"
    assert env.https_proxy == "http://svc:Pr0xyPw@proxy.corp:3128"
    assert env.sources["HTTPS_PROXY"] == f"{DJ}:3 (daemon.json proxies.https-proxy)"
    assert env.sources["NO_PROXY"] == "/etc/systemd/system/docker.service.d/http-proxy.conf:2"
    assert "Pr0xyPw" not in json.dumps(env.effective())


@pytest.mark.parametrize("files, version, store, why", [
    ({}, "5:29.1.3-1~debian.12~bookworm", "containerd", "fresh install"),
    ({"/var/lib/docker/overlay2/l/": ""}, "5:29.1.3-1~debian.12~bookworm", "classic", "graphdriver-prior"),
    ({DJ: '{"storage-driver": "overlay2"}'}, "5:29.0.0-1", "classic", "storage driver 'overlay2'"),
    ({DJ: '{"features": {"containerd-snapshotter": true}}'}, "5:27.5.1-1", "containerd", "containerd-snapshotter=true"),
    ({DJ: '{"features": {"containerd-snapshotter": false}}'}, "5:29.1.3-1", "classic", "containerd-snapshotter=false"),
    ({DJ: '{"features": {"containerd-snapshotter": true}}'}, "20.10.24+dfsg1-1", "classic", "predates"),
    ({DJ: '{"userns-remap": "default", "features": {"containerd-snapshotter": true}}'}, "5:29.1.3-1", "classic",
     "userns-remap"),
    ({}, "26.1.5+dfsg1-9", "classic", "default before Engine 29"),
    ({}, None, "classic", "assumed"),
])
def test_image_store_detection(tmp_path: Path, files: dict[str, str], version: str | None, store: str,
                               why: str) -> None:
    """§1.1: the store dockerd picks, and the reason recorded."""
    cfg = _load(tmp_path, {"/etc/docker/": "", **files}, version=version)
    assert cfg.store == store and why in cfg.store_reason


def test_store_override_and_version_override(tmp_path: Path) -> None:
    """--docker-store wins; --extra docker_version replaces dpkg."""
    host = Host(root=write_tree(tmp_path, {DPKG: _dpkg("5:29.1.3-1")}))
    opts = CheckOptions(docker_store="classic", extra={"docker_version": "24.0.7"})
    view = docker.load(host, opts)
    assert view.summary["image_store"] == "classic" and "--docker-store" in view.summary["image_store_reason"]
    assert view.summary["engine_version"] == "24.0"


def test_garbage_dpkg_hosts_and_unit(tmp_path: Path) -> None:
    """Junk in dpkg status, /etc/hosts and the unit file never raises."""
    host = Host(root=write_tree(tmp_path, {DPKG: b"\xff\x00Package docker-ce\n\n\n:::", "/etc/hosts": b"\x00\xff 1 2",
                                           UNIT: b"\xff\xfe[Service\nExecStart=/usr/bin/dockerd -H 'fd://\n",
                                           DJ: "{}"}))
    view = docker.load(host, CheckOptions())
    assert view.name == "docker" and view.summary["engine_version"] is None


def test_detect(tmp_path: Path) -> None:
    """detect() names daemon.json and the unit; an empty root yields nothing."""
    assert docker.detect(Host(root=tmp_path)) == []
    host = Host(root=write_tree(tmp_path, {DJ: "{}", UNIT: VENDOR_UNIT}))
    assert docker.detect(host) == [DJ, UNIT]
