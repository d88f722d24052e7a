"""The check: detect runtimes, read their configuration, plan routes, collect findings.

This is the one entry point both front ends (CLI and workbench) use. It never imports textual,
and with ``offline=True`` it never touches the network.
"""

from __future__ import annotations

import importlib
import socket
import traceback
from datetime import timezone
from typing import Any, Callable

from regtui.checks import certs as cert_checks
from regtui.checks import proxy as proxy_checks
from regtui.host import Host
from regtui.model import Finding, Route, RuntimeInfo
from regtui.options import RUNTIMES, CheckOptions
from regtui.refs import Reference, parse
from regtui.report import Report
from regtui.runtimes import RuntimeView

__all__ = ["run_check", "load_runtimes", "select_runtimes", "RUNTIME_MODULES"]

#: The module that reads each runtime's configuration (``detect`` and ``load``).
RUNTIME_MODULES = {
    "docker": "regtui.config.docker",
    "containerd": "regtui.config.containerd",
    "crio": "regtui.config.crio",
    "k3s": "regtui.config.k3s",
}

Progress = Callable[[str], None]


def _module(name: str) -> Any:
    return importlib.import_module(RUNTIME_MODULES[name])


def _internal(errors: list[str], what: str, exc: BaseException, debug: bool) -> None:
    msg = f"{what}: {type(exc).__name__}: {exc}"
    if debug:
        msg += "\n" + traceback.format_exc()
    errors.append(msg)


def select_runtimes(host: Host, wanted: str, errors: list[str], debug: bool = False) -> dict[str, list[str]]:
    """Runtime name -> detection evidence, for ``auto`` (detected), ``all`` or one name."""
    detected: dict[str, list[str]] = {}
    for name in RUNTIMES:
        try:
            evidence = list(_module(name).detect(host))
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
            view = _module(name).load(host, options)
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


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for f in findings:
        key = (f.code, f.subject, f.title, f.runtime)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


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


def run_check(options: CheckOptions, host: Host | None = None, *, debug: bool = False,
              refs: list[Reference] | None = None) -> Report:
    """Run the configuration check for ``options`` and return the report.

    Network probes and the test pull are added by later stages when not ``offline``; until
    they exist the report says so in ``notes`` rather than pretending to have probed.
    """
    host = host or Host.from_args(options.root)
    refs = refs if refs is not None else [parse(i) for i in options.images]
    errors: list[str] = []
    views = load_runtimes(host, options, errors, debug)

    findings: list[Finding] = []
    sources = []
    routes: list[Route] = []
    for view in views:
        findings += view.findings
        sources += view.sources
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
    kubelet, kubelet_findings, kubelet_sources = _kubelet(host, errors, debug)
    findings += kubelet_findings
    sources += kubelet_sources

    notes: list[str] = []
    if not views:
        notes.append("no container runtime detected under this root (use --runtime to plan for one anyway)")
    if not refs:
        notes.append("no image given (--image REF): configuration checked, no route planned")
    if not options.offline:
        notes.append("network probes and the test pull are not built in this version: this was a configuration-only "
                      "check, the same as --offline")

    report = Report(
        generated_at=host.now().astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        root=str(host.root),
        hostname=_hostname(host),
        images=[str(r) for r in refs],
        runtimes=[RuntimeInfo(v.name, tuple(v.detected_by), tuple(s.path for s in v.sources if s.status != "missing"))
                  for v in views],
        routes=routes,
        findings=_dedupe(findings),
        sources=sources,
        probes={
            "dns": [], "tls": [], "clock": {},
            "proxy": {
                "shell": _shell_proxy(host),
                "daemons": {v.name: {"effective": v.proxy_env.effective(), "sources": dict(v.proxy_env.sources)}
                            for v in views},
            },
            "status": "offline" if options.offline else "not-built",
        },
        pull=None,
        kubelet=kubelet,
        summaries={v.name: dict(v.summary) for v in views},
        notes=notes,
        errors=errors,
        mode="offline" if options.offline else "configuration-only",
    )
    return report


def _shell_proxy(host: Host) -> dict[str, str]:
    from regtui.net.proxy import from_environ

    return from_environ(dict(host.environ), label="shell").effective()
