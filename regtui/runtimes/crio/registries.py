"""CRI-O, podman, buildah and skopeo: how containers/image reads the host's registry configuration.

All four pull through containers/image, so they share its files and rules (SEMANTICS §3):

- **registries.conf** (§3.1): ``$HOME/.config/containers/registries.conf`` *replaces*
  ``/etc/containers/registries.conf`` when it exists (then only the user's drop-in dir is read);
  otherwise the system file, then ``/etc/containers/registries.conf.d/*.conf``, then the user's
  drop-ins. ``CONTAINERS_REGISTRIES_CONF`` / ``REGISTRIES_CONFIG_PATH`` (podman/skopeo only)
  name the main file instead. Drop-ins must be v2; a drop-in's ``[[registry]]`` replaces one
  with the same prefix wholesale; ``unqualified-search-registries`` and ``credential-helpers``
  are replaced when present (``[]`` clears); aliases merge and ``""`` erases one. Any invalid
  file makes the runtime refuse the whole configuration (``loading registries configuration``).
- **validation** (§3.2, ``system_registries_v2.go``): the exact containers/image messages.
- **unknown keys** are decoded away silently (logged at debug only): compared against the v2
  schema here, case-insensitively as BurntSushi/toml matches them.
- **crio.conf** (+ ``crio.conf.d``): ``[crio.image] global_auth_file``, the legacy
  ``insecure_registries`` and the dropped ``registries``; ``--global-auth-file`` / ``--config``
  / ``--config-dir`` in ExecStart and their ``CONTAINER_*`` variables.
- **auth.json chain** (§3.6, ``pkg/docker/config``): explicit file (CRI-O
  ``global_auth_file``, podman ``REGISTRY_AUTH_FILE``) *or* the chain
  ``${XDG_RUNTIME_DIR:-/run/containers/0}/containers/auth.json``,
  ``${XDG_CONFIG_HOME:-~/.config}/containers/auth.json``, ``$DOCKER_CONFIG/config.json`` or
  ``~/.docker/config.json``, ``~/.dockercfg``; namespaced keys, most specific first; ``http(s)://``
  keys normalised to the host; Docker Hub aliases.
- **certs dirs** (§3.4): the first existing of ``~/.config/containers/certs.d/<host:port>``,
  ``/etc/containers/certs.d/<host:port>``, ``/etc/docker/certs.d/<host:port>``; no merging.

The view is what CRI-O sees (its unit environment, ``global_auth_file``) when CRI-O is on the
host, and what podman/skopeo run as root in this shell see otherwise. The route planner is
:mod:`regtui.runtimes.crio.routes`.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from regtui import redact
from regtui.config import systemd
from regtui.config._source import Parsed, parse_error, read_json, read_toml
from regtui.credentials import Credential
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.net.proxy import PROXY_VARS, ProxyEnv, from_environ
from regtui.options import CheckOptions
from regtui.refs import DOCKER_HUB, HUB_API_HOST
from regtui.runtimes.view import RuntimeView

__all__ = [
    "RUNTIME",
    "Mirror",
    "RegistryEntry",
    "Alias",
    "RegistriesConf",
    "CrioConf",
    "AuthFile",
    "AuthEntry",
    "AuthMatch",
    "AuthStore",
    "CrioConfig",
    "detect",
    "load",
    "load_config",
    "registries_paths",
    "load_registries",
    "load_crio_conf",
    "auth_chain",
    "load_auth",
    "prefix_match",
    "find_registry",
    "certs_dir_candidates",
    "certs_dir",
    "normalize_registry",
    "normalize_auth_key",
]

RUNTIME = "crio"
SYSTEM_REGISTRIES_CONF = "/etc/containers/registries.conf"
SYSTEM_REGISTRIES_DIR = "/etc/containers/registries.conf.d"
USER_REGISTRIES_CONF = ".config/containers/registries.conf"
USER_REGISTRIES_DIR = ".config/containers/registries.conf.d"
#: Aliases podman records when a user picks a short-name candidate (root); they win over registries.conf.
SHORT_NAME_ALIASES = "/var/cache/containers/short-name-aliases.conf"
CRIO_CONF = "/etc/crio/crio.conf"
CRIO_CONF_DIR = "/etc/crio/crio.conf.d"
CRIO_UNIT = "crio.service"
#: Environment files the packaged crio.service reads (RPM and deb layouts).
CRIO_ENV_FILES = ("/etc/sysconfig/crio", "/etc/default/crio")
SYSTEM_CERTS_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")
USER_CERTS_DIR = ".config/containers/certs.d"
#: The credential-helpers entry that means "the auth.json chain" (the default list).
AUTH_FILE_HELPER = "containers-auth.json"
PULL_FROM_MIRROR_VALUES = ("all", "digest-only", "tag-only")
SHORT_NAME_MODES = ("disabled", "enforcing", "permissive")
#: CRI-O re-reads registries.conf on SIGHUP; podman and skopeo read it on every run.
RELOAD = "reload crio"
RESTART = "restart crio"
BINARIES = ("crio", "podman", "skopeo", "buildah")
CONFIG_DIRS = ("/etc/containers", "/etc/crio")
_HUB_ALIASES = (DOCKER_HUB, HUB_API_HOST)
_HUB_NORMALIZED = "index.docker.io"

# -- registries.conf schema ------------------------------------------------------------------
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
_V2_KEYS = ("registry", "unqualified-search-registries", "credential-helpers", "short-name-mode",
            "additional-layer-store-auth-helper", "aliases")
_GO_TYPE = {STRING: "string", BOOL: "bool", STRINGS: "[]string", "tables": "[]struct", "table": "struct",
            "map": "map[string]string"}

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_ANCHORED_DOMAIN = re.compile(rf"^{_DOMAIN}$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
# distribution/reference's un-normalised grammar: optional domain, path, optional tag and digest.
_PLAIN_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


# -- small shared helpers ----------------------------------------------------------------------

def _where(path: str, line: int | None) -> str:
    """``path:line``, or the path alone when the line is unknown."""
    return f"{path}:{line}" if line else path


def _go_quote(value: str) -> str:
    """Go's ``%q`` for the strings that appear in these messages."""
    return json.dumps(value, ensure_ascii=False)


def _toml_type(value: Any) -> str:
    """The TOML type name of a decoded value, for type-mismatch messages."""
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "integer", float: "float", list: "array", dict: "table"}.get(
        type(value), "datetime")


def _nearest(key: str, known: list[str]) -> str | None:
    """The known key a typo most likely meant."""
    lowered = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[hits[0]] if hits else None


def _schema_key(key: str, schema: Mapping[str, Any]) -> str | None:
    """The schema key BurntSushi/toml decodes ``key`` into: exact match first, then case-insensitive."""
    if key in schema:
        return key
    for name in schema:
        if name.lower() == key.lower():
            return name
    return None


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


def _read_toml(host: Host, path: str, what: str) -> Parsed:
    """TOML with parse errors located (encoding errors included)."""
    return _locate(read_toml(host, path, RUNTIME, what=what), what)


def _read_json(host: Host, path: str, what: str) -> Parsed:
    """A credentials JSON file: never quoted in evidence; an empty file is an error, as in Go."""
    return _locate(read_json(host, path, RUNTIME, what=what, secret=True, empty_ok=False), what)


# -- decoding with types, as BurntSushi/toml does ----------------------------------------------

_BAD = object()


@dataclass
class _Decoded:
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
        self.out = _Decoded()

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


def _decode(data: Mapping[str, Any], schema: Mapping[str, Any]) -> _Decoded:
    """Reduce a parsed TOML document to ``schema``."""
    decoder = _Decoder()
    decoder.out.data = decoder.table(data, schema, (), ())
    return decoder.out


# -- registries.conf records --------------------------------------------------------------------

@dataclass(frozen=True)
class Mirror:
    """One ``[[registry.mirror]]`` entry."""

    location: str
    insecure: bool = False
    pull_from_mirror: str = ""
    """``""``/``all``, ``digest-only`` or ``tag-only``."""
    file: str = ""
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)
    """Line of each key (``""`` is the table header)."""

    def line(self, key: str = "") -> int | None:
        """Line of ``key``, else of the mirror table."""
        return self.lines.get(key) or self.lines.get("")

    def where(self, key: str = "location") -> str:
        """``path:line`` of ``key``."""
        return _where(self.file, self.line(key))


