"""Small dialogs: change the image reference, export the report."""

from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from regtui.refs import ReferenceError, parse

__all__ = ["ImageScreen", "ExportScreen", "EXPORT_FORMATS"]

#: Export formats: key -> (format, file extension).
EXPORT_FORMATS = {"j": ("json", "json"), "m": ("markdown", "md"), "h": ("html", "html"), "p": ("prometheus", "prom")}


class ImageScreen(ModalScreen["str | None"]):
    """Ask for an image reference; enter re-plans and re-probes, esc keeps the current one."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        """Prompt, input, error line."""
        with Vertical(id="image-dialog", classes="dialog"):
            yield Static("Image reference (e.g. alpine:3.20, registry.example:5000/team/app@sha256:…)")
            yield Input(value=self.current, placeholder="docker.io/library/alpine:latest", id="image-input")
            yield Static("", id="image-error")

    def on_mount(self) -> None:
        """Title."""
        self.query_one("#image-dialog").border_title = "Change image"
        self.query_one("#image-dialog").border_subtitle = "enter apply · esc cancel"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Validate, then hand the normalised reference back."""
        event.stop()
        value = event.value.strip()
        if not value:
            self.query_one("#image-error", Static).update("type a reference, or esc to keep the current one")
            return
        try:
            ref = parse(value)
        except ReferenceError as exc:
            self.query_one("#image-error", Static).update(Text(f"not a valid reference: {exc}"))
            return
        self.dismiss(str(ref))

    def action_cancel(self) -> None:
        """Keep the current image."""
        self.dismiss(None)


class ExportScreen(ModalScreen["tuple[str, str] | None"]):
    """j, m, h or p writes JSON, Markdown, HTML or a Prometheus textfile into the directory shown (tab to edit it)."""

    AUTO_FOCUS = ""

    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("j", "export('j')", "JSON"),
        Binding("m", "export('m')", "Markdown"),
        Binding("h", "export('h')", "HTML"),
        Binding("p", "export('p')", "Prometheus"),
    ]

    def __init__(self, directory: str, stem: str) -> None:
        super().__init__()
        self.directory = directory
        self.stem = stem

    def compose(self) -> ComposeResult:
        """Format keys, the directory, a note on redaction."""
        with Vertical(id="export-dialog", classes="dialog"):
            yield Static("j JSON   m Markdown   h HTML   p Prometheus   (file: " + self.stem + ".<ext>)", id="export-formats",
                         classes="focus-sink")
            yield Static("directory (tab to edit, enter writes JSON):", classes="dim")
            yield Input(value=self.directory, id="export-dir")
            yield Static("Secrets are redacted in every format.", classes="dim")

    def on_mount(self) -> None:
        """Title; keys go to the dialog, not the directory field."""
        dialog = self.query_one("#export-dialog")
        dialog.border_title = "Export report"
        dialog.border_subtitle = "j/m/h/p write · esc cancel"

    def action_export(self, key: str) -> None:
        """Write in the chosen format."""
        fmt, ext = EXPORT_FORMATS[key]
        directory = self.query_one("#export-dir", Input).value.strip() or self.directory
        self.dismiss((fmt, os.path.join(os.path.expanduser(directory), f"{self.stem}.{ext}")))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the directory field writes JSON."""
        event.stop()
        self.action_export("j")

    def action_cancel(self) -> None:
        """No export."""
        self.dismiss(None)
