"""Nothing left behind: an interrupted pull, an apply killed at each step, a full filesystem.

- ``regtui pull --output DIR`` interrupted by SIGINT or SIGTERM while bytes flow (through a relay
  that slows the lab registry's answers down, so the signal always lands mid-download) removes
  every ``.partial`` file and exits 130/143;
- ``regtui fix --apply --yes`` killed with SIGKILL at each step of the apply (a child process that
  patches the named step to kill itself there; nothing in regtui changes): the next
  ``undo --list``, ``undo`` and ``fix --apply`` remove our temporary files and incomplete backups,
  report a fix that changed nothing as such, and keep one that changed files undoable;
- an apply on a real full filesystem (a small tmpfs) says nothing was changed and where the space
  ran out, and leaves no backup folder or temporary file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.fixtures import LAB_REPO
from lab.images import OciImage, build_oci_layout, push
from lab.pullroots import containerd_root
from lab.registry import Registry

HERE = Path(__file__).parent
MiB = 1024 * 1024


def regtui_env() -> dict[str, str]:
    """The environment for a ``python -m regtui`` child that imports this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


# -- a pull interrupted mid-download -----------------------------------------------------------

class SlowRelay:
    """A TCP relay on 127.0.0.1 to ``target`` that passes the server's bytes at ``rate`` bytes/s (TLS goes through)."""

    def __init__(self, target: tuple[str, int], rate: int) -> None:
        self.target, self.rate = target, rate
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "SlowRelay":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(self.target, timeout=10)
            for src, dst, rate in ((client, server, None), (server, client, self.rate)):
                threading.Thread(target=self._pump, args=(src, dst, rate), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, rate: int | None) -> None:
        chunk = 16 * 1024
        src.settimeout(1.0)
        try:
            while not self.stopped.is_set():
                try:
                    data = src.recv(chunk)
                except TimeoutError:
                    continue
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture(scope="module")
def big_image(registry_tls: Registry, tmp_path_factory: pytest.TempPathFactory) -> tuple[OciImage, str]:
    """Three 4 MiB layers pushed to the TLS lab registry as ``<LAB_REPO>-big:latest``."""
    image = build_oci_layout(tmp_path_factory.mktemp("big") / "layout", layers=3, layer_size=4 * MiB, seed=61)
    repo = f"{LAB_REPO}-big"
    push(image, registry_tls, repo)
    return image, repo


def partials(out_dir: Path) -> list[Path]:
    """Partial blob files in an OCI layout being written."""
    return sorted(out_dir.glob("blobs/*/*.partial"))


@pytest.mark.lab
@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupted_pull_leaves_no_partial_file(sig: signal.Signals, status: int, big_image: tuple[OciImage, str],
                                                 registry_tls: Registry, tmp_path: Path) -> None:
    """A signal while a layer is half downloaded: the pull stops with 130/143 and no .partial file stays in DIR."""
    image, repo = big_image
    host, port = registry_tls.host_port.rsplit(":", 1)
    with SlowRelay((host, int(port)), rate=2 * MiB) as relay:
        root = tmp_path / "root"
        containerd_root(root, relay.host_port, server=f"https://{relay.host_port}", server_ca=registry_tls.ca_file)
        out_dir = tmp_path / "layout"
        child = subprocess.Popen([sys.executable, "-m", "regtui", "pull", f"{relay.host_port}/{repo}:latest",
                                  "--root", str(root), "--runtime", "containerd", "--output", str(out_dir)],
                                 env=regtui_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and child.poll() is None:
                if any(p.stat().st_size > 64 * 1024 for p in partials(out_dir) if p.exists()):
                    break
                time.sleep(0.01)
            assert child.poll() is None, "the pull ended before any layer was half downloaded"
            assert partials(out_dir), "no partial file while bytes flow"
            child.send_signal(sig)
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert partials(out_dir) == [] and not (out_dir / "index.json").exists()
    assert child.returncode == status, err
    assert "pull interrupted" in err and "Traceback" not in err, err
    # what stays is complete: every blob file hashes to its name
    import hashlib
    for blob in out_dir.glob("blobs/sha256/*"):
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
