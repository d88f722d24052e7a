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

import json
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
from regtui import fixes
from regtui.host import Host

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


def _default_signals() -> None:
    """In the child: SIGINT and SIGTERM as a shell gives them, whatever the test runner's own disposition
    (an ignored signal stays ignored across exec, and the pull would then never hear ctrl+c)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def partials(out_dir: Path) -> list[Path]:
    """Partial blob files in an OCI layout being written."""
    return sorted(out_dir.glob("blobs/*/*.partial"))


def largest_partial(out_dir: Path) -> int:
    """Bytes in the largest partial file now (a file renamed or removed while looking counts as none)."""
    sizes = [0]
    for p in partials(out_dir):
        try:
            sizes.append(p.stat().st_size)
        except FileNotFoundError:
            pass
    return max(sizes)


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
                                 env=regtui_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=_default_signals)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and child.poll() is None:
                if largest_partial(out_dir) > 64 * 1024:
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
    assert partials(out_dir) == [] and not (out_dir / "index.json").exists(), (child.returncode, err)
    assert child.returncode == status, err
    assert "pull interrupted" in err and "Traceback" not in err, err
    # what stays is complete: every blob file hashes to its name
    import hashlib
    for blob in out_dir.glob("blobs/sha256/*"):
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


# -- an apply killed with SIGKILL at each step -------------------------------------------------

DJ = "/etc/docker/daemon.json"
DPKG = "/var/lib/dpkg/status"
MIRROR_KEY = '{\n  "registry-mirror": "https://m.example"\n}\n'
FIXED = {"registry-mirrors": ["https://m.example"]}
FIX_ARGS = ["fix", "--offline", "--runtime", "docker", "--code", "config.ignored-key", "--apply", "--yes"]

#: The child: patches one step of the apply to SIGKILL the process right there, then runs the CLI.
#: Steps: backup-copy (backup blob written, no manifest yet), manifest-tmp (the first manifest's
#: temporary file written, not renamed), temp-being-written (the new file's temporary copy holds its
#: bytes but is not fsynced), temp-written (temporary copy complete), before-rename, after-rename
#: (the target replaced, manifest still "writing"), rollback (an I/O error after the rename starts a
#: rollback, killed once its temporary copy of the original is written), rollback-ok (that I/O error
#: and no kill).
CHILD = r"""
import errno, os, signal, sys
from regtui.fixes import _backup, _fs
point, target_name, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
real_replace, real_write_temp, real_fsync_dir, real_fchmod = os.replace, _fs.write_temp, _fs.fsync_dir, os.fchmod
real_save = _backup.BackupStore.save
state = {"renamed": False, "eio": False}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(src, dst, *a, **k):
    if point == "manifest-tmp" and os.fspath(src).endswith(".manifest.json.tmp"):
        die()
    if os.path.basename(os.fspath(dst)) == target_name and not state["renamed"]:
        if point == "before-rename":
            die()
        real_replace(src, dst, *a, **k)
        state["renamed"] = True
        if point == "after-rename":
            die()
        return None
    return real_replace(src, dst, *a, **k)

def save(self, manifest):
    if point == "backup-copy":
        die()
    return real_save(self, manifest)

def write_temp(t, data, **kw):
    path = real_write_temp(t, data, **kw)
    if point == "temp-written" or (point == "rollback" and state["renamed"]):
        die()
    return path

def fchmod(fd, mode):
    real_fchmod(fd, mode)
    if point == "temp-being-written" and not state["renamed"]:
        die()

def fsync_dir(path):
    if point.startswith("rollback") and state["renamed"] and not state["eio"]:
        state["eio"] = True
        raise OSError(errno.EIO, "Input/output error (injected)")
    return real_fsync_dir(path)

os.replace, os.fchmod = replace, fchmod
_backup.BackupStore.save, _fs.write_temp, _fs.fsync_dir = save, write_temp, fsync_dir
from regtui.cli import main
sys.exit(main(argv))
"""

NOTHING_CHANGED = ["backup-copy", "manifest-tmp", "temp-being-written", "temp-written", "before-rename"]
CHANGED = ["after-rename", "rollback"]


def killed_apply(point: str, root: Path, args: list[str] | None = None,
                 target: str = "daemon.json") -> subprocess.CompletedProcess[str]:
    """Run ``regtui fix --apply --yes`` in a child that SIGKILLs itself at ``point``."""
    return subprocess.run([sys.executable, "-c", CHILD, point, target, *(args or FIX_ARGS), "--root", str(root)],
                          env=regtui_env(), capture_output=True, text=True, timeout=120)


def leftovers(root: Path) -> list[str]:
    """regtui's temporary files under the root and manifest temporary files in the state dir."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if ".regtui-" in p.name or p.name == ".manifest.json.tmp")


def backup_dirs(root: Path) -> list[Path]:
    """The backup folders in the default state dir."""
    d = root / "var/lib/regtui/backups"
    return sorted(d.iterdir()) if d.is_dir() else []


