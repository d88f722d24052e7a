"""certs.d directories as dockerd and containers/image read them (SEMANTICS §1.2, §3.4)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from regtui.config.certsd import misnamed_dirs, read_certs_dir
from regtui.host import Host
from rootfs import write_tree

CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0FDRVJUCg==\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKEYKEYKEY\n-----END EC PRIVATE KEY-----\n"
BASE = "/etc/docker/certs.d"


def _host(tmp_path: Path, files: dict[str, str | bytes]) -> Host:
    return Host(root=write_tree(tmp_path, files))


def test_ca_and_client_pair_are_read(tmp_path: Path) -> None:
    """A ca.crt and a client.cert/client.key pair are all used, in name order."""
    d = f"{BASE}/registry.lab:5000"
    host = _host(tmp_path, {f"{d}/ca.crt": CA, f"{d}/client.cert": CA, f"{d}/client.key": KEY})
    cd = read_certs_dir(host, d, "docker")
    assert cd.exists and cd.usable
    assert cd.ca_files == [f"{d}/ca.crt"]
    assert cd.client_pairs == [(f"{d}/client.cert", f"{d}/client.key")]
    assert cd.findings == []
    assert cd.source is not None and cd.source.status == "ok"


def test_missing_dir_is_fine(tmp_path: Path) -> None:
    """No certs.d/<host> directory means system roots only, without a finding."""
    host = _host(tmp_path, {f"{BASE}/": ""})
    cd = read_certs_dir(host, f"{BASE}/nothing.lab", "docker")
    assert not cd.exists and cd.usable and cd.findings == []
    assert cd.source is not None and cd.source.status == "missing"


def test_cert_without_key_is_fatal_with_dockerd_text(tmp_path: Path) -> None:
    """Pattern 10: a CA saved as ca.cert stops dockerd with its exact message; the fix renames it to .crt."""
    d = f"{BASE}/registry.lab"
    host = _host(tmp_path, {f"{d}/ca.cert": CA})
    cd = read_certs_dir(host, d, "docker")
    assert not cd.usable
    [f] = cd.findings
    assert f.code == "config.invalid-value" and f.severity == "error"
    assert f.evidence["error"] == ("missing key ca.key for client certificate ca.cert. "
                                   "CA certificates must use the extension .crt")
    assert f.evidence["file"] == f"{d}/ca.cert" and f.evidence["line"] == 1
    assert f.fix is not None and f.fix.params == {"action": "rename", "from": f"{d}/ca.cert", "to": f"{d}/ca.crt"}


def test_containers_image_wording_for_crio(tmp_path: Path) -> None:
    """CRI-O/podman report the same mistake in containers/image's words."""
    d = "/etc/containers/certs.d/registry.lab"
    host = _host(tmp_path, {f"{d}/client.cert": CA + KEY})
    [f] = read_certs_dir(host, d, "crio").findings
    assert f.evidence["error"].endswith("Note that CA certificates should use the extension .crt")
    assert f.fix is not None and f.fix.params["action"] == "add-or-remove"


def test_key_without_cert(tmp_path: Path) -> None:
    """A lone client.key is an error too, naming the missing .cert."""
    d = f"{BASE}/registry.lab"
    host = _host(tmp_path, {f"{d}/ca.crt": CA, f"{d}/client.key": KEY})
    cd = read_certs_dir(host, d, "docker")
    [f] = cd.findings
    assert f.evidence["error"] == "missing client certificate client.cert for key client.key"
    assert cd.ca_files == [f"{d}/ca.crt"] and not cd.usable


def test_pem_named_ca_is_ignored(tmp_path: Path) -> None:
    """Pattern 10: ca.pem is never loaded; a warning proposes the .crt name."""
    d = f"{BASE}/registry.lab"
    host = _host(tmp_path, {f"{d}/ca.pem": CA})
    cd = read_certs_dir(host, d, "docker")
    assert cd.ca_files == [] and cd.ignored == [f"{d}/ca.pem"]
    [f] = cd.findings
    assert f.severity == "warning" and f.fix is not None and f.fix.params["to"] == f"{d}/ca.crt"


def test_der_crt_is_silently_skipped(tmp_path: Path) -> None:
    """A binary (DER) .crt holds no PEM block: the runtime skips it silently, regtui says so."""
    d = f"{BASE}/registry.lab"
    host = _host(tmp_path, {f"{d}/ca.crt": b"\x30\x82\x01\x0a\xff\xfe garbage"})
    [f] = read_certs_dir(host, d, "docker").findings
    assert f.code == "config.invalid-value" and f.severity == "warning"
    assert "no -----BEGIN CERTIFICATE-----" in f.evidence["error"]


