"""The legacy CRI registry settings (``mirrors``, ``configs."<host>".tls``, ``auths``; SEMANTICS
§2.2, §7 patterns 14 and 15): the clash with a non-empty ``config_path`` that stops the CRI plugin
from loading, the deprecation, settings 2.x ignores, credentials in mirror URLs, and the hosts.toml
files a migration writes.
"""

from __future__ import annotations

import posixpath
from typing import Any

from regtui import redact
from regtui.config.hoststoml import hosts_toml_text
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.runtimes.containerd.model import (
    DEFAULT_CONFIG_PATH_22,
    DEFAULT_HOSTS_DIR,
    RESTART,
    ContainerdConfig,
    Setting,
    endpoint_list,
    toml_path,
)

__all__ = ["legacy_findings"]


def legacy_findings(cfg: ContainerdConfig, runtime: str) -> None:
    """The legacy-settings findings, after the effective ``config_path`` is known; a clash with it
    marks the CRI plugin as not loading."""
    _conflicts(cfg, runtime)
    _legacy(cfg, runtime)


def _conflicts(cfg: ContainerdConfig, runtime: str) -> None:
    """Pattern 14: ``mirrors`` (or, on 1.x, ``configs.tls``) with a non-empty ``config_path``."""
    reg = cfg.registry
    if not cfg.config_path:
        return
    clashes: list[tuple[str, Setting]] = []
    if reg.mirrors:
        clashes.append(("mirrors", next(iter(reg.mirrors.values()))))
    if cfg.version < (2, 0, 0) and reg.tls:
        clashes.append(("configs.tls", next(iter(reg.tls.values()))))
    if not clashes:
        return
    cfg.cri_loads = False
    name, first = clashes[0]
    message = f"`{name}` cannot be set when `config_path` is provided"
    cfg.why_not = message
    regression = (cfg.registry.config_path is None and cfg.config_path == DEFAULT_CONFIG_PATH_22
                  and (2, 2, 0) <= cfg.version < (2, 2, 2))
    why_path = (f"config_path is not set in the file, but {cfg.daemon} bakes "
                f"`{DEFAULT_CONFIG_PATH_22}` into its defaults (a 2.2.0-2.2.1 regression, fixed in 2.2.2)" if regression
                else f"config_path = \"{cfg.config_path}\" ({cfg.config_path_source})")
    hosts = _migration_plan(cfg)
    cfg.findings.append(finding(
        "config.mirrors-with-config-path", first.file,
        f"{first.where}: legacy {name} next to config_path: the CRI plugin does not load",
        f"containerd logs {message} and the whole CRI plugin fails to load: kubelet and crictl get `unknown service "
        f"runtime.v1.RuntimeService` and no pod can start. Here {why_path}."
        + (" Upgrading to 2.2.2 or later also fixes it." if regression else ""),
        evidence=first.evidence(key=toml_path(first.key), conflict=name, config_path=cfg.config_path,
                                config_path_source=cfg.config_path_source),
        fix=fix("config.mirrors-with-config-path", first.file,
                f"move {name} to hosts.toml under {(cfg.roots or [DEFAULT_HOSTS_DIR])[0]} and delete them "
                "from config.toml",
                files=[first.file, *hosts], restart=RESTART, detail=name,
                params={"remove_table": toml_path(first.key[:-2] if name == "mirrors" else first.key),
                        "line": first.line, "hosts_toml": hosts, "upgrade_to": "2.2.2" if regression else None}),
        runtime=runtime,
    ))


def _migration_plan(cfg: ContainerdConfig) -> dict[str, str]:
    """hosts.toml files (host path -> text) equivalent to the legacy mirrors and 1.x TLS settings."""
    root = cfg.roots[0] if cfg.roots else DEFAULT_HOSTS_DIR
    reg = cfg.registry
    plan: dict[str, str] = {}
    for ns, setting in reg.mirrors.items():
        dirname = "_default" if ns == "*" else ns
        upstream = None if ns == "*" else f"https://{'registry-1.docker.io' if ns == 'docker.io' else ns}"
        mirrors = [{"url": e if "://" in e else f"https://{e}", "capabilities": ("pull", "resolve")}
                   for e in endpoint_list(setting)]
        mirrors = [m for m in mirrors if upstream is None or m["url"].rstrip("/") != upstream]
        plan[posixpath.join(root, dirname, "hosts.toml")] = hosts_toml_text(upstream, [_redacted(m) for m in mirrors])
    for hostname, setting in reg.tls.items():
        path = posixpath.join(root, hostname, "hosts.toml")
        plan[path] = plan.get(path, "") + _tls_hosts_toml(hostname, setting)
    return plan


