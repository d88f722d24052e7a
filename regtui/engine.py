"""The check: detect runtimes, read their configuration, plan routes, collect findings.

This is the one entry point both front ends (CLI and workbench) use. It never imports textual,
and with ``offline=True`` it never touches the network.
"""

from __future__ import annotations

import importlib
import socket
import traceback
from dataclasses import dataclass, field, replace
from datetime import timezone
from types import ModuleType
from typing import Any, Callable

from regtui import checker, redact
from regtui.checks import certs as cert_checks
from regtui.checks import proxy as proxy_checks
from regtui.findings import assign_ids, cap, dedupe
from regtui.host import Host
from regtui.model import Finding, Route, RuntimeInfo
from regtui.options import RUNTIMES, CheckOptions
from regtui.refs import Reference, parse
from regtui.report import Report
from regtui.runtimes.view import RuntimeView

__all__ = ["run_check", "plan", "resolve_routes", "network", "build_report", "probe_context", "pull_runtime", "load_runtimes",
           "select_runtimes", "Plan", "NetworkResults", "runtime_module"]

Progress = Callable[[str], None]


def runtime_module(name: str) -> ModuleType:
    """The package of runtime ``name`` (``detect`` and ``load``), imported on first use: a check or
    pull of one runtime does not pay for the other runtimes' readers."""
    if name not in RUNTIMES:
        raise KeyError(name)
    return importlib.import_module(f"regtui.runtimes.{name}")



def _internal(errors: list[str], what: str, exc: BaseException, debug: bool) -> None:
    msg = f"{what}: {type(exc).__name__}: {exc}"
    if debug:
        msg += "\n" + traceback.format_exc()
    # The message may quote a config line: it enters the report (and stderr) redacted.
    errors.append(redact.value(msg))


def select_runtimes(host: Host, wanted: str, errors: list[str], debug: bool = False) -> dict[str, list[str]]:
    """Runtime name -> detection evidence, for ``auto`` (detected), ``all`` or one name."""
    detected: dict[str, list[str]] = {}
    for name in ([wanted] if wanted in RUNTIMES else RUNTIMES):
        try:
            evidence = list(runtime_module(name).detect(host))
        except Exception as exc:  # a bug in a reader must not hide the other runtimes
            _internal(errors, f"detecting {name}", exc, debug)
            evidence = []
        detected[name] = evidence
    if wanted == "all":
        return detected
    if wanted in RUNTIMES:
        return {wanted: detected[wanted]}
    return {n: ev for n, ev in detected.items() if ev}


def load_runtimes(host: Host, options: CheckOptions, errors: list[str], debug: bool = False) -> list[RuntimeView]:
    """Read the configuration of every selected runtime."""
    views: list[RuntimeView] = []
    for name, evidence in select_runtimes(host, options.runtime, errors, debug).items():
        try:
            view = runtime_module(name).load(host, options)
        except Exception as exc:
            _internal(errors, f"reading {name} configuration", exc, debug)
            continue
        if not view.detected_by:
            view.detected_by = evidence
        views.append(view)
    return views


def _hostname(host: Host) -> str:
    f = host.read("/etc/hostname")
    if f.ok and f.text.strip():
        return f.text.strip().splitlines()[0]
    if host.live:
        return socket.gethostname()
    return "unknown"


def _kubelet(host: Host, errors: list[str], debug: bool) -> tuple[dict[str, Any] | None, list[Finding], list[Any]]:
    try:
        mod = importlib.import_module("regtui.config.kubelet")
    except ImportError:
        return None, [], []
    try:
        view = mod.load(host)
    except Exception as exc:
        _internal(errors, "reading kubelet configuration", exc, debug)
        return None, [], []
    data = {"detected": view.detected, "runtime": view.runtime, "endpoint": view.endpoint, "source": view.source}
    return data, list(view.findings), list(view.sources)


