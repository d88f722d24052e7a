"""Ground truth: the installed dockerd judges the same daemon.json the way regtui does.

dockerd loads and validates its configuration before it touches anything, so a configuration it
rejects makes it exit at once with the error regtui must predict. Every case here is one dockerd
rejects (an unknown key is always included where the point is "what else passes"), so no daemon
ever starts.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from lab.require import require_binary, require_root
from regtui.runtimes.docker.daemon import load_daemon_config
from regtui.runtimes.docker.model import DaemonConfig
from regtui.host import Host
from regtui.options import CheckOptions
from rootfs import write_tree

pytestmark = pytest.mark.lab

_UNKNOWN = re.compile(r"don't match any configuration option: (.*)$", re.MULTILINE)


def _dockerd_error(tmp_path: Path, config: str, *flags: str) -> tuple[str, str]:
    """Run the real dockerd on ``config``; return (version, the error it exits with)."""
    dockerd = require_binary("dockerd")
    require_root("dockerd validates its configuration only as root")
    version = subprocess.run([dockerd, "--version"], capture_output=True, text=True, timeout=20).stdout
    cfg = tmp_path / "daemon.json"
    cfg.write_text(config)
    argv = [dockerd, "--config-file", str(cfg), "--data-root", str(tmp_path / "root"), "--exec-root",
            str(tmp_path / "exec"), "--pidfile", str(tmp_path / "pid"), "-H", f"unix://{tmp_path}/d.sock", *flags]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0, "dockerd accepted a configuration the test meant to be rejected"
    return version, done.stderr.strip().splitlines()[-1]


def _regtui(tmp_path: Path, version: str, config: str, *flags: str) -> DaemonConfig:
    m = re.search(r"version (\d+\.\d+)", version)
    assert m, version
    unit = "[Service]\nExecStart=/usr/bin/dockerd " + " ".join(flags) + "\n"
    host = Host(root=write_tree(tmp_path / "fake", {"/etc/docker/daemon.json": config,
                                                    "/lib/systemd/system/docker.service": unit}))
    return load_daemon_config(host, CheckOptions(extra={"docker_version": m.group(1)}))


def test_unknown_and_ignored_keys_match_dockerd(tmp_path: Path) -> None:
    """dockerd names exactly the keys regtui calls unknown; the singular flag names pass, as regtui says."""
    config = json.dumps({"registry-mirror": "https://mirror.lab", "insecure-registry": ["reg.lab:5000"],
                         "insecure-registires": ["reg.lab:5000"], "Debug": True, "label": ["a=b"],
                         "proxies": {"no-proxy": "*.lab"}})
    version, error = _dockerd_error(tmp_path, config)
    m = _UNKNOWN.search(error)
    assert m, error
    cfg = _regtui(tmp_path, version, config)
    unknown = {f.evidence["key"] for f in cfg.findings if f.code == "config.unknown-key"}
    ignored = {f.evidence["key"] for f in cfg.findings if f.code == "config.ignored-key"}
    assert unknown == set(m.group(1).split(", "))
    assert {"registry-mirror", "insecure-registry", "label"} <= ignored


def test_flag_conflict_matches_dockerd(tmp_path: Path) -> None:
    """The same directive as a flag and in the file: dockerd's conflict error is regtui's evidence."""
    config = json.dumps({"debug": True, "max-concurrent-downloads": 6})
    version, error = _dockerd_error(tmp_path, config, "--debug", "--max-concurrent-downloads", "4")
    assert "specified both as a flag and in the configuration file" in error
    cfg = _regtui(tmp_path, version, config, "--debug", "--max-concurrent-downloads", "4")
    conflicts = {f.evidence["key"] for f in cfg.findings if f.code == "config.flag-conflict"}
    assert conflicts == {"debug", "max-concurrent-downloads"}
    assert all(key in error for key in conflicts)


def test_type_error_matches_dockerd(tmp_path: Path) -> None:
    """A string where dockerd wants a list stops it at unmarshal, as regtui predicts."""
    config = '{"registry-mirrors": "https://mirror.lab"}'
    version, error = _dockerd_error(tmp_path, config)
    assert "cannot unmarshal string" in error and "[]string" in error
    cfg = _regtui(tmp_path, version, config)
    [f] = cfg.findings
    assert f.code == "config.invalid-value" and "cannot unmarshal string" in f.evidence["error"]


def test_parse_error_matches_dockerd(tmp_path: Path) -> None:
    """A trailing comma is fatal for dockerd and a config.parse-error at its line for regtui."""
    config = '{\n  "debug": true,\n}\n'
    version, error = _dockerd_error(tmp_path, config)
    assert "invalid character" in error
    [f] = _regtui(tmp_path, version, config).findings
    assert f.code == "config.parse-error" and f.evidence["line"] == 3