def _redacted(mirror: dict[str, Any]) -> dict[str, Any]:
    return {**mirror, "url": redact.url(mirror["url"])}


def _tls_hosts_toml(hostname: str, setting: Setting) -> str:
    tls = setting.value
    lines = [f'server = "https://{hostname}"'] if tls else []
    if tls.get("ca_file"):
        lines.append(f'ca = "{tls["ca_file"]}"')
    if tls.get("cert_file"):
        pair = [tls["cert_file"], tls.get("key_file", "")]
        lines.append(f'client = [["{pair[0]}", "{pair[1]}"]]' if pair[1] else f'client = "{pair[0]}"')
    if tls.get("insecure_skip_verify") is not None:
        lines.append(f"skip_verify = {'true' if tls['insecure_skip_verify'] else 'false'}")
    return "\n".join(lines) + "\n"


#: containerd logs "`configs` is deprecated" for any ``configs."<host>"`` table from 1.7.9 on (1.6 and
#: 1.7.0-1.7.8 warn for ``configs.tls`` only).
CONFIGS_DEPRECATED_SINCE = (1, 7, 9)
_CONFIGS_WARNING = "`configs` is deprecated, please use `config_path` instead"


def _configs_auth(cfg: ContainerdConfig, runtime: str) -> list[Finding]:
    """``configs."<host>".auth`` tables: deprecated (``ValidateImageConfig``) where the version warns.

    containerd ``internal/cri/config/config.go ValidateImageConfig`` (``pkg/cri/config`` in 1.7)
    logs the warning and records ``deprecation.CRIRegistryConfigs``, whose text in
    ``pkg/deprecation/deprecation.go`` says the property "will be removed in containerd v2.4. Use
    `config_path` instead." ``auths`` folded into ``configs`` afterwards do not count.
    """
    written = [(h, s) for h, s in cfg.registry.auth.items() if "configs" in s.key]
    if not written or cfg.version < CONFIGS_DEPRECATED_SINCE:
        return []
    hosts = [h for h, _ in written]
    first = written[0][1]
    local = (" From containerd 2.1 a `configs` table also makes the CRI pull without the transfer service."
             if cfg.version >= (2, 1, 0) else "")
    return [finding(
        "config.legacy-registry-config", first.file,
        f"{first.where}: configs.\"{hosts[0]}\".auth is deprecated: {cfg.daemon} warns {_CONFIGS_WARNING}",
        f"{cfg.daemon} logs \"{_CONFIGS_WARNING}\" and lists io.containerd.deprecation/cri-registry-configs in "
        "`ctr deprecations list`: the `configs` property of the CRI registry table will be removed in containerd "
        "v2.4, and these credentials with it. The pull still uses them today." + local + " hosts.toml (config_path) "
        "holds no credentials: give them to the kubelet as an imagePullSecret of the pod (or its service account), "
        "then remove the auth table.",
        evidence={"file": first.file, "line": first.line, "key": toml_path(first.key), "hosts": hosts,
                  "settings": ["configs.auth"], "warning": _CONFIGS_WARNING,
                  "deprecation": "io.containerd.deprecation/cri-registry-configs"},
        fix=fix("config.legacy-registry-config", first.file,
                f"move the credentials for {', '.join(hosts)} to an imagePullSecret, then remove "
                f"[{toml_path(first.key)}]", files=[first.file], kind="manual", restart=RESTART, detail="configs.auth",
                params={"key": toml_path(first.key), "line": first.line, "hosts": hosts,
                        "replacement": "imagePullSecrets"}),
        runtime=runtime,
    )]


