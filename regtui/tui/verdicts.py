"""The Verdict panel's content as data: one entry per (runtime, image) from the report's ``verdicts``.

Pure (no textual): it reads the redacted ``Report.to_dict()`` and says what each verdict shows:
status mark, summary, the chain from symptom to cause down to the ``file:line`` behind it, the
fix (or the manual step) and what was not tested. The widget only lays these out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from regtui import redact
from regtui.report.sections import verdict_fix_command
from regtui.report.text import STATUS_MARK

__all__ = ["STATUS_MARK", "ChainNode", "SaidLine", "VerdictView", "verdict_views", "verdict_text", "other_problems",
           "unattached_said"]

@dataclass(frozen=True)
class ChainNode:
    """One step of a verdict's chain: a finding (code, title, severity) and where it comes from."""

    code: str
    title: str
    severity: str
    where: str = ""
    """``file:line`` (or file, endpoint, subject) that shows it."""


@dataclass(frozen=True)
class SaidLine:
    """One pull error the runtime logged, as the Verdict panel shows it next to a verdict."""

    status: str
    """``explained``, ``not-reproduced`` or ``unexplained``."""
    label: str
    """The status in words (``explained by the verdict``...)."""
    text: str
    """Endpoint, phase, when, and the innermost error."""
    reason: str = ""


def _said_lines(data: Mapping[str, Any], key: str | None) -> tuple[SaidLine, ...]:
    """The logged errors held against the verdict ``key`` (``runtime image``; ``None``: against none)."""
    said = data.get("runtime_said")
    out = []
    for e in (said.get("errors") or []) if isinstance(said, Mapping) else []:
        if not isinstance(e, Mapping) or e.get("verdict") != key:
            continue
        status = str(e.get("status") or "")
        when = str(e.get("last") or "time unknown") + (f", {e['count']} times" if (e.get("count") or 1) > 1 else "")
        who = f"{e.get('runtime')}" + (f" (via {e['via']})" if e.get("via") else "")
        where = f"{who}: {e.get('endpoint') or '?'} ({e.get('phase') or '?'}, {when})"
        out.append(SaidLine(status, _SAID_LABEL.get(status, status),
                            f"{where}: {str(e.get('go_error') or e.get('error') or '')[:300]}", str(e.get("reason") or "")))
    return tuple(out)


#: The status of a logged error in the panel's words.
_SAID_LABEL = {"explained": "explained", "not-reproduced": "not reproduced now", "unexplained": "not explained"}


def unattached_said(data: Mapping[str, Any]) -> tuple[SaidLine, ...]:
    """Logged pull errors no verdict was held against (another runtime or image than those checked)."""
    return _said_lines(data, None)


@dataclass(frozen=True)
class VerdictView:
    """What the panel shows for one verdict."""

    runtime: str
    image: str
    status: str
    mark: str
    summary: str
    chain: tuple[ChainNode, ...] = ()
    setting: str = ""
    """The ``file:line`` of the setting behind the cause (the endpoint's or its proxy's), when the report has it."""
    setting_what: str = ""
    """``configured at`` (the endpoint) or ``proxy set at``."""
    fix: str | None = None
    fix_summary: str = ""
    fix_command: str = ""
    """The command that previews the fix outside the workbench (``--ca-file ROOT.pem`` when it needs it)."""
    manual: str = ""
    untested: tuple[str, ...] = ()
    cause: dict[str, Any] | None = field(default=None, compare=False)
    """The cause finding (redacted dict), which ``f`` opens in the guided fix."""
    said: tuple[SaidLine, ...] = ()
    """What the runtime said: the pull errors it logged recently, each marked explained or not."""


def _where(f: Mapping[str, Any]) -> str:
    ev = f.get("evidence") or {}
    if ev.get("file"):
        return f"{ev['file']}:{ev['line']}" if ev.get("line") else str(ev["file"])
    if ev.get("source"):
        return str(ev["source"])
    return str(ev.get("endpoint") or ev.get("url") or f.get("subject") or "")


#: Phases whose cause is set elsewhere than the endpoint's line (the resolver, clock or runtime configuration).
_NOT_THE_ENDPOINT = ("dns", "clock", "config")


