"""Minimal line edits of YAML (k3s/RKE2 ``registries.yaml``).

No YAML library is a runtime dependency, and a library that re-emits the document would lose
comments, quoting and key order anyway; the edits the fix catalogue needs (set a scalar under a
mapping, create the mappings on the way, remove or replace one block-sequence item, copy a mapping
block under another key) are line operations on block-style YAML. Lines are located with
:mod:`regtui.config._yaml`, the same reader the checks use, and every result is parsed again by
it and must give exactly the intended data, else nothing is planned. Flow collections
(``[a, b]``) are refused rather than rewritten.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from regtui.config import _yaml, yamlscan
from regtui.fixes._model import KeyPathLookup, PlanRefused

__all__ = ["YamlDoc", "yaml_scalar", "yaml_key"]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$")


def yaml_scalar(value: Any) -> str:
    """A YAML scalar that yaml.v2 reads back as ``value`` (strings double-quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise PlanRefused(f"internal: cannot write {type(value).__name__} as a YAML scalar")


def yaml_key(key: str) -> str:
    """A mapping key, quoted unless it is plainly safe (``docker.io`` stays bare, ``"*"`` and ``reg:5000`` quoted)."""
    resolved = yamlscan.resolve_plain(key) if _PLAIN_KEY.match(key) else None
    return key if _PLAIN_KEY.match(key) and resolved == key else json.dumps(key, ensure_ascii=False)


def _key_end(body: str) -> int | None:
    """Index of the ``:`` ending the mapping key at the start of ``body`` (quotes respected)."""
    if body[:1] in "\"'":
        q = body[0]
        i = 1
        while i < len(body):
            if body[i] == "\\" and q == '"':
                i += 2
                continue
            if body[i] == q:
                return i + 1 if body[i + 1:i + 2] == ":" else None
            i += 1
        return None
    for i, ch in enumerate(body):
        if ch == ":" and (i + 1 == len(body) or body[i + 1] in " \n"):
            return i
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


class YamlDoc(KeyPathLookup):
    """A YAML document being edited; ``data`` is what the edited text parses to."""

    def __init__(self, text: str) -> None:
        self._text = text
        if self._text and not self._text.endswith("\n"):
            self._text += "\n"
        self._load()

    def _load(self) -> None:
        try:
            doc = _yaml.loads(self._text)
        except yamlscan.YAMLError as exc:
            raise PlanRefused(f"the file is not YAML regtui can edit ({exc}); edit it by hand") from None
        self.data = doc.data if doc.data is not None else {}
        self.lines_of = doc.lines
        if not isinstance(self.data, dict):
            raise PlanRefused("the document is not a mapping; edit it by hand")

    def text(self) -> str:
        """The edited document."""
        return self._text

    # -- layout -----------------------------------------------------------------------------

    def _lines(self) -> list[str]:
        return self._text.splitlines(keepends=True)

    def _unit(self) -> int:
        """The file's indentation step (2 when it cannot tell)."""
        lines = self._lines()
        steps = []
        for key, n in self.lines_of.items():
            parent = self.lines_of.get(key[:-1]) if len(key) > 1 else None
            if parent and not isinstance(key[-1], int):
                d = _indent(lines[n - 1]) - _indent(lines[parent - 1])
                if d > 0:
                    steps.append(d)
        return min(steps) if steps else 2

    def _block_end(self, line_no: int) -> int:
        """Index after the last line belonging to the node whose key is on ``line_no`` (1-based)."""
        lines = self._lines()
        key_line = lines[line_no - 1]
        base = _indent(key_line)
        is_item = key_line.lstrip().startswith("- ")
        end = line_no
        for i in range(line_no, len(lines)):
            s = lines[i].strip()
            if not s or s.startswith("#"):
                continue
            ind = _indent(lines[i])
            if ind > base or (ind == base and not is_item and lines[i].lstrip().startswith("- ")):
                end = i + 1
                continue
            break
        return end

    def _commit(self, text: str, expect: Any) -> None:
        old = self._text
        self._text = text
        try:
            self._load()
        except PlanRefused:
            self._text = old
            self._load()
            raise PlanRefused("internal: the YAML edit does not parse; nothing planned") from None
        if self.data != expect:
            self._text = old
            self._load()
            raise PlanRefused("internal: the YAML edit did not give the intended data; nothing planned")

    def _check_block(self, path: tuple[Any, ...]) -> int:
        """Line (1-based) of the key at ``path``; refuses flow-style values."""
        line = self.lines_of.get(tuple(path))
        if line is None:
            raise PlanRefused(f"{'.'.join(map(str, path))} has no line of its own; edit it by hand")
        text = self._lines()[line - 1]
        after = text.split(":", 1)[1].strip() if ":" in text and not text.lstrip().startswith("- ") else ""
        if after.startswith(("[", "{")) and isinstance(self.get(path), (list, dict)) and self.get(path):
            raise PlanRefused(f"{'.'.join(map(str, path))} is written in flow style; edit it by hand")
        return line

    # -- edits ------------------------------------------------------------------------------

    def set(self, path: tuple[Any, ...], value: Any) -> None:
        """Set a scalar at ``path``, creating missing mappings (new keys go after their siblings)."""
        path = tuple(path)
        expect = copy.deepcopy(self.data)
        holder = expect
        for k in path[:-1]:
            if not isinstance(holder.get(k), dict):
                if k in holder and holder[k] is not None:
                    raise PlanRefused(f"{k} is not a mapping; edit it by hand")
                holder[k] = {}
            holder = holder[k]
        holder[path[-1]] = value
        lines = self._lines()
        unit = self._unit()
        if self.has(path):
            line = self._check_block(path)
            raw = lines[line - 1]
            if isinstance(self.get(path), (dict, list)):
                raise PlanRefused(f"{'.'.join(map(str, path))} is not a scalar; edit it by hand")
            head = raw[: raw.index(":", len(raw) - len(raw.lstrip())) + 1] if ":" in raw else raw
            comment = ""
            m = re.search(r"\s+#.*$", raw.rstrip("\n"))
            if m and '"' not in raw[m.start():] and "'" not in raw[m.start():]:
                comment = m.group(0)
            lines[line - 1] = f"{head} {yaml_scalar(value)}{comment}\n"
            self._commit("".join(lines), expect)
            return
        i = len(path) - 1
        while i > 0 and not self.has(path[:i]):
            i -= 1
        existing, missing = path[:i], path[i:]
        if existing:
            parent_line = self._check_block(existing)
            if self.get(existing) is not None and not isinstance(self.get(existing), dict):
                raise PlanRefused(f"{'.'.join(map(str, existing))} is not a mapping; edit it by hand")
            children = [n for k, n in self.lines_of.items() if len(k) == len(existing) + 1 and k[:-1] == existing]
            if children:
                child_indent = _indent(lines[min(children) - 1])
            else:
                child_indent = _indent(lines[parent_line - 1]) + unit
            if self.get(existing) is None and lines[parent_line - 1].split(":", 1)[1].strip() not in ("", "~", "null"):
                raise PlanRefused(f"{'.'.join(map(str, existing))} has an inline value; edit it by hand")
            insert_at = self._block_end(parent_line)
        else:
            child_indent = 0
            insert_at = len(lines)
            while insert_at > 0 and (not lines[insert_at - 1].strip() or lines[insert_at - 1].strip() in ("---", "...")):
                if lines[insert_at - 1].strip() == "...":
                    raise PlanRefused("the document ends with '...'; edit it by hand")
                insert_at -= 1
        new: list[str] = []
        for n, k in enumerate(missing):
            pad = " " * (child_indent + n * unit)
            if n == len(missing) - 1:
                new.append(f"{pad}{yaml_key(str(k))}: {yaml_scalar(value)}\n")
            else:
                new.append(f"{pad}{yaml_key(str(k))}:\n")
        lines[insert_at:insert_at] = new
        self._commit("".join(lines), expect)

    def rename_key(self, path: tuple[Any, ...], new_key: str) -> None:
        """Rename a mapping key on its own line (value, children and position unchanged)."""
        path = tuple(path)
        line = self.lines_of.get(path)
        require_key = self.get(path[:-1])
        if line is None or not isinstance(require_key, dict):
            raise PlanRefused(f"{'.'.join(map(str, path))} is not a key on a line of its own; edit it by hand")
        if new_key in require_key:
            raise PlanRefused(f"{new_key!r} is already set next to {path[-1]!r}; keep one of them by hand")
        lines = self._lines()
        raw = lines[line - 1]
        body = raw.lstrip(" ")
        lead = raw[: len(raw) - len(body)]
        dash = ""
        if body.startswith("- "):
            dash, body = "- ", body[2:]
        colon = _key_end(body)
        if colon is None:
            raise PlanRefused(f"cannot find the key on line {line}; edit it by hand")
        lines[line - 1] = f"{lead}{dash}{yaml_key(new_key)}{body[colon:]}"
        expect = copy.deepcopy(self.data)
        holder = self._get_mut(expect, path[:-1])
        items = list(holder.items())
        holder.clear()
        holder.update({(new_key if k == path[-1] else k): v for k, v in items})
        self._commit("".join(lines), expect)

    def remove_item(self, path: tuple[Any, ...], index: int) -> None:
        """Remove item ``index`` of the block sequence at ``path`` (a one-line scalar item)."""
        path = tuple(path)
        seq = self.get(path)
        if not isinstance(seq, list) or not 0 <= index < len(seq):
            raise PlanRefused(f"{'.'.join(map(str, path))}[{index}] does not exist")
        self._check_block(path)
        line = self.lines_of.get(path + (index,))
        lines = self._lines()
        if line is None or not lines[line - 1].lstrip().startswith("-"):
            raise PlanRefused(f"{'.'.join(map(str, path))} is not a block sequence; edit it by hand")
        expect = copy.deepcopy(self.data)
        del self._get_mut(expect, path)[index]
        if len(seq) == 1:
            raise PlanRefused(f"removing the only entry of {'.'.join(map(str, path))} would change its meaning; "
                              "edit it by hand")
        end = line
        while end < len(lines) and lines[end].strip() and _indent(lines[end]) > _indent(lines[line - 1]) \
                and not lines[end].lstrip().startswith("- "):
            end += 1
        del lines[line - 1:end]
        self._commit("".join(lines), expect)

    def replace_item(self, path: tuple[Any, ...], index: int, value: Any) -> None:
        """Replace item ``index`` (a one-line scalar) of the block sequence at ``path``."""
        path = tuple(path)
        seq = self.get(path)
        if not isinstance(seq, list) or not 0 <= index < len(seq) or isinstance(seq[index], (dict, list)):
            raise PlanRefused(f"{'.'.join(map(str, path))}[{index}] is not a scalar item")
        self._check_block(path)
        line = self.lines_of.get(path + (index,))
        lines = self._lines()
        if line is None or not lines[line - 1].lstrip().startswith("-"):
            raise PlanRefused(f"{'.'.join(map(str, path))} is not a block sequence; edit it by hand")
        expect = copy.deepcopy(self.data)
        self._get_mut(expect, path)[index] = value
        raw = lines[line - 1]
        lead = raw[: raw.index("-") + 1]
        comment = ""
        m = re.search(r"\s+#[^\"']*$", raw.rstrip("\n"))
        if m:
            comment = m.group(0)
        lines[line - 1] = f"{lead} {yaml_scalar(value)}{comment}\n"
        self._commit("".join(lines), expect)

    def move_item(self, path: tuple[Any, ...], index: int, to: int) -> None:
        """Move the one-line item ``index`` of a block sequence to position ``to``."""
        path = tuple(path)
        seq = self.get(path)
        if not isinstance(seq, list) or not 0 <= index < len(seq) or not 0 <= to < len(seq):
            raise PlanRefused(f"{'.'.join(map(str, path))}[{index}] does not exist")
        self._check_block(path)
        lines = self._lines()
        item_lines = [self.lines_of.get(path + (i,)) for i in range(len(seq))]
        if any(n is None or not lines[n - 1].lstrip().startswith("-") for n in item_lines):
            raise PlanRefused(f"{'.'.join(map(str, path))} is not a block sequence of one-line items; edit it by hand")
        if any(b - a != 1 for a, b in zip(item_lines, item_lines[1:])):  # type: ignore[operator]
            raise PlanRefused(f"{'.'.join(map(str, path))} has multi-line items or comments between them; edit it by hand")
        expect = copy.deepcopy(self.data)
        target = self._get_mut(expect, path)
        target.insert(to, target.pop(index))
        block = [lines[n - 1] for n in item_lines]  # type: ignore[operator]
        block.insert(to, block.pop(index))
        first = item_lines[0] - 1  # type: ignore[operator]
        lines[first:first + len(block)] = block
        self._commit("".join(lines), expect)

    def copy_block(self, src: tuple[Any, ...], dst: tuple[Any, ...]) -> None:
        """Copy the mapping at ``src`` (its lines, re-indented) to the absent key ``dst``."""
        src, dst = tuple(src), tuple(dst)
        value = self.get(src)
        if not isinstance(value, dict) or self.has(dst):
            raise PlanRefused(f"cannot copy {'.'.join(map(str, src))} to {'.'.join(map(str, dst))}")
        line = self._check_block(src)
        lines = self._lines()
        end = self._block_end(line)
        body = lines[line:end]
        src_indent = _indent(lines[line - 1])
        expect = copy.deepcopy(self.data)
        holder = expect
        for k in dst[:-1]:
            holder = holder.setdefault(k, {})
        holder[dst[-1]] = copy.deepcopy(value)
        # create the parent mappings with a placeholder key, then splice the block in place of it
        i = len(dst) - 1
        while i > 0 and not self.has(dst[:i]):
            i -= 1
        existing = dst[:i]
        unit = self._unit()
        if existing:
            parent_line = self._check_block(existing)
            children = [n for k, n in self.lines_of.items() if len(k) == len(existing) + 1 and k[:-1] == existing]
            child_indent = _indent(lines[min(children) - 1]) if children else _indent(lines[parent_line - 1]) + unit
            insert_at = self._block_end(parent_line)
        else:
            child_indent, insert_at = 0, len(lines)
        new: list[str] = []
        for n, k in enumerate(dst[i:]):
            new.append(f"{' ' * (child_indent + n * unit)}{yaml_key(str(k))}:\n")
        key_indent = child_indent + (len(dst) - i - 1) * unit
        shift = key_indent - src_indent
        for raw in body:
            if not raw.strip():
                new.append(raw)
            elif shift >= 0:
                new.append(" " * shift + raw)
            else:
                if _indent(raw) < -shift:
                    raise PlanRefused("cannot re-indent the copied block; edit it by hand")
                new.append(raw[-shift:])
        lines[insert_at:insert_at] = new
        self._commit("".join(lines), expect)

    @staticmethod
    def _get_mut(data: Any, path: tuple[Any, ...]) -> Any:
        for k in path:
            data = data[k]
        return data
