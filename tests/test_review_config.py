"""Config readers on hostile input: no secret in a finding, no traceback from a long port."""

from __future__ import annotations

import json
from pathlib import Path

from regtui import redact
from regtui.runtimes.docker import cliconfig as dockercli
from regtui.config import timesync
from regtui.runtimes.docker.daemon import load_daemon_config
from regtui.host import Host
from rootfs import write_tree

SECRET = "hunter2-review"


def _dumped(findings: list) -> str:
    """Every finding as the report writes it (redacted)."""
    return json.dumps([redact.value(f.to_dict()) for f in findings])


def test_daemon_json_unknown_password_key_is_masked(tmp_path: Path) -> None:
    """A stray "password" in daemon.json is reported as an unknown key without its value."""
    write_tree(tmp_path, {"/etc/docker/daemon.json": json.dumps({"password": SECRET})})
    cfg = load_daemon_config(Host.from_args(tmp_path, environ={}))
    assert any(f.code == "config.unknown-key" for f in cfg.findings)
    assert SECRET not in _dumped(cfg.findings)


def test_command_line_mirror_credentials_stay_out_of_the_fix_id(tmp_path: Path) -> None:
    """--registry-mirror https://user:pass@host on ExecStart: the fix id does not carry the password."""
    write_tree(tmp_path, {
        "/etc/systemd/system/docker.service.d/o.conf":
            f"[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --registry-mirror https://bob:{SECRET}@mirror.example\n",
        "/etc/docker/daemon.json": "{}",
    })
    cfg = load_daemon_config(Host.from_args(tmp_path, environ={}))
    assert any(f.code == "config.invalid-value" for f in cfg.findings)
    assert SECRET not in _dumped(cfg.findings)


def test_config_json_auths_entry_written_as_a_string_is_masked(tmp_path: Path) -> None:
    """An auths entry that is a bare string (the auth blob itself) is reported without its value."""
    write_tree(tmp_path, {"/root/.docker/config.json": json.dumps({"auths": {"registry.example": SECRET}})})
    cfg = dockercli.load_cli_config(Host.from_args(tmp_path, environ={}))
    assert any(f.code == "config.invalid-value" for f in cfg.findings)
    assert SECRET not in _dumped(cfg.findings)


def test_timesyncd_port_out_of_range_or_too_long_falls_back(tmp_path: Path) -> None:
    """NTP=host:99999 and a port thousands of digits long give the NTP port, not a traceback."""
    write_tree(tmp_path, {"/etc/systemd/timesyncd.conf": f"[Time]\nNTP=a.example:99999 b.example:{'1' * 5000} c.example:124\n"})
    ts = timesync.load(Host.from_args(tmp_path, environ={}))
    servers = [(s.host, s.port) for d in ts.daemons for s in d.servers]
    assert ("a.example", 123) in servers and ("b.example", 123) in servers and ("c.example", 124) in servers
