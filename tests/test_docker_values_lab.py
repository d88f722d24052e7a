"""Referee: the installed dockerd decides which daemon.json values stop it at start-up, and regtui
predicts the same, with dockerd's own error text and the file line.

Each case starts the real dockerd (Debian's 20.10) on its own sockets with the lab settings
(``iptables: false``, ``bridge: "none"``, ``storage-driver: "vfs"``) until it either exits or its
socket answers, then stops it. A bad value makes dockerd exit within a second or two; a good file
starts on the lab containerd. The rules for later Engines follow moby's release branches
(``daemon/config/config.go`` ``Validate``; ``config_linux.go`` platform checks); those cases cite them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lab.containerd import Containerd
from lab.dockerd import LAB_DAEMON_DEFAULTS, DockerDaemon
from lab.procs import LabError, need_binary, run
from lab.require import require_binary, require_root
from regtui.engine import run_check
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.runtimes.docker.daemon import load_daemon_config
from regtui.runtimes.docker.model import DaemonConfig
from rootfs import write_tree

#: Bad files: (case id, daemon.json settings added to the lab's, the key whose line the finding names).
BAD = [
    ("wrong-type", {"max-concurrent-downloads": "3"}, "max-concurrent-downloads"),
    ("log-level", {"log-level": "verbose"}, "log-level"),
    ("negative-downloads", {"max-concurrent-downloads": -1}, "max-concurrent-downloads"),
    ("zero-attempts", {"max-download-attempts": 0}, "max-download-attempts"),
    ("dns-not-ip", {"dns": ["127.0.0.1", "8.8.8.300"]}, "dns"),
    ("log-format-unknown-on-20.10", {"log-format": "json"}, "log-format"),
    ("flag-conflict", {"pidfile": "/run/other.pid"}, "pidfile"),
    ("ulimit-field-type", {"default-ulimits": {"nofile": {"Name": "nofile", "Hard": "2048", "Soft": 1024}}},
     "default-ulimits"),
    ("label-conflict", {"labels": ["tier=a", "tier=b"]}, "labels"),
    ("ipc-mode", {"default-ipc-mode": "host"}, "default-ipc-mode"),
    ("bridge-and-bip", {"bip": "10.99.0.1/24"}, "bip"),
    ("icc-without-iptables", {"icc": False}, "icc"),
    ("ip6tables-not-experimental", {"ip6tables": True}, "ip6tables"),
    ("cgroup-driver", {"exec-opts": ["native.cgroupdriver=cgroupv2"]}, "exec-opts"),
    ("cgroup-parent-slice", {"exec-opts": ["native.cgroupdriver=systemd"], "cgroup-parent": "docker"},
     "cgroup-parent"),
    ("log-opt-unknown", {"log-opts": {"max-size": "10m", "maxfile": "3"}}, "log-opts"),
    ("log-opt-mode", {"log-opts": {"mode": "async"}}, "log-opts"),
    ("dns-search", {"dns-search": ["lab.test", "-lab"]}, "dns-search"),
    ("namespaces", {"containerd-namespace": "plugins.moby"}, "containerd-namespace"),
]

#: Values at the edge of what 20.10 accepts: dockerd starts and regtui reports nothing.
GOOD: dict[str, Any] = {
    "log-level": "WARNING", "max-concurrent-downloads": 0, "max-download-attempts": 1, "dns": [" 127.0.0.1", "::1"],
    "dns-search": [".", "lab.test"], "labels": ["tier=a", "tier=a"],
    "default-ulimits": {"nofile": {"name": "nofile", "hard": 2048, "soft": 1024}},
    "default-ipc-mode": "shareable", "default-cgroupns-mode": "host", "default-runtime": "io.containerd.runc.v2",
    "exec-opts": ["native.cgroupdriver=cgroupfs"], "cgroup-parent": "regtui-lab", "icc": True, "ip6tables": False,
    "log-opts": {"max-size": "10m", "max-file": "3", "mode": "non-blocking", "max-buffer-size": "4m", "tag": "x"},
}


@pytest.fixture(scope="module")
def engine() -> str:
    """The installed Engine's major.minor (``dockerd --version``)."""
    require_root("dockerd validates its configuration only as root")
    out = run([require_binary("dockerd"), "--version"], timeout=20).stdout
    m = re.search(r"version (\d+\.\d+)", out)
    assert m, out
    return m.group(1)


def _write(tmp_path: Path, settings: dict[str, Any]) -> tuple[Path, str]:
    """daemon.json with the lab settings, one key a line (so each has its own line)."""
    text = json.dumps({**LAB_DAEMON_DEFAULTS, **settings}, indent=2) + "\n"
    path = tmp_path / "daemon.json"
    path.write_text(text)
    return path, text


def _dockerd(tmp_path: Path, config: Path, containerd: Containerd) -> tuple[str | None, str]:
    """Start the real dockerd on ``config``: (None when its socket answered, else its last error line; its options)."""
    daemon = DockerDaemon(tmp_path / "d", config_file=config, containerd=containerd)
    options = (f"--config-file /etc/docker/daemon.json --data-root {daemon.data_root} --exec-root {daemon.exec_root} "
               f"-H {daemon.host} --pidfile {daemon.pidfile} --containerd {containerd.address}")
    try:
        daemon.start()
    except LabError:
        lines = [ln for ln in daemon.log_text().splitlines() if ln.strip() and not ln.startswith("time=")]
        assert daemon.process is not None and not daemon.process.alive()
        return (lines[-1] if lines else daemon.log_text()[-400:]), options
    finally:
        daemon.stop()
    return None, options


