"""Secrets never leak: one policy that masks credentials in URLs, headers, config text and data.

Used where data enters the report (``Report.to_dict``, findings as they are built) and where diffs
are rendered; tests assert that passwords, tokens, ``auth`` blobs and proxy credentials never appear
in any output.

The policy:

- a value under a key whose name looks secret (:func:`secret_name`) is masked whole, whatever its
  type; header values are masked in general (header names are kept);
- the userinfo of every URL is masked, up to the last ``@`` before the host, whatever it holds
  (``/``, spaces, ``@``, ``#``);
- an excerpt of a config file is masked line by line (:func:`lines`): secret-named keys, values in
  a TOML table or YAML/JSON block that is secret-named or holds headers, ``NAME=value`` assignments
  of secret-named variables.

A name looks secret when one of its words (split at ``.``, ``-``, ``_`` and camelCase) is or holds
password, passwd, passphrase, token, secret, credential, cookie, or is auth/authorization; a word
``key`` counts when a qualifier says it is a secret one (``api_key``, ``access_key``, ``private_key``,
``apikey``...). A name whose last word says it is a reference rather than the secret (``key_file``,
``auth_path``, ``credHelpers``, ``tlskey``, a bare ``key``) is shown: those hold paths and names.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["MASK", "url", "text", "value", "line", "lines", "secret_name"]

MASK = "***"

# --- names -------------------------------------------------------------------------------------

_SECRET_SUBSTRINGS = ("password", "passwd", "passphrase", "token", "secret", "credential", "cookie")
_SECRET_WORDS = {"auth", "authorization", "oauth", "pwd", "apikey", "privatekey",
                 "accesskey", "secretkey", "signingkey", "xauth", "proxyauth", "basicauth"}
_KEY_QUALIFIERS = {"api", "access", "private", "secret", "signing", "encryption", "master", "session", "ssh"}
# A last word that names a reference to a secret (a path, a helper, a kind), not the secret itself.
_REFERENCE_TAILS = {"file", "files", "path", "paths", "dir", "directory", "helper", "helpers", "store",
                    "stores", "type", "kind", "mode", "name", "names", "id", "url", "uri", "endpoint",
                    "realm", "service", "scope", "source", "sources", "count", "length", "size", "format",
                    "expiry", "expires", "expiration", "status", "method", "scheme", "required", "env",
                    "request", "requests", "sent", "label", "present", "set", "used", "error", "reason"}
_HEADER_WORDS = {"header", "headers", "httpheaders", "http_headers"}
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
# Names in regtui's own report that say where a secret comes from, never the secret.
_PROVENANCE = {"credentials"}


def _words(name: str) -> list[str]:
    return [w for w in _WORD_SPLIT.split(_CAMEL.sub(r"\1_\2", name).lower()) if w]


def _secret_component(name: str) -> bool:
    words = _words(name)
    if not words or words[-1] in _REFERENCE_TAILS:
        return False
    for i, w in enumerate(words):
        if w in _SECRET_WORDS or any(s in w for s in _SECRET_SUBSTRINGS):
            return True
        if w == "key" and i == len(words) - 1 and i > 0 and words[i - 1] in _KEY_QUALIFIERS:
            return True
    return False


@lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Whether a value stored under ``name`` (a key, a variable, a dotted key path) is a secret."""
    name = name.strip().strip("\"'")
    if name.lower() in _PROVENANCE:
        return False
    if len(name) > 200:
        name = name[-200:]
    parts = [p.strip("\"'") for p in name.split(".")] or [name]
    if _secret_component(parts[-1]):
        return True
    # A dotted path below a secret-named or header table (``auth.username``, ``headers.X-Token``).
    return any(p.lower() in _HEADER_WORDS or p.lower() in {"auth", "authorization"} for p in parts[:-1])


@lru_cache(maxsize=1024)
def _header_name(name: str) -> bool:
    return "".join(_words(name)) in {"header", "headers", "httpheaders"}


# --- URLs ----------------------------------------------------------------------------------------

