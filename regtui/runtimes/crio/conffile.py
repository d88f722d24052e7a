"""One registries.conf file as containers/image decodes it (SEMANTICS §3.1-§3.2): the v2 schema
(with the v1 tables and the aliases file), typed decoding with BurntSushi/toml's case-insensitive
key matching, and :class:`FileConf`, the record of one file's values, errors and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from regtui import redact
from regtui.config._source import Parsed
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.runtimes.crio.common import RELOAD, RUNTIME, path_line
from regtui.runtimes.crio.records import Alias, RegistryEntry

__all__ = [
    "STRING",
    "BOOL",
    "STRINGS",
    "MIRROR_KEYS",
    "REGISTRY_KEYS",
    "TOP_KEYS",
    "V2_KEYS",
    "GO_TYPE",
    "REFUSED",
    "Decoded",
    "decode",
    "FileConf",
    "invalid",
    "parse_location",
]


# What containers/image decodes (V2RegistriesConf + V1RegistriesConf + shortNameAliasConf).
STRING, BOOL, STRINGS = "string", "boolean", "array of strings"
MIRROR_KEYS: dict[str, Any] = {"location": STRING, "insecure": BOOL, "pull-from-mirror": STRING}
REGISTRY_KEYS: dict[str, Any] = {
    "prefix": STRING, "location": STRING, "insecure": BOOL, "blocked": BOOL,
    "mirror-by-digest-only": BOOL, "pull-from-mirror": STRING, "mirror": ("tables", MIRROR_KEYS),
}
_V1_LIST = ("table", {"registries": STRINGS})
TOP_KEYS: dict[str, Any] = {
    "registry": ("tables", REGISTRY_KEYS),
    "unqualified-search-registries": STRINGS,
    "credential-helpers": STRINGS,
    "short-name-mode": STRING,
    "additional-layer-store-auth-helper": STRING,
    "aliases": ("map", STRING),
    "registries": ("table", {"search": _V1_LIST, "insecure": _V1_LIST, "block": _V1_LIST}),
}
V2_KEYS = ("registry", "unqualified-search-registries", "credential-helpers", "short-name-mode",
           "additional-layer-store-auth-helper", "aliases")
GO_TYPE = {STRING: "string", BOOL: "bool", STRINGS: "[]string", "tables": "[]struct", "table": "struct",
           "map": "map[string]string"}


def _schema_key(key: str, schema: Mapping[str, Any]) -> str | None:
    """The schema key BurntSushi/toml decodes ``key`` into: exact match first, then case-insensitive."""
    if key in schema:
        return key
    for name in schema:
        if name.lower() == key.lower():
            return name
    return None


_BAD = object()


@dataclass
class Decoded:
    """A TOML document reduced to the schema: canonical keys, type errors and unknown keys."""

    data: dict[str, Any] = field(default_factory=dict)
    origin: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    """Canonical key path -> key path as written (case may differ), for line lookups."""
    type_errors: list[tuple[tuple[Any, ...], str, Any]] = field(default_factory=list)
    """(key path as written, expected kind, offending value)."""
    unknown: list[tuple[tuple[Any, ...], list[str]]] = field(default_factory=list)
    """(key path as written, keys valid at that level)."""


class _Decoder:
    """Walks parsed TOML against a schema the way containers/image's structs receive it."""

    def __init__(self) -> None:
        """Start with an empty result."""
        self.out = Decoded()

    def table(self, raw: Mapping[str, Any], schema: Mapping[str, Any], canon: tuple[Any, ...],
              written: tuple[Any, ...]) -> dict[str, Any]:
        """Decode one table against ``schema``."""
        decoded: dict[str, Any] = {}
        for key, value in raw.items():
            name = _schema_key(key, schema)
            if name is None:
                self.out.unknown.append((written + (key,), sorted(schema)))
                continue
            self.out.origin[canon + (name,)] = written + (key,)
            result = self.value(value, schema[name], canon + (name,), written + (key,))
            if result is not _BAD:
                decoded[name] = result
        return decoded

    def value(self, value: Any, kind: Any, canon: tuple[Any, ...], written: tuple[Any, ...]) -> Any:
        """Decode one value of ``kind``; ``_BAD`` (and a type error) when it does not fit."""
        if kind == STRING:
            ok = isinstance(value, str)
        elif kind == BOOL:
            ok = isinstance(value, bool)
        elif kind == STRINGS:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            shape, inner = kind
            if shape == "tables" and isinstance(value, list) and all(isinstance(v, dict) for v in value):
                return [self.table(v, inner, canon + (i,), written + (i,)) for i, v in enumerate(value)]
            if shape == "table" and isinstance(value, dict):
                return self.table(value, inner, canon, written)
            if shape == "map" and isinstance(value, dict):
                good: dict[str, Any] = {}
                for k, v in value.items():
                    self.out.origin[canon + (k,)] = written + (k,)
                    if self.value(v, inner, canon + (k,), written + (k,)) is not _BAD:
                        good[k] = v
                return good
            ok = False
        if not ok:
            self.out.type_errors.append((written, kind if isinstance(kind, str) else kind[0], value))
            return _BAD
        return value


