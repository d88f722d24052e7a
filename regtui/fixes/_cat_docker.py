"""Fixes in Docker's files: daemon.json keys and values, the docker.service command line,
certs.d directories, and the Docker CLI's config.json credentials and helpers."""

from __future__ import annotations

import posixpath
from typing import Any

from regtui.fixes._context import Context
from regtui.fixes._helpers import (ManualOnly, PlanRefused, copy_file, edit_json, edit_toml, edit_unit,
                                   regular_files, require)
from regtui.fixes._jsonedit import JsonDoc
from regtui.fixes._tomledit import TomlDoc
from regtui.redact import MASK

__all__ = ["unknown_key", "ignored_key", "invalid_value", "flag_conflict", "remove_insecure", "copy_dir",
           "hosts_toml_for_mirrors", "helper_missing", "cli_wrong_key"]


def _list_keys() -> frozenset[str]:
    from regtui.runtimes.docker.keys import STRING_LISTS

    return frozenset(STRING_LISTS)


def _path_of(ctx: Context) -> str:
    """The file a daemon.json/config.json finding is about (subject, without a ``#key`` suffix)."""
    return ctx.finding.subject.split("#", 1)[0]


def _merge(old: Any, new: Any, what: str) -> Any:
    """The merged value of two settings of the same meaning (lists joined, objects joined)."""
    if old == new:
        return old
    if isinstance(old, list) and isinstance(new, list):
        return old + [v for v in new if v not in old]
    if isinstance(old, dict) and isinstance(new, dict):
        clash = [k for k in new if k in old and old[k] != new[k]]
        if clash:
            raise PlanRefused(f"{what}: both settings give {clash[0]!r} different values; merge them by hand")
        return {**old, **new}
    raise PlanRefused(f"{what} is already set to another value; keep one of the two by hand")


def _move(doc: JsonDoc, src: tuple[Any, ...], new_key: str) -> None:
    """Move the value at ``src`` to ``new_key`` (``proxies.x`` for a nested one), merging with what is there."""
    dest = tuple(new_key.split(".", 1)) if new_key.startswith("proxies.") else (new_key,)
    value = doc.get(src)
    if new_key in _list_keys() and isinstance(value, str):
        value = [value]
    if doc.has(dest):
        merged = _merge(doc.get(dest), value, new_key)
        doc.set(dest, merged)
        doc.delete(src)
    elif len(src) == 1 and len(dest) == 1:
        doc.rename(src, new_key)
        doc.set(dest, value)
    else:
        doc.set(dest, value)
        doc.delete(src)
    if len(src) > 1 and doc.get(src[:-1]) == {}:
        doc.delete(src[:-1])


def unknown_key(ctx: Context) -> None:
    """``config.unknown-key``: rename the key dockerd rejects to the one it meant, or remove it."""
    path = _path_of(ctx)
    p = ctx.params
    keypath = tuple(p.get("path") or (p["key"],))
    new_key = p.get("new_key")

    def edit(doc: JsonDoc) -> None:
        require(doc.has(keypath), f"{'.'.join(keypath)} is no longer in {path}")
        if new_key:
            _move(doc, keypath, new_key)
        else:
            doc.delete(keypath)
            ctx.note(f"{p['key']!r} has no daemon.json equivalent: it is removed (the backup keeps it)")

    edit_json(ctx, path, edit)


def ignored_key(ctx: Context) -> None:
    """``config.ignored-key`` in daemon.json: move a flag-name key to the key that works, unnest an
    object dockerd flattens, or drop a Docker Hub insecure entry that never applies."""
    path = _path_of(ctx)
    p = ctx.params
    if p.get("remove") is not None:
        remove_insecure(ctx, path, p.get("key", "insecure-registries"), str(p["remove"]))
        return
    key = p["key"]
    if p.get("action") == "unnest":
        def unnest(doc: JsonDoc) -> None:
            children = doc.get((key,))
            require(isinstance(children, dict), f"{key!r} is no longer an object in {path}")
            for child, value in children.items():
                require(not doc.has((child,)) or doc.get((child,)) == value,
                        f"{child!r} is set both at the top level and in {key!r}; merge them by hand")
            for child, value in children.items():
                doc.set((child,), value)
            doc.delete((key,))

        edit_json(ctx, path, unnest)
        return
    new_key = p.get("new_key")
    if not new_key:
        raise ManualOnly(f"no daemon.json key does what {key!r} was meant to do; set it on the command line")

    def move(doc: JsonDoc) -> None:
        require(doc.has((key,)), f"{key!r} is no longer in {path}")
        _move(doc, (key,), new_key)

    edit_json(ctx, path, move)


def remove_insecure(ctx: Context, path: str, key: str, entry: str) -> None:
    """Remove one entry from a daemon.json list (``insecure-registries``)."""
    def edit(doc: JsonDoc) -> None:
        values = doc.get((key,))
        require(isinstance(values, list), f"{key} is not a list in {path}")
        indexes = [i for i, v in enumerate(values) if v == entry]
        require(indexes, f"{entry!r} is not an entry of {key} in {path} (a CIDR may cover it: edit by hand)")
        for i in reversed(indexes):
            doc.delete((key, i))

    edit_json(ctx, path, edit)