@dataclass(frozen=True)
class RegistryEntry:
    """One effective ``[[registry]]`` entry (after v1 conversion and drop-in merging)."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirror_by_digest_only: bool = False
    mirrors: tuple[Mirror, ...] = ()
    file: str = ""
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)
    """Line of each key (``""`` is the ``[[registry]]`` header)."""
    replaced: tuple[str, ...] = ()
    """``path:line`` of earlier entries with the same prefix this one replaced wholesale."""

    @property
    def wildcard(self) -> bool:
        """The prefix is ``*.example.com``."""
        return self.prefix.startswith("*.")

    def line(self, key: str = "") -> int | None:
        """Line of ``key``, else of the entry."""
        return self.lines.get(key) or self.lines.get("")

    def where(self, key: str = "") -> str:
        """``path:line`` of ``key``."""
        return _where(self.file, self.line(key))

    def has_effect(self) -> bool:
        """The entry changes something for matching references (mirrors, rewrite, TLS, blocking)."""
        return bool(self.mirrors) or self.insecure or self.blocked or (
            bool(self.location) and self.location != self.prefix)


@dataclass(frozen=True)
class Alias:
    """A short-name alias (``[aliases]``); ``value`` ``None`` means erased by ``""``."""

    name: str
    value: str | None
    file: str
    line: int | None


@dataclass
class RegistriesConf:
    """The merged registries.conf configuration as containers/image ends up with it."""

    registries: dict[str, RegistryEntry] = field(default_factory=dict)
    """Effective entries by prefix."""
    search: list[str] = field(default_factory=list)
    search_source: str = "default (no unqualified-search-registries set)"
    short_name_mode: str = "permissive"
    short_name_mode_source: str = "default (short-name-mode unset: permissive)"
    credential_helpers: list[str] = field(default_factory=lambda: [AUTH_FILE_HELPER])
    credential_helpers_source: str = "default (credential-helpers unset)"
    aliases: dict[str, Alias] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    """Files read, in the order they apply."""
    refused: Finding | None = None
    """The first error that makes the runtime refuse the whole configuration."""
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


# -- prefix matching (sysregistriesv2 refMatchingPrefix / FindRegistry) ------------------------

def prefix_match(ref: str, prefix: str) -> int:
    """Where the remainder of ``ref`` starts when ``prefix`` matches it, else ``-1``.

    A prefix matches when ``ref`` starts with it and the next character is ``/``, ``:``, ``@`` or
    the end; ``*.example.com`` matches subdomains (any depth) of example.com, never the apex.
    """
    if prefix.startswith("*."):
        suffix = prefix[1:]
        index = ref.find(suffix)
        if index == -1 or "/" in ref[:index]:
            return -1
        index += len(suffix)
        return index if index == len(ref) or ref[index] in ":/@" else -1
    if len(ref) < len(prefix) or not ref.startswith(prefix):
        return -1
    if len(ref) == len(prefix) or ref[len(prefix)] in ":/@":
        return len(prefix)
    return -1


def find_registry(entries: Mapping[str, RegistryEntry], name: str) -> RegistryEntry | None:
    """The entry with the longest matching prefix for ``name`` (prefixes in sorted order, first wins ties)."""
    best: RegistryEntry | None = None
    best_len = 0
    for prefix in sorted(entries):
        if prefix_match(name, prefix) != -1 and len(prefix) > best_len:
            best, best_len = entries[prefix], len(prefix)
    return best


# -- registries.conf: one file ------------------------------------------------------------------

@dataclass
class _FileConf:
    """One registries.conf file, decoded and validated."""

    path: str
    parsed: Parsed
    decoded: _Decoded | None = None
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


_REFUSED = ("podman, skopeo and buildah refuse every pull with \"loading registries configuration\" and "
            "CRI-O does not start (on reload it keeps its previous registries).")


def _invalid(conf: _FileConf, message: str, line: int | None, value: Any, *, key: str, summary: str,
             params: Mapping[str, Any] | None = None, detail: str = "") -> None:
    """Record a containers/image validation error for this file."""
    conf.errors.append(finding(
        "config.invalid-value", conf.path,
        f"{_where(conf.path, line)}: {message}",
        (detail + " " if detail else "") + f"containers/image rejects the file: {_REFUSED} "
        "Only the first error is reported by the runtime.",
        evidence={"file": conf.path, "line": line, "key": key, "value": redact.value(value), "error": message},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", conf.path, summary, files=[conf.path], restart=RELOAD,
                detail=f"{key}:{line}", params={"file": conf.path, "line": line, "key": key, **(params or {})}),
    ))


def _parse_location(conf: _FileConf, value: str, line: int | None, key: str) -> str | None:
    """``parseLocation``: trailing ``/`` trimmed; an ``http(s)://`` scheme is an error (pattern 23)."""
    trimmed = value.rstrip("/")
    if trimmed.startswith(("http://", "https://")):
        scheme, _, rest = trimmed.partition("://")
        params: dict[str, Any] = {"value": value, "new_value": rest}
        if scheme == "http":
            params["also_set"] = {"insecure": True}
        _invalid(conf, f"invalid location '{redact.url(value)}': URI schemes are not supported", line, value, key=key,
                 summary=f"write {key} = \"{redact.url(rest)}\" without the scheme"
                         + (" and add insecure = true for plain HTTP" if scheme == "http" else ""),
                 params=params)
        return None
    return trimmed


def _type_findings(conf: _FileConf, decoded: _Decoded) -> None:
    """BurntSushi/toml's "incompatible types" errors: the runtime refuses the file."""
    for written, kind, value in decoded.type_errors:
        dotted = ".".join(str(k) for k in written if not isinstance(k, int))
        line = conf.parsed.line(*written)
        message = (f"toml: line {line or '?'} (last key {_go_quote(dotted)}): incompatible types: TOML value has type "
                   f"{_toml_type(value)}; destination has type {_GO_TYPE.get(kind, kind)}")
        _invalid(conf, message, line, value, key=dotted, summary=f"give {dotted} a {kind} value",
                 params={"expected": kind})


def _unknown_key_findings(conf: _FileConf, decoded: _Decoded) -> None:
    """Keys the runtime drops without a word: ``config.ignored-key`` with the nearest known key."""
    for written, known in decoded.unknown:
        key = str(written[-1])
        dotted = ".".join(str(k) for k in written if not isinstance(k, int))
        line = conf.parsed.line(*written)
        suggestion = _nearest(key, known)
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        conf.warnings.append(finding(
            "config.ignored-key", conf.path,
            f"{_where(conf.path, line)}: registries.conf key {dotted!r} is not a known key and is ignored{hint}",
            "containers/image decodes only the keys it knows; others are dropped and logged at debug level "
            "only (\"Failed to decode keys\"), so a typo silently disables the setting.",
            evidence={"file": conf.path, "line": line, "key": dotted, "value": key, "known_keys": known},
            runtime=RUNTIME,
            fix=fix("config.ignored-key", conf.path,
                    f"rename {key!r} to {suggestion!r}" if suggestion else f"remove or correct {key!r}",
                    files=[conf.path], restart=RELOAD, detail=f"{dotted}:{line}",
                    params={"file": conf.path, "line": line, "key": key, "new_key": suggestion}),
        ))


def _v1_set(data: Mapping[str, Any]) -> bool:
    """The file uses the v1 ``[registries.search|insecure|block]`` tables."""
    v1 = data.get("registries")
    return isinstance(v1, dict) and any(isinstance(v1.get(k), dict) and "registries" in v1[k]
                                        for k in ("search", "insecure", "block"))


def _convert_v1(conf: _FileConf, data: Mapping[str, Any]) -> None:
    """``ConvertToV2``: block and insecure lists become entries, search becomes the search list."""
    v1 = data["registries"]
    entries: dict[str, dict[str, Any]] = {}
    for kind, flag in (("block", "blocked"), ("insecure", "insecure")):
        values = v1.get(kind, {}).get("registries", [])
        line = conf.line("registries", kind, "registries")
        for value in values:
            location = _parse_location(conf, value, line, f"registries.{kind}.registries")
            if location is None:
                continue
            entry = entries.setdefault(location, {"location": location, "line": line})
            entry[flag] = True
    for location, e in entries.items():
        conf.registries.append(RegistryEntry(prefix=location, location=location, insecure=e.get("insecure", False),
                                             blocked=e.get("blocked", False), file=conf.path,
                                             lines={"": e["line"]} if e["line"] else {}))
    if "registries" in v1.get("search", {}):
        conf.search = list(v1["search"]["registries"])
        conf.search_line = conf.line("registries", "search", "registries")


def _entry_lines(conf: _FileConf, base: tuple[Any, ...], keys: Mapping[str, Any]) -> dict[str, int]:
    """Line of the table header (``""``) and of each key present, for one table."""
    lines: dict[str, int] = {}
    head = conf.line(*base)
    if head:
        lines[""] = head
    for key in keys:
        if conf.decoded and base + (key,) in conf.decoded.origin:
            line = conf.line(*base, key)
            if line:
                lines[key] = line
    return lines


def _mirrors(conf: _FileConf, i: int, raw: dict[str, Any], prefix: str) -> tuple[Mirror, ...]:
    """The ``[[registry.mirror]]`` entries of registry ``i``, validated."""
    out: list[Mirror] = []
    for j, m in enumerate(raw.get("mirror", [])):
        lines = _entry_lines(conf, ("registry", i, "mirror", j), MIRROR_KEYS)
        mirror_line = lines.get("location") or lines.get("")
        location = _parse_location(conf, m.get("location", ""), mirror_line, "mirror.location")
        if location is None:
            continue
        if not location:
            _invalid(conf, "invalid condition: mirror location is unset", mirror_line, "", key="mirror.location",
                     summary="give the mirror a location (host[:port][/path])")
            continue
        pull_from = m.get("pull-from-mirror", "")
        pf_line = lines.get("pull-from-mirror") or mirror_line
        if raw.get("mirror-by-digest-only") and pull_from:
            _invalid(conf, f"cannot set mirror usage mirror-by-digest-only for the registry ({_go_quote(prefix)}) "
                           f"and pull-from-mirror for per-mirror ({_go_quote(location)}) at the same time",
                     pf_line, pull_from, key="mirror.pull-from-mirror",
                     summary="keep either mirror-by-digest-only on the registry or pull-from-mirror on its mirrors",
                     params={"remove": "pull-from-mirror"})
        elif pull_from and pull_from not in PULL_FROM_MIRROR_VALUES:
            nearest = _nearest(pull_from, list(PULL_FROM_MIRROR_VALUES))
            _invalid(conf, f"unsupported pull-from-mirror value {_go_quote(pull_from)} for mirror {_go_quote(location)}",
                     pf_line, pull_from, key="mirror.pull-from-mirror",
                     summary=f"use one of {', '.join(PULL_FROM_MIRROR_VALUES)}",
                     params={"value": pull_from, "new_value": nearest or "all"})
        out.append(Mirror(location=location, insecure=bool(m.get("insecure", False)), pull_from_mirror=pull_from,
                          file=conf.path, lines=lines))
    return tuple(out)


