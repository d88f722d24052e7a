"""Whether dockerd or the Docker CLI is on the host, and the files that tell.

Kept apart from the daemon's readers and planner (and the CLI config reader) so that detecting the
runtimes of a host does not load them when Docker is not there.
"""

from __future__ import annotations

import posixpath

from regtui.config import systemd
from regtui.host import Host

__all__ = ["detect", "cli_dir", "config_files", "DAEMON_JSON", "UNIT"]

#: dockerd's configuration file.
DAEMON_JSON = "/etc/docker/daemon.json"
#: dockerd's systemd unit.
UNIT = "docker.service"

#: Environment files the packaged docker.service reads (deb and RPM layouts).
_ENV_FILES = ("/etc/default/docker", "/etc/sysconfig/docker")


def detect(host: Host, cli_files: list[str] | None = None) -> list[str]:
    """Evidence that dockerd or its CLI is installed or configured under the root: any file either
    reads (daemon.json, the unit and its drop-ins, the CLI's config.json) or the binary.

    ``cli_files``: :func:`config_files` when the caller has it already (it looks at every user's home)."""
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
    evidence += config_files(host) if cli_files is None else cli_files
    return evidence


def cli_dir(host: Host) -> tuple[str, str]:
    """The directory of the Docker CLI config root's ``docker pull`` reads, and why that one."""
    if host.live and host.environ.get("DOCKER_CONFIG"):
        return host.environ["DOCKER_CONFIG"], "$DOCKER_CONFIG"
    home = host.home("root")
    return posixpath.join(home, ".docker"), f"home of root ({home})"


#: /etc/passwd lines looked at for users' CLI configs (a bound for hostile or huge files).
_MAX_PASSWD_LINES = 5000
#: Users' config.json files listed as evidence, beyond the one regtui reads.
_MAX_USER_CONFIGS = 20


def config_files(host: Host) -> list[str]:
    """The Docker CLI config.json files present: the one ``docker pull`` as root reads (checked by
    :func:`~regtui.runtimes.docker.cliconfig.load_cli_config`), then those of the other users in the root's /etc/passwd."""
    directory, _ = cli_dir(host)
    main = posixpath.join(directory, "config.json")
    found = [main] if host.exists(main) else []
    passwd = host.read("/etc/passwd")
    if not passwd.ok:
        return found
    for line in passwd.text.splitlines()[:_MAX_PASSWD_LINES]:
        fields = line.split(":")
        if len(fields) < 6 or not fields[5].startswith("/") or fields[5] == "/":
            continue
        path = posixpath.join(fields[5], ".docker", "config.json")
        if path not in found and host.is_file(path):
            found.append(path)
            if len(found) > _MAX_USER_CONFIGS:
                break
    return found
