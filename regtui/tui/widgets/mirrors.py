"""Mirrors panel: per runtime, the ordered endpoints a pull tries, with health and why one is skipped."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable

from regtui.tui.data import Copyable, endpoint_reproducers, first_value, fmt_ms, probe, short_digest
from regtui.tui.screens.endpoint import EndpointScreen
from regtui.tui.widgets.base import Panel, PlainTable

__all__ = ["MirrorsPanel", "endpoint_reason", "probe_rows"]


def probe_rows(value: Any) -> list[dict[str, Any]]:
    """Per-endpoint records in a probe's data (a list, or a dict holding one under a usual key)."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    if isinstance(value, dict) and isinstance(value.get("routes"), list):
        return [{**ep, "runtime": r.get("runtime")} for r in value["routes"] if isinstance(r, dict)
                for ep in r.get("endpoints") or [] if isinstance(ep, dict)]
    if isinstance(value, dict):
        for key in ("endpoints", "results", "hosts", "lookups", "chains", "sources", "samples"):
            if isinstance(value.get(key), list):
                return [v for v in value[key] if isinstance(v, dict)]
    return []


def endpoint_reason(ep: dict[str, Any], rec: dict[str, Any]) -> str:
    """Why an endpoint failed or is skipped, in a few words: ``phase: cause``."""
    cause = str(ep.get("reason") or first_value(rec, ("error", "reason", "note")) or "")
    if not cause:
        return ""
    phase = rec.get("phase")
    kind = rec.get("kind")
    head = " ".join(str(x) for x in (phase, kind) if x and str(x) not in cause.split())
    return f"{head}: {cause}" if head else cause


class MirrorsPanel(Panel):
    """The route table: role, URL, status, latency, digest, reason; ``c`` copies a reproducer."""

    panel = "mirrors"

    def compose_body(self) -> ComposeResult:
        """One table for every runtime's route, a section row per route."""
        yield PlainTable(id="mirrors-table", cursor_type="row", classes="panel-content")

    def on_mount(self) -> None:
        """Columns."""
        table = self.query_one("#mirrors-table", PlainTable)
        for label, key in (("#", "n"), ("role", "role"), ("status", "status"), ("endpoint", "url"),
                           ("latency", "ms"), ("digest", "digest")):
            table.add_column(label, key=key)
        self._rows: list[tuple[dict[str, Any] | None, str, str]] = []

    def render_body(self, data: dict[str, Any], state: str) -> None:
        """One section per route, endpoints in the runtime's order."""
        table = self.query_one("#mirrors-table", PlainTable)
        row = table.cursor_row
        table.clear()
        self._rows = []
        live = {}
        for rec in probe_rows(probe(data, "mirrors")):
            url = first_value(rec, ("url", "endpoint"))
            if url:
                live[(rec.get("runtime"), url)] = rec
                live.setdefault((None, url), rec)
        for route in data.get("routes", []):
            head = Text(f"{route['image']}", style=self.st("accent"))
            if route.get("mode"):
                head.append(f" ({route['mode']})", style=self.st("dim"))
            table.add_row("", Text(route["runtime"], style=self.st("key")), "", head, "", "")
            self._rows.append((None, route["image"], route["runtime"]))
            n = 0
            for ep in route.get("endpoints", []):
                rec = live.get((route["runtime"], ep["url"])) or live.get((None, ep["url"])) or {}
                status = ep.get("status") or "untested"
                if status != "skipped":
                    n += 1
                latency = first_value(rec, ("latency_ms", "elapsed_ms", "ms", "total_ms"))
                digest = first_value(rec, ("digest", "manifest_digest"))
                table.add_row(
                    str(n) if status != "skipped" else "-",
                    ep.get("role", ""),
                    Text(status, style=self.status_style(status)),
                    ep["url"],
                    fmt_ms(latency) if latency is not None else "-",
                    short_digest(digest) if digest else "-",
                )
                self._rows.append((ep, route["image"], route["runtime"]))
                why = endpoint_reason(ep, rec)
                if why:
                    # Its own row under the endpoint, so the reason is on screen at 80 columns too.
                    table.add_row("", "", "", Text(f"└ {why}", style=self.status_style(status)), "", "")
                    self._rows.append((ep, route["image"], route["runtime"]))
            if not route.get("endpoints"):
                table.add_row("", "", "", Text("no endpoint", style=self.st("dim")), "", "")
                self._rows.append((None, route["image"], route["runtime"]))
            for note in route.get("notes", []):
                table.add_row("", "", "", Text(f"note: {note}", style=self.st("dim")), "", "")
                self._rows.append((None, route["image"], route["runtime"]))
        if not data.get("routes"):
            msg = "no image given: press i to name one" if not data.get("images") else "no route planned"
            table.add_row("", "", "", Text(msg, style=self.st("dim")), "", "")
            self._rows.append((None, "", ""))
        if self._rows:
            table.move_cursor(row=min(max(row, 0), len(self._rows) - 1))

    def selected_endpoint(self) -> tuple[dict[str, Any] | None, str]:
        """The endpoint under the cursor (``None`` on a section row) and its image."""
        ep, image, _ = self.selected_row()
        return ep, image

    def selected_row(self) -> tuple[dict[str, Any] | None, str, str]:
        """(endpoint or ``None``, image, runtime) under the cursor."""
        table = self.query_one("#mirrors-table", PlainTable)
        if not self._rows or not (0 <= table.cursor_row < len(self._rows)):
            return None, "", ""
        return self._rows[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on an endpoint row opens its detail."""
        if event.data_table.id != "mirrors-table":
            return
        event.stop()
        ep, image, runtime = self.selected_row()
        if ep is not None:
            self.app.push_screen(EndpointScreen(self.data, runtime, image, ep))

    def copyable(self) -> Copyable | None:
        """The selected endpoint's first reproducer (curl)."""
        ep, image = self.selected_endpoint()
        reps = endpoint_reproducers(ep, image) if ep else []
        return reps[0] if reps else None
