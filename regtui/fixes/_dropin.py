"""Line-wise edits of systemd drop-ins (``[Service]`` ``Environment=``/``ExecStart=``) and of
``KEY=VALUE`` environment files, keeping every other line, comment and section as it was.

Each edit is checked by reading the result back the way :mod:`regtui.config.systemd` reads units
and environment files: the edited file must give exactly the intended variables (or ExecStart).
"""

from __future__ import annotations

import re
import shlex
from typing import Sequence

from regtui.config import systemd
from regtui.fixes._model import PlanRefused

__all__ = ["UnitFile", "EnvFile", "dropin_path", "quote_assignment", "exec_start_line"]


def dropin_path(unit: str, name: str) -> str:
    """``/etc/systemd/system/<unit>.d/<name>``: where an administrator's drop-in goes."""
    return f"/etc/systemd/system/{unit}.d/{name}"


def quote_assignment(name: str, value: str) -> str:
    """``"NAME=value"`` quoted for ``Environment=`` (``%`` doubled, quotes and backslashes escaped)."""
    body = f"{name}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{body}"'


def _word(arg: str) -> str:
    return shlex.quote(arg.replace("%", "%%")) if arg else "''"


def exec_start_line(argv: Sequence[str]) -> str:
    """``ExecStart=`` value for an argv (quoted for systemd, ``%`` doubled)."""
    return " ".join(_word(a) for a in argv)


_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")


class _LineFile:
    """A text file edited line by line (every line ends with a newline)."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = text.splitlines(keepends=True) if text else []
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += "\n"

    def text(self) -> str:
        """The edited file."""
        return "".join(self.lines)


class UnitFile(_LineFile):
    """A unit file or drop-in being edited."""

    # -- structure ----------------------------------------------------------------------------

    def _service_range(self) -> tuple[int, int] | None:
        """Line range ``[start, end)`` of the last ``[Service]`` section's body."""
        found = None
        for i, line in enumerate(self.lines):
            m = _SECTION.match(line)
            if m and m.group("name").strip() == "Service":
                end = next((j for j in range(i + 1, len(self.lines)) if _SECTION.match(self.lines[j])), len(self.lines))
                found = (i + 1, end)
        return found

    def _ensure_service(self) -> tuple[int, int]:
        rng = self._service_range()
        if rng is None:
            if self.lines and self.lines[-1].strip():
                self.lines.append("\n")
            self.lines.append("[Service]\n")
            rng = (len(self.lines), len(self.lines))
        return rng

    def _insert_in_service(self, new_lines: list[str]) -> None:
        start, end = self._ensure_service()
        at = end
        while at > start and not self.lines[at - 1].strip():
            at -= 1
        self.lines[at:at] = new_lines

    def _directives(self, key: str) -> list[int]:
        rng = self._service_range()
        if rng is None:
            return []
        out = []
        for i in range(*rng):
            s = self.lines[i].strip()
            if s.startswith(("#", ";")) or "=" not in s:
                continue
            k = s.split("=", 1)[0].strip()
            if k == key:
                if self.lines[i].rstrip("\r\n").endswith("\\"):
                    raise PlanRefused(f"{self.path}: a {key}= line continues over several lines; edit it by hand")
                out.append(i)
        return out

    # -- reading back -------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """Variables this file's ``[Service]`` ``Environment=`` lines set (empty assignment resets)."""
        directives, problems = systemd.parse_unit(self.text(), self.path, "regtui")
        if problems:
            raise PlanRefused(f"{self.path}: the edited file does not parse ({problems[0].title})")
        env: dict[str, str] = {}
        for d in directives:
            if d.key != "Environment":
                continue
            if not d.value:
                env.clear()
                continue
            pairs = systemd.parse_environment_value(d.value)
            if pairs is None:
                raise PlanRefused(f"{self.path}:{d.line}: unbalanced quotes in Environment=")
            env.update(pairs)
        return env

    def exec_start(self) -> list[str] | None:
        """The argv of the last ``ExecStart=`` in this file (``[]`` after a reset, ``None`` when unset)."""
        directives, _ = systemd.parse_unit(self.text(), self.path, "regtui")
        argv: list[str] | None = None
        for d in directives:
            if d.key == "ExecStart":
                argv = shlex.split(d.value.replace("%%", "%"), posix=True) if d.value else []
        return argv

    # -- edits --------------------------------------------------------------------------------

    def set_env(self, name: str, value: str) -> None:
        """Make ``name`` equal ``value``: rewrite its assignment in place, or add an ``Environment=`` line."""
        expect = dict(self.environment())
        expect[name] = value
        lines = [i for i in self._directives("Environment") if name in self._assigned(i)]
        if lines:
            i = lines[-1]
            pairs = self._assigned_pairs(i)
            pairs = [(k, value if k == name else v) for k, v in pairs]
            self.lines[i] = "Environment=" + " ".join(quote_assignment(k, v) for k, v in pairs) + "\n"
        else:
            self._insert_in_service([f"Environment={quote_assignment(name, value)}\n"])
        self._verify_env(expect)

    def remove_env(self, name: str) -> None:
        """Remove ``name`` from every ``Environment=`` line of this file."""
        expect = {k: v for k, v in self.environment().items() if k != name}
        for i in reversed(self._directives("Environment")):
            pairs = self._assigned_pairs(i)
            if not any(k == name for k, _ in pairs):
                continue
            kept = [(k, v) for k, v in pairs if k != name]
            if kept:
                self.lines[i] = "Environment=" + " ".join(quote_assignment(k, v) for k, v in kept) + "\n"
            else:
                del self.lines[i]
        self._verify_env(expect)

    def _assigned_pairs(self, i: int) -> list[tuple[str, str]]:
        value = self.lines[i].split("=", 1)[1].strip()
        pairs = systemd.parse_environment_value(value)
        if pairs is None:
            raise PlanRefused(f"{self.path}:{i + 1}: unbalanced quotes in Environment=; edit it by hand")
        return pairs

    def _assigned(self, i: int) -> set[str]:
        return {k for k, _ in self._assigned_pairs(i)}

    def _verify_env(self, expect: dict[str, str]) -> None:
        if self.environment() != expect:
            raise PlanRefused("internal: the drop-in edit did not give the intended environment; nothing planned")

    def set_exec_start(self, argv: Sequence[str]) -> None:
        """Replace the command line: ``ExecStart=`` (reset) then ``ExecStart=<argv>`` in ``[Service]``."""
        existing = self._directives("ExecStart")
        new = ["ExecStart=\n", f"ExecStart={exec_start_line(argv)}\n"]
        if existing:
            first = existing[0]
            for i in reversed(existing):
                del self.lines[i]
            self.lines[first:first] = new
        else:
            self._insert_in_service(new)
        if self.exec_start() != list(argv):
            raise PlanRefused("internal: the ExecStart edit does not read back as intended; nothing planned")


