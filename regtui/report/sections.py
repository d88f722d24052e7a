"""The report's sections as plain rows, shared by the Markdown and HTML writers.

Both writers show the same things in the same order (verdicts, findings by severity, routes,
certificates, proxy decisions, clock, the test pull's layers, reproducers), so what a ticket
says and what the HTML page says cannot drift apart. Everything here reads the redacted report
dict (``Report.to_dict()``).
"""

from __future__ import annotations

from typing import Any, Mapping

from regtui.model import fix_command as model_fix_command
from regtui.report.reproducers import Copyable, endpoint_reproducers, failing_endpoints, hosts_dir
from regtui.units import human_bytes

__all__ = ["SEVERITIES", "runtime_label", "human_bytes", "rate", "ms", "where", "fix_command", "verdict_fix_command", "findings_by_severity",
           "certificates", "proxy_decisions", "proxies", "clock", "layers", "reproducers", "PHASES", "runtime_said",
           "RUNTIME_SAID_TITLE", "SAID_STATUS", "SAID_STYLE"]

SEVERITIES = ("error", "warning", "info")
#: Timed phases of a blob request, in the order they happen (the waterfall's segments).
PHASES = ("dns", "connect", "tls", "ttfb", "transfer")


def runtime_label(r: Mapping[str, Any], limit: int | None = None) -> str:
    """A runtime and the files that made it count (``asked for`` when none did); past ``limit``
    files, ``+N more`` (``docker (detected by /root/.docker/config.json, +2 more)``)."""
    ev = [str(p) for p in r.get("detected_by") or []]
    if not ev:
        return f"{r.get('name')} (asked for)"
    shown = ev if limit is None else ev[:limit]
    more = f", +{len(ev) - len(shown)} more" if len(ev) > len(shown) else ""
    return f"{r.get('name')} (detected by {', '.join(shown)}{more})"


def rate(bytes_per_second: Any) -> str:
    """A transfer rate in MB/s."""
    try:
        x = float(bytes_per_second) / 1e6
    except (TypeError, ValueError):
        return "-"
    return f"{x:.1f}" if x >= 1 else f"{x:.3f}" if x >= 0.001 else f"{x:.2g}"


def ms(v: Any, unit: str = "") -> str:
    """Milliseconds for a cell (``unit`` appended to a number): ``-`` when the phase did not happen."""
    if v is None or v == "":
        return "-"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return (f"{x:.0f}" if x >= 10 else f"{x:.1f}") + unit


def where(f: Mapping[str, Any]) -> str:
    """``file:line`` of a finding's evidence, else its file, else its subject."""
    ev = f.get("evidence") or {}
    if ev.get("file") and ev.get("line"):
        return f"{ev['file']}:{ev['line']}"
    return str(ev.get("file") or f.get("subject") or "")


def fix_command(f: Mapping[str, Any]) -> str:
    """The command that previews (and with ``--apply`` applies) the finding's fix, or ``""``."""
    fx = f.get("fix") or {}
    if fx.get("kind") in ("edit", "command") and fx.get("id"):
        return model_fix_command(str(fx["id"]), fx.get("params"))
    return ""


def verdict_fix_command(d: Mapping[str, Any], v: Mapping[str, Any]) -> str:
    """The command that previews the fix a verdict names (with what it needs, as the finding's own), or ``""``."""
    if not v.get("fix"):
        return ""
    params = next(((f.get("fix") or {}).get("params") for f in d.get("findings") or []
                   if isinstance(f, dict) and (f.get("fix") or {}).get("id") == v["fix"]), None)
    return model_fix_command(str(v["fix"]), params)


#: Evidence keys worth a line in a report, most telling first.
_EVIDENCE_KEYS = ("phase", "runtime_error", "error", "endpoint", "url", "status", "http_status", "value", "expected",
                  "got", "bytes_seen", "received", "server", "proxy", "offset_seconds")


