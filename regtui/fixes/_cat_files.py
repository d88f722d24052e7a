"""Fixes that move files: rename a misnamed certs.d/hosts directory, lift certificates out of a
sub-directory, rename a CA file to ``.crt``, copy a directory another runtime reads.

A move is planned file by file (each file created at the new place with its mode, deleted at the
old one) and the emptied directories are removed, so the backup and undo cover every byte.
"""

from __future__ import annotations

import posixpath
import re

from regtui.fixes._cat_docker import copy_dir
from regtui.fixes._context import Context
from regtui.fixes._helpers import ManualOnly, regular_files, require

__all__ = ["rename_dir", "move_contents", "rename_file", "copy_contents"]

_SCHEME_DIR = re.compile(r"^https?:?$", re.IGNORECASE)


def _move_file(ctx: Context, src: str, dst: str) -> None:
    data = ctx.read(src)
    require(data is not None, f"{src} does not exist any more")
    existing = ctx.read(dst)
    require(existing is None or existing == data, f"{dst} already exists with other content; merge by hand")
    mode = ctx.host.read(src).mode
    ctx.write(dst, data, mode=mode if mode is not None else 0o644, note=f"moved from {src}")
    ctx.verbatim.add(dst)
    ctx.write(src, None, note=f"moved to {dst}")


def _move_all(ctx: Context, src_dir: str, dst_dir: str) -> None:
    files = regular_files(ctx, src_dir)
    require(files, f"{src_dir} is empty: nothing to move")
    for f in files:
        _move_file(ctx, f, posixpath.join(dst_dir, posixpath.basename(f)))
    ctx.remove_dirs.append(src_dir)
    parent = posixpath.dirname(src_dir)
    if _SCHEME_DIR.match(posixpath.basename(parent)) and (ctx.host.listdir(parent) or []) == [posixpath.basename(src_dir)]:
        ctx.remove_dirs.append(parent)  # certs.d/https: made by `mkdir -p certs.d/https://host`


def rename_dir(ctx: Context) -> None:
    """``config.hosts-dir-misnamed``: rename the directory to the exact ``host[:port]`` the runtime looks up."""
    p = ctx.params
    src, dst = p.get("from"), p.get("to")
    require(src and dst, "the finding does not say where the directory should go")
    require(ctx.host.is_dir(src), f"{src} is not a directory any more")
    if ctx.host.exists(dst) and not ctx.host.is_dir(dst):
        raise ManualOnly(f"{dst} exists and is not a directory")
    _move_all(ctx, src, dst)


def move_contents(ctx: Context) -> None:
    """``config.hosts-dir-misnamed`` (certificates one level too deep): move them up into the host directory."""
    p = ctx.params
    _move_all(ctx, p["from"], p["to"])


def rename_file(ctx: Context) -> None:
    """``config.invalid-value`` in a certs.d directory: rename a CA file the runtime ignores (``ca.pem``) to ``.crt``."""
    p = ctx.params
    src, dst = p.get("from"), p.get("to")
    require(src and dst, "the finding does not say what to rename")
    _move_file(ctx, src, dst)


def copy_contents(ctx: Context) -> None:
    """``config.hosts-dir-unused``: copy a directory's files where the runtime reads them."""
    p = ctx.params
    copy_dir(ctx, p["from"], p["to"])
    ctx.note(f"{p['from']} is kept: other runtimes may read it")
