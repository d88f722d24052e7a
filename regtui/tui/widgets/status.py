"""Status strip: host, root, image, runtime, finding counts and what is still running."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.widgets import Static

from regtui.tui.data import counts
from regtui.tui.widgets.base import spinner

__all__ = ["StatusStrip"]


class StatusStrip(Static):
    """One line; long values are cut at the right edge on narrow terminals."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"status--key", "status--error", "status--warning", "status--info",
                                             "status--busy"}
    DEFAULT_CSS = """
    StatusStrip > .status--key { color: $text-muted; }
    StatusStrip > .status--error { color: $error; text-style: bold; }
    StatusStrip > .status--warning { color: $warning; text-style: bold; }
    StatusStrip > .status--info { color: $primary; }
    StatusStrip > .status--busy { color: $accent; }
    """

    def show(self, data: dict[str, Any], running: frozenset[str], frame: int, read_only: bool, runtime: str) -> None:
        """Render the strip from the report and the running panels."""
        st = lambda n: self.get_component_rich_style(f"status--{n}", partial=True)  # noqa: E731
        c = counts(data.get("findings", []))
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f"{c['error']}E", style=st("error") if c["error"] else st("key"))
        out.append(" ")
        out.append(f"{c['warning']}W", style=st("warning") if c["warning"] else st("key"))
        out.append(" ")
        out.append(f"{c['info']}i", style=st("info"))
        if running:
            out.append(f" {spinner(frame)} {len(running)} running", style=st("busy"))
        images = data.get("images") or []
        runtimes = list(dict.fromkeys(r["name"] for r in data.get("runtimes", [])))
        host = data.get("host", {})
        image = images[0] + (f" +{len(images) - 1}" if len(images) > 1 else "") if images else "no image (i)"
        for value in (image, runtime or ", ".join(runtimes) or "no runtime",
                      f"{host.get('hostname') or '?'} {host.get('root') or '/'}"):
            out.append(" │ ", style=st("key"))
            out.append(str(value))
        if data.get("mode") == "offline":
            out.append(" │ offline", style=st("warning"))
        if read_only:
            out.append(" │ read-only", style=st("key"))
        self.update(out)
