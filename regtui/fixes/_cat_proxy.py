"""Proxy fixes in the daemon's own environment: where a variable is set (a drop-in, an
EnvironmentFile, daemon.json ``proxies``), it is changed there; a new one goes next to its sibling,
or into ``/etc/systemd/system/<unit>.d/http-proxy.conf`` (created when missing). Packaged unit files
are never edited. Go reads these variables once, so each fix needs a daemon restart."""

from __future__ import annotations

from regtui.fixes._context import Context
from regtui.fixes._dropin import dropin_path
from regtui.fixes._helpers import (UNITS, ManualOnly, edit_env, edit_json, edit_unit, require, runtime_view,
                                   split_source)

__all__ = ["https_missing", "case_conflict", "bypass_missing", "scheme_tls", "write_var"]

_DAEMON_JSON_KEY = {"HTTP_PROXY": "http-proxy", "HTTPS_PROXY": "https-proxy", "NO_PROXY": "no-proxy"}


def write_var(ctx: Context, runtime: str, name: str, value: str, source: str | None) -> str:
    """Set ``name=value`` for ``runtime`` in the file ``source`` names (or the runtime's proxy drop-in); returns the file."""
    if source and source.lstrip().startswith("-"):
        raise ManualOnly(f"{name} comes from a command-line flag ({source}); change the flag by hand")
    path, _ = split_source(source) if source else ("", None)
    if path.endswith(".json"):
        key = _DAEMON_JSON_KEY[name.upper()]
        edit_json(ctx, path, lambda doc: doc.set(("proxies", key), value))
        return path
    unit_file = "/systemd/" in path and path.endswith((".conf", ".service"))
    if unit_file and path.startswith("/etc/systemd/system/"):
        edit_unit(ctx, path, lambda unit: unit.set_env(name, value))
        return path
    if path.startswith("/") and not unit_file:
        edit_env(ctx, path, lambda env: env.set(name, value))  # an EnvironmentFile (k3s.service.env, /etc/default/...)
        return path
    unit = UNITS.get(runtime)
    require(unit, f"no systemd unit is known for {runtime}")
    dropin = dropin_path(unit, "http-proxy.conf")
    edit_unit(ctx, dropin, lambda u: u.set_env(name, value))
    if path:
        ctx.note(f"{path} is a packaged unit file: the change goes into the drop-in {dropin}")
    return dropin


def _runtime(ctx: Context) -> str:
    rt = ctx.params.get("runtime") or ctx.finding.runtime
    require(rt, "the finding does not say which daemon")
    return str(rt)


def https_missing(ctx: Context) -> None:
    """``proxy.https-missing``: set HTTPS_PROXY to HTTP_PROXY's value, next to it."""
    rt = _runtime(ctx)
    env = runtime_view(ctx, rt).proxy_env
    copy_from = str(ctx.params.get("copy_from") or "HTTP_PROXY")
    value = env.variables.get(copy_from) or env.http_proxy
    require(value, f"{rt} has no {copy_from} any more")
    require(not env.https_proxy, f"{rt} has HTTPS_PROXY now")
    name = "HTTPS_PROXY" if copy_from.isupper() else "https_proxy"
    write_var(ctx, rt, name, value, env.sources.get(copy_from))
    ctx.restart = f"restart {rt}"


def case_conflict(ctx: Context) -> None:
    """``proxy.case-conflict``: give the lowercase variable the uppercase one's value (the one Go uses)."""
    p = ctx.params
    if p.get("new_key") and p.get("key"):
        _rename_env(ctx)
        return
    rt = _runtime(ctx)
    env = runtime_view(ctx, rt).proxy_env
    lower, upper = str(p.get("variable")), str(p.get("keep"))
    value = env.variables.get(upper)
    require(value, f"{upper} is no longer set for {rt}")
    if env.variables.get(lower) == value:
        return
    write_var(ctx, rt, lower, value, env.sources.get(lower))
    ctx.restart = f"restart {rt}"


def _rename_env(ctx: Context) -> None:
    """k3s: ``CONTAINERD_http_proxy`` -> ``CONTAINERD_HTTP_PROXY`` in the environment file."""
    p = ctx.params
    path = ctx.finding.subject

    def edit(env):  # type: ignore[no-untyped-def]
        values = env.values()
        require(p["key"] in values, f"{p['key']} is no longer in {path}")
        require(p["new_key"] not in values or values[p["new_key"]] == values[p["key"]],
                f"{p['new_key']} is set too, to another value; keep one by hand")
        value = values[p["key"]]
        env.remove(p["key"])
        env.set(p["new_key"], value)

    edit_env(ctx, path, edit)


def _entries(no_proxy: str) -> list[str]:
    return [e.strip() for e in no_proxy.split(",") if e.strip()]


def bypass_missing(ctx: Context) -> None:
    """``proxy.bypass-missing``: add the endpoint's host to the daemon's NO_PROXY (both cases when both are set)."""
    rt = _runtime(ctx)
    host = str(ctx.params.get("add") or "").strip()
    require(host, "the finding names no host to add")
    env = runtime_view(ctx, rt).proxy_env
    names = [n for n in ("NO_PROXY", "no_proxy") if n in env.variables]
    if not names:
        anchor = env.sources.get("HTTPS_PROXY") or env.sources.get("https_proxy") or env.sources.get("HTTP_PROXY") \
            or env.sources.get("http_proxy")
        write_var(ctx, rt, "NO_PROXY", host, anchor)
    for name in names:
        current = env.variables[name]
        if host.lower() in (e.lower() for e in _entries(current)):
            continue
        value = f"{current.rstrip(', ')},{host}" if current.strip() else host
        write_var(ctx, rt, name, value, env.sources.get(name))
    ctx.restart = f"restart {rt}"


def scheme_tls(ctx: Context) -> None:
    """``proxy.scheme-tls``: ``https://`` -> ``http://`` in the proxy URL, where each daemon reads it."""
    p = ctx.params
    runtimes = list(p.get("runtimes") or ([ctx.finding.runtime] if ctx.finding.runtime else []))
    variables = list(p.get("variables") or ["HTTPS_PROXY", "https_proxy"])
    require(runtimes, "the finding names no daemon")
    changed = False
    for rt in runtimes:
        env = runtime_view(ctx, rt).proxy_env
        for name in variables:
            value = env.variables.get(name, "")
            if not value.lower().startswith("https://"):
                continue
            write_var(ctx, rt, name, "http://" + value[len("https://"):], env.sources.get(name))
            changed = True
        if changed:
            ctx.restart = f"restart {rt}" if len(runtimes) == 1 else "restart the daemons"
    if not changed:
        ctx.note("the configuration files already use http://; the running daemon needs a restart to pick it up")
