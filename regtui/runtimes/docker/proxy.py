"""dockerd's proxy variables: the unit's Environment/EnvironmentFile, overwritten at start by
daemon.json ``proxies`` or the proxy flags (SEMANTICS §1.1)."""

from __future__ import annotations

from regtui.net.proxy import ProxyEnv, from_environ
from regtui.runtimes.docker.keys import known_keys
from regtui.runtimes.docker.model import DaemonConfig

__all__ = ["proxy_env"]


def proxy_env(cfg: DaemonConfig) -> ProxyEnv:
    """dockerd's proxy variables: systemd Environment/EnvironmentFile, overridden by ``proxies``/flags."""
    unit = cfg.unit
    env = {k: v for k, v in (unit.environment if unit else {}).items()}
    sources = {k: v for k, v in (unit.env_sources if unit else {}).items()}
    for key, upper in (("http-proxy", "HTTP_PROXY"), ("https-proxy", "HTTPS_PROXY"), ("no-proxy", "NO_PROXY")):
        in_file = isinstance(cfg.data.get("proxies"), dict) and isinstance(cfg.data["proxies"].get(key), str) \
            and cfg.data["proxies"][key] and known_keys(cfg.version) >= {key}
        flag = next((f for f in cfg.flags if f.name == key and f.value), None)
        if in_file:
            value, where = cfg.data["proxies"][key], f"{cfg.where(key)} (daemon.json proxies.{key})"
        elif flag:
            value, where = flag.value, f"{flag.written} at {flag.source}"
        else:
            continue
        for name in (upper, upper.lower()):
            env[name] = value
            sources[name] = where
    proxy_vars = {k: v for k, v in env.items() if k.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")}
    return from_environ(proxy_vars, {k: v for k, v in sources.items() if k in proxy_vars}, "dockerd")
