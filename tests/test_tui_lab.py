"""End to end: the real workbench in tmux against the lab (registry, NTP), driven only by keys."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.fixtures import LAB_REPO, LAB_TAG
from lab.images import OciImage
from lab.ntp import Chrony
from lab.pullroots import containerd_root
from lab.registry import Registry
from lab.require import require_binary
from lab.sockets import TcpBlackHole

pytestmark = pytest.mark.lab

#: What the host's Docker config gets wrong (the fix renames the key).
DAEMON_JSON = {"registry-mirror": ["https://127.0.0.1:9"], "max-concurrent-downloads": 3}
KUBELET = ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
           "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock\n")
TITLES = ("1 Config", "2 Mirrors", "3 Certificates", "4 Proxy", "5 DNS", "6 Clock", "7 Pull")


class Tmux:
    """One tmux server on a private socket, one pane of a fixed size."""

    def __init__(self, socket: str) -> None:
        self.binary = require_binary("tmux")
        self.socket = socket

    def run(self, *args: str) -> str:
        out = subprocess.run([self.binary, "-L", self.socket, *args], capture_output=True, text=True, timeout=20)
        return out.stdout

    def start(self, command: str, width: int, height: int) -> None:
        # The pane stays after the command ends, so a crash leaves its traceback on screen.
        for _ in range(3):
            self.run("new-session", "-d", "-s", "e2e", "-x", str(width), "-y", str(height), "sleep 600")
            if "e2e" in self.run("list-sessions"):
                break
            time.sleep(0.5)
        self.run("set-option", "-t", "e2e", "remain-on-exit", "on")
        self.run("respawn-pane", "-k", "-t", "e2e", command)

    def screen(self) -> str:
        return self.run("capture-pane", "-t", "e2e", "-p")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", "e2e", key)
            time.sleep(0.15)

    def wait_for(self, check: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{screen}")

    def kill(self) -> None:
        subprocess.run([self.binary, "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


def _status(screen: str) -> str:
    return screen.splitlines()[0] if screen else ""


def _detail_code(screen: str) -> str:
    """The code of the highlighted finding, from the detail area under the findings list."""
    m = re.search(r"^│ [EWi] ([a-z0-9]+\.[a-z0-9.-]+)", screen, re.M)
    return m.group(1) if m else ""


def test_workbench_end_to_end_in_tmux(
    registry_tls: Registry, lab_image: OciImage, chrony: Chrony, tcp_black_hole: TcpBlackHole, tmp_path: Path
) -> None:
    """Starts, fills all seven panels from live probes (one mirror is a black hole), pulls with a waterfall; f after
    switching panels, Enter on an endpoint, a cancelled re-run, a fix applied by keys; ctrl+c quits."""
    root = tmp_path / "root"
    containerd_root(root, registry_tls.host_port, server=registry_tls.url, server_ca=registry_tls.ca_file,
                    mirrors=[{"url": f"https://{tcp_black_hole.host_port}", "skip_verify": True}])
    for host_path, content in {"/etc/docker/daemon.json": json.dumps(DAEMON_JSON, indent=2) + "\n",
                               "/usr/bin/dockerd": "", "/var/lib/kubelet/config.yaml": KUBELET}.items():
        target = root / host_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (root / "usr/bin/dockerd").chmod(0o755)
    image = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    rc_file = tmp_path / "rc"
    argv = [sys.executable, "-m", "regtui", "--root", str(root), "--image", image, "--timeout", "3",
            "--ntp-server", f"{chrony.host}:{chrony.port}"]
    env = {"TEXTUAL_ANIMATIONS": "none", "TERM": "xterm-256color", "PYTHONPATH": os.pathsep.join(sys.path)}
    command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(argv)
    tmux = Tmux(f"regtui-e2e-{os.getpid()}")
    tmux.start(f"cd {shlex.quote(str(tmp_path))} && {command}; echo $? > {shlex.quote(str(rc_file))}", 80, 24)
    try:
        screen = tmux.wait_for(lambda s: "1 Config" in s and "running" not in _status(s), 120, "the first run")
        assert image in _status(screen)
        for i, title in enumerate(TITLES):
            tmux.keys(str(i + 1))
            screen = tmux.wait_for(lambda s, t=title: f"─ {t} " in s, 10, title)
        assert "pulled" in screen, screen
        assert "░░ dns" in screen, screen
        # f acts on the panel on screen, on its most severe finding, whatever was selected before.
        tmux.keys("0", "Down", "Down", "2")
        screen = tmux.wait_for(lambda s: "─ 2 Mirrors " in s and _detail_code(s), 10, "the mirrors panel")
        code = _detail_code(screen)
        tmux.keys("f")
        tmux.wait_for(lambda s: f"Fix: {code}" in s, 10, f"the fix dialog of {code}")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Fix:" not in s, 10, "the dialog to close")
        # The black-holed mirror's row says why; Enter on it opens the endpoint's detail.
        screen = tmux.wait_for(lambda s: "─ 2 Mirrors " in s and "Fix:" not in s, 10, "the mirrors panel again")
        assert "└ tls" in screen, screen
        tmux.keys("BTab", "Down", "Enter")
        tmux.wait_for(lambda s: "Endpoint https://" in s and "Reproduce" in s, 10, "the endpoint detail")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Endpoint https://" not in s, 10, "the detail to close")
        # A re-run waits on the black hole; x cancels it and the workbench stays.
        tmux.keys("R")
        tmux.wait_for(lambda s: "running" in _status(s), 10, "the re-run")
        tmux.keys("x")
        screen = tmux.wait_for(lambda s: "cancelled" in s and "running" not in _status(s), 10, "the cancel")
        # Each step waits for the screen to show the previous one, so a busy machine cannot drop a key into the wrong widget.
        tmux.keys("1")
        tmux.wait_for(lambda s: "─ 1 Config " in s, 10, "the config panel")
        tmux.keys("/")
        tmux.wait_for(lambda s: "filter findings" in s, 10, "the filter field")
        tmux.keys(*"ignored", "Enter")
        tmux.wait_for(lambda s: "(filter: ignored)" in s, 10, "the filter to apply")
        tmux.keys("f")
        screen = tmux.wait_for(lambda s: "Fix: config.ignored-key" in s and "preview  (edit)" in s, 30, "the fix dialog")
        tmux.keys("a")
        tmux.wait_for(lambda s: "y apply" in s, 10, "the confirmation")
        tmux.keys("y")
        screen = tmux.wait_for(lambda s: "fixed:" in s or "still there" in s or "failed" in s, 60, "the re-check")
        assert "fixed: the finding is gone" in screen, screen
        assert "registry-mirrors" in (root / "etc/docker/daemon.json").read_text()
        # One key at a time: an escape followed at once by a letter reads as alt+letter.
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Fix:" not in s, 10, "the dialog to close")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "filter: ignored" not in s, 10, "the filter to clear")
        tmux.keys("R")
        tmux.wait_for(lambda s: "running" in _status(s), 10, "a last run")
        tmux.keys("C-c")  # quits at once, cancelling the run waiting on the black hole
        deadline = time.monotonic() + 20
        while not rc_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rc_file.read_text().strip() == "0"
    finally:
        tmux.kill()
