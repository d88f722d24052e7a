"""Pull panel: per-layer progress while the test pull runs, then a waterfall of its phases per layer."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from regtui.tui.data import Copyable, human_bytes, short_digest
from regtui.tui.source import PullLayer
from regtui.tui.widgets.base import Panel

__all__ = ["PullPanel", "Waterfall", "PHASES", "segments"]

#: Phases of one layer's request, in order, with the glyph that tells them apart without colour.
PHASES = (("dns", "░"), ("connect", "▒"), ("tls", "▓"), ("ttfb", "▄"), ("transfer", "█"))


def segments(layer: dict[str, Any], scale: float) -> list[tuple[str, int, int]]:
    """(phase, first column, width) of each non-empty phase of ``layer`` on an axis of ``scale`` columns/ms."""
    t = layer.get("timings_ms") or {}
    at = float(layer.get("started_ms") or 0.0)
    out = []
    for phase, _ in PHASES:
        ms = t.get(phase)
        if not ms:
            continue
        start, end = round(at * scale), round((at + float(ms)) * scale)
        out.append((phase, start, max(1, end - start)))
        at += float(ms)
    return out


class Waterfall(Widget):
    """One row per layer: dns/connect/tls/ttfb/transfer as segments on a shared time axis."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"waterfall--{p}" for p, _ in PHASES} | {"waterfall--label", "waterfall--bad"}
    DEFAULT_CSS = """
    Waterfall { height: auto; }
    Waterfall > .waterfall--dns { color: $secondary; }
    Waterfall > .waterfall--connect { color: $warning; }
    Waterfall > .waterfall--tls { color: $accent; }
    Waterfall > .waterfall--ttfb { color: $primary; }
    Waterfall > .waterfall--transfer { color: $success; }
    Waterfall > .waterfall--label { color: $text-muted; }
    Waterfall > .waterfall--bad { color: $error; text-style: bold; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pull: dict[str, Any] | None = None

    def set_pull(self, pull: dict[str, Any] | None) -> None:
        """Show this pull's layers."""
        self.pull = pull
        self.refresh(layout=True)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        """Header, a row per layer, axis, legend."""
        return 3 + len((self.pull or {}).get("layers") or [])

    def render(self) -> Text:
        """The chart as text (the glyphs keep phases apart under NO_COLOR)."""
        pull = self.pull or {}
        layers = pull.get("layers") or []
        width = max(self.size.width, 40)
        label_w = min(34, width // 2 - 4)
        bar_w = max(10, width - label_w - 2)
        end = max([float(pull.get("wall_ms") or 0)] + [float(l.get("started_ms") or 0) + float((l.get("timings_ms") or {}).get("total") or 0)
                                                          for l in layers]) or 1.0
        scale = (bar_w - 1) / end
        style = lambda n: self.get_component_rich_style(f"waterfall--{n}", partial=True)  # noqa: E731
        out = Text()
        out.append(f"{'layer  endpoint  tries':<{label_w}}", style=style("label"))
        out.append("│" + " " * (bar_w - 1) + "\n", style=style("label"))
        for layer in layers:
            host = str(layer.get("endpoint") or "").split("://", 1)[-1].split("/", 1)[0]
            tries = layer.get("attempts", 1)
            label = f"{short_digest(layer.get('digest'), 7)} {host}"
            label = (label[: label_w - 5] + "…") if len(label) > label_w - 4 else label
            out.append(f"{label:<{label_w - 3}}", style=style("bad") if not layer.get("ok", True) else "")
            out.append(f"{tries:>2} ", style=style("bad") if (tries or 1) > 1 else style("label"))
            row = [" "] * bar_w
            kinds: list[str | None] = [None] * bar_w
            for phase, col, w in segments(layer, scale):
                glyph = dict(PHASES)[phase]
                for c in range(col, min(col + w, bar_w)):
                    row[c], kinds[c] = glyph, phase
            out.append("│", style=style("label"))
            for c in range(1, bar_w):
                ch, kind = row[c - 1], kinds[c - 1]
                out.append(ch, style=style(kind) if kind else "")
            out.append("\n")
        axis = f"0 ms{'':{bar_w - 4 - len(f'{end:.0f} ms')}}{end:.0f} ms"
        out.append(" " * label_w + axis + "\n", style=style("label"))
        for i, (phase, glyph) in enumerate(PHASES):
            out.append(("  " if i else "") + glyph * 2, style=style(phase))
            out.append(f" {phase}", style=style("label"))
        return out


class PullPanel(Panel):
    """Summary line, live per-layer progress bars, then the waterfall."""

    panel = "pull"

    def compose_body(self) -> ComposeResult:
        """Summary, progress, waterfall (scrolls at 80x24)."""
        with VerticalScroll(id="pull-scroll", classes="panel-content"):
            yield Static("", id="pull-summary")
            yield Static("", id="pull-progress")
            yield Waterfall(id="pull-waterfall")

    def render_body(self, data: dict[str, Any], state: str) -> None:
        """The finished pull's summary and waterfall (progress bars come from :meth:`show_progress`)."""
        pull = data.get("pull")
        summary = self.query_one("#pull-summary", Static)
        waterfall = self.query_one(Waterfall)
        if not pull:
            words = {"offline": "offline: no test pull", "not-built": "the test pull is not built in this version"}
            summary.update(Text(words.get(state, "no test pull yet" if state != "running" else ""), style=self.st("dim")))
            waterfall.set_pull(None)
            waterfall.display = False
            return
        if state != "running":
            self.query_one("#pull-progress", Static).update("")
        ok = pull.get("ok")
        line = Text("✓ pulled " if ok else "✗ failed ", style=self.st("ok") if ok else self.st("bad"))
        line.append(str(pull.get("image", "")), style=self.st("key"))
        endpoint = str(pull.get("endpoint") or "?").split("://", 1)[-1].split("/", 1)[0]
        line.append(f" via {pull.get('runtime', '?')} from {endpoint}\n")
        wall = float(pull.get("wall_ms") or 0)
        rate = (float(pull.get("bytes") or 0) / (wall / 1000)) if wall else 0
        line.append(f"{human_bytes(pull.get('bytes'))} in {wall:.0f} ms ({human_bytes(rate)}/s), "
                    f"{len(pull.get('layers') or [])} layer(s), concurrency {pull.get('concurrency', '?')}",
                    style=self.st("dim"))
        manifest = pull.get("manifest") or {}
        if manifest.get("digest"):
            line.append(f", digest {short_digest(manifest['digest'])}", style=self.st("dim"))
        summary.update(line)
        waterfall.display = True
        waterfall.set_pull(pull)

    def show_progress(self, layers: dict[str, PullLayer], now: float) -> None:
        """Per-layer progress bars with throughput while the pull runs."""
        out = Text()
        bar_w = 20
        for i, layer in enumerate(layers.values()):
            if i:
                out.append("\n")
            frac = min(1.0, layer.done / layer.total) if layer.total else 0.0
            filled = int(frac * bar_w)
            out.append(f"{short_digest(layer.digest, 7)} ")
            out.append("━" * filled, style=self.st("ok"))
            out.append("━" * (bar_w - filled), style=self.st("dim"))
            pct = f"{frac * 100:3.0f}%" if layer.total else "  ?%"
            out.append(f" {pct} {human_bytes(layer.done)}/{human_bytes(layer.total) if layer.total else '?'}"
                       f"  {human_bytes(layer.rate)}/s", style=self.st("dim"))
        self.query_one("#pull-progress", Static).update(out)

    def copyable(self) -> Copyable | None:
        """A skopeo copy of the same image (the pull, reproduced)."""
        pull = self.data.get("pull") or {}
        endpoint = str(pull.get("endpoint") or "")
        image = str(pull.get("image") or "")
        if not image:
            return None
        return Copyable(f"skopeo copy {image}", f"skopeo copy --all docker://{image} dir:/tmp/regtui-pull"
                        + (f"  # endpoint {endpoint}" if endpoint else ""))
