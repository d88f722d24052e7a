"""The core never imports textual or rich; the headless check does not pay for them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import regtui

PACKAGE = Path(regtui.__file__).parent


def _core_modules() -> list[str]:
    mods = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if "tui" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        mods.append(".".join(parts))
    return mods


def test_core_modules_do_not_import_textual() -> None:
    """Importing every core module (all of regtui but regtui.tui) loads neither textual nor rich."""
    mods = _core_modules()
    assert "regtui.engine" in mods and "regtui.cli" in mods
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_headless_check_does_not_import_textual(tmp_path: Path) -> None:
    """A full `regtui check --offline` run leaves textual and rich unimported."""
    code = (
        "import sys\n"
        "from regtui.cli import main\n"
        f"rc = main(['check', '--offline', '--root', {str(tmp_path)!r}, '--image', 'alpine', '--runtime', 'all', '--format', 'json'])\n"
        "bad = sorted(m for m, mod in sys.modules.items() if mod is not None and m.split('.')[0] in ('textual', 'rich', 'httpx'))\n"
        "sys.stderr.write('LOADED:' + ','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "LOADED:" in out.stderr, out.stderr
    assert out.stderr.split("LOADED:")[1].strip() == ""
