"""Mirror fixes where the mirror is configured: remove a dead mirror, move a slow one behind a
faster endpoint, switch a mirror's scheme. The endpoint's provenance (``path:line``) says which
file: daemon.json ``registry-mirrors``, a hosts.toml ``[host."..."]`` table, a registries.conf
``[[registry.mirror]]``, a registries.yaml ``endpoint`` list or containerd's legacy ``mirrors``."""

from __future__ import annotations

import posixpath
from typing import Any

from regtui.fixes._context import Context
from regtui.fixes._helpers import (ManualOnly, PlanRefused, edit_json, edit_toml, edit_yaml, require, split_source,
                                   url_host)
from regtui.fixes._jsonedit import JsonDoc
from regtui.fixes._tomledit import TomlDoc
from regtui.fixes._yamledit import YamlDoc

__all__ = ["remove_mirror", "reorder_mirror", "switch_scheme", "raise_concurrency"]


def _where(ctx: Context) -> tuple[str, int | None, str]:
    """(file, line, kind) of the endpoint's configuration."""
    source = str(ctx.params.get("source") or ctx.evidence.get("source") or "")
    path, line = split_source(source)
    require(path.startswith("/"), f"the endpoint comes from {source or 'a default'}, not from a file: nothing to edit")
    base = posixpath.basename(path)
    if base.endswith(".json"):
        kind = "daemon.json"
    elif base == "hosts.toml":
        kind = "hosts.toml"
    elif base.endswith((".yaml", ".yml")):
        kind = "registries.yaml"
    elif base == "config.toml":
        kind = "containerd"
    else:
        kind = "registries.conf"
    return path, line, kind


def _same(a: str, b: str) -> bool:
    return url_host(a) == url_host(b)


def _json_index(doc: JsonDoc, endpoint: str) -> int:
    mirrors = doc.get(("registry-mirrors",)) or []
    found = [i for i, m in enumerate(mirrors) if isinstance(m, str) and _same(m, endpoint)]
    require(found, f"{url_host(endpoint)} is no longer in registry-mirrors")
    return found[0]


def _toml_host(doc: TomlDoc, endpoint: str) -> tuple[Any, ...]:
    hosts = doc.get(("host",)) or {}
    found = [name for name in hosts if _same(name, endpoint)]
    require(found, f"no [host.\"...\"] table for {url_host(endpoint)} any more")
    return ("host", found[0])


def _crio_mirror(doc: TomlDoc, endpoint: str, line: int | None) -> tuple[tuple[Any, ...], int]:
    """(the ``[[registry]]`` path, index in its ``mirror`` list) of a registries.conf mirror."""
    from regtui.config._source import toml_key_lines

    lines = toml_key_lines(doc.text())
    host = url_host(endpoint)
    found: list[tuple[tuple[Any, ...], int, set[int | None]]] = []
    for i, reg in enumerate(doc.get(("registry",)) or []):
        for j, m in enumerate(reg.get("mirror") or []):
            location = str(m.get("location", ""))
            if url_host(location) == host:
                at = {lines.get(("registry", i, "mirror", j)), lines.get(("registry", i, "mirror", j, "location"))}
                found.append((("registry", i), j, at))
    if found:
        exact = [f for f in found if line in f[2]]
        reg_path, j, _ = (exact or found)[0]
        return reg_path, j
    raise PlanRefused(f"no [[registry.mirror]] for {host} any more")


def _yaml_endpoint(doc: YamlDoc, endpoint: str, line: int | None) -> tuple[tuple[Any, ...], int]:
    for key, n in doc.lines_of.items():
        if len(key) == 4 and key[0] == "mirrors" and key[2] == "endpoint" and isinstance(key[3], int):
            value = doc.get(key)
            if isinstance(value, str) and _same(value, endpoint) and (line is None or n == line):
                return key[:3], key[3]
    raise PlanRefused(f"no registries.yaml endpoint for {url_host(endpoint)} any more")


