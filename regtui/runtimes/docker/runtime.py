"""dockerd as the engine sees it: :func:`detect` and :func:`load`, which reads the daemon and the
CLI configuration, decides the image store and wires the planner of :mod:`.routes`."""

from __future__ import annotations

from typing import Any

from regtui.host import Host
from regtui.model import SourceFile
from regtui.options import CheckOptions
from regtui.refs import HUB_API_HOST
from regtui.runtimes.docker import routes
from regtui.runtimes.docker.cliconfig import CliConfig, config_files, load_cli_config
from regtui.runtimes.docker.daemon import load_daemon_config
from regtui.runtimes.docker.detection import detect
from regtui.runtimes.docker.model import CERTS_DIR, RUNTIME, DaemonConfig
from regtui.runtimes.docker.proxy import proxy_env
from regtui.runtimes.docker.store import decide_store, hosts_dir_unused
from regtui.runtimes.view import RuntimeView

__all__ = ["detect", "load"]


def _summary(cfg: DaemonConfig, cli: CliConfig) -> dict[str, Any]:
    concurrency = cfg.value("max-concurrent-downloads", 3)
    attempts = cfg.value("max-download-attempts", 5)
    summary: dict[str, Any] = {
        "image_store": cfg.store,
        "image_store_reason": cfg.store_reason,
        "engine_version": f"{cfg.version[0]}.{cfg.version[1]}" if cfg.version else None,
        "engine_version_source": cfg.version_source,
        "daemon_json": cfg.path,
        "daemon_json_source": cfg.path_source,
        "data_root": cfg.data_root,
        "registry_mirrors": [m.url for m in cfg.mirrors],
        "insecure_registries": sorted(cfg.insecure_hosts) + [str(n) for n, _ in cfg.insecure_cidrs],
        "max_concurrent_downloads": concurrency,
        "max_download_attempts": attempts,
        "exec_start": " ".join(cfg.unit.exec_start) if cfg.unit and cfg.unit.exec_start else None,
        "cli_config": cli.path,
        "starts": not cfg.fatal,
    }
    if cfg.fatal:
        summary["start_errors"] = list(cfg.fatal)
    if cfg.store == "containerd":
        summary["max_download_attempts_note"] = "ignored by the containerd image store"
        summary["hosts_dir"] = CERTS_DIR
    return summary


def load(host: Host, options: CheckOptions) -> RuntimeView:
    """dockerd's configuration as dockerd reads it, with the offline findings and a planner."""
    cfg = load_daemon_config(host, options)
    cfg.store, cfg.store_reason = decide_store(host, cfg, options)
    cli = load_cli_config(host)
    env = proxy_env(cfg)
    findings = list(cfg.findings) + list(cli.findings)
    if cfg.store == "containerd":
        findings += hosts_dir_unused(host)
    sources = list(cfg.sources) + list(cli.sources)
    # Other users' CLI configs count as evidence; say that their docker pull, not root's, reads them.
    cli_files = config_files(host)
    sources += [SourceFile(p, RUNTIME, "docker CLI config.json", "ignored",
                           "another user's: their docker pull reads it; regtui checks the one root's reads")
                for p in cli_files if p != cli.path]
    sources.append(SourceFile(CERTS_DIR, RUNTIME, "certs.d directory",
                              "ok" if host.is_dir(CERTS_DIR) else "missing",
                              "per-registry CA and client certificates" + (
                                  " and hosts.toml (containerd image store)" if cfg.store == "containerd" else ""),
                              {"entries": host.listdir(CERTS_DIR) or []}))

    def planner(ref: Any) -> Any:
        return routes.plan(ref, cfg, cli, env, host)

    def resolves(ref: Any) -> list[str]:
        """Names whose lookup decides insecure vs secure for an https endpoint (Docker Hub itself never is)."""
        route, _ = planner(ref)
        names = (cfg.unresolved(ep.host) for ep in route.tried()
                 if ep.url.startswith("https://") and ep.host != HUB_API_HOST)
        return sorted({n for n in names if n})

    view = RuntimeView(
        name=RUNTIME,
        detected_by=detect(host, cli_files),
        sources=sources,
        findings=findings,
        proxy_env=env,
        planner=planner,
        credentials=lambda endpoint_host: routes.credential_for_endpoint(endpoint_host, cfg, cli),
        summary=_summary(cfg, cli),
        resolves=resolves,
    )
    cfg.resolved = view.resolved  # the engine's online answers reach the planner through this shared dict
    return view
