"""A strict YAML *subset* reader that keeps the line of every key, for registries.yaml,
k3s config.yaml and kubelet config.yaml.

PyYAML is not a runtime dependency and drops line numbers anyway. The Go readers of these
files (k3s via rancher/wharfie, kubelet via sigs.k8s.io/yaml) use ``gopkg.in/yaml.v2``, so
scalars resolve the way yaml.v2 resolves them (``resolve.go``):

- ``true/false`` in three casings plus YAML 1.1's ``y/n``, ``yes/no``, ``on/off`` are booleans;
- ``~``, ``null``, ``Null``, ``NULL`` and an empty value are null;
- integers as Go's ``strconv.ParseInt(s, 0, 64)`` reads them after removing ``_`` (``0x1F``,
  ``0o17``, ``0b101``, a leading ``0`` means octal), then floats matching
  ``[-+]?[0-9]*\\.?[0-9]+([eE][-+][0-9]+)?`` and ``.inf``/``.nan``; timestamps stay strings.

Supported: block mappings and sequences (``- key: value`` items, a sequence at the same
indent as its parent key), flow sequences and mappings (``[a, "b"]``, ``{a: b}``), plain,
single- and double-quoted scalars (with escapes and line folding), literal and folded block
scalars with chomping and indentation indicators, comments, ``---`` and ``...``. Only the first
document is read, as yaml.v2's ``Unmarshal`` does.

Outside the subset, and reported as a :class:`YAMLError` with line and column rather than
guessed at: anchors, aliases, tags, directives, complex (``?``) and flow keys, merge keys.
Tabs in indentation, bad indentation, unterminated quotes and control characters are errors
as they are for yaml.v2. Nothing in here raises anything but :class:`YAMLError`.

Duplicate keys are kept last-wins (yaml.v2 into a map) and listed in
:attr:`YAMLDocument.duplicates` so callers can say which earlier entry is ignored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from regtui.config._source import GO_YAML, KeyPath, Parsed, parse_error, too_deep, unreadable_finding
from regtui.host import Host

__all__ = [
    "YAMLError",
    "YAMLDocument",
    "YAMLParsed",
    "Duplicate",
    "loads",
    "loads_with_lines",
    "resolve_plain",
    "read_yaml",
]

#: Deepest nesting accepted; real configs stay below ten.
MAX_DEPTH = 100
#: The message of the :class:`YAMLError` for nesting deeper than :data:`MAX_DEPTH`.
TOO_DEEP = "nesting too deep"
_EXCERPT = 120
# yaml.v2 (libyaml) line breaks: CRLF, CR, LF and the Unicode NEL, LS and PS.
_BREAKS = re.compile(r"\r\n|\r|\n|\x85|\u2028|\u2029")
# Characters YAML does not allow anywhere in a stream (c-printable complement, BOM inside).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")
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
_FLOW_END = ",[]{}"


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


@dataclass
class YAMLParsed(Parsed):
    """:class:`~regtui.config._source.Parsed` for a YAML file, with the YAML-only provenance."""

    doc: YAMLDocument | None = None


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


# -- the parser -----------------------------------------------------------------------------------

def _is_marker(line: str) -> bool:
    """``---`` or ``...`` at column 0, followed by a blank or the end of the line."""
    return line[:3] in ("---", "...") and (len(line) == 3 or line[3] in " \t")


def _blank_or_comment(line: str) -> bool:
    stripped = line.strip(" \t")
    return stripped == "" or stripped.startswith("#")


class _Parser:
    """Recursive descent over lines; each node parser leaves ``self.pos`` at the next unread line."""

    def __init__(self, text: str) -> None:
        self.lines = _BREAKS.split(text)
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
            if _is_marker(line):
                return None
            if not _blank_or_comment(line):
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

    # -- documents --------------------------------------------------------------------------

    def parse(self) -> YAMLDocument:
        for li, line in enumerate(self.lines):
            m = _FORBIDDEN.search(line)
            if m:
                raise self.error(f"control character U+{ord(m.group(0)):04X} is not allowed in YAML", li, m.start())
        i = 0
        while i < self.n and _blank_or_comment(self.lines[i]) and not _is_marker(self.lines[i]):
            i += 1
        if i < self.n and self.lines[i].startswith("%"):
            raise self.error("directives ('%YAML', '%TAG') are outside the supported YAML subset", i, 0)
        if i < self.n and self.lines[i][:3] == "---" and _is_marker(self.lines[i]):
            rest = self.lines[i][3:]
            if rest.strip(" \t") and not rest.strip(" \t").startswith("#"):
                self.lines[i] = "   " + rest  # content on the '---' line starts the root node
            else:
                i += 1
        start = self.next_content(i)
        if start is None:
            return self.doc
        self.doc.data = self.node(start, self.indent(start), -1, (), 0)
        rest = self.next_content(self.pos)
        if rest is not None:
            raise self.error("unexpected content after the end of the document (check the indentation)",
                             rest, self.indent(rest))
        return self.doc

    # -- block nodes ------------------------------------------------------------------------

    def node(self, li: int, ci: int, parent: int, path: KeyPath, depth: int) -> Any:
        """The block node whose first character is at ``(li, ci)``; ``parent`` is the enclosing indent."""
        if depth > MAX_DEPTH:
            raise self.error(TOO_DEEP, li, ci)
        line = self.lines[li]
        c = line[ci]
        if self.is_seq_entry(li, ci):
            return self.block_seq(li, ci, path, depth)
        if c in "[{":
            value, end_li, end_ci = self.flow_node(li, ci, path, depth)
            self.expect_line_end(end_li, end_ci, "a flow collection")
            self.pos = end_li + 1
            return value
        if c in "|>":
            return self.block_scalar(li, ci, parent)
        if c in "\"'":
            value, end_li, end_ci = self.quoted(li, ci)
            j = end_ci
            while j < len(self.lines[end_li]) and self.lines[end_li][j] in " \t":
                j += 1
            after = self.lines[end_li]
            if j < len(after) and after[j] == ":" and (j + 1 == len(after) or after[j + 1] in " \t"):
                if end_li != li:
                    raise self.error("a mapping key must be on a single line", li, ci)
                return self.block_map(li, ci, path, depth)
            self.expect_line_end(end_li, end_ci, "a quoted value")
            self.pos = end_li + 1
            return value
        self.check_start(li, ci, flow=False)
        if self.map_colon(line, ci) is not None:
            return self.block_map(li, ci, path, depth)
        return self.plain_block(li, ci, parent, path)

    def map_key(self, li: int, m: int, path: KeyPath) -> tuple[Any, int]:
        """The key at ``(li, m)`` and the index just after its ``:``."""
        line = self.lines[li]
        c = line[m]
        if c in "\"'":
            key, end_li, end_ci = self.quoted(li, m)
            if end_li != li:
                raise self.error("a mapping key must be on a single line", li, m)
            j = end_ci
            while j < len(line) and line[j] in " \t":
                j += 1
            if j >= len(line) or line[j] != ":" or not (j + 1 == len(line) or line[j + 1] in " \t"):
                raise self.error("expected ':' after the quoted key", li, j)
            return key, j + 1
        if c in "[{":
            raise self.error("flow collections as mapping keys are outside the supported YAML subset", li, m)
        if self.is_seq_entry(li, m):
            raise self.error("expected a 'key: value' entry, found a sequence entry '-' (check the indentation)",
                             li, m)
        self.check_start(li, m, flow=False)
        colon = self.map_colon(line, m)
        if colon is None:
            raise self.error("expected a 'key: value' entry (check the indentation)", li, m)
        text = line[m:colon].rstrip(" \t")
        if text == "<<":
            raise self.error("merge keys ('<<') are outside the supported YAML subset", li, m)
        key = resolve_plain(text)
        if not isinstance(key, str):
            self.doc.key_raw[path + (key,)] = text
        return key, colon + 1

    def block_map(self, li: int, m: int, path: KeyPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        while True:
            key, after = self.map_key(li, m, path)
            kpath = path + (key,)
            self.note_key(seen, kpath, li)
            self.record(kpath, li, m)
            line = self.lines[li]
            j = after
            while j < len(line) and line[j] in " \t":
                j += 1
            if j >= len(line) or line[j] == "#":
                nxt = self.next_content(li + 1)
                if nxt is not None and self.indent(nxt) > m:
                    value = self.node(nxt, self.indent(nxt), m, kpath, depth + 1)
                elif nxt is not None and self.indent(nxt) == m and self.is_seq_entry(nxt, m):
                    value = self.block_seq(nxt, m, kpath, depth + 1)
                elif nxt is not None and self.indent(nxt) == m and self.lines[nxt][m] in "|>":
                    value = self.block_scalar(nxt, m, m)
                else:
                    value = None
                    self.pos = li + 1
            else:
                value = self.inline_value(li, j, m, kpath, depth + 1)
            if key in result:
                del result[key]
            result[key] = value
            nxt = self.next_content(self.pos)
            if nxt is None:
                return result
            ind = self.indent(nxt)
            if ind < m:
                return result
            if ind > m:
                raise self.error("bad indentation: this line is indented more than the mapping entry above it",
                                 nxt, ind)
            li = nxt

    def inline_value(self, li: int, ci: int, parent: int, path: KeyPath, depth: int) -> Any:
        """The value written on the key's own line after ``key: ``."""
        if depth > MAX_DEPTH:
            raise self.error(TOO_DEEP, li, ci)
        line = self.lines[li]
        c = line[ci]
        if c in "|>":
            return self.block_scalar(li, ci, parent)
        if c in "[{":
            value, end_li, end_ci = self.flow_node(li, ci, path, depth)
            self.expect_line_end(end_li, end_ci, "a flow collection")
            self.pos = end_li + 1
            return value
        if c in "\"'":
            value, end_li, end_ci = self.quoted(li, ci)
            self.expect_line_end(end_li, end_ci, "a quoted value")
            self.pos = end_li + 1
            return value
        if self.is_seq_entry(li, ci):
            raise self.error("a sequence entry ('- ') cannot start on the line of its key; move it to the next line",
                             li, ci)
        self.check_start(li, ci, flow=False)
        if self.map_colon(line, ci) is not None:
            raise self.error("mapping values are not allowed here (quote a value that contains ': ')",
                             li, self.map_colon(line, ci) or ci)
        return self.plain_block(li, ci, parent, path)

    def block_seq(self, li: int, n: int, path: KeyPath, depth: int) -> list[Any]:
        items: list[Any] = []
        while True:
            ipath = path + (len(items),)
            self.record(ipath, li, n)
            line = self.lines[li]
            k = n + 1
            while k < len(line) and line[k] in " \t":
                k += 1
            if k >= len(line) or line[k] == "#":
                nxt = self.next_content(li + 1)
                if nxt is not None and self.indent(nxt) > n:
                    value = self.node(nxt, self.indent(nxt), n, ipath, depth + 1)
                elif nxt is not None and self.indent(nxt) == n and self.lines[nxt][n] in "|>":
                    value = self.block_scalar(nxt, n, n)
                else:
                    value = None
                    self.pos = li + 1
            else:
                # Blank out the dash (and tabs after it) so the item reads as a node indented at k.
                self.lines[li] = line[:n] + " " * (k - n) + line[k:]
                value = self.node(li, k, n, ipath, depth + 1)
            items.append(value)
            nxt = self.next_content(self.pos)
            if nxt is None:
                return items
            ind = self.indent(nxt)
            if ind < n:
                return items
            if ind > n:
                raise self.error("bad indentation: this line is indented more than the sequence entry above it",
                                 nxt, ind)
            if not self.is_seq_entry(nxt, n):
                return items
            li = nxt

    @staticmethod
    def cut_comment(text: str) -> tuple[str, bool]:
        """``text`` up to a `` #`` comment (right-stripped), and whether a comment was cut."""
        for i, c in enumerate(text):
            if c == "#" and i > 0 and text[i - 1] in " \t":
                return text[:i].rstrip(" \t"), True
        return text.rstrip(" \t"), False

    def plain_block(self, li: int, ci: int, parent: int, path: KeyPath) -> Any:
        """A plain scalar in block context, folded over more-indented continuation lines."""
        first, commented = self.cut_comment(self.lines[li][ci:])
        parts = [first]
        self.pos = li + 1
        if not commented:
            breaks = 0
            j = li + 1
            while j < self.n:
                line = self.lines[j]
                if _is_marker(line):
                    break
                stripped = line.strip(" \t")
                if not stripped:
                    breaks += 1
                    j += 1
                    continue
                ind = len(line) - len(line.lstrip(" "))
                if ind <= parent or stripped.startswith("#"):
                    break
                start = len(line) - len(line.lstrip(" \t"))
                if self.map_colon(line, start) is not None:
                    raise self.error("mapping values are not allowed here (check the indentation, or quote the value)",
                                     j, self.map_colon(line, start) or start)
                text, commented = self.cut_comment(line[start:])
                parts.append("\n" * breaks if breaks else " ")
                parts.append(text)
                breaks = 0
                j += 1
                self.pos = j
                if commented:
                    break
        text = "".join(parts)
        value = resolve_plain(text)
        if not isinstance(value, str):
            self.doc.raw[path] = text
        return value

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
                if _is_marker(lk):
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
            if _is_marker(lk):
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
                if _is_marker(nxt):
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

    # -- flow collections -------------------------------------------------------------------

    def flow_skip(self, li: int, ci: int, opened: tuple[int, int]) -> tuple[int, int]:
        """Skip blanks, line ends and comments inside a flow collection."""
        while True:
            if li >= self.n or _is_marker(self.lines[li]):
                raise self.error("unterminated flow collection: missing ']' or '}'", *opened)
            line = self.lines[li]
            while ci < len(line) and line[ci] in " \t":
                ci += 1
            if ci >= len(line) or line[ci] == "#":
                li, ci = li + 1, 0
                continue
            return li, ci

    def flow_node(self, li: int, ci: int, path: KeyPath, depth: int,
                  opened: tuple[int, int] | None = None) -> tuple[Any, int, int]:
        if depth > MAX_DEPTH:
            raise self.error(TOO_DEEP, li, ci)
        opened = opened or (li, ci)
        li, ci = self.flow_skip(li, ci, opened)
        c = self.lines[li][ci]
        if c == "[":
            return self.flow_seq(li, ci, path, depth)
        if c == "{":
            return self.flow_map(li, ci, path, depth)
        if c in "\"'":
            return self.quoted(li, ci)
        self.check_start(li, ci, flow=True)
        return self.flow_plain(li, ci, path, opened)

    def flow_plain(self, li: int, ci: int, path: KeyPath, opened: tuple[int, int]) -> tuple[Any, int, int]:
        parts: list[str] = []
        row, col = li, ci
        while True:
            line = self.lines[row]
            start = col
            while col < len(line):
                ch = line[col]
                if ch in _FLOW_END:
                    break
                if ch == ":" and (col + 1 == len(line) or line[col + 1] in " \t" + _FLOW_END):
                    break
                if ch == "#" and col > start and line[col - 1] in " \t":
                    break
                col += 1
            parts.append(line[start:col].strip(" \t"))
            if col < len(line):
                break
            # The line ended: the scalar continues on the next line unless that starts an indicator.
            nrow, breaks = row + 1, 0
            while nrow < self.n and not _is_marker(self.lines[nrow]) and self.lines[nrow].strip(" \t") == "":
                nrow, breaks = nrow + 1, breaks + 1
            if nrow >= self.n or _is_marker(self.lines[nrow]):
                break
            nline = self.lines[nrow]
            ncol = len(nline) - len(nline.lstrip(" \t"))
            if nline[ncol] in _FLOW_END + ":#":
                break
            parts.append("\n" * breaks if breaks else " ")
            row, col = nrow, ncol
        text = "".join(parts)
        value = resolve_plain(text)
        if not isinstance(value, str):
            self.doc.raw[path] = text
        return value, row, col

    def flow_seq(self, li: int, ci: int, path: KeyPath, depth: int) -> tuple[list[Any], int, int]:
        opened = (li, ci)
        items: list[Any] = []
        ci += 1
        while True:
            li, ci = self.flow_skip(li, ci, opened)
            if self.lines[li][ci] == "]":
                return items, li, ci + 1
            ipath = path + (len(items),)
            self.record(ipath, li, ci)
            item_li, item_ci = li, ci
            value, li, ci = self.flow_node(li, ci, ipath, depth + 1, opened)
            li, ci = self.flow_skip(li, ci, opened)
            line = self.lines[li]
            if line[ci] == ":":
                if li != item_li:
                    raise self.error("a mapping key and its ':' must be on the same line", item_li, item_ci)
                # A single-pair mapping inside a sequence: [key: value].
                if isinstance(value, (list, dict)):
                    raise self.error("flow collections as mapping keys are outside the supported YAML subset", li, ci)
                li, ci = self.flow_skip(li, ci + 1, opened)
                if self.lines[li][ci] in ",]":
                    value = {value: None}
                else:
                    inner, li, ci = self.flow_node(li, ci, ipath + (value,), depth + 1, opened)
                    value = {value: inner}
                li, ci = self.flow_skip(li, ci, opened)
                line = self.lines[li]
            items.append(value)
            if line[ci] == ",":
                ci += 1
                continue
            if line[ci] == "]":
                return items, li, ci + 1
            raise self.error("expected ',' or ']' in a flow sequence", li, ci)

    def flow_map(self, li: int, ci: int, path: KeyPath, depth: int) -> tuple[dict[Any, Any], int, int]:
        opened = (li, ci)
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        ci += 1
        while True:
            li, ci = self.flow_skip(li, ci, opened)
            if self.lines[li][ci] == "}":
                return result, li, ci + 1
            key_li, key_ci = li, ci
            c = self.lines[li][ci]
            if c in "[{":
                raise self.error("flow collections as mapping keys are outside the supported YAML subset", li, ci)
            if c == "?" and self.lines[li][ci + 1:ci + 2] in ("", " ", "\t"):
                raise self.error("complex mapping keys ('? ') are outside the supported YAML subset", li, ci)
            key, li, ci = self.flow_node(li, ci, path, depth + 1, opened)
            if li != key_li:
                raise self.error("a mapping key must be on a single line", key_li, key_ci)
            if not isinstance(key, str) and path + (key,) in self.doc.raw:
                self.doc.key_raw[path + (key,)] = self.doc.raw.pop(path + (key,))
            kpath = path + (key,)
            self.note_key(seen, kpath, key_li)
            self.record(kpath, key_li, key_ci)
            li, ci = self.flow_skip(li, ci, opened)
            value: Any = None
            if self.lines[li][ci] == ":":
                if li != key_li:
                    raise self.error("a mapping key and its ':' must be on the same line", key_li, key_ci)
                li, ci = self.flow_skip(li, ci + 1, opened)
                if self.lines[li][ci] not in ",}":
                    value, li, ci = self.flow_node(li, ci, kpath, depth + 1, opened)
                    li, ci = self.flow_skip(li, ci, opened)
            if key in result:
                del result[key]
            result[key] = value
            c = self.lines[li][ci]
            if c == ",":
                ci += 1
                continue
            if c == "}":
                return result, li, ci + 1
            raise self.error("expected ',' or '}' in a flow mapping", li, ci)