def _legacy_endpoint(doc: TomlDoc, endpoint: str) -> tuple[tuple[Any, ...], int]:
    from regtui.config._source import toml_key_lines

    for key in toml_key_lines(doc.text()):
        if key and key[-1] == "endpoint" and "mirrors" in key:
            values = doc.get(key)
            if isinstance(values, list):
                for i, v in enumerate(values):
                    if isinstance(v, str) and _same(v, endpoint):
                        return key, i
    raise PlanRefused(f"no legacy mirrors endpoint for {url_host(endpoint)} any more")


def remove_mirror(ctx: Context) -> None:
    """``mirror.unreachable``: remove the mirror where it is configured (the backup keeps it)."""
    endpoint = str(ctx.params.get("endpoint") or "")
    require(endpoint, "the finding names no endpoint")
    path, line, kind = _where(ctx)
    if kind == "daemon.json":
        edit_json(ctx, path, lambda doc: doc.delete(("registry-mirrors", _json_index(doc, endpoint))))
    elif kind == "hosts.toml":
        def hedit(doc: TomlDoc) -> None:
            doc.delete(_toml_host(doc, endpoint))
            if not doc.get(("host",)) and _needs_host_table(ctx):
                _server_as_host(doc)
        edit_toml(ctx, path, hedit)
    elif kind == "registries.conf":
        def edit(doc: TomlDoc) -> None:
            reg, j = _crio_mirror(doc, endpoint, line)
            doc.delete_item(reg + ("mirror", j))
        edit_toml(ctx, path, edit)
    elif kind == "registries.yaml":
        def yedit(doc: YamlDoc) -> None:
            seq, i = _yaml_endpoint(doc, endpoint, line)
            doc.remove_item(seq, i)
        edit_yaml(ctx, path, yedit)
    else:
        def ledit(doc: TomlDoc) -> None:
            key, i = _legacy_endpoint(doc, endpoint)
            values = list(doc.get(key))
            del values[i]
            doc.set(key, values)
        edit_toml(ctx, path, ledit)
    ctx.note(f"pulls stop trying {url_host(endpoint)}; add it back (regtui undo) once it works again")


def _needs_host_table(ctx: Context) -> bool:
    """containerd before 2.0 rejects a hosts.toml without ``[host]`` tables (assumed when the version is unknown)."""
    wanted = str(getattr(ctx.options, "containerd_version", None) or "")
    head = wanted.split(".", 1)[0]
    return not (head.isdigit() and int(head) >= 2)


def _server_as_host(doc: TomlDoc) -> None:
    """Name the ``server`` as the one ``[host]`` table, with its TLS settings, as k3s's generated files do."""
    server = doc.get(("server",))
    require(isinstance(server, str) and server, "removing the last [host] table leaves containerd before 2.0 "
            "without a host: name the server in a [host] table by hand")
    table = ("host", server)
    doc.set(table + ("capabilities",), ["pull", "resolve"])
    for key in ("ca", "skip_verify", "client"):
        value = doc.get((key,))
        if value is not None:
            doc.set(table + (key,), value)


