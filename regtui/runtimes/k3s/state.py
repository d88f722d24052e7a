"""What the k3s runtime knows about one node: the service settings, ``registries.yaml``, the hosts
k3s will write, the files it wrote at its last start, and the embedded containerd's proxy environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from regtui.config._source import Parsed
from regtui.config.k3sservice import K3sService
from regtui.net.proxy import ProxyEnv
from regtui.runtimes.containerd.model import ContainerdConfig
from regtui.runtimes.k3s.expected import ExpectedHost
from regtui.runtimes.k3s.registries import Registries

__all__ = ["GeneratedDir", "Generated", "K3sState"]


@dataclass
class GeneratedDir:
    """One directory under the generated ``certs.d``."""

    name: str
    path: str
    hosts_file: str
    header: bool
    """The hosts.toml starts with the generated-file header (k3s deletes it on restart)."""
    parsed: Parsed | None = None
    mtime: float | None = None


@dataclass
class Generated:
    """What k3s wrote at its last start."""

    config_toml: str
    certs_dir: str
    exists: bool = False
    mtime: float | None = None
    containerd: ContainerdConfig | None = None
    mode: str = "absent"
    """``hosts.toml`` (config_path), ``legacy`` (mirrors in config.toml, k3s before 2024), ``none`` or ``absent``."""
    roots: list[str] = field(default_factory=list)
    dirs: dict[str, GeneratedDir] = field(default_factory=dict)
    template: str | None = None
    """A user template next to config.toml that replaces k3s's own."""


@dataclass
class K3sState(K3sService):
    """Everything the k3s planner needs."""

    version: tuple[int, int, int] | None = None
    version_text: str = ""
    version_source: str = ""
    containerd_version: tuple[int, int, int] | None = None
    containerd_version_text: str = ""
    containerd_version_source: str = ""
    registries: Registries = field(default_factory=lambda: Registries(""))
    expected: dict[str, ExpectedHost] = field(default_factory=dict)
    generated: Generated = field(default_factory=lambda: Generated("", ""))
    differing: dict[str, str] = field(default_factory=dict)
    """Generated dir name -> how it differs from what registries.yaml implies."""
    stale: bool = False
    """registries.yaml changed after k3s last generated its files."""
    proxy_env: ProxyEnv = field(default_factory=ProxyEnv)
    flagged_files: set[str] = field(default_factory=set)
    """CA/client files already reported from registries.yaml (not reported again per route)."""
