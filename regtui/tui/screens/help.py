"""Help screen: every key, from :mod:`regtui.tui.keys`."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from regtui.tui.keys import FIX_KEYS, MAIN_KEYS

__all__ = ["HelpScreen"]


def _table(title: str, rows: tuple[tuple[str, str], ...]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column()
    table.title = title
    table.title_justify = "left"
    for keys, what in rows:
        table.add_row(keys, what)
    return table


class HelpScreen(ModalScreen[None]):
    """Every key on the main screen and in the fix dialog; esc closes."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "close"),
    ]

    def compose(self) -> ComposeResult:
        """Keys, then a line on conventions."""
        with VerticalScroll(id="help-dialog", classes="dialog"):
            yield Static(_table("Workbench", MAIN_KEYS))
            yield Static(_table("Guided fix", FIX_KEYS), classes="help-section")
            yield Static(Text("Read-only unless started without --read-only; every fix shows its preview and asks "
                              "before it writes. Copy uses OSC 52, so it reaches your local clipboard over SSH "
                              "(in tmux: set -g set-clipboard on).", style="italic"), classes="help-section")

    def on_mount(self) -> None:
        """Title."""
        self.query_one("#help-dialog").border_title = "Help: keys"
        self.query_one("#help-dialog").border_subtitle = "esc close"

    async def action_dismiss(self, result: None = None) -> None:
        """Close."""
        self.dismiss(None)