def reorder_mirror(ctx: Context) -> None:
    """``mirror.slower-than-upstream``: move the slow mirror just after the faster endpoint behind it."""
    endpoint = str(ctx.params.get("endpoint") or "")
    after = str(ctx.params.get("after") or "")
    require(endpoint and after, "the finding does not say where to move the mirror")
    path, line, kind = _where(ctx)
    if kind == "daemon.json":
        def edit(doc: JsonDoc) -> None:
            mirrors = list(doc.get(("registry-mirrors",)) or [])
            i = _json_index(doc, endpoint)
            later = [k for k, m in enumerate(mirrors) if isinstance(m, str) and _same(m, after)]
            if not later:
                raise ManualOnly(f"{url_host(after)} is Docker Hub itself, always tried last: remove the slow mirror "
                                 "instead (mirror.unreachable) or keep it")
            moved = mirrors.pop(i)
            mirrors.insert(later[0] if later[0] > i else later[0] + 1, moved)  # just after the faster one
            doc.set(("registry-mirrors",), mirrors)
        edit_json(ctx, path, edit)
    elif kind == "hosts.toml":
        def tedit(doc: TomlDoc) -> None:
            mine = _toml_host(doc, endpoint)
            hosts = doc.get(("host",)) or {}
            theirs = [name for name in hosts if _same(name, after)]
            if not theirs:
                raise ManualOnly(f"{url_host(after)} is the upstream (server), which containerd always tries last")
            doc.move_table_after(mine, ("host", theirs[0]))
        edit_toml(ctx, path, tedit)
    elif kind == "registries.yaml":
        def yedit(doc: YamlDoc) -> None:
            seq, i = _yaml_endpoint(doc, endpoint, line)
            items = doc.get(seq)
            later = [k for k, v in enumerate(items) if isinstance(v, str) and _same(v, after)]
            if not later:
                raise ManualOnly(f"{url_host(after)} is the default endpoint, which k3s always tries last")
            doc.move_item(seq, i, later[0])
        edit_yaml(ctx, path, yedit)
    elif kind == "registries.conf":
        def cedit(doc: TomlDoc) -> None:
            reg, j = _crio_mirror(doc, endpoint, line)
            mirrors = list(doc.get(reg + ("mirror",)))
            later = [k for k, m in enumerate(mirrors) if _same(str(m.get("location", "")), after)]
            if not later:
                raise ManualOnly(f"{url_host(after)} is the primary location, which is always tried last")
            doc.move_item(reg + ("mirror",), j, later[0])
        edit_toml(ctx, path, cedit)
    else:
        raise ManualOnly("reorder the legacy mirrors endpoint list by hand (or migrate it to hosts.toml first)")


def switch_scheme(ctx: Context) -> None:
    """``mirror.http-mismatch``: use the scheme the endpoint really speaks."""
    p = ctx.params
    endpoint = str(p.get("endpoint") or "")
    scheme = str(p.get("scheme") or "")
    require(endpoint and scheme in ("http", "https"), "the finding does not say which scheme to use")
    host = url_host(endpoint)
    source = str(p.get("source") or "")
    if not source.startswith("/"):
        _upstream_scheme(ctx, host, scheme)
        return
    path, line, kind = _where(ctx)
    if kind == "daemon.json":
        def edit(doc: JsonDoc) -> None:
            i = _json_index(doc, endpoint)
            old = doc.get(("registry-mirrors", i))
            doc.set(("registry-mirrors", i), f"{scheme}://{old.split('://', 1)[-1]}")
        edit_json(ctx, path, edit)
    elif kind == "hosts.toml":
        def tedit(doc: TomlDoc) -> None:
            hosts = doc.get(("host",)) or {}
            names = [n for n in hosts if _same(n, endpoint)]
            if names:
                doc.rename_table(("host", names[0]), f"{scheme}://{names[0].split('://', 1)[-1]}")
                return
            server = doc.get(("server",))
            require(isinstance(server, str) and _same(server, endpoint), f"{host} is no longer in {path}")
            doc.set(("server",), f"{scheme}://{server.split('://', 1)[-1]}")
        edit_toml(ctx, path, tedit)
    elif kind == "registries.yaml":
        def yedit(doc: YamlDoc) -> None:
            seq, i = _yaml_endpoint(doc, endpoint, line)
            old = doc.get(seq + (i,))
            doc.replace_item(seq, i, f"{scheme}://{old.split('://', 1)[-1]}")
        edit_yaml(ctx, path, yedit)
    elif kind == "registries.conf":
        if scheme != "http":
            raise ManualOnly("remove insecure = true from the entry by hand if the registry now speaks TLS")

        def cedit(doc: TomlDoc) -> None:
            try:
                reg, j = _crio_mirror(doc, endpoint, line)
                doc.set(reg + ("mirror", j, "insecure"), True)
            except PlanRefused:
                regs = [i for i, r in enumerate(doc.get(("registry",)) or [])
                        if url_host(str(r.get("location") or r.get("prefix") or "")) == host]
                require(regs, f"no [[registry]] for {host} any more")
                doc.set(("registry", regs[0], "insecure"), True)
        edit_toml(ctx, path, cedit)
    else:
        def ledit(doc: TomlDoc) -> None:
            key, i = _legacy_endpoint(doc, endpoint)
            values = list(doc.get(key))
            values[i] = f"{scheme}://{values[i].split('://', 1)[-1]}"
            doc.set(key, values)
        edit_toml(ctx, path, ledit)


