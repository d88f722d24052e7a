"""Fixes in the containers/image files CRI-O, podman and skopeo read: registries.conf(.d)
values and typos, prefixes, ``blocked``, short-name mode, auth.json entries."""

from __future__ import annotations

import json
from typing import Any

from regtui.fixes._context import Context
from regtui.fixes._helpers import ManualOnly, PlanRefused, edit_json, edit_toml, require
from regtui.fixes._jsonedit import JsonDoc
from regtui.fixes._tomledit import TomlDoc, toml_key, toml_value
from regtui.redact import MASK

__all__ = ["keypath_at", "invalid_value", "ignored_key", "set_prefix", "unblock", "short_name_dropin",
           "copy_auth_entries", "legacy_search_dropin"]


def keypath_at(doc: TomlDoc, line: int | None, last: str) -> tuple[Any, ...]:
    """The key path (array-of-tables indices included) of key ``last`` written on ``line``."""
    from regtui.config._source import toml_key_lines

    lines = toml_key_lines(doc.text())
    found = [k for k, n in lines.items() if n == line and k and k[-1] == last]
    require(found, f"{last!r} is no longer on line {line}; preview the fix again")
    return found[0]


def _file(ctx: Context) -> str:
    return str(ctx.params.get("file") or ctx.finding.subject)


def invalid_value(ctx: Context) -> None:
    """``config.invalid-value`` (registries.conf): a location or prefix with ``http(s)://`` loses its scheme;
    plain ``http://`` becomes ``insecure = true``."""
    p = ctx.params
    if "new_value" not in p:
        raise ManualOnly("regtui cannot tell which value was meant")
    key = str(p.get("key", "")).split(".")[-1]
    path = _file(ctx)

    def edit(doc: TomlDoc) -> None:
        keypath = keypath_at(doc, p.get("line"), key)
        current = doc.get(keypath)
        if isinstance(current, list):
            require(p.get("value") in current, f"{p.get('value')!r} is no longer listed")
            doc.set(keypath, [p["new_value"] if v == p["value"] else v for v in current])
        else:
            require(current == p.get("value"), f"{key} no longer says {p.get('value')!r}")
            doc.set(keypath, p["new_value"])
        for k, v in (p.get("also_set") or {}).items():
            doc.set(keypath[:-1] + (k,), v)

    edit_toml(ctx, path, edit)


def ignored_key(ctx: Context) -> None:
    """``config.ignored-key`` (registries.conf typo): rename the key to the one containers/image knows."""
    p = ctx.params
    if p.get("new_key") == "unqualified-search-registries" and p.get("drop_in"):
        legacy_search_dropin(ctx)
        return
    new_key, key = p.get("new_key"), p.get("key")
    if not new_key or not key or "line" not in p:
        raise ManualOnly("no known key has this meaning; correct or remove it by hand")
    path = _file(ctx)

    def edit(doc: TomlDoc) -> None:
        keypath = keypath_at(doc, p["line"], key)
        if isinstance(doc.get(keypath), dict):
            doc.rename_table(keypath, new_key)
        else:
            doc.rename_key(keypath, new_key)

    edit_toml(ctx, path, edit)


def set_prefix(ctx: Context) -> None:
    """``mirror.not-applied`` (registries.conf): correct the ``prefix`` so it matches the normalised name."""
    p = ctx.params
    path = _file(ctx)

    def edit(doc: TomlDoc) -> None:
        keypath = keypath_at(doc, p.get("line"), "prefix")
        require(doc.get(keypath) == p.get("value"), f"prefix no longer says {p.get('value')!r}")
        doc.set(keypath, p["new_value"])

    edit_toml(ctx, path, edit)


def unblock(ctx: Context) -> None:
    """``config.blocked``: remove ``blocked = true`` from the ``[[registry]]`` entry (after confirmation)."""
    p = ctx.params
    path = _file(ctx)

    def edit(doc: TomlDoc) -> None:
        keypath = keypath_at(doc, p.get("line"), "blocked")
        require(doc.get(keypath) is True, "the entry is no longer blocked")
        doc.delete(keypath)

    edit_toml(ctx, path, edit)
    ctx.confirm = (f"CRI-O, podman and skopeo will pull from {p.get('prefix')} again; make sure it was not blocked "
                   "on purpose (a mirror-only setup, a security policy)")


def short_name_dropin(ctx: Context) -> None:
    """``config.short-name-prompt``: a registries.conf.d drop-in with ``short-name-mode = "permissive"``."""
    p = ctx.params
    path, content = p.get("drop_in"), p.get("content")
    require(path and content, "the finding names no drop-in")
    current = ctx.read(path)
    if current is not None:
        require(current == content.encode(), f"{path} exists with other content; edit it by hand")
        return
    ctx.write(path, content.encode(), mode=0o644)


def legacy_search_dropin(ctx: Context) -> None:
    """``config.ignored-key`` (crio.conf ``registries``): move the list to a registries.conf.d drop-in."""
    p = ctx.params
    values = [v for v in p.get("value") or [] if isinstance(v, str)]
    require(values, "the list is empty: nothing to move")
    dropin = p["drop_in"]
    require(ctx.read(dropin) is None, f"{dropin} exists; edit it by hand")
    ctx.write(dropin, f"{toml_key('unqualified-search-registries')} = {toml_value(values)}\n".encode(), mode=0o644)

    def edit(doc: TomlDoc) -> None:
        keypath = keypath_at(doc, p.get("line"), "registries")
        doc.delete(keypath)

    edit_toml(ctx, str(p.get("file")), edit)


def copy_auth_entries(ctx: Context) -> None:
    """``auth.wrong-key`` (CRI-O): copy credentials into the auth file CRI-O reads (created 0600 when absent)."""
    p = ctx.params
    src, dst, keys = p.get("from"), p.get("to"), list(p.get("keys") or [])
    require(src and dst and keys, "the finding does not say what to copy")
    text, _ = ctx.text(src)
    try:
        data = json.loads(text)
    except ValueError:
        raise PlanRefused(f"{src} is not valid JSON any more") from None
    auths = data.get("auths") if isinstance(data, dict) else None
    require(isinstance(auths, dict), f"{src} has no auths object")

    def edit(doc: JsonDoc) -> None:
        for key in keys:
            require(key in auths, f"{src} no longer holds {key}")
            require(MASK not in json.dumps(auths[key]), "internal: masked value")
            if doc.has(("auths", key)):
                require(doc.get(("auths", key)) == auths[key], f"{dst} already holds other credentials for {key}")
                continue
            doc.set(("auths", key), auths[key])

    edit_json(ctx, dst, edit, create=True, secret=True, mode=0o600)
