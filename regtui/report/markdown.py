"""Markdown writer for an incident ticket (CommonMark + GFM tables; GitHub, GitLab, Jira's Markdown).

The verdicts come first, one paragraph per image and runtime, then findings by severity with
their evidence and fix command, the routes, certificates, proxy decisions, clock, the test pull's
layers and reproducer commands for every failing endpoint.
"""

from __future__ import annotations

from typing import Any

from regtui.report import Report, sections

__all__ = ["render"]

_STATUS = {"ok": "OK", "degraded": "DEGRADED", "fails": "FAILS", "unknown": "UNKNOWN"}


def _cell(value: Any) -> str:
    """Text for a table cell: pipes escaped, one line, no raw HTML."""
    text = str(value if value is not None else "")
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _code(value: Any) -> str:
    """Inline code for a table cell (a backtick inside gets a longer fence)."""
    text = str(value if value is not None else "").replace("\n", " ").replace("|", "\\|")
    if not text:
        return ""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _block(text: str, lang: str = "") -> list[str]:
    """A fenced code block whose fence is longer than any backtick run inside."""
    longest = max((len(run) for run in text.split("\n") for run in _runs(run)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", text, fence]


def _runs(line: str) -> list[str]:
    out, cur = [], ""
    for ch in line:
        if ch == "`":
            cur += ch
        elif cur:
            out.append(cur)
            cur = ""
    return out + ([cur] if cur else [])


def _verdicts(d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for v in d.get("verdicts") or []:
        para = f"**{_STATUS.get(v['status'], v['status'])}**: {_cell(v['summary'])}"
        if v.get("fix"):
            para += f" Fix: `{_cell(sections.verdict_fix_command(d, v))}` (add `--apply` to apply)."
        elif v.get("manual"):
            para += f" By hand: {_cell(v['manual'])}"
        if v.get("untested"):
            para += " Not tested: " + "; ".join(_cell(u) for u in v["untested"]) + "."
        out += [para, ""]
    if d.get("independent_findings"):
        out += ["Independent problems: " + ", ".join(_code(i) for i in d["independent_findings"]), ""]
    return out


def _runtime_said(d: dict[str, Any]) -> list[str]:
    said = sections.runtime_said(d)
    if said is None:
        return []
    out = [f"## {sections.RUNTIME_SAID_TITLE}", ""]
    if said["rows"]:
        out += ["| | Runtime | Endpoint | Phase | Last seen | Error | Why |", "|---|---|---|---|---|---|---|"]
        for r in said["rows"]:
            why = r["reason"].rstrip(".") + "." + (f" Finding {_code(r['finding'])}." if r["finding"] else "")
            out.append(f"| **{_cell(r['label'])}** | {_cell(r['runtime'])} | {_code(r['endpoint'])} | {_cell(r['phase'])} "
                       f"| {_cell(r['when'])} | {_code(r['error'])} | {_cell(why)} |")
        out.append("")
    else:
        out += [f"No pull error logged since {_cell(said['since'])}.", ""]
    if said["read"]:
        out += ["Read: " + _cell("; ".join(said["read"])), ""]
    out += [f"- {_cell(n)}" for n in said["notes"]] + ([""] if said["notes"] else [])
    return out


def _findings(d: dict[str, Any]) -> list[str]:
    out = ["## Findings", ""]
    groups = sections.findings_by_severity(d)
    if not groups:
        return out + ["No findings.", ""]
    for severity, findings in groups:
        out += [f"### {severity.capitalize()} ({len(findings)})", ""]
        for f in findings:
            out.append(f"- **{_code(f['code'])}** {_cell(f['title'])}  ")
            out.append(f"  where: {_code(sections.where(f))}" + (f"; runtime: {f['runtime']}" if f.get("runtime") else "")
                       + ("  " if f.get("detail") else ""))
            if f.get("detail"):
                out.append(f"  {_cell(f['detail'])}")
            for line in sections.evidence_lines(f):
                out.append(f"  - {_cell(line)}")
            cmd = sections.fix_command(f)
            if cmd:
                out.append(f"  - fix: `{cmd}` ({_cell(f['fix']['summary'])})")
            elif f.get("fix"):
                out.append(f"  - fix ({_cell(f['fix']['kind'])}): {_cell(f['fix']['summary'])}")
        out.append("")
    return out


def _routes(d: dict[str, Any]) -> list[str]:
    if not d.get("routes"):
        return []
    out = ["## Routes", ""]
    for r in d["routes"]:
        out += [f"### {_code(r['image'])} via {r['runtime']}" + (f" ({_cell(r['mode'])})" if r.get("mode") else ""), ""]
        if r.get("assumed"):
            out += [f"Assumed: {_cell(r['assumed'])}", ""]
        out += ["| # | role | endpoint | source | TLS verify | proxy | status |", "|---|---|---|---|---|---|---|"]
        n = 0
        for ep in r["endpoints"]:
            num = "-" if ep["status"] == "skipped" else str(n := n + 1)
            status = ep["status"] + (f": {ep['reason']}" if ep.get("reason") else "")
            out.append(f"| {num} | {ep['role']} | {_code(ep['url'])} | {_code(ep['source'])} | "
                       f"{'yes' if ep['tls']['verify'] else 'no'} | {_cell(ep.get('proxy') or 'direct')} | {_cell(status)} |")
        out.append("")
        out += [f"> {_cell(note)}" for note in r.get("notes") or []]
        if r.get("notes"):
            out.append("")
    return out


def _certificates(d: dict[str, Any]) -> list[str]:
    rows = sections.certificates(d)
    if not rows:
        return []
    out = ["## Certificates", "", "| runtime | endpoint | status | chain (leaf first) | expires | Go error |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        chain = " ← ".join(f"{c['subject']} ({c['role']})" for c in r["chain"]) or "-"
        leaf = r["leaf"]
        expires = f"{leaf['not_after']} ({leaf['days_left']} days)" if leaf and leaf["not_after"] else "-"
        out.append(f"| {r['runtime']} | {_code(r['url'] or r['host'])} | {_cell(r['status'])} | {_cell(chain)} | "
                   f"{_cell(expires)} | {_cell(r['error'])} |")
    return out + [""]


def _proxy(d: dict[str, Any]) -> list[str]:
    rows = sections.proxy_decisions(d)
    tried = sections.proxies(d)
    if not rows and not tried:
        return []
    out = ["## Proxy", ""]
    if rows:
        out += ["| runtime | endpoint | proxy | why |", "|---|---|---|---|"]
        out += [f"| {r['runtime']} | {_code(r['url'])} | {_cell(r['proxy'])} | {_cell(r['reason'])} |" for r in rows]
        out.append("")
    if tried:
        out += ["| proxy | used by | set in | works | what it answered |", "|---|---|---|---|---|"]
        out += [f"| {_code(p['proxy'])} | {_cell(p['runtimes'])} | {_cell(p['sources'])} | "
                f"{p['works']} | {_cell(p['detail'])} |" for p in tried]
        out.append("")
    return out


def _clock(d: dict[str, Any]) -> list[str]:
    c = sections.clock(d)
    if not c:
        return []
    offset = c["offset_text"]
    return ["## Clock", "", f"- offset: {offset} ({_cell(c['source']) or 'no reference'})",
            f"- NTP: {_cell(c['ntp']) or 'none configured'}; sync daemons: {_cell(c['daemons'])}", ""]


def _pull(d: dict[str, Any]) -> list[str]:
    pull = d.get("pull")
    if not isinstance(pull, dict):
        return []
    state = "ok" if pull.get("ok") else "FAILED"
    out = ["## Test pull", "",
           f"{_code(pull.get('image'))} as {pull.get('runtime')}: **{state}** from {_code(pull.get('endpoint'))}, "
           f"{sections.human_bytes(pull.get('bytes', 0))} in {pull.get('wall_ms') or 0:.0f} ms, "
           f"concurrency {pull.get('concurrency')}", ""]
    if pull.get("error"):
        out += [f"Error: {_cell(pull['error'])}", ""]
    rows = sections.layers(d)
    if rows:
        out += ["| blob | digest | size | endpoint | dns | connect | tls | ttfb | transfer | total (ms) | MB/s |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for b in rows:
            t = b["timings"]
            out.append(f"| {b['kind']} | {_code(b['digest'][:19])} | {sections.human_bytes(b['size'])} | "
                       f"{_code(b['endpoint'])} | " + " | ".join(sections.ms(t[p]) for p in sections.PHASES)
                       + f" | {sections.ms(b['total_ms'])} | {b['mbps']} |")
        out.append("")
    return out


def _reproducers(d: dict[str, Any]) -> list[str]:
    groups = sections.reproducers(d)
    if not groups:
        return []
    out = ["## Reproducers", "", "Run these on the host to see what the runtime sees. `USER:PASSWORD` stands for "
           "credentials this report does not include.", ""]
    for runtime, url, commands in groups:
        out += [f"### {runtime}: {_code(url)}", ""]
        out += _block("\n".join(c.text for c in commands), "sh") + [""]
    return out


def render(report: Report) -> str:
    """The report as Markdown."""
    d = report.to_dict()
    c = d["summary"]["counts"]
    out = [f"# regtui report: {_cell(d['host']['hostname'])}", "", *_verdicts(d), *_runtime_said(d),
           f"- generated: {d['generated_at']}",
           f"- root: {_code(d['host']['root'])}; mode: {d['mode']}",
           f"- images: {', '.join(_code(i) for i in d['images']) or 'none'}",
           f"- runtimes: {_cell('; '.join(sections.runtime_label(r) for r in d['runtimes']) or 'none detected')}",
           f"- findings: **{c['error']} error(s)**, {c['warning']} warning(s), {c['info']} info", ""]
    out += _findings(d) + _routes(d) + _certificates(d) + _proxy(d) + _clock(d) + _pull(d) + _reproducers(d)
    if d["notes"]:
        out += ["## Notes", ""] + [f"- {_cell(n)}" for n in d["notes"]] + [""]
    return "\n".join(out)
