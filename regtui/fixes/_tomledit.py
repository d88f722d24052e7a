"""Format-preserving TOML edits with tomlkit (config.toml, hosts.toml, registries.conf).

tomlkit keeps comments, key order, quoting and whitespace of everything not touched. New keys take
the indentation of their siblings. Renaming and reordering tables (``[host."https://x"]`` and its
sub-tables) is done on the header lines themselves, which tomlkit cannot do without rebuilding
the tables. Every edit is checked: the result must parse (tomllib, the parser containerd's and
CRI-O's Go decoders agree with on valid files) to exactly the intended data, else nothing is planned.
"""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import tomlkit
from tomlkit.items import AoT, Array, InlineTable, Table, Whitespace

from regtui.config._source import split_dotted
from regtui.fixes._model import KeyPathLookup, PlanRefused

__all__ = ["TomlDoc", "toml_value", "toml_key"]


def toml_value(value: Any) -> str:
    """A TOML value as tomlkit writes it (``"x"``, ``["a", "b"]``, ``true``)."""
    return tomlkit.item(value).as_string()


def toml_key(key: str) -> str:
    """A TOML key, quoted when it is not bare."""
    return tomlkit.key(key).as_string()


def _plain(value: Any) -> Any:
    return tomllib.loads(tomlkit.dumps({"v": value}))["v"] if not isinstance(value, (str, int, bool, float)) else value


def _header(line: str) -> tuple[list[str], bool] | None:
    """Key parts of a ``[table]`` or ``[[array]]`` header line, and whether it is an array."""
    s = line.strip()
    if not s.startswith("["):
        return None
    aot = s.startswith("[[")
    body = s[2:] if aot else s[1:]
    end = body.find("]]" if aot else "]")
    if end == -1:
        return None
    parts = split_dotted(body[:end])
    return (parts, aot) if parts else None


