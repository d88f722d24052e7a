"""Small pieces every catalogue planner uses: edit a file in its format through the planning
context, find a runtime's configuration with regtui's own readers, split provenance strings."""

from __future__ import annotations

import posixpath
from typing import Any, Callable
from urllib.parse import urlsplit

from regtui.fixes._context import Context, ManualOnly
from regtui.fixes._dropin import EnvFile, UnitFile
from regtui.fixes._jsonedit import JsonDoc
from regtui.fixes._model import PlanRefused
from regtui.fixes._tomledit import TomlDoc
from regtui.fixes._yamledit import YamlDoc

__all__ = ["edit_json", "edit_toml", "edit_yaml", "edit_unit", "edit_env", "split_source", "url_host",
           "runtime_view", "containerd_config", "copy_file", "ManualOnly", "PlanRefused", "UNITS",
           "is_vendor_unit", "require", "regular_files"]

#: systemd unit of each runtime's daemon.
UNITS = {"docker": "docker.service", "containerd": "containerd.service", "crio": "crio.service",
         "k3s": "k3s.service"}


def require(condition: Any, reason: str) -> None:
    """Refuse the plan with ``reason`` unless ``condition`` holds."""
    if not condition:
        raise PlanRefused(reason)


def edit_json(ctx: Context, path: str, edit: Callable[[JsonDoc], None], *, create: bool = False,
              secret: bool = False, mode: int | None = None) -> JsonDoc:
    """Apply ``edit`` to the JSON file at ``path`` (``{}`` when absent and ``create``)."""
    text, enc = ctx.text(path, missing="" if create else None)
    doc = JsonDoc(text)
    edit(doc)
    out = doc.text()
    if not text and not out.endswith("\n"):
        out += "\n"
    ctx.write_text(path, out, enc, secret=secret, mode=mode)
    return doc


def edit_toml(ctx: Context, path: str, edit: Callable[[TomlDoc], None], *, create: bool = False,
              mode: int | None = None, secret: bool = False) -> TomlDoc:
    """Apply ``edit`` to the TOML file at ``path`` (empty when absent and ``create``)."""
    text, enc = ctx.text(path, missing="" if create else None)
    doc = TomlDoc(text)
    edit(doc)
    ctx.write_text(path, doc.text(), enc, mode=mode, secret=secret)
    return doc


def edit_yaml(ctx: Context, path: str, edit: Callable[[YamlDoc], None], *, create: bool = False) -> YamlDoc:
    """Apply ``edit`` to the YAML file at ``path``."""
    text, enc = ctx.text(path, missing="" if create else None)
    doc = YamlDoc(text)
    edit(doc)
    ctx.write_text(path, doc.text(), enc, secret=True)
    return doc


def edit_unit(ctx: Context, path: str, edit: Callable[[UnitFile], None]) -> UnitFile:
    """Apply ``edit`` to a unit file or drop-in (created with a ``[Service]`` section when absent)."""
    text, enc = ctx.text(path, missing="")
    unit = UnitFile(text, path)
    edit(unit)
    ctx.write_text(path, unit.text(), enc, mode=0o644)
    return unit


def edit_env(ctx: Context, path: str, edit: Callable[[EnvFile], None]) -> EnvFile:
    """Apply ``edit`` to a ``KEY=VALUE`` environment file."""
    text, enc = ctx.text(path, missing="")
    env = EnvFile(text, path)
    edit(env)
    ctx.write_text(path, env.text(), enc, mode=0o644)
    return env


def split_source(source: str) -> tuple[str, int | None]:
    """``/path:12`` -> (``/path``, 12); ``--flag at /unit:3`` -> (``/unit``, 3); anything else -> (source, None)."""
    s = source.rsplit(" at ", 1)[-1].split(" (", 1)[0].strip()
    path, _, line = s.rpartition(":")
    if path.startswith("/") and line.isdigit():
        return path, int(line)
    return s, None


def url_host(url: str) -> str:
    """``host[:port]`` of a URL (or of a scheme-less ``host[:port]/path``)."""
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
        return parts.netloc.rpartition("@")[2].lower()
    except ValueError:
        return url.lower()


def is_vendor_unit(path: str) -> bool:
    """A packaged unit file (upgrades overwrite it): never edited, a drop-in is written instead."""
    return not path.startswith("/etc/systemd/system/")


def runtime_view(ctx: Context, runtime: str) -> Any:
    """The runtime's view as regtui reads it now (proxy environment, summary...)."""
    from dataclasses import replace

    from regtui import engine

    errors: list[str] = []
    views = engine.load_runtimes(ctx.host, replace(ctx.options, runtime=runtime), errors)
    view = next((v for v in views if v.name == runtime), None)
    if view is None:
        raise PlanRefused(f"cannot read {runtime}'s configuration here" + (f" ({errors[0]})" if errors else ""))
    return view


def containerd_config(ctx: Context) -> Any:
    """containerd's config.toml as the installed (or assumed) containerd reads it."""
    from regtui.runtimes.containerd.config import CONFIG_PATH, load_config
    from regtui.runtimes.containerd.versions import installed_version

    return load_config(ctx.host, CONFIG_PATH, version=installed_version(ctx.host, ctx.options))


def copy_file(ctx: Context, src: str, dst: str) -> bool:
    """Plan a copy of ``src`` to ``dst``; ``False`` when ``dst`` already holds the same bytes. Refuses to overwrite."""
    data = ctx.read(src)
    require(data is not None, f"{src} does not exist")
    existing = ctx.read(dst)
    if existing == data:
        return False
    require(existing is None, f"{dst} already exists with other content; merge the two by hand")
    ctx.write(dst, data, mode=0o644 if not dst.endswith(".key") else 0o600,
              note=f"copy of {src}" if not _is_text(data) else "")
    ctx.verbatim.add(dst)
    return True


def _is_text(data: bytes | None) -> bool:
    try:
        (data or b"").decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def regular_files(ctx: Context, directory: str) -> list[str]:
    """Host paths of the regular files directly in ``directory``; refuses links and sub-directories."""
    out = []
    for name in ctx.host.listdir(directory) or []:
        path = posixpath.join(directory, name)
        real = ctx.host.resolve(directory) / name
        require(not real.is_symlink(), f"{path} is a symbolic link; move it by hand")
        require(ctx.host.is_file(path), f"{path} is not a regular file; move it by hand")
        out.append(path)
    return out