def test_garbage_client_key_fails_pair(tmp_path: Path) -> None:
    """A .key without a PEM private key makes LoadX509KeyPair fail: fatal for the registry."""
    d = f"{BASE}/registry.lab"
    host = _host(tmp_path, {f"{d}/client.cert": CA, f"{d}/client.key": b"\x00\x01garbage"})
    cd = read_certs_dir(host, d, "docker")
    assert cd.fatal == "tls: failed to find any PEM data in key input"
    assert cd.client_pairs == []


def test_certs_path_is_a_file(tmp_path: Path) -> None:
    """certs.d/<host> being a file is reported, not raised."""
    host = _host(tmp_path, {f"{BASE}/registry.lab": "not a dir"})
    cd = read_certs_dir(host, f"{BASE}/registry.lab", "docker")
    assert not cd.usable and cd.findings[0].code == "config.invalid-value"


def test_unreadable_dir_is_permission_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreadable certs dir becomes config.permission, and the registry's TLS setup fails.

    Tests run as root, which lists any directory, so the EACCES is injected at os.listdir.
    """
    d = f"{BASE}/registry.lab"
    host = _host(tmp_path, {f"{d}/ca.crt": CA})
    target = str(tmp_path / d.lstrip("/"))
    real_listdir = os.listdir

    def deny(path: Any = ".") -> list[str]:
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied", target)
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", deny)
    cd = read_certs_dir(host, d, "docker")
    assert cd.findings[0].code == "config.permission"
    assert cd.fatal and cd.fatal.startswith(f"open {d}:")
    # containers/image SetupCertificates skips a directory it may not list (os.IsPermission): not fatal.
    cd = read_certs_dir(host, d, "podman")
    assert [f.code for f in cd.findings] == ["config.permission"] and cd.usable and cd.ca_files == []


def test_misnamed_without_port(tmp_path: Path) -> None:
    """Pattern 10: certs.d/myreg for myreg:5000/app is flagged with a rename fix."""
    host = _host(tmp_path, {f"{BASE}/myreg/ca.crt": CA})
    [f] = misnamed_dirs(host, BASE, "myreg:5000", runtime="docker")
    assert f.code == "config.hosts-dir-misnamed" and f.severity == "error"
    assert f.fix is not None and f.fix.params == {"action": "rename", "from": f"{BASE}/myreg", "to": f"{BASE}/myreg:5000"}
    assert "port 5000" in f.detail


def test_misnamed_scheme_dir(tmp_path: Path) -> None:
    """mkdir -p certs.d/https://reg.lab creates certs.d/https:/reg.lab, which is never read."""
    host = _host(tmp_path, {f"{BASE}/https:/reg.lab/ca.crt": CA})
    [f] = misnamed_dirs(host, BASE, "reg.lab", runtime="docker")
    assert f.fix is not None and f.fix.params["from"] == f"{BASE}/https:/reg.lab"
    assert f.fix.params["to"] == f"{BASE}/reg.lab"


def test_misnamed_case_and_hub_alias(tmp_path: Path) -> None:
    """Upper-case names and Docker Hub aliases are near misses; an unrelated dir is not."""
    host = _host(tmp_path, {f"{BASE}/Registry.Lab/ca.crt": CA, f"{BASE}/registry-1.docker.io/ca.crt": CA,
                            f"{BASE}/other.lab/ca.crt": CA})
    assert [f.subject for f in misnamed_dirs(host, BASE, "registry.lab")] == [f"{BASE}/Registry.Lab"]
    assert [f.subject for f in misnamed_dirs(host, BASE, "docker.io")] == [f"{BASE}/registry-1.docker.io"]


def test_exact_dir_present_means_no_near_miss(tmp_path: Path) -> None:
    """With certs.d/myreg:5000 present, certs.d/myreg belongs to another registry (myreg:443)."""
    host = _host(tmp_path, {f"{BASE}/myreg/ca.crt": CA, f"{BASE}/myreg:5000/ca.crt": CA})
    assert misnamed_dirs(host, BASE, "myreg:5000") == []


def test_certs_one_level_too_deep(tmp_path: Path) -> None:
    """Certificates in certs.d/<host>/v2/ are not read; the fix moves them up."""
    host = _host(tmp_path, {f"{BASE}/reg.lab/v2/ca.crt": CA})
    [f] = misnamed_dirs(host, BASE, "reg.lab")
    assert f.fix is not None and f.fix.params == {"action": "move-contents", "from": f"{BASE}/reg.lab/v2",
                                                  "to": f"{BASE}/reg.lab"}