@pytest.fixture
def mirror_root(tmp_path: Path) -> Path:
    """A Docker root whose daemon.json has the misspelt ``registry-mirror`` key (fix: config.ignored-key)."""
    from test_fix_kit import DOCKER_27, make_root

    return make_root(tmp_path, {DJ: MIRROR_KEY, DPKG: DOCKER_27})


@pytest.mark.parametrize("point", NOTHING_CHANGED)
def test_killed_before_the_rename_is_reported_as_nothing_changed(point: str, mirror_root: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Killed before the target was replaced: undo --list removes our temp files and the backup, says nothing changed."""
    from regtui.cli import main

    done = killed_apply(point, mirror_root)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (mirror_root / DJ.lstrip("/")).read_text() == MIRROR_KEY
    assert main(["undo", "--root", str(mirror_root), "--list"]) == 0
    out = capsys.readouterr().out
    assert leftovers(mirror_root) == [] and backup_dirs(mirror_root) == []
    assert "nothing was changed" in out and "no backups" in out, out
    assert (mirror_root / DJ.lstrip("/")).read_text() == MIRROR_KEY
    assert main([*FIX_ARGS, "--root", str(mirror_root)]) == 0
    assert json.loads((mirror_root / DJ.lstrip("/")).read_text()) == FIXED
    assert [b.status for b in fixes.list_backups(Host(root=mirror_root))] == ["applied"]


@pytest.mark.parametrize("point", CHANGED)
def test_killed_after_the_rename_is_shown_applied_and_undoable(point: str, mirror_root: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Killed after the target was replaced (also mid-rollback): listed as applied, temp files gone, undo restores."""
    from regtui.cli import main

    done = killed_apply(point, mirror_root)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert json.loads((mirror_root / DJ.lstrip("/")).read_text()) == FIXED
    assert main(["undo", "--root", str(mirror_root), "--list"]) == 0
    out = capsys.readouterr().out
    assert leftovers(mirror_root) == []
    (backup,) = fixes.list_backups(Host(root=mirror_root))
    assert backup.status == "applied" and "[applied]" in out and "killed after every file was written" in out, out
    assert main(["undo", "--root", str(mirror_root), backup.id]) == 0
    assert (mirror_root / DJ.lstrip("/")).read_text() == MIRROR_KEY
    assert main([*FIX_ARGS, "--root", str(mirror_root)]) == 0
    assert [b.status for b in fixes.list_backups(Host(root=mirror_root))] == ["undone", "applied"]


def test_next_apply_recovers_a_killed_one_and_says_so(mirror_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without undo --list in between, the next fix --apply removes the orphan temp file and reports the killed fix."""
    from regtui.cli import main

    assert killed_apply("before-rename", mirror_root).returncode == -signal.SIGKILL
    assert [p for p in leftovers(mirror_root) if "daemon.json.regtui-" in p]
    assert main([*FIX_ARGS, "--root", str(mirror_root)]) == 0
    out = capsys.readouterr().out
    assert "killed before it changed any file: nothing was changed" in out, out
    assert leftovers(mirror_root) == []
    assert [b.status for b in fixes.list_backups(Host(root=mirror_root))] == ["applied"]


def test_killed_fix_in_new_directories_leaves_no_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A drop-in fix killed with its temp file written in directories it created: recovery removes file and dirs."""
    from regtui.cli import main
    from test_fix_kit import DOCKER_27, make_root, snapshot

    root = make_root(tmp_path, {"/lib/systemd/system/docker.service": "[Service]\nExecStart=/usr/bin/dockerd -H fd:// "
                                "--insecure-registry r.example:5000\n", DPKG: DOCKER_27,
                                DJ: '{"insecure-registries": ["r.example:5000"]}\n'})
    before = snapshot(root)
    args = ["fix", "--offline", "--runtime", "docker", "--code", "config.flag-conflict", "--apply", "--yes"]
    assert killed_apply("temp-written", root, args, target="override.conf").returncode == -signal.SIGKILL
    assert (root / "etc/systemd/system/docker.service.d").is_dir()
    assert main(["undo", "--root", str(root), "--list"]) == 0
    assert "nothing was changed" in capsys.readouterr().out
    assert snapshot(root) == before and backup_dirs(root) == []


def test_io_error_after_the_rename_rolls_the_file_back(mirror_root: Path) -> None:
    """An fsync error right after the rename: the renamed file is put back (not left changed behind a 'restored')."""
    done = killed_apply("rollback-ok", mirror_root)
    assert done.returncode == 1, done.stderr
    assert "every file was restored" in done.stdout and "injected" in done.stdout, done.stdout
    assert (mirror_root / DJ.lstrip("/")).read_text() == MIRROR_KEY
    assert leftovers(mirror_root) == []
    assert [b.status for b in fixes.list_backups(Host(root=mirror_root))] == ["rolled-back"]


def test_recovery_never_deletes_what_is_not_provably_ours(mirror_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Look-alike files next to the target and a manifest-less backup folder with a stranger's file are left alone."""
    from regtui.cli import main

    etc = mirror_root / "etc/docker"
    lookalikes = [".daemon.json.regtui-notmine", ".daemon.json.regtui-0123456", "daemon.json.regtui-01234567",
                  ".other.json.regtui-01234567"]
    for name in lookalikes:
        (etc / name).write_text("keep me\n")
    stranger = mirror_root / "var/lib/regtui/backups/20260101T000000Z-someone"
    (stranger / "files").mkdir(parents=True)
    (stranger / "notes.txt").write_text("mine\n")
    assert killed_apply("before-rename", mirror_root).returncode == -signal.SIGKILL
    assert main(["undo", "--root", str(mirror_root), "--list"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in etc.iterdir() if p.name != "daemon.json") == sorted(lookalikes)
    assert (stranger / "notes.txt").read_text() == "mine\n" and "left as is" in out, out
    assert [p.name for p in backup_dirs(mirror_root)] == [stranger.name]


# -- a full filesystem ---------------------------------------------------------------------------

PAGE = os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (root only); skipped where mounting is not permitted unless REGTUI_REQUIRE_LAB=1."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        if os.environ.get("REGTUI_REQUIRE_LAB") == "1":
            pytest.fail(f"cannot mount a tmpfs: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)


def fill(fs: Path, leave_pages: int) -> None:
    """Fill the filesystem ``fs`` up, then free exactly ``leave_pages`` pages again."""
    filler = fs / "filler"
    with open(filler, "wb") as fh:
        block = b"\0" * (64 * 1024)
        while True:
            try:
                fh.write(block)
                fh.flush()
            except OSError:
                break
    size = filler.stat().st_size
    os.truncate(filler, max(0, (size // PAGE - leave_pages) * PAGE))


@pytest.mark.parametrize("state_elsewhere", [False, True], ids=["state-on-the-full-fs", "state-elsewhere"])
def test_full_filesystem_says_nothing_changed_and_leaves_nothing(state_elsewhere: bool, small_tmpfs: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Root (and state dir, or not) on a tmpfs with 0..7 free pages: each apply either works or says nothing was
    changed and where the space ran out, leaving no backup folder and no temporary file."""
    from regtui.cli import main
    from test_fix_kit import DOCKER_27, make_root

    refused: list[str] = []
    for free in range(8):
        for entry in small_tmpfs.iterdir():
            subprocess.run(["rm", "-rf", str(entry)], check=True, timeout=30)
        root = make_root(small_tmpfs / f"case-{free}", {DJ: MIRROR_KEY, DPKG: DOCKER_27})
        state = tmp_path / f"state-{free}" if state_elsewhere else root / "var/lib/regtui"
        (state / "backups").mkdir(parents=True)
        fill(small_tmpfs, free)
        code = main([*FIX_ARGS, "--root", str(root), *(["--state-dir", str(state)] if state_elsewhere else [])])
        out = capsys.readouterr().out
        assert "Traceback" not in out and "putting the originals back failed" not in out, out
        assert leftovers(root) == [] and leftovers(state) == [], (free, out)
        backups = sorted((state / "backups").iterdir())
        if code == 0:
            assert json.loads((root / DJ.lstrip("/")).read_text()) == FIXED
            assert len(backups) == 1 and json.loads((backups[0] / "manifest.json").read_text())["status"] == "applied"
            continue
        refused.append(out)
        assert code == 1
        assert "nothing was changed" in out and "no space left on the device" in out, out
        assert (root / DJ.lstrip("/")).read_text() == MIRROR_KEY
        assert backups == [], (free, out)
    assert refused, "the filesystem never ran out of space"
    where = "writing the new /etc/docker/daemon.json" if state_elsewhere else "writing the backup in"
    assert where in refused[0], refused[0]


def test_killed_between_two_renames_is_interrupted_and_undo_restores(mirror_root: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A backup left writing with one file replaced and one not: listed as interrupted; undo puts back only the first."""
    import hashlib

    from regtui.cli import main

    other = mirror_root / "etc/docker/other.json"
    other.write_text('{"debug": true}\n')
    assert main([*FIX_ARGS, "--root", str(mirror_root)]) == 0
    (folder,) = backup_dirs(mirror_root)
    manifest = json.loads((folder / "manifest.json").read_text())
    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    manifest["status"] = "writing"  # as the apply left it when killed after the first of its two renames
    manifest["files"].append({"path": "/etc/docker/other.json", "existed": True, "before_sha256": digest,
                              "after_sha256": "0" * 64, "mode": 0o644, "uid": 0, "gid": 0, "blob": "1"})
    (folder / "files/1").write_bytes(other.read_bytes())
    (folder / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["undo", "--root", str(mirror_root), "--list"]) == 0
    out = capsys.readouterr().out
    (backup,) = fixes.list_backups(Host(root=mirror_root))
    assert backup.status == "interrupted" and "[interrupted]" in out, out
    assert "fix's version: /etc/docker/daemon.json; as before: /etc/docker/other.json" in out, out
    assert main(["undo", "--root", str(mirror_root), backup.id]) == 0
    assert (mirror_root / DJ.lstrip("/")).read_text() == MIRROR_KEY and other.read_text() == '{"debug": true}\n'
