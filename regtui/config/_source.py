"""Reading config files with provenance: parse JSON and TOML, remember each key's line,
and turn missing, unreadable and malformed files into findings instead of exceptions."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable

from regtui.findings import finding, fix
from regtui.host import FileText, Host
from regtui.model import Finding, SourceFile

__all__ = [
    "Parsed",
    "KeyPath",
    "read_json",
    "read_toml",
    "parse_error",
    "unreadable_finding",
    "json_key_lines",
    "toml_key_lines",
    "BadLines",
    "too_deep",
]

KeyPath = tuple[Any, ...]
_EXCERPT = 120


@dataclass
class Parsed:
    """A config file read and parsed, with the line of every key."""

    path: str
    """Host path."""
    file: FileText
    data: Any = None
    """Parsed document; ``None`` when missing or broken."""
    lines: dict[KeyPath, int] = field(default_factory=dict)
    """Line (1-based) of each key path, e.g. ``("registry-mirrors", 0)``."""
    findings: list[Finding] = field(default_factory=list)
    """Findings about the file itself (parse error, permission)."""
    status: str = "ok"
    """``ok``, ``missing``, ``parse-error``, ``unreadable`` or ``too-deep`` (the runtime reads it, regtui does not)."""
    error: str = ""

    @property
    def ok(self) -> bool:
        """The file was read and parsed."""
        return self.status == "ok"

    def line(self, *key: Any) -> int | None:
        """Line of ``key`` or, failing that, of its nearest recorded ancestor."""
        k = tuple(key)
        while k:
            if k in self.lines:
                return self.lines[k]
            k = k[:-1]
        return None

    def where(self, *key: Any) -> str:
        """``path:line`` of ``key`` (just ``path`` when the line is unknown)."""
        line = self.line(*key)
        return f"{self.path}:{line}" if line else self.path

    def evidence(self, *key: Any, **extra: Any) -> dict[str, Any]:
        """Evidence dict naming file and line of ``key``."""
        ev: dict[str, Any] = {"file": self.path, "line": self.line(*key)}
        ev.update(extra)
        return ev

    def source(self, runtime: str, kind: str, detail: str = "", values: dict[str, Any] | None = None) -> SourceFile:
        """The :class:`SourceFile` record for the Config panel."""
        status = self.status
        return SourceFile(self.path, runtime, kind, status, detail or self.error, values or {})


#: Go's ``strconv.ParseBool`` spellings (the runtimes' boolean flags and string settings).
_GO_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def go_parse_bool(text: str) -> bool | None:
    """``text`` as Go's ``strconv.ParseBool`` reads it; ``None`` where Go returns an error."""
    return _GO_BOOL.get(text)


def unreadable_finding(file: FileText, runtime: str | None) -> Finding:
    """``config.permission`` for a file that exists but cannot be read."""
    return finding(
        "config.permission",
        file.path,
        f"{file.path} exists but cannot be read ({file.error})",
        f"The runtime reads this file; regtui could not ({file.error}), so what it says is unknown. "
        "If the runtime cannot read it either, its settings are not applied.",
        evidence={"file": file.path, "error": file.error, "status": file.status},
        runtime=runtime,
        fix=fix("config.permission", file.path, f"inspect permissions: ls -l {file.path}", kind="command",
                params={"command": f"ls -l {file.path}"}),
    )


def parse_error(path: str, message: str, line: int | None, column: int | None, runtime: str | None,
                excerpt: str | None = None, what: str = "", extra: dict[str, Any] | None = None) -> Finding:
    """``config.parse-error`` pointing at the line and column (``extra`` joins the evidence)."""
    where = f"{path}:{line}" if line else path
    ev: dict[str, Any] = {"file": path, "line": line, "column": column, "error": message}
    if excerpt is not None:
        ev["excerpt"] = excerpt
    ev.update(extra or {})
    return finding(
        "config.parse-error",
        path,
        f"{where}: does not parse: {message}",
        what or "The runtime cannot read this file; see SEMANTICS for what it does then.",
        evidence=ev,
        runtime=runtime,
        fix=fix("config.parse-error", path, f"correct the syntax at {where}", kind="manual",
                params={"line": line, "column": column}),
    )


