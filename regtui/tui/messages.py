"""Messages workers post to the app; handlers on the app change the widgets."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from regtui.tui.fixing import Applied
from regtui.tui.source import PullLayer, Update

__all__ = ["ReportUpdated", "PullProgressed", "RunFailed", "FixFinished", "Exported"]


class ReportUpdated(Message):
    """A run produced a fresh report (``generation`` tells stale runs apart)."""

    def __init__(self, generation: int, update: Update) -> None:
        super().__init__()
        self.generation = generation
        self.update = update

    def can_replace(self, message: Message) -> bool:
        """This report may give way to a newer one of the same run (a slow UI skips frames, never the last)."""
        return (isinstance(message, ReportUpdated) and message.generation == self.generation
                and not self.update.done)


class PullProgressed(Message):
    """Per-layer progress of the running test pull; a newer one replaces an unprocessed older one."""

    def __init__(self, generation: int, layers: dict[str, PullLayer]) -> None:
        super().__init__()
        self.generation = generation
        self.layers = layers

    def can_replace(self, message: Message) -> bool:
        """Only the latest progress matters."""
        return isinstance(message, PullProgressed)


class RunFailed(Message):
    """A run raised (a bug in regtui): said in words, never a crash."""

    def __init__(self, generation: int, error: str) -> None:
        super().__init__()
        self.generation = generation
        self.error = error


class FixFinished(Message):
    """Apply or undo came back from the fix engine."""

    def __init__(self, action: str, finding: dict[str, Any], applied: Applied) -> None:
        super().__init__()
        self.action = action
        self.finding = finding
        self.applied = applied


class Exported(Message):
    """The report was written (``error`` set when it was not)."""

    def __init__(self, path: str, fmt: str, error: str = "") -> None:
        super().__init__()
        self.path = path
        self.fmt = fmt
        self.error = error