@dataclass
class Plan:
    """The offline stage: runtimes read, routes planned, offline findings."""

    host: Host
    options: CheckOptions
    refs: list[Reference]
    views: list[RuntimeView]
    routes: list[Route]
    findings: list[Finding]
    sources: list[Any]
    kubelet: dict[str, Any] | None
    errors: list[str]
    kubelet_findings: list[Finding] = field(default_factory=list)
    logs: Any = None
    """What the runtimes logged (:class:`regtui.runtimelog.RuntimeSaid`), read once per plan: a
    report is built again after every probe, and the journal need not be read each time."""
    debug: bool = False
    """``--debug``: an internal error met while building the report carries its traceback."""


def _routes(host: Host, views: list[RuntimeView], refs: list[Reference], errors: list[str],
            debug: bool) -> tuple[list[Route], list[Finding]]:
    """Every view's routes for ``refs`` and the findings of the configuration and of those routes."""
    findings: list[Finding] = []
    routes: list[Route] = []
    for view in views:
        findings += view.findings
        for ref in refs:
            try:
                route, ref_findings = view.plan(ref)
            except Exception as exc:
                _internal(errors, f"planning {ref} for {view.name}", exc, debug)
                continue
            routes.append(route)
            findings += ref_findings
    findings += cert_checks.verify_disabled(routes)
    findings += proxy_checks.offline_findings(views, routes, dict(host.environ))
    return routes, findings


def plan(options: CheckOptions, host: Host | None = None, *, debug: bool = False,
         refs: list[Reference] | None = None) -> Plan:
    """Read every selected runtime's configuration and plan the route of every image (no network)."""
    host = host or Host.from_args(options.root)
    refs = refs if refs is not None else [parse(i) for i in options.images]
    errors: list[str] = []
    views = load_runtimes(host, options, errors, debug)
    sources: list[Any] = [s for view in views for s in view.sources]
    routes, findings = _routes(host, views, refs, errors, debug)
    kubelet, kubelet_findings, kubelet_sources = _kubelet(host, errors, debug)
    findings += kubelet_findings
    sources += kubelet_sources
    return Plan(host, options, refs, views, routes, findings, sources, kubelet, errors, kubelet_findings, debug=debug)


async def resolve_routes(p: Plan, ctx: Any, *, debug: bool = False) -> None:
    """Online: resolve the names a runtime decides its route by, as that runtime does, and plan again.

    dockerd treats a registry as insecure when its name resolves into an insecure CIDR (127.0.0.0/8
    always); the lookup uses the probes' resolver (the root's files or ``--dns-server``), so it is
    logged for the DNS panel. ``p`` and ``ctx`` get the new routes and findings; a failed lookup is an
    answer too (dockerd then finds no CIDR match).
    """
    import asyncio

    from regtui.net.resolver import ResolveError

    wanted: dict[str, list[RuntimeView]] = {}
    for view in p.views:
        if view.resolves is None:
            continue
        for ref in p.refs:
            try:
                names = view.resolves(ref)
            except Exception as exc:
                _internal(p.errors, f"planning {ref} for {view.name}", exc, debug)
                continue
            for name in names:
                if name not in view.resolved:
                    wanted.setdefault(name, []).append(view)
    if not wanted:
        return

    async def lookup(name: str) -> tuple[str, tuple[str, ...], str] | None:
        try:
            found = await ctx.resolver.resolve(name)
        except ResolveError as exc:
            return name, (), f" (lookup failed: {exc})"
        except Exception as exc:  # a resolver bug leaves the route as planned offline (its note says so)
            _internal(p.errors, f"resolving {name}", exc, debug)
            return None
        return name, tuple(found.addresses), f" via {found.server or found.source}, {found.resolver} resolver"

    for answer in await asyncio.gather(*(lookup(n) for n in sorted(wanted))):
        if answer is not None:
            for view in wanted[answer[0]]:
                view.resolved[answer[0]] = (answer[1], answer[2])
    errors: list[str] = []
    routes, findings = _routes(p.host, p.views, p.refs, errors, debug)
    p.routes, p.findings = routes, findings + p.kubelet_findings
    p.errors += [e for e in errors if e not in p.errors]
    ctx.routes = p.routes


def pull_runtime(p: Plan) -> str | None:
    """The runtime the test pull imitates: the one asked for, else kubelet's, else the first detected."""
    names = [v.name for v in p.views]
    if p.options.runtime in names:
        return p.options.runtime
    if p.kubelet and p.kubelet.get("runtime") in names:
        return p.kubelet["runtime"]
    return names[0] if names else None


