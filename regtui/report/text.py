"""Compact terminal summary: findings first, grouped by panel, then the route table."""

from __future__ import annotations

import textwrap
from typing import Any

from regtui.model import PANELS
from regtui.report import Report, sections
from regtui.units import human_bytes

__all__ = ["render", "STATUS_MARK"]

_LABEL = {"error": "ERROR", "warning": "WARN ", "info": "info "}
_WRAP = 96


def _wrap(text: str, indent: int) -> list[str]:
    pad = " " * indent
    return textwrap.wrap(text, width=_WRAP, initial_indent=pad, subsequent_indent=pad,
                         break_on_hyphens=False, break_long_words=False) or [pad]


def _where(ev: dict[str, Any]) -> str:
    f = ev.get("file")
    if not f:
        return ""
    return f"{f}:{ev['line']}" if ev.get("line") else str(f)


#: One symbol per verdict status (plain ASCII: it pastes anywhere).
#: The mark before a verdict, in text and in the workbench.
STATUS_MARK = {"ok": "[ok]", "degraded": "[~~]", "fails": "[XX]", "unknown": "[??]"}


def _hanging(text: str, indent: int) -> list[str]:
    return textwrap.wrap(text, width=_WRAP, subsequent_indent=" " * indent, break_on_hyphens=False,
                         break_long_words=False) or [""]


def _verdicts(data: dict[str, Any]) -> list[str]:
    """One line per (runtime, image): status symbol, summary, and the fix (or the manual step)."""
    out: list[str] = []
    for v in data.get("verdicts") or []:
        out += _hanging(f"{STATUS_MARK.get(v['status'], v['status'])} {v['summary']}", 5)
        if v.get("fix"):
            out += _wrap(f"fix: {sections.verdict_fix_command(data, v)}", 5)
        elif v.get("manual"):
            out += _wrap(f"by hand: {v['manual']}", 5)
        if v.get("chain") and len(v["chain"]) > 1:
            out += _wrap("chain: " + " <- ".join(v["chain"]), 5)
        if v.get("untested") and v["status"] in ("unknown", "ok", "degraded"):
            out += _wrap("not tested: " + "; ".join(v["untested"]), 5)
    if data.get("independent_findings"):
        out.append("independent problems (on no pull's path, listed below):")
        out += [f"     {i}" for i in data["independent_findings"]]
    return out


def _runtime_said(data: dict[str, Any]) -> list[str]:
    """What the runtime said: each logged pull error and whether a verdict explains it (short)."""
    said = sections.runtime_said(data)
    if said is None:
        return []
    out = [f"what the runtime said (since {said['since']}):"]
    for r in said["rows"]:
        out += _hanging(f"  {r['label']}: {r['runtime']} {r['endpoint']} {r['phase']}, {r['when']}: {r['go_error'][:200]}", 5)
        out += _wrap(r["reason"] + (f" ({r['finding']})" if r["finding"] else ""), 5)
    if not said["rows"]:
        out.append("  no pull error logged" + (" (read: " + "; ".join(said["read"]) + ")" if said["read"] else ""))
    out += [f"  note: {n}" for n in said["notes"]]
    return out


def _findings(data: dict[str, Any]) -> list[str]:
    counts = data["summary"]["counts"]
    out = [f"FINDINGS  {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"]
    if not data["findings"]:
        out.append("  none")
        return out
    # Errors first (every panel), then warnings, then info; grouped by panel within each.
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in data["findings"]:
        groups.setdefault((f["severity"], f["panel"]), []).append(f)
    order = ("error", "warning", "info")
    for severity, panel in sorted(groups, key=lambda k: (order.index(k[0]) if k[0] in order else 9,
                                                         PANELS.index(k[1]) if k[1] in PANELS else 99)):
        out.append(f"[{panel}]")
        for f in groups[(severity, panel)]:
            where = _where(f["evidence"]) or f["subject"]
            out.append(f"  {_LABEL.get(f['severity'], f['severity'])} {f['code']}  {where}")
            out += _wrap(f["title"], 8)
            if f["detail"]:
                out += _wrap(f["detail"], 8)
            fx = f.get("fix")
            if fx:
                restart = f"; then {fx['restart']}" if fx["restart"] not in ("none", "") else ""
                out += _wrap(f"fix ({fx['kind']}): {fx['summary']}{restart}  [{fx['id']}]", 8)
    return out