class TomlDoc(KeyPathLookup):
    """One TOML document being edited; ``data`` is what the edited text parses to."""

    def __init__(self, text: str) -> None:
        try:
            self.data = tomllib.loads(text)
        except RecursionError:
            raise PlanRefused("the file nests deeper than regtui edits; edit it by hand") from None
        except Exception as exc:  # tomllib.TOMLDecodeError
            raise PlanRefused(f"the file is not valid TOML ({exc}); correct it first") from None
        try:
            self.doc = tomlkit.parse(text)
        except Exception as exc:  # valid TOML that tomlkit does not follow (it stops at 100 levels of nesting)
            raise PlanRefused(f"the file cannot be edited safely ({exc}); edit it by hand") from None
        self._text = text

    # -- reading ----------------------------------------------------------------------------

    def text(self) -> str:
        """The edited document."""
        return self._text

    # -- checking ---------------------------------------------------------------------------

    def _commit(self, text: str, expect: Any) -> None:
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PlanRefused(f"internal: the TOML edit does not parse ({exc}); nothing planned") from None
        if parsed != expect:
            raise PlanRefused("internal: the TOML edit did not give the intended data; nothing planned")
        self._text = text
        self.data = parsed
        self.doc = tomlkit.parse(text)

    def _node(self, path: tuple[Any, ...]) -> Any:
        node: Any = self.doc
        for k in path:
            node = node[k]
        return node

    # -- edits ------------------------------------------------------------------------------

    def set(self, path: tuple[Any, ...], value: Any) -> None:
        """Set a key, creating missing tables (as ``[a.b.c]`` headers) on the way."""
        path = tuple(path)
        if self.has(path) and self.get(path) == _plain(value):
            return
        expect = copy.deepcopy(self.data)
        holder = expect
        for k in path[:-1]:
            holder = holder.setdefault(k, {}) if isinstance(holder, dict) else holder[k]
        holder[path[-1]] = _plain(value)
        node: Any = self.doc
        for i, k in enumerate(path[:-1]):
            if isinstance(k, str):
                if not isinstance(node, (Table, tomlkit.TOMLDocument, InlineTable)):
                    raise PlanRefused(f"{'.'.join(map(str, path[:i]))} is not a table")
                if k not in node:
                    node.add(k, tomlkit.table(is_super_table=i != len(path) - 2))
            elif not isinstance(node, (AoT, Array, list)):
                raise PlanRefused(f"{'.'.join(map(str, path[:i]))} is not a list")
            node = node[k]
        if not isinstance(node, (Table, tomlkit.TOMLDocument, InlineTable)):
            raise PlanRefused(f"{'.'.join(map(str, path[:-1]))} is not a table")
        key = path[-1]
        existed = key in node
        indent = _sibling_indent(node)
        if indent is None:
            indent = self._key_indent(path[:-1])
        node[key] = value
        if not existed:
            item = node.item(key) if hasattr(node, "item") else node[key]
            if hasattr(item, "trivia"):
                item.trivia.indent = indent
        self._commit(tomlkit.dumps(self.doc), expect)

    def delete(self, path: tuple[Any, ...]) -> None:
        """Remove a key or a whole table (with its sub-tables and the comment lines just above them)."""
        path = tuple(path)
        if not self.has(path):
            return
        expect = copy.deepcopy(self.data)
        holder = expect
        for k in path[:-1]:
            holder = holder[k]
        del holder[path[-1]]
        blocks = self.table_blocks(path) if isinstance(self.get(path), dict) else []
        if blocks:
            lines = self._text.splitlines(keepends=True)
            for start, end in reversed(blocks):
                trailing_blank = end > start and not lines[end - 1].strip()
                del lines[start:end]
                if trailing_blank and start > 0 and lines[start - 1].strip() and start < len(lines):
                    lines.insert(start, "\n")
            text = _tidy("".join(lines), self._text)
            try:
                parsed = tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                parsed = None
            if parsed is not None and parsed in (expect, _pruned(expect, path[:-1])):
                self._commit(text, parsed)
                return
        parent = self._node(path[:-1])
        del parent[path[-1]]
        self._commit(_tidy(tomlkit.dumps(self.doc), self._text), expect)

    def rename_table(self, path: tuple[Any, ...], new_key: str) -> None:
        """Rename the table at ``path`` (last component) on its header lines, sub-tables included."""
        path = tuple(path)
        if not isinstance(self.get(path), dict):
            raise PlanRefused(f"{'.'.join(map(str, path))} is not a table")
        parent = self.get(path[:-1])
        if new_key in parent:
            raise PlanRefused(f"{new_key!r} already exists next to {path[-1]!r}; merge them by hand")
        expect = copy.deepcopy(self.data)
        holder = expect
        for k in path[:-1]:
            holder = holder[k]
        holder_items = list(holder.items())
        holder.clear()
        holder.update({(new_key if k == path[-1] else k): v for k, v in holder_items})
        lines = self._text.splitlines(keepends=True)
        found = False
        for i, line in enumerate(lines):
            h = _header(line)
            if h is None or tuple(h[0][:len(path)]) != path:
                continue
            parts = h[0]
            new_parts = list(parts[:len(path) - 1]) + [new_key] + list(parts[len(path):])
            lead = line[: len(line) - len(line.lstrip())]
            rest = line.strip()
            close = rest.index("]]" if h[1] else "]") + (2 if h[1] else 1)
            trailer = rest[close:]
            brackets = ("[[", "]]") if h[1] else ("[", "]")
            newline = line[len(line.rstrip("\r\n")):]
            lines[i] = f"{lead}{brackets[0]}{'.'.join(toml_key(p) for p in new_parts)}{brackets[1]}{trailer}{newline}"
            found = True
        if not found:
            raise PlanRefused(f"{'.'.join(map(str, path))} has no [table] header (dotted or inline keys); edit it by hand")
        self._commit("".join(lines), expect)

    def _key_indent(self, table: tuple[Any, ...]) -> str:
        """Indentation for a first key in ``table``: its header's plus the file's usual key offset."""
        lines = self._text.splitlines()
        header_indent = ""
        for line in lines:
            h = _header(line)
            if h is not None and tuple(h[0]) == tuple(table):
                header_indent = line[: len(line) - len(line.lstrip())]
        offsets: list[int] = []
        current: int | None = None
        for line in lines:
            if not line.strip() or line.strip().startswith("#"):
                continue
            if _header(line) is not None:
                current = len(line) - len(line.lstrip())
                continue
            if current is not None:
                offsets.append(len(line) - len(line.lstrip()) - current)
                current = None
        offset = max(set(offsets), key=offsets.count) if offsets else 0
        return header_indent + " " * max(0, offset) if table else ""

    def rename_key(self, path: tuple[Any, ...], new_key: str) -> None:
        """Rename a ``key = value`` in place (on its own line; tables use :meth:`rename_table`)."""
        from regtui.config._source import key_and_rest, toml_key_lines

        path = tuple(path)
        line_no = toml_key_lines(self._text).get(path)
        if line_no is None or isinstance(self.get(path), dict):
            raise PlanRefused(f"{'.'.join(map(str, path))} is not a key on a line of its own; edit it by hand")
        parent = self.get(path[:-1])
        if new_key in parent:
            raise PlanRefused(f"{new_key!r} is already set next to {path[-1]!r}; keep one of them by hand")
        lines = self._text.splitlines(keepends=True)
        raw = lines[line_no - 1]
        split = key_and_rest(raw)
        parts = split_dotted(split[0]) if split else None
        if not split or not parts or parts[-1] != path[-1]:
            raise PlanRefused(f"{'.'.join(map(str, path))}: cannot find the key on line {line_no}; edit it by hand")
        lead = raw[: len(raw) - len(raw.lstrip())]
        pad = split[0][len(split[0].rstrip()):]
        lines[line_no - 1] = f"{lead}{'.'.join(toml_key(k) for k in parts[:-1] + [new_key])}{pad}={split[1]}"
        expect = copy.deepcopy(self.data)
        holder = expect
        for k in path[:-1]:
            holder = holder[k]
        items = list(holder.items())
        holder.clear()
        holder.update({(new_key if k == path[-1] else k): v for k, v in items})
        self._commit("".join(lines), expect)

    def table_blocks(self, path: tuple[Any, ...]) -> list[tuple[int, int]]:
        """Line ranges ``[start, end)`` of the header blocks of the table at ``path`` and its sub-tables."""
        lines = self._text.splitlines(keepends=True)
        heads = [(i, _header(line)) for i, line in enumerate(lines)]
        heads = [(i, h) for i, h in heads if h is not None]
        blocks = []
        for n, (i, h) in enumerate(heads):
            if tuple(h[0][:len(path)]) == tuple(path):
                end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
                while end - 1 > i and lines[end - 1].strip().startswith("#"):
                    end -= 1  # comments just above the next header belong to it
                start = i
                while start > 0 and lines[start - 1].strip().startswith("#"):
                    start -= 1
                blocks.append((start, end))
        return blocks

    def _aot_block(self, path: tuple[Any, ...]) -> tuple[int, int]:
        """Line range of one ``[[array]]`` element (``path`` ends with its index), with the comments just above it."""
        from regtui.config._source import toml_key_lines

        line = toml_key_lines(self._text).get(tuple(path))
        lines = self._text.splitlines(keepends=True)
        if line is None or _header(lines[line - 1]) is None:
            raise PlanRefused(f"{'.'.join(map(str, path))} has no [[header]] of its own; edit it by hand")
        start = line - 1
        end = next((i for i in range(line, len(lines)) if _header(lines[i]) is not None), len(lines))
        nested = tuple(path)
        while end < len(lines):
            h = _header(lines[end])
            if h is None or len(h[0]) <= len([k for k in nested if isinstance(k, str)]) or \
                    tuple(h[0][:len([k for k in nested if isinstance(k, str)])]) != tuple(k for k in nested if isinstance(k, str)):
                break
            end = next((i for i in range(end + 1, len(lines)) if _header(lines[i]) is not None), len(lines))
        while end - 1 > start and lines[end - 1].strip().startswith("#"):
            end -= 1
        while start > 0 and lines[start - 1].strip().startswith("#"):
            start -= 1
        return start, end

    def delete_item(self, path: tuple[Any, ...]) -> None:
        """Remove one element of an array of tables (its header block and the comments above it)."""
        path = tuple(path)
        items = self.get(path[:-1])
        if not isinstance(items, list) or not isinstance(path[-1], int) or not 0 <= path[-1] < len(items):
            raise PlanRefused(f"{'.'.join(map(str, path))} does not exist")
        expect = copy.deepcopy(self.data)
        holder = expect
        for k in path[:-1]:
            holder = holder[k]
        del holder[path[-1]]
        if not holder:
            parent = expect
            for k in path[:-2]:
                parent = parent[k]
            del parent[path[-2]]
        start, end = self._aot_block(path)
        lines = self._text.splitlines(keepends=True)
        del lines[start:end]
        self._commit(_tidy("".join(lines), self._text), expect)

    def move_item(self, path: tuple[Any, ...], index: int, to: int) -> None:
        """Move element ``index`` of the array of tables at ``path`` to position ``to``."""
        path = tuple(path)
        items = self.get(path)
        if not isinstance(items, list) or not 0 <= index < len(items) or not 0 <= to < len(items):
            raise PlanRefused(f"{'.'.join(map(str, path))}[{index}] does not exist")
        if index == to:
            return
        lines = self._text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        blocks = [self._aot_block(path + (i,)) for i in range(len(items))]
        if any(blocks[i][1] > blocks[i + 1][0] for i in range(len(blocks) - 1)):
            raise PlanRefused("the entries to reorder overlap; reorder them by hand")
        chunks = [lines[a:b] for a, b in blocks]
        for chunk in chunks:
            if chunk and chunk[-1].strip():
                chunk.append("\n")
        gaps = [lines[blocks[i][1]:blocks[i + 1][0]] for i in range(len(blocks) - 1)]
        order = list(range(len(items)))
        order.insert(to, order.pop(index))
        out = lines[:blocks[0][0]]
        for n, i in enumerate(order):
            out += chunks[i]
            if n < len(gaps):
                out += gaps[n]
        out += lines[blocks[-1][1]:]
        expect = copy.deepcopy(self.data)
        holder = expect
        for k in path:
            holder = holder[k]
        holder.insert(to, holder.pop(index))
        self._commit(_tidy("".join(out), self._text), expect)

    def move_table_after(self, path: tuple[Any, ...], after: tuple[Any, ...]) -> None:
        """Move the table at ``path`` (with sub-tables) to just after the table at ``after`` (same parent)."""
        mine, theirs = self.table_blocks(path), self.table_blocks(after)
        if not mine or not theirs:
            raise PlanRefused("a table to reorder has no [header]; reorder it by hand")
        if not _contiguous(mine) or not _contiguous(theirs):
            raise PlanRefused("a table to reorder is split across the file; reorder it by hand")
        lines = self._text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        block = lines[mine[0][0]:mine[-1][1]]
        if block and block[-1].strip():
            block.append("\n")
        insert_at = theirs[-1][1]
        rest = lines[:mine[0][0]] + lines[mine[-1][1]:]
        if insert_at > mine[0][0]:
            insert_at -= mine[-1][1] - mine[0][0]
        if insert_at > 0 and rest[insert_at - 1].strip():
            block.insert(0, "\n")
        new_lines = rest[:insert_at] + block + rest[insert_at:]
        expect = copy.deepcopy(self.data)
        parent = expect
        for k in path[:-1]:
            parent = parent[k]
        items = list(parent.items())
        moved = next(v for k, v in items if k == path[-1])
        order = [(k, v) for k, v in items if k != path[-1]]
        pos = next(i for i, (k, _) in enumerate(order) if k == after[-1]) + 1
        order.insert(pos, (path[-1], moved))
        parent.clear()
        parent.update(order)
        text = _tidy("".join(new_lines), self._text)
        parsed = tomllib.loads(text)
        sub = parsed
        for k in path[:-1]:
            sub = sub[k]
        if list(sub) != [k for k, _ in order]:
            raise PlanRefused("internal: the reordered tables are not in the intended order; nothing planned")
        self._commit(text, expect)


