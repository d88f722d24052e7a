"""Pilot tests: every workbench key, driven as a user would, asserting on state and messages."""

from __future__ import annotations

import html
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import ContentSwitcher, Input

from regtui.fixes import Preview
from regtui.model import PANELS
from regtui.options import CheckOptions
from regtui.report import Report
from regtui.tui.app import RegtuiApp, make_app
from regtui.tui.commands import workbench_commands
from regtui.tui.data import PANEL_TITLES, finding_key
from regtui.tui.demo import IMAGE, SECRETS, demo_pull_frames, demo_report
from regtui.tui.fixing import Applied, EngineFixes
from regtui.tui.keys import FIX_KEYS, MAIN_KEYS
from regtui.tui.screens.fix import FixScreen
from regtui.tui.screens.help import HelpScreen
from regtui.tui.screens.prompts import ExportScreen, ImageScreen
from regtui.tui.source import LiveSource, RecordedSource
from regtui.tui.widgets.base import FindingsTable, Panel
from regtui.tui.widgets.mirrors import MirrorsPanel
from regtui.tui.widgets.pull import PullPanel

pytestmark = pytest.mark.anyio

BUSY_ROOT = Path(__file__).parent / "data" / "busy-root"
SIZE = (80, 24)


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


class FakeFixes:
    """A fix engine that records calls; applied findings disappear from the next report."""

    available = True

    def __init__(self) -> None:
        self.fixed: set[tuple[str, str, str]] = set()
        self.calls: list[str] = []

    def preview(self, finding: Any, options: CheckOptions, probes: Any = None) -> Preview:
        """A small diff."""
        self.calls.append(f"preview {finding.code}")
        return Preview(kind="edit", diff="--- a/etc/docker/daemon.json\n+++ b/etc/docker/daemon.json\n@@ -5 +5 @@\n"
                                         '-  "registry-mirror": [...]\n+  "registry-mirrors": [...]\n',
                       restart="reload docker", can_apply=True)

    def apply(self, finding: Any, options: CheckOptions, probes: Any = None) -> Applied:
        """Mark fixed."""
        self.calls.append(f"apply {finding.code}")
        self.fixed.add((finding.code, finding.subject, finding.runtime or ""))
        return Applied(True, "backed up and written", "backup-1")

    def undo(self, backup_id: str, options: CheckOptions) -> Applied:
        """Unmark."""
        self.calls.append(f"undo {backup_id}")
        self.fixed.clear()
        return Applied(True, "restored", backup_id)


def _source(fixes: FakeFixes | None = None, **kwargs: Any) -> RecordedSource:
    def report_for(options: CheckOptions) -> Report:
        report = demo_report(options.images[0] if options.images else IMAGE)
        if fixes is not None:
            report = replace(report, findings=[f for f in report.findings
                                               if (f.code, f.subject, f.runtime or "") not in fixes.fixed])
        return report

    return RecordedSource(report_for, pull_frames=demo_pull_frames(), **kwargs)


def _app(tmp_path: Path, *, read_only: bool = False, fixes: FakeFixes | None = None,
         source: Any = None) -> RegtuiApp:
    fixes = fixes or FakeFixes()
    return make_app(CheckOptions(root="/host", images=(IMAGE,)), source=source or _source(fixes), fixes=fixes,
                    read_only=read_only, export_dir=str(tmp_path))


def _screen_text(app: RegtuiApp) -> str:
    """What the terminal shows, as plain text (from the SVG screenshot)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


async def _settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_opens_with_seven_titled_panels_and_runs_everything(tmp_path: Path) -> None:
    """The app starts one full run; seven panels in order carry their names; the strip shows host and image."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        panels = list(app.query(Panel))
        assert [p.panel for p in panels] == list(PANELS)
        for p in panels:
            assert PANEL_TITLES[p.panel] in p.border_title
        assert app.source.runs == [(app.options, None)]
        assert app.running == frozenset()
        strip = str(app.query_one("#status").render())
        assert "node-a" in strip and IMAGE in strip and "1E 6W 1i" in strip
        assert "run done" in app.events