_SCHEME = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://")
# ``user:password@host`` without a scheme (a mirror or insecure-registries entry typed without one)
# is found run by run (a run ends at whitespace or a quote), which keeps it linear.
_RUN = re.compile(r"[^\s\"'`]+")
_RUN_DELIMS = "=(,[<"
# After the last '@': a host, not the digest of a tag@digest reference (``alpine:3@sha256:...``).
_AFTER_AT = re.compile(r"[A-Za-z0-9\[](?![A-Za-z0-9]*:[0-9a-fA-F]{32})")
# A whole value that is ``[scheme://]userinfo@host[:port][/path]``: the userinfo may hold anything.
_WHOLE_HOST = re.compile(r"[A-Za-z0-9\[][A-Za-z0-9.\-\[\]:%]*(?:[/?#]\S*)?")


_BAD_PORT = re.compile(r"(?P<user>[^:/\s\"'\[\]@]*:)(?P<pw>[^/\s\"'\]@]*[^0-9/\s\"'\]@][^/\s\"'\]@]*)")


def url(u: str | None) -> str | None:
    """``http://user:pass@proxy:3128`` becomes ``http://***@proxy:3128`` (``user:pass@proxy`` too)."""
    if u is None:
        return None
    return _whole_url(u) if isinstance(u, str) else u


def _whole_url(s: str) -> str:
    """``s`` when it is one URL: everything before the last '@' of the authority is userinfo."""
    # ``NAME=URL`` (a quoted ``Environment=`` assignment): the value is the URL; the names stay readable.
    # A loop, not recursion: a hostile value may chain any number of ``NAME=``.
    start = 0
    while (assign := _ASSIGN.match(s, start)) is not None:
        start = assign.end()
    return s[:start] + _one_url(s[start:])


def _one_url(s: str) -> str:
    at = s.rfind("@")
    if at > 0 and "\n" not in s and _WHOLE_HOST.fullmatch(s, at + 1) and _AFTER_AT.match(s, at + 1):
        m = _SCHEME.match(s)
        if m:
            return f"{m.group(0)}{MASK}{s[at:]}"
        if ":" in s[:at] and not s[:at].startswith(MASK):
            return f"{MASK}{s[at:]}"
    return _userinfo(s)


def _userinfo(s: str) -> str:
    """``s`` with the userinfo of every URL masked, with or without a scheme."""
    if "@" not in s and "://" not in s:
        return s
    out = []
    for ln in s.split("\n"):
        out.append(_userinfo_line(ln) if "@" in ln or "://" in ln else ln)
    return "\n".join(out)


def _userinfo_line(s: str) -> str:
    # With a scheme: the userinfo runs to the last '@' (followed by a host) before the next URL on
    # the line, so a password holding '/', ' ', '#' or '@' is masked whole.
    starts = [m.end() for m in _SCHEME.finditer(s)]
    if starts:
        pieces, pos = [], 0
        for i, begin in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(s)
            at = s.rfind("@", begin, end)
            while at >= begin and not _AFTER_AT.match(s, at + 1):
                at = s.rfind("@", begin, at)
            if at >= begin:
                pieces.append(s[pos:begin] + MASK)
                pos = at
                continue
            # ``scheme://user:pass`` cut short at a '#', '/' or '?' of the password: what follows
            # the ':' is no port, so it is masked as the password it is.
            port = _BAD_PORT.match(s, begin, end)
            if port:
                pieces.append(s[pos:port.end("user")] + MASK)
                pos = port.end()
        s = "".join(pieces) + s[pos:]
    return _RUN.sub(_mask_bare_userinfo, s)


def _mask_bare_userinfo(m: re.Match[str]) -> str:
    """One run with its ``user:password@`` (up to the last '@') masked, if it has one."""
    run = m.group(0)
    at = run.rfind("@")
    if at < 0:
        return run
    begin = run.rfind("://", 0, at)
    begin = begin + 3 if begin >= 0 else 0
    colon = run.find(":", begin, at)
    if colon < 0 or not _AFTER_AT.match(run, at + 1) or run[begin:at] == MASK:
        return run
    start = max(begin - 1, max(run.rfind(d, begin, colon) for d in _RUN_DELIMS)) + 1
    return f"{run[:start]}{MASK}{run[at:]}"