def _pruned(data: Any, path: tuple[Any, ...]) -> Any:
    """``data`` without the tables along ``path`` that are left empty (implicit tables vanish with their last child)."""
    data = copy.deepcopy(data)
    for n in range(len(path), 0, -1):
        holder = data
        try:
            for k in path[:n - 1]:
                holder = holder[k]
            if holder[path[n - 1]] == {}:
                del holder[path[n - 1]]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return data


def _contiguous(blocks: list[tuple[int, int]]) -> bool:
    return all(blocks[i][1] == blocks[i + 1][0] for i in range(len(blocks) - 1))


def _sibling_indent(node: Any) -> str | None:
    """Indentation of the first key/value already in a table (``None`` when it has none)."""
    body = getattr(getattr(node, "value", node), "body", None)
    if body is None:
        return None
    for key, item in body:
        if key is None or isinstance(item, (Whitespace, Table, AoT)):
            continue
        return getattr(item.trivia, "indent", "")
    return None


def _blank_runs(text: str) -> tuple[int, bool]:
    """Longest run of blank lines in ``text``, and whether it starts with one."""
    longest = run = 0
    for line in text.splitlines():
        run = run + 1 if not line.strip() else 0
        longest = max(longest, run)
    return longest, bool(text) and not text.splitlines()[0].strip()


def _tidy(text: str, original: str) -> str:
    """Collapse runs of blank lines an edit left that are longer than any in the original file."""
    longest, leading = _blank_runs(original)
    allowed = max(1, longest)
    out: list[str] = []
    blank = 0
    for line in text.splitlines(keepends=True):
        if not line.strip():
            blank += 1
            if blank > allowed:
                continue
        else:
            blank = 0
        out.append(line)
    while not leading and out and not out[0].strip():
        out.pop(0)
    if original.endswith("\n") and not original.endswith("\n\n"):
        while len(out) > 1 and not out[-1].strip():
            out.pop()
    result = "".join(out)
    if text.endswith("\n") and result and not result.endswith("\n"):
        result += "\n"
    return result