def test_accepted_containerd_names_are_not_misnamed(tmp_path: Path) -> None:
    """containerd's host_port_ form counts as the right name when the caller accepts it."""
    host = _host(tmp_path, {f"{BASE}/myreg_5000_/hosts.toml": "server = 'https://myreg:5000'\n"})
    assert misnamed_dirs(host, BASE, "myreg:5000", accepted=("myreg_5000_", "_default")) == []
    assert len(misnamed_dirs(host, BASE, "myreg:5000")) == 1


def _dangling(tmp_path: Path, host_path: str) -> None:
    """Make ``host_path`` under the fake root a symbolic link to a file that does not exist."""
    target = tmp_path / host_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink("/etc/pki/gone/client.pem", target)


@pytest.mark.parametrize("runtime", ["docker", "crio"])
def test_dangling_client_cert_is_fatal(tmp_path: Path, runtime: str) -> None:
    """A client.cert whose link dangles fails LoadX509KeyPair: fatal, and the pair is not in use.

    moby ``registry.loadTLSConfig`` and containers/image ``tlsclientconfig.SetupCertificates`` both
    return the error of ``tls.LoadX509KeyPair`` (``open <file>: no such file or directory``).
    """
    d = f"{BASE}/registry.lab:5000"
    host = _host(tmp_path, {f"{d}/ca.crt": CA, f"{d}/client.key": KEY})
    _dangling(tmp_path, f"{d}/client.cert")
    cd = read_certs_dir(host, d, runtime)
    assert cd.fatal == f"open {d}/client.cert: no such file or directory" and not cd.usable
    assert cd.client_pairs == [] and cd.ca_files == [f"{d}/ca.crt"]
    [f] = cd.findings
    assert f.code == "tls.cert-file-unreadable" and f.severity == "error" and f.panel == "certs"
    assert f.evidence["file"] == f"{d}/client.cert" and f.evidence["symlink_target"] == "/etc/pki/gone/client.pem"
    assert f.evidence["host"] == "registry.lab:5000"
    assert cd.source is not None and cd.source.status == "parse-error"


def test_directory_named_client_key_is_fatal(tmp_path: Path) -> None:
    """A directory named client.key cannot be read as the key: `read <file>: is a directory`, fatal."""
    d = f"{BASE}/registry.lab:5000"
    host = _host(tmp_path, {f"{d}/client.cert": CA, f"{d}/client.key/README": "wrong place\n"})
    cd = read_certs_dir(host, d, "docker")
    assert cd.fatal == f"read {d}/client.key: is a directory"
    [f] = cd.findings
    assert f.code == "tls.cert-file-unreadable" and f.evidence["role"] == "client key"


def test_dangling_ca_file_is_fatal_for_docker_skipped_by_containers_image(tmp_path: Path) -> None:
    """A dangling ca.crt stops dockerd (os.ReadFile error) but containers/image skips it (os.IsNotExist: warning)."""
    d = f"{BASE}/registry.lab:5000"
    host = _host(tmp_path, {f"{d}/other.crt": CA})
    _dangling(tmp_path, f"{d}/ca.crt")
    docker = read_certs_dir(host, d, "docker")
    assert docker.fatal == f"open {d}/ca.crt: no such file or directory"
    assert [(f.code, f.severity) for f in docker.findings] == [("tls.cert-file-unreadable", "error")]
    crio = read_certs_dir(host, d, "crio")
    assert crio.usable and crio.ca_files == [f"{d}/other.crt"]
    assert [(f.code, f.severity) for f in crio.findings] == [("tls.cert-file-unreadable", "warning")]


def test_unreadable_client_key_is_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client.key the runtime may not read (EACCES) fails the pair: `open <file>: permission denied`.

    Tests run as root, which reads any file, so the EACCES is injected at os.open.
    """
    d = f"{BASE}/registry.lab:5000"
    host = _host(tmp_path, {f"{d}/client.cert": CA, f"{d}/client.key": KEY})
    target = str(tmp_path / d.lstrip("/") / "client.key")
    real_open = os.open

    def deny(path: Any, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied", target)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    cd = read_certs_dir(host, d, "crio")
    assert cd.fatal == f"open {d}/client.key: permission denied" and cd.client_pairs == []
    assert [f.code for f in cd.findings] == ["tls.cert-file-unreadable"]