class EnvFile(_LineFile):
    """A ``KEY=VALUE`` environment file (systemd ``EnvironmentFile=``, k3s ``.env``) being edited."""

    def values(self) -> dict[str, str]:
        """Variables as :func:`regtui.config.systemd.env_file` reads them."""
        out: dict[str, str] = {}
        for _, key, value in systemd.env_assignments(self.text()):
            if key is None:
                continue
            if value is None:
                raise PlanRefused(f"{self.path}: unbalanced quotes; edit it by hand")
            out[key] = value
        return out

    def _line_of(self, name: str) -> int | None:
        found = None
        for i, line in enumerate(self.lines):
            s = line.strip()
            if s.startswith("export "):
                s = s[len("export "):].strip()
            if s.split("=", 1)[0].strip() == name and "=" in s:
                found = i
        return found

    def set(self, name: str, value: str) -> None:
        """Set ``name`` (replacing its last assignment, or appending one)."""
        expect = dict(self.values())
        expect[name] = value
        quoted = value if re.fullmatch(r"[A-Za-z0-9_./:@,+=%-]*", value) else shlex.quote(value)
        i = self._line_of(name)
        if i is not None:
            prefix = "export " if self.lines[i].lstrip().startswith("export ") else ""
            self.lines[i] = f"{prefix}{name}={quoted}\n"
        else:
            self.lines.append(f"{name}={quoted}\n")
        if self.values() != expect:
            raise PlanRefused("internal: the environment file edit did not read back as intended; nothing planned")

    def remove(self, name: str) -> None:
        """Remove every assignment of ``name``."""
        expect = {k: v for k, v in self.values().items() if k != name}
        while (i := self._line_of(name)) is not None:
            del self.lines[i]
        if self.values() != expect:
            raise PlanRefused("internal: the environment file edit did not read back as intended; nothing planned")
