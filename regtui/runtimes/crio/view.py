"""The ``crio`` runtime as the engine sees it: :func:`detect` and :func:`load`, which reads the
configuration (:mod:`.config`) and wires the planner (:mod:`.routes`) into a RuntimeView."""

from __future__ import annotations

import posixpath
from typing import Any, Mapping

from regtui.config import systemd
from regtui.credentials import Credential
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.refs import DOCKER_HUB, HUB_API_HOST
from regtui.runtimes.crio import routes as crio_routes
from regtui.runtimes.crio.common import RUNTIME
from regtui.runtimes.crio.certs import USER_CERTS_DIR
from regtui.runtimes.crio.config import CrioConfig, load_config
from regtui.runtimes.crio.crioconf import CRIO_ENV_FILES, CRIO_UNIT
from regtui.runtimes.crio.registries import USER_REGISTRIES_CONF, USER_REGISTRIES_DIR
from regtui.runtimes.view import RuntimeView

__all__ = ["detect", "load"]

BINARIES = ("crio", "podman", "skopeo", "buildah")
CONFIG_DIRS = ("/etc/containers", "/etc/crio")


#: Files under root's home that podman/skopeo/buildah (containers/image) read for a pull.
_USER_FILES = (USER_REGISTRIES_CONF, ".config/containers/auth.json", ".config/containers/policy.json")
#: Where podman as root keeps ``podman login`` credentials (``/run/containers/$UID/auth.json``).
_RUN_AUTH = "/run/containers/0/auth.json"
#: Variables naming a file podman/skopeo read instead of the default (honoured on the live system).
_FILE_VARIABLES = ("CONTAINERS_REGISTRIES_CONF", "REGISTRY_AUTH_FILE")


def detect(host: Host) -> list[str]:
    """Binaries and files that show CRI-O, podman, skopeo or buildah on the host: the config dirs,
    crio.service with its drop-ins and environment files, and root's own registries.conf(.d),
    auth.json and policy.json (the Docker CLI's config.json, which they also read, is Docker's)."""
    evidence = [p for b in BINARIES if (p := host.which(b))]
    evidence += [d for d in CONFIG_DIRS if host.is_dir(d)]
    evidence += systemd.unit_paths(host, CRIO_UNIT)
    evidence += [p for p in CRIO_ENV_FILES if host.is_file(p)]
    home = host.home()
    evidence += [p for rel in _USER_FILES if host.is_file(p := posixpath.join(home, rel))]
    evidence += host.glob(posixpath.join(home, USER_REGISTRIES_DIR), ".conf")
    if host.listdir(posixpath.join(home, USER_CERTS_DIR)):
        evidence.append(posixpath.join(home, USER_CERTS_DIR))
    if host.is_file(_RUN_AUTH):
        evidence.append(_RUN_AUTH)
    if host.live:
        evidence += [v for k in _FILE_VARIABLES if (v := host.environ.get(k, "")) and host.is_file(v)]
    return list(dict.fromkeys(evidence))


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
