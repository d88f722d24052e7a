"""A private Docker Engine (Debian docker.io 20.10) on a unix socket in its temp dir.

``dockerd`` runs as root with its own ``--data-root``, ``--exec-root``, ``-H unix://SOCK``,
``--pidfile`` and ``--config-file``; the lab settings ``iptables: false``, ``bridge: "none"``,
``storage-driver: "vfs"`` (and ``ip-masq: false``) go into daemon.json unless the caller's
config already has them (dockerd refuses a setting given both as a flag and in the file).
It talks to a lab :class:`~lab.containerd.Containerd` through ``--containerd`` when given one,
else it starts its own containerd as a child. Both start in ~0.15 s and pull reliably; the lab
shares one containerd because dockerd's own containerd creates ``/opt/containerd`` on the
machine (its opt plugin's default) and takes ~1 s longer to stop.

It always runs in a private mount namespace where a directory of its own is bind-mounted over
``/etc/docker`` (dockerd 20.10 writes ``/etc/docker/key.json`` and reads registry CAs from the
fixed ``/etc/docker/certs.d``), plus a lab hosts file over ``/etc/hosts`` when given.

Proxies: dockerd 20.10 takes them only from its environment (``HTTP_PROXY``, ``HTTPS_PROXY``,
``NO_PROXY``): pass ``env``. The classic image store pulls inside dockerd, not in containerd.

Credentials belong to the client: :meth:`DockerDaemon.login_config` writes a ``config.json``
into the ``DOCKER_CONFIG`` dir the CLI helpers use.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .containerd import Containerd
from .namespaces import wrap_in_mount_namespace
from .procs import Component, LabError, need_binary, run

__all__ = ["DockerDaemon", "DockerPull", "LAB_DAEMON_DEFAULTS"]

#: daemon.json settings the lab needs to run dockerd as root without systemd or a network.
LAB_DAEMON_DEFAULTS: Mapping[str, Any] = {
    "iptables": False,
    "ip-masq": False,
    "bridge": "none",
    "storage-driver": "vfs",
}

_DIGEST_LINE = re.compile(r"^Digest:\s*(sha256:[0-9a-f]{64})", re.MULTILINE)


def docker_cli() -> str:
    """The Docker CLI, preferring Debian's (``/usr/bin/docker`` from docker.io) via find_binary."""
    return need_binary("docker")


@dataclass(frozen=True)
class DockerPull:
    """Outcome of one ``docker pull``."""

    returncode: int
    output: str
    """stdout and stderr together."""
    digest: str | None
    """The ``Digest:`` line docker printed on success."""
    seconds: float

    @property
    def ok(self) -> bool:
        """True when docker exited 0."""
        return self.returncode == 0

    def __iter__(self) -> Iterator[object]:
        """Unpack as ``rc, output, digest = dockerd.docker_pull(ref)``."""
        return iter((self.returncode, self.output, self.digest))


