"""Short names (SEMANTICS §3.5): ``unqualified-search-registries``, ``short-name-mode``,
``[aliases]`` and the aliases podman records in short-name-aliases.conf, the prompt that fails
without a TTY, and how a short name the user typed is resolved before its route is planned."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any, Mapping

from regtui.findings import finding, fix
from regtui.model import Finding, SourceFile, split_location
from regtui.refs import Reference, ReferenceError, parse
from regtui.runtimes.crio.common import (RELOAD, RUNTIME, SYSTEM_REGISTRIES_CONF, SYSTEM_REGISTRIES_DIR, go_quote,
                                         nearest_key, path_line)
from regtui.runtimes.crio.conffile import FileConf, invalid, parse_location
from regtui.runtimes.crio.records import Alias, RegistriesConf

__all__ = [
    "SHORT_NAME_ALIASES",
    "SHORT_NAME_MODES",
    "read_search",
    "validate_search",
    "read_short_name_mode",
    "read_aliases",
    "apply_aliases_cache",
    "short_name_prompt",
    "Candidate",
    "Resolution",
    "resolve",
    "unresolved",
]

#: Aliases podman records when a user picks a short-name candidate (root); they win over registries.conf.
SHORT_NAME_ALIASES = "/var/cache/containers/short-name-aliases.conf"
SHORT_NAME_MODES = ("disabled", "enforcing", "permissive")


_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_ANCHORED_DOMAIN = re.compile(rf"^{_DOMAIN}$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
# distribution/reference's un-normalised grammar: optional domain, path, optional tag and digest.
_PLAIN_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def read_search(conf: FileConf, data: Mapping[str, Any]) -> None:
    """``unqualified-search-registries``: hosts only, as ``anchoredDomainRegexp`` requires."""
    if "unqualified-search-registries" not in data:
        return
    line = conf.line("unqualified-search-registries")
    conf.search = validate_search(conf, data["unqualified-search-registries"], line, "unqualified-search-registries")
    conf.search_line = line


def validate_search(conf: FileConf, values: list[Any], line: int | None, key: str) -> list[str]:
    """``postProcessRegistries`` on the search list: no scheme, a host[:port] only; errors go to ``conf``.

    A v1 ``[registries.search]`` list becomes the v2 search list unchanged (``ConvertToV2``) and is
    checked here the same way, so ``key`` names the table the user wrote.
    """
    clean: list[str] = []
    for value in values:
        location = parse_location(conf, value, line, key)
        if location is None:
            continue
        if not _ANCHORED_DOMAIN.match(location):
            invalid(conf, f"Invalid unqualified-search-registries entry {go_quote(location)}", line, value,
                    key=key,
                    summary="list registry hosts only (host[:port]), no namespaces",
                    params={"value": value, "new_value": location.split("/", 1)[0]})
            continue
        clean.append(location)
    return clean


def read_short_name_mode(conf: FileConf, data: Mapping[str, Any]) -> None:
    """``short-name-mode``: one of the three modes, or an error."""
    mode = data.get("short-name-mode", "")
    if not mode:
        return
    line = conf.line("short-name-mode")
    if mode not in SHORT_NAME_MODES:
        invalid(conf, f"invalid short-name mode: {go_quote(mode)}", line, mode, key="short-name-mode",
                summary=f"use one of {', '.join(SHORT_NAME_MODES)}",
                params={"value": mode, "new_value": nearest_key(mode, list(SHORT_NAME_MODES)) or "permissive"})
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
        problems.append(f"cannot parse short name: {go_quote(name)}")
    elif m.group("digest"):
        problems.append(f"invalid short name {go_quote(name)}: must not contain digest")
    elif m.group("tag"):
        problems.append(f"invalid short name {go_quote(name)}: must not contain tag")
    elif m.group("domain") and (any(c in m.group("domain") for c in ".:") or m.group("domain") == "localhost"):
        problems.append(f"invalid short name {go_quote(name)}: must not contain registry")
    if value == "":
        return problems
    v = _plain_ref(value)
    if v is None:
        problems.append(f"parsing alias {go_quote(value)}: invalid reference format")
    elif v.group("digest"):
        problems.append(f"invalid alias {go_quote(value)}: must not contain digest")
    elif v.group("tag"):
        problems.append(f"invalid alias {go_quote(value)}: must not contain tag")
    elif not v.group("domain") or not (any(c in v.group("domain") for c in ".:") or v.group("domain") == "localhost"):
        problems.append(f"invalid alias {go_quote(value)}: must contain registry and repository")
    return problems


def read_aliases(conf: FileConf, data: Mapping[str, Any]) -> None:
    """``[aliases]``: short name to fully qualified name; ``""`` erases."""
    for name, value in data.get("aliases", {}).items():
        line = conf.line("aliases", name)
        problems = _alias_problems(name, value)
        for problem in problems:
            invalid(conf, f"validating short-name aliases: {problem}", line, f"{name} = {value}", key=f"aliases.{name}",
                    summary="aliases map a short name (no registry, tag or digest) to registry/repository",
                    params={"alias": name})
        if not problems:
            conf.aliases[name] = Alias(name, value or None, conf.path, line)


def apply_aliases_cache(out: RegistriesConf, conf: FileConf) -> None:
    """``short-name-aliases.conf`` (read as ``conf``): podman-recorded aliases, which win over registries.conf."""
    if conf.parsed.status == "missing":
        return
    kind = "short-name-aliases.conf"
    out.findings += conf.parsed.findings + conf.errors
    out.sources.append(SourceFile(SHORT_NAME_ALIASES, RUNTIME, kind, conf.parsed.status if not conf.errors
                                  else "parse-error", "recorded aliases; they win over registries.conf",
                                  {"aliases": {a.name: a.value for a in conf.aliases.values()}}))
    out.aliases.update(conf.aliases)


def short_name_prompt(conf: RegistriesConf) -> list[Finding]:
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


def _typed_domain(original: str) -> bool:
    """``parseUnnormalizedShortName``: the first of several components names a registry (``.``, ``:`` or localhost)."""
    first, sep, _ = original.strip().partition("/")
    return bool(sep) and (any(c in first for c in ".:") or first == "localhost")


def _repository_part(typed: str) -> str:
    """What was typed without its tag and digest."""
    name = typed.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


@dataclass(frozen=True)
class Candidate:
    """One fully qualified name a short name resolves to."""

    ref: Reference
    """Normalised, with the typed tag or digest (``latest`` when neither was typed)."""
    source: str
    """``path:line`` of the alias or of ``unqualified-search-registries`` that produced it."""
    why: str
    """``alias`` or ``search``."""


@dataclass(frozen=True)
class Resolution:
    """What ``shortnames.Resolve`` returns for a short name: candidates in order, or the error."""

    typed: str
    candidates: tuple[Candidate, ...] = ()
    error: str = ""
    """The runtime's error when the name resolves to nothing (the pull fails before any request)."""
    error_source: str = ""
    """``path:line`` of the setting behind the error."""
    note: str = ""


