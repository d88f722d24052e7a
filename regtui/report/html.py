"""HTML writer: one self-contained file (inline CSS, no scripts, no external resources)."""

from __future__ import annotations

from html import escape
from typing import Any

from regtui.report import Report

__all__ = ["render"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:72em;color:#1b1b1b}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
code{font-family:ui-monospace,monospace}.error{color:#a40000;font-weight:bold}.warning{color:#8a5a00}.info{color:#285f8f}
"""


def _e(v: Any) -> str:
    return escape(str(v if v is not None else ""))


_STATUS_CLASS = {"ok": "info", "degraded": "warning", "fails": "error", "unknown": "warning"}


def _verdicts(d: dict[str, Any]) -> list[str]:
    """The verdict paragraph: one line per (runtime, image), with the fix or the manual step."""
    items = []
    for v in d.get("verdicts") or []:
        tail = (f" Fix: <code>regtui fix {_e(v['fix'])}</code>" if v.get("fix")
                else f" By hand: {_e(v['manual'])}" if v.get("manual") else "")
        items.append(f"<li><span class={_STATUS_CLASS.get(v['status'], 'info')}>{_e(v['status'].upper())}</span> "
                     f"{_e(v['summary'])}{tail}</li>")
    if d.get("independent_findings"):
        items.append("<li>Independent problems: " + ", ".join(f"<code>{_e(i)}</code>" for i in d["independent_findings"])
                     + "</li>")
    return [f"<ul class=verdicts>{''.join(items)}</ul>"] if items else []


def render(report: Report) -> str:
    """The report as a standalone HTML page."""
    d = report.to_dict()
    c = d["summary"]["counts"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>regtui report: {_e(d['host']['hostname'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>regtui report: {_e(d['host']['hostname'])}</h1>",
        *_verdicts(d),
        f"<p>Generated {_e(d['generated_at'])}; root <code>{_e(d['host']['root'])}</code>; mode {_e(d['mode'])}; "
        f"images: {_e(', '.join(d['images']) or 'none')}; "
        f"<span class=error>{c['error']} error(s)</span>, {c['warning']} warning(s), {c['info']} info.</p>",
        "<h2>Findings</h2>",
    ]
    if d["findings"]:
        parts.append("<table><tr><th>severity</th><th>code</th><th>where</th><th>finding</th><th>fix</th></tr>")
        for f in d["findings"]:
            ev = f["evidence"]
            where = f"{ev['file']}:{ev['line']}" if ev.get("file") and ev.get("line") else ev.get("file") or f["subject"]
            fx = f["fix"]
            parts.append(
                f"<tr><td class={_e(f['severity'])}>{_e(f['severity'])}</td><td><code>{_e(f['code'])}</code></td>"
                f"<td><code>{_e(where)}</code></td><td><b>{_e(f['title'])}</b><br>{_e(f['detail'])}</td>"
                f"<td>{_e(fx['kind'] + ': ' + fx['summary']) if fx else ''}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No findings.</p>")
    if d["routes"]:
        parts.append("<h2>Routes</h2>")
        for r in d["routes"]:
            parts.append(f"<h3><code>{_e(r['image'])}</code> via {_e(r['runtime'])} {_e(r['mode'])}</h3>")
            parts.append("<table><tr><th>role</th><th>endpoint</th><th>source</th><th>verify</th><th>proxy</th><th>status</th></tr>")
            for ep in r["endpoints"]:
                parts.append(
                    f"<tr><td>{_e(ep['role'])}</td><td><code>{_e(ep['url'])}</code></td><td><code>{_e(ep['source'])}</code></td>"
                    f"<td>{'yes' if ep['tls']['verify'] else 'no'}</td><td>{_e(ep['proxy'] or 'direct')}</td>"
                    f"<td>{_e(ep['status'])} {_e(ep['reason'])}</td></tr>")
            parts.append("</table>")
            for note in r["notes"]:
                parts.append(f"<p>{_e(note)}</p>")
    for note in d["notes"]:
        parts.append(f"<p><i>{_e(note)}</i></p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
