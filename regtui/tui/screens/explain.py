"""Explain an error: paste a runtime's pull error, read it, and compare it with the current verdict."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from regtui.explain import MAX_TEXT, parse_pull_error
from regtui.explaincmd import Explanation, against_report, explanation_lines

__all__ = ["ExplainScreen"]


class ExplainScreen(ModalScreen["str | None"]):
    """ctrl+s reads the pasted error and shows what failed where and the current verdict; c checks the text's image
    when the workbench checks another one (the dialog then returns that image); esc closes."""

    BINDINGS = [
        Binding("escape", "cancel", "close"),
        Binding("ctrl+s", "explain", "explain", priority=True),
        Binding("c", "check_image", "check this image", show=False),
    ]

    def __init__(self, data: Callable[[], dict[str, Any]], runtime: str = "auto") -> None:
        super().__init__()
        self._data = data
        self._runtime = runtime
        self.explanation: Explanation | None = None

    def compose(self) -> ComposeResult:
        """A text area for the error, then the result (hidden until read)."""
        with Vertical(id="explain-dialog", classes="dialog"):
            yield Static("Paste the error a runtime printed (kubectl describe pod, ctr, crictl, docker, podman, "
                         "skopeo, a log line), then ctrl+s.", id="explain-hint")
            yield TextArea(id="explain-input", soft_wrap=True, show_line_numbers=False)
            with VerticalScroll(id="explain-result"):
                yield Static("", id="explain-output")

    def on_mount(self) -> None:
        """Title; the result area waits for a text."""
        dialog = self.query_one("#explain-dialog")
        dialog.border_title = "Explain an error"
        dialog.border_subtitle = "ctrl+s explain · esc close"
        self.query_one("#explain-result").display = False
        self.query_one("#explain-input", TextArea).focus()

    def action_explain(self) -> None:
        """Read the text and compare it with the current check's verdict."""
        text = self.query_one("#explain-input", TextArea).text[:MAX_TEXT]  # a pasted text longer than the parser reads is cut first
        output = self.query_one("#explain-output", Static)
        if not text.strip():
            output.update("paste an error first, or esc to close")
            self.query_one("#explain-result").display = True
            return
        e = against_report(parse_pull_error(text), self._data(), self._runtime)
        self.explanation = e
        lines = explanation_lines(e)
        can_check = e.relation is None and e.image is not None
        if can_check:
            lines.append(f"press c to check {e.image} now (re-plans and re-probes)")
        output.update(Text("\n".join(lines)))
        self.query_one("#explain-result").display = True
        self.query_one("#explain-input").display = False
        self.query_one("#explain-hint").display = False
        self.query_one("#explain-dialog").border_subtitle = ("c check this image · " if can_check else "") + "esc close"
        self.query_one("#explain-result").focus()

    def action_check_image(self) -> None:
        """Return the text's image for the workbench to check (only when it checks another one)."""
        e = self.explanation
        if e is not None and e.relation is None and e.image:
            self.dismiss(e.image)

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