def _upstream_scheme(ctx: Context, host: str, scheme: str) -> None:
    """A registry's own endpoint speaks plain HTTP: Docker lists it as insecure; containerd gets a hosts.toml."""
    runtime = str(ctx.params.get("runtime") or ctx.finding.runtime or "")
    if scheme != "http":
        raise ManualOnly(f"{host} speaks TLS: remove it from the insecure settings by hand")
    if runtime == "docker":
        from regtui.runtimes.docker.model import DAEMON_JSON

        def edit(doc: JsonDoc) -> None:
            current = doc.get(("insecure-registries",)) or []
            require(host not in current, f"{host} is already an insecure registry: reload dockerd")
            doc.append(("insecure-registries",), host)

        edit_json(ctx, DAEMON_JSON, edit, create=True)
        ctx.restart = "reload docker"
        ctx.note("dockerd then tries https without verification first and falls back to plain http")
        return
    if runtime == "containerd":
        from regtui.fixes._cat_containerd import hosts_toml_add
        from regtui.fixes._helpers import containerd_config

        cfg = containerd_config(ctx)
        require(cfg.roots, "config_path is not set: the CRI reads no hosts.toml; apply config.hosts-dir-unused first")
        path = posixpath.join(cfg.roots[0], host, "hosts.toml")
        require(ctx.read(path) is None, f"{path} exists: change its server to http:// by hand")
        hosts_toml_add(ctx, path, f"http://{host}", [], stub=cfg.version < (2, 0, 0) or cfg.version_assumed)
        ctx.restart = "none"
        return
    raise ManualOnly(f"configure {host} as an insecure (plain HTTP) registry for {runtime} by hand")


def raise_concurrency(ctx: Context) -> None:
    """``pull.low-concurrency``: raise the runtime's download concurrency (``params.value``, else twice
    ``params.current``, at least 6)."""
    p = ctx.params
    runtime = str(p.get("runtime") or ctx.finding.runtime or "")
    current = p.get("current")
    value = p.get("value") or p.get("suggested") or (max(6, current * 2) if isinstance(current, int) else 6)
    require(isinstance(value, int) and 1 <= value <= 64, f"{value!r} is not a sensible concurrency")
    if runtime == "docker":
        from regtui.runtimes.docker.model import DAEMON_JSON

        edit_json(ctx, DAEMON_JSON, lambda doc: doc.set(("max-concurrent-downloads",), value), create=True)
        ctx.restart = "reload docker"
        return
    if runtime == "containerd":
        from regtui.fixes._helpers import containerd_config

        cfg = containerd_config(ctx)
        require(cfg.starts, f"containerd does not start with this configuration ({cfg.why_not})")
        if cfg.pull_mode == "transfer":
            key: tuple[Any, ...] = ("plugins", "io.containerd.transfer.v1.local", "max_concurrent_downloads")
            ctx.note("in transfer-service mode the limit is the transfer plugin's (setting the CRI one would force "
                     "local pulls)")
        else:
            image = cfg.registry.image.get("max_concurrent_downloads")
            key = tuple(image.key) if image is not None else tuple(cfg.registry.registry_key[:2]) + ("max_concurrent_downloads",)
            require(len(key) == 3, "cannot tell where the CRI image settings belong")
        edit_toml(ctx, cfg.path, lambda doc: doc.set(key, value))
        ctx.restart = "restart containerd"
        return
    raise ManualOnly(f"raise {runtime}'s download concurrency by hand")
