"""Fixes in containerd's files: ``config_path``, the migration of legacy ``mirrors`` and
``configs.*.tls`` to hosts.toml, credentials under the host containerd looks up, hosts.toml edits."""

from __future__ import annotations

import posixpath
from typing import Any, Mapping
from urllib.parse import urlsplit

from regtui.fixes._context import Context
from regtui.fixes._helpers import ManualOnly, PlanRefused, containerd_config, edit_toml, require
from regtui.fixes._tomledit import TomlDoc
from regtui.redact import MASK

__all__ = ["set_config_path", "migrate_legacy", "wrong_key", "insert_version", "hosts_toml_add",
           "hosts_toml_host_key", "hosts_ignored_key", "hosts_invalid_value"]

_HUB = "docker.io"
_HUB_HOST = "registry-1.docker.io"


def _registry_key(cfg: Any) -> tuple[str, tuple[Any, ...]]:
    """(file, key path) of the CRI registry table that holds ``config_path``."""
    setting = cfg.registry.config_path
    if setting is not None:
        return setting.file, tuple(setting.key[:-1])
    require(cfg.registry.registry_key, f"cannot tell where the CRI registry table belongs in {cfg.path}")
    return cfg.path, tuple(cfg.registry.registry_key)


def set_config_path(ctx: Context) -> None:
    """``config.hosts-dir-unused``/``mirror.not-applied``: make the CRI read one hosts directory."""
    cfg = containerd_config(ctx)
    require(cfg.starts, f"containerd does not start with this configuration ({cfg.why_not}); fix that first")
    value = ctx.params.get("value") or (cfg.roots[0] if cfg.roots else "/etc/containerd/certs.d")
    if cfg.registry.mirrors:
        raise PlanRefused("legacy `mirrors` are set: with config_path next to them the CRI plugin does not load. "
                          "Apply the migration fix (config.legacy-registry-config) instead, which moves them to "
                          "hosts.toml and sets config_path")
    file, table = _registry_key(cfg)
    edit_toml(ctx, file, lambda doc: doc.set(table + ("config_path",), value))


def insert_version(ctx: Context) -> None:
    """``config.ignored-key`` (a v2 plugin table in a version-less file): add ``version = 2``."""
    path = ctx.finding.subject
    value = ctx.params.get("value", 2)

    def edit(doc: TomlDoc) -> None:
        require(not doc.has(("version",)), f"{path} already has a version line")
        doc.set(("version",), value)

    edit_toml(ctx, path, edit)


def _scheme_url(endpoint: str) -> str:
    from regtui.config.hoststoml import is_localhost

    if "://" in endpoint:
        return endpoint.rstrip("/")
    host = endpoint.split("/", 1)[0]
    return ("http://" if is_localhost(host) else "https://") + endpoint.rstrip("/")


