"""A strict YAML *subset* reader that keeps the line of every key, for registries.yaml,
k3s config.yaml and kubelet config.yaml.

PyYAML is not a runtime dependency and drops line numbers anyway. The Go readers of these
files (k3s via rancher/wharfie, kubelet via sigs.k8s.io/yaml) use ``gopkg.in/yaml.v2``, so
scalars resolve the way yaml.v2 resolves them (``resolve.go``; see :mod:`regtui.config.yamlscan`,
which also scans the quoted and block scalars). This module parses the structure.

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

import re
from dataclasses import dataclass
from typing import Any

from regtui.config._source import GO_YAML, KeyPath, Parsed, parse_error, too_deep, unreadable_finding
from regtui.config.yamlscan import (
    LINE_BREAKS,
    MAX_DEPTH,
    TOO_DEEP,
    LineScanner,
    YAMLDocument,
    YAMLError,
    blank_or_comment,
    is_marker,
    resolve_plain,
)
from regtui.host import FileText, Host

__all__ = [
    "YAMLParsed",
    "loads",
    "loads_with_lines",
    "read_yaml",
    "parse_yaml_file",
]

_EXCERPT = 120
# Characters YAML does not allow anywhere in a stream (c-printable complement, BOM inside).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")
_FLOW_END = ",[]{}"


@dataclass
class YAMLParsed(Parsed):
    """:class:`~regtui.config._source.Parsed` for a YAML file, with the YAML-only provenance."""

    doc: YAMLDocument | None = None


# -- the parser -----------------------------------------------------------------------------------

class _Parser(LineScanner):
    """Recursive descent over lines; each node parser leaves ``self.pos`` at the next unread line."""

    # -- documents --------------------------------------------------------------------------

    def parse(self) -> YAMLDocument:
        for li, line in enumerate(self.lines):
            m = _FORBIDDEN.search(line)
            if m:
                raise self.error(f"control character U+{ord(m.group(0)):04X} is not allowed in YAML", li, m.start())
        i = 0
        while i < self.n and blank_or_comment(self.lines[i]) and not is_marker(self.lines[i]):
            i += 1
        if i < self.n and self.lines[i].startswith("%"):
            raise self.error("directives ('%YAML', '%TAG') are outside the supported YAML subset", i, 0)
        if i < self.n and self.lines[i][:3] == "---" and is_marker(self.lines[i]):
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
                if is_marker(line):
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

    # -- flow collections -------------------------------------------------------------------

    def flow_skip(self, li: int, ci: int, opened: tuple[int, int]) -> tuple[int, int]:
        """Skip blanks, line ends and comments inside a flow collection."""
        while True:
            if li >= self.n or is_marker(self.lines[li]):
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
            while nrow < self.n and not is_marker(self.lines[nrow]) and self.lines[nrow].strip(" \t") == "":
                nrow, breaks = nrow + 1, breaks + 1
            if nrow >= self.n or is_marker(self.lines[nrow]):
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
    lines = LINE_BREAKS.split(text)
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
    return parse_yaml_file(host.read(path), runtime, what=what, secret=secret)


def parse_yaml_file(file: FileText, runtime: str | None, *, what: str = "", secret: bool = False) -> YAMLParsed:
    """:func:`read_yaml` of a file already read: a caller can see it is missing without loading this module."""
    path = file.path
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