def _registry_entry(conf: _FileConf, i: int, raw: dict[str, Any]) -> RegistryEntry | None:
    """``postProcessRegistries`` for one ``[[registry]]``."""
    lines = _entry_lines(conf, ("registry", i), REGISTRY_KEYS)
    head = lines.get("")
    location = _parse_location(conf, raw.get("location", ""), lines.get("location", head), "location")
    if location is None:
        return None
    prefix_raw = raw.get("prefix", "")
    if not prefix_raw:
        if not location:
            _invalid(conf, "invalid condition: both location and prefix are unset", head, "", key="location",
                     summary="set location (and prefix, when it differs)")
            return None
        prefix = location
    else:
        parsed_prefix = _parse_location(conf, prefix_raw, lines.get("prefix", head), "prefix")
        if parsed_prefix is None:
            return None
        prefix = parsed_prefix
        if not prefix.startswith("*.") and not location:
            _invalid(conf, "invalid condition: location is unset and prefix is not in the format: *.example.com",
                     lines.get("prefix", head), prefix, key="prefix",
                     summary="set location, or use a wildcard prefix *.example.com",
                     params={"add_key": "location", "suggested": prefix})
            return None
    if raw.get("pull-from-mirror"):
        _invalid(conf, f"pull-from-mirror must not be set for a non-mirror registry {_go_quote(prefix)}",
                 lines.get("pull-from-mirror", head), raw["pull-from-mirror"], key="pull-from-mirror",
                 summary="move pull-from-mirror into the [[registry.mirror]] entries",
                 params={"remove": "pull-from-mirror", "move_to": "registry.mirror"})
    if prefix.startswith("*.") and any(c in prefix for c in "/@:"):
        _invalid(conf, f"Wildcarded prefix should be in the format: *.example.com. Current prefix "
                       f"{_go_quote(prefix)} is incorrectly formatted",
                 lines.get("prefix", head), prefix, key="prefix",
                 summary="a wildcard prefix names only a domain: *.example.com",
                 params={"value": prefix, "new_value": re.split(r"[/@:]", prefix, maxsplit=1)[0]})
    return RegistryEntry(prefix=prefix, location=location, insecure=bool(raw.get("insecure", False)),
                         blocked=bool(raw.get("blocked", False)),
                         mirror_by_digest_only=bool(raw.get("mirror-by-digest-only", False)),
                         mirrors=_mirrors(conf, i, raw, prefix), file=conf.path, lines=lines)


def _conflicts(conf: _FileConf) -> None:
    """One location defined twice with different ``insecure``/``blocked`` in one file is an error."""
    by_location: dict[str, RegistryEntry] = {}
    reported: set[tuple[str, str]] = set()
    for entry in conf.registries:
        key = entry.location or entry.prefix
        first = by_location.setdefault(key, entry)
        for setting, a, b in (("insecure", first.insecure, entry.insecure), ("blocked", first.blocked, entry.blocked)):
            if a != b and (key, setting) not in reported:
                reported.add((key, setting))
                _invalid(conf, f"registry '{entry.location}' is defined multiple times with conflicting '{setting}' setting",
                         entry.line(setting), b, key=setting,
                         summary=f"give every [[registry]] for {key} the same {setting} value",
                         params={"location": key, "first": first.where(setting)})


def _dedupe_prefixes(conf: _FileConf) -> None:
    """Within one file the first entry of a prefix wins; later ones are silently dropped."""
    seen: dict[str, RegistryEntry] = {}
    kept: list[RegistryEntry] = []
    for entry in conf.registries:
        if entry.prefix in seen:
            line = entry.line()
            conf.warnings.append(finding(
                "config.ignored-key", conf.path,
                f"{_where(conf.path, line)}: a second [[registry]] with prefix {entry.prefix!r} is ignored",
                f"containers/image keeps the first entry for a prefix within one file ({seen[entry.prefix].where()}) "
                "and drops later ones without a message.",
                evidence={"file": conf.path, "line": line, "key": "prefix", "value": entry.prefix,
                          "kept": seen[entry.prefix].where()},
                runtime=RUNTIME,
                fix=fix("config.ignored-key", conf.path, f"merge the two [[registry]] entries for {entry.prefix}",
                        files=[conf.path], restart=RELOAD, detail=f"prefix:{line}",
                        params={"file": conf.path, "line": line, "key": "prefix", "value": entry.prefix,
                                "merge_into": seen[entry.prefix].where()}),
            ))
            continue
        seen[entry.prefix] = entry
        kept.append(entry)
    conf.registries = kept


def _search(conf: _FileConf, data: Mapping[str, Any]) -> None:
    """``unqualified-search-registries``: hosts only, as ``anchoredDomainRegexp`` requires."""
    if "unqualified-search-registries" not in data:
        return
    line = conf.line("unqualified-search-registries")
    clean: list[str] = []
    for value in data["unqualified-search-registries"]:
        location = _parse_location(conf, value, line, "unqualified-search-registries")
        if location is None:
            continue
        if not _ANCHORED_DOMAIN.match(location):
            _invalid(conf, f"Invalid unqualified-search-registries entry {_go_quote(location)}", line, value,
                     key="unqualified-search-registries",
                     summary="list registry hosts only (host[:port]), no namespaces",
                     params={"value": value, "new_value": location.split("/", 1)[0]})
            continue
        clean.append(location)
    conf.search = clean
    conf.search_line = line


def _short_name_mode(conf: _FileConf, data: Mapping[str, Any]) -> None:
    """``short-name-mode``: one of the three modes, or an error."""
    mode = data.get("short-name-mode", "")
    if not mode:
        return
    line = conf.line("short-name-mode")
    if mode not in SHORT_NAME_MODES:
        _invalid(conf, f"invalid short-name mode: {_go_quote(mode)}", line, mode, key="short-name-mode",
                 summary=f"use one of {', '.join(SHORT_NAME_MODES)}",
                 params={"value": mode, "new_value": _nearest(mode, list(SHORT_NAME_MODES)) or "permissive"})
        return
    conf.short_name_mode = mode
    conf.short_name_mode_line = line


def _plain_ref(text: str) -> re.Match[str] | None:
    """distribution/reference ``Parse`` (no normalisation), or ``None``."""
    m = _PLAIN_REFERENCE.match(text)
    return m if m and len(m.group("path")) + len(m.group("domain") or "") <= 255 else None


def _alias_problems(name: str, value: str) -> list[str]:
    """``validateShortName`` and ``parseShortNameValue`` messages."""
    problems: list[str] = []
    m = _plain_ref(name)
    if m is None:
        problems.append(f"cannot parse short name: {_go_quote(name)}")
    elif m.group("digest"):
        problems.append(f"invalid short name {_go_quote(name)}: must not contain digest")
    elif m.group("tag"):
        problems.append(f"invalid short name {_go_quote(name)}: must not contain tag")
    elif m.group("domain") and (any(c in m.group("domain") for c in ".:") or m.group("domain") == "localhost"):
        problems.append(f"invalid short name {_go_quote(name)}: must not contain registry")
    if value == "":
        return problems
    v = _plain_ref(value)
    if v is None:
        problems.append(f"parsing alias {_go_quote(value)}: invalid reference format")
    elif v.group("digest"):
        problems.append(f"invalid alias {_go_quote(value)}: must not contain digest")
    elif v.group("tag"):
        problems.append(f"invalid alias {_go_quote(value)}: must not contain tag")
    elif not v.group("domain") or not (any(c in v.group("domain") for c in ".:") or v.group("domain") == "localhost"):
        problems.append(f"invalid alias {_go_quote(value)}: must contain registry and repository")
    return problems


def _aliases(conf: _FileConf, data: Mapping[str, Any]) -> None:
    """``[aliases]``: short name to fully qualified name; ``""`` erases."""
    for name, value in data.get("aliases", {}).items():
        line = conf.line("aliases", name)
        problems = _alias_problems(name, value)
        for problem in problems:
            _invalid(conf, f"validating short-name aliases: {problem}", line, f"{name} = {value}", key=f"aliases.{name}",
                     summary="aliases map a short name (no registry, tag or digest) to registry/repository",
                     params={"alias": name})
        if not problems:
            conf.aliases[name] = Alias(name, value or None, conf.path, line)


def _credential_helpers(conf: _FileConf, data: Mapping[str, Any]) -> None:
    """``credential-helpers``, when the file sets it."""
    if "credential-helpers" in data:
        conf.credential_helpers = list(data["credential-helpers"])
        conf.credential_helpers_line = conf.line("credential-helpers")