def _legacy(cfg: ContainerdConfig, runtime: str) -> None:
    """Patterns 15 and the deprecation warning for legacy registry settings."""
    reg = cfg.registry
    cfg.findings += _configs_auth(cfg, runtime)
    if cfg.version >= (2, 0, 0):
        for hostname, setting in reg.tls.items():
            root = cfg.roots[0] if cfg.roots else DEFAULT_HOSTS_DIR
            path = posixpath.join(root, hostname, "hosts.toml")
            cfg.findings.append(finding(
                "config.ignored-key", setting.file,
                f"{setting.where}: configs.\"{hostname}\".tls is ignored by {cfg.daemon}",
                "RegistryConfig.TLS was removed in containerd 2.0: the key is unknown (`Ignoring unknown key in "
                f"TOML`), so insecure_skip_verify / ca_file / cert_file here have no effect and TLS to {hostname} is "
                "verified against the system roots only. Put them in hosts.toml."
                + ("" if cfg.roots else " config_path must also be set for hosts.toml to be read."),
                evidence=setting.evidence(),
                fix=fix("config.ignored-key", setting.file,
                        f"write {path} with the same TLS settings and remove the tls table",
                        files=[setting.file, path], restart=RESTART if not cfg.roots else "none", detail=hostname,
                        params={"key": toml_path(setting.key), "line": setting.line, "hosts_toml_path": path,
                                "hosts_toml": _tls_hosts_toml(hostname, setting),
                                "set_config_path": None if cfg.roots else DEFAULT_HOSTS_DIR}),
                runtime=runtime,
            ))
    cfg.findings += _userinfo_endpoints(cfg, runtime)
    if cfg.config_path and reg.mirrors:
        return  # the conflict finding already covers the mirrors
    in_use = [(n, next(iter(d.values()))) for n, d in (("mirrors", reg.mirrors), ("auths", reg.auths)) if d]
    if cfg.version < (2, 0, 0) and reg.tls and not cfg.config_path:
        in_use.append(("configs.tls", next(iter(reg.tls.values()))))
    if not in_use:
        return
    names = ", ".join(n for n, _ in in_use)
    first = in_use[0][1]
    plan = _migration_plan(cfg)
    cfg.findings.append(finding(
        "config.legacy-registry-config", first.file,
        f"{first.where}: deprecated CRI registry settings in use ({names})",
        "These settings are deprecated; containerd 2.x reads mirrors only through hosts.toml and ignores configs.tls. "
        + ("From containerd 2.1 they also force the CRI to pull without the transfer service. "
           if reg.mirrors or reg.auths else "")
        + "Migrate them to hosts.toml and set config_path.",
        evidence=first.evidence(key=toml_path(first.key), settings=[n for n, _ in in_use]),
        fix=fix("config.legacy-registry-config", first.file,
                f"write hosts.toml under {DEFAULT_HOSTS_DIR}, set config_path, remove {names}",
                files=[first.file, *plan], restart=RESTART, detail=names,
                params={"hosts_toml": plan, "set_config_path": DEFAULT_HOSTS_DIR, "registry_table": reg.registry_table,
                        "remove": [n for n, _ in in_use]}),
        runtime=runtime,
    ))


def _userinfo_endpoints(cfg: ContainerdConfig, runtime: str) -> list[Finding]:
    """Mirror endpoints with ``user:password@``: containerd uses only the URL's host, the credentials are dropped."""
    found = []
    for ns, setting in cfg.registry.mirrors.items():
        for endpoint in endpoint_list(setting):
            netloc = endpoint.split("://", 1)[-1].split("/", 1)[0]
            if "@" not in netloc:
                continue
            mirror_host = netloc.rpartition("@")[2]
            table = toml_path(setting.key[:-3] + ("configs", mirror_host, "auth"))
            found.append(finding(
                "config.ignored-key", setting.file,
                f"{setting.where}: credentials in the mirror URL for {ns} are ignored",
                f"containerd keeps only the host of {redact.url(endpoint)}; the user:password part is never sent. "
                f"Credentials for {mirror_host} belong in [{table}].",
                evidence=setting.evidence(redact.url(endpoint)),
                fix=fix("config.ignored-key", setting.file, f"move the credentials to [{table}]", files=[setting.file],
                        restart=RESTART, detail=f"{ns}:{mirror_host}",
                        params={"key": toml_path(setting.key), "line": setting.line, "new_key": table,
                                "value": redact.url(endpoint)}),
                runtime=runtime,
            ))
    return found