def decode(data: Mapping[str, Any], schema: Mapping[str, Any]) -> Decoded:
    """Reduce a parsed TOML document to ``schema``."""
    decoder = _Decoder()
    decoder.out.data = decoder.table(data, schema, (), ())
    return decoder.out


@dataclass
class FileConf:
    """One registries.conf file, decoded and validated."""

    path: str
    parsed: Parsed
    decoded: Decoded | None = None
    registries: list[RegistryEntry] = field(default_factory=list)
    search: list[str] | None = None
    search_line: int | None = None
    short_name_mode: str = ""
    short_name_mode_line: int | None = None
    credential_helpers: list[str] | None = None
    credential_helpers_line: int | None = None
    aliases: dict[str, Alias] = field(default_factory=dict)
    errors: list[Finding] = field(default_factory=list)
    """Findings that make the runtime refuse the file (and with it the whole configuration)."""
    warnings: list[Finding] = field(default_factory=list)

    def line(self, *canon: Any) -> int | None:
        """Line of a canonical key path (or of the first key under it, for a table without header)."""
        if self.decoded is None:
            return None
        written = self.decoded.origin.get(tuple(canon), tuple(canon))
        line = self.parsed.line(*written)
        if line is None:
            below = [n for k, n in self.parsed.lines.items() if k[:len(written)] == written]
            line = min(below) if below else None
        return line


REFUSED = ("podman, skopeo and buildah refuse every pull with \"loading registries configuration\" and "
           "CRI-O does not start (on reload it keeps its previous registries).")


def invalid(conf: FileConf, message: str, line: int | None, value: Any, *, key: str, summary: str,
            params: Mapping[str, Any] | None = None, detail: str = "") -> None:
    """Record a containers/image validation error for this file."""
    conf.errors.append(finding(
        "config.invalid-value", conf.path,
        f"{path_line(conf.path, line)}: {message}",
        (detail + " " if detail else "") + f"containers/image rejects the file: {REFUSED} "
        "Only the first error is reported by the runtime.",
        evidence={"file": conf.path, "line": line, "key": key, "value": redact.value(value), "error": message},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", conf.path, summary, files=[conf.path], restart=RELOAD,
                detail=f"{key}:{line}", params={"file": conf.path, "line": line, "key": key, **(params or {})}),
    ))


def parse_location(conf: FileConf, value: str, line: int | None, key: str) -> str | None:
    """``parseLocation``: trailing ``/`` trimmed; an ``http(s)://`` scheme is an error (pattern 23)."""
    trimmed = value.rstrip("/")
    if trimmed.startswith(("http://", "https://")):
        scheme, _, rest = trimmed.partition("://")
        params: dict[str, Any] = {"value": value, "new_value": rest}
        if scheme == "http":
            params["also_set"] = {"insecure": True}
        invalid(conf, f"invalid location '{redact.url(value)}': URI schemes are not supported", line, value, key=key,
                summary=f"write {key} = \"{redact.url(rest)}\" without the scheme"
                         + (" and add insecure = true for plain HTTP" if scheme == "http" else ""),
                params=params)
        return None
    return trimmed