def _load_registries_file(host: Host, path: str, drop_in: bool) -> _FileConf:
    """``loadConfigFile``: decode, v1/v2 checks, ``postProcessRegistries``, short names, aliases."""
    parsed = _read_toml(host, path, "containers/image cannot load the registries configuration: " + _REFUSED)
    conf = _FileConf(path, parsed)
    if not parsed.ok or not isinstance(parsed.data, dict):
        return conf
    decoded = _decode(parsed.data, TOP_KEYS)
    conf.decoded = decoded
    _type_findings(conf, decoded)
    _unknown_key_findings(conf, decoded)
    data = decoded.data
    v2_set = any(k in data for k in _V2_KEYS)
    if _v1_set(data):
        line = conf.line("registries")
        if drop_in:
            _invalid(conf, "registry must be in v2 format but is in v1", line, "[registries.*]", key="registries",
                     summary="rewrite the drop-in in v2 format ([[registry]], unqualified-search-registries)",
                     params={"convert": "v1-to-v2"})
            return conf
        if v2_set:
            _invalid(conf, "mixing sysregistry v1/v2 is not supported", line, "[registries.*]", key="registries",
                     summary="convert the [registries.search/insecure/block] tables to v2 entries",
                     params={"convert": "v1-to-v2"})
            return conf
        _convert_v1(conf, data)
    else:
        for i, raw in enumerate(data.get("registry", [])):
            entry = _registry_entry(conf, i, raw)
            if entry is not None:
                conf.registries.append(entry)
        _search(conf, data)
    _conflicts(conf)
    _dedupe_prefixes(conf)
    _short_name_mode(conf, data)
    _credential_helpers(conf, data)
    _aliases(conf, data)
    return conf


# -- registries.conf: which files, merged -------------------------------------------------------

def registries_paths(host: Host, home: str, env: Mapping[str, str] | None = None) -> tuple[str, bool, list[str], str]:
    """``newConfigWrapperWithHomeDir``: (main file, main is explicit, drop-in dirs, why).

    ``env`` is the podman/skopeo process environment (``CONTAINERS_REGISTRIES_CONF``,
    ``REGISTRIES_CONFIG_PATH``); CRI-O does not read those variables, so pass ``None`` for it.
    """
    env = env or {}
    user_file = posixpath.join(home, USER_REGISTRIES_CONF)
    user_dir = posixpath.join(home, USER_REGISTRIES_DIR)
    for var in ("CONTAINERS_REGISTRIES_CONF", "REGISTRIES_CONFIG_PATH"):
        if var in env:  # set, even empty, it ends the search (an empty value means the default)
            if env[var]:
                return env[var], True, [SYSTEM_REGISTRIES_DIR, user_dir], f"{var}={env[var]}"
            break
    if host.exists(user_file):
        return user_file, False, [user_dir], f"{user_file} exists, so it replaces {SYSTEM_REGISTRIES_CONF}"
    return SYSTEM_REGISTRIES_CONF, False, [SYSTEM_REGISTRIES_DIR, user_dir], "system file"


def _dropin_files(host: Host, dirs: list[str], out: RegistriesConf) -> list[str]:
    """``*.conf`` files of each drop-in dir in lexical order, one dir after the other."""
    files: list[str] = []
    for d in dirs:
        if not host.is_dir(d):
            continue  # absent, or a plain file: WalkDir finds no *.conf in it
        names = host.listdir(d)
        if names is None:
            file = host.read(d)
            out.findings.append(finding(
                "config.permission", d, f"{d} exists but cannot be listed",
                f"containers/image fails with \"reading registries.conf.d\": {_REFUSED}",
                evidence={"file": d, "line": None, "value": file.error or file.status},
                runtime=RUNTIME,
                fix=fix("config.permission", d, f"inspect permissions: ls -ld {d}", kind="command",
                        params={"command": f"ls -ld {d}"}),
            ))
            out.refused = out.refused or out.findings[-1]
            continue
        files += [posixpath.join(d, n) for n in names if n.endswith(".conf") and not host.is_dir(posixpath.join(d, n))]
    return files


def _replacement_finding(old: RegistryEntry, new: RegistryEntry) -> Finding | None:
    """A drop-in entry replaced ``old`` wholesale: say which of its settings are gone."""
    lost = []
    if old.mirrors and not new.mirrors:
        lost.append(f"{len(old.mirrors)} mirror(s) ({', '.join(m.location for m in old.mirrors)})")
    for attr, label in (("insecure", "insecure = true"), ("blocked", "blocked = true"),
                        ("mirror_by_digest_only", "mirror-by-digest-only = true")):
        if getattr(old, attr) and not getattr(new, attr):
            lost.append(label)
    if old.location != new.location:
        lost.append(f"location = {old.location!r}")
    if not lost:
        return None
    line = new.line("prefix") or new.line()
    return finding(
        "config.ignored-key", new.file,
        f"{_where(new.file, line)}: [[registry]] {new.prefix!r} replaces the one in {old.where()} wholesale",
        f"Drop-ins replace an entry with the same prefix as a whole; nothing is merged, so "
        f"{'; '.join(lost)} from {old.where()} no longer apply.",
        severity="info",
        evidence={"file": new.file, "line": line, "key": "prefix", "value": new.prefix, "replaced": old.where(),
                  "lost": lost},
        runtime=RUNTIME,
        fix=fix("config.ignored-key", new.file, f"repeat the settings you still want in {new.file}",
                files=[new.file], restart=RELOAD, detail=f"prefix:{line}",
                params={"file": new.file, "line": line, "prefix": new.prefix, "copy_from": old.where(), "lost": lost}),
    )


def _merge(out: RegistriesConf, conf: _FileConf) -> None:
    """``updateWithConfigurationFrom``: a later file's settings override the merged ones."""
    for entry in conf.registries:
        old = out.registries.get(entry.prefix)
        if old is not None:
            entry = RegistryEntry(**{**entry.__dict__, "replaced": old.replaced + (old.where(),)})
            note = _replacement_finding(old, entry)
            if note:
                out.findings.append(note)
        out.registries[entry.prefix] = entry
    if conf.search is not None:
        out.search = conf.search
        out.search_source = _where(conf.path, conf.search_line)
    if conf.short_name_mode:
        out.short_name_mode = conf.short_name_mode
        out.short_name_mode_source = _where(conf.path, conf.short_name_mode_line)
    if conf.credential_helpers is not None:
        out.credential_helpers = conf.credential_helpers or [AUTH_FILE_HELPER]
        out.credential_helpers_source = _where(conf.path, conf.credential_helpers_line)
    out.aliases.update(conf.aliases)


def _file_values(conf: _FileConf) -> dict[str, Any]:
    """Effective values of one file for the Config panel."""
    values: dict[str, Any] = {}
    if conf.registries:
        values["registry"] = {e.prefix: {"location": e.location, "mirrors": [m.location for m in e.mirrors],
                                         "insecure": e.insecure, "blocked": e.blocked} for e in conf.registries}
    if conf.search is not None:
        values["unqualified-search-registries"] = conf.search
    if conf.short_name_mode:
        values["short-name-mode"] = conf.short_name_mode
    if conf.credential_helpers is not None:
        values["credential-helpers"] = conf.credential_helpers
    if conf.aliases:
        values["aliases"] = {a.name: a.value for a in conf.aliases.values()}
    return values


def _record(out: RegistriesConf, conf: _FileConf, kind: str, detail: str) -> None:
    """Add one file's SourceFile and findings; the first rejecting error refuses the configuration."""
    parsed = conf.parsed
    out.findings += parsed.findings + conf.errors + conf.warnings
    status = parsed.status if parsed.status != "ok" else ("parse-error" if conf.errors else "ok")
    problem = conf.errors[0].title if conf.errors else parsed.error
    out.sources.append(SourceFile(conf.path, RUNTIME, kind, status, problem or detail, _file_values(conf)))
    if out.refused is None and parsed.status in ("parse-error", "unreadable"):
        out.refused = parsed.findings[0] if parsed.findings else None
    if out.refused is None and conf.errors:
        out.refused = conf.errors[0]


def _missing_explicit(out: RegistriesConf, path: str, why: str) -> None:
    """An env-named registries.conf that does not exist: podman/skopeo refuse every pull."""
    variable = why.split("=", 1)[0]
    out.findings.append(finding(
        "config.invalid-value", path, f"{variable} names {path}, which does not exist",
        f"With {variable} set, podman/skopeo require the file: every pull fails with "
        "\"loading registries configuration\".",
        evidence={"file": path, "line": None, "key": variable, "value": path},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", path, f"create {path} or unset {variable}", kind="manual",
                params={"variable": variable, "value": path}),
    ))
    out.refused = out.refused or out.findings[-1]


def _load_aliases_cache(host: Host, out: RegistriesConf) -> None:
    """``short-name-aliases.conf``: podman-recorded aliases, which win over registries.conf."""
    conf = _load_registries_file(host, SHORT_NAME_ALIASES, drop_in=True)
    if conf.parsed.status == "missing":
        return
    kind = "short-name-aliases.conf"
    out.findings += conf.parsed.findings + conf.errors
    out.sources.append(SourceFile(SHORT_NAME_ALIASES, RUNTIME, kind, conf.parsed.status if not conf.errors
                                  else "parse-error", "recorded aliases; they win over registries.conf",
                                  {"aliases": {a.name: a.value for a in conf.aliases.values()}}))
    out.aliases.update(conf.aliases)


