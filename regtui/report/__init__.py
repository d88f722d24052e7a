"""The report: one structure behind ``--format json|markdown|html|text`` and the workbench.

:class:`Report` is built by :mod:`regtui.engine`; the writers in this package render it. Every
writer goes through :meth:`Report.to_dict`, which is redacted, so no secret reaches any output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from regtui import redact
from regtui.model import Finding, Route, RuntimeInfo, SourceFile, Verdict, severity_rank

__all__ = ["SCHEMA", "Report", "render"]

SCHEMA = "regtui.report/1"


@dataclass
class Report:
    """Everything one check found."""

    generated_at: str
    root: str
    hostname: str
    images: list[str] = field(default_factory=list)
    runtimes: list[RuntimeInfo] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    probes: dict[str, Any] = field(default_factory=dict)
    pull: dict[str, Any] | None = None
    kubelet: dict[str, Any] | None = None
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per runtime: effective values (store, version, pull mode, config_path...)."""
    notes: list[str] = field(default_factory=list)
    """What was not done and why (offline, not built, runtime not detected)."""
    errors: list[str] = field(default_factory=list)
    """Internal errors (a bug in regtui, not a finding about the host)."""
    mode: str = "offline"
    verdicts: list[Verdict] = field(default_factory=list)
    """One answer per (runtime, image), built by :mod:`regtui.diagnosis`; every output starts with them."""
    independent: list[str] = field(default_factory=list)
    """Ids of error findings no verdict's chain explains (problems of their own)."""
    runtime_said: dict[str, Any] | None = None
    """The pull errors the runtimes logged recently, each marked explained or not (:mod:`regtui.runtimelog`)."""

    def sorted_findings(self) -> list[Finding]:
        """Findings, errors first, then by panel and code."""
        from regtui.model import PANELS

        return sorted(self.findings, key=lambda f: (severity_rank(f.severity),
                                                    PANELS.index(f.panel) if f.panel in PANELS else 99,
                                                    f.code, f.subject))

    def counts(self) -> dict[str, int]:
        """Findings per severity."""
        c = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            c[f.severity] = c.get(f.severity, 0) + 1
        return c

    @property
    def exit_code(self) -> int:
        """0 when no finding is an error and no verdict fails, 1 otherwise."""
        failing = any(v.status == "fails" for v in self.verdicts)
        return 1 if failing or any(f.severity == "error" for f in self.findings) else 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema ``regtui.report/1``), redacted."""
        data = {
            "schema": SCHEMA,
            "generated_at": self.generated_at,
            "host": {"root": self.root, "hostname": self.hostname},
            "mode": self.mode,
            "images": list(self.images),
            "verdicts": [v.to_dict() for v in self.verdicts],
            "independent_findings": list(self.independent),
            "runtime_said": self.runtime_said,
            "runtimes": [r.to_dict() for r in self.runtimes],
            "routes": [r.to_dict() for r in self.routes],
            "probes": self.probes,
            "pull": self.pull,
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "summary": {"counts": self.counts(), "exit_code": self.exit_code},
            "sources": [s.to_dict() for s in self.sources],
            "runtime_config": self.summaries,
            "kubelet": self.kubelet,
            "notes": list(self.notes),
            "errors": list(self.errors),
        }
        return redact.value(data)


def render(report: Report, fmt: str) -> str:
    """Render ``report`` as ``text``, ``json``, ``markdown``, ``html`` or ``prometheus``."""
    if fmt == "json":
        from regtui.report.json_report import render as r
    elif fmt == "markdown":
        from regtui.report.markdown import render as r
    elif fmt == "html":
        from regtui.report.html import render as r
    elif fmt == "prometheus":
        from regtui.report.prometheus import render as r
    else:
        from regtui.report.text import render as r
    return r(report)
