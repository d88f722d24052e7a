"""The workbench's "explain an error..." dialog: paste, read, compare with the current verdict, check another image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import TextArea

from regtui.options import CheckOptions
from regtui.tui.app import RegtuiApp, make_app
from regtui.tui.commands import workbench_commands
from regtui.tui.demo import IMAGE, demo_pull_frames, demo_report
from regtui.tui.screens.explain import ExplainScreen
from regtui.tui.source import RecordedSource

pytestmark = pytest.mark.anyio

SIZE = (100, 40)
#: containerd's error for the demo's mirror (its certificate is from an unknown authority).
MIRROR_ERROR = ('Failed to pull image "alpine:3.20": failed to pull and unpack image "docker.io/library/alpine:3.20": '
                'failed to resolve reference "docker.io/library/alpine:3.20": failed to do request: Head '
                '"https://mirror.corp.example/v2/library/alpine/manifests/3.20?ns=docker.io": tls: failed to verify '
                'certificate: x509: certificate signed by unknown authority')


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


def _app(tmp_path: Path) -> RegtuiApp:
    source = RecordedSource(lambda o: demo_report(o.images[0] if o.images else IMAGE), pull_frames=demo_pull_frames())
    return make_app(CheckOptions(root="/host", images=(IMAGE,)), source=source, export_dir=str(tmp_path))


async def _settle(pilot: Any) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def _output(app: RegtuiApp) -> str:
    return str(app.screen.query_one("#explain-output").render())


async def test_palette_explains_a_pasted_error_with_the_current_verdict(tmp_path: Path) -> None:
    """The palette's "explain an error..." reads the text and says the current containerd verdict explains it."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        (callback,) = [cb for name, cb, _ in workbench_commands(app) if name == "explain an error..."]
        callback()
        await pilot.pause()
        assert isinstance(app.screen, ExplainScreen)
        app.screen.query_one(TextArea).text = MIRROR_ERROR
        await pilot.press("ctrl+s")
        out = _output(app)
        assert "endpoint:  https://mirror.corp.example/v2" in out and "phase:     tls" in out
        assert "1. tls.unknown-authority" in out
        assert "What regtui finds now (containerd, docker.io/library/alpine:3.20)" in out
        assert "Explains the pasted error: yes" in out
        await pilot.press("escape")
        assert not isinstance(app.screen, ExplainScreen) and app.options.images == (IMAGE,)


async def test_error_about_another_image_offers_to_check_it(tmp_path: Path) -> None:
    """A text about an image the workbench does not check: no verdict claimed; c re-plans with that image."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        app.action_explain()
        await pilot.pause()
        app.screen.query_one(TextArea).text = (
            'Error response from daemon: manifest for registry.corp.example:5000/team/app:9 not found: '
            'manifest unknown: manifest unknown')
        await pilot.press("ctrl+s")
        out = _output(app)
        assert "not registry.corp.example:5000/team/app:9" in out and "Explains the pasted error" not in out
        await pilot.press("c")
        await _settle(pilot)
        assert app.options.images[0] == "registry.corp.example:5000/team/app:9"


async def test_empty_text_asks_for_one(tmp_path: Path) -> None:
    """ctrl+s with nothing pasted says so and keeps the dialog open."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        app.action_explain()
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ExplainScreen) and "paste an error first" in _output(app)