# --- text ----------------------------------------------------------------------------------------

_QUOTED = r"\"(?:[^\"\\\n]|\\.)*+\"|'[^'\n]*+'"
# ``name = value``, ``"name": value`` and ``name: "value"`` pairs; the name is checked by
# :func:`secret_name`. The lookbehind makes each name start at a word boundary (linear time).
_PAIR = re.compile(
    r"(?<![\w.\-])(?P<lead>(?P<nq>[\"']?)(?P<name>[A-Za-z_][\w.\-]*+)(?P=nq)\s*(?P<sep>[:=])[ \t]*)"
    r"(?P<val>" + _QUOTED + r"|[^\s,;{}\[\]\"']++)"
)
_QUOTED_RE = re.compile(_QUOTED)
_JSON_SCALAR = re.compile(r"-?[0-9][0-9.eE+\-]*|true|false|null")
_SENTENCE_GOES_ON = re.compile(r"[ \t]+[A-Za-z]")
_AUTH_HEADER = re.compile(r"(?P<key>\b(?:Authorization|Proxy-Authorization|X-Registry-Auth)\s*[:=]\s*)"
                          r"(?:(?P<scheme>Basic|Bearer|Negotiate|NTLM)\s+)?(?P<val>[^\s,\"']+)", re.IGNORECASE)
# The word that ends a Go error chain's link (``authorization: unauthorized: ...``), never a credential.
_PROSE_LINK = re.compile(r"[a-z][a-z-]*:")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL)


def text(s: str) -> str:
    """Mask URL credentials, secret-named ``key = value`` pairs and auth headers in free text."""
    if not isinstance(s, str) or ("@" not in s and ":" not in s and "=" not in s and "PRIVATE KEY" not in s):
        return s
    s = _userinfo(s)
    if "@" in s:
        # A quoted ``user:pass word@host`` is one value: its userinfo may hold spaces.
        s = _QUOTED_RE.sub(lambda m: m.group(0)[0] + _whole_url(m.group(0)[1:-1]) + m.group(0)[-1]
                           if "@" in m.group(0) else m.group(0), s)
    s = _AUTH_HEADER.sub(_mask_auth_header, s)
    s = _PAIR.sub(_mask_pair, s)
    if "PRIVATE KEY-----" in s:
        s = _PEM.sub(MASK, s)
    return s


def _mask_auth_header(m: re.Match[str]) -> str:
    """An ``Authorization: VALUE`` header masked; ``authorization: unauthorized: ...`` in a Go error chain is prose
    (no credential ends with the colon that joins wrapped errors)."""
    if not m.group("scheme") and _PROSE_LINK.fullmatch(m.group("val")):
        return m.group(0)
    return f"{m.group('key')}{(m.group('scheme') + ' ') if m.group('scheme') else ''}{MASK}"


def _mask_pair(m: re.Match[str]) -> str:
    val = m.group("val")
    if not secret_name(m.group("name")):
        if len(val) > 2 and val[0] in "\"'" and "=" in val:
            # ``Environment="GITHUB_TOKEN=..."``: the quoted value holds assignments of its own.
            return m.group("lead") + val[0] + _mask_assignments(val[1:-1]) + val[-1]
        return m.group(0)
    if val == MASK or val.strip("\"'") in (MASK, ""):
        return m.group(0)
    if m.group("sep") == ":" and val[0] not in "\"'" and (
            not m.group("nq") or (not _JSON_SCALAR.fullmatch(val) and _SENTENCE_GOES_ON.match(m.string, m.end()))):
        # ``name: value`` in a sentence is prose, and so is ``"name": word word`` (Go quotes a name before
        # its error, as in ``exec: "docker-credential-x": executable file not found``). Only excerpts
        # (:func:`line`) mask the rest.
        return m.group(0)
    if val.lower() in ("basic", "bearer"):
        return m.group(0)
    q = val[0] if val[0] in "\"'" else ""
    return f"{m.group('lead')}{q}{MASK}{q}"


