"""What every CRI-O/containers/image module shares: the runtime's name and restart actions, the
system registries.conf paths, the credential-helpers default, and Go-style message helpers and
file readers that locate encoding errors (SEMANTICS §3)."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from regtui.config._source import Parsed, parse_error, read_json, read_toml
from regtui.host import Host

__all__ = [
    "RUNTIME",
    "RELOAD",
    "RESTART",
    "SYSTEM_REGISTRIES_CONF",
    "SYSTEM_REGISTRIES_DIR",
    "AUTH_FILE_HELPER",
    "path_line",
    "go_quote",
    "toml_type",
    "nearest_key",
    "read_located_toml",
    "read_located_json",
]

RUNTIME = "crio"
SYSTEM_REGISTRIES_CONF = "/etc/containers/registries.conf"
SYSTEM_REGISTRIES_DIR = "/etc/containers/registries.conf.d"
#: The credential-helpers entry that means "the auth.json chain" (the default list).
AUTH_FILE_HELPER = "containers-auth.json"
#: CRI-O re-reads registries.conf on SIGHUP; podman and skopeo read it on every run.
RELOAD = "reload crio"
RESTART = "restart crio"


def path_line(path: str, line: int | None) -> str:
    """``path:line``, or the path alone when the line is unknown."""
    return f"{path}:{line}" if line else path


def go_quote(value: str) -> str:
    """Go's ``%q`` for the strings that appear in these messages."""
    return json.dumps(value, ensure_ascii=False)


def toml_type(value: Any) -> str:
    """The TOML type name of a decoded value, for type-mismatch messages."""
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "integer", float: "float", list: "array", dict: "table"}.get(
        type(value), "datetime")


def nearest_key(key: str, known: list[str]) -> str | None:
    """The known key a typo most likely meant."""
    lowered = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[hits[0]] if hits else None


_BYTE_POS = re.compile(r"at byte (\d+)")


def _locate(parsed: Parsed, what: str) -> Parsed:
    """Give an encoding error the line and column of its first bad byte (the readers leave them unset)."""
    file = parsed.file
    m = _BYTE_POS.search(file.decode_error or "")
    if parsed.status != "parse-error" or not m:
        return parsed
    offset = int(m.group(1))
    line = file.data[:offset].count(b"\n") + 1
    column = offset - (file.data.rfind(b"\n", 0, offset) + 1) + 1
    parsed.findings = [parse_error(parsed.path, file.decode_error, line, column, RUNTIME, what=what)]
    return parsed


def read_located_toml(host: Host, path: str, what: str) -> Parsed:
    """TOML with parse errors located (encoding errors included)."""
    return _locate(read_toml(host, path, RUNTIME, what=what), what)


def read_located_json(host: Host, path: str, what: str) -> Parsed:
    """A credentials JSON file: never quoted in evidence; an empty file is an error, as in Go."""
    return _locate(read_json(host, path, RUNTIME, what=what, secret=True, empty_ok=False), what)
