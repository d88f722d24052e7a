"""Short names (SEMANTICS §3.5): ``unqualified-search-registries``, ``short-name-mode``,
``[aliases]`` and the aliases podman records in short-name-aliases.conf, the prompt that fails
without a TTY, and how a short name the user typed is resolved before its route is planned."""

from __future__ import annotations

import posixpath
import re
from typing import Any, Mapping

from regtui.findings import finding, fix
from regtui.model import Finding, SourceFile
from regtui.refs import Reference, ReferenceError, parse
from regtui.runtimes.crio.common import RELOAD, RUNTIME, SYSTEM_REGISTRIES_DIR, go_quote, nearest_key
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
    "short_name_notes",
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
    """What the user typed names a registry (the same rule as normalisation)."""
    first, sep, _ = original.strip().partition("/")
    return bool(sep) and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first)


def _repository_part(typed: str) -> str:
    """What was typed without its tag and digest."""
    name = typed.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def _candidate(registry: str, short: str) -> str:
    """``registry/short`` normalised as containers/image does (docker.io gets ``library/``)."""
    try:
        return parse(f"{registry}/{short}").name
    except ReferenceError:
        return f"{registry}/{short}"


def short_name_notes(regs: RegistriesConf, ref: Reference) -> list[str]:
    """How a short name the user typed is resolved, before the route for the normalised name."""
    typed = ref.original.strip()
    if not typed or _typed_domain(typed):
        return []
    short = _repository_part(typed)
    alias = regs.aliases.get(short)
    if alias is not None and alias.value:
        return [f"{typed!r} is a short name: alias {short} = {alias.value} ({alias.file}:{alias.line}) decides "
                f"where podman and CRI-O pull it; this route is for {ref.name}."]
    if not regs.search:
        return [f"{typed!r} is a short name and no unqualified-search-registries are set ({regs.search_source}): "
                f"podman and CRI-O cannot resolve it; this route is for {ref.name}, what docker would pull."]
    order = ", ".join(_candidate(r, short) for r in regs.search)
    mode = regs.short_name_mode
    prompt = (" With short-name-mode \"enforcing\" and several candidates, podman fails without a TTY."
              if mode == "enforcing" and len(regs.search) > 1 else "")
    return [f"{typed!r} is a short name: podman and CRI-O try {order} in that order "
            f"({regs.search_source}; short-name-mode {mode}).{prompt} This route is for {ref.name}."]
