"""Text in, text out, the way the file was: encoding, BOM and line endings survive an edit; and
the unified diff a preview shows, with every secret masked.
"""

from __future__ import annotations

import difflib
import re
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


_YAML_SECRET = re.compile(r"^(?P<lead>\s*(?:-\s+)?[\"']?(?:auth|password|identity_token|identitytoken|token|"
                          r"registrytoken|secret)[\"']?\s*:\s*)(?P<val>[^\s#].*?)\s*$", re.IGNORECASE)
_ENV_SECRET = re.compile(r"^(?P<lead>.*\b[A-Z0-9_]*(?:PASSWORD|TOKEN|SECRET)[A-Z0-9_]*=)(?P<val>[^\s\"']+)")


def redact_line(line: str) -> str:
    """Mask credentials in one line of a config file (JSON, TOML, YAML, unit file or env file)."""
    out = redact.text(line)
    m = _YAML_SECRET.match(out)
    if m and redact.MASK not in m.group("val"):
        out = m.group("lead") + redact.MASK
    m = _ENV_SECRET.match(out)
    if m:
        out = m.group("lead") + redact.MASK + out[m.end():]
    return out


def _lines(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    try:
        text, _ = decode(data)
    except UnicodeDecodeError:
        return None
    return text.splitlines(keepends=True)


def unified_diff(path: str, before: bytes | None, after: bytes | None, *, note: str = "") -> str:
    """A unified diff of one file, secrets masked; binary content is described, not shown."""
    old, new = _lines(before), _lines(after)
    header = f"# {note}\n" if note else ""
    if old is None or new is None:
        return header + f"--- {path}\n+++ {path}\nBinary content: {len(before or b'')} -> {len(after or b'')} bytes\n"
    fromfile = "/dev/null" if before is None else f"a{path}"
    tofile = "/dev/null" if after is None else f"b{path}"
    out = []
    for line in difflib.unified_diff(old, new, fromfile, tofile, n=3):
        body, newline = line.rstrip("\r\n"), line.endswith("\n")
        if body.startswith(("+", "-", " ")) and not body.startswith(("+++ ", "--- ")):
            body = body[0] + redact_line(body[1:])
        out.append(body + "\n" + ("" if newline else "\\ No newline at end of file\n"))
    return header + "".join(out)