def _proxy_source(data: Mapping[str, Any], runtime: str, ep: Mapping[str, Any]) -> str:
    """The ``file:line`` that sets the proxy this endpoint goes through (``via HTTPS_PROXY``), if recorded."""
    reason = str(ep.get("proxy_reason") or "")
    var = reason.split()[-1] if reason.startswith("via ") else ""
    node: Any = data.get("probes")
    for key in ("proxy", "daemons", runtime, "sources"):
        node = node.get(key) if isinstance(node, Mapping) else None
    return str(node.get(var) or "") if isinstance(node, Mapping) and var else ""


def _setting(data: Mapping[str, Any], v: Mapping[str, Any], chain: list[ChainNode]) -> tuple[str, str]:
    """(what, file:line) of the setting behind the cause: the proxy's line for a proxy failure, else the
    endpoint's line; nothing when the chain already ends at a file line or the cause is not on the route."""
    cause = v.get("cause") or {}
    url = cause.get("endpoint")
    if not url or cause.get("phase") in _NOT_THE_ENDPOINT or (chain and ":" in chain[-1].where
                                                              and chain[-1].where.startswith("/")):
        return "", ""
    for route in data.get("routes", []):
        if route.get("runtime") != v.get("runtime"):
            continue
        for ep in route.get("endpoints", []):
            if ep.get("url") != url or cause.get("endpoint_key") and ep.get("key") != cause.get("endpoint_key"):
                continue
            if cause.get("phase") == "proxy":
                src = _proxy_source(data, str(v.get("runtime")), ep)
                return ("proxy set at", src) if src.startswith("/") else ("", "")
            src = str(ep.get("source") or "")
            if src.startswith("/"):
                return "configured at", src
    return "", ""


def verdict_views(data: Mapping[str, Any]) -> list[VerdictView]:
    """Every verdict of the report, in report order, with its chain resolved to findings."""
    by_id = {f.get("id"): f for f in data.get("findings", []) if f.get("id")}
    out = []
    for v in data.get("verdicts") or []:
        if not isinstance(v, Mapping):
            continue
        chain = []
        for fid in v.get("chain") or []:
            f = by_id.get(fid)
            if f is None:  # a chain id the report does not list: shown as the id, never dropped
                chain.append(ChainNode(str(fid), "", "info"))
            else:
                chain.append(ChainNode(str(f.get("code", "")), str(f.get("title", "")), str(f.get("severity", "info")),
                                       _where(f)))
        cause_ref = v.get("cause") or {}
        cause = by_id.get(cause_ref.get("finding")) if cause_ref else None
        if cause is not None and not chain:
            chain.append(ChainNode(str(cause.get("code", "")), str(cause.get("title", "")),
                                   str(cause.get("severity", "info")), _where(cause)))
        fx = (cause or {}).get("fix") or {}
        status = str(v.get("status", "unknown"))
        what, setting = _setting(data, v, chain)
        out.append(VerdictView(
            runtime=str(v.get("runtime", "")), image=str(v.get("image", "")), status=status,
            mark=STATUS_MARK.get(status, f"[{status}]"), summary=str(v.get("summary", "")), chain=tuple(chain),
            setting=setting, setting_what=what, fix=v.get("fix") or None,
            fix_summary=str(fx.get("summary", "")) if v.get("fix") else "", manual=str(v.get("manual") or ""),
            fix_command=verdict_fix_command(data, v),
            untested=tuple(str(u) for u in v.get("untested") or ()), cause=dict(cause) if cause else None,
            said=_said_lines(data, f"{v.get('runtime')} {v.get('image')}")))
    return out


def other_problems(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Error findings no verdict's chain explains (the report's ``independent_findings``)."""
    ids = set(data.get("independent_findings") or ())
    return [f for f in data.get("findings", []) if f.get("id") in ids]


def verdict_text(v: VerdictView) -> str:
    """A verdict as plain text for the clipboard or a ticket (already redacted)."""
    lines = [f"{v.mark} {v.summary}"]
    for depth, node in enumerate(v.chain):
        lines.append(f"{'  ' * depth}<- {node.code}: {node.title}" + (f" ({node.where})" if node.where else ""))
    if v.setting:
        lines.append(f"{'  ' * len(v.chain)}<- {v.setting_what} {v.setting}")
    if v.fix:
        lines.append(f"fix: {v.fix_command}" + (f" ({v.fix_summary})" if v.fix_summary else ""))
    elif v.manual:
        lines.append(f"by hand: {v.manual}")
    if v.untested:
        lines.append("not tested: " + "; ".join(v.untested))
    for said in v.said:
        lines.append(f"runtime said ({said.label}): {said.text}")
    return redact.text("\n".join(lines))
