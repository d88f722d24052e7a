"""End to end: the real workbench in tmux at 80x24 on a broken lab host opens on the verdict, and f fixes its cause."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from lab.fixtures import LAB_REPO, LAB_TAG
from lab.images import OciImage
from lab.pullroots import LAB_CONTAINERD_VERSION, containerd_root
from lab.registry import Registry
from test_tui_lab import Tmux

pytestmark = pytest.mark.lab

HOSTS = {"registry.lab.test": "127.0.0.1"}


def test_untrusted_ca_first_screen_is_the_verdict_and_f_opens_its_fix(
    registry_tls: Registry, lab_image: OciImage, tmp_path: Path
) -> None:
    """containerd without the registry's CA: the first screen says why the pull fails, its chain and fix; f opens it."""
    name = f"registry.lab.test:{registry_tls.port}"
    root = tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", hosts=HOSTS)
    image = f"{name}/{LAB_REPO}:{LAB_TAG}"
    argv = [sys.executable, "-m", "regtui", "tui", "--root", str(root), "--image", image, "--runtime", "containerd",
            "--timeout", "3", "--containerd-version", LAB_CONTAINERD_VERSION]
    env = {"TEXTUAL_ANIMATIONS": "none", "TERM": "xterm-256color", "PYTHONPATH": os.pathsep.join(sys.path)}
    rc_file = tmp_path / "rc"
    command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(argv)
    tmux = Tmux(f"regtui-verdict-{os.getpid()}")
    tmux.start(f"cd {shlex.quote(str(tmp_path))} && {command}; echo $? > {shlex.quote(str(rc_file))}", 80, 24)
    try:
        screen = tmux.wait_for(lambda s: "[XX] containerd cannot pull" in s and "running" not in s.splitlines()[0],
                               120, "the verdict of the finished run")
        lines = screen.splitlines()
        assert len(lines) <= 24 and "─ v Verdict " in screen
        assert "tls.unknown-authority" in screen and "hosts.toml:" in screen, screen
        assert "fix (f): trust " in screen and "regtui fix" in screen, screen
        assert "(0 lists every finding)" in screen, screen
        tmux.keys("f")
        tmux.wait_for(lambda s: "Fix: tls.unknown-authority" in s, 30, "the fix dialog of the cause")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "Fix: " not in s and "─ v Verdict " in s, 10, "the dialog to close")
        tmux.keys("q")
        deadline = time.monotonic() + 20
        while not rc_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rc_file.exists()
    finally:
        tmux.kill()