def load_registries(host: Host, home: str | None = None, env: Mapping[str, str] | None = None) -> RegistriesConf:
    """Read registries.conf and its drop-ins the way containers/image merges them."""
    home = home or host.home()
    out = RegistriesConf()
    main, explicit, dirs, why = registries_paths(host, home, env)
    main_conf = _load_registries_file(host, main, drop_in=False)
    if main_conf.parsed.status == "missing":
        out.sources.append(SourceFile(main, RUNTIME, "registries.conf", "missing",
                                      f"{why}; absent, so built-in defaults apply"))
        if explicit:
            _missing_explicit(out, main, why)
    else:
        out.files.append(main)
        _record(out, main_conf, "registries.conf", why)
        _merge(out, main_conf)
    for path in _dropin_files(host, dirs, out):
        conf = _load_registries_file(host, path, drop_in=True)
        if conf.parsed.status == "missing":
            continue
        out.files.append(path)
        _record(out, conf, "registries.conf drop-in", "drop-in: overrides earlier files")
        _merge(out, conf)
    _load_aliases_cache(host, out)
    out.findings += _short_name_prompt(out)
    return out


def _short_name_prompt(conf: RegistriesConf) -> list[Finding]:
    """Pattern 21: ``enforcing`` with several search registries cannot resolve a short name without a TTY."""
    if conf.short_name_mode != "enforcing" or len(conf.search) < 2:
        return []
    path, _, line = conf.short_name_mode_source.rpartition(":")
    line_no = int(line) if line.isdigit() else None
    path = path if line_no else conf.short_name_mode_source
    dropin = posixpath.join(SYSTEM_REGISTRIES_DIR, "999-regtui-short-name-mode.conf")
    return [finding(
        "config.short-name-prompt", path,
        f"short-name-mode = \"enforcing\" with {len(conf.search)} search registries: short names fail without a TTY",
        "For an image named without a registry (\"alpine\"), podman and buildah must ask which of "
        f"{', '.join(conf.search)} ({conf.search_source}) to use; in CI or any non-interactive shell they fail "
        "with \"short-name resolution enforced but cannot prompt without a TTY\".",
        evidence={"file": path, "line": line_no, "key": "short-name-mode", "value": "enforcing",
                  "unqualified-search-registries": conf.search, "search_source": conf.search_source},
        runtime=RUNTIME,
        fix=fix("config.short-name-prompt", path,
                f"add the drop-in {dropin} with short-name-mode = \"permissive\" (or use fully qualified names)",
                files=[dropin], restart=RELOAD,
                params={"drop_in": dropin, "key": "short-name-mode", "value": "permissive",
                        "content": 'short-name-mode = "permissive"\n'}),
    )]


# -- crio.conf ----------------------------------------------------------------------------------

@dataclass
class CrioConf:
    """What of CRI-O's own configuration matters for pulls."""

    global_auth_file: str = ""
    global_auth_file_source: str = ""
    insecure_registries: list[str] = field(default_factory=list)
    insecure_registries_source: str = ""
    files: list[str] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def _image_table(data: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The ``[crio.image]`` table and its key path (case as written)."""
    crio_key = next((k for k in data if k.lower() == "crio"), None)
    crio = data.get(crio_key) if crio_key else None
    if not isinstance(crio, dict):
        return {}, ()
    image_key = next((k for k in crio if k.lower() == "image"), None)
    image = crio.get(image_key) if image_key else None
    return (image, (crio_key, image_key)) if isinstance(image, dict) else ({}, ())


def _crio_type_error(parsed: Parsed, keypath: tuple[str, ...], value: Any, expected: str) -> Finding:
    """A crio.conf value of the wrong type: CRI-O does not start."""
    line = parsed.line(*keypath)
    dotted = ".".join(keypath)
    return finding(
        "config.invalid-value", parsed.path,
        f"{_where(parsed.path, line)}: {dotted} must be a {expected}, not a {_toml_type(value)}",
        "CRI-O cannot decode its configuration and does not start.",
        evidence={"file": parsed.path, "line": line, "key": dotted, "value": redact.value(value)},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", parsed.path, f"give {dotted} a {expected} value", files=[parsed.path],
                restart=RESTART, detail=f"{dotted}:{line}",
                params={"file": parsed.path, "line": line, "key": keypath[-1], "expected": expected}),
    )


def _apply_crio_file(out: CrioConf, parsed: Parsed) -> dict[str, Any]:
    """Take the pull-related ``[crio.image]`` keys of one crio.conf file; returns its values."""
    image, base = _image_table(parsed.data if isinstance(parsed.data, dict) else {})
    values: dict[str, Any] = {}
    for key, value in image.items():
        keypath = base + (key,)
        name = key.lower()
        if name == "global_auth_file":
            if not isinstance(value, str):
                out.findings.append(_crio_type_error(parsed, keypath, value, "string"))
                continue
            out.global_auth_file, out.global_auth_file_source = value, parsed.where(*keypath)
            values["global_auth_file"] = value
        elif name == "insecure_registries":
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                out.findings.append(_crio_type_error(parsed, keypath, value, "array of strings"))
                continue
            out.insecure_registries, out.insecure_registries_source = list(value), parsed.where(*keypath)
            values["insecure_registries"] = value
        elif name == "registries":
            values["registries"] = value
            out.findings.append(_legacy_registries(parsed, keypath, value))
    return values


def _legacy_registries(parsed: Parsed, keypath: tuple[str, ...], value: Any) -> Finding:
    """``[crio.image] registries``: accepted and ignored by current CRI-O."""
    line = parsed.line(*keypath)
    dropin = posixpath.join(SYSTEM_REGISTRIES_DIR, "999-regtui-search.conf")
    return finding(
        "config.ignored-key", parsed.path,
        f"{_where(parsed.path, line)}: crio.conf 'registries' has no effect",
        "CRI-O dropped support for [crio.image] registries: short names are resolved only through "
        "unqualified-search-registries in registries.conf.",
        evidence={"file": parsed.path, "line": line, "key": "registries", "value": redact.value(value)},
        runtime=RUNTIME,
        fix=fix("config.ignored-key", parsed.path,
                "move the list to unqualified-search-registries in a registries.conf.d drop-in",
                files=[parsed.path, dropin], restart=RESTART, detail=f"registries:{line}",
                params={"file": parsed.path, "line": line, "key": "registries",
                        "new_key": "unqualified-search-registries", "drop_in": dropin,
                        "value": value if isinstance(value, list) else []}),
    )


def _expand(argv: list[str], env: Mapping[str, str]) -> list[str]:
    """systemd's ``$VAR`` (split into words) and ``${VAR}`` (one word) in ExecStart."""
    out: list[str] = []
    for word in argv:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            out += env.get(m.group(1), "").split()
            continue
        out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda g: env.get(g.group(1), ""), word))
    return out


def _flags(argv: list[str]) -> dict[str, str]:
    """``--name value`` / ``--name=value`` / ``-c value`` options of a crio command line."""
    aliases = {"-c": "--config", "-d": "--config-dir"}
    out: dict[str, str] = {}
    i = 1
    while i < len(argv):
        word = aliases.get(argv[i], argv[i])
        if word.startswith("--") and "=" in word:
            name, value = word.split("=", 1)
            out[name] = value
        elif word.startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            out[word] = argv[i + 1]
            i += 1
        i += 1
    return out


def load_crio_conf(host: Host, unit: systemd.UnitConfig | None = None,
                   env: Mapping[str, str] | None = None) -> CrioConf:
    """crio.conf, then every file of crio.conf.d in name order, then flags and ``CONTAINER_*`` variables."""
    out = CrioConf()
    env = env or {}
    argv = _expand(unit.exec_start, env) if unit else []
    flags = _flags(argv)
    main = flags.get("--config") or env.get("CONTAINER_CONFIG") or CRIO_CONF
    conf_dir = flags.get("--config-dir") or env.get("CONTAINER_CONFIG_DIR") or CRIO_CONF_DIR
    paths = [main] + sorted(host.glob(conf_dir, ""))
    for path in paths:
        parsed = _read_toml(host, path, "CRI-O does not start with a configuration it cannot parse.")
        out.findings += parsed.findings
        if parsed.status == "missing":
            if path == main:
                out.sources.append(SourceFile(path, RUNTIME, "crio.conf", "missing", "absent: CRI-O defaults apply"))
            continue
        out.files.append(path)
        values = _apply_crio_file(out, parsed) if parsed.ok else {}
        out.sources.append(parsed.source(RUNTIME, "crio.conf" if path == main else "crio.conf drop-in",
                                         values=values))
    source = unit.exec_start_source if unit else ""
    if "--global-auth-file" in flags:
        out.global_auth_file, out.global_auth_file_source = flags["--global-auth-file"], source or "crio command line"
    elif env.get("CONTAINER_GLOBAL_AUTH_FILE"):
        out.global_auth_file = env["CONTAINER_GLOBAL_AUTH_FILE"]
        out.global_auth_file_source = "environment CONTAINER_GLOBAL_AUTH_FILE"
    if "--insecure-registry" in flags:
        out.insecure_registries = flags["--insecure-registry"].split(",")
        out.insecure_registries_source = source or "crio command line"
    return out


# -- auth.json chain ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AuthFile:
    """One file in the credential lookup chain."""

    path: str
    why: str
    """How it got into the chain (``REGISTRY_AUTH_FILE``, ``global_auth_file (crio.conf:12)``...)."""
    legacy: bool = False
    """``.dockercfg`` format: the top level is the ``auths`` map and keys are hosts only."""
    explicit: bool = False
    """Named explicitly: it replaces the whole chain."""


@dataclass(frozen=True)
class AuthEntry:
    """One ``auths`` entry; never printed with its secret."""

    key: str
    file: str
    line: int | None
    username: str = ""
    secret: str = field(default="", repr=False)
    kind: str = "basic"
    """``basic``, ``identitytoken``, ``empty`` (a credential-store marker) or ``malformed``."""
    problem: str = ""
    """For ``malformed``: why, without the secret."""
    fatal: bool = False
    """The runtime's lookup fails on this entry (bad base64) instead of skipping it."""

    def where(self) -> str:
        """``path:line (key)`` for reports."""
        return f"{_where(self.file, self.line)} ({self.key})"