async def test_number_keys_switch_panels(tmp_path: Path) -> None:
    """1-7 show the panels in order, 0 shows all findings, and the findings list takes focus."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        switcher = app.query_one(ContentSwitcher)
        for i, panel in enumerate(PANELS):
            await pilot.press(str(i + 1))
            assert switcher.current == f"panel-{panel}"
            assert app.current == panel
        await pilot.press("0")
        assert switcher.current == "panel-all"
        assert isinstance(app.focused, FindingsTable)
        assert len(app.focused.findings) == len(demo_report().findings)


async def test_panels_fill_while_probes_run(tmp_path: Path) -> None:
    """While a run is in flight the panels say so (spinner state), and fill when results arrive."""
    gate = threading.Event()
    app = _app(tmp_path, source=_source(gate=gate))
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(50):
            await pilot.pause(0.02)
            if app.report is not None:
                break
        assert app.running == frozenset(PANELS)
        assert all(p.state == "running" for p in app.query(Panel))
        assert "running" in str(app.query_one("#status").render())
        gate.set()
        await _settle(pilot)
        assert app.running == frozenset()
        assert all(p.state == "done" for p in app.query(Panel))


async def test_r_reruns_current_panel_and_R_everything(tmp_path: Path) -> None:
    """r re-runs the panel on screen; R re-runs every panel."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("2", "r")
        await _settle(pilot)
        assert app.source.runs[-1][1] == frozenset({"mirrors"})
        await pilot.press("R")
        await _settle(pilot)
        assert app.source.runs[-1][1] is None
        assert app.events.count("run done") == 3


async def test_i_changes_image_and_reprobes(tmp_path: Path) -> None:
    """i asks for a reference; enter re-plans with it and every panel re-runs."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("i")
        assert isinstance(app.screen, ImageScreen)
        field = app.screen.query_one(Input)
        field.value = "registry.corp.example:5000/team/app:1.2"
        await pilot.press("enter")
        await _settle(pilot)
        assert app.options.images[0] == "registry.corp.example:5000/team/app:1.2"
        assert app.source.runs[-1] == (app.options, None)
        assert app.data["images"] == ["registry.corp.example:5000/team/app:1.2"]


async def test_invalid_image_is_refused_in_words(tmp_path: Path) -> None:
    """A reference that does not parse keeps the dialog open with the reason; esc keeps the old image."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("i")
        app.screen.query_one(Input).value = "UPPER/Case:bad tag"
        await pilot.press("enter")
        assert isinstance(app.screen, ImageScreen)
        assert "not a valid reference" in str(app.screen.query_one("#image-error").render())
        await pilot.press("escape")
        assert app.options.images == (IMAGE,)
        assert len(app.source.runs) == 1


async def test_slash_filters_findings_and_esc_clears(tmp_path: Path) -> None:
    """/ opens the filter; typing narrows every list; esc clears it."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("0", "slash")
        assert app.query_one("#filter", Input).has_focus
        await pilot.press(*"dns")
        table = app.query_one("#panel-all").findings_table
        assert [f["code"] for f in table.findings] == ["dns.slow"]
        await pilot.press("enter")
        assert isinstance(app.focused, FindingsTable)
        assert app.query_text == "dns"
        await pilot.press("escape")
        assert app.query_text == ""
        assert len(table.findings) == len(demo_report().findings)


async def test_c_copies_finding_and_endpoint_reproducer(tmp_path: Path) -> None:
    """c on a finding copies its text; c on a mirrors endpoint copies the equivalent curl."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("3", "c")
        assert app.clipboard.startswith("[error] tls.unknown-authority")
        await pilot.press("2")
        mirrors = app.query_one(MirrorsPanel)
        table = mirrors.query_one("#mirrors-table")
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("c")
        assert app.clipboard.startswith("curl ") and "mirror.corp.example" in app.clipboard
        assert any(e.startswith("copied curl") for e in app.events)