class DockerDaemon(Component):
    """``dockerd`` with everything (data, exec root, socket, config, /etc/docker) in its temp dir."""

    name = "dockerd"
    start_timeout = 60.0

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        daemon_json: Mapping[str, Any] | None = None,
        config_file: Path | None = None,
        containerd: Containerd | str | None = None,
        hosts_file: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Configure (not start) dockerd.

        - ``daemon_json``: settings written to daemon.json (lab defaults added if absent), or
          ``config_file``: a daemon.json the caller wrote (read to decide which lab flags to add).
        - ``containerd``: a lab Containerd or a socket path; None lets dockerd start its own
          (which leaves ``/opt/containerd`` behind on the machine).
        - ``hosts_file``: file shown as /etc/hosts to dockerd (names in pulls resolve there).
        - ``env``: extra environment, e.g. ``HTTPS_PROXY``/``NO_PROXY`` (dockerd's only proxy
          source in 20.10).
        """
        super().__init__(workdir)
        if daemon_json is not None and config_file is not None:
            raise ValueError("give daemon_json or config_file, not both")
        self.daemon_json = dict(daemon_json or {})
        self.config_file = config_file
        self.containerd = containerd
        self.hosts_file = hosts_file
        self.extra_env = dict(env or {})
        # Unix socket paths are limited to 108 bytes and dockerd nests sockets deep inside its
        # exec root, so the sockets live in a short directory of their own, not in the workdir.
        self.short_dir = Path(tempfile.mkdtemp(prefix="rtd", dir="/tmp"))
        self.socket_path = self.short_dir / "docker.sock"
        self.data_root = self.workdir / "data"
        self.exec_root = self.short_dir / "x"
        self.etc_docker = self.workdir / "etc-docker"
        self.client_config_dir = self.workdir / "client"
        self.pidfile = self.workdir / "dockerd.pid"

    # -- addresses ------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """``unix://SOCK`` for ``docker -H``."""
        return f"unix://{self.socket_path}"

    @property
    def certs_d(self) -> Path:
        """The directory dockerd sees as ``/etc/docker/certs.d``."""
        return self.etc_docker / "certs.d"

    def add_registry_ca(self, host_port: str, ca_file: Path) -> Path:
        """Trust ``ca_file`` for ``host_port`` (``certs.d/HOST:PORT/ca.crt``); read per pull."""
        target = self.certs_d / host_port / "ca.crt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(ca_file).read_bytes())
        return target

    # -- lifecycle ------------------------------------------------------------------------
    def _effective_config(self) -> tuple[Path, dict[str, Any]]:
        """The daemon.json path and its parsed content (written here from daemon_json)."""
        if self.config_file is not None:
            return self.config_file, json.loads(Path(self.config_file).read_text() or "{}")
        config = {**LAB_DAEMON_DEFAULTS, **self.daemon_json}
        path = self.workdir / "daemon.json"
        path.write_text(json.dumps(config, indent=2))
        return path, config

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Write daemon.json and build the namespaced dockerd command."""
        if os.geteuid() != 0:
            raise LabError("dockerd needs root")
        for d in (self.data_root, self.exec_root, self.certs_d, self.client_config_dir):
            d.mkdir(parents=True, exist_ok=True)
        config_path, config = self._effective_config()
        argv = [
            need_binary("dockerd"),
            "--config-file", str(config_path),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "-H", self.host,
            "--pidfile", str(self.pidfile),
        ]
        # Lab settings a caller-written config lacks are given as flags instead.
        for key, value in LAB_DAEMON_DEFAULTS.items():
            if key not in config:
                flag_value = str(value).lower() if isinstance(value, bool) else str(value)
                argv.append(f"--{key}={flag_value}")
        if self.containerd is not None:
            address = (
                self.containerd.address if isinstance(self.containerd, Containerd) else self.containerd
            )
            argv += ["--containerd", str(address)]
        binds = {"/etc/docker": self.etc_docker} if Path("/etc/docker").is_dir() else {}
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.workdir),
            **self.extra_env,
        }
        return wrap_in_mount_namespace(argv, hosts_file=self.hosts_file, binds=binds), env

    def stop(self) -> None:
        """Stop dockerd, then remove its short socket directory."""
        try:
            super().stop()
        finally:
            shutil.rmtree(self.short_dir, ignore_errors=True)

    def _ready(self) -> bool:
        """Ready when ``docker version`` reaches the daemon (``_ping`` answered)."""
        if not self.socket_path.exists():
            return False
        return self.docker(["version", "--format", "{{.Server.Version}}"], timeout=5).returncode == 0

    def reload(self, daemon_json: Mapping[str, Any] | None = None, *, timeout: float = 10.0) -> None:
        """Rewrite daemon.json (lab defaults kept) and SIGHUP dockerd to reload it.

        In 20.10 ``registry-mirrors``, ``insecure-registries`` and a few others reload live;
        proxies do not (they come from the environment).
        """
        if daemon_json is not None:
            if self.config_file is not None:
                raise LabError("reload with new settings needs a daemon_json-managed config")
            self.daemon_json = dict(daemon_json)
            self._effective_config()
        if self.process is None or self.process.pid is None:
            raise LabError("dockerd is not running")
        marker = self.log_text().count("Reloaded configuration")
        os.kill(self.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count("Reloaded configuration") > marker:
                return
            time.sleep(0.05)
        raise LabError(f"dockerd did not log a reload within {timeout}s\n{self.process.log_tail()}")

    # -- client ---------------------------------------------------------------------------
    def client_env(self) -> dict[str, str]:
        """Environment for the CLI: our ``DOCKER_CONFIG``, no proxies, no ``DOCKER_HOST``."""
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.workdir),
            "DOCKER_CONFIG": str(self.client_config_dir),
        }

    def login_config(self, auths: Mapping[str, tuple[str, str]]) -> Path:
        """Write the client's ``config.json`` with Basic credentials per registry host."""
        self.client_config_dir.mkdir(parents=True, exist_ok=True)
        entries = {
            host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
            for host, (user, password) in auths.items()
        }
        path = self.client_config_dir / "config.json"
        path.write_text(json.dumps({"auths": entries}, indent=2))
        return path

    def docker(self, args: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``docker -H unix://SOCK ARGS`` with the lab client environment and a timeout."""
        return run([docker_cli(), "-H", self.host, *args], timeout=timeout, env=self.client_env())

    def docker_pull(self, ref: str, *, timeout: float = 90.0) -> DockerPull:
        """``docker pull REF``; returns rc, combined output and the printed digest."""
        began = time.monotonic()
        result = self.docker(["pull", ref], timeout=timeout)
        output = result.stdout + result.stderr
        match = _DIGEST_LINE.search(result.stdout)
        digest = match.group(1) if (match and result.returncode == 0) else None
        return DockerPull(result.returncode, output, digest, time.monotonic() - began)

    def remove_image(self, ref: str, *, timeout: float = 30.0) -> int:
        """``docker rmi -f REF``; returns the exit code (a later pull then fetches again)."""
        return self.docker(["rmi", "-f", ref], timeout=timeout).returncode
