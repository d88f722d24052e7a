"""The workbench: seven live panels over the engine, guided fixes, a live per-layer test pull.

``make_app(options, ...)`` builds the app (tests call it with a recorded source);
``run(args)`` is what ``regtui tui`` calls. The app never diagnoses anything itself: a
:class:`~regtui.tui.source.DataSource` runs the engine in a thread worker and posts reports,
and every widget renders the redacted ``Report.to_dict()``.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import replace
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import ContentSwitcher, Footer, Input, Tab, Tabs
from textual.worker import get_current_worker

from regtui import redact
from regtui.model import PANELS
from regtui.options import CheckOptions
from regtui.report import Report
from regtui.tui.commands import WorkbenchCommands
from regtui.tui.data import PANEL_TITLES, TAB_TITLES, Copyable, counts, finding_key, finding_reproducers
from regtui.tui.fixing import Applied, EngineFixes, FixBackend
from regtui.tui.messages import Exported, FixFinished, PullProgressed, ReportUpdated, RunFailed
from regtui.tui.screens.explain import ExplainScreen
from regtui.tui.screens.fix import FixScreen
from regtui.tui.screens.help import HelpScreen
from regtui.tui.screens.prompts import ExportScreen, ImageScreen
from regtui.tui.source import Cancelled, DataSource, LiveSource
from regtui.tui.widgets.base import FindingsTable, Panel
from regtui.tui.widgets.certs import CertsPanel
from regtui.tui.widgets.clock import ClockPanel
from regtui.tui.widgets.config import ConfigPanel
from regtui.tui.widgets.dns import DnsPanel
from regtui.tui.widgets.findings import AllFindings
from regtui.tui.widgets.mirrors import MirrorsPanel
from regtui.tui.widgets.proxy import ProxyPanel
from regtui.tui.widgets.pull import PullPanel
from regtui.tui.widgets.status import StatusStrip
from regtui.tui.widgets.verdict import VerdictPanel

__all__ = ["RegtuiApp", "make_app", "run"]

_PANEL_CLASSES: tuple[type[Panel], ...] = (ConfigPanel, MirrorsPanel, CertsPanel, ProxyPanel, DnsPanel, ClockPanel,
                                           PullPanel)
_TICK_S = 0.1


class RegtuiApp(App[int]):
    """The verdicts first (v), seven panels (1-7), all findings (0), guided fixes, palette, help."""

    CSS_PATH = "app.tcss"
    TITLE = "regtui"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("v", "panel('verdict')", "verdict", show=False),
        *(Binding(str(i + 1), f"panel('{p}')", PANEL_TITLES[p], show=False) for i, p in enumerate(PANELS)),
        Binding("0", "panel('all')", "all findings", show=False),
        Binding("f", "fix", "fix"),
        Binding("r", "rerun", "re-run"),
        Binding("R", "rerun_all", "re-run all", key_display="R", show=False),
        Binding("i", "image", "image", show=False),
        Binding("slash", "filter", "filter", key_display="/"),
        Binding("c", "copy", "copy"),
        Binding("e", "export", "export", show=False),
        Binding("u", "undo", "undo", show=False),
        Binding("x", "cancel", "cancel"),
        Binding("escape", "back", "back", show=False),
        # Help and quit come last and the rest is kept short, so both stay visible at 80 columns.
        Binding("question_mark,f1", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
        # ctrl+c quits (after cancelling what runs), as in other terminal tools, even from the filter field.
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(self, options: CheckOptions, *, source: DataSource | None = None, fixes: FixBackend | None = None,
                 read_only: bool = False, export_dir: str | None = None) -> None:
        super().__init__()
        self.options = options
        self.source: DataSource = source if source is not None else LiveSource()
        self.fixes: FixBackend = fixes if fixes is not None else EngineFixes()
        self.read_only = read_only
        self.export_dir = export_dir or os.getcwd()
        self.report: Report | None = None
        self.data: dict[str, Any] = {"findings": [], "host": {"root": options.root}, "images": list(options.images)}
        self.running: frozenset[str] = frozenset(PANELS)
        self.cancelled: frozenset[str] = frozenset()
        """Panels whose last run was cancelled before their results came."""
        self._dirty: set[str] = set()
        """Views not on screen whose content is stale (rendered when shown)."""
        self.query_text = ""
        self.current = "verdict"
        self.frame = 0
        self.backups: list[tuple[str, dict[str, Any]]] = []
        """Applied fixes, newest last: (backup id, finding)."""
        self.events: list[str] = []
        """What happened, in words (runs, fixes, exports): tests assert on it."""
        self._generation = 0
        self._recheck: dict[str, Any] | None = None
        self._fix_screen: FixScreen | None = None

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Status strip, panel tabs, the panels, filter field, footer."""
        yield StatusStrip(id="status")
        yield Tabs(Tab("v Verdict", id="tab-verdict"),
                   *(Tab(f"{i + 1} {TAB_TITLES[p]}", id=f"tab-{p}") for i, p in enumerate(PANELS)),
                   Tab("0 All", id="tab-all"), id="tabs")
        with ContentSwitcher(initial="panel-verdict", id="panels"):
            yield VerdictPanel()
            for cls in _PANEL_CLASSES:
                yield cls()
            yield AllFindings()
        yield Input(placeholder="filter findings: words match code, severity, subject, title (enter keep, esc clear)",
                    id="filter")
        yield Footer()

    def on_mount(self) -> None:
        """Start every check at once; the spinner ticks while something runs."""
        self.query_one("#filter", Input).display = False
        self._render_all()
        self.set_interval(_TICK_S, self._tick)
        self._start(None)
        self.call_after_refresh(self._focus_findings)

    # -- runs --------------------------------------------------------------------------------

    def _start(self, panels: frozenset[str] | None) -> None:
        if self.running and self._generation:
            self._cancel_source()  # a superseded run stops now instead of finishing its probes
        self._generation += 1
        self.running = frozenset(PANELS) if panels is None else frozenset(panels) | {"config"}
        self.cancelled = frozenset()
        self.refresh_bindings()  # x cancel shows while something runs
        self.events.append(f"run {'all' if panels is None else ','.join(sorted(panels))}")
        self._render_all()
        self._run(self.options, panels, self._generation)

    @work(thread=True, exclusive=True, group="run")
    def _run(self, options: CheckOptions, panels: frozenset[str] | None, generation: int) -> None:
        """Run the source (engine: file reads, probes, pull) off the UI thread; post what arrives."""
        worker = get_current_worker()

        def cancelled() -> bool:
            return worker.is_cancelled or generation != self._generation

        try:
            self.source.run(options, panels,
                            lambda update: self.post_message(ReportUpdated(generation, update)),
                            lambda layers: self.post_message(PullProgressed(generation, layers)),
                            cancelled)
        except Cancelled:
            return
        except Exception as exc:  # a bug in regtui: shown in words, the workbench stays up
            self.post_message(RunFailed(generation, redact.text(f"{type(exc).__name__}: {exc}")))

    def on_report_updated(self, message: ReportUpdated) -> None:
        """A fresh report: every panel re-renders from its redacted form."""
        if message.generation != self._generation:
            return
        update = message.update
        self.report = update.report
        self.data = update.report.to_dict()
        self.running = update.running
        self.cancelled = update.cancelled
        self._render_all()
        if update.done:
            self.refresh_bindings()
            if update.cancelled:
                self.events.append(f"run cancelled {','.join(sorted(update.cancelled))}")
            self.events.append("run done")
            self._finish_recheck()

    def on_pull_progressed(self, message: PullProgressed) -> None:
        """Live per-layer progress bars."""
        if message.generation == self._generation:
            self.query_one(PullPanel).show_progress(message.layers, time.monotonic())

    def on_run_failed(self, message: RunFailed) -> None:
        """Say what broke; keep what was shown."""
        if message.generation != self._generation:
            return
        self.running = frozenset()
        self.refresh_bindings()
        self.events.append(f"run failed: {message.error}")
        self._render_all()
        self.notify(f"internal error: {message.error}", severity="error", timeout=10, markup=False)
        self._finish_recheck()

    def _render_all(self) -> None:
        """Re-render the view on screen and every tab's badge; other views wait until shown."""
        for view in [self.query_one(VerdictPanel), *self.query(Panel), self.query_one(AllFindings)]:
            name = view.id.removeprefix("panel-")
            if name == self.current:
                self._render_view(view)
            else:
                self._dirty.add(name)
                if isinstance(view, Panel):
                    view.set_state(self.data, name in self.running, name in self.cancelled)
        self._render_badges()
        self._render_status()

    def _render_view(self, view: Any) -> None:
        name = view.id.removeprefix("panel-")
        self._dirty.discard(name)
        if isinstance(view, Panel):
            view.show(self.data, name in self.running, self.query_text, self.frame, cancelled=name in self.cancelled)
        elif isinstance(view, VerdictPanel):
            view.show(self.data, bool(self.running), self.query_text, self.frame)
        else:
            view.show(self.data, bool(self.running), self.query_text)

    def _render_badges(self) -> None:
        """Each tab carries its panel's error and warning counts (the filter does not change them)."""
        findings = self.data.get("findings", [])
        # The All tab carries none: the status strip has the totals, and 80 columns fit eight tabs.
        for i, name in enumerate(PANELS):
            c = counts(f for f in findings if f.get("panel") == name)
            # Constant words and numbers only: safe as markup (which gives theme colours).
            label = f"{i + 1} {TAB_TITLES[name]}"
            if c["error"]:
                label += f" [bold $text-error]{c['error']}E[/]"
            if c["warning"]:
                label += f" [$text-warning]{c['warning']}W[/]"
            if name in self.cancelled:
                label += " [$text-muted]×[/]"
            tab = self.query_one(f"#tab-{name}", Tab)
            if tab.label.plain != Content.from_markup(label).plain:
                tab.label = label

    def _render_status(self) -> None:
        runtime = ""
        if self.report is not None and self.data.get("pull"):
            runtime = f"pull via {self.data['pull'].get('runtime', '?')}"
        self.query_one(StatusStrip).show(self.data, self.running, self.frame, self.read_only, runtime)

    def _tick(self) -> None:
        if not self.running:
            return
        if self.animation_level != "none":
            self.frame += 1
        view = self.current_view()
        if isinstance(view, Panel) and view.panel in self.running:
            view.tick(self.frame)
        elif isinstance(view, VerdictPanel):
            view.tick(self.frame)
        self._render_status()

    # -- navigation --------------------------------------------------------------------------

    def action_panel(self, name: str) -> None:
        """Show the verdicts (v), a panel (1-7) or all findings (0), its most severe finding highlighted."""
        self._show_view(name)
        self.query_one(Tabs).active = f"tab-{name}"

    def _show_view(self, name: str) -> None:
        """Switch now (not when the tab's message arrives), so the next key acts on this view."""
        if name == self.current and self.query_one(ContentSwitcher).current == f"panel-{name}":
            return
        self.current = name
        view = self.current_view()
        # Filled from the latest report before it is shown (views off screen are not rendered on updates).
        self._render_view(view)
        self.query_one(ContentSwitcher).current = f"panel-{name}"
        view.findings_table.highlight_first()
        self._focus_findings()

    @on(Tabs.TabActivated, "#tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        self._show_view((event.tab.id or "tab-config").removeprefix("tab-"))

    def _focus_findings(self) -> None:
        self.current_view().findings_table.focus()

    def current_view(self) -> Any:
        """The panel (or all-findings view) on screen."""
        return self.query_one(f"#panel-{self.current}")

    def selected_finding(self) -> dict[str, Any] | None:
        """The finding under the cursor of the findings list of the view on screen."""
        return self.current_view().findings_table.selected

    def finding_object(self, f: dict[str, Any]) -> Any:
        """The core :class:`~regtui.model.Finding` behind a redacted finding dict."""
        if self.report is None:
            return None
        key = finding_key(f)
        return next((x for x in self.report.findings if (x.code, x.subject, x.runtime or "") == key), None)

    # -- actions -----------------------------------------------------------------------------

    def action_rerun(self) -> None:
        """Re-run the current panel (configuration is always re-read: it is cheap and fixes change it)."""
        if self.running - {"config"}:
            self.notify("still running; R restarts everything", timeout=3)
            return
        panels = frozenset(PANELS) if self.current in ("all", "verdict") else frozenset({self.current})
        self._start(panels)

    def action_rerun_all(self) -> None:
        """Re-run everything, cancelling what runs."""
        self._start(None)

    def _cancel_source(self) -> None:
        cancel = getattr(self.source, "cancel", None)
        if cancel is not None:
            cancel()

    def action_cancel(self) -> None:
        """Cancel the running probes and test pull; what arrived stays on screen."""
        if not self.running:
            self.notify("nothing is running", timeout=3)
            return
        self.events.append("cancel")
        self._cancel_source()
        self.notify("cancelled: r re-runs this panel, R everything", timeout=4)

    async def action_quit(self) -> None:
        """Quit at once: cancel the running probes first so their connections close."""
        self.events.append("quit")
        if self.running:
            self._cancel_source()
        self.exit(0)

    def action_image(self) -> None:
        """Ask for another image reference; re-plan and re-probe with it."""
        images = self.options.images
        self.push_screen(ImageScreen(images[0] if images else ""), self._image_chosen)

    def action_explain(self) -> None:
        """Ask for a runtime's error text; show what failed where and whether the current verdict explains it."""
        self.push_screen(ExplainScreen(lambda: self.data, self.options.runtime), self._image_chosen)

    def _image_chosen(self, ref: str | None) -> None:
        if not ref or (self.options.images and self.options.images[0] == ref):
            return
        self.options = replace(self.options, images=(ref, *self.options.images[1:]))
        self.events.append(f"image {ref}")
        self.notify(f"image: {ref}; re-planning routes and re-probing", timeout=3, markup=False)
        self._start(None)

    def action_filter(self) -> None:
        """Show the filter field."""
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value.strip()
        self._render_all()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.input.display = bool(self.query_text)
        self._focus_findings()

    def action_back(self) -> None:
        """esc: leave the filter field, then clear the filter, then cancel what runs."""
        field = self.query_one("#filter", Input)
        if field.has_focus or self.query_text:
            field.value = ""
            self.query_text = ""
            field.display = False
            self._render_all()
            self._focus_findings()
        elif self.running:
            self.action_cancel()

    def copyable(self) -> Copyable | None:
        """What ``c`` copies: the focused panel body's item, else the selected finding."""
        focused = self.focused
        view = self.current_view()
        if isinstance(focused, FindingsTable):
            return focused.copyable()
        item = view.copyable()
        return item or view.findings_table.copyable()

    def action_copy(self) -> None:
        """Copy the selected item with OSC 52 (works over SSH)."""
        item = self.copyable()
        if item is None:
            self.notify("nothing selected to copy", severity="warning", timeout=3)
            return
        self.copy_text(item)

    def copy_text(self, item: Copyable) -> None:
        """Copy and say what."""
        self.copy_to_clipboard(item.text)
        self.events.append(f"copied {item.label}")
        self.notify(f"copied {item.label} (OSC 52)", timeout=3, markup=False)

    def reproducers(self) -> list[Copyable]:
        """Reproducer commands for the selection (endpoint or finding)."""
        out: list[Copyable] = []
        view = self.current_view()
        item = view.copyable() if not isinstance(self.focused, FindingsTable) else None
        if item is not None:
            out.append(item)
        f = self.selected_finding()
        if f is not None:
            out += [r for r in finding_reproducers(self.data, f) if r not in out]
        return out

    def action_fix(self) -> None:
        """Open the guided fix for the selected finding."""
        f = self.selected_finding()
        if f is None:
            self.notify("no finding selected", severity="warning", timeout=3)
            return
        self.open_fix(f)

    @on(FindingsTable.Chosen)
    def _finding_chosen(self, event: FindingsTable.Chosen) -> None:
        self.open_fix(event.finding)

    def open_fix(self, f: dict[str, Any]) -> None:
        """Push the fix dialog for ``f``."""
        screen = FixScreen(f, self.finding_object(f), self.fixes, self.options, self.read_only)
        self._fix_screen = screen
        self.events.append(f"fix dialog {f['code']}")
        self.push_screen(screen, lambda _: setattr(self, "_fix_screen", None))

    @on(FixScreen.ApplyRequested)
    def _apply_requested(self, event: FixScreen.ApplyRequested) -> None:
        if self.read_only:
            return
        self._apply(event.finding, self.finding_object(event.finding), self.report.probes if self.report else None)

    @work(thread=True, exclusive=True, group="fix")
    def _apply(self, f: dict[str, Any], obj: Any, probes: Any) -> None:
        """Back up and write through the fix engine (a thread: it touches files)."""
        try:
            applied = self.fixes.apply(obj, self.options, probes) if obj is not None else Applied(False, "finding is gone")
        except Exception as exc:
            applied = Applied(False, redact.text(f"{type(exc).__name__}: {exc}"))
        self.post_message(FixFinished("apply", f, applied))

    def action_undo(self) -> None:
        """Undo the last applied fix."""
        if self.read_only:
            self.notify("read-only: nothing was applied", timeout=3)
            return
        if not self.backups:
            self.notify("no fix applied in this session", severity="warning", timeout=3)
            return
        backup_id, f = self.backups[-1]
        self._undo(backup_id, f)

    @work(thread=True, exclusive=True, group="fix")
    def _undo(self, backup_id: str, f: dict[str, Any]) -> None:
        """Restore through the fix engine."""
        try:
            applied = self.fixes.undo(backup_id, self.options)
        except Exception as exc:
            applied = Applied(False, redact.text(f"{type(exc).__name__}: {exc}"))
        self.post_message(FixFinished("undo", f, applied))

    def on_fix_finished(self, message: FixFinished) -> None:
        """After apply or undo: say so, then re-check the finding's panel."""
        a = message.applied
        self.events.append(f"{message.action} {'ok' if a.ok else 'failed'} {message.finding['code']}")
        if not a.ok:
            self.notify(f"{message.action} failed: {a.message}", severity="error", timeout=8, markup=False)
            if self._fix_screen is not None:
                self._fix_screen.show_outcome(a, None)
            return
        if message.action == "apply" and a.backup_id:
            self.backups.append((a.backup_id, message.finding))
        elif message.action == "undo" and self.backups:
            self.backups.pop()
        self.notify(f"{message.action}: {a.message}; re-checking {PANEL_TITLES.get(message.finding['panel'], '')}",
                    timeout=4, markup=False)
        if self._fix_screen is not None:
            self._fix_screen.show_outcome(a, None)
        self._recheck = {"finding": message.finding, "action": message.action}
        self._start(frozenset({message.finding["panel"]}))

    def _finish_recheck(self) -> None:
        if self._recheck is None:
            return
        f, action = self._recheck["finding"], self._recheck["action"]
        self._recheck = None
        present = any(finding_key(x) == finding_key(f) for x in self.data.get("findings", []))
        if action == "apply":
            words = "gone after the re-check" if not present else "still present after the re-check"
            self.events.append(f"recheck {f['code']} {'gone' if not present else 'present'}")
            self.notify(f"{f['code']}: {words}", severity="information" if not present else "warning", timeout=6)
            if self._fix_screen is not None:
                self._fix_screen.show_outcome(None, not present)
        else:
            self.events.append(f"recheck after undo {f['code']} {'back' if present else 'absent'}")
            self.notify(f"undone: {f['code']} is {'back' if present else 'not back'}", timeout=6)

    def action_export(self) -> None:
        """Ask for a format (and directory), then write the report."""
        if self.report is None:
            self.notify("nothing to export yet", severity="warning", timeout=3)
            return
        self.push_screen(ExportScreen(self.export_dir, self.export_stem()), self._export_chosen)

    def export_stem(self) -> str:
        """File name without extension: ``regtui-report-<host>``."""
        host = re.sub(r"[^A-Za-z0-9._-]+", "_", str(self.data.get("host", {}).get("hostname") or "host"))
        return f"regtui-report-{host}"

    def _export_chosen(self, choice: tuple[str, str] | None) -> None:
        if choice:
            self.export(*choice)

    def export(self, fmt: str, path: str) -> None:
        """Write the report as ``fmt`` to ``path`` (in a thread)."""
        self._export(fmt, path, self.report)

    @work(thread=True, group="export")
    def _export(self, fmt: str, path: str, report: Report | None) -> None:
        """Render through the core writers (redacted) and write atomically."""
        from regtui.report import render

        path = os.path.abspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            assert report is not None
            text = render(report, fmt)
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except Exception as exc:
            # A half-written temporary file is not left beside the report.
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self.post_message(Exported(path, fmt, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(Exported(path, fmt))

    def on_exported(self, message: Exported) -> None:
        """Say where the report went."""
        if message.error:
            self.events.append(f"export failed {message.error}")
            self.notify(f"export failed: {message.error}", severity="error", timeout=8, markup=False)
        else:
            self.events.append(f"exported {message.fmt} {message.path}")
            self.notify(f"wrote {message.fmt} report to {message.path}", timeout=8, markup=False)

    def action_help(self) -> None:
        """Every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Undo is hidden in read-only mode; cancel is offered while something runs."""
        if action == "undo" and self.read_only:
            return False
        if action == "cancel":
            return bool(self.running)
        return True


def make_app(options: CheckOptions, *, source: DataSource | None = None, fixes: FixBackend | None = None,
             read_only: bool = False, export_dir: str | None = None, debug: bool = False) -> RegtuiApp:
    """Build the workbench (tests pass a recorded source and a fake fix engine)."""
    return RegtuiApp(options, source=source if source is not None else LiveSource(debug=debug), fixes=fixes,
                     read_only=read_only, export_dir=export_dir)


def run(options: CheckOptions, *, read_only: bool = False, debug: bool = False) -> int:
    """Run the workbench in this terminal; returns the exit status."""
    app = make_app(options, read_only=read_only, debug=debug)
    result = app.run()
    if result is None and app.return_code:  # textual printed the crash and quit: an internal error
        return 2
    return int(result or 0)
