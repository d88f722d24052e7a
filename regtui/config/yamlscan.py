"""The lexical half of the strict YAML *subset* reader (:mod:`regtui.config._yaml`): the document
types, yaml.v2 scalar resolution (``resolve.go``), and a line scanner with the quoted and block
scalars.

- ``true/false`` in three casings plus YAML 1.1's ``y/n``, ``yes/no``, ``on/off`` are booleans;
- ``~``, ``null``, ``Null``, ``NULL`` and an empty value are null;
- integers as Go's ``strconv.ParseInt(s, 0, 64)`` reads them after removing ``_`` (``0x1F``,
  ``0o17``, ``0b101``, a leading ``0`` means octal), then floats matching
  ``[-+]?[0-9]*\\.?[0-9]+([eE][-+][0-9]+)?`` and ``.inf``/``.nan``; timestamps stay strings.

Single- and double-quoted scalars (with escapes and line folding) and literal and folded block
scalars (chomping and indentation indicators) are scanned here; nothing raises anything but
:class:`YAMLError`.
"""


from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from regtui.config._source import KeyPath

__all__ = [
    "YAMLError",
    "YAMLDocument",
    "Duplicate",
    "LineScanner",
    "resolve_plain",
    "is_marker",
    "blank_or_comment",
    "LINE_BREAKS",
    "MAX_DEPTH",
    "TOO_DEEP",
]

