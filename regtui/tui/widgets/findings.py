"""The "all findings" view: every panel's findings in one list, errors first."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from regtui.tui.data import counts, filter_findings, panel_findings
from regtui.tui.widgets.base import FindingsTable, show_detail

__all__ = ["AllFindings"]


class AllFindings(Vertical):
    """Findings of every panel, with the panel named on each row."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(id="panel-all", classes="panel", **kwargs)
        self.border_title = "0 All findings"

    def compose(self) -> ComposeResult:
        """One table."""
        yield FindingsTable(show_panel=True, classes="panel-findings all-findings")
        yield Static("", classes="finding-detail")

    def show(self, data: dict[str, Any], running: bool, query: str, frame: int = 0) -> None:
        """Every finding, filtered by ``query``."""
        findings = panel_findings(data, None)
        if query:
            findings = filter_findings(findings, query)
        self.findings_table.set_findings(findings)
        c = counts(findings)
        label = f"{c['error']}E {c['warning']}W {c['info']}i" + (f" (filter: {query})" if query else "")
        self.border_subtitle = Text(label)  # a str would be parsed as markup, and the filter is typed
        show_detail(self, self.findings_table)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted finding in full below the list."""
        if isinstance(event.data_table, FindingsTable):
            show_detail(self, event.data_table)

    def tick(self, frame: int) -> None:
        """Nothing animates here."""

    def copyable(self) -> None:
        """The body is the findings list."""
        return None

    @property
    def findings_table(self) -> FindingsTable:
        """The list."""
        return self.query_one(FindingsTable)
