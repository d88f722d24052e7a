"""systemd units as daemons see them: drop-ins, resets, environment precedence."""

from __future__ import annotations

from pathlib import Path

from regtui.config.systemd import env_file, expand_argv, load_unit
from regtui.host import Host
from rootfs import write_tree

UNIT = """[Unit]
Description=Docker Application Container Engine

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
"""

DROPIN = """[Service]
Environment="HTTP_PROXY=http://proxy.corp:3128" "NO_PROXY=localhost,127.0.0.1,.corp"
Environment=HTTPS_PROXY=http://svc:p%%ss@proxy.corp:3128
ExecStart=
ExecStart=/usr/bin/dockerd \\
    -H fd:// --insecure-registry=registry.corp:5000
"""


def _host(tmp_path: Path, files: dict[str, str]) -> Host:
    return Host.from_args(write_tree(tmp_path, files), {})


def test_dropin_resets_execstart_and_sets_environment(tmp_path: Path) -> None:
    """An empty ExecStart= in a drop-in resets it; continuation lines join; %% is a percent sign."""
    host = _host(tmp_path, {"/lib/systemd/system/docker.service": UNIT,
                            "/etc/systemd/system/docker.service.d/http-proxy.conf": DROPIN})
    u = load_unit(host, "docker.service", "docker")
    assert u.found and u.unit_file == "/lib/systemd/system/docker.service"
    assert u.exec_start == ["/usr/bin/dockerd", "-H", "fd://", "--insecure-registry=registry.corp:5000"]
    assert u.exec_start_source == "/etc/systemd/system/docker.service.d/http-proxy.conf:5"
    assert u.environment["HTTPS_PROXY"] == "http://svc:p%ss@proxy.corp:3128"
    assert u.env_sources["NO_PROXY"] == "/etc/systemd/system/docker.service.d/http-proxy.conf:2"
    assert u.findings == []


def test_environment_file_overrides_environment(tmp_path: Path) -> None:
    """EnvironmentFile= values win over Environment= whatever their order (systemd.exec(5))."""
    host = _host(tmp_path, {"/lib/systemd/system/docker.service": UNIT,
                            "/etc/systemd/system/docker.service.d/http-proxy.conf": DROPIN,
                            "/etc/default/docker": '# defaults\nHTTP_PROXY="http://from-file:8080"\n'})
    u = load_unit(host, "docker.service", "docker")
    assert u.environment["HTTP_PROXY"] == "http://from-file:8080"
    assert u.env_sources["HTTP_PROXY"] == "/etc/default/docker:2"


def test_dropin_order_and_masking(tmp_path: Path) -> None:
    """Drop-ins apply by file name; /etc masks a same-named drop-in under /lib."""
    host = _host(tmp_path, {
        "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n",
        "/lib/systemd/system/containerd.service.d/10-proxy.conf": "[Service]\nEnvironment=HTTPS_PROXY=http://lib:1\n",
        "/etc/systemd/system/containerd.service.d/10-proxy.conf": "[Service]\nEnvironment=HTTPS_PROXY=http://etc:1\n",
        "/etc/systemd/system/containerd.service.d/20-more.conf": "[Service]\nEnvironment=NO_PROXY=.corp\n",
    })
    u = load_unit(host, "containerd.service", "containerd")
    assert u.dropins == ["/etc/systemd/system/containerd.service.d/10-proxy.conf",
                         "/etc/systemd/system/containerd.service.d/20-more.conf"]
    assert u.environment == {"HTTPS_PROXY": "http://etc:1", "NO_PROXY": ".corp"}


def test_empty_environment_resets(tmp_path: Path) -> None:
    """An empty Environment= clears earlier assignments."""
    host = _host(tmp_path, {"/etc/systemd/system/crio.service": "[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n"})
    assert load_unit(host, "crio.service", "crio").environment == {"B": "2"}


def test_missing_required_environment_file_is_a_finding(tmp_path: Path) -> None:
    """A missing EnvironmentFile= without '-' stops the unit: reported as config.invalid-value with its line."""
    host = _host(tmp_path, {"/etc/systemd/system/k3s.service": "[Service]\nEnvironmentFile=/etc/systemd/system/k3s.service.env\n"})
    u = load_unit(host, "k3s.service", "k3s")
    (f,) = u.findings
    assert f.code == "config.invalid-value" and f.evidence["line"] == 2


