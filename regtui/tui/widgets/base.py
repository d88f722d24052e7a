"""What every panel shares: a state line, a body, and the panel's findings sorted by severity."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import DataTable, Static, Tree
from textual.widgets.tree import TreeNode

from regtui.tui.data import PANEL_TITLES, Copyable, filter_findings, finding_text, panel_findings, probe_state

__all__ = ["FindingsTable", "Panel", "detail_text", "show_detail", "PlainTable", "PlainTree", "SEVERITY_MARK", "spinner", "tree_nodes"]

#: Severity as one letter (legible without colour, e.g. under NO_COLOR).
SEVERITY_MARK = {"error": "E", "warning": "W", "info": "i"}
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def spinner(frame: int) -> str:
    """One spinner glyph (frame 0 when animations are off)."""
    return _FRAMES[frame % len(_FRAMES)]


class PlainTable(DataTable):
    """A data table whose string cells are plain text: config values are never parsed as markup."""

    def add_row(self, *cells: Any, **kwargs: Any) -> Any:
        """Add a row; ``str`` cells become :class:`~rich.text.Text` as they are."""
        return super().add_row(*(c if isinstance(c, Text) else Text(str(c)) for c in cells), **kwargs)


class PlainTree(Tree):
    """A tree whose string labels are plain text (paths and values may contain ``[``)."""

    def process_label(self, label: Any) -> Text:
        """Labels as they are, first line only."""
        text = label if isinstance(label, Text) else Text(str(label))
        return text.split()[0] if text.plain else text


def tree_nodes(node: TreeNode[Any]) -> list[TreeNode[Any]]:
    """Every node under ``node``, depth first (to keep expanded nodes expanded across re-renders)."""
    out = []
    for child in node.children:
        out.append(child)
        out += tree_nodes(child)
    return out


class FindingsTable(PlainTable):
    """Findings, errors first; enter (or ``f``) opens the guided fix."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"findings--error", "findings--warning", "findings--info"}
    DEFAULT_CSS = """
    FindingsTable > .findings--error { color: $error; text-style: bold; }
    FindingsTable > .findings--warning { color: $warning; }
    FindingsTable > .findings--info { color: $primary; }
    """

    class Chosen(Message):
        """The user chose a finding (enter)."""

        def __init__(self, finding: dict[str, Any]) -> None:
            super().__init__()
            self.finding = finding

    def __init__(self, *, show_panel: bool = False, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.show_panel = show_panel
        self.findings: list[dict[str, Any]] = []
        self.user_moved = False
        """The user moved the cursor: re-renders keep it on the same finding (else on the first)."""

    def highlight_first(self) -> None:
        """Put the cursor on the most severe finding (a panel opens this way)."""
        self.user_moved = False
        if self.findings:
            self.move_cursor(row=0, scroll=True)

    def _moved(self, action: str) -> None:
        self.user_moved = True
        getattr(super(), f"action_{action}")()

    def action_cursor_down(self) -> None:
        """Move down (and remember the user chose)."""
        self._moved("cursor_down")

    def action_cursor_up(self) -> None:
        """Move up (and remember the user chose)."""
        self._moved("cursor_up")

    def action_page_down(self) -> None:
        """Page down (and remember the user chose)."""
        self._moved("page_down")

    def action_page_up(self) -> None:
        """Page up (and remember the user chose)."""
        self._moved("page_up")

    def action_scroll_bottom(self) -> None:
        """Last row (and remember the user chose)."""
        self._moved("scroll_bottom")

    def action_scroll_top(self) -> None:
        """First row (and remember the user chose)."""
        self._moved("scroll_top")

    def on_click(self) -> None:
        """A click chooses a row too."""
        self.user_moved = True

    def on_mount(self) -> None:
        """Columns: severity, (panel,) code, title."""
        self.add_column("", key="sev", width=1)
        if self.show_panel:
            self.add_column("panel", key="panel")
        self.add_column("finding", key="title")
        self.add_column("code", key="code")

    def set_findings(self, findings: list[dict[str, Any]]) -> None:
        """Replace the rows, keeping the cursor on the same finding when it is still there."""
        old = self.selected
        old_row = self.cursor_row
        self.findings = findings
        self.clear()
        for f in findings:
            sev = f.get("severity", "info")
            style = self.get_component_rich_style(f"findings--{sev}", partial=True)
            row: list[Any] = [Text(SEVERITY_MARK.get(sev, "?"), style=style)]
            if self.show_panel:
                row.append(PANEL_TITLES.get(f.get("panel", ""), f.get("panel", "")))
            row += [Text(f.get("title", "")), Text(f.get("code", ""), style=style)]
            self.add_row(*row)
        if not findings:
            return
        keys = [(f.get("code"), f.get("subject"), f.get("title")) for f in findings]
        if not self.user_moved:
            self.move_cursor(row=0)
        elif old is not None and (old.get("code"), old.get("subject"), old.get("title")) in keys:
            self.move_cursor(row=keys.index((old.get("code"), old.get("subject"), old.get("title"))))
        else:
            self.move_cursor(row=min(max(old_row, 0), len(findings) - 1))

    @property
    def selected(self) -> dict[str, Any] | None:
        """The finding under the cursor."""
        if not self.findings or not (0 <= self.cursor_row < len(self.findings)):
            return None
        return self.findings[self.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row opens its fix."""
        event.stop()
        if self.selected is not None:
            self.post_message(self.Chosen(self.selected))

    def copyable(self) -> Copyable | None:
        """The selected finding as text."""
        f = self.selected
        return Copyable(f"finding {f['code']}", finding_text(f)) if f else None


class Panel(Vertical):
    """One workbench panel: state line, body (subclass), findings of the panel."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"panel--ok", "panel--bad", "panel--warn", "panel--dim", "panel--accent",
                                             "panel--key"}
    DEFAULT_CSS = """
    Panel > .panel--ok { color: $success; }
    Panel > .panel--bad { color: $error; text-style: bold; }
    Panel > .panel--warn { color: $warning; }
    Panel > .panel--dim { color: $text-muted; }
    Panel > .panel--accent { color: $accent; }
    Panel > .panel--key { text-style: bold; }
    """

    panel: ClassVar[str] = ""
    """The panel's key (``config``, ``mirrors``...)."""

    state: reactive[str] = reactive("running")
    """``running``, ``done``, ``offline``, ``not-built``, ``error`` or ``none``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(id=f"panel-{self.panel}", classes="panel", **kwargs)
        self.border_title = f"{list(PANEL_TITLES).index(self.panel) + 1} {PANEL_TITLES[self.panel]}"
        self.data: dict[str, Any] = {}
        self._state_words = ""

    def compose(self) -> ComposeResult:
        """State line, then body and findings side by side on wide screens."""
        yield Static("", classes="panel-state")
        with Container(classes="panel-main"):
            with Vertical(classes="panel-body"):
                yield from self.compose_body()
            yield FindingsTable(classes="panel-findings")
        yield Static("", classes="finding-detail")

    def compose_body(self) -> ComposeResult:
        """The panel's own widgets."""
        yield from ()

    def show(self, data: dict[str, Any], running: bool, query: str, frame: int = 0, *, cancelled: bool = False) -> None:
        """Render the report (redacted dict) for this panel."""
        self.data = data
        state = self.set_state(data, running, cancelled)
        self.tick(frame)
        self.render_body(data, state)
        findings = filter_findings(panel_findings(data, self.panel), query) if query else panel_findings(data, self.panel)
        table = self.query_one(FindingsTable)
        table.set_findings(findings)
        c = {s: sum(1 for f in findings if f.get("severity") == s) for s in ("error", "warning", "info")}
        label = f"{c['error']}E {c['warning']}W {c['info']}i" if findings else "no findings"
        # Text, not a str: a str title is parsed as markup, and the filter is typed by the user.
        table.border_title = Text(f"Findings: {label}" + (f" (filter: {query})" if query else ""))
        show_detail(self, table)

    def set_state(self, data: dict[str, Any], running: bool, cancelled: bool = False) -> str:
        """Only the panel's state (cheap: a panel off screen gets this, and its body when shown)."""
        state, words = probe_state(data, self.panel, running)
        if cancelled:
            state, words = "cancelled", "cancelled before the results came: r runs this panel again"
        self.state = state
        self._state_words = words
        self.border_subtitle = "" if state in ("done",) else state
        return state

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted finding's whole text goes to the detail line (titles are cut in the list)."""
        if isinstance(event.data_table, FindingsTable):
            show_detail(self, event.data_table)

    def tick(self, frame: int) -> None:
        """Refresh the state line (spinner while running); the words are plain text, never markup."""
        line = self.query_one(".panel-state", Static)
        if self.state == "running":
            line.update(Text(f"{spinner(frame)} {self._state_words}…"))
        else:
            line.update(Text(self._state_words))
        line.display = bool(self._state_words) or self.state == "running"

    def render_body(self, data: dict[str, Any], state: str) -> None:
        """Fill the body from ``data``."""

    def st(self, name: str) -> Any:
        """Rich style of a component class (``ok``, ``bad``, ``warn``, ``dim``, ``accent``, ``key``)."""
        return self.get_component_rich_style(f"panel--{name}", partial=True)

    def status_style(self, status: str) -> Any:
        """Style for an ``ok``/``failed``/``skipped``/``untested`` (or parse) status word."""
        if status in ("ok", "verified", "in sync", "direct", "reachable"):
            return self.st("ok")
        if status in ("failed", "parse-error", "unreadable", "error", "unknown-authority", "unreachable"):
            return self.st("bad")
        if status in ("skipped", "ignored", "warning"):
            return self.st("warn")
        return self.st("dim")

    def copyable(self) -> Copyable | None:
        """What ``c`` copies when the body has focus (a reproducer for the selected item)."""
        return None

    @property
    def findings_table(self) -> FindingsTable:
        """This panel's findings list."""
        return self.query_one(FindingsTable)


def detail_text(f: Mapping[str, Any] | None) -> Text:
    """The highlighted finding in full (severity, code, subject, title), for a wrapping detail area."""
    if f is None:
        return Text("")
    sev = f.get("severity", "info")
    out = Text(f"{SEVERITY_MARK.get(sev, '?')} {f.get('code', '')}", style="bold")
    if f.get("runtime"):
        out.append(f" [{f['runtime']}]")
    out.append(f"  {f.get('title', '')}")
    fx = f.get("fix") or {}
    if fx.get("summary"):
        out.append(f"  fix: {fx['summary']}", style="italic")
    return out


def show_detail(view: Widget, table: FindingsTable) -> None:
    """Fill ``view``'s detail area from ``table``'s highlighted finding (hidden when there is none)."""
    for line in view.query(".finding-detail").results(Static):
        line.update(detail_text(table.selected))
        line.display = table.selected is not None


def kv_text(pairs: Mapping[str, Any], key_style: str = "bold") -> Text:
    """``key: value`` lines as Rich text."""
    out = Text()
    for i, (k, v) in enumerate(pairs.items()):
        if i:
            out.append("\n")
        out.append(f"{k}: ", style=key_style)
        out.append(str(v))
    return out
