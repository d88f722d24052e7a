"""The running daemons' own environment: ``/proc/<pid>/environ`` as ground truth for proxies.

Go reads the proxy variables once per process, so what a running dockerd, containerd, CRI-O
or k3s uses is the environment it was *started* with, whatever the unit files say now. This
module finds those processes under a proc root (``/proc`` on a live host; tests pass a
directory holding symlinks to chosen ``/proc/<pid>`` entries so they never touch system
daemons) and reads their proxy variables.

Caveats stated where they matter:

- dockerd copies daemon.json ``proxies`` into its environment with ``os.Setenv`` after start;
  ``/proc/<pid>/environ`` shows the environment it was exec'd with, not those values.
- k3s hands its embedded containerd ``CONTAINERD_*`` variables with the prefix removed; the
  embedded containerd (a child whose command line names ``/rancher/``) is preferred as the
  truth, and the k3s process itself is read with that mapping applied when it is not found.

Secrets: only the proxy variables are kept (and ``SSL_CERT_FILE``); values may hold proxy
credentials, so callers display them through :mod:`regtui.redact`.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import Mapping

from regtui.net.proxy import PROXY_VARS, ProxyEnv, from_environ

__all__ = [
    "DaemonProcess",
    "DEFAULT_PROC",
    "KEPT_VARIABLES",
    "list_processes",
    "find_daemon",
    "parse_environ",
    "boot_time",
]

#: Where a live host shows its processes.
DEFAULT_PROC = "/proc"
#: The only variables kept from a process environment (everything else may be a secret).
KEPT_VARIABLES = PROXY_VARS + ("SSL_CERT_FILE", "SSL_CERT_DIR")
#: Bounds: no environment or command line is larger than this, and no more PIDs are scanned.
_MAX_FILE = 1024 * 1024
_MAX_PIDS = 100_000
_K3S_PREFIX = "CONTAINERD_"
#: Linux reports process start times in clock ticks since boot.
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class DaemonProcess:
    """One running daemon process and the proxy environment it runs with."""

    runtime: str
    """The runtime it serves: ``docker``, ``containerd``, ``crio`` or ``k3s``."""
    pid: int
    comm: str
    """The kernel's short process name (``/proc/<pid>/comm``)."""
    argv: tuple[str, ...] = ()
    environ: Mapping[str, str] | None = None
    """The kept variables (proxy, SSL_CERT_*), or ``None`` when environ could not be read."""
    error: str = ""
    """Why the environment could not be read (permission: run as root)."""
    started_at: float | None = None
    """Unix time the process started (from ``stat`` and the boot time), when known."""
    note: str = ""
    """How the environment maps to the runtime's (k3s's ``CONTAINERD_*`` prefix, dockerd's daemon.json)."""
    others: tuple[int, ...] = field(default_factory=tuple)
    """Other PIDs that matched the same runtime (this one is the oldest)."""

    @property
    def path(self) -> str:
        """``/proc/<pid>/environ`` as the user would inspect it."""
        return f"/proc/{self.pid}/environ"

    def proxy_env(self) -> ProxyEnv | None:
        """The process's proxy settings by Go's rules, or ``None`` when unreadable."""
        if self.environ is None:
            return None
        sources = {k: self.path for k in self.environ}
        return from_environ(self.environ, sources, label=f"{self.comm} (pid {self.pid})")


def parse_environ(data: bytes, keep: tuple[str, ...] = KEPT_VARIABLES) -> dict[str, str]:
    """Parse NUL-separated ``KEY=VALUE`` bytes, keeping only ``keep``; the first of a name wins (as Go)."""
    out: dict[str, str] = {}
    for item in data.split(b"\0"):
        if b"=" not in item:
            continue
        key, value = item.split(b"=", 1)
        name = key.decode(errors="replace")
        if name in keep and name not in out:
            out[name] = value.decode(errors="replace")
    return out


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(_MAX_FILE)
    except OSError:
        return None


