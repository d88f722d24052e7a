"""HTML writer: one self-contained page (inline CSS and SVG, no script, nothing fetched).

It has every section of the Markdown report, in the same order, and an SVG waterfall of the test
pull: one row per layer, its phases (dns, connect, tls, ttfb, transfer) as segments on a shared
time axis, a ``<title>`` with the figures on each row, and a legend. Long values wrap and tables
become stacked rows on narrow screens, so nothing scrolls sideways from phone width to 1400 px;
it prints on A4.
"""

from __future__ import annotations

from html import escape
from typing import Any

from regtui.report import Report, sections

__all__ = ["render", "waterfall"]

_CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:1em 1.5em;max-width:90em;
color:#1b1b1b;background:#fff;overflow-wrap:anywhere;word-break:break-word}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin:1em 0 .3em}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em}
pre{white-space:pre-wrap;background:#f5f5f5;border:1px solid #ddd;padding:.5em .7em;margin:.3em 0 1em}
table{border-collapse:collapse;margin:.4em 0 1.2em;width:100%}
td,th{border:1px solid #d0d0d0;padding:.25em .45em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right;white-space:nowrap}
.verdict{border-left:.35em solid #999;padding:.4em .7em;margin:.5em 0;background:#fafafa}
.verdict.fails{border-color:#b00020;background:#fff3f4}.verdict.degraded,.verdict.unknown{border-color:#b36b00;background:#fff9ef}
.verdict.ok{border-color:#1d7a34;background:#f3fbf5}
.tag{display:inline-block;font-weight:bold;padding:0 .35em;border-radius:3px;color:#fff;background:#777}
.tag.fails,.tag.error{background:#b00020}.tag.degraded,.tag.warning,.tag.unknown{background:#a35f00}
.tag.ok{background:#1d7a34}.tag.info{background:#2b5f8f}
.finding{border-left:.3em solid #999;padding:.3em .6em;margin:.4em 0}
.finding.error{border-color:#b00020}.finding.warning{border-color:#b36b00}.finding.info{border-color:#2b5f8f}
.finding ul{margin:.2em 0;padding-left:1.2em}
.meta{color:#444}
.waterfall{width:100%;height:auto;display:block;margin:.4em 0 1em}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;
vertical-align:-.1em}
@media (max-width:720px){
 body{padding:.6em}
 table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
 table.stack tr:first-child{display:none}
 table.stack tr{border:1px solid #d0d0d0;margin-bottom:.6em}
 table.stack td{border:0;border-bottom:1px solid #eee}
 table.stack td::before{content:attr(data-label) ": ";font-weight:bold}
 td.num{text-align:left}
}
@media print{body{max-width:none;padding:0;font-size:11px}h2{break-after:avoid}tr,.finding,.verdict{break-inside:avoid}}
"""

#: Segment colours of the waterfall (colour-blind safe palette).
PHASE_COLOURS = {"dns": "#56b4e9", "connect": "#e69f00", "tls": "#cc79a7", "ttfb": "#999999", "transfer": "#009e73"}
_WAIT = "#e6e6e6"


def _e(value: Any) -> str:
    return escape(str(value if value is not None else ""), quote=True)


def _table(headers: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    """A table whose cells carry their header (``data-label``) for the stacked narrow layout."""
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"
    body = "".join("<tr>" + "".join(
        f"<td data-label='{_e(h)}'{' class=num' if i in numeric else ''}>{cell}</td>"
        for i, (h, cell) in enumerate(zip(headers, row))) + "</tr>" for row in rows)
    return f"<table class=stack>{head}{body}</table>"


def _verdicts(d: dict[str, Any]) -> list[str]:
    out = []
    for v in d.get("verdicts") or []:
        tail = ""
        if v.get("fix"):
            tail = f" Fix: <code>{_e(sections.verdict_fix_command(d, v))}</code> (add <code>--apply</code> to apply)."
        elif v.get("manual"):
            tail = f" By hand: {_e(v['manual'])}"
        if v.get("untested"):
            tail += " <span class=meta>Not tested: " + _e("; ".join(v["untested"])) + ".</span>"
        out.append(f"<p class='verdict {_e(v['status'])}'><span class='tag {_e(v['status'])}'>{_e(v['status'].upper())}"
                   f"</span> {_e(v['summary'])}{tail}</p>")
    if d.get("independent_findings"):
        out.append("<p>Independent problems: " + ", ".join(f"<code>{_e(i)}</code>" for i in d["independent_findings"])
                   + "</p>")
    return out


def _runtime_said(d: dict[str, Any]) -> list[str]:
    said = sections.runtime_said(d)
    if said is None:
        return []
    out = [f"<h2 id=runtime-said>{_e(sections.RUNTIME_SAID_TITLE)}</h2>"]
    if said["rows"]:
        out.append(_table(["", "Runtime", "Endpoint", "Phase", "Last seen", "Error", "Why"], [
            [f"<span class='tag {sections.SAID_STYLE.get(r['status'], 'info')}'>"
             f"{_e(r['label'])}</span>", _e(r["runtime"]), f"<code>{_e(r['endpoint'])}</code>", _e(r["phase"]),
             _e(r["when"]), f"<code>{_e(r['error'])}</code>",
             _e(r["reason"].rstrip(".") + ".") + (f" Finding <code>{_e(r['finding'])}</code>." if r["finding"] else "")]
            for r in said["rows"]]))
    else:
        out.append(f"<p>No pull error logged since {_e(said['since'])}.</p>")
    if said["read"]:
        out.append(f"<p class=meta>Read: {_e('; '.join(said['read']))}</p>")
    if said["notes"]:
        out += ["<ul>"] + [f"<li>{_e(n)}</li>" for n in said["notes"]] + ["</ul>"]
    return out


def _findings(d: dict[str, Any]) -> list[str]:
    out = ["<h2 id=findings>Findings</h2>"]
    groups = sections.findings_by_severity(d)
    if not groups:
        return out + ["<p>No findings.</p>"]
    for severity, findings in groups:
        out.append(f"<h3>{_e(severity.capitalize())} ({len(findings)})</h3>")
        for f in findings:
            items = [f"<li>{_e(line)}</li>" for line in sections.evidence_lines(f)]
            cmd = sections.fix_command(f)
            if cmd:
                items.append(f"<li>fix: <code>{_e(cmd)}</code> ({_e(f['fix']['summary'])})</li>")
            elif f.get("fix"):
                items.append(f"<li>fix ({_e(f['fix']['kind'])}): {_e(f['fix']['summary'])}</li>")
            runtime = f"; runtime {_e(f['runtime'])}" if f.get("runtime") else ""
            out.append(f"<div class='finding {_e(severity)}'><span class='tag {_e(severity)}'>{_e(severity)}</span> "
                       f"<code>{_e(f['code'])}</code> <b>{_e(f['title'])}</b><br>"
                       f"<span class=meta>where <code>{_e(sections.where(f))}</code>{runtime}</span><br>"
                       f"{_e(f.get('detail'))}<ul>{''.join(items)}</ul></div>")
    return out


def _routes(d: dict[str, Any]) -> list[str]:
    if not d.get("routes"):
        return []
    out = ["<h2 id=routes>Routes</h2>"]
    for r in d["routes"]:
        out.append(f"<h3><code>{_e(r['image'])}</code> via {_e(r['runtime'])}"
                   + (f" <span class=meta>({_e(r['mode'])})</span>" if r.get("mode") else "") + "</h3>")
        if r.get("assumed"):
            out.append(f"<p class=meta>Assumed: {_e(r['assumed'])}</p>")
        rows, n = [], 0
        for ep in r["endpoints"]:
            num = "-" if ep["status"] == "skipped" else str(n := n + 1)
            status = ep["status"] + (f": {ep['reason']}" if ep.get("reason") else "")
            rows.append([num, _e(ep["role"]), f"<code>{_e(ep['url'])}</code>", f"<code>{_e(ep['source'])}</code>",
                         "yes" if ep["tls"]["verify"] else "no", _e(ep.get("proxy") or "direct"), _e(status)])
        out.append(_table(["#", "role", "endpoint", "source", "TLS verify", "proxy", "status"], rows))
        out += [f"<p class=meta>{_e(note)}</p>" for note in r.get("notes") or []]
    return out


def _certificates(d: dict[str, Any]) -> list[str]:
    rows = sections.certificates(d)
    if not rows:
        return []
    body = []
    for r in rows:
        chain = "<br>".join(f"{_e(c['subject'])} <span class=meta>({_e(c['role'])}, until {_e(c['not_after'])})</span>"
                            for c in r["chain"]) or "-"
        body.append([_e(r["runtime"]), f"<code>{_e(r['url'] or r['host'])}</code>", _e(r["status"]), chain,
                     _e(r["error"])])
    return ["<h2 id=certificates>Certificates</h2>",
            _table(["runtime", "endpoint", "status", "chain (leaf first)", "Go error"], body)]


def _proxy(d: dict[str, Any]) -> list[str]:
    rows = sections.proxy_decisions(d)
    tried = sections.proxies(d)
    if not rows and not tried:
        return []
    out = ["<h2 id=proxy>Proxy</h2>"]
    if rows:
        out.append(_table(["runtime", "endpoint", "proxy", "why"],
                          [[_e(r["runtime"]), f"<code>{_e(r['url'])}</code>", _e(r["proxy"]), _e(r["reason"])] for r in rows]))
    if tried:
        out.append(_table(["proxy", "used by", "set in", "works", "what it answered"],
                          [[f"<code>{_e(p['proxy'])}</code>", _e(p["runtimes"]), _e(p["sources"]),
                            p["works"], _e(p["detail"])] for p in tried]))
    return out


def _clock(d: dict[str, Any]) -> list[str]:
    c = sections.clock(d)
    if not c:
        return []
    offset = c["offset_text"]
    return ["<h2 id=clock>Clock</h2>",
            f"<p>Offset {_e(offset)} ({_e(c['source'] or 'no reference')}). NTP: {_e(c['ntp'] or 'none configured')}; "
            f"sync daemons: {_e(c['daemons'])}.</p>"]


def waterfall(d: dict[str, Any]) -> str:
    """The test pull as an SVG waterfall: one ``<g class=layer>`` row per layer on a shared time axis."""
    rows = [b for b in sections.layers(d) if b["kind"] == "layer"]
    if not rows:
        return ""
    spans = []
    for b in rows:
        total = sum(float(b["timings"][p] or 0) for p in sections.PHASES)
        spans.append(max(float(b["started_ms"] or 0) + total, float(b["total_ms"] or 0) + float(b["started_ms"] or 0)))
    pull = d.get("pull") or {}
    axis = max([float(pull.get("wall_ms") or 0), *spans, 1.0])
    label_w, plot_w, row_h, top = 150, 650, 18, 24
    width = label_w + plot_w + 10
    height = top + row_h * len(rows) + 28

    def x(t: float) -> float:
        return round(label_w + plot_w * t / axis, 2)

    parts = [f"<svg class=waterfall xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' role=img "
             f"aria-label='test pull waterfall: {len(rows)} layers over {axis:.0f} ms'>",
             "<title>Test pull waterfall (per-layer phases on a shared time axis)</title>"]
    for i in range(5):
        t = axis * i / 4
        parts.append(f"<line x1='{x(t)}' y1='{top - 4}' x2='{x(t)}' y2='{top + row_h * len(rows)}' stroke='#ddd'/>"
                     f"<text x='{x(t)}' y='{top - 8}' font-size='10' text-anchor='middle' fill='#555'>{t:.0f} ms</text>")
    for n, b in enumerate(rows):
        y = top + n * row_h
        t = b["timings"]
        figures = (f"{b['digest'][:19]}: {sections.human_bytes(b['size'])} from {b['endpoint']}; "
                   + ", ".join(f"{p} {sections.ms(t[p])} ms" for p in sections.PHASES)
                   + f"; total {sections.ms(b['total_ms'])} ms; {b['mbps']} MB/s"
                   + ("; connection reused" if b["reused"] else "") + (f"; error {b['error']}" if b["error"] else ""))
        parts.append(f"<g class=layer><title>{_e(figures)}</title>"
                     f"<text x='2' y='{y + 13}' font-size='11' font-family='monospace' fill='#222'>"
                     f"{_e(b['digest'][7:19])} {_e(sections.human_bytes(b['size']))}</text>"
                     f"<rect x='{label_w}' y='{y + 3}' width='{plot_w}' height='{row_h - 6}' fill='{_WAIT}' opacity='.35'/>")
        cursor = float(b["started_ms"] or 0)
        for phase in sections.PHASES:
            value = t[phase]
            if not value:
                continue
            w = max(x(cursor + float(value)) - x(cursor), 0.5)
            parts.append(f"<rect class='{phase}' x='{x(cursor)}' y='{y + 3}' width='{round(w, 2)}' height='{row_h - 6}' "
                         f"fill='{PHASE_COLOURS[phase]}'/>")
            cursor += float(value)
        parts.append("</g>")
    ly = top + row_h * len(rows) + 16
    lx = label_w
    for phase, colour in PHASE_COLOURS.items():
        parts.append(f"<rect x='{lx}' y='{ly - 9}' width='10' height='10' fill='{colour}'/>"
                     f"<text x='{lx + 14}' y='{ly}' font-size='11' fill='#222'>{phase}</text>")
        lx += 90
    parts.append("</svg>")
    return "".join(parts)


def _pull(d: dict[str, Any]) -> list[str]:
    pull = d.get("pull")
    if not isinstance(pull, dict):
        return []
    state = "ok" if pull.get("ok") else "fails"
    out = ["<h2 id=pull>Test pull</h2>",
           f"<p><code>{_e(pull.get('image'))}</code> as {_e(pull.get('runtime'))}: <span class='tag {state}'>"
           f"{'OK' if pull.get('ok') else 'FAILED'}</span> from <code>{_e(pull.get('endpoint'))}</code>, "
           f"{_e(sections.human_bytes(pull.get('bytes', 0)))} in {pull.get('wall_ms') or 0:.0f} ms, "
           f"concurrency {_e(pull.get('concurrency'))}.</p>"]
    if pull.get("error"):
        out.append(f"<p>Error: {_e(pull['error'])}</p>")
    svg = waterfall(d)
    if svg:
        legend = "".join(f"<span><i style='background:{c}'></i>{_e(p)}</span>" for p, c in PHASE_COLOURS.items())
        out += [svg, f"<p class='legend meta'>{legend} (hover a row for its figures)</p>"]
    rows = sections.layers(d)
    if rows:
        body = [[_e(b["kind"]), f"<code>{_e(b['digest'][:19])}</code>", _e(sections.human_bytes(b["size"])),
                 f"<code>{_e(b['endpoint'])}</code>", *(_e(sections.ms(b["timings"][p])) for p in sections.PHASES),
                 _e(sections.ms(b["total_ms"])), _e(b["mbps"])] for b in rows]
        out.append(_table(["blob", "digest", "size", "endpoint", "dns", "connect", "tls", "ttfb", "transfer",
                           "total (ms)", "MB/s"], body, numeric=(2, 4, 5, 6, 7, 8, 9, 10)))
    return out


def _reproducers(d: dict[str, Any]) -> list[str]:
    groups = sections.reproducers(d)
    if not groups:
        return []
    out = ["<h2 id=reproducers>Reproducers</h2>",
           "<p class=meta>Run these on the host to see what the runtime sees. <code>USER:PASSWORD</code> stands for "
           "credentials this report does not include.</p>"]
    for runtime, url, commands in groups:
        out.append(f"<h3>{_e(runtime)}: <code>{_e(url)}</code></h3>")
        out.append("<pre>" + _e("\n".join(c.text for c in commands)) + "</pre>")
    return out


def render(report: Report) -> str:
    """The report as one standalone HTML page."""
    d = report.to_dict()
    c = d["summary"]["counts"]
    title = f"regtui report: {d['host']['hostname']}"
    parts = [
        "<!DOCTYPE html>",
        "<html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        *_verdicts(d),
        f"<p class=meta>Generated {_e(d['generated_at'])}; root <code>{_e(d['host']['root'])}</code>; mode "
        f"{_e(d['mode'])}; images: {_e(', '.join(d['images']) or 'none')}; runtimes: "
        f"{_e('; '.join(sections.runtime_label(r) for r in d['runtimes']) or 'none detected')}; "
        f"<span class='tag error'>{c['error']} error(s)</span> <span class='tag warning'>{c['warning']} warning(s)</span> "
        f"<span class='tag info'>{c['info']} info</span></p>",
        *_runtime_said(d),
    ]
    parts += _findings(d) + _routes(d) + _certificates(d) + _proxy(d) + _clock(d) + _pull(d) + _reproducers(d)
    if d["notes"]:
        parts += ["<h2 id=notes>Notes</h2><ul>"] + [f"<li>{_e(n)}</li>" for n in d["notes"]] + ["</ul>"]
    parts.append("</body></html>\n")
    return "\n".join(parts)
