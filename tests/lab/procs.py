"""Process plumbing shared by every lab component.

A lab component is a real daemon (registry, proxy, NTP, DNS, containerd, dockerd) started on
loopback with its own temporary directory. This module gives them one way to:

- find a binary in the standard Debian locations (``/usr/sbin`` is often missing from a
  non-login ``PATH``, and the Debian ``docker`` CLI must win over any other copy on ``PATH``);
- pick free ports on ``127.0.0.1``;
- run a process in its own process group with its output captured to a log file;
- wait for readiness with a bounded poll, and report the log when start-up fails;
- stop the whole process group, also at interpreter exit if a caller forgot, and have the
  daemon itself get SIGTERM if the Python process is killed outright.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "LabError",
    "Component",
    "ManagedProcess",
    "find_binary",
    "need_binary",
    "free_port",
    "run",
    "wait_until",
    "LOOPBACK",
]

#: The address every lab component binds to unless told otherwise.
LOOPBACK = "127.0.0.1"

# Standard Debian locations first, so e.g. /usr/bin/docker (docker.io, matching dockerd) wins
# over a differently-versioned client that happens to sit earlier on the caller's PATH.
_DEBIAN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")

# Every process a ManagedProcess started and has not stopped yet (strong references, so a
# forgotten component is still found); killed at interpreter exit.
_LIVE: set[ManagedProcess] = set()

# Ports free_port already returned; the kernel may offer a just-released port again.
_HANDED_OUT: set[int] = set()

# prctl(PR_SET_PDEATHSIG) option number, from <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
# libc is loaded here, in the parent: the child only calls into it between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the parent dies (pytest killed, not torn down)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class LabError(RuntimeError):
    """A lab component could not be started or used; the message carries its log tail."""


def find_binary(name: str) -> str | None:
    """Return the path of executable ``name``, searching Debian's standard dirs before PATH."""
    search = os.pathsep.join([*_DEBIAN_DIRS, os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


def need_binary(name: str) -> str:
    """Return the path of executable ``name`` or raise :class:`LabError` if it is missing."""
    path = find_binary(name)
    if path is None:
        raise LabError(f"required binary {name!r} not found")
    return path


def free_port(host: str = LOOPBACK, *, udp: bool = False, tcp: bool = True) -> int:
    """Return a port on ``host`` that is free right now for TCP, UDP or both.

    The kernel picks the port; it is bound and released, so a race with another process is
    possible but rare. A port is never handed out twice by this process (components pick their
    port before their daemon binds it). ``udp=True, tcp=True`` returns a port free for both.
    """
    for _ in range(50):
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port in _HANDED_OUT:
            continue
        if tcp and udp:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
        _HANDED_OUT.add(port)
        return port
    raise LabError(f"no free port found on {host}")


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``predicate`` until it is true, at most ``timeout`` seconds.

    ``alive`` (if given) is checked on every round, so a daemon that exits during start-up is
    reported at once instead of after the whole timeout. Raises :class:`LabError` on failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if alive is not None and not alive():
            raise LabError(f"process exited while waiting for {what}")
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion with a timeout, capturing text stdout and stderr.

    On timeout the command's whole process group is killed and a CompletedProcess with
    returncode -9 and a note in stderr is returned, so callers can treat it like any failure.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        err += f"\n[lab] killed after {timeout}s timeout".encode()
        return subprocess.CompletedProcess(
            list(argv), -9, out.decode(errors="replace"), err.decode(errors="replace")
        )
    return subprocess.CompletedProcess(
        list(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


class ManagedProcess:
    """A long-running daemon in its own process group, with stdout+stderr in a log file."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Prepare (not start) ``argv``; ``env`` replaces the environment when given."""
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id (also the process group id), or None before start."""
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        """Start the process in a new session so the whole group can be killed later."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"[lab] exec: {' '.join(self.argv)}\n".encode())
            log.flush()
            # The death signal fires when the *thread* that forked exits, so it is only safe
            # (and only wanted) for daemons started from the main thread.
            on_main = threading.current_thread() is threading.main_thread()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent if on_main else None,
            )
        _LIVE.add(self)

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, wait up to ``timeout``, then SIGKILL what is left."""
        if self.popen is None:
            return
        pgid = self.popen.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        # Children (e.g. a daemon's helpers) may outlive the leader: kill the group regardless.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        _LIVE.discard(self)

    def log_tail(self, limit: int = 4000) -> str:
        """The last ``limit`` characters of the log (empty if there is none yet)."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode(errors="replace")


@atexit.register
def _kill_leftovers() -> None:
    """Stop every still-running lab process when the interpreter exits."""
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.stop(timeout=3)


class Component:
    """Base of every lab daemon: a temp dir, one managed process, start/stop, context manager.

    Subclasses implement :meth:`_prepare` (write config, return argv and env) and
    :meth:`_ready` (one readiness probe); the base class runs the bounded wait and turns a
    failed start into a :class:`LabError` that quotes the daemon's log.
    """

    #: Short name used for temp dirs, log files and messages.
    name = "component"
    #: Seconds to wait for readiness.
    start_timeout = 20.0

    def __init__(self, workdir: Path | None = None) -> None:
        """Use ``workdir`` (created if needed, kept) or a fresh temp dir (removed on stop)."""
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"regtui-lab-{self.name}-"))
            self._owns_workdir = True
        else:
            self.workdir = Path(workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._owns_workdir = False
        self.log_path = self.workdir / f"{self.name}.log"
        self.process: ManagedProcess | None = None
        self.startup_seconds: float | None = None

    # -- to implement ---------------------------------------------------------------------
    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Write configuration; return the argv and the environment (None: inherit)."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """One non-blocking (short-timeout) readiness probe."""
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the daemon and wait until it is ready; raise LabError with its log if not."""
        if self.process is not None and self.process.alive():
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)  # again, after a stop removed it
        argv, env = self._prepare()
        began = time.monotonic()
        self.process = ManagedProcess(argv, log_path=self.log_path, env=env, cwd=self.workdir)
        self.process.start()
        try:
            wait_until(
                self._ready,
                timeout=self.start_timeout,
                what=f"{self.name} to become ready",
                alive=self.process.alive,
            )
        except LabError as exc:
            tail = self.process.log_tail()
            self.process.stop(timeout=3)
            raise LabError(f"{self.name} failed to start: {exc}\n--- {self.log_path} ---\n{tail}") from None
        except BaseException:
            # A probe bug or Ctrl-C during start-up must not leave the daemon running.
            self.process.stop(timeout=3)
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop the daemon (whole process group); remove the temp dir if this object made it."""
        if self.process is not None:
            self.process.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_text(self) -> str:
        """The daemon's whole log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> Self:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block, whatever happened inside."""
        self.stop()
