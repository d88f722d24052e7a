"""Proxy panel: the daemons' proxy variables beside the shell's, and per endpoint the decision and why."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from regtui.tui.data import Copyable, endpoint_reproducers, first_value, probe
from regtui.tui.widgets.base import Panel, PlainTable
from regtui.tui.widgets.mirrors import probe_rows

__all__ = ["ProxyPanel"]

_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
_NO_PROXY_ENTRY = re.compile(r"NO_PROXY entry '([^']*)'")


class ProxyPanel(Panel):
    """Variables side by side (shell vs each daemon), then endpoint -> proxy decision and live result."""

    panel = "proxy"

    def compose_body(self) -> ComposeResult:
        """Two tables: variables, decisions."""
        yield PlainTable(id="proxy-vars", cursor_type="row", classes="panel-content")
        yield Static("", id="proxy-sources")
        yield PlainTable(id="proxy-decisions", cursor_type="row", classes="panel-content")

    def on_mount(self) -> None:
        """Decision columns (variable columns depend on the runtimes)."""
        dec = self.query_one("#proxy-decisions", PlainTable)
        for label, key in (("runtime", "rt"), ("endpoint", "host"), ("proxy", "proxy"), ("decision", "why"),
                           ("NO_PROXY match", "match"), ("live", "live")):
            dec.add_column(label, key=key)
        self._eps: list[tuple[dict[str, Any], str]] = []

    def render_body(self, data: dict[str, Any], state: str) -> None:
        """Fill both tables from the report."""
        proxy = data.get("probes", {}).get("proxy", {}) or {}
        shell = proxy.get("shell", {}) or {}
        daemons = proxy.get("daemons", {}) or {}
        table = self.query_one("#proxy-vars", PlainTable)
        table.clear(columns=True)
        table.add_column("variable", key="var")
        table.add_column("shell", key="shell")
        for name in daemons:
            table.add_column(f"{name} daemon", key=f"d:{name}")
        provenance = Text()
        for var in _VARS:
            sval = shell.get(var, "")
            row: list[Any] = [Text(var, style=self.st("key")), Text(sval or "unset", style="" if sval else self.st("dim"))]
            for name, d in daemons.items():
                val = (d.get("effective") or {}).get(var, "")
                cell = Text(val or "unset", style="" if val else self.st("dim"))
                if val != sval:
                    cell.stylize(self.st("warn"))
                row.append(cell)
                src = (d.get("sources") or {}).get(var) or (d.get("sources") or {}).get(var.lower())
                if src:
                    provenance.append(f"{name} {var} ← {src}\n", style=self.st("dim"))
            table.add_row(*row)
        provenance.rstrip()
        self.query_one("#proxy-sources", Static).update(provenance)
        live = {}
        value = probe(data, "proxy")
        outcomes = {o.get("proxy"): o for o in (value.get("proxies") or [])} if isinstance(value, dict) else {}
        if isinstance(value, dict) and isinstance(value.get("runtimes"), dict):
            for rt, row in value["runtimes"].items():
                for e in (row or {}).get("endpoints") or []:
                    dec_ = (e.get("running") or e.get("configured") or {})
                    o = outcomes.get(dec_.get("proxy"))
                    result = "direct" if not dec_.get("proxy") else (
                        "proxy ok" if o and o.get("ok") else f"proxy failed: {(o or {}).get('note') or 'see findings'}")
                    if e.get("running") and e.get("configured") and e["running"].get("proxy") != e["configured"].get("proxy"):
                        result += " (running daemon differs)"
                    live[(rt, e.get("url"))] = {"result": result}
        for rec in probe_rows(value):
            key = first_value(rec, ("url", "endpoint", "host"))
            if key:
                live[(rec.get("runtime"), str(key))] = rec
                live.setdefault((None, str(key)), rec)
        dec = self.query_one("#proxy-decisions", PlainTable)
        row_i = dec.cursor_row
        dec.clear()
        self._eps = []
        seen: set[tuple[str, str, str]] = set()
        for route in data.get("routes", []):
            for ep in route.get("endpoints", []):
                key = (route["runtime"], ep["host"], ep.get("proxy") or "")
                # One row per decision: an endpoint listed twice (server and [host]) decides the same way.
                if ep.get("status") == "skipped" or key in seen:
                    continue
                seen.add(key)
                rec = (live.get((route["runtime"], ep["url"])) or live.get((None, ep["url"]))
                       or live.get((None, ep["host"])) or {})
                why = ep.get("proxy_reason") or ""
                m = _NO_PROXY_ENTRY.search(why)
                result = first_value(rec, ("result", "status", "connect", "error"))
                dec.add_row(route["runtime"], ep["host"],
                            Text(ep.get("proxy") or "direct", style=self.st("accent") if ep.get("proxy") else self.st("dim")),
                            why, m.group(1) if m else "-",
                            Text(str(result), style=self.status_style(str(result))) if result is not None else "-")
                self._eps.append((ep, route["image"]))
        if not self._eps:
            dec.add_row("", Text("no endpoint to decide for", style=self.st("dim")), "", "", "", "")
        elif row_i < len(self._eps):
            dec.move_cursor(row=max(row_i, 0))

    def copyable(self) -> Copyable | None:
        """curl through the selected endpoint's proxy (as the daemon would)."""
        dec = self.query_one("#proxy-decisions", PlainTable)
        if not self._eps or not (0 <= dec.cursor_row < len(self._eps)):
            return None
        ep, image = self._eps[dec.cursor_row]
        reps = endpoint_reproducers(ep, image)
        return reps[0] if reps else None
