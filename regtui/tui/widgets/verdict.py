"""The Verdict panel, the workbench's first screen: the answer per (runtime, image) before any evidence.

Each verdict shows its status mark and summary, the chain from the symptom to the cause as a
short tree down to the ``file:line`` behind it, the fix of the cause (``f`` opens it in the guided
fix dialog) or the manual step, and what was not tested. The all-findings list stays on ``0``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from regtui.tui.data import Copyable, counts
from regtui.tui.verdicts import SaidLine, VerdictView, other_problems, unattached_said, verdict_text, verdict_views
from regtui.tui.widgets.base import FindingsTable, SEVERITY_MARK, spinner

__all__ = ["VerdictList", "VerdictPanel"]


def _hang(prefix: str, body: Text, prefix_style: Any = "") -> Table:
    """``prefix`` then ``body``, wrapped lines of the body indented under its first (a hanging indent)."""
    grid = Table.grid(padding=0, expand=True)
    grid.add_column(width=len(prefix), no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    grid.add_row(Text(prefix, style=prefix_style), body)
    return grid


class VerdictList(OptionList):
    """One option per verdict; ``f`` or enter opens the guided fix of the highlighted verdict's cause."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("f", "fix_cause", "fix cause")]
    DEFAULT_CSS = """
    VerdictList, VerdictList:focus { border: none; padding: 0 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.views: list[VerdictView] = []

    @property
    def verdict(self) -> VerdictView | None:
        """The highlighted verdict."""
        i = self.highlighted
        return self.views[i] if i is not None and 0 <= i < len(self.views) else None

    @property
    def selected(self) -> dict[str, Any] | None:
        """The highlighted verdict's cause finding (what the app's fix and copy actions work on)."""
        v = self.verdict
        return v.cause if v is not None else None

    @property
    def findings(self) -> list[dict[str, Any]]:
        """The causes of the verdicts shown (the findings this list leads to)."""
        return [v.cause for v in self.views if v.cause is not None]

    def highlight_first(self) -> None:
        """Put the cursor on the first verdict (the panel opens this way)."""
        if self.views:
            self.highlighted = 0

    def action_fix_cause(self) -> None:
        """Open the fix of the highlighted verdict's cause; say so when the verdict has none."""
        v = self.verdict
        if v is None:
            self.notify("no verdict selected", severity="warning", timeout=3)
        elif v.cause is None:
            self.notify(f"{v.runtime}: nothing to fix ({v.status})", timeout=3, markup=False)
        else:
            self.post_message(FindingsTable.Chosen(v.cause))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter on a verdict does what ``f`` does."""
        event.stop()
        self.action_fix_cause()

    def copyable(self) -> Copyable | None:
        """The highlighted verdict as text."""
        v = self.verdict
        return Copyable(f"verdict {v.runtime}", verdict_text(v)) if v else None


class VerdictPanel(Vertical):
    """The verdicts, their chains, fixes and what was not tested."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"verdict--ok", "verdict--fails", "verdict--degraded", "verdict--unknown",
                                             "verdict--error", "verdict--warning", "verdict--info", "verdict--dim",
                                             "verdict--key"}
    DEFAULT_CSS = """
    VerdictPanel > .verdict--ok { color: $success; text-style: bold; }
    VerdictPanel > .verdict--fails { color: $error; text-style: bold; }
    VerdictPanel > .verdict--degraded { color: $warning; text-style: bold; }
    VerdictPanel > .verdict--unknown { color: $text-muted; text-style: bold; }
    VerdictPanel > .verdict--error { color: $error; }
    VerdictPanel > .verdict--warning { color: $warning; }
    VerdictPanel > .verdict--info { color: $primary; }
    VerdictPanel > .verdict--dim { color: $text-muted; }
    VerdictPanel > .verdict--key { text-style: bold; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(id="panel-verdict", classes="panel", **kwargs)
        self.border_title = "v Verdict"
        self.running = True

    def compose(self) -> ComposeResult:
        """State line (while diagnosing), then the verdicts."""
        yield Static("", classes="panel-state")
        yield VerdictList(id="verdict-list", classes="panel-content")

    def st(self, name: str) -> Any:
        """Rich style of a component class."""
        return self.get_component_rich_style(f"verdict--{name}", partial=True)

    def show(self, data: dict[str, Any], running: bool, query: str = "", frame: int = 0) -> None:
        """Render the verdicts of the (redacted) report; the filter does not apply here."""
        self.running = running
        self.tick(frame)
        views = verdict_views(data)
        lst = self.verdict_list
        old = lst.verdict
        lst.views = views
        options: list[Option] = [Option(self._verdict_block(v), id=f"v{i}") for i, v in enumerate(views)]
        if not views:
            options.append(Option(Text(self._empty(data, running), style=self.st("dim")), disabled=True))
        options.append(Option(self._footer(data), disabled=True))
        lst.set_options(options)
        if views:
            keys = [(v.runtime, v.image) for v in views]
            lst.highlighted = keys.index((old.runtime, old.image)) if old and (old.runtime, old.image) in keys else 0
        c = {s: sum(1 for v in views if v.status == s) for s in ("fails", "degraded", "unknown", "ok")}
        words = ", ".join(f"{n} {s}" for s, n in c.items() if n)
        # Verdicts of a partial report can still change: said until the run ends.
        self.border_subtitle = Text(f"provisional: {words}" if running and words else words)

    def tick(self, frame: int) -> None:
        """The spinner while the engine runs (plain text, never markup)."""
        line = self.query_one(".panel-state", Static)
        line.update(Text(f"{spinner(frame)} diagnosing: reading configuration, probing, test pull…"))
        line.display = self.running

    @staticmethod
    def _empty(data: dict[str, Any], running: bool) -> str:
        if running:
            return "no verdict yet: the checks are running"
        if not data.get("images"):
            return "no verdict: no image given (press i to name one)"
        return "no verdict: no runtime found to diagnose (0 lists every finding)"

    def _footer(self, data: dict[str, Any]) -> Text:
        c = counts(data.get("findings", []))
        others = other_problems(data)
        out = Text(f"findings: {c['error']}E {c['warning']}W {c['info']}i", style=self.st("dim"))
        if others:
            out.append(f"; {len(others)} error(s) on no pull's path: ", style=self.st("dim"))
            out.append(", ".join(str(f.get("code")) for f in others[:3]) + (" …" if len(others) > 3 else ""),
                       style=self.st("error"))
        out.append(" (0 lists every finding)", style=self.st("dim"))
        loose = unattached_said(data)
        if loose:
            out.append(f"\n{len(loose)} logged pull error(s) match no verdict: ", style=self.st("dim"))
            out.append(loose[0].text, style=self.st("warning"))
        return out

    def _verdict_block(self, v: VerdictView) -> Group:
        """Mark and summary, the chain as a tree down to file:line, fix or manual step, not tested."""
        rows: list[Any] = [_hang(f"{v.mark} ", Text(v.summary, style=self.st("key")), self.st(v.status))]
        depth = 0
        for depth, node in enumerate(v.chain):
            body = Text()
            body.append(f"{SEVERITY_MARK.get(node.severity, '?')} {node.code}", style=self.st(node.severity))
            if node.title:
                body.append(f" {node.title}")
            if node.where and node.where not in node.title:
                body.append(f" ({node.where})", style=self.st("dim"))
            rows.append(_hang(" " * (5 + 2 * depth) + "└ ", body, self.st("dim")))
        if v.setting:
            indent = 5 + 2 * (depth + 1 if v.chain else 0)
            where = Text(f"{v.setting_what} {v.setting}", style=self.st("dim"))
            rows.append(_hang(" " * indent + "└ ", where, self.st("dim")))
        if v.fix:
            # What the fix does, then the command that previews it outside the workbench.
            body = Text(f"{v.fix_summary}\n" if v.fix_summary else "")
            body.append(v.fix_command, style=self.st("key"))
            rows.append(_hang("     fix (f): ", body, self.st("ok")))
        elif v.manual:
            rows.append(_hang("     by hand: ", Text(v.manual), self.st("warning")))
        if v.untested:
            rows.append(_hang("     not tested: ", Text("; ".join(v.untested), style=self.st("dim")), self.st("dim")))
        rows += [self._said_row(s) for s in v.said]
        return Group(*rows)

    #: Style of a logged error by how it stands against the verdict.
    _SAID_STYLE: ClassVar[dict[str, str]] = {"explained": "ok", "not-reproduced": "dim", "unexplained": "warning"}

    def _said_row(self, said: SaidLine) -> Table:
        """One pull error the runtime logged: whether the verdict explains it, where, when, the error."""
        body = Text(f"{said.label}: ", style=self.st(self._SAID_STYLE.get(said.status, "dim")))
        body.append(said.text)
        return _hang("     runtime said: ", body, self.st("dim"))

    def copyable(self) -> Copyable | None:
        """The highlighted verdict as text (``c``)."""
        return self.verdict_list.copyable()

    @property
    def verdict_list(self) -> VerdictList:
        """The verdicts."""
        return self.query_one(VerdictList)

    @property
    def findings_table(self) -> VerdictList:
        """What takes focus on this panel, and whose ``selected`` is the cause the fix action opens."""
        return self.verdict_list
