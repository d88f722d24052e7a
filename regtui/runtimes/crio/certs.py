"""Certs dirs of containers/image (SEMANTICS §3.4): the first existing of
``~/.config/containers/certs.d/<host:port>``, ``/etc/containers/certs.d/<host:port>``,
``/etc/docker/certs.d/<host:port>`` is read and the others are not (no merging)."""

from __future__ import annotations

import posixpath

from regtui.config import certsd
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding
from regtui.runtimes.crio.common import RUNTIME
from regtui.runtimes.crio.detection import USER_CERTS_DIR

__all__ = ["certs_dir_candidates", "certs_dir", "read_certs"]

SYSTEM_CERTS_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


def certs_dir_candidates(home: str, hostport: str) -> list[str]:
    """``dockerCertDir`` candidates for ``host[:port]``, in order (the first existing one is used)."""
    bases = [posixpath.join(home, USER_CERTS_DIR), *SYSTEM_CERTS_DIRS]
    return [posixpath.join(b, hostport) for b in bases]


def certs_dir(host: Host, home: str, hostport: str) -> str | None:
    """The certs dir containers/image reads for ``host[:port]``, or ``None`` when none exists."""
    return next((d for d in certs_dir_candidates(home, hostport) if host.exists(d)), None)


def read_certs(host: Host, home: str,
               hostport: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], str, list[Finding], str]:
    """CA files, client pairs, the trust source in words, findings, and the error ``SetupCertificates``
    stops at (``""`` when the directory is usable) for ``host:port``.

    The first existing dir of the chain is read and the others are not (no merging); misnamed
    directories are looked for in the bases up to the one used.
    """
    candidates = certs_dir_candidates(home, hostport)
    chosen = certs_dir(host, home, hostport)
    findings: list[Finding] = []
    upto = candidates.index(chosen) + 1 if chosen in candidates else len(candidates)
    for candidate in candidates[:upto]:
        findings += certsd.misnamed_dirs(host, posixpath.dirname(candidate), hostport, runtime=RUNTIME)
    if chosen is None:
        return (), (), f"system roots only (no {' / '.join(candidates)})", findings, ""
    for shadowed in candidates[upto:]:
        if _has_certs(host, shadowed):
            findings.append(_shadowed(chosen, shadowed, hostport))
    read = certsd.read_certs_dir(host, chosen, RUNTIME)
    findings += list(read.findings)
    fatal = f"{read.fatal} ({chosen})" if read.fatal else ""
    return tuple(read.ca_files), tuple(read.client_pairs), f"system roots + {chosen}", findings, fatal


def _has_certs(host: Host, path: str) -> bool:
    """The directory holds certificate or key files."""
    return any(n.endswith((".crt", ".cert", ".key")) for n in host.listdir(path) or [])


def _shadowed(chosen: str, shadowed: str, hostport: str) -> Finding:
    """A certs dir after the one used: containers/image never reads it."""
    return finding(
        "config.hosts-dir-unused", shadowed,
        f"{shadowed} is never read: {chosen} comes first and certs dirs are not merged",
        f"containers/image uses only the first existing of the certs dirs for {hostport}; the certificates in "
        f"{shadowed} are ignored by CRI-O, podman and skopeo (dockerd still reads them).",
        evidence={"file": shadowed, "line": None, "value": posixpath.basename(shadowed), "used": chosen,
                  "registry": hostport},
        runtime=RUNTIME,
        fix=fix("config.hosts-dir-unused", shadowed, f"copy the certificates of {shadowed} into {chosen}",
                files=[chosen], restart="none", params={"action": "copy-contents", "from": shadowed, "to": chosen}),
    )