def boot_time(proc_root: str = DEFAULT_PROC) -> float | None:
    """Boot time (Unix seconds) from ``<proc>/stat``'s ``btime``, or ``None``."""
    data = _read(posixpath.join(proc_root, "stat"))
    for line in (data or b"").decode(errors="replace").splitlines():
        if line.startswith("btime "):
            try:
                return float(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def _start_ticks(proc_root: str, pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks after boot)."""
    data = _read(posixpath.join(proc_root, str(pid), "stat"))
    if not data:
        return None
    text = data.decode(errors="replace")
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    rest = text[text.rfind(")") + 1:].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class _Proc:
    pid: int
    comm: str
    argv: tuple[str, ...]


def list_processes(proc_root: str = DEFAULT_PROC) -> list[_Proc]:
    """Processes visible under ``proc_root`` with their name and command line (bounded scan)."""
    try:
        names = os.listdir(proc_root)
    except OSError:
        return []
    out = []
    for name in names[:_MAX_PIDS]:
        if not name.isdigit():
            continue
        base = posixpath.join(proc_root, name)
        comm = (_read(posixpath.join(base, "comm")) or b"").decode(errors="replace").strip()
        raw = _read(posixpath.join(base, "cmdline")) or b""
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        if comm or argv:
            out.append(_Proc(int(name), comm, argv))
    return sorted(out, key=lambda p: p.pid)


def _program(p: _Proc) -> str:
    return posixpath.basename(p.argv[0]) if p.argv else p.comm


def _is_rancher_containerd(p: _Proc) -> bool:
    return (p.comm == "containerd" or _program(p) == "containerd") and any("/rancher/" in a for a in p.argv)


def _matches(runtime: str, p: _Proc) -> bool:
    """Whether process ``p`` is ``runtime``'s daemon (shims and helpers excluded)."""
    prog = _program(p)
    if runtime == "docker":
        return p.comm == "dockerd" or prog == "dockerd"
    if runtime == "containerd":
        return (p.comm == "containerd" or prog == "containerd") and not _is_rancher_containerd(p)
    if runtime == "crio":
        return p.comm == "crio" or prog == "crio"
    if runtime == "k3s":
        return p.comm.startswith(("k3s", "rke2")) or prog in ("k3s", "rke2")
    return False


def _k3s_view(environ: dict[str, str], raw: bytes) -> dict[str, str]:
    """What k3s gives its embedded containerd: ``CONTAINERD_X`` becomes ``X``, winning over ``X``."""
    prefixed = parse_environ(raw, tuple(_K3S_PREFIX + v for v in PROXY_VARS))
    merged = dict(environ)
    for key, value in prefixed.items():
        merged[key[len(_K3S_PREFIX):]] = value
    return merged


def find_daemon(runtime: str, proc_root: str = DEFAULT_PROC,
                processes: list[_Proc] | None = None) -> DaemonProcess | None:
    """The running daemon of ``runtime`` under ``proc_root`` (the oldest when several), or ``None``."""
    procs = processes if processes is not None else list_processes(proc_root)
    note = ""
    candidates = [p for p in procs if _matches(runtime, p)]
    if runtime == "k3s":
        embedded = [p for p in procs if _is_rancher_containerd(p)]
        if embedded:
            candidates = embedded
            note = "the embedded containerd started by k3s (it pulls the images)"
    if not candidates:
        return None
    started = {p.pid: _start_ticks(proc_root, p.pid) for p in candidates}
    candidates.sort(key=lambda p: (started[p.pid] if started[p.pid] is not None else 1 << 62, p.pid))
    chosen = candidates[0]
    others = tuple(p.pid for p in candidates[1:])
    raw = _read(posixpath.join(proc_root, str(chosen.pid), "environ"))
    btime = boot_time(proc_root)
    ticks = started[chosen.pid]
    started_at = btime + ticks / _CLK_TCK if btime is not None and ticks is not None else None
    if raw is None:
        return DaemonProcess(runtime, chosen.pid, chosen.comm, chosen.argv, None,
                             f"cannot read /proc/{chosen.pid}/environ (permission: run as root)",
                             started_at, note, others)
    environ = parse_environ(raw)
    if runtime == "k3s" and not note:
        environ = _k3s_view(environ, raw)
        note = "k3s process: CONTAINERD_* variables applied as the embedded containerd receives them"
    if runtime == "docker":
        note = ("dockerd applies daemon.json \"proxies\" after start; those values do not appear in "
                "/proc/<pid>/environ")
    return DaemonProcess(runtime, chosen.pid, chosen.comm, chosen.argv, environ, "", started_at, note, others)
