"""The merged registries.conf records (``[[registry]]``, ``[[registry.mirror]]``, aliases, the
whole :class:`RegistriesConf`) and prefix matching, as ``sysregistriesv2`` does it (SEMANTICS §3.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from regtui.model import Finding, SourceFile
from regtui.runtimes.crio.common import AUTH_FILE_HELPER, path_line

__all__ = ["Mirror", "RegistryEntry", "Alias", "RegistriesConf", "prefix_match", "find_registry"]


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
        return path_line(self.file, self.line(key))


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
        return path_line(self.file, self.line(key))

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