#: Bad lines quoted in the one finding about a line-oriented file; the others are only counted.
MAX_BAD_LINES = 5


@dataclass
class BadLines:
    """The lines of one file that do not parse, reported as one finding whatever their number.

    A file of junk is one problem, not one per line: the finding quotes the first
    :data:`MAX_BAD_LINES` lines and counts the rest, so its cost does not grow with the file.
    """

    path: str
    runtime: str | None
    what: str = ""
    count: int = 0
    first: list[dict[str, Any]] = field(default_factory=list)

    def add(self, line: int, message: str, excerpt: str | None = None) -> None:
        """Record one bad line (only the first few are kept)."""
        self.count += 1
        if len(self.first) < MAX_BAD_LINES:
            entry: dict[str, Any] = {"line": line, "error": message}
            if excerpt is not None:
                entry["excerpt"] = excerpt
            self.first.append(entry)

    def findings(self) -> list[Finding]:
        """The one ``config.parse-error`` for these lines (none when every line parsed)."""
        if not self.count:
            return []
        head = self.first[0]
        message = head["error"]
        if self.count > 1:
            message += f" (and {self.count - 1} more bad line{'s' if self.count > 2 else ''})"
        return [parse_error(self.path, message, head["line"], 1, self.runtime, head.get("excerpt"), self.what,
                            extra={"bad_lines": list(self.first), "count": self.count})]


def too_deep(path: str, runtime: str | None, reader: str) -> Finding:
    """``config.too-deep``: nesting regtui does not follow, in a file ``reader`` (the runtime's decoder) accepts."""
    return finding(
        "config.too-deep",
        path,
        f"{path}: nested deeper than regtui reads; its settings are not checked",
        f"{reader} The settings in this file are not checked and the routes planned here ignore them; "
        "flatten the nesting to have it checked.",
        evidence={"file": path, "error": "nesting too deep", "reader": reader},
        runtime=runtime,
        fix=fix("config.too-deep", path, f"reduce the nesting in {path}", kind="manual"),
    )


#: What the runtimes' decoders do with deep nesting, for :func:`too_deep`.
GO_JSON = "The runtime reads it: Go's encoding/json accepts up to 10000 levels of nesting."
GO_TOML = "The runtime reads it: its Go TOML decoder sets no nesting limit."
GO_YAML = "The runtime reads it: Go's yaml decoder accepts up to 10000 levels of nesting."


def _excerpt(text: str, line: int | None, secret: bool) -> str | None:
    if secret or not line:
        return None
    lines = text.splitlines()
    if 0 < line <= len(lines):
        return lines[line - 1][:_EXCERPT]
    return None


def _read(host: Host, path: str, runtime: str | None) -> tuple[FileText, Parsed | None]:
    file = host.read(path)
    if file.status == "missing":
        return file, Parsed(path, file, status="missing")
    if file.status != "ok":
        return file, Parsed(path, file, status="unreadable", error=file.error,
                            findings=[unreadable_finding(file, runtime)])
    return file, None


def read_json(host: Host, path: str, runtime: str | None, *, what: str = "", secret: bool = False,
              empty_ok: bool = True) -> Parsed:
    """Read a JSON file. Empty is ``{}`` when ``empty_ok`` (dockerd accepts an empty daemon.json).

    ``secret`` files (credentials) never have their text quoted in evidence.
    """
    file, early = _read(host, path, runtime)
    if early:
        return early
    text = file.text
    if file.decode_error:
        return Parsed(path, file, status="parse-error", error=file.decode_error,
                      findings=[parse_error(path, file.decode_error, None, None, runtime, what=what)])
    if not text.strip() and empty_ok:
        return Parsed(path, file, data={})
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Parsed(path, file, status="parse-error", error=exc.msg,
                      findings=[parse_error(path, exc.msg, exc.lineno, exc.colno, runtime,
                                            _excerpt(text, exc.lineno, secret), what)])
    except RecursionError:
        # Not a parse error: dockerd and the clients decode it; regtui cannot follow it.
        return Parsed(path, file, status="too-deep", error="nesting too deep",
                      findings=[too_deep(path, runtime, GO_JSON)])
    return Parsed(path, file, data=data, lines=json_key_lines(text))


