"""Rewrite patterns (``mirrors.<key>.rewrite``) as k3s's containerd applies them to the repository.

Python's ``re`` stands in for Go's RE2: patterns RE2 refuses (lookaround, backreferences, atomic
groups, possessive quantifiers) are reported and skipped as k3s skips them, ``$1``/``${name}``
replacements are expanded with Go's ``Regexp.Expand`` rules, and empty matches next to a previous
match are skipped as ``ReplaceAllString`` does. Go iterates the rewrite map in random order: when
several patterns change a repository, the result says which could win.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["Rewrite", "go_pattern_to_python", "go_regexp_problem", "go_expand", "apply_rewrites"]

#: (pattern, replacement, line in registries.yaml or ``None``).
Rewrite = tuple[str, str, Any]


# Python ``re`` accepts constructs RE2 refuses; these are the ones seen in rewrite patterns.
_RE2_UNSUPPORTED = (
    (re.compile(r"\(\?[=!]"), "lookahead is not supported by Go's RE2"),
    (re.compile(r"\(\?<[=!]"), "lookbehind is not supported by Go's RE2"),
    (re.compile(r"(?<!\\)\\[1-9]"), "backreferences are not supported by Go's RE2"),
    (re.compile(r"\(\?>"), "atomic groups are not supported by Go's RE2"),
    (re.compile(r"[*+?}]\+"), "possessive quantifiers are not supported by Go's RE2"),
)


def go_pattern_to_python(pattern: str) -> str:
    """An RE2 pattern in Python ``re`` spelling (``(?<name>`` and ``\\z``)."""
    return re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern).replace(r"\z", r"\Z")


def go_regexp_problem(pattern: str) -> str:
    """Why Go's ``regexp.Compile`` would refuse ``pattern``, or ``""``.

    Python ``re`` stands in for RE2; the differences that matter for rewrite patterns are
    refused explicitly (lookaround, backreferences, atomic groups, possessive quantifiers),
    and RE2-only spellings are translated before Python compiles the pattern.
    """
    for check, why in _RE2_UNSUPPORTED:
        if check.search(pattern):
            return why
    try:
        re.compile(go_pattern_to_python(pattern))
    except re.error as exc:
        return str(exc)
    return ""


_NAME = re.compile(r"[A-Za-z0-9_]+")


def go_expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``; unknown names expand to ``""``."""
    out: list[str] = []
    i = 0
    while i < len(template):
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        rest = template[j + 1:]
        if rest.startswith("$"):
            out.append("$")
            i = j + 2
            continue
        if rest.startswith("{"):
            end = rest.find("}")
            name = rest[1:end] if end > 1 else ""
            if not name or not _NAME.fullmatch(name):
                out.append("$")
                i = j + 1
                continue
            i = j + 2 + end
        else:
            m = _NAME.match(rest)
            if not m:
                out.append("$")
                i = j + 1
                continue
            name = m.group(0)
            i = j + 1 + m.end()
        out.append(_group(match, name))
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str:
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except IndexError:  # no such group: Go expands it to nothing
        return ""
    return value or ""


def _replace_all(rx: re.Pattern[str], text: str, template: str) -> str:
    """``ReplaceAllString``: like ``re.sub`` but an empty match right after a match is not replaced."""
    out: list[str] = []
    last, prev_end = 0, -1
    for m in rx.finditer(text):
        if m.start() == m.end() == prev_end:
            continue
        out.append(text[last:m.start()])
        out.append(go_expand(template, m))
        last = prev_end = m.end()
    out.append(text[last:])
    return "".join(out)


def apply_rewrites(repository: str, rewrites: list[Rewrite]) -> tuple[str, str | None, list[str]]:
    """(repository after the rewrite, the pattern that applied, notes).

    The first pattern (in file order) that changes the repository is used, as k3s's containerd
    stops at the first change; the note says so when more than one would.
    """
    changed: list[tuple[str, str]] = []
    for pattern, replacement, _ in rewrites:
        if go_regexp_problem(pattern):
            continue
        new = _replace_all(re.compile(go_pattern_to_python(pattern)), repository, replacement)
        if new != repository:
            changed.append((pattern, new))
    if not changed:
        return repository, None, []
    notes = []
    if len(changed) > 1:
        notes.append(f"rewrites {', '.join(repr(p) for p, _ in changed)} all match {repository!r}: Go walks the rewrite "
                     f"map in random order, so the mirror may get {' or '.join(repr(n) for _, n in changed)}")
    return changed[0][1], changed[0][0], notes

