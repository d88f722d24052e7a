"""Whether CRI-O, podman, skopeo or buildah is on the host, and the paths that tell.

Kept apart from the readers (with the paths they share) so that detecting the runtimes of a host
does not load CRI-O's configuration readers when none of these tools is there.
"""

from __future__ import annotations

import posixpath

from regtui.config import systemd
from regtui.host import Host

__all__ = ["detect", "BINARIES", "CONFIG_DIRS", "CRIO_UNIT", "CRIO_ENV_FILES", "USER_REGISTRIES_CONF",
           "USER_REGISTRIES_DIR", "USER_CERTS_DIR"]

BINARIES = ("crio", "podman", "skopeo", "buildah")
CONFIG_DIRS = ("/etc/containers", "/etc/crio")
CRIO_UNIT = "crio.service"
#: Environment files the packaged crio.service reads (RPM and deb layouts).
CRIO_ENV_FILES = ("/etc/sysconfig/crio", "/etc/default/crio")
#: Under root's home: podman/skopeo's own registries.conf, its drop-in directory and certificates.
USER_REGISTRIES_CONF = ".config/containers/registries.conf"
USER_REGISTRIES_DIR = ".config/containers/registries.conf.d"
USER_CERTS_DIR = ".config/containers/certs.d"

#: Files under root's home that podman/skopeo/buildah (containers/image) read for a pull.
_USER_FILES = (USER_REGISTRIES_CONF, ".config/containers/auth.json", ".config/containers/policy.json")
#: Where podman as root keeps ``podman login`` credentials (``/run/containers/$UID/auth.json``).
_RUN_AUTH = "/run/containers/0/auth.json"
#: Variables naming a file podman/skopeo read instead of the default (honoured on the live system).
_FILE_VARIABLES = ("CONTAINERS_REGISTRIES_CONF", "REGISTRY_AUTH_FILE")


def detect(host: Host) -> list[str]:
    """Binaries and files that show CRI-O, podman, skopeo or buildah on the host: the config dirs,
    crio.service with its drop-ins and environment files, and root's own registries.conf(.d),
    auth.json and policy.json (the Docker CLI's config.json, which they also read, is Docker's)."""
    evidence = [p for b in BINARIES if (p := host.which(b))]
    evidence += [d for d in CONFIG_DIRS if host.is_dir(d)]
    evidence += systemd.unit_paths(host, CRIO_UNIT)
    evidence += [p for p in CRIO_ENV_FILES if host.is_file(p)]
    home = host.home()
    evidence += [p for rel in _USER_FILES if host.is_file(p := posixpath.join(home, rel))]
    evidence += host.glob(posixpath.join(home, USER_REGISTRIES_DIR), ".conf")
    if host.listdir(posixpath.join(home, USER_CERTS_DIR)):
        evidence.append(posixpath.join(home, USER_CERTS_DIR))
    if host.is_file(_RUN_AUTH):
        evidence.append(_RUN_AUTH)
    if host.live:
        evidence += [v for k in _FILE_VARIABLES if (v := host.environ.get(k, "")) and host.is_file(v)]
    return list(dict.fromkeys(evidence))