# -- public API -----------------------------------------------------------------------------------

def loads(text: str) -> YAMLDocument:
    """Parse the first document of ``text``; raises :class:`YAMLError` and nothing else."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return _Parser(text).parse()
    except YAMLError:
        raise
    except RecursionError:
        raise YAMLError(TOO_DEEP, 1, 1) from None
    except Exception as exc:  # a parser bug must still not become a traceback for the user
        raise YAMLError(f"cannot parse this YAML ({type(exc).__name__})", 1, 1) from None


def loads_with_lines(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """``(data, lines)`` of the first document: lines keyed by key path, like ``Parsed.lines``."""
    doc = loads(text)
    return doc.data, doc.lines


def _excerpt(text: str, line: int | None, secret: bool) -> str | None:
    if secret or not line:
        return None
    lines = _BREAKS.split(text)
    if 0 < line <= len(lines):
        return lines[line - 1][:_EXCERPT]
    return None


def _byte_position(data: bytes, error: str) -> tuple[int | None, int | None]:
    """(line, column) of the byte named in ``invalid UTF-8 at byte N``."""
    m = re.search(r"at byte (\d+)", error)
    if not m:
        return None, None
    offset = int(m.group(1)) + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
    before = data[:offset]
    return before.count(b"\n") + 1, offset - (before.rfind(b"\n") + 1) + 1


def read_yaml(host: Host, path: str, runtime: str | None, *, what: str = "", secret: bool = False) -> YAMLParsed:
    """Read a YAML file through ``host`` into a :class:`YAMLParsed`; problems become findings.

    ``secret`` files (registries.yaml holds passwords) never have their text quoted in evidence.
    An empty file parses to ``None``.
    """
    file = host.read(path)
    if file.status == "missing":
        return YAMLParsed(path, file, status="missing")
    if not file.ok:
        return YAMLParsed(path, file, status="unreadable", error=file.error,
                          findings=[unreadable_finding(file, runtime)])
    if file.decode_error:
        line, column = _byte_position(file.data, file.decode_error)
        return YAMLParsed(path, file, status="parse-error", error=file.decode_error,
                          findings=[parse_error(path, file.decode_error, line, column, runtime, what=what)])
    try:
        doc = loads(file.text)
    except YAMLError as exc:
        if exc.message == TOO_DEEP:
            # k3s and kubelet decode it (yaml.v2 allows 10000 levels); regtui does not follow it.
            return YAMLParsed(path, file, status="too-deep", error=exc.message,
                              findings=[too_deep(path, runtime, GO_YAML)])
        return YAMLParsed(path, file, status="parse-error", error=exc.message,
                          findings=[parse_error(path, exc.message, exc.line, exc.column, runtime,
                                                _excerpt(file.text, exc.line, secret), what)])
    return YAMLParsed(path, file, data=doc.data, lines=doc.lines, doc=doc)
