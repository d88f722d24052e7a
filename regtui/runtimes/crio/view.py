"""The ``crio`` runtime as the engine sees it: :func:`detect` and :func:`load`, which reads the
configuration (:mod:`.config`) and wires the planner (:mod:`.routes`) into a RuntimeView."""

from __future__ import annotations

from typing import Any, Mapping

from regtui.credentials import Credential
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.refs import DOCKER_HUB, HUB_API_HOST
from regtui.runtimes.crio import routes as crio_routes
from regtui.runtimes.crio.common import RUNTIME
from regtui.runtimes.crio.config import CrioConfig, load_config
from regtui.runtimes.crio.detection import detect
from regtui.runtimes.view import RuntimeView

__all__ = ["detect", "load"]


def _summary(cfg: CrioConfig) -> dict[str, Any]:
    """Effective values worth showing in the Config panel and the report."""
    regs = cfg.registries
    return {
        "perspective": "CRI-O daemon" if cfg.perspective == "crio" else "podman/skopeo as root",
        "registries_conf": regs.files,
        "registries": sorted(regs.registries),
        "unqualified_search_registries": regs.search,
        "short_name_mode": regs.short_name_mode,
        "credential_helpers": regs.credential_helpers,
        "auth_files": [af.path for af in cfg.auth.chain],
        "global_auth_file": cfg.crio.global_auth_file or None,
        "insecure_registries": cfg.crio.insecure_registries,
        "refused": regs.refused.title if regs.refused else None,
        "reload": "systemctl reload crio (SIGHUP) re-reads registries.conf; podman/skopeo read it on every run",
    }


def load(host: Host, options: CheckOptions | None = None, *, client_env: Mapping[str, str] | None = None) -> RuntimeView:
    """The ``crio`` runtime view: files, offline findings, proxy environment and route planner."""
    cfg, sources, findings = load_config(host, client_env=client_env)

    def credentials(key: str) -> Credential | None:
        """Credentials for an endpoint host, or a repository on it (namespaced keys need it)."""
        # An endpoint host, or a repository on it (namespaced auth keys need the repository).
        if key.split("/", 1)[0] == HUB_API_HOST:
            key = DOCKER_HUB + key[len(HUB_API_HOST):]
        return cfg.auth.lookup(key).credential

    return RuntimeView(
        name=RUNTIME,
        detected_by=detect(host),
        sources=sources,
        findings=findings,
        proxy_env=cfg.proxy_env,
        planner=lambda ref: crio_routes.plan(cfg, ref),
        credentials=credentials,
        summary=_summary(cfg),
    )
