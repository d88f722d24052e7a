"""What a fix planner works with: the :class:`Context` (the finding, the host, the options, probe
data, and the files it edits as planned so far) and :class:`ManualOnly`.

The planners of the catalogue and the engine that runs them both import this module; it imports
neither, so the catalogue sits below the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from regtui.fixes import _fs
from regtui.fixes._model import CommandStep, FileChange, FixError, PlanRefused
from regtui.fixes._text import Encoding, decode, encode
from regtui.host import Host
from regtui.model import Finding
from regtui.options import CheckOptions

__all__ = ["Context", "ManualOnly", "Planner"]


class ManualOnly(FixError):
    """The planner knows no safe edit for this case: the steps are for a person."""


# -- the planning context ---------------------------------------------------------------------

@dataclass
class Context:
    """What a planner sees: the finding, the host, the options, probe data; and the files it edits."""

    finding: Finding
    host: Host
    options: CheckOptions
    probes: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    restart: str = ""
    confirm: str = ""
    kind: str = ""
    notes: list[str] = field(default_factory=list)
    commands: list[CommandStep] = field(default_factory=list)
    remove_dirs: list[str] = field(default_factory=list)
    secret_paths: set[str] = field(default_factory=set)
    verbatim: set[str] = field(default_factory=set)
    """Files copied or moved byte for byte: not re-parsed (their content is not the fix's)."""
    supplied_ca: bytes | None = None
    """PEM the user gave for a CA install (``regtui fix --ca-file``): the anchor the server does not send."""
    modes: dict[str, int] = field(default_factory=dict)
    change_notes: dict[str, str] = field(default_factory=dict)
    _orig: dict[str, bytes | None] = field(default_factory=dict)
    _new: dict[str, bytes | None] = field(default_factory=dict)

    @property
    def params(self) -> Mapping[str, Any]:
        """The finding's fix parameters."""
        return self.finding.fix.params if self.finding.fix else {}

    @property
    def evidence(self) -> Mapping[str, Any]:
        """The finding's evidence."""
        return self.finding.evidence

    # -- files ----------------------------------------------------------------------------

    def read(self, path: str) -> bytes | None:
        """The file as planned so far (or on disk); ``None`` when absent. Refuses unreadable files."""
        if path in self._new:
            return self._new[path]
        if path not in self._orig:
            f = self.host.read(path, limit=_fs.MAX_FILE_BYTES)
            if f.status == "missing":
                self._orig[path] = None
            elif f.ok:
                self._orig[path] = f.data
            else:
                raise PlanRefused(f"{path} cannot be read ({f.error or f.status}); nothing planned")
        return self._orig[path]

    def exists(self, path: str) -> bool:
        """The file exists in the planned state."""
        return self.read(path) is not None

    def text(self, path: str, *, missing: str | None = None) -> tuple[str, Encoding]:
        """Decoded text of a planned file; ``missing`` (else a refusal) when it does not exist."""
        data = self.read(path)
        if data is None:
            if missing is None:
                raise PlanRefused(f"{path} does not exist (any more); nothing to change")
            return missing, Encoding()
        try:
            return decode(data)
        except UnicodeDecodeError:
            raise PlanRefused(f"{path} is not text in an encoding the runtime accepts; edit it by hand") from None

    def write(self, path: str, data: bytes | None, *, mode: int | None = None, secret: bool = False,
              note: str = "") -> None:
        """Plan ``path``'s new bytes (``None`` deletes it)."""
        self.read(path)
        self._new[path] = data
        if mode is not None:
            self.modes[path] = mode
        if secret:
            self.secret_paths.add(path)
        if note:
            self.change_notes[path] = note

    def write_text(self, path: str, text: str, enc: Encoding = Encoding(), **kw: Any) -> None:
        """Plan ``path``'s new text in its own encoding."""
        self.write(path, encode(text, enc), **kw)

    def changes(self) -> list[FileChange]:
        """Files whose planned bytes differ from the disk's."""
        out = []
        for path, data in self._new.items():
            before = self._orig.get(path)
            if data == before:
                continue
            out.append(FileChange(path, before, data, mode=self.modes.get(path), secret=path in self.secret_paths,
                                  note=self.change_notes.get(path, "")))
        return out

    def note(self, text: str) -> None:
        """Add a line the preview shows."""
        if text not in self.notes:
            self.notes.append(text)


Planner = Callable[[Context], None]