@dataclass
class NetworkResults:
    """The network stage: probe results per panel and the test pull."""

    probes: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    pull: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    endpoint_status: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(runtime, endpoint key) -> (status, reason) learnt from probes (``Endpoint.key``: URL, TLS inputs, proxy, credentials)."""

    def add_probe(self, panel: str, result: Any) -> None:
        """One probe's result (a :class:`regtui.probecontext.ProbeResult`): its data, findings and error note."""
        self.probes[panel] = {"data": result.data, "elapsed_ms": round(result.elapsed_ms, 1), "error": result.error}
        self.findings += result.findings
        if result.error:
            self.notes.append(f"{panel} probe: {result.error.splitlines()[0]}")


def probe_context(p: Plan, progress: Callable[[str, Any], None] | None = None) -> Any:
    """The shared context for the network stage (resolver from the root or --dns-server)."""
    from regtui.net.http import Timeouts
    from regtui.net.resolver import Resolver
    from regtui.probecontext import ProbeContext

    resolver = Resolver.for_host(p.host, p.options.dns_server, p.options.timeout)
    return ProbeContext(p.host, p.options, p.routes, p.views, resolver,
                        Timeouts(connect=p.options.timeout, read=p.options.timeout), progress=progress)


async def network(p: Plan, ctx: Any, *, debug: bool = False, pull_progress: Callable[..., None] | None = None) -> NetworkResults:
    """Run every probe concurrently, then the test pull (unless --no-pull)."""
    from regtui.probes import run_probes

    out = NetworkResults()
    await resolve_routes(p, ctx, debug=debug)
    results = await run_probes(ctx, debug=debug)
    for panel, result in results.items():
        out.add_probe(panel, result)
    out.endpoint_status = dict(ctx.observations.get("endpoint_status", {}))
    runtime = pull_runtime(p)
    if p.options.no_pull or not p.refs or runtime is None:
        if not p.options.no_pull and p.refs and runtime is None:
            out.notes.append("no runtime to imitate: test pull skipped")
        return out
    try:
        from regtui.registry.pull import test_pull
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("regtui.registry"):
            raise
        out.notes.append("the test pull is not built in this version")
        return out
    try:
        out.pull, pull_findings = await test_pull(ctx, p.refs[0], runtime, concurrency=p.options.concurrency,
                                                  progress=pull_progress)
        out.findings += pull_findings
    except Exception as exc:
        _internal(out.errors, "test pull", exc, debug)
    return out


def _without_unserved_stale(findings: list[Finding]) -> list[Finding]:
    """Drop ``mirror.stale`` where the test pull found the mirror's digest for the tag is one it does not serve.

    The mirrors probe reads the digest a HEAD names; when the pull then finds no manifest under that digest
    (``pull.digest-mismatch`` claimed by Docker-Content-Digest), the mirror serves no other image: its header
    lies, and "it pulls the mirror's (older) image" would contradict the failing pull.
    """
    unserved = set()
    for f in findings:
        failure = f.evidence.get("failure") if f.code == "pull.digest-mismatch" else None
        details = failure.get("details") if isinstance(failure, dict) else None
        if isinstance(details, dict) and details.get("claimed_by") == "Docker-Content-Digest":
            unserved.add((f.evidence.get("endpoint"), details.get("expected")))
    if not unserved:
        return findings
    return [f for f in findings if not (f.code == "mirror.stale" and
                                        (f.evidence.get("endpoint"), f.evidence.get("mirror_digest")) in unserved)]


def _with_status(routes: list[Route], status: dict[tuple[str, str], tuple[str, str]]) -> list[Route]:
    if not status:
        return routes
    out = []
    for r in routes:
        eps = []
        for ep in r.endpoints:
            st = status.get((r.runtime, ep.key))
            eps.append(replace(ep, status=st[0], reason=st[1]) if st and ep.status != "skipped" else ep)
        out.append(replace(r, endpoints=tuple(eps)))
    return out