#: Deepest nesting accepted; real configs stay below ten.
MAX_DEPTH = 100
#: The message of the :class:`YAMLError` for nesting deeper than :data:`MAX_DEPTH`.
TOO_DEEP = "nesting too deep"
# yaml.v2 (libyaml) line breaks: CRLF, CR, LF and the Unicode NEL, LS and PS.
LINE_BREAKS = re.compile(r"\r\n|\r|\n|\x85|\u2028|\u2029")
_GO_FLOAT = re.compile(r"^[-+]?[0-9]*\.?[0-9]+([eE][-+][0-9]+)?$")
_TIMESTAMP_START = re.compile(r"^[0-9]{4}-")
_RESOLVE_MAP: dict[str, Any] = {}
for _words, _value in (
    (("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    (("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    (("~", "null", "Null", "NULL"), None),
    ((".nan", ".NaN", ".NAN"), math.nan),
    ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    (("-.inf", "-.Inf", "-.INF"), -math.inf),
):
    for _w in _words:
        _RESOLVE_MAP[_w] = _value
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_UINT64_MAX = 2 ** 64 - 1
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
_SIMPLE_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0",
    "L": "\u2028", "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class YAMLError(ValueError):
    """The text is not YAML, or uses YAML outside the supported subset."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        """1-based line of the problem."""
        self.column = column
        """1-based column of the problem."""

    def __str__(self) -> str:
        return f"line {self.line} column {self.column}: {self.message}"


@dataclass(frozen=True)
class Duplicate:
    """A key given twice in one mapping: the later value wins."""

    path: KeyPath
    first_line: int
    line: int


@dataclass
class YAMLDocument:
    """A parsed document with the provenance the config readers need."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    """Line (1-based) of every mapping key and sequence item, by key path."""
    columns: dict[KeyPath, int] = field(default_factory=dict)
    """Column (1-based) of the same."""
    raw: dict[KeyPath, str] = field(default_factory=dict)
    """Source text of plain scalars that resolved to a non-string (``yes``, ``0777``): Go's
    yaml.v2 stores this text when the target field is a string."""
    key_raw: dict[KeyPath, str] = field(default_factory=dict)
    """Source text of mapping keys that resolved to a non-string."""
    duplicates: list[Duplicate] = field(default_factory=list)

# -- scalar resolution ----------------------------------------------------------------------------

def _go_parse_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)`` then ``ParseUint``: the integer, or ``None``."""
    sign, body = 1, text
    if body[:1] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not body:
        return None
    base = 10
    if body[0] == "0" and len(body) > 1:
        prefix = body[1].lower()
        if prefix in "xob":
            base = {"x": 16, "o": 8, "b": 2}[prefix]
            body = body[2:]
        else:
            base = 8
            body = body[1:]
    if not body or any(c not in _DIGITS[base] for c in body):
        return None
    value = sign * int(body, base)
    if _INT64[0] <= value <= _INT64[1] or (sign > 0 and value <= _UINT64_MAX and text[:1] != "+"):
        return value
    return None


def resolve_plain(text: str) -> Any:
    """The value yaml.v2 gives an untagged plain scalar (see the module docstring)."""
    if text == "":
        return None
    first = text[0]
    if first in "yYnNtTfFoO~" or first in "+-.0123456789":
        if text in _RESOLVE_MAP:
            return _RESOLVE_MAP[text]
    if first == ".":
        try:
            return float(text) if re.fullmatch(r"\.[0-9]+([eE][-+]?[0-9]+)?", text) else text
        except ValueError:
            return text
    if first in "+-0123456789":
        if _TIMESTAMP_START.match(text):
            return text
        plain = text.replace("_", "")
        value = _go_parse_int(plain)
        if value is not None:
            return value
        if _GO_FLOAT.match(plain):
            try:
                return float(plain)
            except ValueError:
                return text
    return text


# -- the line scanner ----------------------------------------------------------------------------------

def is_marker(line: str) -> bool:
    """``---`` or ``...`` at column 0, followed by a blank or the end of the line."""
    return line[:3] in ("---", "...") and (len(line) == 3 or line[3] in " \t")


def blank_or_comment(line: str) -> bool:
    stripped = line.strip(" \t")
    return stripped == "" or stripped.startswith("#")


class LineScanner:
    """Lines of one YAML text, with the helpers and scalar scanners the parser builds on."""

    def __init__(self, text: str) -> None:
        self.lines = LINE_BREAKS.split(text)
        # A final line break ends the last line; it does not start an empty one.
        self.final_break = len(self.lines) > 1 and self.lines[-1] == ""
        if self.final_break:
            self.lines.pop()
        self.n = len(self.lines)
        self.pos = 0
        self.doc = YAMLDocument(None)

    # -- helpers ----------------------------------------------------------------------------

    def error(self, message: str, li: int, ci: int) -> YAMLError:
        return YAMLError(message, li + 1, ci + 1)

    def next_content(self, i: int) -> int | None:
        """Index of the next line with content, or ``None`` at the end of the document."""
        while i < self.n:
            line = self.lines[i]
            if is_marker(line):
                return None
            if not blank_or_comment(line):
                return i
            i += 1
        return None

    def indent(self, i: int) -> int:
        line = self.lines[i]
        col = len(line) - len(line.lstrip(" "))
        if col < len(line) and line[col] == "\t":
            raise self.error("a tab character is used for indentation; YAML allows only spaces there", i, col)
        return col

    def is_seq_entry(self, i: int, col: int) -> bool:
        line = self.lines[i]
        return line[col:col + 1] == "-" and (col + 1 == len(line) or line[col + 1] in " \t")

    def record(self, path: KeyPath, li: int, ci: int) -> None:
        self.doc.lines[path] = li + 1
        self.doc.columns[path] = ci + 1

    def note_key(self, seen: dict[Any, int], path: KeyPath, li: int) -> None:
        """Record a key of one mapping; a repeat within the same mapping is a duplicate."""
        key = path[-1]
        if key in seen:
            self.doc.duplicates.append(Duplicate(path, seen[key], li + 1))
        seen[key] = li + 1

    def check_start(self, li: int, ci: int, flow: bool) -> None:
        """Refuse a node starting with a character outside the subset or not allowed to start a plain scalar."""
        line = self.lines[li]
        c = line[ci]
        nxt = line[ci + 1] if ci + 1 < len(line) else ""
        if c == "&":
            raise self.error("anchors ('&name') are outside the supported YAML subset", li, ci)
        if c == "*":
            raise self.error("aliases ('*name') are outside the supported YAML subset; a key or value starting "
                             "with '*' (such as the k3s wildcard mirror) must be quoted: \"*\"", li, ci)
        if c == "!":
            raise self.error("tags ('!tag') are outside the supported YAML subset; quote a value starting with '!'",
                             li, ci)
        if c == "?" and (nxt == "" or nxt in " \t"):
            raise self.error("complex mapping keys ('? ') are outside the supported YAML subset", li, ci)
        if c in "%@`":
            raise self.error(f"a plain value cannot start with {c!r}; quote it", li, ci)
        if c in ",]}|>":
            raise self.error(f"a plain key or value cannot start with {c!r}; quote it", li, ci)
        if c == ":" and (flow or nxt == "" or nxt in " \t"):
            raise self.error("a mapping entry without a key", li, ci)
        if c == "-" and (nxt == "" or nxt in " \t") and flow:
            raise self.error("a block sequence entry ('- ') is not allowed inside [ ] or { }", li, ci)

    @staticmethod
    def map_colon(line: str, col: int) -> int | None:
        """Index of the ``:`` that makes ``line[col:]`` a ``key: value`` entry, or ``None``."""
        i = col
        n = len(line)
        while i < n:
            c = line[i]
            if c == "#" and i > col and line[i - 1] in " \t":
                return None
            if c == ":" and (i + 1 == n or line[i + 1] in " \t"):
                return i
            i += 1
        return None

    def expect_line_end(self, li: int, ci: int, what: str) -> None:
        """Only blanks or a comment may follow a node on its last line."""
        line = self.lines[li]
        j = ci
        while j < len(line) and line[j] in " \t":
            j += 1
        if j >= len(line):
            return
        if line[j] == "#":  # yaml.v2 (libyaml) starts a comment here even without a blank before it
            return
        if line[j] == ":":
            raise self.error(f"{what} used as a mapping key is outside the supported YAML subset"
                             if what.startswith("a flow") else "mapping values are not allowed here", li, j)
        raise self.error(f"unexpected text after {what}", li, j)


    @staticmethod
    def cut_comment(text: str) -> tuple[str, bool]:
        """``text`` up to a `` #`` comment (right-stripped), and whether a comment was cut."""
        for i, c in enumerate(text):
            if c == "#" and i > 0 and text[i - 1] in " \t":
                return text[:i].rstrip(" \t"), True
        return text.rstrip(" \t"), False


    def block_scalar(self, li: int, ci: int, parent: int) -> str:
        """``|`` or ``>`` with optional chomping (``-``/``+``) and indentation (1-9) indicators."""
        line = self.lines[li]
        style = line[ci]
        chomp: str | None = None
        explicit: int | None = None
        j = ci + 1
        for _ in range(2):
            if j < len(line) and line[j] in "+-" and chomp is None:
                chomp = line[j]
                j += 1
            elif j < len(line) and line[j] in "123456789" and explicit is None:
                explicit = int(line[j])
                j += 1
        rest = line[j:]
        if rest.strip(" \t") and not (rest[:1] in " \t" and rest.strip(" \t").startswith("#")):
            raise self.error("expected a comment or the end of the line after the block scalar indicator", li, j)
        min_indent = max(parent + 1, 1)
        k = li + 1
        if explicit is not None:
            indent = min_indent + explicit - 1
        else:
            leading = 0
            indent = min_indent
            while k < self.n:
                lk = self.lines[k]
                if is_marker(lk):
                    break
                if lk.strip(" ") == "":
                    leading = max(leading, len(lk))
                    k += 1
                    continue
                indent = max(min_indent, leading, len(lk) - len(lk.lstrip(" ")))
                break
            k = li + 1
        content: list[str] = []
        empties_before: list[int] = []
        empties = 0
        last = li
        while k < self.n:
            lk = self.lines[k]
            if is_marker(lk):
                break
            spaces = len(lk) - len(lk.lstrip(" "))
            if lk.strip(" ") == "" and spaces <= indent:
                empties += 1
                k += 1
                continue
            if spaces < indent:
                break
            empties_before.append(empties)
            content.append(lk[indent:])
            empties = 0
            last = k
            k += 1
        trailing = empties
        self.pos = last + 1
        if not content:
            return "\n" * trailing if chomp == "+" else ""
        chunks: list[str] = ["\n" * empties_before[0]]
        for idx, text in enumerate(content):
            if idx:
                gap = empties_before[idx]
                prev = content[idx - 1]
                if style == ">" and prev[:1] not in (" ", "\t") and text[:1] not in (" ", "\t"):
                    chunks.append("\n" * gap if gap else " ")
                else:
                    chunks.append("\n" + "\n" * gap)
            chunks.append(text)
        if chomp != "-" and (last < self.n - 1 or self.final_break):
            chunks.append("\n")
        if chomp == "+":
            chunks.append("\n" * trailing)
        return "".join(chunks)

    # -- quoted scalars ---------------------------------------------------------------------

    def quoted(self, li: int, ci: int) -> tuple[str, int, int]:
        """A single- or double-quoted scalar starting at ``(li, ci)``: (value, end line, column after the quote)."""
        quote = self.lines[li][ci]
        buf: list[str] = []
        pending_ws = ""
        row, col = li, ci + 1
        while True:
            line = self.lines[row]
            escaped_break = False
            while col < len(line):
                ch = line[col]
                if ch in " \t":
                    pending_ws += ch
                    col += 1
                    continue
                if quote == "'" and ch == "'":
                    if line[col + 1:col + 2] == "'":
                        buf.append(pending_ws + "'")
                        pending_ws = ""
                        col += 2
                        continue
                    buf.append(pending_ws)
                    return "".join(buf), row, col + 1
                if quote == '"' and ch == '"':
                    buf.append(pending_ws)
                    return "".join(buf), row, col + 1
                if quote == '"' and ch == "\\":
                    buf.append(pending_ws)
                    pending_ws = ""
                    if col + 1 >= len(line):
                        escaped_break = True
                        col = len(line)
                        break
                    esc = line[col + 1]
                    if esc in _SIMPLE_ESCAPES:
                        buf.append(_SIMPLE_ESCAPES[esc])
                        col += 2
                        continue
                    if esc in _HEX_ESCAPES:
                        width = _HEX_ESCAPES[esc]
                        digits = line[col + 2:col + 2 + width]
                        if len(digits) != width or any(d not in _DIGITS[16] for d in digits):
                            raise self.error(f"invalid escape '\\{esc}{digits}': expected {width} hex digits", row, col)
                        code = int(digits, 16)
                        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                            raise self.error(f"invalid escape '\\{esc}{digits}': not a Unicode character", row, col)
                        buf.append(chr(code))
                        col += 2 + width
                        continue
                    raise self.error(f"invalid escape sequence '\\{esc}' in a double-quoted value", row, col)
                buf.append(pending_ws + ch)
                pending_ws = ""
                col += 1
            # End of the line inside the quotes: fold it.
            pending_ws = ""
            row += 1
            breaks = 0
            while row < self.n:
                nxt = self.lines[row]
                if is_marker(nxt):
                    raise self.error("a document marker inside a quoted value (missing closing quote?)", row, 0)
                if nxt.strip(" \t") == "":
                    breaks += 1
                    row += 1
                    continue
                break
            if row >= self.n:
                raise self.error(f"unterminated quoted value: no closing {quote}", li, ci)
            if escaped_break:
                buf.append("\n" * breaks)
            else:
                buf.append("\n" * breaks if breaks else " ")
            nxt = self.lines[row]
            col = len(nxt) - len(nxt.lstrip(" \t"))