_TOML_POS = re.compile(r"at line (\d+), column (\d+)")


def read_toml(host: Host, path: str, runtime: str | None, *, what: str = "", secret: bool = False) -> Parsed:
    """Read a TOML file with tomllib; key lines come from :func:`toml_key_lines`."""
    file, early = _read(host, path, runtime)
    if early:
        return early
    if file.decode_error:
        return Parsed(path, file, status="parse-error", error=file.decode_error,
                      findings=[parse_error(path, file.decode_error, None, None, runtime, what=what)])
    text = file.text
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        return Parsed(path, file, status="parse-error", error=msg,
                      findings=[parse_error(path, msg, line, col, runtime, _excerpt(text, line, secret), what)])
    except RecursionError:
        # Not a parse error: containerd, CRI-O and podman decode it; regtui cannot follow it.
        return Parsed(path, file, status="too-deep", error="nesting too deep",
                      findings=[too_deep(path, runtime, GO_TOML)])
    return Parsed(path, file, data=data, lines=toml_key_lines(text))


# -- JSON key lines ------------------------------------------------------------------------------

_JSON_WS = " \t\r\n"


def json_key_lines(text: str) -> dict[KeyPath, int]:
    """Line of every object key and array element of a JSON document (already known valid).

    Keys map to the line of the key; array elements to the line where the element starts.
    """
    lines: dict[KeyPath, int] = {}
    decoder = json.JSONDecoder()
    pos = 0
    n = len(text)
    line_starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            line_starts.append(i + 1)

    import bisect

    def line_of(p: int) -> int:
        return bisect.bisect_right(line_starts, p)

    def skip_ws(p: int) -> int:
        while p < n and text[p] in _JSON_WS:
            p += 1
        return p

    def value(p: int, path: KeyPath, depth: int) -> int:
        p = skip_ws(p)
        if depth > 200 or p >= n:
            return n
        ch = text[p]
        if ch == "{":
            p = skip_ws(p + 1)
            if p < n and text[p] == "}":
                return p + 1
            while p < n:
                p = skip_ws(p)
                key, end = json.decoder.scanstring(text, p + 1)
                lines.setdefault(path + (key,), line_of(p))
                p = skip_ws(end)
                p = skip_ws(p + 1)  # ':'
                p = value(p, path + (key,), depth + 1)
                p = skip_ws(p)
                if p < n and text[p] == ",":
                    p += 1
                    continue
                return p + 1
            return n
        if ch == "[":
            p = skip_ws(p + 1)
            if p < n and text[p] == "]":
                return p + 1
            i = 0
            while p < n:
                p = skip_ws(p)
                lines.setdefault(path + (i,), line_of(p))
                p = value(p, path + (i,), depth + 1)
                p = skip_ws(p)
                i += 1
                if p < n and text[p] == ",":
                    p += 1
                    continue
                return p + 1
            return n
        _, end = decoder.raw_decode(text, p)
        return end

    try:
        value(pos, (), 0)
    except (ValueError, IndexError):
        pass
    return lines


