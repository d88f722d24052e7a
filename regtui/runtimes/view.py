"""What each runtime module hands the engine: its configuration as read, and a planner.

Each runtime package (``regtui.runtimes.docker``, ``containerd``, ``crio``, ``k3s``) provides

- ``detect(host) -> list[str]``: evidence the runtime is installed or configured: its binaries
  and every file it or its CLI reads that is present (config files, unit drop-ins, environment
  files, client configs such as the Docker CLI's config.json); empty when there is none. The
  report lists it as ``detected_by``;
- ``load(host, options) -> RuntimeView``: read every file the runtime reads and return the
  view below, with the offline findings about those files.

The engine calls ``view.plan(reference)`` for every image to get the route and the findings
that depend on the reference (``mirror.not-applied``, ``mirror.skipped``, ``config.blocked``).
Online, names listed by ``view.resolves(reference)`` are resolved first and the route planned again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from regtui.credentials import Credential
from regtui.model import Finding, Route, SourceFile
from regtui.net.proxy import ProxyEnv
from regtui.refs import Reference

__all__ = ["RuntimeView", "Planner", "CredentialLookup"]

Planner = Callable[[Reference], tuple[Route, list[Finding]]]
CredentialLookup = Callable[[str], Credential | None]


@dataclass
class RuntimeView:
    """One runtime's configuration as that runtime reads it."""

    name: str
    """``docker``, ``containerd``, ``crio`` or ``k3s``."""
    detected_by: list[str]
    """Paths or binaries that show the runtime is here (empty when only asked for)."""
    sources: list[SourceFile] = field(default_factory=list)
    """Every file read (or looked for), with status, for the Config panel and the report."""
    findings: list[Finding] = field(default_factory=list)
    """Findings decidable from files alone, independent of any image reference."""
    proxy_env: ProxyEnv = field(default_factory=ProxyEnv)
    """The daemon's proxy environment (systemd, daemon.json ``proxies``, env files)."""
    planner: Planner | None = None
    """Builds the route for one reference; ``None`` when the runtime cannot pull (config broken)."""
    credentials: CredentialLookup | None = None
    """Credentials the runtime would send to an endpoint host (``host[:port]``), or ``None``."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Effective values worth showing (store, version, config_path, pull mode, concurrency...)."""
    resolves: Callable[[Reference], list[str]] | None = None
    """Host names whose addresses decide ``ref``'s route (dockerd's insecure CIDRs); an online check
    looks them up with the probes' resolver, puts the answers in :attr:`resolved` and plans again."""
    resolved: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    """Name -> (addresses, how it was resolved); no addresses when the lookup failed. The planner reads it."""

    def plan(self, ref: Reference) -> tuple[Route, list[Finding]]:
        """Route and reference-specific findings for ``ref``."""
        if self.planner is None:
            return Route(self.name, str(ref), (), notes=("no route: the configuration could not be read",)), []
        return self.planner(ref)
