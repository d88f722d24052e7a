"""Network probes, run concurrently: every panel's live evidence in about one timeout.

Each probe module exposes ``async def probe(ctx: ProbeContext) -> ProbeResult``. The
orchestrator runs them all at once, then lets modules that explain each other's results
(a certificate "not yet valid" explained by clock skew) look at the whole set through
``correlate(results) -> list[Finding]``.

Probe modules (``PROBE_MODULES``): mirrors (ping/auth/manifest per endpoint), certs (TLS
chains), proxy (reachability, CONNECT), dns, clock. The test pull is separate
(:mod:`regtui.registry.pull`) because it is long and reports progress.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from regtui.host import Host
from regtui.model import Finding, Route
from regtui.net.http import Timeouts
from regtui.net.resolver import Resolver
from regtui.options import CheckOptions
from regtui.runtimes.view import RuntimeView

__all__ = ["ProbeContext", "ProbeResult", "run_probes", "PROBE_MODULES"]

#: Probe modules by panel, in panel order.
PROBE_MODULES = {
    "mirrors": "regtui.checks.mirrors",
    "certs": "regtui.checks.tls",
    "proxy": "regtui.checks.proxy_live",
    "dns": "regtui.checks.dns",
    "clock": "regtui.checks.clock",
}


@dataclass
class ProbeContext:
    """What every probe gets: the host, what to probe, and the shared network plumbing."""

    host: Host
    options: CheckOptions
    routes: list[Route]
    views: list[RuntimeView]
    resolver: Resolver
    """The resolver every connection uses (root's resolv.conf or --dns-server); its log is the DNS truth."""
    timeouts: Timeouts
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


async def _one(panel: str, module: str, ctx: ProbeContext, debug: bool) -> ProbeResult:
    started = time.monotonic()
    try:
        mod = importlib.import_module(module)
        result: ProbeResult = await mod.probe(ctx)
    except Exception as exc:  # a probe bug (a missing dependency too) must not take the other panels down
        if isinstance(exc, ModuleNotFoundError) and exc.name == module:
            return ProbeResult(panel, None, error="not built in this version")
        msg = f"{type(exc).__name__}: {exc}"
        if debug:
            msg += "\n" + traceback.format_exc()
        result = ProbeResult(panel, None, error=msg)
    result.elapsed_ms = (time.monotonic() - started) * 1000
    if ctx.progress:
        ctx.progress(panel, result)
    return result


async def run_probes(ctx: ProbeContext, panels: tuple[str, ...] | None = None, debug: bool = False) -> dict[str, ProbeResult]:
    """Run the probes of ``panels`` (all by default) concurrently, then correlate their results."""
    wanted = {p: m for p, m in PROBE_MODULES.items() if panels is None or p in panels}
    results = await asyncio.gather(*(_one(p, m, ctx, debug) for p, m in wanted.items()))
    by_panel = {r.panel: r for r in results}
    for panel, module in wanted.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        correlate = getattr(mod, "correlate", None)
        if correlate:
            try:
                by_panel[panel].findings += correlate(by_panel, ctx)
            except Exception as exc:
                by_panel[panel].error = f"correlate: {type(exc).__name__}: {exc}"
    return by_panel