def _tls(ep: dict[str, Any]) -> str:
    if ep["url"].startswith("http://"):
        return "plain http"
    tls = ep["tls"]
    if not tls["verify"]:
        return "NO VERIFY"
    extra = len(tls["ca_files"])
    return f"verify+{extra}ca" if extra else "verify"


def _routes(data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if not data["routes"]:
        return out
    out.append("ROUTES")
    for route in data["routes"]:
        head = f"{route['image']}  via {route['runtime']}"
        if route["mode"]:
            head += f"  ({route['mode']})"
        out.append(head)
        if route["assumed"]:
            assumed = route["assumed"]
            out += _wrap(assumed if assumed.lower().startswith("assumed") else f"assumed: {assumed}", 4)
        if not route["endpoints"]:
            out.append("    no endpoint")
        n = 0
        for ep in route["endpoints"]:
            if ep["status"] == "skipped":
                num = "-"
            else:
                n += 1
                num = str(n)
            proxy = ep["proxy"] or "direct"
            out.append(f"  {num:>2} {ep['role']:<8} {ep['url']}")
            detail = f"from {ep['source']}; tls {_tls(ep)}; proxy {proxy}"
            if ep.get("credentials"):
                detail += f"; credentials {ep['credentials']}"
            if ep["http_fallback"]:
                detail += "; falls back to plain http"
            if ep["status"] == "ok":
                detail += "; probe ok"
            out += _wrap(detail, 14)
            if ep["status"] == "skipped" or ep["reason"]:
                out += _wrap(f"{ep['status']}: {ep['reason']}", 14)
        for note in route["notes"]:
            out += _wrap(f"note: {note}", 4)
    return out


def _pull(data: dict[str, Any]) -> list[str]:
    pull = data.get("pull")
    if not pull:
        return []
    blobs = ([pull["config"]] if pull.get("config") else []) + list(pull.get("layers", []))
    wall = pull.get("wall_ms") or 0
    rate = f", {human_bytes(pull['bytes'] / (wall / 1000))}/s" if wall and pull.get("bytes") else ""
    out = [f"TEST PULL  {pull['image']} as {pull['runtime']}: {'ok' if pull['ok'] else 'FAILED'}"]
    out += _wrap(f"from {pull.get('endpoint') or 'no endpoint'}; {len(blobs)} blobs, {human_bytes(pull.get('bytes', 0))} "
                 f"in {wall:.0f} ms{rate}; concurrency {pull.get('concurrency')}", 4)
    digest = (pull.get("manifest") or {}).get("digest")
    if digest:
        out += _wrap(f"digest {digest}", 4)
    slowest = max(blobs, key=lambda b: (b.get("timings_ms") or {}).get("total") or 0, default=None)
    if slowest and slowest.get("timings_ms"):
        t = slowest["timings_ms"]
        phases = ", ".join(f"{k} {t[k]:.0f}" for k in ("dns", "connect", "tls", "ttfb", "transfer") if t.get(k) is not None)
        out += _wrap(f"slowest blob {slowest['digest'][:19]}: {phases} ms (regtui pull REF shows every blob)", 4)
    if not pull["ok"] and pull.get("runtime_error"):
        out += _wrap(f"the runtime will report: {pull['runtime_error']}", 4)
    return out


def render(report: Report) -> str:
    """The report as plain text for a terminal (no colour, no box drawing: it pastes anywhere)."""
    data = report.to_dict()
    rts = ", ".join(sections.runtime_label(r, limit=2) for r in data["runtimes"])
    lines = [f"regtui check  host {data['host']['hostname']}  root {data['host']['root']}  mode {data['mode']}"]
    lines += _verdicts(data)
    said = _runtime_said(data)
    if said:
        lines += said
    if data.get("verdicts") or said:
        lines.append("")
    lines.append(f"runtimes: {rts or 'none detected'}")
    if data["images"]:
        lines.append(f"images: {', '.join(data['images'])}")
    if data.get("kubelet") and data["kubelet"].get("runtime"):
        k = data["kubelet"]
        lines.append(f"kubelet pulls through: {k['runtime']} ({k.get('endpoint') or '?'}, from {k.get('source') or '?'})")
    lines.append("")
    lines += _findings(data)
    pull = _pull(data)
    if pull:
        lines.append("")
        lines += pull
    routes = _routes(data)
    if routes:
        lines.append("")
        lines += routes
    if data["notes"]:
        lines.append("")
        for note in data["notes"]:
            lines += _wrap(f"note: {note}", 0)
    for err in data["errors"]:
        lines.append(f"internal error: {err}")
    return "\n".join(lines) + "\n"