def _regtui(tmp_path: Path, engine: str, text: str, options: str) -> DaemonConfig:
    """regtui's model of the same file, with the command line the lab gave dockerd."""
    unit = f"[Service]\nExecStart=/usr/sbin/dockerd {options}\n"
    host = Host(root=write_tree(tmp_path / "root", {"/etc/docker/daemon.json": text,
                                                    "/lib/systemd/system/docker.service": unit}))
    return load_daemon_config(host, CheckOptions(extra={"docker_version": engine}))


def _line(text: str, key: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith(f'"{key}"'))


@pytest.mark.lab
@pytest.mark.parametrize("settings,key", [(s, k) for _, s, k in BAD], ids=[c for c, _, _ in BAD])
def test_bad_value_stops_dockerd_and_regtui_says_so(settings: dict[str, Any], key: str, engine: str,
                                                    containerd: Containerd, tmp_path: Path) -> None:
    """dockerd refuses the file and exits; regtui's first start error is dockerd's text, at the key's line."""
    config, text = _write(tmp_path, settings)
    error, options = _dockerd(tmp_path, config, containerd)
    assert error is not None, "dockerd started on a file the case means to be refused"
    cfg = _regtui(tmp_path, engine, text, options)
    assert cfg.fatal, f"regtui predicts a start for a file dockerd refuses: {error}"
    assert cfg.fatal[0] in error, (cfg.fatal, error)
    [stop] = [f for f in cfg.findings if f.evidence.get("error") == cfg.fatal[0]]
    assert stop.severity == "error" and stop.evidence["line"] >= _line(text, key)
    assert stop.evidence["file"] == "/etc/docker/daemon.json"


@pytest.mark.lab
def test_good_values_start_dockerd_and_regtui_reports_nothing(engine: str, containerd: Containerd,
                                                               tmp_path: Path) -> None:
    """Values at the edge of what dockerd accepts: its socket answers, and regtui has no finding and no start error."""
    need_binary("docker")
    config, text = _write(tmp_path, GOOD)
    error, options = _dockerd(tmp_path, config, containerd)
    assert error is None, error
    cfg = _regtui(tmp_path, engine, text, options)
    assert (cfg.fatal, cfg.findings) == ([], [])


@pytest.mark.parametrize("version,settings,error", [
    ("25.0", {"log-format": "foo"}, "invalid log format: foo"),
    ("24.0", {"log-format": "json"}, "the following directives don't match any configuration option: log-format"),
    ("25.0", {"log-level": "warning"}, "invalid logging level: warning"),
    ("27.0", {"dns": ["dns.lab.test"]}, "invalid IP address: dns.lab.test"),
    ("24.0", {"mtu": -1}, "invalid default MTU: -1"),
    ("28.0", {"default-cgroupns-mode": "shared"}, 'invalid default cgroup namespace (shared): use "host" or "private"'),
    ("28.0", {"exec-opts": ["isolation=hyperv"]},
     "invalid exec-opt (isolation=hyperv): option 'isolation' is only supported on windows"),
    ("23.0", {"graph": "/srv/docker"}, 'the "graph" config file option is deprecated; use "data-root" instead'),
    ("23.0", {"cluster-store": "consul://kv.lab.test:8500"}, "Host-discovery and overlay networks with external k/v "
     "stores are deprecated. The 'cluster-advertise', 'cluster-store', and 'cluster-store-opt' options have been removed"),
    ("25.0", {"oom-score-adjust": -500}, 'DEPRECATED: The "oom-score-adjust" config parameter and the dockerd '
     '"--oom-score-adjust" options have been removed.'),
    ("28.0", {"api-cors-header": "*"}, 'DEPRECATED: The "api-cors-header" config parameter and the dockerd '
     '"--api-cors-header" option have been removed; use a reverse proxy if you need CORS headers'),
])
def test_later_engines_refuse_what_their_validate_refuses(version: str, settings: dict[str, Any], error: str,
                                                         tmp_path: Path) -> None:
    """moby release branches' ``Validate`` (log-format 25+, log levels without "warning" 25+, []net.IP dns 25+,
    mtu 23+, the 28 cgroupns text, exec-opts 28+) and the last release of a removed option (graph and cluster-store
    23, oom-score-adjust 25, api-cors-header 28): regtui's start error is that text, and docker's verdict fails for
    every image."""
    dpkg = f"Package: docker-ce\nStatus: install ok installed\nVersion: 5:{version}.1-1~debian.12~bookworm\n\n"
    root = write_tree(tmp_path / "root", {"/etc/docker/daemon.json": json.dumps(settings, indent=2),
                                          "/var/lib/dpkg/status": dpkg, "/etc/containerd/": ""})
    images = ("registry.lab.test:5000/lab/small:1", "docker.io/library/busybox:latest")
    report = run_check(CheckOptions(root=str(root), images=images, runtime="docker", offline=True),
                       Host.from_args(root, {}))
    stops = [f for f in report.findings if f.runtime == "docker" and f.evidence.get("error") == error]
    [value] = settings.values()
    assert len(stops) == 1 and stops[0].evidence["line"] == (3 if isinstance(value, list) else 2)
    verdicts = [v for v in report.verdicts if v.runtime == "docker"]
    assert [v.image for v in verdicts] == list(images)
    assert all(v.status == "fails" and v.cause is not None and v.cause.finding == stops[0].id for v in verdicts)