async def test_e_exports_markdown_and_says_where(tmp_path: Path) -> None:
    """e then m writes the Markdown report into the export directory, redacted, and notifies the path."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("m")
        await _settle(pilot)
        path = tmp_path / "regtui-report-node-a.md"
        assert path.exists()
        text = path.read_text()
        assert text.startswith("# regtui report: node-a")
        assert not any(s in text for s in SECRETS)
        assert f"exported markdown {path}" in app.events
        assert any(str(path) in n.message for n in app._notifications)


async def test_e_then_p_exports_a_prometheus_textfile(tmp_path: Path) -> None:
    """e then p writes the Prometheus textfile (the same writer as --format prometheus), redacted."""
    from prometheus_client.parser import text_string_to_metric_families

    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("e")
        await pilot.press("p")
        await _settle(pilot)
        path = tmp_path / "regtui-report-node-a.prom"
        assert path.exists()
        text = path.read_text()
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"regtui_pull_ok", "regtui_check_timestamp_seconds", "regtui_finding"} <= names
        assert not any(s in text for s in SECRETS)
        assert f"exported prometheus {path}" in app.events


async def test_fix_preview_apply_confirm_recheck_and_undo(tmp_path: Path) -> None:
    """f shows evidence and the diff; a asks; y applies and re-checks (finding gone); u undoes (back)."""
    fixes = FakeFixes()
    app = _app(tmp_path, fixes=fixes)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("1", "f")
        screen = app.screen
        assert isinstance(screen, FixScreen)
        await _settle(pilot)
        target = screen.finding
        assert target["code"] == "config.ignored-key"
        assert "registry-mirrors" in str(screen.query_one("#fix-preview").render())
        await pilot.press("a")
        assert screen.confirming
        assert "y apply" in str(screen.query_one("#fix-status").render())
        await pilot.press("y")
        await _settle(pilot)
        assert fixes.calls[-1] == "apply config.ignored-key"
        assert app.source.runs[-1][1] == frozenset({"config"})
        assert f"recheck {target['code']} gone" in app.events
        assert screen.outcome.startswith("fixed")
        assert finding_key(target) not in {finding_key(f) for f in app.data["findings"]}
        await pilot.press("u")
        await _settle(pilot)
        assert fixes.calls[-1] == "undo backup-1"
        assert finding_key(target) in {finding_key(f) for f in app.data["findings"]}
        await pilot.press("escape")
        assert not isinstance(app.screen, FixScreen)


class StubbornFixes(FakeFixes):
    """Applies without removing the finding; the preview's restart is the one given."""

    def __init__(self, restart: str) -> None:
        super().__init__()
        self.restart = restart

    def preview(self, finding: Any, options: CheckOptions, probes: Any = None) -> Preview:
        """The diff of FakeFixes with this restart."""
        return replace(super().preview(finding, options, probes), restart=self.restart)

    def apply(self, finding: Any, options: CheckOptions, probes: Any = None) -> Applied:
        """Written, but the finding stays."""
        self.calls.append(f"apply {finding.code}")
        return Applied(True, "backed up and written", "backup-1")


@pytest.mark.parametrize(("restart", "words"), [
    ("none", "reads these files on the next pull; no restart needed"),
    ("reload docker", "it takes effect after: reload docker"),
])
async def test_still_there_mentions_a_restart_only_when_the_fix_needs_one(tmp_path: Path, restart: str,
                                                                         words: str) -> None:
    """A finding still there after the re-check: a restart is named only for files read at start-up."""
    fixes = StubbornFixes(restart)
    app = _app(tmp_path, fixes=fixes)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("1", "f")
        screen = app.screen
        assert isinstance(screen, FixScreen)
        await _settle(pilot)
        await pilot.press("a", "y")
        await _settle(pilot)
        assert screen.outcome.startswith("still there after the re-check"), screen.outcome
        assert words in screen.outcome and ("restart may be needed" not in screen.outcome)


async def test_enter_opens_fix_and_n_cancels_apply(tmp_path: Path) -> None:
    """enter on a finding opens the dialog; n after a leaves the file alone."""
    fixes = FakeFixes()
    app = _app(tmp_path, fixes=fixes)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("3", "enter")
        assert isinstance(app.screen, FixScreen)
        await _settle(pilot)
        await pilot.press("a", "n")
        assert not app.screen.confirming
        assert not any(c.startswith("apply") for c in fixes.calls)