def _tls_fields(tls: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if tls.get("ca_file"):
        out["ca"] = tls["ca_file"]
    if tls.get("cert_file"):
        out["client"] = [[tls["cert_file"], tls["key_file"]]] if tls.get("key_file") else tls["cert_file"]
    if tls.get("insecure_skip_verify") is not None:
        out["skip_verify"] = bool(tls["insecure_skip_verify"])
    return out


def hosts_toml_host_key(url: str) -> str:
    """The ``[host."..."]`` key for an endpoint URL (the API root without the ``/v2`` containerd adds)."""
    return url[:-3] if url.endswith("/v2") else url.rstrip("/")


def hosts_toml_add(ctx: Context, path: str, server: str | None, hosts: list[Mapping[str, Any]],
                   root_fields: Mapping[str, Any] | None = None, *, stub: bool = False) -> None:
    """Create or extend a hosts.toml: ``server`` (only when creating), root fields, and ``[host."url"]`` tables
    not already there (existing ones are left alone)."""
    def edit(doc: TomlDoc) -> None:
        if server and not doc.has(("server",)):
            doc.set(("server",), server)
        for k, v in (root_fields or {}).items():
            if not doc.has((k,)):
                doc.set((k,), v)
        for h in hosts:
            key = hosts_toml_host_key(h["url"])
            if doc.has(("host", key)):
                continue
            for field in ("capabilities", "ca", "client", "skip_verify", "override_path"):
                if h.get(field) is not None:
                    doc.set(("host", key, field), h[field])
        if stub and not doc.has(("host",)):
            doc.set(("host",), {})

    edit_toml(ctx, path, edit, create=True, mode=0o644)


def migrate_legacy(ctx: Context) -> None:
    """``config.mirrors-with-config-path`` / ``config.legacy-registry-config`` / ``config.ignored-key`` (2.x tls):
    write hosts.toml equivalent to the legacy ``mirrors`` and ``configs.*.tls``, fold ``auths`` into
    ``configs.*.auth``, remove the legacy tables, and set ``config_path`` to one directory."""
    from regtui.config.hoststoml import is_localhost

    cfg = containerd_config(ctx)
    require(cfg.starts, f"containerd does not start with this configuration ({cfg.why_not}); fix that first")
    reg = cfg.registry
    require(reg.mirrors or reg.tls or reg.auths, "no legacy mirrors, configs.*.tls or auths are left to migrate")
    root = cfg.roots[0] if cfg.roots else "/etc/containerd/certs.d"
    version = cfg.version
    stub = version < (2, 0, 0) or cfg.version_assumed
    files: dict[str, dict[str, Any]] = {}

    def entry(ns: str) -> dict[str, Any]:
        if ns not in files:
            name = "_default" if ns == "*" else ns
            upstream = None if ns == "*" else f"https://{_HUB_HOST if ns == _HUB else ns}"
            if ns != "*" and is_localhost(ns):
                upstream = None  # containerd's own defaults for localhost (https with http fallback) apply
            files[ns] = {"path": posixpath.join(root, name, "hosts.toml"), "server": upstream, "hosts": [],
                         "root": {}}
        return files[ns]

    mirror_hosts: dict[str, dict[str, Any]] = {}
    for ns, setting in reg.mirrors.items():
        e = entry(ns)
        upstream_host = _HUB_HOST if ns == _HUB else ns
        endpoints = setting.value if isinstance(setting.value, list) else []
        for raw in endpoints:
            require(MASK not in raw and "@" not in urlsplit(_scheme_url(raw)).netloc,
                    f"the endpoint {raw.split('@')[-1]} carries credentials; move them to configs.\"<host>\".auth by hand first")
            url = _scheme_url(raw)
            parts = urlsplit(url)
            if parts.path not in ("", "/", "/v2", "/v2/"):
                raise ManualOnly(f"the endpoint {url} has a path; check how your mirror expects it and write the "
                                 "hosts.toml by hand (override_path = true uses the path verbatim)")
            if parts.netloc == upstream_host or (ns == _HUB and parts.netloc in (_HUB, "index.docker.io")):
                continue  # the upstream: containerd's default last endpoint
            host = {"url": f"{parts.scheme}://{parts.netloc}", "capabilities": ["pull", "resolve"]}
            e["hosts"].append(host)
            mirror_hosts.setdefault(parts.netloc, host)
    for hostname, setting in reg.tls.items():
        fields = _tls_fields(setting.value if isinstance(setting.value, dict) else {})
        if hostname in mirror_hosts:
            mirror_hosts[hostname].update(fields)
            continue
        e = entry(_HUB if hostname == _HUB_HOST else hostname)
        e["root"].update(fields)
    # Edit config.toml (and imports): remove the legacy tables, fold auths, set config_path.
    by_file: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    for name, table in (("mirrors", reg.mirrors), ("tls", reg.tls), ("auths", reg.auths)):
        for key, setting in table.items():
            by_file.setdefault(setting.file, []).append((name, tuple(setting.key)))
    reg_file, reg_table = _registry_key(cfg)
    auth_moves = {}
    for url, setting in reg.auths.items():
        hostname = urlsplit(url).netloc if "://" in url else url
        auth_moves[hostname] = setting

    def edit_file(path: str) -> None:
        def edit(doc: TomlDoc) -> None:
            for name, key in by_file.get(path, []):
                if name == "mirrors":
                    base = key[:key.index("mirrors") + 1]
                    doc.delete(base)
                elif name == "tls":
                    doc.delete(key)
                    configs_host = key[:-1]
                    if doc.get(configs_host) == {}:
                        doc.delete(configs_host)
                elif name == "auths":
                    base = key[:key.index("auths") + 1]
                    for hostname, setting in auth_moves.items():
                        if setting.file != path:
                            continue
                        dst = base[:-1] + ("configs", hostname, "auth")
                        if doc.has(dst):
                            continue
                        for k, v in (setting.value or {}).items():
                            doc.set(dst + (k,), v)
                    doc.delete(base)
            configs = reg_table + ("configs",)
            if doc.get(configs) == {}:
                doc.delete(configs)
            if path == reg_file:
                doc.set(reg_table + ("config_path",), root)
        edit_toml(ctx, path, edit, secret=bool(reg.auths))

    for path in sorted(set(by_file) | {reg_file}):
        edit_file(path)
    stubbed = False
    for ns, e in files.items():
        if not e["hosts"] and not e["root"]:
            continue
        hosts_toml_add(ctx, e["path"], e["server"], e["hosts"], e["root"], stub=stub and not e["hosts"])
        stubbed = stubbed or (stub and not e["hosts"])
    if not files:
        ctx.note("no mirrors or TLS settings to move: only the deprecated auths are folded into configs.*.auth")
    if stubbed:
        ctx.note("containerd before 2.0 rejects a hosts.toml without a [host] table: an empty [host] is written "
                 "where there is no mirror")
    if cfg.pull_mode == "local" and cfg.version >= (2, 1, 0) and not reg.auth and not reg.auths:
        ctx.note("without the legacy settings, containerd 2.1+ pulls through the transfer service again")


def wrong_key(ctx: Context) -> None:
    """``auth.wrong-key`` (containerd): copy ``configs."docker.io".auth`` to the host containerd asks for."""
    cfg = containerd_config(ctx)
    p = ctx.params
    src_host, dst_host = p.get("from_host", "docker.io"), p.get("to_host", _HUB_HOST)
    setting = cfg.registry.auth.get(src_host)
    require(setting is not None, f"configs.\"{src_host}\".auth is no longer set")
    require(src_host not in cfg.registry.auths and not any(src_host in u for u in cfg.registry.auths),
            "the credentials come from the deprecated auths table; apply the migration fix first")
    dst = tuple(setting.key[:-2]) + (dst_host, "auth")

    def edit(doc: TomlDoc) -> None:
        require(not doc.has(dst), f"configs.\"{dst_host}\".auth exists already; merge them by hand")
        for k, v in setting.value.items():
            doc.set(dst + (k,), v)

    edit_toml(ctx, setting.file, edit, secret=True)
    ctx.note(f"configs.\"{src_host}\".auth is kept: other tools may read it")


def hosts_ignored_key(ctx: Context) -> None:
    """``config.ignored-key`` in a hosts.toml: rename a look-alike key (``insecure_skip_verify`` -> ``skip_verify``)."""
    path = ctx.finding.subject
    p = ctx.params
    dotted = str(p.get("key", ""))
    new_key = p.get("new_key")
    plain = {"skip_verify", "ca", "capabilities", "header", "client"}
    if not new_key or new_key not in plain:
        raise ManualOnly("there is no key with the same meaning to rename it to")
    if new_key == dotted:
        raise ManualOnly("say which [host] needs these CA files: add ca = \"<file>\" to that table")

    def edit(doc: TomlDoc) -> None:
        keypath = _hosts_keypath(doc, dotted, p.get("line"))
        require(keypath is not None, f"{dotted} is no longer in {path}")
        value = doc.get(keypath)
        target = keypath[:-1] + (new_key,)
        require(not doc.has(target), f"{new_key} is already set next to {keypath[-1]}; keep one by hand")
        if new_key == "client" and not isinstance(value, str):
            raise ManualOnly("client takes a file or [cert, key] pairs; rewrite it by hand")
        doc.rename_key(keypath, new_key)

    edit_toml(ctx, path, edit)


def _hosts_keypath(doc: TomlDoc, dotted: str, line: int | None) -> tuple[Any, ...] | None:
    """The key path in a hosts.toml named by a finding's dotted key (host URLs contain dots) and line."""
    from regtui.config._source import toml_key_lines

    lines = toml_key_lines(doc.text())
    candidates = [k for k, n in lines.items() if ".".join(str(x) for x in k) == dotted]
    if line is not None:
        candidates = [k for k in candidates if lines[k] == line] or candidates
    return candidates[0] if candidates else None


def hosts_invalid_value(ctx: Context) -> None:
    """``config.invalid-value`` in a hosts.toml: drop capability values containerd rejects, or add the [host] stub."""
    path = ctx.finding.subject
    p = ctx.params
    if p.get("action") == "add-host-table":
        def stub(doc: TomlDoc) -> None:
            require(not doc.has(("host",)), f"{path} already has [host] tables")
            doc.set(("host",), {})
        edit_toml(ctx, path, stub)
        return
    allowed = p.get("allowed")
    if not allowed:
        raise ManualOnly("regtui cannot tell which value was meant")

    def edit(doc: TomlDoc) -> None:
        keypath = _hosts_keypath(doc, str(p.get("key", "")), p.get("line"))
        require(keypath is not None and keypath[-1] == "capabilities", "only capabilities can be corrected here")
        value = doc.get(keypath)
        values = value if isinstance(value, list) else [value]
        kept = [v for v in values if v in allowed]
        require(kept, "no valid capability would remain; write the list by hand")
        doc.set(keypath, kept)

    edit_toml(ctx, path, edit)
