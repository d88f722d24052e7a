"""Text in, text out, the way the file was: encoding, BOM and line endings survive an edit; and
the unified diff a preview shows, with every secret masked.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from regtui import redact

__all__ = ["Encoding", "decode", "encode", "unified_diff", "redact_line"]


@dataclass(frozen=True)
class Encoding:
    """How a file's text was stored."""

    codec: str = "utf-8"
    bom: bytes = b""
    newline: str = "\n"
    """``\\r\\n`` when every line ended so; edits then use it too."""


def decode(data: bytes) -> tuple[str, Encoding]:
    """Text with ``\\n`` line ends, and how to write it back (UTF-8 with or without BOM, UTF-16 with BOM).

    Raises ``UnicodeDecodeError`` for bytes that are not text: such files are never edited.
    """
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        codec, bom = ("utf-16-le", data[:2]) if data.startswith(b"\xff\xfe") else ("utf-16-be", data[:2])
        text = data[2:].decode(codec)
    elif data.startswith(b"\xef\xbb\xbf"):
        codec, bom = "utf-8", data[:3]
        text = data[3:].decode("utf-8")
    else:
        codec, bom = "utf-8", b""
        text = data.decode("utf-8")
    newline = "\n"
    crlf = text.count("\r\n")
    if crlf and crlf == text.count("\n"):
        newline = "\r\n"
        text = text.replace("\r\n", "\n")
    return text, Encoding(codec, bom, newline)


def encode(text: str, enc: Encoding = Encoding()) -> bytes:
    """Bytes for ``text`` in the file's own encoding, BOM and line endings."""
    if enc.newline != "\n":
        text = text.replace("\n", enc.newline)
    return enc.bom + text.encode(enc.codec)


def redact_line(line: str) -> str:
    """Mask credentials in one line of a config file (JSON, TOML, YAML, unit or env file)."""
    return redact.line(line)


def _lines(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    try:
        text, _ = decode(data)
    except UnicodeDecodeError:
        return None
    return text.splitlines(keepends=True)


def _range(start: int, length: int) -> str:
    """``start,length`` of a hunk header, as ``diff -u`` writes it."""
    first = start + 1 if length else start
    return str(first) if length == 1 else f"{first},{length}"


def unified_diff(path: str, before: bytes | None, after: bytes | None, *, note: str = "") -> str:
    """A unified diff of one file, secrets masked; binary content is described, not shown.

    Lines are compared as they are and shown masked, each file masked as a whole
    (:func:`regtui.redact.lines`) so that a value inside a secret table or block is masked too.
    """
    old, new = _lines(before), _lines(after)
    header = f"# {redact.text(note)}\n" if note else ""
    if old is None or new is None:
        return header + f"--- {path}\n+++ {path}\nBinary content: {len(before or b'')} -> {len(after or b'')} bytes\n"
    shown_old, shown_new = redact.lines(old), redact.lines(new)
    fromfile = "/dev/null" if before is None else f"a{path}"
    tofile = "/dev/null" if after is None else f"b{path}"
    out: list[str] = []

    def emit(prefix: str, shown: list[str], raw: list[str], i: int) -> None:
        body = shown[i].rstrip("\r\n")
        out.append(prefix + body + "\n" + ("" if raw[i].endswith("\n") else "\\ No newline at end of file\n"))

    for group in difflib.SequenceMatcher(None, old, new).get_grouped_opcodes(3):
        if not out:
            out += [f"--- {fromfile}\n", f"+++ {tofile}\n"]
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                for i in range(a1, a2):
                    emit(" ", shown_old, old, i)
                continue
            if tag in ("replace", "delete"):
                for i in range(a1, a2):
                    emit("-", shown_old, old, i)
            if tag in ("replace", "insert"):
                for j in range(b1, b2):
                    emit("+", shown_new, new, j)
    return header + "".join(out)
