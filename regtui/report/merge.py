"""Many hosts' JSON reports as one: which hosts share which verdict cause and which findings.

``regtui report --merge a.json b.json ... --format markdown|html`` reads reports written by
``regtui check --format json`` (one per host), and answers the fleet question "half the nodes
cannot pull since the proxy change: which ones, and is it the same cause?". A cause is the
verdict's cause code at its subject (``proxy.unreachable`` at ``proxy:3128`` on twelve
hosts is one row); the host x cause table marks which host has which. The pull errors the
runtimes logged (``runtime_said``) are merged the same way: one row per runtime, endpoint, phase,
kind of error and how it stands against the verdicts, with the hosts that logged it.

Each input passes the redaction policy again, so a hand-edited report cannot smuggle a secret into
the merged one. A file that is not a regtui JSON report is refused by name (:class:`MergeError`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regtui import redact
from regtui.model import VERDICT_STATUSES
from regtui.report.html import _e
from regtui.report.markdown import _cell as _md
from regtui.report.markdown import _code
from regtui.report.sections import RUNTIME_SAID_TITLE, SAID_STATUS, SAID_STYLE

__all__ = ["MergeError", "load", "merge", "render_markdown", "render_html"]

#: A report larger than this is not a regtui report (a real one is well under a megabyte).
MAX_REPORT_BYTES = 64 * 1024 * 1024
_SCHEMA = "regtui.report/1"
_STATUS_ORDER = VERDICT_STATUSES


class MergeError(Exception):
    """A file that cannot be merged (unreadable, not JSON, not a regtui report)."""


def load(path: str | Path) -> dict[str, Any]:
    """One JSON report from ``path``, redacted; :class:`MergeError` if it is not a regtui report."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise MergeError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_REPORT_BYTES:
        raise MergeError(f"{p}: larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB, not a regtui report")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MergeError(f"{p}: not JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict) or data.get("schema") != _SCHEMA:
        raise MergeError(f"{p}: not a regtui JSON report (schema {_SCHEMA!r} expected; "
                         "write one with `regtui check --format json`)")
    problem = _shape_problem(data)
    if problem:
        raise MergeError(f"{p}: malformed regtui report ({problem})")
    return redact.value(data)


#: What the merge reads as text (absent or null is fine too), in each kind of entry.
_TEXT_FIELDS = {
    "verdicts": ("status", "runtime", "image", "summary", "fix", "manual"),
    "cause": ("code", "finding", "endpoint", "phase"),
    "findings": ("id", "code", "severity", "title", "subject"),
}


def _shape_problem(data: dict[str, Any]) -> str | None:
    """What in ``data`` the merge could not read, or ``None``: the parts it reads, with the types it reads them as."""
    for key in ("verdicts", "findings"):
        if not isinstance(data.get(key, []), list):
            return "verdicts and findings must be lists"
    for key in ("host", "summary"):
        if not isinstance(data.get(key) or {}, dict):
            return f"{key} must be an object"
    if not isinstance((data.get("summary") or {}).get("counts") or {}, dict):
        return "summary.counts must be an object"
    said = data.get("runtime_said")
    if said is not None and not (isinstance(said, dict) and isinstance(said.get("errors") or [], list)):
        return "runtime_said must be an object whose errors are a list"
    entries = [(key, item) for key in ("verdicts", "findings") for item in data.get(key) or []]
    entries += [("cause", v["cause"]) for k, v in entries if k == "verdicts" and isinstance(v, dict) and v.get("cause")]
    for kind, entry in entries:
        if not isinstance(entry, dict):
            return f"an entry of {kind} must be an object"
        bad = next((f for f in _TEXT_FIELDS[kind] if entry.get(f) is not None and not isinstance(entry[f], str)), None)
        if bad:
            return f"{kind}: {bad} must be text"
    return None


def _host_names(reports: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """A name per report: its hostname, or hostname plus file name where two reports share one."""
    names = [str((d.get("host") or {}).get("hostname") or Path(src).stem) for src, d in reports]
    named = [f"{n} ({Path(src).name})" if names.count(n) > 1 else n for n, (src, _) in zip(names, reports)]
    # The same file given twice (or equal file names in two folders) still gives distinct rows.
    return [f"{n} #{named[:i].count(n) + 1}" if named.count(n) > 1 else n for i, n in enumerate(named)]


def _cause_key(v: dict[str, Any], subjects: dict[str, str]) -> tuple[str, str]:
    """(code, where): where is the cause finding's subject (the proxy for a proxy cause, the registry
    host for a TLS cause), else the failing endpoint."""
    cause = v.get("cause") or {}
    where = subjects.get(str(cause.get("finding") or "")) or cause.get("endpoint") or ""
    return str(cause.get("code") or ""), str(where)


def merge(reports: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Merge ``(source name, report dict)`` pairs: hosts, causes shared across hosts, findings shared."""
    names = _host_names(reports)
    hosts: list[dict[str, Any]] = []
    causes: dict[tuple[str, str], dict[str, Any]] = {}
    findings: dict[tuple[str, str], dict[str, Any]] = {}
    said: dict[tuple[str, ...], dict[str, Any]] = {}
    for name, (src, d) in zip(names, reports):
        _merge_said(said, name, d.get("runtime_said"))
        verdicts = [v for v in d.get("verdicts") or [] if isinstance(v, dict)]
        subjects = {str(f.get("id")): str(f.get("subject") or "") for f in d.get("findings") or []
                    if isinstance(f, dict) and f.get("id")}
        worst = min((v.get("status", "unknown") for v in verdicts),
                    key=lambda s: _STATUS_ORDER.index(s) if s in _STATUS_ORDER else 2, default="unknown")
        host_causes: list[str] = []
        for v in verdicts:
            if v.get("status") not in ("fails", "degraded") or not v.get("cause"):
                continue
            key = _cause_key(v, subjects)
            row = causes.setdefault(key, {"code": key[0], "where": key[1], "endpoint": v["cause"].get("endpoint") or "",
                                          "phase": v["cause"].get("phase") or "",
                                          "status": v["status"], "summary": v.get("summary") or "",
                                          "fix": v.get("fix") or v.get("manual") or "",
                                          "hosts": [], "runtimes": [], "images": []})
            if v["status"] == "fails":
                row["status"] = "fails"
            for field, value in (("hosts", name), ("runtimes", v.get("runtime")), ("images", v.get("image"))):
                if value and value not in row[field]:
                    row[field].append(value)
            label = f"{key[0]}@{key[1]}" if key[1] else key[0]
            if label not in host_causes:
                host_causes.append(label)
        for f in d.get("findings") or []:
            if not isinstance(f, dict) or f.get("severity") not in ("error", "warning"):
                continue
            fkey = (str(f.get("code")), str(f.get("severity")))
            row = findings.setdefault(fkey, {"code": fkey[0], "severity": fkey[1], "title": f.get("title") or "",
                                             "hosts": []})
            if name not in row["hosts"]:
                row["hosts"].append(name)
        counts = (d.get("summary") or {}).get("counts") or {}
        hosts.append({"name": name, "source": Path(src).name, "generated_at": d.get("generated_at"),
                      "mode": d.get("mode"), "status": worst,
                      "exit_code": (d.get("summary") or {}).get("exit_code"),
                      "errors": counts.get("error", 0), "warnings": counts.get("warning", 0),
                      "verdicts": [{"runtime": v.get("runtime"), "image": v.get("image"), "status": v.get("status"),
                                    "cause": "@".join(p for p in _cause_key(v, subjects) if p)} for v in verdicts],
                      "causes": host_causes})
    cause_rows = sorted(causes.values(), key=lambda c: (-len(c["hosts"]), c["status"] != "fails", c["code"], c["where"]))
    for c in cause_rows:
        c["label"] = f"{c['code']}@{c['where']}" if c["where"] else c["code"]
    finding_rows = sorted(findings.values(), key=lambda f: (f["severity"] != "error", -len(f["hosts"]), f["code"]))
    statuses = {s: sum(1 for h in hosts if h["status"] == s) for s in _STATUS_ORDER}
    said_rows = sorted(said.values(), key=lambda r: (_SAID_ORDER.index(r["status"]) if r["status"] in _SAID_ORDER
                                                     else len(_SAID_ORDER), -len(r["hosts"]), r["runtime"], r["endpoint"]))
    return {"schema": "regtui.merge/1", "hosts": hosts, "causes": cause_rows, "findings": finding_rows,
            "statuses": statuses, "runtime_said": said_rows}


#: Logged errors the verdicts do not explain come first: they are what the check did not see.
_SAID_ORDER = ("unexplained", "not-reproduced", "explained")


def _merge_said(rows: dict[tuple[str, ...], dict[str, Any]], host: str, said: Any) -> None:
    """Add one host's logged pull errors to ``rows`` (one row per runtime, endpoint, phase, kind and status)."""
    if not isinstance(said, dict):
        return
    for e in said.get("errors") or []:
        if not isinstance(e, dict):
            continue
        status = str(e.get("status") or "")
        kind = str(e.get("go_class") or e.get("failure") or "")
        key = (status, str(e.get("runtime") or ""), str(e.get("endpoint") or ""), str(e.get("phase") or ""), kind)
        row = rows.setdefault(key, {"status": status, "label": SAID_STATUS.get(status, status), "runtime": key[1],
                                    "endpoint": key[2], "phase": key[3], "kind": kind,
                                    "example": str(e.get("go_error") or e.get("error") or "")[:300],
                                    "hosts": [], "count": 0, "last": ""})
        if host not in row["hosts"]:
            row["hosts"].append(host)
        count = e.get("count")
        row["count"] += count if isinstance(count, int) and count > 0 else 1
        row["last"] = max(row["last"], str(e.get("last") or ""))


def _no_causes(m: dict[str, Any]) -> str:
    """The Causes section's sentence when no verdict names a cause (a degraded short-name search names none)."""
    s = m["statuses"]
    if s["fails"] or s["degraded"]:
        return (f"{s['fails'] + s['degraded']} host(s) have a failing or degraded verdict, but none names a cause: "
                "see each host's report.")
    return "No host has a failing or degraded verdict."


def render_markdown(m: dict[str, Any]) -> str:
    """The merged report as Markdown (CommonMark + GFM tables)."""
    s = m["statuses"]
    out = [f"# regtui fleet report: {len(m['hosts'])} host(s)", "",
           f"{s['fails']} host(s) cannot pull, {s['degraded']} degraded, {s['unknown']} unknown, {s['ok']} ok.", ""]
    out += ["## Causes", ""]
    if m["causes"]:
        out += ["| cause | where | phase | hosts | runtimes | example | fix |", "|---|---|---|---|---|---|---|"]
        for c in m["causes"]:
            out.append(f"| {_code(c['code'])} | {_code(c['where'])} | {_md(c['phase'])} | {len(c['hosts'])}: "
                       f"{_md(', '.join(c['hosts']))} | {_md(', '.join(c['runtimes']))} | {_md(c['summary'])} | "
                       f"{_code(c['fix'])} |")
        out.append("")
        out += ["## Host x cause", ""]
        out.append("| host | status | " + " | ".join(f"C{i + 1}" for i in range(len(m["causes"]))) + " |")
        out.append("|---|---|" + "---|" * len(m["causes"]))
        for h in m["hosts"]:
            marks = ["X" if c["label"] in h["causes"] else "" for c in m["causes"]]
            out.append(f"| {_md(h['name'])} | {_md(h['status'])} | " + " | ".join(marks) + " |")
        out.append("")
        out += [f"- C{i + 1}: {_code(c['label'])}" for i, c in enumerate(m["causes"])] + [""]
    else:
        out += [_no_causes(m), ""]
    if m.get("runtime_said"):
        out += [f"## {RUNTIME_SAID_TITLE}", "", "| status | runtime | endpoint | phase | hosts | times | last | example |",
                "|---|---|---|---|---|---|---|---|"]
        for r in m["runtime_said"]:
            out.append(f"| {_md(r['label'])} | {_md(r['runtime'])} | {_code(r['endpoint'] or '-')} | {_md(r['phase'] or '-')} | "
                       f"{len(r['hosts'])}: {_md(', '.join(r['hosts']))} | {r['count']} | {_md(r['last'] or '-')} | "
                       f"{_md(r['example'])} |")
        out.append("")
    out += ["## Hosts", "", "| host | status | errors | warnings | verdicts | report |", "|---|---|---|---|---|---|"]
    for h in m["hosts"]:
        verdicts = "; ".join(f"{v['runtime']} {v['image']}: {v['status']}" + (f" ({v['cause']})" if v["cause"] else "")
                             for v in h["verdicts"])
        out.append(f"| {_md(h['name'])} | {_md(h['status'])} | {h['errors']} | {h['warnings']} | {_md(verdicts)} | "
                   f"{_code(h['source'])} |")
    out.append("")
    out += ["## Findings shared by hosts", ""]
    if m["findings"]:
        out += ["| severity | code | hosts | example |", "|---|---|---|---|"]
        for f in m["findings"]:
            out.append(f"| {f['severity']} | {_code(f['code'])} | {len(f['hosts'])}: {_md(', '.join(f['hosts']))} | "
                       f"{_md(f['title'])} |")
    else:
        out.append("No error or warning findings.")
    out.append("")
    return "\n".join(out)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#1b1b1b;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%;table-layout:auto}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
code{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
.fails,.error{color:#a40000;font-weight:bold}.degraded,.warning,.unknown{color:#8a5a00}.ok{color:#1d6b2a}
td.mark{text-align:center;font-weight:bold;color:#a40000}
@media (max-width:700px){table,tr,td,th{display:block}tr{margin-bottom:.75em}th{display:none}}
"""


def render_html(m: dict[str, Any]) -> str:
    """The merged report as one self-contained HTML page (inline CSS, no script, nothing fetched)."""
    s = m["statuses"]
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             "<meta name=viewport content='width=device-width, initial-scale=1'>",
             f"<title>regtui fleet report: {len(m['hosts'])} host(s)</title><style>{_CSS}</style></head><body>",
             f"<h1>regtui fleet report: {len(m['hosts'])} host(s)</h1>",
             f"<p><span class=fails>{s['fails']} cannot pull</span>, <span class=degraded>{s['degraded']} degraded"
             f"</span>, <span class=unknown>{s['unknown']} unknown</span>, <span class=ok>{s['ok']} ok</span>.</p>",
             "<h2>Causes</h2>"]
    if m["causes"]:
        parts.append("<table><tr><th>#</th><th>cause</th><th>where</th><th>phase</th><th>hosts</th><th>runtimes</th>"
                     "<th>example</th><th>fix</th></tr>")
        for i, c in enumerate(m["causes"]):
            parts.append(f"<tr><td>C{i + 1}</td><td class={_e(c['status'])}><code>{_e(c['code'])}</code></td>"
                         f"<td><code>{_e(c['where'])}</code></td><td>{_e(c['phase'])}</td>"
                         f"<td>{len(c['hosts'])}: {_e(', '.join(c['hosts']))}</td><td>{_e(', '.join(c['runtimes']))}</td>"
                         f"<td>{_e(c['summary'])}</td><td><code>{_e(c['fix'])}</code></td></tr>")
        parts.append("</table><h2>Host x cause</h2><table><tr><th>host</th><th>status</th>"
                     + "".join(f"<th title='{_e(c['label'])}'>C{i + 1}</th>" for i, c in enumerate(m["causes"]))
                     + "</tr>")
        for h in m["hosts"]:
            marks = "".join(f"<td class=mark>{'X' if c['label'] in h['causes'] else ''}</td>" for c in m["causes"])
            parts.append(f"<tr><td>{_e(h['name'])}</td><td class={_e(h['status'])}>{_e(h['status'])}</td>{marks}</tr>")
        parts.append("</table>")
    else:
        parts.append(f"<p>{_e(_no_causes(m))}</p>")
    if m.get("runtime_said"):
        parts.append(f"<h2>{_e(RUNTIME_SAID_TITLE)}</h2><table><tr><th>status</th><th>runtime</th><th>endpoint</th>"
                     "<th>phase</th><th>hosts</th><th>times</th><th>last</th><th>example</th></tr>")
        for r in m["runtime_said"]:
            css = SAID_STYLE.get(r["status"], "info")
            parts.append(f"<tr><td class={css}>{_e(r['label'])}</td><td>{_e(r['runtime'])}</td>"
                         f"<td><code>{_e(r['endpoint'] or '-')}</code></td><td>{_e(r['phase'] or '-')}</td>"
                         f"<td>{len(r['hosts'])}: {_e(', '.join(r['hosts']))}</td><td>{r['count']}</td>"
                         f"<td>{_e(r['last'] or '-')}</td><td>{_e(r['example'])}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Hosts</h2><table><tr><th>host</th><th>status</th><th>errors</th><th>warnings</th>"
                 "<th>verdicts</th><th>report</th></tr>")
    for h in m["hosts"]:
        verdicts = "<br>".join(f"{_e(v['runtime'])} <code>{_e(v['image'])}</code>: "
                               f"<span class={_e(v['status'])}>{_e(v['status'])}</span>"
                               + (f" (<code>{_e(v['cause'])}</code>)" if v["cause"] else "") for v in h["verdicts"])
        parts.append(f"<tr><td>{_e(h['name'])}</td><td class={_e(h['status'])}>{_e(h['status'])}</td>"
                     f"<td>{h['errors']}</td><td>{h['warnings']}</td><td>{verdicts}</td><td><code>{_e(h['source'])}</code></td></tr>")
    parts.append("</table><h2>Findings shared by hosts</h2>")
    if m["findings"]:
        parts.append("<table><tr><th>severity</th><th>code</th><th>hosts</th><th>example</th></tr>")
        for f in m["findings"]:
            parts.append(f"<tr><td class={_e(f['severity'])}>{_e(f['severity'])}</td><td><code>{_e(f['code'])}</code></td>"
                         f"<td>{len(f['hosts'])}: {_e(', '.join(f['hosts']))}</td><td>{_e(f['title'])}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No error or warning findings.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