def build_report(p: Plan, net: NetworkResults | None) -> Report:
    """Assemble the report from the stages that ran."""
    notes: list[str] = []
    if not p.views:
        notes.append("no container runtime detected under this root (use --runtime to plan for one anyway)")
    if not p.refs:
        notes.append("no image given (--image REF): configuration checked, no route planned")
    findings = list(p.findings)
    # DESIGN's shapes: dns and tls are per-endpoint lists, proxy and clock objects; every panel's
    # whole result (data, elapsed_ms, error) is also kept under "panels" for the workbench.
    probes: dict[str, Any] = {"dns": [], "tls": [], "clock": {}, "proxy": {}}
    probes["proxy"] = {"shell": _shell_proxy(p.host),
                       "daemons": {v.name: {"effective": v.proxy_env.effective(), "sources": dict(v.proxy_env.sources)}
                                   for v in p.views}}
    errors = list(p.errors)
    routes = p.routes
    pull = None
    if net is None:
        probes["status"] = "offline"
        mode = "offline"
    else:
        probes["status"] = "probed"
        probes["panels"] = net.probes
        for panel, result in net.probes.items():
            data = result.get("data")
            if panel == "dns":
                probes["dns"] = list((data or {}).get("hosts", []))
            elif panel == "certs":
                probes["tls"] = list((data or {}).get("endpoints", []))
            elif panel == "proxy":
                probes["proxy"]["live"] = data
            elif panel == "clock":
                probes["clock"] = data or {}
            else:
                probes[panel] = data
        findings += _without_unserved_stale(net.findings)
        notes += net.notes
        errors += net.errors
        pull = net.pull
        routes = _with_status(routes, net.endpoint_status)
        mode = "network"
    findings, routes, probes, verdicts, independent = _diagnose(p, assign_ids(cap(dedupe(findings))), routes, pull,
                                                                probes, mode)
    findings, runtime_said = _runtime_said(p, findings, verdicts, routes, errors)
    return Report(
        generated_at=p.host.now().astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        root=str(p.host.root),
        hostname=_hostname(p.host),
        images=[str(r) for r in p.refs],
        runtimes=[RuntimeInfo(v.name, tuple(v.detected_by), tuple(s.path for s in v.sources if s.status != "missing"))
                  for v in p.views],
        routes=routes,
        findings=findings,
        sources=p.sources,
        probes=probes,
        pull=pull,
        kubelet=p.kubelet,
        summaries={v.name: dict(v.summary) for v in p.views},
        notes=notes,
        errors=errors,
        mode=mode,
        verdicts=verdicts,
        independent=independent,
        runtime_said=runtime_said,
    )


def _runtime_said(p: Plan, findings: list[Finding], verdicts: list[Any], routes: list[Route],
                  errors: list[str]) -> tuple[list[Finding], dict[str, Any] | None]:
    """The pull errors the runtimes logged, each held against the verdicts; unexplained ones become findings."""
    from regtui import runtimelog

    if p.options.logs_since_hours <= 0:
        return findings, None
    try:
        # k3s (and RKE2) keep the embedded containerd's log under their data-dir, which config may move.
        if p.logs is None:
            logs = {runtimelog.k3s_log(str(v.summary.get("data_dir"))): "k3s" for v in p.views
                    if v.name == "k3s" and v.summary.get("data_dir")}
            p.logs = runtimelog.read(p.host, hours=p.options.logs_since_hours,
                                     kubelet_runtime=(p.kubelet or {}).get("runtime"), log_files=logs)
        said = p.logs
        new = runtimelog.assess(said, verdicts, routes)
    except Exception as exc:  # the logs are extra evidence: a bug reading them must not cost the verdicts
        _internal(errors, "reading the runtimes' logs", exc, p.debug)
        return findings, None
    # Ids continue the report's own numbering, so the findings already named by verdicts keep theirs.
    new = assign_ids(findings + new)[len(findings):]
    runtimelog.link_findings(said, new)
    return findings + new, said.to_dict()


