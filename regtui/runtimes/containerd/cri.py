"""The CRI plugin's image and registry settings (SEMANTICS §2.2, §2.5): the tables of one file
(``config_path``, legacy ``mirrors``/``configs``/``auths``, ``headers``, the image keys, the
transfer service's concurrency) with their type checks, the credential checks, and the effective
values after merging: ``config_path`` with its per-version default, the pull mode (transfer
service or local pull) and ``max_concurrent_downloads``.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from regtui import redact
from regtui.config._source import Parsed, value_kind
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.runtimes.containerd.model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_CONFIG_PATH_22,
    RESTART,
    ContainerdConfig,
    Setting,
    decode_auth,
    invalid_value,
    parse_auth,
    stop,
    toml_path,
)
from regtui.runtimes.containerd.versions import IMAGE_KEYS, TRANSFER, cri_plugin_name, plugin_tables

__all__ = ["extract", "check_credentials", "effective_settings"]


# -- one file's CRI tables -------------------------------------------------------------------------

def extract(cfg: ContainerdConfig, parsed: Parsed, data: dict[str, Any], file_version: int, runtime: str) -> None:
    reg = cfg.registry
    plugins = data.get("plugins")
    if plugins is None:
        plugins = {}
    if not isinstance(plugins, dict):
        cfg.findings.append(invalid_value(parsed, ("plugins",), plugins, "plugins must be a table",
                                          "containerd fails to decode its config and does not start.", runtime))
        stop(cfg, f"{parsed.where('plugins')}: plugins is not a table")
        return
    if not reg.registry_table and parsed is cfg.files[0]:
        reg.registry_key = ("plugins", cri_plugin_name(cfg.version, file_version), "registry")
        reg.registry_table = toml_path(reg.registry_key)
        reg.image_table = toml_path(reg.registry_key[:2])
    for name, form in plugin_tables(cfg, parsed, plugins, file_version, runtime):
        table = plugins.get(name)
        base = ("plugins", name)
        if not _is_table(cfg, parsed, base, table, runtime):
            continue
        _extract_image_keys(cfg, parsed, table, base, form, runtime)
        registry = table.get("registry")
        if registry is None or not _is_table(cfg, parsed, base + ("registry",), registry, runtime):
            continue
        _extract_registry(cfg, parsed, registry, base + ("registry",), runtime)
    transfer = plugins.get(TRANSFER)
    if isinstance(transfer, dict) and "max_concurrent_downloads" in transfer:
        key = ("plugins", TRANSFER, "max_concurrent_downloads")
        reg.transfer_concurrency = Setting(transfer["max_concurrent_downloads"], parsed.path, parsed.line(*key), key)


def _setting(parsed: Parsed, key: tuple[Any, ...], value: Any) -> Setting:
    return Setting(value, parsed.path, parsed.line(*key), key)


def _extract_image_keys(cfg: ContainerdConfig, parsed: Parsed, table: Mapping[str, Any], base: tuple[Any, ...],
                        form: str, runtime: str) -> None:
    nested = ("discard_unpacked_layers", "disable_snapshot_annotations")
    for name in IMAGE_KEYS:
        if form == "v2" and name in nested:
            sub = table.get("containerd")
            source, key = (sub if isinstance(sub, dict) else {}), base + ("containerd", name)
        else:
            source, key = table, base + (name,)
        if name not in source:
            continue
        value = source[name]
        want_int = name == "max_concurrent_downloads"
        ok = (isinstance(value, int) and not isinstance(value, bool)) if want_int else isinstance(value, bool)
        if not ok:
            cfg.findings.append(_cri_type(parsed, key, value, "an integer" if want_int else "true or false", runtime))
            _undecodable(cfg)
            continue
        cfg.registry.image[name] = _setting(parsed, key, value)


def _cri_type(parsed: Parsed, key: tuple[Any, ...], value: Any, want: str, runtime: str) -> Finding:
    return invalid_value(parsed, key, value, f"{toml_path(key[-2:])} must be {want}, not {value_kind(value)}",
                         "containerd cannot decode the CRI plugin's configuration and exits at start (1.6 prints "
                         "`Can't convert ... to a slice`); `containerd config dump` fails the same way.", runtime)


def _undecodable(cfg: ContainerdConfig) -> None:
    """A CRI setting of the wrong type: plugin config decoding fails and containerd exits."""
    stop(cfg, "a CRI registry or image setting has the wrong type")


def _is_table(cfg: ContainerdConfig, parsed: Parsed, key: tuple[Any, ...], value: Any, runtime: str) -> bool:
    """True for a table; anything else gets the type finding and containerd does not start."""
    if isinstance(value, dict):
        return True
    cfg.findings.append(_cri_type(parsed, key, value, "a table", runtime))
    _undecodable(cfg)
    return False


def _extract_registry(cfg: ContainerdConfig, parsed: Parsed, registry: Mapping[str, Any], base: tuple[Any, ...],
                      runtime: str) -> None:
    reg = cfg.registry
    if "config_path" in registry:
        key = base + ("config_path",)
        if isinstance(registry["config_path"], str):
            reg.config_path = _setting(parsed, key, registry["config_path"])
        else:
            cfg.findings.append(_cri_type(parsed, key, registry["config_path"],
                                          "a string of ':'-separated directories", runtime))
            _undecodable(cfg)
    for name, into, check in (("mirrors", reg.mirrors, _mirror_ok), ("headers", reg.headers, _header_ok),
                              ("auths", reg.auths, lambda v: _dict_ok(v) or _auth_ok(v))):
        table = registry.get(name)
        if table is None or not _is_table(cfg, parsed, base + (name,), table, runtime):
            continue
        for k, v in table.items():
            endpoint = name == "mirrors" and isinstance(v, dict) and "endpoint" in v
            key = base + (name, k) + (("endpoint",) if endpoint else ())
            problem = check(v)
            if problem:
                cfg.findings.append(_cri_type(parsed, key, v, problem, runtime))
                _undecodable(cfg)
                continue
            into[k] = _setting(parsed, key, v.get("endpoint", []) if name == "mirrors" else v)
    configs = registry.get("configs")
    if configs is None or not _is_table(cfg, parsed, base + ("configs",), configs, runtime):
        return
    for hostname, entry in configs.items():
        if not _is_table(cfg, parsed, base + ("configs", hostname), entry, runtime):
            continue
        for part, into in (("auth", reg.auth), ("tls", reg.tls)):
            if part not in entry:
                continue
            key = base + ("configs", hostname, part)
            problem = _dict_ok(entry[part]) or (_tls_ok(entry[part]) if part == "tls" else _auth_ok(entry[part]))
            if problem:
                cfg.findings.append(_cri_type(parsed, key, entry[part] if part == "tls" else "{...}", problem, runtime))
                _undecodable(cfg)
                continue
            into[hostname] = _setting(parsed, key, entry[part])


def _mirror_ok(value: Any) -> str:
    if not isinstance(value, dict):
        return "a table with endpoint = [...]"
    endpoints = value.get("endpoint", [])
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        return "a list of endpoint URLs"
    return ""


def _header_ok(value: Any) -> str:
    return "" if isinstance(value, list) and all(isinstance(v, str) for v in value) else "a list of strings"


def _dict_ok(value: Any) -> str:
    return "" if isinstance(value, dict) else "a table"


def _auth_ok(value: Mapping[str, Any]) -> str:
    bad = [k for k in ("username", "password", "auth", "identitytoken") if k in value and not isinstance(value[k], str)]
    return f"a table of strings ({', '.join(bad)} is not a string)" if bad else ""


def _tls_ok(value: Mapping[str, Any]) -> str:
    if "insecure_skip_verify" in value and not isinstance(value["insecure_skip_verify"], bool):
        return "a table whose insecure_skip_verify is true or false"
    bad = [k for k in ("ca_file", "cert_file", "key_file") if k in value and not isinstance(value[k], str)]
    return f"a table of file paths ({', '.join(bad)} is not a string)" if bad else ""


# -- credentials (SEMANTICS §2.5) -----------------------------------------------------------------

def check_credentials(cfg: ContainerdConfig, runtime: str) -> None:
    """Credentials: fold the deprecated ``auths`` into ``configs``, then the checks that need no reference."""
    _fold_auths(cfg)
    for hostname, setting in cfg.registry.auth.items():
        encoded = setting.value.get("auth")
        plain = setting.value.get("username") or setting.value.get("identitytoken")
        if encoded and not plain and decode_auth(encoded) is None:
            cfg.findings.append(_malformed_auth(hostname, setting, runtime))
    _hub_auth_key(cfg, runtime)


def _fold_auths(cfg: ContainerdConfig) -> None:
    """The CRI maps ``auths."https://host"`` to ``configs."host".auth`` (the scheme and path are dropped)."""
    for endpoint, setting in cfg.registry.auths.items():
        hostname = endpoint
        if "://" in endpoint:
            try:
                hostname = urlsplit(endpoint).netloc
            except ValueError:
                continue
        cfg.registry.auth[hostname] = setting


def _malformed_auth(hostname: str, setting: Setting, runtime: str) -> Finding:
    return finding(
        "auth.malformed", setting.file,
        f"{setting.where}: the auth value for {hostname} is not base64 of user:password",
        f"containerd fails to decode it when {hostname} asks for credentials, and the pull fails.",
        evidence={"file": setting.file, "line": setting.line, "value": redact.MASK, "host": hostname},
        fix=fix("auth.malformed", setting.file, "re-encode: printf 'user:password' | base64 -w0",
                files=[setting.file], restart=RESTART, detail=hostname,
                params={"key": toml_path(setting.key + ("auth",)), "line": setting.line}),
        runtime=runtime,
    )


def _hub_auth_key(cfg: ContainerdConfig, runtime: str) -> None:
    """Pattern 16: Docker Hub credentials keyed ``docker.io`` are never looked up."""
    reg = cfg.registry
    if "registry-1.docker.io" in reg.auth:
        return
    for wrong in ("docker.io", "index.docker.io"):
        setting = reg.auth.get(wrong)
        if setting is None or parse_auth(setting) is None:
            continue
        table = toml_path(setting.key[:-2] + ("registry-1.docker.io", "auth"))
        cfg.findings.append(finding(
            "auth.wrong-key", setting.file,
            f"{setting.where}: Docker Hub credentials under configs.\"{wrong}\" are never used",
            "containerd looks credentials up by the host that answers with the 401 challenge. For Docker Hub that is "
            "registry-1.docker.io, never docker.io, so these credentials are not sent: pulls stay anonymous and "
            "hit the anonymous rate limit (429). Mirrors need their own configs.\"<mirror host>\" entry too.",
            evidence={"file": setting.file, "line": setting.line, "value": f"configs.\"{wrong}\".auth", "key": wrong},
            fix=fix("auth.wrong-key", setting.file, f"copy configs.\"{wrong}\".auth to [{table}]", files=[setting.file],
                    restart=RESTART, detail=wrong,
                    params={"key": toml_path(setting.key), "new_key": table, "from_host": wrong,
                            "to_host": "registry-1.docker.io", "line": setting.line, "action": "copy"}),
            runtime=runtime,
        ))
        return


# -- effective settings -------------------------------------------------------------------------

def effective_settings(cfg: ContainerdConfig) -> None:
    """The effective ``config_path`` (version default applied), pull mode and download concurrency."""
    _effective_config_path(cfg)
    _pull_mode(cfg)
    _concurrency(cfg)


def _effective_config_path(cfg: ContainerdConfig) -> None:
    setting = cfg.registry.config_path
    value = setting.value if setting else ""
    v = cfg.version
    if value:
        cfg.config_path, cfg.config_path_source = value, setting.where  # type: ignore[union-attr]
    elif (2, 2, 0) <= v < (2, 2, 2) and setting is None:
        cfg.config_path = DEFAULT_CONFIG_PATH_22
        cfg.config_path_source = f"default ({cfg.daemon} bakes it into its defaults)"
    elif v >= (2, 2, 2) and not cfg.registry.mirrors:
        cfg.config_path = DEFAULT_CONFIG_PATH_22
        cfg.config_path_source = (f"default ({cfg.daemon} sets it when config_path is empty "
                                  "and no mirrors are set)")
    else:
        cfg.config_path = ""
        cfg.config_path_source = setting.where if setting else f"default (empty in {cfg.daemon})"
    cfg.roots = [r for r in cfg.config_path.split(":") if r]


def _pull_mode(cfg: ContainerdConfig) -> None:
    image = cfg.registry.image
    if cfg.version < (2, 1, 0):
        cfg.pull_mode = "local"
        cfg.pull_mode_reason = f"{cfg.daemon}: CRI pulls client-side before 2.1"
        return
    local = image.get("use_local_image_pull")
    if local is not None and local.value:
        cfg.pull_mode, cfg.pull_mode_reason = "local", f"use_local_image_pull = true ({local.where})"
        return
    triggers = _local_pull_triggers(cfg)
    if triggers:
        cfg.pull_mode = "local"
        cfg.pull_mode_reason = ("CRI falls back to local pull (`Found '...' in CRI config which is incompatible with "
                                f"transfer service`): {'; '.join(triggers)}")
    else:
        cfg.pull_mode = "transfer"
        cfg.pull_mode_reason = f"{cfg.daemon}: transfer service is the default from 2.1"


def _local_pull_triggers(cfg: ContainerdConfig) -> list[str]:
    """``CheckLocalImagePullConfigs``: settings the transfer service cannot honour."""
    reg, image = cfg.registry, cfg.registry.image
    triggers = []
    for name, present in (("mirrors", reg.mirrors), ("configs", reg.auth or reg.tls), ("auths", reg.auths)):
        if present:
            first = next(iter(present.values()))
            triggers.append(f"{name} ({first.where})")
    checks = (("discard_unpacked_layers", lambda x: x is True),
              ("max_concurrent_downloads", lambda x: x != DEFAULT_CONCURRENCY),
              ("disable_snapshot_annotations", lambda x: x is False),
              ("image_pull_with_sync_fs", lambda x: x is True))
    for name, hit in checks:
        s = image.get(name)
        if s is not None and hit(s.value):
            triggers.append(f"{name} = {str(s.value).lower()} ({s.where})")
    return triggers


def _concurrency(cfg: ContainerdConfig) -> None:
    transfer = cfg.pull_mode == "transfer"
    source = cfg.registry.transfer_concurrency if transfer else cfg.registry.image.get("max_concurrent_downloads")
    if source is not None and isinstance(source.value, int):
        cfg.max_concurrent_downloads, cfg.max_concurrent_downloads_source = source.value, source.where
    else:
        cfg.max_concurrent_downloads_source = f"default ({'transfer service' if transfer else 'CRI'})"
