"""Command palette (ctrl+p): commands that depend on what is on screen and selected."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator, Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from regtui.model import PANELS
from regtui.tui.data import PANEL_TITLES, Copyable, panel_findings

__all__ = ["Workbench", "WorkbenchCommands", "workbench_commands"]

#: Export formats offered in the palette: (format, extension, words).
_EXPORTS = (("markdown", "md", "Markdown"), ("json", "json", "JSON"), ("html", "html", "HTML"),
            ("prometheus", "prom", "Prometheus textfile"))


class Workbench(Protocol):
    """What the palette reads and calls on the workbench app (so this module does not import it)."""

    current: str
    data: dict[str, Any]
    export_dir: str
    read_only: bool
    backups: list[tuple[str, dict[str, Any]]]

    def open_fix(self, f: dict[str, Any]) -> None: ...
    def export_stem(self) -> str: ...
    def export(self, fmt: str, path: str) -> None: ...
    def reproducers(self) -> list[Copyable]: ...
    def copyable(self) -> Copyable | None: ...
    def copy_text(self, item: Copyable) -> None: ...
    def action_image(self) -> None: ...
    def action_explain(self) -> None: ...
    def action_rerun(self) -> None: ...
    def action_rerun_all(self) -> None: ...
    def action_undo(self) -> None: ...
    def action_panel(self, name: str) -> None: ...
    def action_filter(self) -> None: ...
    def action_help(self) -> None: ...


def workbench_commands(app: Workbench) -> Iterator[tuple[str, Callable[[], Any], str]]:
    """(name, callback, help) for the palette, given the app's current view and selection."""
    view = app.current
    findings = panel_findings(app.data, None if view in ("all", "verdict") else view)
    for f in findings:
        if f.get("fix"):
            yield (f"fix: {f['title']}", partial(app.open_fix, f), f"{f['code']} · {f['fix']['kind']}: {f['fix']['summary']}")
    for fmt, ext, words in _EXPORTS:
        path = f"{app.export_dir}/{app.export_stem()}.{ext}"
        yield (f"export: report as {words}", partial(app.export, fmt, path), f"writes {path}")
    for item in app.reproducers():
        yield (f"copy: reproducer command ({item.label})", partial(app.copy_text, item), item.text)
    copy = app.copyable()
    if copy is not None:
        yield (f"copy: {copy.label}", partial(app.copy_text, copy), "to the clipboard with OSC 52")
    yield ("image: change the image reference", app.action_image, "re-plans routes and re-probes")
    yield ("explain an error...", app.action_explain,
           "paste a runtime's pull error: what failed where, and whether the current verdict explains it")
    yield ("re-run: this panel", app.action_rerun, "r")
    yield ("re-run: everything", app.action_rerun_all, "R")
    if not app.read_only and app.backups:
        yield ("undo: last fix", app.action_undo, app.backups[-1][0])
    yield ("panel: verdict", partial(app.action_panel, "verdict"), "v")
    for i, p in enumerate(PANELS):
        yield (f"panel: {PANEL_TITLES[p]}", partial(app.action_panel, p), str(i + 1))
    yield ("panel: all findings", partial(app.action_panel, "all"), "0")
    yield ("filter: findings", app.action_filter, "/")
    yield ("help: keys", app.action_help, "? or F1")


class WorkbenchCommands(Provider):
    """Fix, export, copy reproducer, image, re-run, panels."""

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        return list(workbench_commands(self.app))  # type: ignore[arg-type]

    async def discover(self) -> Hits:
        """Everything, before the user types."""
        for name, callback, help_text in self._commands():
            # Names and help quote findings and commands ('host[:port][/path]'): plain text, never markup.
            yield DiscoveryHit(Content(name), callback, help=Content(help_text))  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        """Fuzzy match on the command name."""
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(escape(name)), callback,
                          help=Content(help_text))  # type: ignore[arg-type]
