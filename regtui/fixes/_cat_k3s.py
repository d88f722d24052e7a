"""Fixes in k3s/RKE2 ``registries.yaml`` (line edits; k3s reads the file only at start, so each
needs a k3s restart): credentials under the endpoint host, duplicate and malformed endpoints,
misspelled keys."""

from __future__ import annotations

from typing import Any

from regtui.fixes._context import Context
from regtui.fixes._helpers import ManualOnly, edit_yaml, require
from regtui.fixes._yamledit import YamlDoc

__all__ = ["wrong_key", "endpoint_fix", "rename_key"]


def _path_at(doc: YamlDoc, line: int | None, prefix: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    found = [k for k, n in doc.lines_of.items() if n == line and tuple(k[:len(prefix)]) == prefix]
    require(found, f"nothing on line {line} any more; preview the fix again")
    return max(found, key=len)


def _restart(ctx: Context) -> None:
    ctx.restart = ctx.finding.fix.restart if ctx.finding.fix and ctx.finding.fix.restart != "none" else "restart k3s"


def wrong_key(ctx: Context) -> None:
    """``auth.wrong-key``: copy ``configs."docker.io".auth`` to ``configs."registry-1.docker.io".auth``."""
    p = ctx.params
    new_key = str(p.get("new_key") or "")
    if "<" in new_key:
        raise ManualOnly("repeat the credentials under each endpoint host that needs them")
    path = ctx.finding.subject

    def edit(doc: YamlDoc) -> None:
        src = _path_at(doc, p.get("line"), ("configs",))
        require(src and src[-1] == "auth", "the credentials are no longer on that line")
        dst = ("configs", "registry-1.docker.io", "auth")
        require(not doc.has(dst), "configs.\"registry-1.docker.io\".auth exists already; merge them by hand")
        doc.copy_block(src, dst)

    edit_yaml(ctx, path, edit)
    _restart(ctx)


def endpoint_fix(ctx: Context) -> None:
    """``config.ignored-key`` (duplicate endpoint) / ``config.invalid-value`` (endpoint with a new value)."""
    p = ctx.params
    path = ctx.finding.subject
    index = p.get("index")
    require(isinstance(index, int), "the finding names no endpoint index")

    def edit(doc: YamlDoc) -> None:
        item = _path_at(doc, p.get("line"), ("mirrors",))
        require(item and item[-1] == index and item[-2] == "endpoint", "the endpoint is no longer on that line")
        if p.get("action") == "remove":
            doc.remove_item(item[:-1], index)
        else:
            new_value = p.get("new_value")
            if not new_value:
                raise ManualOnly("regtui cannot tell which endpoint was meant")
            doc.replace_item(item[:-1], index, new_value)

    edit_yaml(ctx, path, edit)
    _restart(ctx)


def rename_key(ctx: Context) -> None:
    """``config.ignored-key`` (a misspelled key): rename it to the key k3s reads."""
    p = ctx.params
    new_key = p.get("new_key")
    if not new_key or "." in str(new_key) or "<" in str(new_key):
        raise ManualOnly("no key with the same meaning to rename it to")
    path = ctx.finding.subject

    def edit(doc: YamlDoc) -> None:
        key = _path_at(doc, p.get("line"))
        doc.rename_key(key, str(new_key))

    edit_yaml(ctx, path, edit)
    _restart(ctx)
