"""SVG snapshots of every panel at 80x24 and 120x40, the fix dialog and the help screen (recorded data)."""

from __future__ import annotations

from typing import Any

import pytest

from regtui.fixes import Preview
from regtui.model import PANELS
from regtui.options import CheckOptions
from regtui.tui.app import RegtuiApp, make_app
from regtui.tui.demo import IMAGE, demo_report
from regtui.tui.source import RecordedSource

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


class _PreviewOnly:
    """A fix engine that previews a fixed diff (apply is never reached in snapshots)."""

    available = True

    def preview(self, finding: Any, options: CheckOptions, probes: Any = None) -> Preview:
        """A diff of daemon.json."""
        return Preview(kind="edit", diff=('--- /etc/docker/daemon.json\n+++ /etc/docker/daemon.json\n@@ -4,3 +4,3 @@\n'
                                          '   "log-level": "info",\n-  "registry-mirror": ["https://mirror.corp.example"],\n'
                                          '+  "registry-mirrors": ["https://mirror.corp.example"],\n'
                                          '   "max-concurrent-downloads": 3\n'),
                       restart="reload docker", can_apply=True, note="to take effect: reload docker")


def _app() -> RegtuiApp:
    return make_app(CheckOptions(root="/host", images=(IMAGE,)), source=RecordedSource.of(demo_report()),
                    fixes=_PreviewOnly(), export_dir="/nonexistent")


async def _settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("panel", list(PANELS))
def test_panel(snap_compare: Any, panel: str, size: str) -> None:
    """Each panel, filled from the recorded report, at the design size and a wide terminal."""

    async def show(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press(str(PANELS.index(panel) + 1))
        await _settle(pilot)

    assert snap_compare(_app(), terminal_size=SIZES[size], run_before=show)


def test_all_findings(snap_compare: Any) -> None:
    """The all-findings view at 80x24, errors first with the panel named."""

    async def show(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press("0")
        await _settle(pilot)

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=show)


@pytest.mark.parametrize("size", list(SIZES))
def test_fix_dialog(snap_compare: Any, size: str) -> None:
    """The guided fix: evidence and a coloured diff, apply offered."""

    async def show(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press("1", "f")
        await _settle(pilot)

    assert snap_compare(_app(), terminal_size=SIZES[size], run_before=show)


@pytest.mark.parametrize("size", list(SIZES))
def test_help_screen(snap_compare: Any, size: str) -> None:
    """The help screen lists every key."""

    async def show(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press("question_mark")
        await _settle(pilot)

    assert snap_compare(_app(), terminal_size=SIZES[size], run_before=show)