@dataclass
class _AuthContents:
    """One credentials file as read: entries, credHelpers, and whether lookups through it fail."""

    file: AuthFile
    status: str = "missing"
    """``ok``, ``missing`` or ``error`` (the lookup through this file fails)."""
    error: str = ""
    entries: dict[str, AuthEntry] = field(default_factory=dict)
    cred_helpers: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    creds_store: str = ""


@dataclass(frozen=True)
class AuthMatch:
    """What the runtime would use for one lookup key."""

    credential: Credential | None = None
    source: str | None = None
    """``path:line (key)`` or ``credential helper docker-credential-X (...)``; ``None`` for anonymous."""
    error: str = ""
    """Non-empty when the lookup itself fails: the runtime fails this endpoint before any request."""


def normalize_registry(registry: str) -> str:
    """``normalizeRegistry``: Docker Hub's names all mean ``index.docker.io``."""
    return _HUB_NORMALIZED if registry in _HUB_ALIASES else registry


def normalize_auth_key(key: str, legacy: bool = False) -> str:
    """``normalizeAuthFileKey``: strip ``http(s)://`` (and then the path), normalise Hub."""
    stripped = key.removeprefix("http://").removeprefix("https://")
    if legacy or stripped != key:
        stripped = stripped.split("/", 1)[0]
    return normalize_registry(stripped)


def _lookup_order(key: str, registry: str, legacy: bool) -> Iterator[str]:
    """``authKeyLookupOrder``: the repository, each parent namespace, then the registry."""
    if legacy:
        yield registry
        return
    while True:
        yield key
        if "/" not in key:
            return
        key = key.rsplit("/", 1)[0]


def auth_chain(host: Host, home: str, env: Mapping[str, str], explicit: str = "", explicit_why: str = "") -> list[AuthFile]:
    """``getAuthFilePaths`` for uid 0: an explicit file alone, or the default chain."""
    if explicit:
        return [AuthFile(explicit, explicit_why or "explicit auth file", explicit=True)]
    chain: list[AuthFile] = []
    runtime_dir = env.get("XDG_RUNTIME_DIR", "")
    if runtime_dir:
        if host.exists(runtime_dir):
            chain.append(AuthFile(posixpath.join(runtime_dir, "containers/auth.json"),
                                  "${XDG_RUNTIME_DIR}/containers/auth.json"))
    else:
        chain.append(AuthFile("/run/containers/0/auth.json", "/run/containers/$UID/auth.json (XDG_RUNTIME_DIR unset)"))
    config_home = env.get("XDG_CONFIG_HOME") or posixpath.join(home, ".config")
    chain.append(AuthFile(posixpath.join(config_home, "containers/auth.json"),
                          "${XDG_CONFIG_HOME:-~/.config}/containers/auth.json"))
    if env.get("DOCKER_CONFIG"):
        chain.append(AuthFile(posixpath.join(env["DOCKER_CONFIG"], "config.json"), "$DOCKER_CONFIG/config.json"))
    else:
        chain.append(AuthFile(posixpath.join(home, ".docker/config.json"), "~/.docker/config.json"))
    chain.append(AuthFile(posixpath.join(home, ".dockercfg"), "~/.dockercfg (legacy format)", legacy=True))
    return chain


def _field(obj: Mapping[str, Any], name: str) -> tuple[str | None, Any]:
    """Go's encoding/json field match: exact name first, then case-insensitive."""
    if name in obj:
        return name, obj[name]
    for k, v in obj.items():
        if k.lower() == name.lower():
            return k, v
    return None, None


def _decode_auth(value: str) -> tuple[str, str, str, bool]:
    """``decodeDockerAuth``: (user, password, problem, fatal); a problem means the entry is not used."""
    try:
        decoded = base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return "", "", "the auth value is not valid base64", True
    text = decoded.decode("utf-8", errors="replace")
    if ":" not in text:
        if decoded:
            return "", "", "the decoded auth value has no ':' between user and password", False
        return "", "", "", False
    user, _, password = text.partition(":")
    return user, password.strip("\x00"), "", False


def _auth_entry(key: str, raw: Any, file: str, line: int | None) -> AuthEntry | str:
    """One ``auths`` value, or a type error message."""
    if not isinstance(raw, dict):
        return f"json: cannot unmarshal {_json_type(raw)} into Go value of type config.dockerAuthConfig"
    _, auth = _field(raw, "auth")
    _, token = _field(raw, "identitytoken")
    if auth is not None and not isinstance(auth, str):
        return f"json: cannot unmarshal {_json_type(auth)} into Go struct field dockerAuthConfig.auths.auth of type string"
    if token is not None and not isinstance(token, str):
        return (f"json: cannot unmarshal {_json_type(token)} into Go struct field "
                "dockerAuthConfig.auths.identitytoken of type string")
    if not auth:
        return AuthEntry(key, file, line, kind="empty")
    user, password, problem, fatal = _decode_auth(auth)
    if problem:
        return AuthEntry(key, file, line, kind="malformed", problem=problem, fatal=fatal)
    if not user and not password:
        return AuthEntry(key, file, line, kind="empty")
    if token:
        return AuthEntry(key, file, line, user, token, kind="identitytoken")
    return AuthEntry(key, file, line, user, password)


def _json_type(value: Any) -> str:
    """Go's name for a JSON value's type in unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    return {str: "string", int: "number", float: "number", list: "array", dict: "object", type(None): "null"}.get(
        type(value), "value")


def _read_auth_file(host: Host, af: AuthFile) -> tuple[_AuthContents, Parsed]:
    """``authPath.parse`` with Go's decoding rules (case-insensitive fields, typed values)."""
    what = ("containers/image fails every credential lookup that reaches this file, so pulls that find no "
            "credentials in an earlier file fail too, public images included (\"reading JSON file\").")
    parsed = _read_json(host, af.path, what)
    contents = _AuthContents(af)
    if parsed.status == "missing":
        return contents, parsed
    if not parsed.ok:
        contents.status, contents.error = "error", parsed.error or parsed.status
        return contents, parsed
    contents.status = "ok"
    data = parsed.data if parsed.data is not None else {}  # JSON null decodes to an empty file in Go
    if af.legacy:
        auths, auths_key = data, None
    else:
        if not isinstance(data, dict):
            contents.status = "error"
            contents.error = f"json: cannot unmarshal {_json_type(data)} into Go value of type config.dockerConfigFile"
            return contents, parsed
        auths_key, auths = _field(data, "auths")
        helpers_key, helpers = _field(data, "credHelpers")
        _, store = _field(data, "credsStore")
        if isinstance(store, str):
            contents.creds_store = store
        if helpers is not None:
            if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
                contents.status = "error"
                contents.error = "json: cannot unmarshal credHelpers into Go struct field of type map[string]string"
                return contents, parsed
            contents.cred_helpers = {k: (v, parsed.line(helpers_key, k)) for k, v in helpers.items()}
    if auths is None:
        return contents, parsed
    if not isinstance(auths, dict):
        contents.status = "error"
        contents.error = (f"json: cannot unmarshal {_json_type(auths)} into Go struct field dockerConfigFile.auths "
                          "of type map[string]config.dockerAuthConfig")
        return contents, parsed
    for key, raw in auths.items():
        line = parsed.line(auths_key, key) if auths_key else parsed.line(key)
        entry = _auth_entry(key, raw, af.path, line)
        if isinstance(entry, str):
            contents.status, contents.error = "error", entry
            contents.entries = {}
            return contents, parsed
        contents.entries[key] = entry
    return contents, parsed


@dataclass
class AuthStore:
    """The credential sources containers/image consults, in order, with a lookup like its own."""

    chain: list[AuthFile] = field(default_factory=list)
    contents: list[_AuthContents] = field(default_factory=list)
    helpers: list[str] = field(default_factory=lambda: [AUTH_FILE_HELPER])
    """registries.conf ``credential-helpers``, in order."""
    helper_paths: dict[str, str | None] = field(default_factory=dict)
    """``docker-credential-<name>`` -> host path on PATH, or ``None`` when absent."""
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def lookup(self, key: str) -> AuthMatch:
        """Credentials for ``key`` (a registry host or a repository name such as ``quay.io/ns/img``)."""
        registry = key.split("/", 1)[0]
        errors: list[str] = []
        pending: list[str] = []
        for helper in self.helpers:
            if helper != AUTH_FILE_HELPER:
                binary = f"docker-credential-{helper}"
                if self.helper_paths.get(binary) is None:
                    errors.append(f"exec: \"{binary}\": executable file not found in $PATH")
                else:
                    pending.append(binary)
                continue
            match = self._from_files(key, registry)
            if match.error:
                errors.append(match.error)
                continue
            if match.source:
                return _with_pending(match, pending, registry)
        if pending:
            return AuthMatch(None, f"credential helper {pending[0]} (not queried offline)")
        if errors:
            return AuthMatch(error="errors looking up credentials: " + "; ".join(errors))
        return AuthMatch()

    def _from_files(self, key: str, registry: str) -> AuthMatch:
        """The ``containers-auth.json`` helper: the chain files in order."""
        for contents in self.contents:
            if contents.status == "missing":
                continue
            if contents.status == "error":
                return AuthMatch(error=f"reading JSON file {_go_quote(contents.file.path)}: {contents.error}")
            match = _find_in_file(contents, key, registry, self.helper_paths)
            if match is not None:
                if match.error or match.source:
                    return match
                continue
        return AuthMatch()


