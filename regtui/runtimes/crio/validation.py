"""Loading and validating one registries.conf file the way ``loadConfigFile`` does (SEMANTICS
§3.2): type errors and unknown keys, v1 conversion and v1/v2 mixing, ``[[registry]]`` and
``[[registry.mirror]]`` checks with the exact containers/image messages, conflicts and duplicate
prefixes within a file; the short-name keys are checked by :mod:`.shortnames`."""

from __future__ import annotations

import re
from typing import Any, Mapping

from regtui.findings import finding, fix
from regtui.host import Host
from regtui.runtimes.crio.common import (
    RELOAD,
    RUNTIME,
    go_quote,
    nearest_key,
    path_line,
    read_located_toml,
    toml_type,
)
from regtui.runtimes.crio.conffile import (
    GO_TYPE,
    MIRROR_KEYS,
    REFUSED,
    REGISTRY_KEYS,
    TOP_KEYS,
    V2_KEYS,
    Decoded,
    FileConf,
    decode,
    invalid,
    parse_location,
)
from regtui.runtimes.crio.records import Mirror, RegistryEntry
from regtui.runtimes.crio.shortnames import read_aliases, read_search, read_short_name_mode, validate_search

__all__ = ["PULL_FROM_MIRROR_VALUES", "load_registries_file"]

PULL_FROM_MIRROR_VALUES = ("all", "digest-only", "tag-only")


def _type_findings(conf: FileConf, decoded: Decoded) -> None:
    """BurntSushi/toml's "incompatible types" errors: the runtime refuses the file."""
    for written, kind, value in decoded.type_errors:
        dotted = ".".join(str(k) for k in written if not isinstance(k, int))
        line = conf.parsed.line(*written)
        message = (f"toml: line {line or '?'} (last key {go_quote(dotted)}): incompatible types: TOML value has type "
                   f"{toml_type(value)}; destination has type {GO_TYPE.get(kind, kind)}")
        invalid(conf, message, line, value, key=dotted, summary=f"give {dotted} a {kind} value",
                params={"expected": kind})