def resolve(regs: RegistriesConf, ref: Reference, perspective: str) -> Resolution | None:
    """containers/image ``pkg/shortnames.Resolve`` for what the user typed; ``None`` when it is not a short name.

    An alias (short-name-aliases.conf first, then the merged ``[aliases]``) wins and keeps the
    typed tag or digest; else every ``unqualified-search-registries`` entry in order, as
    ``registry/typed`` normalised (``docker.io`` adds ``library/``). podman in ``enforcing`` mode
    with several candidates prompts, and without a TTY fails; CRI-O resolves with the mode
    forced to ``disabled`` (cri-o ``internal/storage`` ``CandidatesForPotentiallyShortImageName``),
    so it never prompts and tries them all.
    """
    typed = ref.original.strip()
    if not typed or _typed_domain(typed):
        return None
    short = _repository_part(typed)
    suffix = typed[len(short):]
    alias = regs.aliases.get(short)
    if alias is not None and alias.value:
        source = path_line(alias.file, alias.line or None)
        try:
            cand = parse(alias.value + suffix)
        except ReferenceError as exc:
            return Resolution(typed, error=f"alias {alias.value!r} for {short!r}: {exc}", error_source=source)
        return Resolution(typed, (Candidate(cand, source, "alias"),),
                          note=f"{typed!r} is a short name: alias {short} = {alias.value} ({source}) wins over "
                               f"unqualified-search-registries; podman and CRI-O pull {cand.name} only.")
    if not regs.search:
        where = regs.search_source
        origin = (f"no unqualified-search registries are defined in {go_quote(split_location(where)[0])}"
                  if not where.startswith("default") else "no containers-registries.conf(5) was found")
        return Resolution(typed, error=f"short-name {go_quote(typed)} did not resolve to an alias and {origin}",
                          error_source=where)
    candidates: list[Candidate] = []
    for registry in regs.search:
        try:
            candidates.append(Candidate(parse(f"{registry}/{typed}"), regs.search_source, "search"))
        except ReferenceError as exc:
            return Resolution(typed, error=f"creating reference with unqualified-search registry "
                                           f"{go_quote(registry)}: {exc}", error_source=regs.search_source)
    order = ", ".join(str(c.ref) for c in candidates)
    mode = "disabled (CRI-O always resolves so)" if perspective == "crio" else regs.short_name_mode
    if perspective != "crio" and regs.short_name_mode == "enforcing" and len(candidates) > 1:
        return Resolution(typed, tuple(candidates), error="short-name resolution enforced but cannot prompt without a TTY",
                          error_source=regs.short_name_mode_source,
                          note=f"{typed!r} is a short name with {len(candidates)} candidates ({order}; "
                               f"{regs.search_source}) and short-name-mode \"enforcing\" "
                               f"({regs.short_name_mode_source}): podman asks which one on a TTY and fails without "
                               "one; CRI-O tries them all in order.")
    return Resolution(typed, tuple(candidates),
                      note=f"{typed!r} is a short name: tried as {order} in that order ({regs.search_source}; "
                           f"short-name-mode {mode}); the first that serves it wins.")


def unresolved(resolution: Resolution, perspective: str, reference: str) -> Finding:
    """``config.short-name-unresolved``: the short name resolves to nothing, so the pull fails before any request."""
    path, line = split_location(resolution.error_source)
    if resolution.error_source.startswith("default"):  # nothing set anywhere: the main file is where to add it
        path, line = SYSTEM_REGISTRIES_CONF, None
    who = "CRI-O" if perspective == "crio" else "podman"
    if resolution.candidates:
        hint = ("Use the fully qualified name, add an [aliases] entry for it, or set short-name-mode = "
                "\"permissive\" (a drop-in) so every candidate is tried in order.")
    else:
        hint = "Use the fully qualified name, or add unqualified-search-registries or an [aliases] entry for it."
    return finding(
        "config.short-name-unresolved", resolution.typed,
        f"{who} cannot resolve the short name {resolution.typed!r}: {resolution.error}",
        f"containers/image resolves a name without a registry before contacting any registry, and this one "
        f"resolves to nothing it may pull ({resolution.error_source}). {hint}",
        evidence={"file": path, "line": line, "image": resolution.typed,
                  "reference": reference,
                  "error": resolution.error, "candidates": [str(c.ref) for c in resolution.candidates]},
        runtime=RUNTIME,
    )
