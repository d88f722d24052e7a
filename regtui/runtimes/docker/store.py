"""Which image store dockerd uses: the classic graphdriver store or the containerd image store,
as ``determineImageStoreChoice`` decides it (SEMANTICS §1.5; moby ``daemon/image_store_choice.go``),
and the containerd hosts directories that store never reads."""

from __future__ import annotations

import posixpath

from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding
from regtui.options import CheckOptions
from regtui.runtimes.docker.model import CERTS_DIR, CONTAINERD_CERTS_DIR, RUNTIME, DaemonConfig

__all__ = ["decide_store", "hosts_dir_unused"]

#: Graph drivers whose directory under the data root shows a graphdriver store was used.
_GRAPHDRIVERS = ("overlay2", "fuse-overlayfs", "btrfs", "zfs", "vfs", "aufs", "devicemapper", "overlay")
_FRESH_CONTAINERD_STORE = (29, 0)
_SNAPSHOTTER_FEATURE = (24, 0)


def _nonempty_dir(host: Host, path: str) -> bool:
    return bool(host.listdir(path))


def decide_store(host: Host, cfg: DaemonConfig, options: CheckOptions | None) -> tuple[str, str]:
    """``(store, why)``: ``classic`` (graphdriver) or ``containerd`` (containerd image store), as
    ``determineImageStoreChoice`` decides it, plus the install history under the data root."""
    override = options.docker_store if options else "auto"
    if override in ("classic", "containerd"):
        return override, f"set by --docker-store {override}"
    version = cfg.version
    ver = f"Engine {version[0]}.{version[1]}" if version else "Engine version unknown"
    features = cfg.flat.get("features") if isinstance(cfg.flat.get("features"), dict) else {}
    feature = features.get("containerd-snapshotter")
    if cfg.value("userns-remap"):
        return "classic", "userns-remap is set: it forces the graphdriver store"
    if isinstance(feature, bool):
        if feature and version is not None and version < _SNAPSHOTTER_FEATURE:
            return "classic", f"features.containerd-snapshotter is true, but {ver} predates the feature (24.0)"
        where = cfg.where("features", "containerd-snapshotter")
        return ("containerd", f"features.containerd-snapshotter=true ({where})") if feature else \
            ("classic", f"features.containerd-snapshotter=false ({where})")
    driver = (cfg.unit.environment.get("DOCKER_DRIVER") if cfg.unit else "") or cfg.value("storage-driver") or ""
    prior = [d for d in _GRAPHDRIVERS if _nonempty_dir(host, posixpath.join(cfg.data_root, d))]
    snapshots = [p for p in host.listdir(posixpath.join(cfg.data_root, "containerd", "daemon")) or []
                 if p.startswith("io.containerd.snapshotter.v1.")]
    if version is not None and version < _FRESH_CONTAINERD_STORE:
        return "classic", f"{ver}: the graphdriver store is the default before Engine 29"
    if driver:
        if driver in ("vfs", "overlay2", "btrfs") or version is None:
            return "classic", f"storage driver {driver!r} selects the graphdriver store ({ver})"
        return "containerd", f"storage driver {driver!r} is not a graphdriver name: dockerd uses it as a containerd snapshotter"
    if prior:
        return "classic", (f"{ver}: an earlier graphdriver store exists ({posixpath.join(cfg.data_root, prior[0])}), "
                           "so dockerd keeps it (graphdriver-prior)")
    if version is not None:
        return "containerd", f"{ver}: fresh install without graphdriver data: the containerd image store is the default"
    if snapshots:
        return "containerd", (f"{ver}; containerd store data found "
                              f"({posixpath.join(cfg.data_root, 'containerd', 'daemon', snapshots[0])})")
    return "classic", f"{ver} and no image data under {cfg.data_root}: assumed the graphdriver store (default before 29)"


def hosts_dir_unused(host: Host) -> list[Finding]:
    """Pattern 7: hosts dirs in /etc/containerd/certs.d that dockerd's containerd store never reads."""
    out: list[Finding] = []
    for name in host.listdir(CONTAINERD_CERTS_DIR) or []:
        path = posixpath.join(CONTAINERD_CERTS_DIR, name)
        if not host.is_dir(path) or not (host.listdir(path) or []):
            continue
        target = posixpath.join(CERTS_DIR, name)
        if host.exists(posixpath.join(target, "hosts.toml")):
            continue
        out.append(finding(
            "config.hosts-dir-unused", path,
            f"{path} is not read by dockerd: its containerd image store reads {CERTS_DIR} only",
            f"dockerd configures containerd's resolver with {CERTS_DIR} as the hosts directory and never looks in "
            f"{CONTAINERD_CERTS_DIR} (moby#51080). The hosts.toml, CA and skip_verify in {path} therefore do nothing "
            "for docker pull: self-signed registries fail with x509 errors and mirrors are not used. "
            "They still apply to the CRI (kubelet, crictl).",
            evidence={"file": path, "line": None, "value": name, "reads": CERTS_DIR},
            runtime=RUNTIME,
            fix=fix("config.hosts-dir-unused", path, f"copy {path} to {target}", files=[target],
                    params={"action": "copy", "from": path, "to": target}),
        ))
    return out