# -- TOML key lines ------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def split_dotted(s: str) -> list[str] | None:
    """Split a TOML dotted key (``a."b.c".d``) into parts; ``None`` if it is not a key."""
    parts: list[str] = []
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i] in " \t":
            i += 1
        if i >= n:
            break
        if s[i] in "\"'":
            q = s[i]
            j = i + 1
            buf = []
            while j < n and s[j] != q:
                if q == '"' and s[j] == "\\" and j + 1 < n:
                    buf.append(s[j + 1])
                    j += 2
                    continue
                buf.append(s[j])
                j += 1
            if j >= n:
                return None
            parts.append("".join(buf))
            i = j + 1
        else:
            m = _BARE_KEY.match(s, i)
            if not m:
                return None
            parts.append(m.group(0))
            i = m.end()
        while i < n and s[i] in " \t":
            i += 1
        if i < n:
            if s[i] != ".":
                return None
            i += 1
    return parts or None


def key_and_rest(line: str) -> tuple[str, str] | None:
    """Split ``key = value`` at the first ``=`` outside quotes."""
    q = None
    for i, ch in enumerate(line):
        if q:
            if ch == q:
                q = None
        elif ch in "\"'":
            q = ch
        elif ch == "=":
            return line[:i], line[i + 1:]
        elif ch == "#":
            return None
    return None


def _bracket_delta(s: str) -> tuple[int, str | None]:
    """Net ``[``/``{`` depth change over ``s`` outside strings and comments; and an opened ``\"\"\"``."""
    depth = 0
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if s.startswith('"""', i) or s.startswith("'''", i):
            delim = s[i:i + 3]
            end = s.find(delim, i + 3)
            if end == -1:
                return depth, delim
            i = end + 3
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and s[j] != ch:
                j += 2 if (ch == '"' and s[j] == "\\") else 1
            i = j + 1
            continue
        if ch == "#":
            break
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        i += 1
    return depth, None


def _resolve_aot(parts: list[str], aot_counts: dict[tuple[Any, ...], int]) -> list[Any]:
    """Insert the current index after each prefix that names an array of tables."""
    resolved: list[Any] = []
    for part in parts:
        resolved.append(part)
        idx = aot_counts.get(tuple(resolved))
        if idx is not None:
            resolved.append(idx)
    return resolved


def toml_key_lines(text: str) -> dict[KeyPath, int]:
    """Line of each table header and key in a TOML document (valid per tomllib).

    Array-of-tables entries are indexed: ``[[registry]]`` twice gives ``("registry", 0)`` and
    ``("registry", 1)``. Keys inside inline tables and multi-line values map to the line of
    the key that opens them.
    """
    lines: dict[KeyPath, int] = {}
    table: list[Any] = []
    aot_counts: dict[tuple[Any, ...], int] = {}
    depth = 0
    open_string: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        if open_string:
            if open_string in raw:
                open_string = None
            continue
        if depth > 0:
            d, open_string = _bracket_delta(raw)
            depth = max(0, depth + d)
            continue
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("[["):
            end = s.find("]]")
            parts = split_dotted(s[2:end]) if end != -1 else None
            if parts:
                parent = _resolve_aot(parts[:-1], aot_counts)
                key = tuple(parent + [parts[-1]])
                idx = aot_counts.get(key, -1) + 1
                aot_counts[key] = idx
                table = list(key) + [idx]
                lines.setdefault(key, lineno)
                lines[tuple(table)] = lineno
            continue
        if s.startswith("["):
            end = s.find("]")
            parts = split_dotted(s[1:end]) if end != -1 else None
            if parts:
                table = _resolve_aot(parts, aot_counts)
                lines.setdefault(tuple(table), lineno)
            continue
        kv = key_and_rest(s)
        if not kv:
            continue
        parts = split_dotted(kv[0])
        if not parts:
            continue
        lines.setdefault(tuple(table + parts), lineno)
        d, open_string = _bracket_delta(kv[1])
        depth = max(0, d)
    return lines


def value_kind(value: Any) -> str:
    """A short type name for messages (``string``, ``list``...)."""
    return {str: "string", list: "list", dict: "table", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), type(value).__name__)


Reader = Callable[[Host, str, str | None], Parsed]
