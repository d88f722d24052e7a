"""The hosts directories the CRI reads through ``config_path`` (SEMANTICS §2.3, §7 patterns 12
and 13): each one read and validated at load time (through :mod:`regtui.config.hostsdir`), and
the findings for directories nobody reads: ``config_path`` empty, a multi-directory
``config_path`` in transfer-service mode, and ``ctr``, which reads none without ``--hosts-dir``.
"""

from __future__ import annotations

import posixpath

from regtui.config.hostsdir import dir_namespace, existing_host_dirs, read_hosts_dir
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding
from regtui.runtimes.containerd.model import DEFAULT_HOSTS_DIR, RESTART, ContainerdConfig, first_line, toml_path
from regtui.runtimes.containerd.versions import cri_plugin_name

__all__ = ["scan_hosts_dirs"]


def scan_hosts_dirs(host: Host, cfg: ContainerdConfig, runtime: str) -> None:
    """Validate every hosts dir the CRI reads; patterns 12 and 13; dirs nobody reads."""
    for directory in existing_host_dirs(host, cfg.roots):
        res = read_hosts_dir(host, directory, dir_namespace(posixpath.basename(directory)), runtime,
                             containerd_version=None if cfg.version_assumed else cfg.version)
        cfg.hosts[directory] = res
        cfg.scanned_dirs.add(directory)
        cfg.sources += res.sources
        cfg.findings += res.findings
    roots = cfg.roots or [DEFAULT_HOSTS_DIR]
    dirs = existing_host_dirs(host, roots)
    if cfg.pull_mode == "transfer" and len(cfg.roots) > 1:
        cfg.findings.append(_transfer_multi_dir(cfg, dirs, runtime))
    elif not cfg.roots and dirs:
        # Nothing reads the default directory, ctr included: one finding says so, with both readers.
        cfg.findings.append(_config_path_unset(cfg, dirs, runtime))
        return
    if dirs:
        cfg.findings.append(_ctr_hint(cfg, roots, dirs, runtime))


def _config_table_setting(cfg: ContainerdConfig) -> tuple[str, int, str]:
    """Where ``config_path`` is set, or where it belongs: file, line (the registry table, else 1), table."""
    setting = cfg.registry.config_path
    if setting is not None and setting.line:
        return setting.file, setting.line, setting.table
    table = cfg.registry.registry_table or toml_path(("plugins", cri_plugin_name(cfg.version, 3), "registry"))
    main = cfg.files[0] if cfg.files else None
    line = None
    if main is not None and main.ok and cfg.registry.registry_key:
        key = cfg.registry.registry_key
        line = next((ln for n in range(len(key), 1, -1) if (ln := first_line(main, key[:n]))), None)
    return cfg.path, line or 1, table


def _transfer_multi_dir(cfg: ContainerdConfig, dirs: list[str], runtime: str) -> Finding:
    file, line, table = _config_table_setting(cfg)
    return finding(
        "config.hosts-dir-unused", file,
        f"config_path lists {len(cfg.roots)} directories: in transfer-service mode no hosts.toml is read",
        f"{cfg.daemon} pulls for the CRI through the transfer service, which passes the whole "
        f"config_path \"{cfg.config_path}\" as ONE directory name. That directory does not exist, so every hosts.toml "
        "is silently ignored and pulls go straight to each registry (containerd#12808)."
        + (f" Unused: {', '.join(dirs[:5])}." if dirs else ""),
        severity="warning" if dirs else "info",
        evidence={"file": file, "line": line, "value": cfg.config_path, "config_path_source": cfg.config_path_source,
                  "pull_mode": cfg.pull_mode_reason, "unused_dirs": dirs},
        fix=fix("config.hosts-dir-unused", file, f"set config_path = \"{cfg.roots[0]}\" (one directory)", files=[file],
                restart=RESTART, detail="config_path",
                params={"table": table, "key": "config_path", "value": cfg.roots[0], "line": line,
                        "alternative": {"table": cfg.registry.image_table, "key": "use_local_image_pull",
                                        "value": True}}),
        runtime=runtime,
    )


def _config_path_unset(cfg: ContainerdConfig, dirs: list[str], runtime: str) -> Finding:
    file, line, table = _config_table_setting(cfg)
    mirrors = bool(cfg.registry.mirrors)
    return finding(
        "config.hosts-dir-unused", DEFAULT_HOSTS_DIR,
        f"{DEFAULT_HOSTS_DIR} has hosts dirs but config_path is empty: the CRI never reads them",
        f"With config_path empty ({cfg.config_path_source}), {cfg.daemon} uses the legacy registry "
        f"settings and ignores {', '.join(dirs[:5])}. kubelet and crictl pulls do not see these mirrors or CAs; "
        f"ctr reads them only when given `--hosts-dir {DEFAULT_HOSTS_DIR}`.",
        evidence={"file": file, "line": line, "value": "", "unused_dirs": dirs},
        fix=fix("config.hosts-dir-unused", file, f"set config_path = \"{DEFAULT_HOSTS_DIR}\" in [{table}]",
                files=[file], restart=RESTART, detail="config_path",
                params={"table": table, "key": "config_path", "value": DEFAULT_HOSTS_DIR, "line": line,
                        "requires": "move the legacy mirrors to hosts.toml first" if mirrors else None}),
        runtime=runtime,
    )


def _ctr_hint(cfg: ContainerdConfig, roots: list[str], dirs: list[str], runtime: str) -> Finding:
    root = roots[0]
    command = f"ctr images pull --hosts-dir {root} <image>"
    return finding(
        "config.hosts-dir-unused", root, f"ctr ignores {root} unless given --hosts-dir",
        "ctr does not read the CRI registry configuration and has no default hosts directory, so a `ctr images pull` "
        "uses none of these mirrors, CAs or skip_verify settings and can fail where kubelet succeeds. Test with "
        f"`crictl pull`, or pass `--hosts-dir {root}` to ctr.",
        severity="info",
        evidence={"file": root, "line": 1, "value": dirs[:10]},
        fix=fix("config.hosts-dir-unused", root, f"use: {command}", kind="command", detail="ctr",
                params={"command": command}),
        runtime=runtime,
    )