def _diagnose(p: Plan, findings: list[Finding], routes: list[Route], pull: dict[str, Any] | None,
              probes: dict[str, Any], mode: str) -> tuple[Any, ...]:
    """The consistency rules, then one verdict per (runtime, image); a cause's fix is offered only if it plans."""
    from regtui import diagnosis

    findings, routes, probes_out = diagnosis.reconcile(findings, routes, pull, probes)
    refused: dict[str, str] = {}
    planned: dict[str, str | None] = {}  # by fix id: several verdicts often share one cause

    baselines: dict[CheckOptions, Any] = {}  # the unchanged host's offline check, shared by every plan below

    def fix_check(f: Finding) -> str | None:
        key = f.fix.id if f.fix is not None else f.id
        if key not in planned:
            planned[key] = _plan_refusal(p, f, probes_out or probes, baselines)
        if planned[key]:
            refused[f.id] = str(planned[key])
        return planned[key]

    created: list[Finding] = []
    verdicts = diagnosis.diagnose(findings, routes, pull, mode=mode, no_pull=p.options.no_pull,
                                  summaries={v.name: dict(v.summary) for v in p.views}, probes=probes_out,
                                  fix_check=fix_check, created=created)
    findings = findings + created
    if refused:  # the finding then says the manual step instead of offering a fix that would refuse
        findings = [replace(f, fix=replace(f.fix, kind="manual", summary=f"{f.fix.summary} (by hand: {refused[f.id]})"))
                    if f.fix is not None and f.id in refused else f for f in findings]
    findings = diagnosis.name_components(findings, verdicts)
    return findings, routes, probes_out or probes, verdicts, diagnosis.independent(findings, verdicts)


def _plan_refusal(p: Plan, f: Finding, probes: dict[str, Any], baselines: dict[CheckOptions, Any]) -> str | None:
    """Why the fix engine would refuse ``f``'s fix (``None`` when it plans, or cannot be asked)."""
    try:
        from regtui import fixes
    except ImportError:
        return None
    try:
        plan = fixes.plan(f, p.host, options=p.options, probes=probes, baselines=baselines)
    except Exception as exc:  # a planner that cannot plan this host is a refusal, not a crash
        return f"the fix cannot be planned here ({type(exc).__name__}: {exc})"
    if not plan.can_apply and f.fix is not None and f.fix.params.get("anchor_missing") and not plan.blocked:
        return None  # it plans once the user supplies the root (`regtui fix --ca-file`), which its steps ask for
    if not plan.can_apply:
        return plan.blocked or ("the fix would change nothing here" if plan.empty and plan.kind != "manual"
                                else "this fix is done by hand")
    return None


def run_check(options: CheckOptions, host: Host | None = None, *, debug: bool = False,
              refs: list[Reference] | None = None, progress: Any = None) -> Report:
    """The whole check: plan, then (unless ``offline``) probes and the test pull, then the report.

    ``progress`` (a :class:`regtui.progress.Progress`) hears of the plan, each probe and the pull's bytes.
    """
    p = plan(options, host, debug=debug, refs=refs)
    net = None
    if not options.offline:
        import asyncio

        if progress is not None:
            progress.planned(p)
        ctx = probe_context(p, progress=progress.probe_done if progress is not None else None)
        net = asyncio.run(network(p, ctx, debug=debug,
                                  pull_progress=progress.layer if progress is not None else None))
    return build_report(p, net)


def network_findings(p: Plan, panel: str) -> list[Finding] | None:
    """The findings of one panel's probe run again on ``p`` (``"pull"``: the test pull); ``None`` when it did not run."""
    import asyncio

    if panel == "pull":
        ctx = probe_context(p)
        net = asyncio.run(network(p, ctx))
        return list(net.findings) if net.pull is not None else None
    from regtui.probes import run_probes

    ctx = probe_context(p)
    results = asyncio.run(run_probes(ctx, panels=(panel,)))
    result = results.get(panel)
    if result is None or result.error:
        return None
    return list(result.findings)


def _shell_proxy(host: Host) -> dict[str, str]:
    from regtui.net.proxy import from_environ

    return from_environ(dict(host.environ), label="shell").effective()


# The fix engine re-runs the check through this (it sits below the engine and cannot import it).
checker.register(checker.Checker(plan=plan, load_runtimes=load_runtimes, network_findings=network_findings))