# --- lines of a config file ----------------------------------------------------------------------

_LINE_PAIR = re.compile(
    r"^(?P<lead>\s*(?:-\s+)?(?:export\s+)?(?P<nq>[\"']?)(?P<name>[^\s\"'=:#\[\]{}]+|(?<=[\"'])[^\"'\n]*)(?P=nq)\s*"
    r"(?P<sep>[:=])\s*)(?P<val>.*?)(?P<tail>\s*,?\s*)$"
)
_ASSIGN = re.compile(r"(?<![\w.\-])(?P<name>[A-Za-z_][\w.\-]*+)=")
_TABLE = re.compile(r"^\s*\[\[?(?P<name>.*?)\]\]?\s*$")
_OPENERS = {"{": "}", "[": "]"}


def line(s: str) -> str:
    """Mask credentials in one line of a config file (JSON, TOML, YAML, unit or env file)."""
    return lines([s])[0]


def lines(src: list[str]) -> list[str]:
    """Mask credentials in the lines of one config file, keeping its shape.

    Context is followed from line to line: the values in a TOML table whose name is secret or
    holds headers, and in a JSON/TOML/YAML block opened under a secret-named key, are masked.
    """
    out: list[str] = []
    table_secret = False
    depth = 0  # bracket depth of an open secret block (JSON/TOML inline)
    yaml_indent = -1  # indentation of a secret YAML key whose value is the indented block below
    for raw in src:
        body = raw.rstrip("\r\n")
        end = raw[len(body):]
        stripped = body.strip()
        indent = len(body) - len(body.lstrip())
        if yaml_indent >= 0 and stripped and indent <= yaml_indent:
            yaml_indent = -1
        if depth > 0 or yaml_indent >= 0:
            out.append(_mask_value_only(body) + end)
            if depth > 0:
                depth = max(0, depth + _bracket_delta(body))
            continue
        t = _TABLE.match(body)
        if t and "=" not in t.group("name"):
            name = t.group("name")
            table_secret = any(secret_name(p) or _header_name(p.strip("\"' ")) for p in _toml_parts(name))
            out.append(text(body) + end)
            continue
        m = _LINE_PAIR.match(body)
        if m and (table_secret or secret_name(m.group("name")) or _header_name(m.group("name"))):
            val = m.group("val")
            head = val[:1]
            if head in _OPENERS:
                delta = _bracket_delta(val)
                if delta > 0:
                    depth = delta
                    out.append(m.group("lead") + head + (MASK if len(val) > 1 else "") + end)
                    continue
            if val in ("", "|", ">", "|-", ">-", "|+", ">+") and m.group("sep") == ":":
                yaml_indent = indent
                out.append(body + end)
                continue
            out.append(m.group("lead") + (MASK if val else "") + m.group("tail") + end)
            continue
        out.append(text(_mask_assignments(body)) + end)
    return out


def _mask_assignments(body: str) -> str:
    """``NAME=value`` of a secret-named variable anywhere on the line (``Environment="TOKEN=..."``):
    the rest of the line is masked, as a value with spaces or quotes has no reliable end."""
    for m in _ASSIGN.finditer(body):
        if secret_name(m.group("name")):
            rest = body[m.end():]
            if not rest or rest.startswith(MASK):
                continue
            tail = rest[-1] if rest[-1] in "\"'" and len(rest) > 1 else ""
            return body[: m.end()] + MASK + tail
    return body