def evidence_lines(f: Mapping[str, Any]) -> list[str]:
    """A few ``key: value`` lines of the finding's evidence (the failing phase, the bytes seen...)."""
    ev = f.get("evidence") or {}
    out = []
    for key in _EVIDENCE_KEYS:
        value = ev.get(key)
        if value in (None, "", [], {}):
            continue
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        out.append(f"{key}: {text[:300]}")
    return out


def findings_by_severity(d: Mapping[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """``[(severity, findings)]`` for the severities that have any, errors first."""
    groups = [(s, [f for f in d.get("findings") or [] if f.get("severity") == s]) for s in SEVERITIES]
    return [(s, fs) for s, fs in groups if fs]


def certificates(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (runtime, endpoint) the TLS probe saw: status, the error Go would give, the chain
    (the verified path when there is one, else what the server presented) and its ``leaf``: the
    certificate whose expiry every output shows (``None`` when no certificate was seen)."""
    rows = []
    for e in (d.get("probes") or {}).get("tls") or []:
        if not isinstance(e, dict):
            continue
        verdict = e.get("verdict") or {}
        chain = [c for c in verdict.get("path") or e.get("chain") or [] if isinstance(c, dict)]
        shown = [{"role": c.get("role") or "", "subject": c.get("subject") or "", "issuer": c.get("issuer") or "",
                  "not_after": c.get("not_after") or "", "days_left": c.get("days_left"), "sha256": c.get("sha256") or ""}
                 for c in chain]
        leaf = next((s for s, c in zip(shown, chain) if c.get("role") == "leaf"), shown[0] if shown else None)
        rows.append({"runtime": e.get("runtime") or "", "host": e.get("host") or "", "url": e.get("url") or "",
                     "status": e.get("status") or "", "verify": e.get("verify"),
                     "error": verdict.get("go_error") or e.get("error") or "",
                     "chain": shown, "leaf": leaf})
    return rows


def proxy_decisions(d: Mapping[str, Any]) -> list[dict[str, str]]:
    """Per runtime and endpoint: the proxy the runtime uses (or direct) and why."""
    live = ((d.get("probes") or {}).get("proxy") or {}).get("live") or {}
    rows = []
    for runtime, view in (live.get("runtimes") or {}).items():
        for ep in (view or {}).get("endpoints") or []:
            configured = ep.get("configured") or {}
            running = ep.get("running") or {}
            rows.append({"runtime": runtime, "url": ep.get("url") or "", "role": ep.get("role") or "",
                         "proxy": configured.get("proxy") or "direct", "reason": configured.get("reason") or "",
                         "running": (running.get("proxy") or "direct") if running else ""})
    if not rows:  # offline: the routes say which proxy each endpoint is planned through
        for route in d.get("routes") or []:
            for ep in route.get("endpoints") or []:
                rows.append({"runtime": route.get("runtime") or "", "url": ep.get("url") or "",
                             "role": ep.get("role") or "", "proxy": ep.get("proxy") or "direct",
                             "reason": ep.get("proxy_reason") or "", "running": ""})
    seen: set[tuple[str, ...]] = set()
    unique = []
    for r in rows:
        key = tuple(r.values())
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def proxies(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The proxies the probe tried: address, who uses them, whether a CONNECT went through."""
    live = ((d.get("probes") or {}).get("proxy") or {}).get("live") or {}
    rows = []
    for p in live.get("proxies") or []:
        connects = p.get("connects") or []
        detail = "; ".join(f"CONNECT {c.get('target')}: {c.get('status_line') or c.get('error') or c.get('phase')}"
                           for c in connects[:4])
        rows.append({"proxy": p.get("proxy") or "", "runtimes": ", ".join(p.get("runtimes") or []),
                     "sources": ", ".join(p.get("sources") or []), "ok": p.get("ok"),
                     "works": "yes" if p.get("ok") else "no" if p.get("ok") is False else "-",
                     "detail": detail or p.get("note") or ""})
    return rows


def clock(d: Mapping[str, Any]) -> dict[str, Any] | None:
    """The clock probe: offset, its source, NTP and sync daemons; ``None`` when it did not run."""
    c = (d.get("probes") or {}).get("clock")
    if not isinstance(c, dict) or not c:
        return None
    sync = c.get("sync") or {}
    ntp = c.get("ntp") or {}
    offset = c.get("skew_seconds")
    return {"offset": offset, "source": c.get("skew_source") or "",
            "offset_text": f"{offset:+.3f} s" if isinstance(offset, (int, float)) else "not measured",
            "uncertainty": c.get("skew_uncertainty_seconds"),
            "ntp": ", ".join(str(s.get("server") if isinstance(s, dict) else s) for s in ntp.get("servers") or [])
            or ntp.get("configured_from") or "",
            "daemons": ", ".join(str(x.get("name") if isinstance(x, dict) else x) for x in sync.get("daemons") or [])
            or "none found", "local_time": c.get("local_time") or ""}


def layers(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The test pull's blobs (config first, then layers) with per-phase times, MB/s and a kind."""
    pull = d.get("pull")
    if not isinstance(pull, dict):
        return []
    rows = []
    for kind, blob in [("config", pull.get("config"))] + [("layer", b) for b in pull.get("layers") or []]:
        if not isinstance(blob, dict):
            continue
        t = blob.get("timings_ms") or {}
        rows.append({"kind": kind, "digest": blob.get("digest") or "", "size": blob.get("size"),
                     "endpoint": blob.get("endpoint") or "", "attempts": blob.get("attempts"),
                     "ok": blob.get("ok"), "error": blob.get("error") or "",
                     "started_ms": blob.get("started_ms") or 0.0, "timings": {p: t.get(p) for p in PHASES},
                     "total_ms": t.get("total"), "reused": bool(t.get("reused")),
                     "mbps": rate(blob.get("bytes_per_second"))})
    return rows


def reproducers(d: Mapping[str, Any]) -> list[tuple[str, str, list[Copyable]]]:
    """``(runtime, endpoint url, commands)`` for every failing endpoint, and for the test pull's if it failed."""
    return [(runtime, str(ep.get("url") or ""), endpoint_reproducers(ep, image, runtime, hosts_dir(d, runtime)))
            for runtime, image, ep in failing_endpoints(d)]


#: The section that follows the verdicts: the runtimes' own recent pull errors.
RUNTIME_SAID_TITLE = "What the runtime said"
#: How each logged error stands against the verdicts, in words.
SAID_STATUS = {"explained": "explained by the verdict", "not-reproduced": "not reproduced now",
               "unexplained": "not explained"}
#: The style (severity class) each status is shown in, by every HTML page.
SAID_STYLE = {"explained": "ok", "unexplained": "warning", "not-reproduced": "info"}


def runtime_said(d: Mapping[str, Any]) -> dict[str, Any] | None:
    """The logged pull errors as rows (status words, where, when, the text, why) and the notes; ``None`` if not read."""
    said = d.get("runtime_said")
    if not isinstance(said, dict):
        return None
    rows = []
    for e in said.get("errors") or []:
        if not isinstance(e, dict):
            continue
        when = str(e.get("last") or "time unknown")
        if (e.get("count") or 1) > 1:
            when += f" ({e['count']} times since {e.get('first') or '?'})"
        rows.append({"status": str(e.get("status") or ""), "label": SAID_STATUS.get(str(e.get("status")), str(e.get("status"))),
                     "runtime": str(e.get("runtime") or "") + (f" (via {e['via']})" if e.get("via") else ""), "endpoint": str(e.get("endpoint") or "-"),
                     "phase": str(e.get("phase") or "-"), "when": when, "source": str(e.get("source") or ""),
                     "error": str(e.get("error") or "")[:600], "go_error": str(e.get("go_error") or e.get("error") or "")[:300],
                     "reason": str(e.get("reason") or ""),
                     "finding": str(e.get("finding") or "")})
    read = [f"{s.get('source')} ({s.get('entries', 0)} entries)" for s in said.get("sources") or []
            if isinstance(s, dict) and s.get("status") == "read"]
    return {"since": str(said.get("since") or ""), "rows": rows, "read": read,
            "notes": [str(n) for n in said.get("notes") or []]}
