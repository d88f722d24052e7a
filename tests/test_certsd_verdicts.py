"""An unusable certs.d/<host> fails the route and the verdict before any request (dockerd and containers/image).

Offline checks of fake roots; the real runtimes' behaviour is refereed in
``test_containers_image_refusals_lab.py`` (skopeo). dockerd cannot referee here: the lab registries
listen on loopback, which dockerd treats as insecure, and it reads certs.d for secure registries only.
"""

from __future__ import annotations

import os
from pathlib import Path

from regtui.engine import run_check
from regtui.host import Host
from regtui.options import CheckOptions
from rootfs import write_tree

CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0FDRVJUCg==\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKEYKEYKEY\n-----END EC PRIVATE KEY-----\n"
REGISTRY = "registry.corp.example:5000"
IMAGE = f"{REGISTRY}/team/app:1.0"


def _root(tmp_path: Path, files: dict[str, str], certs_dir: str) -> Path:
    """A fake root with ``files`` and a dangling ``client.cert`` link next to a real ``client.key`` in ``certs_dir``."""
    root = write_tree(tmp_path / "root", {**files, f"{certs_dir}/ca.crt": CA, f"{certs_dir}/client.key": KEY})
    os.symlink("/etc/pki/registry/client.pem", root / certs_dir.lstrip("/") / "client.cert")
    return root


def _offline(root: Path, runtime: str):  # type: ignore[no-untyped-def]
    return run_check(CheckOptions(root=str(root), images=(IMAGE,), runtime=runtime, offline=True),
                     Host(root=root, environ={}))


def test_docker_dangling_client_cert_fails_every_endpoint(tmp_path: Path) -> None:
    """dockerd: loadTLSConfig's error is returned by LookupPullEndpoints, so the pull fails before any request.

    moby ``registry/registry.go loadTLSConfig`` (``tls.LoadX509KeyPair`` error) and ``service_v2.go
    lookupV2Endpoints`` (``newTLSConfig`` error returned for the mirror or the registry).
    """
    d = f"/etc/docker/certs.d/{REGISTRY}"
    report = _offline(_root(tmp_path, {"/etc/docker/daemon.json": "{}\n"}, d), "docker")
    [route] = report.routes
    assert [ep.status for ep in route.endpoints] == ["failed"]
    assert route.endpoints[0].reason == ("TLS setup fails before any request: "
                                         f"open {d}/client.cert: no such file or directory ({d})")
    [verdict] = report.verdicts
    assert verdict.status == "fails" and verdict.cause is not None
    assert verdict.cause.code == "tls.cert-file-unreadable" and verdict.cause.phase == "config"
    cause = next(f for f in report.findings if f.id == verdict.cause.finding)
    assert cause.evidence["file"] == f"{d}/client.cert" and cause.severity == "error"


def test_crio_dangling_client_cert_fails_its_endpoint(tmp_path: Path) -> None:
    """containers/image: SetupCertificates fails the pull source, and with no other source the pull fails.

    containers/image ``pkg/tlsclientconfig/tlsclientconfig.go SetupCertificates`` returns the
    ``tls.LoadX509KeyPair`` error; ``docker.newDockerClient`` returns it for that endpoint.
    """
    d = f"/etc/containers/certs.d/{REGISTRY}"
    conf = f'[[registry]]\nlocation = "{REGISTRY}"\n'
    report = _offline(_root(tmp_path, {"/etc/containers/registries.conf": conf}, d), "crio")
    [route] = report.routes
    assert [ep.status for ep in route.endpoints] == ["failed"]
    assert route.endpoints[0].tls.client_cert == ()
    [verdict] = report.verdicts
    assert verdict.status == "fails" and verdict.cause is not None
    assert verdict.cause.code == "tls.cert-file-unreadable"
    assert f"{d}/client.cert is a symbolic link to a missing file" in verdict.summary


def test_crio_unusable_mirror_certs_fall_back_to_the_registry(tmp_path: Path) -> None:
    """Only the mirror whose certs.d is unusable fails: containers/image goes on to the next pull source."""
    mirror = "mirror.corp.example:5000"
    d = f"/etc/containers/certs.d/{mirror}"
    conf = f'[[registry]]\nlocation = "{REGISTRY}"\n[[registry.mirror]]\nlocation = "{mirror}"\n'
    report = _offline(_root(tmp_path, {"/etc/containers/registries.conf": conf}, d), "crio")
    [route] = report.routes
    assert [(ep.host, ep.status) for ep in route.endpoints] == [(mirror, "failed"), (REGISTRY, "untested")]
    assert report.verdicts[0].status == "unknown"
