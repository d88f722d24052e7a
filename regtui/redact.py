"""Secrets never leak: one place that masks credentials in URLs, headers and config text.

Used by every report writer, the text output and the workbench; tests assert that passwords,
tokens, ``auth`` blobs and proxy credentials never appear in any output.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "url", "text", "value"]

MASK = "***"
# Userinfo runs to the last '@' before the path, as Go's url.Parse reads it: a password that
# itself holds an '@' is masked whole.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s\"']+)@")
# ``user:password@host`` without a scheme (a mirror or insecure-registries entry typed without
# one) is found run by run (a run ends at whitespace, a quote or '/'), which keeps it linear.
_RUN = re.compile(r"[^\s\"'`/]+")
_RUN_DELIMS = "=(,[<"
# After the last '@': a host, not the digest of a tag@digest reference (``alpine:3@sha256:...``).
_AFTER_AT = re.compile(r"[A-Za-z0-9\[](?![A-Za-z0-9]*:[0-9a-fA-F]{32})")
_SECRET_FIELD = re.compile(
    r"(?P<key>[\"']?(?:auth|password|identitytoken|identity_token|registrytoken|token|access_token|"
    r"refresh_token|secret)[\"']?\s*[:=]\s*)(?P<q>[\"'])(?P<val>[^\"']+)(?P=q)",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"(?P<key>\b(?:Authorization|Proxy-Authorization|X-Registry-Auth)\s*[:=]\s*)"
                          r"(?:(?P<scheme>Basic|Bearer)\s+)?(?P<val>[^\s,\"']+)", re.IGNORECASE)
_SECRET_KEYS = {"auth", "password", "identitytoken", "identity_token", "registrytoken", "token",
                "access_token", "refresh_token", "secret", "authorization", "proxy-authorization"}


def url(u: str | None) -> str | None:
    """``http://user:pass@proxy:3128`` becomes ``http://***@proxy:3128`` (``user:pass@proxy`` too)."""
    if u is None:
        return None
    return _userinfo(u)


def text(s: str) -> str:
    """Mask URL credentials, secret-looking ``key = "value"`` pairs and auth headers in free text."""
    s = _userinfo(s)
    s = _SECRET_FIELD.sub(lambda m: f"{m.group('key')}{m.group('q')}{MASK}{m.group('q')}", s)
    s = _AUTH_HEADER.sub(lambda m: f"{m.group('key')}{(m.group('scheme') + ' ') if m.group('scheme') else ''}{MASK}", s)
    return s


def _userinfo(s: str) -> str:
    """``s`` with the userinfo of every URL masked, with or without a scheme."""
    if "@" not in s:
        return s
    s = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", s)
    return _RUN.sub(_mask_bare_userinfo, s)


def _mask_bare_userinfo(m: re.Match[str]) -> str:
    """One run with its ``user:password@`` (up to the last '@') masked, if it has one."""
    run = m.group(0)
    at = run.rfind("@")
    colon = run.find(":", 0, at)
    if at < 0 or colon < 0 or not _AFTER_AT.match(run, at + 1):
        return run
    start = max(run.rfind(d, 0, colon) for d in _RUN_DELIMS) + 1
    return f"{run[:start]}{MASK}{run[at:]}"


def value(obj: Any, key: str | None = None) -> Any:
    """Redact a JSON-like structure: secret keys' values masked, strings passed through :func:`text`."""
    if key is not None and key.lower() in _SECRET_KEYS and obj not in (None, "", {}, []):
        return MASK
    if isinstance(obj, dict):
        return {k: value(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [value(v) for v in obj]
    if isinstance(obj, str):
        return text(obj)
    return obj
