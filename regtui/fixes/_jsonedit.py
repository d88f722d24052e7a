"""Format-preserving JSON edits (daemon.json, config.json, auth.json).

The document is parsed into spans (where each key and value starts and ends), and every edit is a
splice of the original text: untouched members keep their bytes, key order is kept, new members
take the indentation, separator style and line breaks of their siblings (detected from the file:
two spaces, four, a tab, or one line), and the trailing newline stays as it was. After each edit
the result is parsed again, and :meth:`JsonDoc.text` is only returned when it parses to exactly
the intended data, so a splice can never corrupt a file silently.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from regtui.fixes._model import KeyPathLookup, PlanRefused

__all__ = ["JsonDoc", "Path_"]

Path_ = tuple[Any, ...]
_WS = " \t\r\n"


@dataclass
class _Node:
    start: int
    end: int
    kind: str
    """``object``, ``array`` or ``scalar``."""
    members: list["_Member"] = field(default_factory=list)
    items: list["_Node"] = field(default_factory=list)


@dataclass
class _Member:
    key: str
    key_start: int
    key_end: int
    value: _Node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.decoder = json.JSONDecoder()

    def ws(self, p: int) -> int:
        while p < self.n and self.text[p] in _WS:
            p += 1
        return p

    def value(self, p: int, depth: int = 0) -> _Node:
        if depth > 200:
            raise ValueError("nesting too deep")
        p = self.ws(p)
        ch = self.text[p]
        if ch == "{":
            node = _Node(p, p, "object")
            p = self.ws(p + 1)
            if self.text[p] == "}":
                node.end = p + 1
                return node
            while True:
                p = self.ws(p)
                key, end = json.decoder.scanstring(self.text, p + 1)
                q = self.ws(end)
                if self.text[q] != ":":
                    raise ValueError(f"':' expected at {q}")
                child = self.value(q + 1, depth + 1)
                node.members.append(_Member(key, p, end, child))
                p = self.ws(child.end)
                if self.text[p] == ",":
                    p += 1
                    continue
                if self.text[p] != "}":
                    raise ValueError(f"'}}' expected at {p}")
                node.end = p + 1
                return node
        if ch == "[":
            node = _Node(p, p, "array")
            p = self.ws(p + 1)
            if self.text[p] == "]":
                node.end = p + 1
                return node
            while True:
                child = self.value(p, depth + 1)
                node.items.append(child)
                p = self.ws(child.end)
                if self.text[p] == ",":
                    p += 1
                    continue
                if self.text[p] != "]":
                    raise ValueError(f"']' expected at {p}")
                node.end = p + 1
                return node
        _, end = self.decoder.raw_decode(self.text, p)
        return _Node(p, end, "scalar")


def _get(data: Any, path: Path_) -> Any:
    for k in path:
        data = data[k]
    return data


class JsonDoc(KeyPathLookup):
    """One JSON document being edited; ``data`` is what the edited text parses to."""

    def __init__(self, text: str) -> None:
        self._text = text
        if not text.strip():
            self._text = "{}\n" if not text else text.rstrip() + "{}\n"
        try:
            self.data = json.loads(self._text)
        except RecursionError:
            raise PlanRefused("the file nests deeper than regtui edits; edit it by hand") from None
        except ValueError as exc:
            raise PlanRefused(f"the file is not valid JSON ({exc}); correct it first") from None
        try:
            self._root = _Parser(self._text).value(0)
        except ValueError as exc:  # valid JSON nested deeper than the span parser follows
            raise PlanRefused(f"the file cannot be edited safely ({exc}); edit it by hand") from None
        self._indent, self._colon, self._multiline = self._style()

    # -- style ------------------------------------------------------------------------------

    def _style(self) -> tuple[str, str, bool]:
        """(indent unit, key/value separator, members on their own lines)."""
        root = self._root
        colon = ": "
        for node, _ in self._walk(root, 0):
            if node.members:
                m = node.members[0]
                between = self._text[m.key_end:m.value.start]
                if "\n" not in between and between.strip() == ":":
                    colon = between
                break
        unit = self._indent_of_depth1(root) or "  "
        one_line = root.kind == "object" and bool(root.members) and "\n" not in self._text[root.start:root.end]
        return unit, colon, not one_line

    def _walk(self, node: _Node, depth: int):  # type: ignore[no-untyped-def]
        yield node, depth
        for m in node.members:
            yield from self._walk(m.value, depth + 1)
        for it in node.items:
            yield from self._walk(it, depth + 1)

    def _indent_of_depth1(self, root: _Node) -> str | None:
        starts = [m.key_start for m in root.members] + [it.start for it in root.items]
        for s in starts:
            line_start = self._text.rfind("\n", 0, s) + 1
            lead = self._text[line_start:s]
            if line_start > 0 and lead and not lead.strip(" \t"):
                return lead
        return None

    def _line_indent(self, pos: int) -> str:
        line_start = self._text.rfind("\n", 0, pos) + 1
        lead = self._text[line_start:pos]
        return lead[: len(lead) - len(lead.lstrip(" \t"))]

    # -- navigation -------------------------------------------------------------------------

    def _node(self, path: Path_) -> _Node:
        node = self._root
        for k in path:
            if node.kind == "object" and isinstance(k, str):
                found = [m for m in node.members if m.key == k]
                if not found:
                    raise KeyError(k)
                node = found[-1].value  # the last duplicate wins, as in Go and Python
            elif node.kind == "array" and isinstance(k, int) and 0 <= k < len(node.items):
                node = node.items[k]
            else:
                raise KeyError(k)
        return node

    def has(self, path: Path_) -> bool:
        """A value exists at ``path``."""
        try:
            self._node(tuple(path))
            return True
        except KeyError:
            return False

    def value_text(self, path: Path_) -> str:
        """The original text of the value at ``path``."""
        node = self._node(tuple(path))
        return self._text[node.start:node.end]

    # -- rendering --------------------------------------------------------------------------

    def _render(self, value: Any, level: int, inline: bool) -> str:
        if inline or not isinstance(value, (dict, list)) or not value:
            return json.dumps(value, ensure_ascii=False, separators=(", ", self._colon))
        dumped = json.dumps(value, ensure_ascii=False, indent=self._indent, separators=(",", self._colon))
        base = self._indent * level
        return dumped.replace("\n", "\n" + base)

    # -- edits ------------------------------------------------------------------------------

    def _splice(self, start: int, end: int, new: str, expect: Any) -> None:
        text = self._text[:start] + new + self._text[end:]
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise PlanRefused(f"internal: the JSON edit did not parse ({exc}); nothing planned") from None
        if parsed != expect:
            raise PlanRefused("internal: the JSON edit did not give the intended data; nothing planned")
        self._text = text
        self.data = parsed
        self._root = _Parser(text).value(0)

    def set(self, path: Path_, value: Any) -> None:
        """Set the value at ``path``, creating missing objects on the way (new keys go last)."""
        path = tuple(path)
        expect = copy.deepcopy(self.data)
        _set_plain(expect, path, value)
        if self.has(path):
            node = self._node(path)
            if self.get(path) == value:
                return
            old = self._text[node.start:node.end]
            inline = "\n" not in old
            level = len(self._line_indent(node.start)) // max(1, len(self._indent)) if self._indent else 0
            self._splice(node.start, node.end, self._render(value, level, inline), expect)
            return
        # find the deepest existing object on the path
        i = len(path) - 1
        while i > 0 and not self.has(path[:i]):
            i -= 1
        parent_path, rest = path[:i], path[i:]
        parent = self._node(parent_path)
        if parent.kind != "object":
            raise PlanRefused(f"{'.'.join(map(str, parent_path)) or 'the document'} is not an object")
        nested: Any = value
        for k in reversed(rest[1:]):
            nested = {k: nested}
        self._insert_member(parent, parent_path, rest[0], nested, expect)

    def _insert_member(self, obj: _Node, obj_path: Path_, key: str, value: Any, expect: Any) -> None:
        key_text = json.dumps(key, ensure_ascii=False)
        if obj.members:
            last = obj.members[-1]
            sep = self._text[self._prev_token_end(last.key_start):last.key_start] or " "
            inline = "\n" not in sep
            level = len(self._line_indent(last.key_start)) // max(1, len(self._indent)) if not inline else 0
            member = key_text + self._colon + self._render(value, level, inline)
            self._splice(last.value.end, last.value.end, "," + sep + member, expect)
            return
        if self._multiline:
            base = self._line_indent(obj.start)
            ind = base + self._indent
            level = len(ind) // max(1, len(self._indent))
            body = "{\n" + ind + key_text + self._colon + self._render(value, level, False) + "\n" + base + "}"
        else:
            body = "{" + key_text + self._colon + self._render(value, 0, True) + "}"
        self._splice(obj.start, obj.end, body, expect)

    def _prev_token_end(self, pos: int) -> int:
        p = pos
        while p > 0 and self._text[p - 1] in _WS:
            p -= 1
        return p

    def delete(self, path: Path_) -> None:
        """Remove the member or array element at ``path`` (and its separator)."""
        path = tuple(path)
        if not self.has(path):
            return
        expect = copy.deepcopy(self.data)
        del _get(expect, path[:-1])[path[-1]]
        parent = self._node(path[:-1])
        spans: list[tuple[int, int]]
        if parent.kind == "object":
            spans = [(m.key_start, m.value.end) for m in parent.members]
            index = max(i for i, m in enumerate(parent.members) if m.key == path[-1])
            dupes = [i for i, m in enumerate(parent.members) if m.key == path[-1] and i != index]
            if dupes:
                raise PlanRefused(f"{path[-1]!r} appears more than once in its object; correct it by hand")
        else:
            spans = [(it.start, it.end) for it in parent.items]
            index = int(path[-1])
        self._remove_span(parent, spans, index, expect)

    def _remove_span(self, parent: _Node, spans: list[tuple[int, int]], index: int, expect: Any) -> None:
        start, end = spans[index]
        if len(spans) == 1:
            open_ch, close_ch = self._text[parent.start], self._text[parent.end - 1]
            self._splice(parent.start, parent.end, open_ch + close_ch, expect)
        elif index < len(spans) - 1:
            self._splice(start, spans[index + 1][0], "", expect)
        else:
            self._splice(spans[index - 1][1], end, "", expect)

    def rename(self, path: Path_, new_key: str) -> None:
        """Rename the key at ``path`` in place (its value and position unchanged)."""
        path = tuple(path)
        parent = self._node(path[:-1])
        members = [m for m in parent.members if m.key == path[-1]]
        if len(members) != 1:
            raise PlanRefused(f"{path[-1]!r} is missing or appears more than once; correct it by hand")
        if any(m.key == new_key for m in parent.members):
            raise PlanRefused(f"{new_key!r} is already set next to {path[-1]!r}; keep one of them by hand")
        expect = copy.deepcopy(self.data)
        holder = _get(expect, path[:-1])
        rebuilt = {(new_key if k == path[-1] else k): v for k, v in holder.items()}
        holder.clear()
        holder.update(rebuilt)
        m = members[0]
        self._splice(m.key_start, m.key_end, json.dumps(new_key, ensure_ascii=False), expect)

    def append(self, path: Path_, value: Any) -> None:
        """Append ``value`` to the list at ``path`` (created when missing)."""
        path = tuple(path)
        current = self.get(path)
        if current is None:
            self.set(path, [value])
            return
        if not isinstance(current, list):
            raise PlanRefused(f"{'.'.join(map(str, path))} is not a list")
        node = self._node(path)
        expect = copy.deepcopy(self.data)
        _get(expect, path).append(value)
        if node.items:
            last = node.items[-1]
            sep = self._text[self._prev_token_end(last.start):last.start] or " "
            level = len(self._line_indent(last.start)) // max(1, len(self._indent)) if "\n" in sep else 0
            self._splice(last.end, last.end, "," + sep + self._render(value, level, "\n" not in sep), expect)
        else:
            self._splice(node.start, node.end, "[" + self._render(value, 0, True) + "]", expect)

    def text(self) -> str:
        """The edited document."""
        return self._text


def _set_plain(data: Any, path: Path_, value: Any) -> None:
    for k in path[:-1]:
        if isinstance(data, dict):
            data = data.setdefault(k, {})
        else:
            data = data[k]
    data[path[-1]] = value
