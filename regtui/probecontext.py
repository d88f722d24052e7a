"""The probe contract: what every probe gets (:class:`ProbeContext`) and returns (:class:`ProbeResult`).

The probes in :mod:`regtui.checks` and the test pull in :mod:`regtui.registry` take a context;
:mod:`regtui.probes` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from regtui.host import Host
from regtui.model import Finding, Route
from regtui.net.http import Timeouts
from regtui.net.resolver import Resolver
from regtui.options import CheckOptions
from regtui.runtimes.view import RuntimeView

__all__ = ["ProbeContext", "ProbeResult"]


@dataclass
class ProbeContext:
    """What every probe gets: the host, what to probe, and the shared network plumbing."""

    host: Host
    options: CheckOptions
    routes: list[Route]
    views: list[RuntimeView]
    resolver: Resolver
    """The resolver every lookup made on the runtime's behalf uses: the root's (resolv.conf, hosts file)
    or, with --dns-server, that server instead of it. Its log is the DNS truth."""
    timeouts: Timeouts
    comparison: Resolver | None = None
    """With --dns-server: the root's own resolver, which the DNS panel asks only to show its answer
    beside the used one (never used for a connection). ``None``: built from the root when needed."""
    observations: dict[str, Any] = field(default_factory=dict)
    """Facts one probe records for others (``registry_dates``: list of (endpoint, Date header, local time))."""
    progress: Callable[[str, Any], None] | None = None
    """Called with (panel, partial data) as results arrive (the workbench fills panels live)."""

    def view(self, runtime: str) -> RuntimeView | None:
        """The runtime view by name."""
        return next((v for v in self.views if v.name == runtime), None)


@dataclass
class ProbeResult:
    """One panel's live results."""

    panel: str
    data: Any
    """JSON-ready data for the report's ``probes.<panel>`` and the workbench panel."""
    findings: list[Finding] = field(default_factory=list)
    elapsed_ms: float = 0.0
    error: str | None = None
    """An internal error in the probe (a bug), reported as such, never as a finding."""
