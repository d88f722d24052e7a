"""The guided fix: a finding's evidence, the fix preview, apply after confirmation, re-check, undo."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from regtui import redact
from regtui.fixes import Preview
from regtui.tui.data import finding_text, fold_diff
from regtui.tui.fixing import Applied, FixBackend

__all__ = ["FixScreen", "diff_text"]


def diff_text(diff: str, styles: dict[str, Any]) -> Text:
    """A unified diff coloured by line kind (added, removed, hunk, file header)."""
    out = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = styles["file"]
        elif line.startswith("@@"):
            style = styles["hunk"]
        elif line.startswith("+"):
            style = styles["added"]
        elif line.startswith("-"):
            style = styles["removed"]
        else:
            style = styles["context"]
        out.append(line + "\n", style=style)
    out.rstrip()
    return out


class FixScreen(ModalScreen[None]):
    """Evidence and preview of one finding's fix; ``a`` then ``y`` applies (unless read-only)."""

    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("a", "apply", "apply"),
        Binding("y", "confirm", "yes", show=False),
        Binding("n", "cancel_confirm", "no", show=False),
        Binding("u", "undo", "undo"),
        Binding("c", "copy", "copy preview"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"fix--added", "fix--removed", "fix--hunk", "fix--file", "fix--context",
                                             "fix--error", "fix--warning", "fix--info", "fix--ok", "fix--key",
                                             "fix--dim"}
    DEFAULT_CSS = """
    FixScreen > .fix--added { color: $success; }
    FixScreen > .fix--removed { color: $error; }
    FixScreen > .fix--hunk { color: $accent; }
    FixScreen > .fix--file { text-style: bold; }
    FixScreen > .fix--context { color: $text-muted; }
    FixScreen > .fix--error { color: $error; text-style: bold; }
    FixScreen > .fix--warning { color: $warning; text-style: bold; }
    FixScreen > .fix--info { color: $primary; }
    FixScreen > .fix--ok { color: $success; text-style: bold; }
    FixScreen > .fix--key { text-style: bold; }
    FixScreen > .fix--dim { color: $text-muted; }
    """

    class ApplyRequested(Message):
        """The user confirmed: the app applies and re-checks."""

        def __init__(self, finding: dict[str, Any]) -> None:
            super().__init__()
            self.finding = finding

    class PreviewReady(Message):
        """The preview came back from the worker."""

        def __init__(self, preview: Preview) -> None:
            super().__init__()
            self.preview = preview

    def __init__(self, finding: dict[str, Any], finding_obj: Any, backend: FixBackend, options: Any,
                 read_only: bool) -> None:
        super().__init__()
        self.finding = finding
        self.finding_obj = finding_obj
        self.backend = backend
        self.options = options
        self.read_only = read_only
        self.preview: Preview | None = None
        self.confirming = False
        self.outcome = ""
        """Last words about apply/re-check/undo (for tests and the status line)."""

    def st(self, name: str) -> Any:
        """Rich style of a component class."""
        return self.get_component_rich_style(f"fix--{name}", partial=True)

    def compose(self) -> ComposeResult:
        """Evidence, preview, status line."""
        with Vertical(id="fix-dialog", classes="dialog"):
            with VerticalScroll(id="fix-body"):
                yield Static(id="fix-head")
                yield Static(id="fix-preview")
                yield Static(id="fix-evidence")
            yield Static(id="fix-status")

    def on_mount(self) -> None:
        """Render the evidence, then fetch the preview in a worker."""
        f = self.finding
        dialog = self.query_one("#fix-dialog")
        dialog.border_title = f"Fix: {f['code']}"
        dialog.border_subtitle = self._keys_hint()
        head = Text()
        head.append(f"{f['severity'].upper()} ", style=self.st(f["severity"]))
        head.append(f"{f['title']}\n", style=self.st("key"))
        head.append(f"subject {f['subject']}" + (f"  runtime {f['runtime']}" if f.get("runtime") else "") + "\n",
                    style=self.st("dim"))
        fx = f.get("fix")
        if fx:
            head.append("fix ", style=self.st("key"))
            head.append(f"({fx['kind']}) {fx['summary']}")
            if fx.get("restart") not in (None, "", "none"):
                head.append(f"; then {fx['restart']}", style=self.st("warning"))
        else:
            head.append("no suggested fix for this finding", style=self.st("dim"))
        self.query_one("#fix-head", Static).update(head)
        ev = Text()
        if f.get("detail"):
            ev.append("\nwhy\n", style=self.st("key"))
            ev.append(f"{f['detail']}\n")
        evidence = f.get("evidence") or {}
        if evidence:
            ev.append("evidence\n", style=self.st("key"))
            for k, v in evidence.items():
                ev.append(f"  {k}: ", style=self.st("dim"))
                ev.append(f"{v}\n")
        ev.rstrip()
        self.query_one("#fix-evidence", Static).update(ev)
        self.query_one("#fix-preview", Static).update(Text("preparing preview…", style=self.st("dim")))
        self._status("")
        self.query_one("#fix-body").focus()
        self._load_preview()

    def _keys_hint(self) -> str:
        keys = []
        if self.check_action("apply", ()):
            keys.append("a apply")
        keys += ["c copy", "u undo", "esc close"]
        return " · ".join(keys)

    @work(thread=True, exclusive=True, group="fix-preview")
    def _load_preview(self) -> None:
        """Ask the fix engine for the preview (it may read files: a thread)."""
        try:
            probes = getattr(self.app, "report", None)
            probes = probes.probes if probes is not None else None
            preview = self.backend.preview(self.finding_obj, self.options, probes) if self.finding_obj is not None else \
                Preview(kind="manual", steps=self.finding.get("detail", ""), note="finding no longer present")
        except Exception as exc:  # a bug in the fix engine: say so, do not crash the workbench
            preview = Preview(kind="manual", steps="", note=redact.text(f"preview failed: {type(exc).__name__}: {exc}"))
        self.post_message(self.PreviewReady(preview))

    def on_fix_screen_preview_ready(self, message: PreviewReady) -> None:
        """Render the preview: diff, command or steps."""
        p = self.preview = message.preview
        out = Text()
        out.append("\npreview", style=self.st("key"))
        out.append(f"  ({p.kind})\n", style=self.st("dim"))
        styles = {k: self.st(k) for k in ("added", "removed", "hunk", "file", "context")}
        if p.diff:
            out.append_text(diff_text(fold_diff(p.diff), styles))
            out.append("\n")
        if p.command:
            # The engine writes each command as "$ command" with its effect below.
            out.append(p.command.rstrip("\n") + "\n", style=self.st("key"))
        if p.steps:
            out.append(p.steps + "\n")
        if p.restart not in ("", "none"):
            out.append(f"afterwards: {p.restart}\n", style=self.st("warning"))
        if p.note:
            out.append(p.note + "\n", style=self.st("dim"))
        self.query_one("#fix-preview", Static).update(out)
        self.query_one("#fix-dialog").border_subtitle = self._keys_hint()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Apply exists only when not read-only (hidden entirely), and is enabled once the preview allows it."""
        if action == "apply":
            if self.read_only:
                return False
            return True if self.preview is None or self.preview.can_apply else None
        if action in ("confirm", "cancel_confirm"):
            return self.confirming
        return True

    def _status(self, text: str | Text) -> None:
        self.query_one("#fix-status", Static).update(text)

    def action_apply(self) -> None:
        """Ask for confirmation."""
        if self.preview is None and not self.read_only:
            self._status(Text("the preview is still being prepared; a applies once it is shown", style=self.st("dim")))
            return
        if self.read_only or self.preview is None or not self.preview.can_apply:
            if self.preview is not None and not self.read_only:
                self._status(Text(f"cannot apply: {self.preview.note or 'no automatic fix'}", style=self.st("warning")))
            return
        self.confirming = True
        files = ", ".join((self.finding.get("fix") or {}).get("files") or []) or "the host"
        self._status(Text(f"Apply this fix to {files}? y apply · n cancel", style=self.st("warning")))
        self.refresh_bindings()

    def action_confirm(self) -> None:
        """Apply: the app backs up, writes, then re-checks the panel."""
        if not self.confirming:
            return
        self.confirming = False
        self.refresh_bindings()
        self._status(Text("applying…", style=self.st("dim")))
        self.post_message(self.ApplyRequested(self.finding))

    def action_cancel_confirm(self) -> None:
        """Do not apply."""
        self.confirming = False
        self.refresh_bindings()
        self._status(Text("not applied", style=self.st("dim")))

    def show_outcome(self, applied: Applied | None, gone: bool | None, words: str = "") -> None:
        """What happened: apply result, then whether the finding is gone after the re-check."""
        if applied is not None and not applied.ok:
            self.outcome = f"failed: {applied.message}"
            self._status(Text(self.outcome, style=self.st("error")))
            return
        if gone is None:
            self.outcome = words or (applied.message if applied else "")
            self._status(Text(f"{self.outcome} · re-checking…", style=self.st("dim")))
            return
        # Only files a runtime reads at start-up want a restart; hosts.toml and certs.d are read per pull.
        restart = self.preview.restart if self.preview is not None else ""
        why = (f"it takes effect after: {restart}" if restart and restart != "none"
               else "the runtime reads these files on the next pull; no restart needed")
        self.outcome = "fixed: the finding is gone after the re-check" if gone else \
            f"still there after the re-check: see the evidence ({why})"
        self._status(Text(("✓ " if gone else "✗ ") + self.outcome, style=self.st("ok") if gone else self.st("warning")))

    def action_undo(self) -> None:
        """Undo the last applied fix (the app knows which)."""
        self.app.action_undo()  # type: ignore[attr-defined]

    def action_copy(self) -> None:
        """Copy the preview (diff, command or steps), else the finding."""
        p = self.preview
        text = (p.diff or p.command or p.steps) if p else ""
        self.app.copy_to_clipboard(text or finding_text(self.finding))
        self.app.notify("copied the fix preview" if text else "copied the finding", timeout=3)

    def action_close(self) -> None:
        """Back to the panel (esc cancels a pending confirmation first)."""
        if self.confirming:
            self.action_cancel_confirm()
            return
        self.dismiss(None)