def invalid_value(ctx: Context) -> None:
    """``config.invalid-value`` in daemon.json: write the normalised value (or create a missing --config-file)."""
    p = ctx.params
    path = _path_of(ctx)
    if p.get("action") == "create":
        require(not ctx.exists(p["path"]), f"{p['path']} exists now; nothing to create")
        ctx.write(p["path"], str(p.get("content", "{}\n")).encode(), mode=0o644)
        return
    if "new" not in p or p.get("new") is None:
        raise ManualOnly("regtui cannot tell which value was meant")
    new = p["new"]
    require(MASK not in str(new), "the corrected value would hold a masked secret; correct it by hand")
    keypath = tuple(p.get("path") or (p["key"],))

    def edit(doc: JsonDoc) -> None:
        require(doc.has(keypath), f"{'.'.join(map(str, keypath))} is no longer in {path}")
        doc.set(keypath, new)

    edit_json(ctx, path, edit)


def flag_conflict(ctx: Context) -> None:
    """``config.flag-conflict``: keep daemon.json's value, drop the flag from dockerd's ExecStart with a drop-in."""
    p = ctx.params
    dropin, argv = p.get("dropin"), p.get("exec_start")
    if not dropin or not argv:
        raise ManualOnly(f"the flag comes from {p.get('flag_source')}: remove {p.get('flag')} there by hand")
    edit_unit(ctx, dropin, lambda unit: unit.set_exec_start(list(argv)))
    ctx.note(f"the drop-in resets ExecStart and starts dockerd without {p.get('flag')}; "
             f"{p.get('key')!r} stays in daemon.json")


def copy_dir(ctx: Context, src: str, dst: str) -> None:
    """Copy every file of ``src`` into ``dst`` (a certs.d / hosts dir), refusing to overwrite other content."""
    require(ctx.host.is_dir(src), f"{src} is not a directory any more")
    copied = [copy_file(ctx, f, posixpath.join(dst, posixpath.basename(f))) for f in regular_files(ctx, src)]
    require(copied, f"{src} holds no files to copy")


def hosts_toml_for_mirrors(ctx: Context) -> None:
    """``mirror.not-applied`` (Docker's containerd store): put the daemon.json mirrors in the registry's hosts.toml."""
    from regtui.fixes._cat_containerd import hosts_toml_add

    p = ctx.params
    path = p.get("path")
    mirrors = [m for m in p.get("mirrors") or [] if MASK not in m]
    require(path and mirrors, "no mirror to add")
    server = p.get("server")
    ctx.note("only do this if the mirror also serves this registry: Docker's mirrors are Docker Hub caches")
    hosts_toml_add(ctx, path, server if not ctx.exists(path) else None,
                   [{"url": m.rstrip("/"), "capabilities": ["pull", "resolve"]} for m in mirrors])


def helper_missing(ctx: Context) -> None:
    """``auth.helper-missing``: remove the ``credsStore``/``credHelpers`` entry naming a helper that is not installed."""
    p = ctx.params
    path = p.get("file") or _path_of(ctx)
    key = p.get("key")
    if key == "credential-helpers" and p.get("remove"):
        helper = p["remove"]

        def drop_helper(doc: TomlDoc) -> None:
            helpers = doc.get(("credential-helpers",))
            require(isinstance(helpers, list) and helper in helpers, f"{helper!r} is no longer listed in {path}")
            doc.set(("credential-helpers",), [h for h in helpers if h != helper])

        edit_toml(ctx, path, drop_helper)
        return
    keypath = tuple(key) if isinstance(key, (list, tuple)) else (key, p["remove"]) if p.get("remove") else (key,)

    def drop(doc: JsonDoc) -> None:
        require(doc.has(keypath), f"{'.'.join(map(str, keypath))} is no longer in {path}")
        doc.delete(keypath)

    edit_json(ctx, path, drop, secret=True)
    ctx.note("credentials stored in the missing helper are not copied; log in again if the registry needs them")


def cli_wrong_key(ctx: Context) -> None:
    """``auth.wrong-key`` in config.json: store the entry under the key the Docker CLI looks up."""
    p = ctx.params
    path = _path_of(ctx)
    section, key, new_key = p["section"], p["key"], p["new_key"]

    def edit(doc: JsonDoc) -> None:
        require(doc.has((section, key)), f"{section}[{key!r}] is no longer in {path}")
        value = doc.get((section, key))
        if doc.has((section, new_key)):
            require(doc.get((section, new_key)) == value,
                    f"{section}[{new_key!r}] already holds other credentials; keep one of them by hand")
            if not p.get("keep_old"):
                doc.delete((section, key))
            return
        if p.get("keep_old"):
            doc.set((section, new_key), value)
        else:
            doc.rename((section, key), new_key)

    edit_json(ctx, path, edit, secret=True)
