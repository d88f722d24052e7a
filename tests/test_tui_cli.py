"""The `tui` command: options reach the workbench; bad input fails before textual loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import regtui.tui.app as tui_app
from regtui.cli import main


def test_tui_command_builds_options_and_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`regtui --root R --image REF --read-only` runs the workbench with those options."""
    seen: dict[str, Any] = {}

    def fake_run(options: Any, *, read_only: bool = False, debug: bool = False) -> int:
        seen.update(options=options, read_only=read_only)
        return 0

    monkeypatch.setattr(tui_app, "run", fake_run)
    assert main(["--root", str(tmp_path), "--image", "alpine", "--read-only"]) == 0
    assert seen["read_only"] is True
    assert seen["options"].root == str(tmp_path) and seen["options"].images == ("alpine",)
    assert main(["tui", "--root", str(tmp_path)]) == 0
    assert seen["read_only"] is False


def test_tui_command_rejects_bad_root_and_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing root or an invalid reference is a usage error (exit 2) with one line, no app."""
    assert main(["tui", "--root", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["tui", "--root", str(tmp_path), "--image", "UPPER/Bad:tag tag"]) == 2


def test_tui_crash_exits_with_internal_error_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A workbench that quits on an unhandled exception makes `regtui` exit 2 (internal error), not 0."""

    def crashing_run(self: Any, *args: Any, **kwargs: Any) -> None:
        self._return_code = 1  # what textual sets when it shows an unhandled exception and exits
        return None

    monkeypatch.setattr(tui_app.RegtuiApp, "run", crashing_run)
    assert main(["tui", "--root", str(tmp_path), "--offline"]) == 2