async def test_read_only_hides_apply_and_undo(tmp_path: Path) -> None:
    """With --read-only the dialog has no apply binding, a and y do nothing, undo is hidden."""
    fixes = FakeFixes()
    app = _app(tmp_path, read_only=True, fixes=fixes)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        assert app.check_action("undo", ()) is False
        await pilot.press("1", "f")
        await _settle(pilot)
        screen = app.screen
        assert isinstance(screen, FixScreen)
        assert screen.check_action("apply", ()) is False
        assert "apply" not in str(screen.query_one("#fix-dialog").border_subtitle)
        await pilot.press("a", "y")
        await _settle(pilot)
        assert not any(c.startswith("apply") for c in fixes.calls)
        active = {b.binding.action for b in app.active_bindings.values()}
        assert "apply" not in active


async def test_fix_engine_missing_is_said_in_words(tmp_path: Path) -> None:
    """Without a fix engine the preview shows the finding's own fix and says apply is not built."""
    engine = EngineFixes()
    engine._mod, engine.available = None, False
    app = make_app(CheckOptions(root="/host", images=(IMAGE,)), source=_source(), fixes=engine,
                   export_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("1", "f")
        await _settle(pilot)
        preview = str(app.screen.query_one("#fix-preview").render())
        assert "rename registry-mirror to registry-mirrors" in preview
        assert "not built in this version" in preview
        assert app.screen.check_action("apply", ()) is None


async def test_help_lists_every_key(tmp_path: Path) -> None:
    """? and F1 open help naming every key of the key table; esc closes it."""
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            assert isinstance(app.screen, HelpScreen)
            text = _screen_text(app)
            for keys, _ in MAIN_KEYS + FIX_KEYS:
                assert keys in text
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)