def _mask_value_only(body: str) -> str:
    """A line inside a secret block: keys and brackets stay, values go."""
    stripped = body.strip()
    if not stripped or stripped in ("}", "]", "},", "],", "{", "["):
        return body
    indent = body[: len(body) - len(body.lstrip())]
    m = _LINE_PAIR.match(body)
    if m:
        val = m.group("val")
        if val[:1] in _OPENERS and _bracket_delta(val) > 0:
            return m.group("lead") + val[:1]
        return m.group("lead") + (MASK if val else "") + m.group("tail")
    closer = stripped[-2:] if stripped.endswith(("},", "],")) else stripped[-1:] if stripped[-1:] in "]}" else ""
    return indent + MASK + closer


def _bracket_delta(s: str) -> int:
    """Opened minus closed brackets outside quoted strings."""
    delta, quote, esc = 0, "", False
    for ch in s:
        if quote:
            if esc:
                esc = False
            elif ch == "\\" and quote == '"':
                esc = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            delta += 1
        elif ch in "]}":
            delta -= 1
        elif ch == "#":
            break
    return delta


def _toml_parts(name: str) -> list[str]:
    """Components of a TOML table name (quoted parts kept whole)."""
    return [a or b for a, b in re.findall(r"\"((?:[^\"\\]|\\.)*)\"|([^.\s\"]+)", name)]


# --- data ----------------------------------------------------------------------------------------

_MAX_DEPTH = 48
_SIBLING_NAMES = ("key", "variable", "name", "header", "setting", "option", "field")
_SIBLING_VALUES = ("value", "old", "new", "raw", "default", "values", "current", "suggested")
_EXCERPT_KEYS = {"excerpt", "excerpts", "line_text", "context", "diff"}


def value(obj: Any, key: str | None = None) -> Any:
    """Redact a JSON-like structure under the one policy (iteratively; nesting deeper than a few
    dozen levels is summarised, so no depth can raise ``RecursionError`` here or in a writer)."""
    root: list[Any] = [None]
    # Work items: (container to fill, slot, object, its key, depth).
    stack: list[tuple[Any, Any, Any, str | None, int]] = [(root, 0, obj, key, 0)]
    while stack:
        holder, slot, o, k, depth = stack.pop()
        holder[slot] = _node(o, k, depth, stack)
    return root[0]


def _empty(o: Any) -> bool:
    # ``True``/``False`` say whether a credential was sent or set; they reveal no secret.
    return o is None or isinstance(o, bool) or (isinstance(o, (str, dict, list, tuple)) and len(o) == 0)


def _node(o: Any, k: str | None, depth: int, stack: list[tuple[Any, Any, Any, str | None, int]]) -> Any:
    if k is not None and secret_name(k) and not _empty(o):
        return MASK
    if isinstance(o, dict):
        if depth >= _MAX_DEPTH:
            return "{...}"
        header = k is not None and _header_name(k)
        masked = _sibling_secret(o)
        out: dict[Any, Any] = {}
        for ck, cv in o.items():
            sk = text(ck) if isinstance(ck, str) else ck
            if (header or (masked and ck in _SIBLING_VALUES) or (k == "auths" and not isinstance(cv, dict))) \
                    and not _empty(cv):
                out[sk] = MASK
                continue
            out[sk] = None
            stack.append((out, sk, cv, str(ck), depth + 1))
        return out
    if isinstance(o, (list, tuple)):
        if depth >= _MAX_DEPTH:
            return "[...]"
        header = k is not None and _header_name(k)
        items: list[Any] = [None] * len(o)
        for i, cv in enumerate(o):
            if header and not _empty(cv):
                items[i] = MASK
            else:
                stack.append((items, i, cv, None, depth + 1))
        return items
    if isinstance(o, str):
        if k in _EXCERPT_KEYS or "\n" in o:
            return "\n".join(lines(o.split("\n")))
        return _whole_url(o) if "@" in o else text(o)
    return o


def _sibling_secret(d: dict[Any, Any]) -> bool:
    """Evidence shaped ``{"key": "x-registry-password", "value": ...}``: the value is a secret."""
    for n in _SIBLING_NAMES:
        v = d.get(n)
        if isinstance(v, str) and v and secret_name(v):
            return True
    return False