def _unknown_key_findings(conf: FileConf, decoded: Decoded) -> None:
    """Keys the runtime drops without a word: ``config.ignored-key`` with the nearest known key."""
    for written, known in decoded.unknown:
        key = str(written[-1])
        dotted = ".".join(str(k) for k in written if not isinstance(k, int))
        line = conf.parsed.line(*written)
        suggestion = nearest_key(key, known)
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        conf.warnings.append(finding(
            "config.ignored-key", conf.path,
            f"{path_line(conf.path, line)}: registries.conf key {dotted!r} is not a known key and is ignored{hint}",
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


def _convert_v1(conf: FileConf, data: Mapping[str, Any]) -> None:
    """``ConvertToV2``: block and insecure lists become entries, search becomes the search list."""
    v1 = data["registries"]
    entries: dict[str, dict[str, Any]] = {}
    for kind, flag in (("block", "blocked"), ("insecure", "insecure")):
        values = v1.get(kind, {}).get("registries", [])
        line = conf.line("registries", kind, "registries")
        for value in values:
            location = parse_location(conf, value, line, f"registries.{kind}.registries")
            if location is None:
                continue
            entry = entries.setdefault(location, {"location": location, "line": line})
            entry[flag] = True
    for location, e in entries.items():
        conf.registries.append(RegistryEntry(prefix=location, location=location, insecure=e.get("insecure", False),
                                             blocked=e.get("blocked", False), file=conf.path,
                                             lines={"": e["line"]} if e["line"] else {}))
    if "registries" in v1.get("search", {}):
        conf.search_line = conf.line("registries", "search", "registries")
        conf.search = validate_search(conf, list(v1["search"]["registries"]), conf.search_line,
                                      "registries.search.registries")


def _entry_lines(conf: FileConf, base: tuple[Any, ...], keys: Mapping[str, Any]) -> dict[str, int]:
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


def _mirrors(conf: FileConf, i: int, raw: dict[str, Any], prefix: str) -> tuple[Mirror, ...]:
    """The ``[[registry.mirror]]`` entries of registry ``i``, validated."""
    out: list[Mirror] = []
    for j, m in enumerate(raw.get("mirror", [])):
        lines = _entry_lines(conf, ("registry", i, "mirror", j), MIRROR_KEYS)
        mirror_line = lines.get("location") or lines.get("")
        location = parse_location(conf, m.get("location", ""), mirror_line, "mirror.location")
        if location is None:
            continue
        if not location:
            invalid(conf, "invalid condition: mirror location is unset", mirror_line, "", key="mirror.location",
                    summary="give the mirror a location (host[:port][/path])")
            continue
        pull_from = m.get("pull-from-mirror", "")
        pf_line = lines.get("pull-from-mirror") or mirror_line
        if raw.get("mirror-by-digest-only") and pull_from:
            invalid(conf, f"cannot set mirror usage mirror-by-digest-only for the registry ({go_quote(prefix)}) "
                           f"and pull-from-mirror for per-mirror ({go_quote(location)}) at the same time",
                    pf_line, pull_from, key="mirror.pull-from-mirror",
                    summary="keep either mirror-by-digest-only on the registry or pull-from-mirror on its mirrors",
                    params={"remove": "pull-from-mirror"})
        elif pull_from and pull_from not in PULL_FROM_MIRROR_VALUES:
            nearest = nearest_key(pull_from, list(PULL_FROM_MIRROR_VALUES))
            invalid(conf, f"unsupported pull-from-mirror value {go_quote(pull_from)} for mirror {go_quote(location)}",
                    pf_line, pull_from, key="mirror.pull-from-mirror",
                    summary=f"use one of {', '.join(PULL_FROM_MIRROR_VALUES)}",
                    params={"value": pull_from, "new_value": nearest or "all"})
        out.append(Mirror(location=location, insecure=bool(m.get("insecure", False)), pull_from_mirror=pull_from,
                          file=conf.path, lines=lines))
    return tuple(out)


def _registry_entry(conf: FileConf, i: int, raw: dict[str, Any]) -> RegistryEntry | None:
    """``postProcessRegistries`` for one ``[[registry]]``."""
    lines = _entry_lines(conf, ("registry", i), REGISTRY_KEYS)
    head = lines.get("")
    location = parse_location(conf, raw.get("location", ""), lines.get("location", head), "location")
    if location is None:
        return None
    prefix_raw = raw.get("prefix", "")
    if not prefix_raw:
        if not location:
            invalid(conf, "invalid condition: both location and prefix are unset", head, "", key="location",
                    summary="set location (and prefix, when it differs)")
            return None
        prefix = location
    else:
        parsed_prefix = parse_location(conf, prefix_raw, lines.get("prefix", head), "prefix")
        if parsed_prefix is None:
            return None
        prefix = parsed_prefix
        if not prefix.startswith("*.") and not location:
            invalid(conf, "invalid condition: location is unset and prefix is not in the format: *.example.com",
                    lines.get("prefix", head), prefix, key="prefix",
                    summary="set location, or use a wildcard prefix *.example.com",
                    params={"add_key": "location", "suggested": prefix})
            return None
    if raw.get("pull-from-mirror"):
        invalid(conf, f"pull-from-mirror must not be set for a non-mirror registry {go_quote(prefix)}",
                lines.get("pull-from-mirror", head), raw["pull-from-mirror"], key="pull-from-mirror",
                summary="move pull-from-mirror into the [[registry.mirror]] entries",
                params={"remove": "pull-from-mirror", "move_to": "registry.mirror"})
    if prefix.startswith("*.") and any(c in prefix for c in "/@:"):
        invalid(conf, f"Wildcarded prefix should be in the format: *.example.com. Current prefix "
                       f"{go_quote(prefix)} is incorrectly formatted",
                lines.get("prefix", head), prefix, key="prefix",
                summary="a wildcard prefix names only a domain: *.example.com",
                params={"value": prefix, "new_value": re.split(r"[/@:]", prefix, maxsplit=1)[0]})
    return RegistryEntry(prefix=prefix, location=location, insecure=bool(raw.get("insecure", False)),
                         blocked=bool(raw.get("blocked", False)),
                         mirror_by_digest_only=bool(raw.get("mirror-by-digest-only", False)),
                         mirrors=_mirrors(conf, i, raw, prefix), file=conf.path, lines=lines)


def _conflicts(conf: FileConf) -> None:
    """One location defined twice with different ``insecure``/``blocked`` in one file is an error."""
    by_location: dict[str, RegistryEntry] = {}
    reported: set[tuple[str, str]] = set()
    for entry in conf.registries:
        key = entry.location or entry.prefix
        first = by_location.setdefault(key, entry)
        for setting, a, b in (("insecure", first.insecure, entry.insecure), ("blocked", first.blocked, entry.blocked)):
            if a != b and (key, setting) not in reported:
                reported.add((key, setting))
                invalid(conf, f"registry '{entry.location}' is defined multiple times with conflicting '{setting}' setting",
                        entry.line(setting), b, key=setting,
                        summary=f"give every [[registry]] for {key} the same {setting} value",
                        params={"location": key, "first": first.where(setting)})


def _dedupe_prefixes(conf: FileConf) -> None:
    """Within one file the first entry of a prefix wins; later ones are silently dropped."""
    seen: dict[str, RegistryEntry] = {}
    kept: list[RegistryEntry] = []
    for entry in conf.registries:
        if entry.prefix in seen:
            line = entry.line()
            conf.warnings.append(finding(
                "config.ignored-key", conf.path,
                f"{path_line(conf.path, line)}: a second [[registry]] with prefix {entry.prefix!r} is ignored",
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


def _credential_helpers(conf: FileConf, data: Mapping[str, Any]) -> None:
    """``credential-helpers``, when the file sets it."""
    if "credential-helpers" in data:
        conf.credential_helpers = list(data["credential-helpers"])
        conf.credential_helpers_line = conf.line("credential-helpers")


def load_registries_file(host: Host, path: str, drop_in: bool) -> FileConf:
    """``loadConfigFile``: decode, v1/v2 checks, ``postProcessRegistries``, short names, aliases."""
    parsed = read_located_toml(host, path, "containers/image cannot load the registries configuration: " + REFUSED)
    conf = FileConf(path, parsed)
    if not parsed.ok or not isinstance(parsed.data, dict):
        return conf
    decoded = decode(parsed.data, TOP_KEYS)
    conf.decoded = decoded
    _type_findings(conf, decoded)
    _unknown_key_findings(conf, decoded)
    data = decoded.data
    v2_set = any(k in data for k in V2_KEYS)
    if _v1_set(data):
        line = conf.line("registries")
        if drop_in:
            invalid(conf, "registry must be in v2 format but is in v1", line, "[registries.*]", key="registries",
                    summary="rewrite the drop-in in v2 format ([[registry]], unqualified-search-registries)",
                    params={"convert": "v1-to-v2"})
            return conf
        if v2_set:
            invalid(conf, "mixing sysregistry v1/v2 is not supported", line, "[registries.*]", key="registries",
                    summary="convert the [registries.search/insecure/block] tables to v2 entries",
                    params={"convert": "v1-to-v2"})
            return conf
        _convert_v1(conf, data)
    else:
        for i, raw in enumerate(data.get("registry", [])):
            entry = _registry_entry(conf, i, raw)
            if entry is not None:
                conf.registries.append(entry)
        read_search(conf, data)
    _conflicts(conf)
    _dedupe_prefixes(conf)
    read_short_name_mode(conf, data)
    _credential_helpers(conf, data)
    read_aliases(conf, data)
    return conf
