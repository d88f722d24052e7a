"""Run a command with its own view of ``/etc/hosts`` (and other files), without touching the host.

Docker, containerd and skopeo resolve registry names through the machine's resolver, so a test
that wants ``registry.lab.test`` to reach ``127.0.0.2`` starts the runtime inside a private mount
namespace where a lab hosts file is bind-mounted over ``/etc/hosts``::

    unshare -m --propagation private sh -c 'mount --bind HOSTS /etc/hosts && exec CMD...'

The bind mount exists only for that process tree. Needs root (``unshare -m``). 127.0.0.2 to
127.0.0.255 are all usable loopback addresses on Linux, so different names can point at
different daemons listening on the same port.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .procs import LabError, find_binary, need_binary, run

__all__ = ["write_hosts_file", "wrap_in_mount_namespace", "run_in_mount_namespace", "can_unshare"]


def can_unshare() -> bool:
    """True when this process may create a mount namespace (root and ``unshare`` present)."""
    return os.geteuid() == 0 and find_binary("unshare") is not None


def write_hosts_file(path: Path, names: Mapping[str, str]) -> Path:
    """Write a hosts file mapping each name to its address, plus the usual localhost lines."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{addr}\t{name}" for name, addr in names.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def wrap_in_mount_namespace(
    argv: Sequence[str],
    *,
    hosts_file: Path | None = None,
    binds: Mapping[str, Path] | None = None,
) -> list[str]:
    """Return an argv that runs ``argv`` with ``hosts_file`` over /etc/hosts and extra binds.

    ``binds`` maps a target path on this machine (which must already exist) to the file or
    directory to show there. With neither option the argv is returned unchanged.
    """
    mounts: dict[str, Path] = {}
    if hosts_file is not None:
        mounts["/etc/hosts"] = Path(hosts_file)
    mounts.update(binds or {})
    if not mounts:
        return list(argv)
    if os.geteuid() != 0:
        raise LabError("a private mount namespace needs root (unshare -m)")
    for target, source in mounts.items():
        if not Path(target).exists():
            raise LabError(f"bind target {target} does not exist on this machine")
        if not Path(source).exists():
            raise LabError(f"bind source {source} does not exist")
    steps = [f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}" for dst, src in mounts.items()]
    script = " && ".join([*steps, "exec " + shlex.join(list(argv))])
    return [need_binary("unshare"), "-m", "--propagation", "private", "sh", "-c", script]


def run_in_mount_namespace(
    argv: Sequence[str],
    *,
    hosts_file: Path | None = None,
    binds: Mapping[str, Path] | None = None,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short command with a lab hosts file (and binds) and a timeout; capture its output."""
    return run(wrap_in_mount_namespace(argv, hosts_file=hosts_file, binds=binds), timeout=timeout, env=env)
