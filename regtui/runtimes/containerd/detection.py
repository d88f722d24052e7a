"""Whether containerd is installed or configured on the host, and the paths that tell.

Kept apart from the configuration readers and the planner so that detecting the runtimes of a host
does not load them when containerd is not there.
"""

from __future__ import annotations

from regtui.config.systemd import unit_paths
from regtui.host import Host
from regtui.runtimes.containerd.model import DEFAULT_HOSTS_DIR

__all__ = ["detect", "CONFIG_PATH", "UNIT"]

CONFIG_PATH = "/etc/containerd/config.toml"
UNIT = "containerd.service"
_SOCKET = "/run/containerd/containerd.sock"

#: Drop-ins the default configuration of recent containerd releases imports (``imports =
#: ['/etc/containerd/conf.d/*.toml']``, upstream PR 12323): files only containerd reads.
_CONF_D = "/etc/containerd/conf.d"


def detect(host: Host) -> list[str]:
    """Paths and binaries that show containerd is installed or configured here: its config.toml,
    conf.d drop-ins, hosts directories (read by the CRI and by ctr/nerdctl), the socket, the unit
    and its drop-ins, the binary."""
    found = [p for p in (CONFIG_PATH, _SOCKET) if host.exists(p)]
    found += host.glob(_CONF_D, ".toml")
    if host.listdir(DEFAULT_HOSTS_DIR):
        found.append(DEFAULT_HOSTS_DIR)
    found += unit_paths(host, UNIT)
    binary = host.which("containerd")
    if binary:
        found.append(binary)
    return found