def _with_pending(match: AuthMatch, pending: list[str], registry: str) -> AuthMatch:
    """An earlier external helper may hold credentials too: say so, it would win."""
    if not pending:
        return match
    return AuthMatch(match.credential, f"{pending[0]} if it holds credentials for {registry}, else {match.source}")


def _find_in_file(contents: _AuthContents, key: str, registry: str,
                  helper_paths: Mapping[str, str | None]) -> AuthMatch | None:
    """``findCredentialsInFile``; ``None`` when the file has nothing for ``key``."""
    af = contents.file
    if registry in contents.cred_helpers:
        helper, line = contents.cred_helpers[registry]
        binary = f"docker-credential-{helper}"
        where = _where(af.path, line)
        if helper_paths.get(binary) is None:
            return AuthMatch(error=f"exec: \"{binary}\": executable file not found in $PATH ({where})")
        return AuthMatch(None, f"credential helper {binary} ({where} credHelpers[{registry}])")
    entry = next((contents.entries[k] for k in _lookup_order(key, registry, af.legacy) if k in contents.entries), None)
    if entry is None:
        wanted = normalize_registry(registry)
        entry = next((e for k, e in contents.entries.items() if normalize_auth_key(k, af.legacy) == wanted), None)
    if entry is None:
        return None
    if entry.kind == "malformed":
        if entry.fatal:
            return AuthMatch(error=f"{entry.where()}: {entry.problem}")
        return AuthMatch()
    if entry.kind == "empty":
        return AuthMatch()
    return AuthMatch(Credential(entry.username, entry.secret, entry.where(), entry.kind), entry.where())


def _auth_kind(af: AuthFile) -> str:
    """What kind of credentials file this chain entry is."""
    if af.legacy:
        return ".dockercfg"
    return "docker config.json" if af.path.endswith("config.json") else "auth.json"


def _auth_findings(host: Host, contents: _AuthContents, parsed: Parsed,
                   helper_paths: dict[str, str | None]) -> list[Finding]:
    """Offline findings for one credentials file: parse, shape, malformed entries, helpers, mode."""
    af = contents.file
    out: list[Finding] = list(parsed.findings)
    if contents.status == "error" and parsed.ok:
        out.append(finding(
            "config.invalid-value", af.path, f"{af.path}: {contents.error}",
            "containers/image cannot decode this credentials file; every lookup that reaches it fails "
            "(\"reading JSON file\"), so pulls fail even for public images unless an earlier file answers.",
            evidence={"file": af.path, "line": None, "value": contents.error},
            runtime=RUNTIME,
            fix=fix("config.invalid-value", af.path, f"correct the structure of {af.path}", kind="manual",
                    params={"file": af.path}),
        ))
    for entry in contents.entries.values():
        if entry.kind == "malformed":
            out.append(_malformed(entry))
    for registry, (helper, line) in contents.cred_helpers.items():
        binary = f"docker-credential-{helper}"
        helper_paths.setdefault(binary, host.which(binary))
        if helper_paths[binary] is None:
            out.append(_helper_missing(af.path, line, binary, f"credHelpers[{registry}]",
                                       f"credential lookups for {registry} fail, so every pull from it fails",
                                       {"file": af.path, "line": line, "key": "credHelpers", "registry": registry,
                                        "remove": registry}))
    if contents.creds_store and any(e.kind == "empty" for e in contents.entries.values()):
        out.append(_creds_store_ignored(af, parsed, contents))
    file = parsed.file
    if file.ok and file.mode is not None and file.mode & 0o044:
        out.append(finding(
            "config.permission", af.path, f"{af.path} is readable by other users (mode {file.mode:04o})",
            "The file holds registry credentials; anyone who can read it can pull (and often push) as you.",
            evidence={"file": af.path, "line": None, "value": f"{file.mode:04o}"},
            runtime=RUNTIME,
            fix=fix("config.permission", af.path, f"chmod 600 {af.path}", kind="command",
                    params={"command": f"chmod 600 {af.path}", "mode": "0600"}),
        ))
    return out


def _malformed(entry: AuthEntry) -> Finding:
    """``auth.malformed`` for one entry; the secret never appears."""
    impact = ("the lookup fails, so every pull that reaches this entry fails" if entry.fatal else
              "containers/image skips the entry with a warning and continues with the next file")
    return finding(
        "auth.malformed", entry.file,
        f"{_where(entry.file, entry.line)}: the auth value for {entry.key!r} is not base64 of user:password",
        f"{entry.problem}; {impact}.",
        evidence={"file": entry.file, "line": entry.line, "key": entry.key, "value": redact.MASK,
                  "problem": entry.problem},
        runtime=RUNTIME,
        fix=fix("auth.malformed", entry.file, f"log in again to {entry.key} (podman login) to rewrite the entry",
                kind="manual", detail=entry.key, params={"file": entry.file, "line": entry.line, "key": entry.key}),
    )


def _helper_missing(path: str, line: int | None, binary: str, key: str, impact: str,
                    params: Mapping[str, Any]) -> Finding:
    """``auth.helper-missing`` for a credential helper binary not on PATH."""
    return finding(
        "auth.helper-missing", path,
        f"{_where(path, line)}: {key} names {binary}, which is not on PATH",
        f"containers/image runs {binary} for credentials; it is missing, so {impact} "
        f"(\"exec: {binary}: executable file not found in $PATH\").",
        evidence={"file": path, "line": line, "key": key, "value": binary},
        runtime=RUNTIME,
        fix=fix("auth.helper-missing", path, f"remove {key} or install {binary}", files=[path], restart="none",
                detail=key, params=dict(params)),
    )


def _creds_store_ignored(af: AuthFile, parsed: Parsed, contents: _AuthContents) -> Finding:
    """Docker's ``credsStore`` is not read by containers/image."""
    key, _ = _field(parsed.data, "credsStore")
    line = parsed.line(key) if key else None
    stored = [k for k, e in contents.entries.items() if e.kind == "empty"]
    return finding(
        "config.ignored-key", af.path,
        f"{_where(af.path, line)}: credsStore {contents.creds_store!r} is ignored by podman, skopeo and CRI-O",
        "containers/image reads only auths and credHelpers from Docker's config.json; the credentials "
        f"docker login stored in docker-credential-{contents.creds_store} for {', '.join(stored)} are never used.",
        evidence={"file": af.path, "line": line, "key": "credsStore", "value": contents.creds_store,
                  "registries": stored},
        runtime=RUNTIME,
        fix=fix("config.ignored-key", af.path, f"add credHelpers entries for {', '.join(stored)}", files=[af.path],
                restart="none", detail="credsStore",
                params={"file": af.path, "key": "credsStore", "new_key": "credHelpers",
                        "helper": contents.creds_store, "registries": stored}),
    )


def load_auth(host: Host, home: str, env: Mapping[str, str], helpers: list[str], *, explicit: str = "",
              explicit_why: str = "", helpers_source: str = "") -> AuthStore:
    """Read the credential chain and check registries.conf ``credential-helpers``."""
    store = AuthStore(chain=auth_chain(host, home, env, explicit, explicit_why), helpers=list(helpers))
    runtime_dir = env.get("XDG_RUNTIME_DIR", "")
    if not explicit and runtime_dir and not host.exists(runtime_dir):
        store.sources.append(SourceFile(posixpath.join(runtime_dir, "containers/auth.json"), RUNTIME, "auth.json",
                                        "ignored", f"XDG_RUNTIME_DIR {runtime_dir} does not exist; skipped with a warning"))
    for af in store.chain:
        contents, parsed = _read_auth_file(host, af)
        store.contents.append(contents)
        store.findings += _auth_findings(host, contents, parsed, store.helper_paths)
        if contents.status == "missing" and af.explicit:
            store.findings.append(_explicit_auth_missing(af))
        status = {"ok": "ok", "missing": "missing"}.get(contents.status, "parse-error" if parsed.status != "unreadable"
                                                                          else "unreadable")
        values = {"auths": list(contents.entries), "credHelpers": {k: v for k, (v, _) in contents.cred_helpers.items()}}
        store.sources.append(SourceFile(af.path, RUNTIME, _auth_kind(af), status,
                                        contents.error or af.why, values if contents.status == "ok" else {}))
    for helper in helpers:
        if helper == AUTH_FILE_HELPER:
            continue
        binary = f"docker-credential-{helper}"
        store.helper_paths.setdefault(binary, host.which(binary))
        if store.helper_paths[binary] is None:
            path, _, line = helpers_source.rpartition(":")
            line_no = int(line) if line.isdigit() else None
            path = path if line_no else (helpers_source or SYSTEM_REGISTRIES_CONF)
            store.findings.append(_helper_missing(
                path, line_no, binary, "credential-helpers",
                "lookups fail unless another helper finds credentials, and then every pull fails, public images included",
                {"file": path, "line": line_no, "key": "credential-helpers", "remove": helper}))
    return store


def _explicit_auth_missing(af: AuthFile) -> Finding:
    """An explicit auth file that does not exist: no credentials at all (no error)."""
    return finding(
        "config.invalid-value", af.path, f"{af.why.split(' (')[0]} names {af.path}, which does not exist",
        "An explicit auth file replaces the whole lookup chain; as it is missing, no credentials are sent "
        "(a missing file is not an error, so pulls of private images fail with \"unauthorized\").",
        severity="warning",
        evidence={"file": af.path, "line": None, "key": af.why, "value": af.path},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", af.path, f"create {af.path} (podman login --authfile {af.path}) or fix the setting",
                kind="manual", params={"value": af.path, "setting": af.why}),
    )