def test_garbage_unit_never_raises(tmp_path: Path) -> None:
    """Binary garbage and broken quoting in a unit become findings, not exceptions."""
    host = _host(tmp_path, {"/etc/systemd/system/docker.service": "[Service\nExecStart=/usr/bin/dockerd \"unterminated\nnot a directive\n"})
    u = load_unit(host, "docker.service", "docker")
    assert u.found and {f.code for f in u.findings} == {"config.parse-error"}
    write_tree(tmp_path, {"/etc/systemd/system/docker.service": bytes(range(256)) * 4})
    load_unit(host, "docker.service", "docker")


def test_env_file_redacts_secrets_in_values(tmp_path: Path) -> None:
    """Values shown from an env file mask proxy passwords; the parsed values keep them for the client."""
    host = _host(tmp_path, {"/etc/systemd/system/k3s.service.env": "HTTPS_PROXY=http://u:hunter2@p:3128\nK3S_TOKEN=abc\n"})
    values, sources, source, findings = env_file(host, "/etc/systemd/system/k3s.service.env", "k3s")
    assert values["HTTPS_PROXY"] == "http://u:hunter2@p:3128"
    assert "hunter2" not in repr(source.to_dict()) and "abc" not in repr(source.to_dict())
    assert sources["K3S_TOKEN"] == "/etc/systemd/system/k3s.service.env:2" and not findings


def test_unit_specifiers_expand(tmp_path: Path) -> None:
    """EnvironmentFile=-/etc/default/%N reads /etc/default/<unit name>, as the k3s/RKE2 installers rely on."""
    host = _host(tmp_path, {"/etc/systemd/system/rke2-agent.service": "[Service]\nEnvironmentFile=-/etc/default/%N\nEnvironment=UNIT=%n PCT=100%%\n",
                            "/etc/default/rke2-agent": "HTTPS_PROXY=http://p:3128\n"})
    u = load_unit(host, "rke2-agent.service", "k3s")
    assert u.environment == {"UNIT": "rke2-agent.service", "PCT": "100%", "HTTPS_PROXY": "http://p:3128"}


def test_environment_file_path_with_literal_percent(tmp_path: Path) -> None:
    """EnvironmentFile=/etc/default/100%%-proxy reads the file named with one literal %."""
    host = _host(tmp_path, {"/etc/systemd/system/crio.service": "[Service]\nEnvironmentFile=/etc/default/100%%-proxy\n",
                            "/etc/default/100%-proxy": "HTTPS_PROXY=http://p:3128\n"})
    u = load_unit(host, "crio.service", "crio")
    assert u.environment == {"HTTPS_PROXY": "http://p:3128"} and u.findings == []


def test_expand_argv_whole_word_variable_splits_without_quotes() -> None:
    """``$NAME`` alone becomes the value's words with quotes removed, each with the variable's source."""
    env = {"OPTS": '--label "team=a b" --debug'}
    words = expand_argv(["--x", "$OPTS", "$UNSET", "$1BAD"], env, {"OPTS": "/etc/default/docker:3"}, default="unit:9")
    assert words == [("--x", "unit:9"), ("--label", "/etc/default/docker:3"), ("team=a b", "/etc/default/docker:3"),
                     ("--debug", "/etc/default/docker:3")]


def test_expand_argv_inside_a_word_braces_only() -> None:
    """``${NAME}`` inside a word is replaced as is, ``$$`` is ``$``, a braceless ``$NAME`` inside a word stays."""
    env = {"DIR": "/etc/docker", "EP": "unix:///run/x.sock"}
    sources = {"DIR": "env:1", "EP": "env:2"}
    words = expand_argv(["--config-file=${DIR}/${EP}", "--price=$$5", "--ep=$EP", "${NOPE}"], env, sources, default="u")
    assert words == [("--config-file=/etc/docker/unix:///run/x.sock", "env:1"), ("--price=$5", "u"),
                     ("--ep=$EP", "u"), ("", "u")]