async def test_palette_offers_context_commands(tmp_path: Path) -> None:
    """ctrl+p opens the palette; commands include fix for this panel, export as Markdown, copy reproducer."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("3")
        names = [name for name, _, _ in workbench_commands(app)]
        assert any(n.startswith("fix: mirror.corp.example presents") for n in names)
        assert not any(n.startswith("fix: the local clock") for n in names)
        assert "export: report as Markdown" in names
        assert any(n.startswith("copy: reproducer command (curl") for n in names)
        await pilot.press("ctrl+p")
        assert app.screen.__class__.__name__ == "CommandPalette"
        await pilot.press(*"export: report as json", "enter")
        await _settle(pilot)
        assert (tmp_path / "regtui-report-node-a.json").exists()


async def test_pull_panel_shows_progress_then_waterfall(tmp_path: Path) -> None:
    """Progress bars with throughput while the pull runs, then one waterfall row per layer."""
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        pull = app.query_one(PullPanel)
        pull.show_progress(demo_pull_frames()[1], 1.0)
        progress = str(pull.query_one("#pull-progress").render())
        assert progress.count("50%") == 3 and "/s" in progress
        await pilot.press("7")
        for _ in range(50):  # the panel renders when shown; the waterfall's rows need its laid-out width
            await pilot.pause(0.02)
            waterfall = str(pull.query_one("#pull-waterfall").render())
            if "registry-1" in waterfall:
                break
        assert waterfall.count("registry-1") == 3
        assert "░░ dns" in waterfall and "transfer" in waterfall


async def test_no_secret_reaches_the_screen_or_clipboard(tmp_path: Path) -> None:
    """The proxy password and registry token in the recorded results never show in any panel or copy."""
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        for i in range(len(PANELS)):
            await pilot.press(str(i + 1))
            await pilot.pause()
            for node in app.query("#panel-config PlainTree, #panel-config Tree").results():
                node.root.expand_all()
            await pilot.pause()
            svg = app.export_screenshot()
            assert not any(s in svg for s in SECRETS), PANELS[i]
            await pilot.press("c")
            assert not any(s in app.clipboard for s in SECRETS)
        await pilot.press("4", "f")
        await _settle(pilot)
        assert not any(s in app.export_screenshot() for s in SECRETS)


async def test_run_failure_is_reported_not_fatal(tmp_path: Path) -> None:
    """A source that raises is reported as an internal error; the app stays up."""

    class Broken:
        live = False

        def run(self, *args: Any) -> None:
            raise RuntimeError("boom")

    app = _app(tmp_path, source=Broken())
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        assert "run failed: RuntimeError: boom" in app.events
        assert app.running == frozenset()
        assert app.is_running


async def test_q_quits(tmp_path: Path) -> None:
    """q ends the app."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_live_source_offline_on_a_fake_root(tmp_path: Path) -> None:
    """The real engine on the busy test root, offline: config fills, probe panels say offline."""
    options = CheckOptions(root=str(BUSY_ROOT), images=("alpine",), offline=True)
    app = make_app(options, source=LiveSource(), fixes=FakeFixes(), export_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        assert app.data["mode"] == "offline"
        assert {r["name"] for r in app.data["runtimes"]} >= {"containerd"}
        states = {p.panel: p.state for p in app.query(Panel)}
        assert states["config"] == "done"
        assert all(states[p] == "offline" for p in ("mirrors", "certs", "proxy", "dns", "clock", "pull"))
        await pilot.press("1")  # the app opens on the verdict; a panel is rendered when shown
        await pilot.pause()
        assert app.query_one("#panel-config").findings_table.findings


async def test_no_color_renders_monochrome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR set: the app renders without colour (a monochrome line filter), and still works."""
    from textual.filter import Monochrome

    monkeypatch.setenv("NO_COLOR", "1")
    app = _app(tmp_path)
    assert app.no_color and any(isinstance(f, Monochrome) for f in app._filters)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        assert "Config" in _screen_text(app)


async def test_dns_panel_marks_the_root_answer_as_comparison(tmp_path: Path) -> None:
    """With --dns-server, the DNS panel labels the root's own resolver's row "comparison, not used", not the used one."""
    used = {"name": "registry.lab.test", "addresses": [], "source": "dns", "server": "127.0.0.1:5353",
            "resolver": "--dns-server", "elapsed_ms": 1000.0, "error": "timeout", "used": True}
    system = {**used, "addresses": ["127.0.0.1"], "source": "hosts", "server": "/etc/hosts", "resolver": "system",
              "elapsed_ms": 0.1, "error": None, "used": False}

    def report_for(options: CheckOptions) -> Report:
        report = demo_report(IMAGE)
        probes = {**report.probes, "dns": {"data": {"used": "--dns-server", "hosts": [
            {"host": "registry.lab.test", "used": "--dns-server", "results": {"--dns-server": used, "system": system}}]},
            "elapsed_ms": 1000.0, "error": None}}
        return replace(report, probes=probes)

    app = _app(tmp_path, source=RecordedSource(report_for, pull_frames=demo_pull_frames()))
    async with app.run_test(size=(140, 40)) as pilot:
        await _settle(pilot)
        await pilot.press(str(PANELS.index("dns") + 1))
        await _settle(pilot)
        table = app.query_one("#dns-table")
        rows = {str(table.get_row_at(i)[2]): str(table.get_row_at(i)[1]) for i in range(table.row_count)}
    rows.pop("-", None)  # route hosts not looked up
    assert rows == {"127.0.0.1:5353": "--dns-server", "/etc/hosts": "system (comparison, not used)"}


async def test_palette_shows_findings_whose_text_has_square_brackets(tmp_path: Path) -> None:
    """ctrl+p on the busy root lists 'host[:port][/path]' findings as text instead of crashing on markup."""
    options = CheckOptions(root=str(BUSY_ROOT), images=("alpine",), offline=True)
    app = make_app(options, source=LiveSource(), fixes=FakeFixes(), export_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        await pilot.press("0")
        assert any("[/path]" in name for name, _, _ in workbench_commands(app))
        await pilot.press("ctrl+p")
        await _settle(pilot)
        await pilot.press(*"mirror must")
        await _settle(pilot)
        assert app.screen.__class__.__name__ == "CommandPalette"
        assert "host[:port][/path]" in _screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running
