"""Whether dockerd or the Docker CLI is on the host, and the files that tell.

Kept apart from the daemon's readers and planner so that detecting the runtimes of a host does not
load them when Docker is not there.
"""

from __future__ import annotations

from regtui.config import systemd
from regtui.host import Host
from regtui.runtimes.docker.cliconfig import config_files
from regtui.runtimes.docker.model import DAEMON_JSON, UNIT

__all__ = ["detect"]

#: Environment files the packaged docker.service reads (deb and RPM layouts).
_ENV_FILES = ("/etc/default/docker", "/etc/sysconfig/docker")


def detect(host: Host) -> list[str]:
    """Evidence that dockerd or its CLI is installed or configured under the root: any file either
    reads (daemon.json, the unit and its drop-ins, the CLI's config.json) or the binary."""
    evidence: list[str] = []
    if host.exists(DAEMON_JSON):
        evidence.append(DAEMON_JSON)
    elif host.is_dir("/etc/docker"):
        evidence.append("/etc/docker")
    binary = host.which("dockerd")
    if binary:
        evidence.append(binary)
    evidence += systemd.unit_paths(host, UNIT)
    evidence += [p for p in _ENV_FILES if host.is_file(p)]
    evidence += config_files(host)
    return evidence