# -- certs dirs -----------------------------------------------------------------------------------

def certs_dir_candidates(home: str, hostport: str) -> list[str]:
    """``dockerCertDir`` candidates for ``host[:port]``, in order (the first existing one is used)."""
    bases = [posixpath.join(home, USER_CERTS_DIR), *SYSTEM_CERTS_DIRS]
    return [posixpath.join(b, hostport) for b in bases]


def certs_dir(host: Host, home: str, hostport: str) -> str | None:
    """The certs dir containers/image reads for ``host[:port]``, or ``None`` when none exists."""
    return next((d for d in certs_dir_candidates(home, hostport) if host.exists(d)), None)


# -- the runtime view -----------------------------------------------------------------------------

@dataclass
class CrioConfig:
    """Everything the CRI-O/podman route planner needs, read once."""

    host: Host
    home: str
    perspective: str
    """``crio`` (the CRI-O daemon's view) or ``podman`` (podman/skopeo as root in this shell)."""
    registries: RegistriesConf
    auth: AuthStore
    crio: CrioConf
    proxy_env: ProxyEnv


def detect(host: Host) -> list[str]:
    """Binaries and config dirs that show CRI-O, podman, skopeo or buildah on the host."""
    evidence = [p for b in BINARIES if (p := host.which(b))]
    evidence += [d for d in CONFIG_DIRS if host.is_dir(d)]
    evidence += [p for d in systemd.UNIT_DIRS if host.is_file(p := posixpath.join(d, CRIO_UNIT))][:1]
    return evidence


def _daemon_env(host: Host, unit: systemd.UnitConfig) -> tuple[dict[str, str], dict[str, str], list[SourceFile], list[Finding]]:
    """crio.service's environment; without a unit file, the packaged environment files it would read."""
    if unit.found:
        return dict(unit.environment), dict(unit.env_sources), list(unit.files), list(unit.findings)
    env: dict[str, str] = {}
    sources: dict[str, str] = {}
    files: list[SourceFile] = []
    findings: list[Finding] = []
    for path in CRIO_ENV_FILES:
        values, where, source, problems = systemd.env_file(host, path, RUNTIME)
        if source.status == "missing":
            continue
        env.update(values)
        sources.update(where)
        files.append(SourceFile(source.path, source.runtime, source.kind, source.status,
                                "assumed: the packaged crio.service reads it (no unit file under the root)",
                                source.values))
        findings += problems
    return env, sources, files, findings


def _client_env(host: Host, client_env: Mapping[str, str] | None) -> dict[str, str]:
    """The podman/skopeo environment: given, else this process's when the host is live."""
    if client_env is not None:
        return dict(client_env)
    return dict(host.environ) if host.live else {}


def _client_inputs(crio_present: bool, crio: CrioConf, daemon_env: dict[str, str], env_sources: dict[str, str],
                   shell: dict[str, str]) -> tuple[dict[str, str], str, str, ProxyEnv]:
    """Whose environment, explicit auth file and proxy apply: CRI-O's when it is here, else the shell's."""
    if crio_present:
        why = f"global_auth_file ({crio.global_auth_file_source})" if crio.global_auth_file else ""
        return daemon_env, crio.global_auth_file, why, from_environ(daemon_env, env_sources, "crio")
    explicit = shell.get("REGISTRY_AUTH_FILE", "")
    why = "REGISTRY_AUTH_FILE (replaces the chain)" if explicit else ""
    proxy_env = from_environ(shell, {k: "environment" for k in PROXY_VARS if k in shell}, "podman")
    return shell, explicit, why, proxy_env


def load_config(host: Host, *, client_env: Mapping[str, str] | None = None) -> tuple[CrioConfig, list[SourceFile], list[Finding]]:
    """Read every file CRI-O (or podman/skopeo as root) reads for pulls.

    ``client_env`` is the environment podman/skopeo run with (this process's environment when
    the host is live, else empty); CRI-O's own comes from crio.service.
    """
    home = host.home()
    shell = _client_env(host, client_env)
    unit = systemd.load_unit(host, CRIO_UNIT, RUNTIME)
    daemon_env, env_sources, sources, findings = _daemon_env(host, unit)
    crio_present = bool(host.which("crio") or host.is_dir("/etc/crio") or unit.found)

    crio = load_crio_conf(host, unit, daemon_env) if crio_present else CrioConf()
    registries = load_registries(host, home, None if crio_present else shell)
    env, explicit, why, proxy_env = _client_inputs(crio_present, crio, daemon_env, env_sources, shell)
    auth = load_auth(host, home, env, registries.credential_helpers, explicit=explicit, explicit_why=why,
                     helpers_source=registries.credential_helpers_source)
    sources += crio.sources + registries.sources + auth.sources
    findings += crio.findings + registries.findings + auth.findings
    if crio_present:
        sources += _podman_override_note(host, home, shell)
        findings += _unused_auth_files(host, home, auth, crio)
    cfg = CrioConfig(host, home, "crio" if crio_present else "podman", registries, auth, crio, proxy_env)
    return cfg, sources, findings


def _unused_auth_files(host: Host, home: str, auth: AuthStore, conf: CrioConf) -> list[Finding]:
    """Credentials stored where CRI-O never looks (``podman login`` in a login shell, or a chain file
    next to ``global_auth_file``): ``auth.wrong-key``."""
    in_chain = {af.path for af in auth.chain}
    candidates = [AuthFile("/run/user/0/containers/auth.json", "podman login with XDG_RUNTIME_DIR=/run/user/0")]
    candidates += auth_chain(host, home, {}) if conf.global_auth_file else []
    out: list[Finding] = []
    for af in candidates:
        if af.path in in_chain:
            continue
        contents, _ = _read_auth_file(host, af)
        keys = [k for k, e in contents.entries.items() if e.kind in ("basic", "identitytoken")]
        if not keys:
            continue
        used = auth.chain[0].path if conf.global_auth_file else ", ".join(sorted(in_chain))
        why = (f"global_auth_file ({conf.global_auth_file_source}) replaces the whole chain" if conf.global_auth_file
               else "CRI-O runs without XDG_RUNTIME_DIR and reads /run/containers/0/auth.json")
        out.append(finding(
            "auth.wrong-key", af.path,
            f"{af.path} holds credentials for {', '.join(keys)} that CRI-O never reads",
            f"{why}; the entries in {af.path} ({af.why}) are not sent, so CRI-O pulls of private images from "
            f"{', '.join(keys)} fail with \"unauthorized\" while podman in a shell works.",
            evidence={"file": af.path, "line": None, "key": "auths", "value": keys, "read_instead": used},
            runtime=RUNTIME,
            fix=fix("auth.wrong-key", af.path, f"copy the entries for {', '.join(keys)} into {auth.chain[0].path}",
                    files=[auth.chain[0].path], restart="none",
                    params={"from": af.path, "to": auth.chain[0].path, "keys": keys}),
        ))
    return out


def _podman_override_note(host: Host, home: str, shell: Mapping[str, str]) -> list[SourceFile]:
    """podman/skopeo in this shell read another registries.conf than CRI-O: show it."""
    main, explicit, _, why = registries_paths(host, home, shell)
    if not explicit:
        return []
    return [SourceFile(main, RUNTIME, "registries.conf", "ignored",
                       f"{why}: podman/skopeo in this shell read this file instead; CRI-O does not")]


def _summary(cfg: CrioConfig) -> dict[str, Any]:
    """Effective values worth showing in the Config panel and the report."""
    regs = cfg.registries
    return {
        "perspective": "CRI-O daemon" if cfg.perspective == "crio" else "podman/skopeo as root",
        "registries_conf": regs.files,
        "registries": sorted(regs.registries),
        "unqualified_search_registries": regs.search,
        "short_name_mode": regs.short_name_mode,
        "credential_helpers": regs.credential_helpers,
        "auth_files": [af.path for af in cfg.auth.chain],
        "global_auth_file": cfg.crio.global_auth_file or None,
        "insecure_registries": cfg.crio.insecure_registries,
        "refused": regs.refused.title if regs.refused else None,
        "reload": "systemctl reload crio (SIGHUP) re-reads registries.conf; podman/skopeo read it on every run",
    }


def load(host: Host, options: CheckOptions | None = None, *, client_env: Mapping[str, str] | None = None) -> RuntimeView:
    """The ``crio`` runtime view: files, offline findings, proxy environment and route planner."""
    from regtui.runtimes.crio import routes as crio_routes  # the planner imports this module's records

    cfg, sources, findings = load_config(host, client_env=client_env)

    def credentials(key: str) -> Credential | None:
        """Credentials for an endpoint host, or a repository on it (namespaced keys need it)."""
        # An endpoint host, or a repository on it (namespaced auth keys need the repository).
        if key.split("/", 1)[0] == HUB_API_HOST:
            key = DOCKER_HUB + key[len(HUB_API_HOST):]
        return cfg.auth.lookup(key).credential

    return RuntimeView(
        name=RUNTIME,
        detected_by=detect(host),
        sources=sources,
        findings=findings,
        proxy_env=cfg.proxy_env,
        planner=lambda ref: crio_routes.plan(cfg, ref),
        credentials=credentials,
        summary=_summary(cfg),
    )
