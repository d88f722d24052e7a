"""DNS panel: per endpoint host, the answers and time from each resolver."""

from __future__ import annotations

import ipaddress
import shlex
from typing import Any

from rich.text import Text
from textual.app import ComposeResult

from regtui.tui.data import Copyable, first_value, fmt_ms, probe
from regtui.tui.widgets.base import Panel, PlainTable
from regtui.tui.widgets.mirrors import probe_rows

__all__ = ["DnsPanel"]


def _hostname(host_port: str) -> str:
    if host_port.startswith("["):
        return host_port[1:host_port.find("]")]
    return host_port.rsplit(":", 1)[0] if host_port.count(":") == 1 else host_port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class DnsPanel(Panel):
    """Host, resolver, server asked, answers, time, error."""

    panel = "dns"

    def compose_body(self) -> ComposeResult:
        """One table, a row per lookup."""
        yield PlainTable(id="dns-table", cursor_type="row", classes="panel-content")

    def on_mount(self) -> None:
        """Columns."""
        table = self.query_one("#dns-table", PlainTable)
        for label, key in (("host", "host"), ("resolver", "resolver"), ("server", "server"), ("answers", "answers"),
                           ("time", "ms"), ("result", "error")):
            table.add_column(label, key=key)
        self._rows: list[dict[str, Any]] = []

    def render_body(self, data: dict[str, Any], state: str) -> None:
        """Lookups as probed; endpoint hosts not yet looked up are listed as such."""
        table = self.query_one("#dns-table", PlainTable)
        row_i = table.cursor_row
        table.clear()
        self._rows = []
        value = probe(data, "dns")
        if isinstance(value, dict) and isinstance(value.get("hosts"), list):
            lookups = [{**lk, "name": h.get("host") or lk.get("name")} for h in value["hosts"] if isinstance(h, dict)
                       for lk in (h.get("results") or {}).values() if isinstance(lk, dict)]
        else:
            lookups = probe_rows(value)
        seen = set()
        for rec in sorted(lookups, key=lambda r: (str(first_value(r, ("name", "host")) or ""), str(r.get("resolver", "")))):
            name = str(first_value(rec, ("name", "host")) or "?")
            seen.add(name)
            answers = rec.get("addresses", rec.get("answers", []))
            answers = ", ".join(map(str, answers)) if isinstance(answers, list) else str(answers or "")
            err = rec.get("error")
            resolver = str(rec.get("resolver", ""))
            if rec.get("used") is False:
                resolver += " (comparison, not used)"
            table.add_row(name, resolver, str(rec.get("server", "")),
                          answers or "-", fmt_ms(first_value(rec, ("elapsed_ms", "ms", "time_ms"))),
                          Text(str(err) if err else "ok", style=self.st("bad") if err else self.st("ok")))
            self._rows.append(rec)
        for route in data.get("routes", []):
            for ep in route.get("endpoints", []):
                name = _hostname(ep["host"])
                if name in seen or ep.get("status") == "skipped" or _is_ip(name):
                    continue
                seen.add(name)
                table.add_row(name, "-", "-", "-", "-", Text("not looked up", style=self.st("dim")))
                self._rows.append({"name": name})
        if not self._rows:
            table.add_row(Text("no endpoint host to resolve", style=self.st("dim")), "", "", "", "", "")
        elif row_i < len(self._rows):
            table.move_cursor(row=max(row_i, 0))

    def copyable(self) -> Copyable | None:
        """``dig`` for the selected host against the server that was asked."""
        table = self.query_one("#dns-table", PlainTable)
        if not self._rows or not (0 <= table.cursor_row < len(self._rows)):
            return None
        rec = self._rows[table.cursor_row]
        name = str(first_value(rec, ("name", "host")) or "")
        server = str(rec.get("server") or "")
        cmd = ["dig"]
        if server and server[0].isdigit() and ":" in server:
            ip, port = server.rsplit(":", 1)
            cmd += [f"@{ip}", "-p", port]
        return Copyable(f"dig {name}", shlex.join(cmd + [name]))
