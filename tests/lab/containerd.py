"""containerd on a private socket, ``ctr`` pulls through ``--hosts-dir``, and config validation.

:class:`Containerd` runs ``containerd -c CONF`` with its own ``root``, ``state``, ``[grpc] address``
(a socket in its temp dir) and the opt plugin's directory, so it shares nothing with a system
containerd. ``content_sharing_policy = "isolated"`` makes each namespace fetch its own blobs, so
every :meth:`Containerd.ctr_pull` (which defaults to a fresh namespace) really talks to the
registry. CRI and the snapshotters that cannot work here are disabled to keep start-up fast and
the log clean.

``ctr images pull`` fetches in the ``ctr`` process itself, so name resolution and the hosts
directory matter for ``ctr``; only the CRI plugin resolves inside the daemon.

:func:`containerd_config_dump` runs ``containerd -c FILE config dump``: regtui's tests use it to
prove that a config they generate is accepted by the real containerd.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .namespaces import wrap_in_mount_namespace
from .procs import Component, LabError, need_binary, run

__all__ = [
    "Containerd",
    "CtrPull",
    "containerd_config_dump",
    "write_hosts_toml",
    "toml_string",
]

# Plugins the lab never needs: CRI (slow to start, wants CNI) and snapshotters that only log
# errors on an ordinary filesystem.
DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
)

_namespace_counter = itertools.count(1)
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def toml_string(value: str) -> str:
    """A TOML basic string literal (quotes and backslashes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unique_namespace(prefix: str = "lab") -> str:
    """A containerd namespace name not used before in this process."""
    return f"{prefix}-{os.getpid()}-{next(_namespace_counter)}"


@dataclass(frozen=True)
class CtrPull:
    """Outcome of one ``ctr images pull``."""

    returncode: int
    stdout: str
    stderr: str
    digest: str | None
    """The digest the reference resolved to (from ``ctr images ls``), when the pull succeeded."""
    namespace: str
    seconds: float

    @property
    def ok(self) -> bool:
        """True when ctr exited 0."""
        return self.returncode == 0

    def __iter__(self) -> Iterator[object]:
        """Unpack as ``rc, stdout, stderr, digest = containerd.ctr_pull(ref)``."""
        return iter((self.returncode, self.stdout, self.stderr, self.digest))

    @property
    def output(self) -> str:
        """stdout and stderr together (ctr prints errors on stderr, progress on stdout)."""
        return self.stdout + self.stderr


def write_hosts_toml(
    hosts_dir: Path,
    registry_host: str,
    *,
    server: str | None = None,
    hosts: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``hosts_dir/REGISTRY_HOST/hosts.toml`` and return its path.

    ``registry_host`` is the name in image references (``127.0.0.1:5000``, ``docker.io``).
    Each entry of ``hosts`` is ``{"url": ..., "capabilities": [...], "ca": path,
    "skip_verify": bool, "header": {...}}``; keys other than ``url`` are optional
    (capabilities default to pull+resolve). Tests needing other keys write the file themselves.
    """
    lines: list[str] = []
    if server:
        lines.append(f"server = {toml_string(server)}")
    for entry in hosts:
        table = f"host.{toml_string(str(entry['url']))}"
        caps = [str(c) for c in entry.get("capabilities", ("pull", "resolve"))]
        lines += ["", f"[{table}]", "  capabilities = [" + ", ".join(map(toml_string, caps)) + "]"]
        if "ca" in entry:
            lines.append(f"  ca = {toml_string(str(entry['ca']))}")
        if "skip_verify" in entry:
            lines.append(f"  skip_verify = {'true' if entry['skip_verify'] else 'false'}")
        headers: Mapping[str, Any] = entry.get("header") or {}
        if headers:
            lines.append(f"  [{table}.header]")
            lines += [f"    {key} = [{toml_string(str(value))}]" for key, value in headers.items()]
    path = hosts_dir / registry_host / "hosts.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def containerd_config_dump(config_path: Path, *, timeout: float = 20.0) -> tuple[int, str]:
    """Run ``containerd -c CONFIG config dump``; return (returncode, stdout+stderr).

    A nonzero code means the real containerd rejected the file.
    """
    result = run([need_binary("containerd"), "-c", str(config_path), "config", "dump"], timeout=timeout)
    return result.returncode, result.stdout + result.stderr


class Containerd(Component):
    """A private containerd daemon: ``containerd -c CONF`` with everything under its temp dir."""

    name = "containerd"
    start_timeout = 30.0

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        hosts_file: Path | None = None,
        enable_cri: bool = False,
        extra_toml: str = "",
        log_level: str = "info",
    ) -> None:
        """Configure (not start) containerd.

        - ``hosts_file``: start the daemon with this file as /etc/hosts (see
          :mod:`lab.namespaces`); matters for the CRI plugin, not for ``ctr`` pulls.
        - ``enable_cri``: keep the CRI plugin (off by default).
        - ``extra_toml``: appended verbatim to the config (e.g. CRI registry settings).
        """
        super().__init__(workdir)
        self.hosts_file = hosts_file
        self.enable_cri = enable_cri
        self.extra_toml = extra_toml
        self.log_level = log_level
        self.config_path = self.workdir / "config.toml"
        self.address = str(self.workdir / "containerd.sock")

    def config_text(self) -> str:
        """The config.toml this daemon runs with."""
        disabled = [p for p in DISABLED_PLUGINS if not (self.enable_cri and p.endswith(".cri"))]
        root, state = self.workdir / "root", self.workdir / "state"
        return "\n".join([
            "version = 2",
            f"root = {toml_string(str(root))}",
            f"state = {toml_string(str(state))}",
            "disabled_plugins = [" + ", ".join(toml_string(p) for p in disabled) + "]",
            "",
            "[grpc]",
            f"  address = {toml_string(self.address)}",
            "",
            "[debug]",
            f"  level = {toml_string(self.log_level)}",
            "",
            '[plugins."io.containerd.metadata.v1.bolt"]',
            '  content_sharing_policy = "isolated"',
            "",
            # The opt plugin would otherwise create /opt/containerd on the machine.
            '[plugins."io.containerd.internal.v1.opt"]',
            f"  path = {toml_string(str(self.workdir / 'opt'))}",
            "",
            self.extra_toml,
        ]) + "\n"

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Write config.toml and return the (possibly namespaced) command."""
        self.config_path.write_text(self.config_text())
        argv = [need_binary("containerd"), "-c", str(self.config_path)]
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.workdir),
        }
        return wrap_in_mount_namespace(argv, hosts_file=self.hosts_file), env

    def _ready(self) -> bool:
        """Ready when ``ctr version`` reaches the server."""
        if not Path(self.address).exists():
            return False
        return self.ctr(["version"], timeout=3).returncode == 0

    # -- ctr ------------------------------------------------------------------------------
    def ctr(
        self,
        args: Sequence[str],
        *,
        namespace: str | None = None,
        timeout: float = 30.0,
        hosts_file: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ctr --address SOCK [-n NS] ARGS`` with a timeout (optionally with a hosts file)."""
        argv = [need_binary("ctr"), "--address", self.address]
        if namespace:
            argv += ["-n", namespace]
        argv += list(args)
        run_env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.workdir),
        }
        run_env.update(env or {})
        return run(wrap_in_mount_namespace(argv, hosts_file=hosts_file), timeout=timeout, env=run_env)

    def image_digest(self, ref: str, *, namespace: str) -> str | None:
        """The target digest of image ``ref`` in ``namespace`` (None if absent)."""
        listing = self.ctr(["images", "ls"], namespace=namespace, timeout=15)
        for line in listing.stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == ref:
                match = _DIGEST_RE.search(line)
                return match.group(0) if match else None
        return None

    def ctr_pull(
        self,
        ref: str,
        *,
        hosts_dir: Path | None = None,
        plain_http: bool = False,
        namespace: str | None = None,
        user: str | None = None,
        platform: str | None = None,
        snapshotter: str | None = None,
        hosts_file: Path | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = 90.0,
    ) -> CtrPull:
        """``ctr images pull [--hosts-dir DIR] [--plain-http] REF`` in a fresh namespace.

        - ``user``: ``user:password`` for ``--user``.
        - ``hosts_file``: run ``ctr`` with this file as /etc/hosts (names in ``ref`` or
          hosts.toml then resolve to lab addresses).
        - ``env``: extra environment for ``ctr`` (e.g. ``HTTPS_PROXY``; ``ctr`` honours it).
        Returns rc, output, and the digest the reference resolved to when it succeeded.
        """
        namespace = namespace or unique_namespace()
        args = ["images", "pull"]
        if hosts_dir is not None:
            args += ["--hosts-dir", str(hosts_dir)]
        if plain_http:
            args.append("--plain-http")
        if user:
            args += ["--user", user]
        if platform:
            args += ["--platform", platform]
        if snapshotter:
            args += ["--snapshotter", snapshotter]
        args += [*extra_args, ref]
        began = time.monotonic()
        result = self.ctr(args, namespace=namespace, timeout=timeout, hosts_file=hosts_file, env=env)
        seconds = time.monotonic() - began
        digest = None
        if result.returncode == 0:
            # ctr stores the image under the reference exactly as given.
            digest = self.image_digest(ref, namespace=namespace)
        return CtrPull(result.returncode, result.stdout, result.stderr, digest, namespace, seconds)

    def containerd_config_dump(self, *, timeout: float = 20.0) -> tuple[int, str]:
        """``containerd config dump`` of this daemon's own config."""
        if not self.config_path.exists():
            raise LabError("config not written yet (start the daemon first)")
        return containerd_config_dump(self.config_path, timeout=timeout)
