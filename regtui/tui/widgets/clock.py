"""Clock panel: the local clock against each time source, and a verdict in words."""

from __future__ import annotations

import shlex
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from regtui.tui.data import Copyable, first_value, panel_findings, probe
from regtui.tui.widgets.base import Panel, PlainTable

__all__ = ["ClockPanel", "offset_seconds", "verdict"]

#: Skew thresholds of the catalogue (clock.skew): warning above 2 s, error above 60 s.
WARN_S, ERROR_S = 2.0, 60.0


def offset_seconds(rec: dict[str, Any]) -> float | None:
    """A source's offset in seconds, whichever unit the probe recorded."""
    for key, scale in (("offset_seconds", 1.0), ("offset_s", 1.0), ("offset", 1.0), ("offset_ms", 0.001)):
        v = rec.get(key)
        if isinstance(v, (int, float)):
            return float(v) * scale
    return None


def verdict(offsets: list[float]) -> tuple[str, str]:
    """(level, words) for the largest offset: ``ok``, ``warn`` or ``bad``."""
    if not offsets:
        return "dim", "no time source answered"
    worst = max(offsets, key=abs)
    where = "behind" if worst > 0 else "ahead of"
    if abs(worst) > ERROR_S:
        return "bad", (f"local clock is {abs(worst):.1f} s {where} the sources: TLS validity and registry tokens "
                       "break at this skew")
    if abs(worst) > WARN_S:
        return "warn", f"local clock is {abs(worst):.1f} s {where} the sources: tokens may expire early"
    return "ok", f"in sync (largest offset {abs(worst) * 1000:.0f} ms)"


def _sources(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    if not isinstance(value, dict):
        return []
    out: list[dict[str, Any]] = []
    ntp = value.get("ntp")
    if isinstance(ntp, dict):
        value = {**value, "ntp": ntp.get("servers") or []}
    for key, kind in (("ntp", "ntp"), ("sources", "ntp"), ("samples", "ntp"), ("servers", "ntp"),
                      ("registry_dates", "registry Date"), ("registries", "registry Date"), ("dates", "registry Date")):
        for rec in value.get(key) or []:
            if isinstance(rec, dict):
                out.append({"kind": kind, **rec})
    return out


class ClockPanel(Panel):
    """Verdict line, then a row per source: offset, delay, stratum, result."""

    panel = "clock"

    def compose_body(self) -> ComposeResult:
        """Verdict and the sources table."""
        yield Static("", id="clock-verdict")
        yield PlainTable(id="clock-table", cursor_type="row", classes="panel-content")

    def on_mount(self) -> None:
        """Columns."""
        table = self.query_one("#clock-table", PlainTable)
        for label, key in (("source", "src"), ("kind", "kind"), ("offset", "offset"), ("delay", "delay"),
                           ("stratum", "stratum"), ("result", "result")):
            table.add_column(label, key=key)
        self._rows: list[dict[str, Any]] = []

    def render_body(self, data: dict[str, Any], state: str) -> None:
        """Sources from the probe; the verdict from the largest offset (or the probe's own words)."""
        value = probe(data, "clock")
        table = self.query_one("#clock-table", PlainTable)
        table.clear()
        self._rows = _sources(value)
        offsets = []
        for rec in self._rows:
            off = offset_seconds(rec)
            err = rec.get("error")
            if off is not None and not err:
                offsets.append(off)
            delay = first_value(rec, ("delay_seconds", "delay"))
            table.add_row(str(first_value(rec, ("server", "source", "endpoint", "host")) or "?"), rec.get("kind", ""),
                          f"{off:+.3f} s" if off is not None else "-",
                          f"{float(delay) * 1000:.1f} ms" if isinstance(delay, (int, float)) else "-",
                          str(rec.get("stratum", "-")),
                          Text(str(err) if err else "ok", style=self.st("bad") if err else self.st("ok")))
        if not self._rows:
            table.add_row(Text("no time source probed", style=self.st("dim")), "", "", "", "", "")
        words = value.get("verdict") if isinstance(value, dict) and isinstance(value.get("verdict"), str) else None
        level, computed = verdict(offsets)
        skew = value.get("skew_seconds") if isinstance(value, dict) else None
        if isinstance(skew, (int, float)):
            level, computed = verdict([-float(skew)])
            computed += f" (from {value.get('skew_source') or 'NTP'})"
        errors = [f for f in panel_findings(data, "clock") if f["severity"] == "error"]
        if errors:
            level = "bad"
        line = Text("verdict: ", style=self.st("key"))
        line.append(words or (computed if value is not None or offsets else "not probed"), style=self.st(level))
        sync = value.get("sync") if isinstance(value, dict) else None
        if isinstance(sync, dict):
            kernel = sync.get("kernel") or {}
            parts = [f"enabled: {', '.join(sync.get('enabled') or []) or 'no time sync daemon'}"]
            if kernel:
                parts.append(f"kernel: {'synchronised' if kernel.get('synchronized') else 'not synchronised'}")
            sync = "; ".join(parts)
        if sync:
            line.append(f"\nsync: {sync}", style=self.st("dim"))
        for note in (value.get("notes") or [] if isinstance(value, dict) else [])[:2]:
            line.append(f"\n{note}", style=self.st("dim"))
        self.query_one("#clock-verdict", Static).update(line)

    def copyable(self) -> Copyable | None:
        """A query of the selected NTP server (what chrony would see)."""
        table = self.query_one("#clock-table", PlainTable)
        if not self._rows or not (0 <= table.cursor_row < len(self._rows)):
            return None
        server = str(first_value(self._rows[table.cursor_row], ("server", "source", "host")) or "")
        host, _, port = server.partition(":")
        spec = f"server {host}" + (f" port {port}" if port else "") + " iburst"
        return Copyable(f"query {server}", shlex.join(["chronyd", "-Q", spec]))
