"""Markdown writer: pastes into a ticket (GitHub/GitLab/Jira-markdown tables)."""

from __future__ import annotations

from typing import Any

from regtui.report import Report

__all__ = ["render"]


def _cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")


def _runtime(r: dict[str, Any]) -> str:
    """A runtime and the files that made it count (``asked for`` when none did)."""
    ev = ", ".join(_cell(p) for p in r["detected_by"])
    return f"{r['name']} ({'detected by ' + ev if ev else 'asked for'})"


_STATUS = {"ok": "OK", "degraded": "DEGRADED", "fails": "FAILS", "unknown": "UNKNOWN"}


def _verdicts(d: dict[str, Any]) -> list[str]:
    """The verdict paragraph: one line per (runtime, image), with the fix or the manual step."""
    out: list[str] = []
    for v in d.get("verdicts") or []:
        line = f"- **{_STATUS.get(v['status'], v['status'])}** {_cell(v['summary'])}"
        if v.get("fix"):
            line += f" Fix: `regtui fix {_cell(v['fix'])}`"
        elif v.get("manual"):
            line += f" By hand: {_cell(v['manual'])}"
        out.append(line)
    if d.get("independent_findings"):
        out.append("- Independent problems: " + ", ".join(f"`{_cell(i)}`" for i in d["independent_findings"]))
    return out + [""] if out else out


def render(report: Report) -> str:
    """The report as Markdown."""
    d = report.to_dict()
    c = d["summary"]["counts"]
    out = [
        f"# regtui report: {_cell(d['host']['hostname'])}",
        "",
        *_verdicts(d),
        f"- generated: {d['generated_at']}",
        f"- root: `{d['host']['root']}`; mode: {d['mode']}",
        f"- images: {', '.join(f'`{i}`' for i in d['images']) or 'none'}",
        f"- runtimes: {', '.join(_runtime(r) for r in d['runtimes']) or 'none detected'}",
        f"- findings: **{c['error']} error(s)**, {c['warning']} warning(s), {c['info']} info",
        "",
        "## Findings",
        "",
    ]
    if d["findings"]:
        out += ["| severity | code | where | finding | fix |", "|---|---|---|---|---|"]
        for f in d["findings"]:
            ev = f["evidence"]
            where = f"{ev['file']}:{ev['line']}" if ev.get("file") and ev.get("line") else ev.get("file") or f["subject"]
            fx = f["fix"]
            fix_text = f"{fx['kind']}: {fx['summary']}" if fx else ""
            out.append(f"| {f['severity']} | `{f['code']}` | `{_cell(where)}` | {_cell(f['title'])} | {_cell(fix_text)} |")
        out.append("")
        out.append("### Details")
        out.append("")
        for f in d["findings"]:
            out.append(f"- **`{f['code']}`** {_cell(f['title'])}: {_cell(f['detail'])}")
    else:
        out.append("No findings.")
    out.append("")
    pull = d.get("pull")
    if pull:
        out += ["## Test pull", "",
                f"`{pull['image']}` as {pull['runtime']}: **{'ok' if pull['ok'] else 'FAILED'}** from "
                f"`{_cell(pull.get('endpoint'))}`, {pull.get('bytes', 0) / 1e6:.1f} MB in {pull.get('wall_ms') or 0:.0f} ms, "
                f"concurrency {pull.get('concurrency')}", "",
                "| blob | size | endpoint | tries | dns | connect | tls | ttfb | transfer | total (ms) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for b in ([pull["config"]] if pull.get("config") else []) + list(pull.get("layers", [])):
            t = b.get("timings_ms") or {}
            cells = " | ".join("-" if t.get(k) is None else f"{t[k]:.0f}" for k in ("dns", "connect", "tls", "ttfb", "transfer", "total"))
            out.append(f"| `{b['digest'][:19]}` | {b['size']} | `{_cell(b.get('endpoint'))}` | {b.get('attempts')} | {cells} |")
        out.append("")
    if d["routes"]:
        out += ["## Routes", ""]
        for r in d["routes"]:
            out.append(f"### `{r['image']}` via {r['runtime']}" + (f" ({r['mode']})" if r["mode"] else ""))
            out.append("")
            if r["assumed"]:
                out.append(f"Assumed: {_cell(r['assumed'])}")
                out.append("")
            out += ["| # | role | endpoint | source | TLS verify | proxy | status |", "|---|---|---|---|---|---|---|"]
            n = 0
            for ep in r["endpoints"]:
                num = "-" if ep["status"] == "skipped" else str(n := n + 1)
                status = ep["status"] + (f": {ep['reason']}" if ep["reason"] else "")
                out.append(f"| {num} | {ep['role']} | `{_cell(ep['url'])}` | `{_cell(ep['source'])}` | "
                           f"{'yes' if ep['tls']['verify'] else 'no'} | {_cell(ep['proxy'] or 'direct')} | {_cell(status)} |")
            for note in r["notes"]:
                out.append(f"\n> {_cell(note)}")
            out.append("")
    if d["notes"]:
        out += ["## Notes", ""] + [f"- {_cell(n)}" for n in d["notes"]] + [""]
    return "\n".join(out)
