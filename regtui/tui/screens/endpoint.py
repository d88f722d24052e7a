"""One endpoint in detail: why it failed, timings, TLS verdict, proxy decision, predicted error, reproducers."""

from __future__ import annotations

import re
from typing import Any, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from regtui import redact
from regtui.tui.data import Copyable, endpoint_reproducers, fmt_ms, probe

__all__ = ["EndpointScreen", "endpoint_detail", "endpoint_records"]

_NO_PROXY_ENTRY = re.compile(r"NO_PROXY entry '([^']*)'")


def _match(rows: Any, runtime: str, url: str) -> dict[str, Any]:
    """The record for ``url`` (and ``runtime`` when the rows carry one) in a probe's list of endpoints."""
    best: dict[str, Any] = {}
    for rec in rows if isinstance(rows, list) else []:
        if isinstance(rec, dict) and rec.get("url") == url:
            if rec.get("runtime") in (None, runtime):
                return rec
            best = best or rec
    return best


def endpoint_records(data: Mapping[str, Any], runtime: str, url: str) -> dict[str, dict[str, Any]]:
    """What each probe says about one endpoint: ``mirrors``, ``certs`` and ``pull`` records (empty when absent)."""
    value = probe(data, "mirrors")
    rows: list[Any] = []
    if isinstance(value, dict):  # per route (current reports) or one flat list
        rows = [{**e, "runtime": r.get("runtime")} for r in value.get("routes") or [] if isinstance(r, dict)
                for e in r.get("endpoints") or [] if isinstance(e, dict)]
        rows += value.get("endpoints") or []
    mirrors = _match(rows, runtime, url)
    certs = probe(data, "certs")
    tls = _match(certs.get("endpoints") if isinstance(certs, dict) else None, runtime, url)
    pull = data.get("pull") or {}
    pulled = _match(pull.get("endpoints"), runtime, url) if pull.get("runtime") in (None, runtime) else {}
    return {"mirrors": mirrors, "certs": tls, "pull": pulled}


def endpoint_detail(data: Mapping[str, Any], runtime: str, image: str, ep: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(heading, text) sections for one endpoint of a route, in words, redacted."""
    recs = endpoint_records(data, runtime, str(ep.get("url", "")))
    m, c, p = recs["mirrors"], recs["certs"], recs["pull"]
    out: list[tuple[str, str]] = []
    status = m.get("status") or ep.get("status") or "untested"
    lines = [f"{status}" + (f" in the {m['phase']} phase" if m.get("phase") else "")]
    cause = m.get("error") or ep.get("reason") or p.get("error")
    if cause:
        lines.append(str(cause))
    lines.append(f"{ep.get('role', '')} for {runtime}, pulling {image}")
    if ep.get("source"):
        lines.append(f"configured at {ep['source']}")
    out.append(("Result", "\n".join(lines)))
    timings = [f"{name} {fmt_ms(rec.get(key))}" for name, rec, key in
               (("probe total", m, "latency_ms"), ("/v2/ ping", m, "ping_ms"), ("test pull", p, "elapsed_ms"))
               if rec.get(key) is not None]
    if m.get("phase"):
        timings.append(f"stopped in: {m['phase']}" + (f" ({m['kind']})" if m.get("kind") else ""))
    out.append(("Timings", ", ".join(timings) if timings else "not probed"))
    tls = ep.get("tls") or {}
    tls_lines = []
    if str(ep.get("url", "")).startswith("https://"):
        tls_lines.append("verified" if tls.get("verify", True) else "not verified")
        if tls.get("verify_reason"):
            tls_lines[-1] += f": {tls['verify_reason']}"
        verdict = c.get("verdict") or {}
        if verdict:
            tls_lines.append("chain trusted" if verdict.get("trusted") else
                             f"chain not trusted: {verdict.get('go_reason') or verdict.get('go_error') or '?'}")
        elif c.get("status"):
            tls_lines.append(f"chain: {str(c['status']).replace('-', ' ')}")
        for ca in tls.get("ca_files") or []:
            tls_lines.append(f"CA file: {ca}")
    else:
        tls_lines.append("plain HTTP: no TLS")
    out.append(("TLS", "\n".join(tls_lines)))
    reason = str(ep.get("proxy_reason") or "")
    entry = _NO_PROXY_ENTRY.search(reason)
    proxy = f"through {ep['proxy']}" if ep.get("proxy") else "direct"
    if reason and not reason.startswith(("direct", "via", "through")):
        reason = f"{proxy}: {reason}"
    out.append(("Proxy", (reason or proxy)
                + (f"\nmatching NO_PROXY entry: {entry.group(1)}" if entry else "")))
    predicted = m.get("runtime_error") or p.get("runtime_error")
    if predicted:
        out.append((f"What {runtime} will say", str(predicted)))
    return [(head, redact.text(text)) for head, text in out]


class EndpointScreen(ModalScreen[None]):
    """The endpoint's detail and its reproducer commands; ``c`` (or enter) copies the highlighted one."""

    BINDINGS = [
        Binding("escape,q", "close", "close"),
        Binding("c", "copy", "copy command"),
    ]

    def __init__(self, data: Mapping[str, Any], runtime: str, image: str, ep: Mapping[str, Any]) -> None:
        super().__init__()
        self.sections = endpoint_detail(data, runtime, image, ep)
        self.reproducers: list[Copyable] = endpoint_reproducers(ep, image)
        self.url = redact.text(str(ep.get("url", "")))

    def compose(self) -> ComposeResult:
        """Sections, then the commands."""
        with VerticalScroll(id="endpoint-dialog", classes="dialog"):
            for head, text in self.sections:
                body = Text(f"{head}\n", style="bold")
                body.append(text)
                yield Static(body, classes="endpoint-section")
            yield Static(Text("Reproduce (c copies the highlighted command)", style="bold"),
                         classes="endpoint-section")
            yield OptionList(*(Option(Text(r.text), id=str(i)) for i, r in enumerate(self.reproducers)),
                             id="endpoint-commands")

    def on_mount(self) -> None:
        """Title; the commands list has focus."""
        dialog = self.query_one("#endpoint-dialog")
        dialog.border_title = Text(f"Endpoint {self.url}")
        dialog.border_subtitle = "c copy · esc close"
        commands = self.query_one(OptionList)
        if self.reproducers:
            commands.highlighted = 0
        commands.focus()

    def selected(self) -> Copyable | None:
        """The highlighted reproducer."""
        i = self.query_one(OptionList).highlighted
        return self.reproducers[i] if i is not None and 0 <= i < len(self.reproducers) else None

    def action_copy(self) -> None:
        """Copy the highlighted command (OSC 52)."""
        item = self.selected()
        if item is None:
            self.notify("no command to copy", severity="warning", timeout=3)
            return
        copy = getattr(self.app, "copy_text", None)
        if copy is not None:
            copy(item)
        else:
            self.app.copy_to_clipboard(item.text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter copies too."""
        event.stop()
        self.action_copy()

    def action_close(self) -> None:
        """Back to the panel."""
        self.dismiss(None)
