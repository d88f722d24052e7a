"""The host model: re-rooted paths, chroot-like symlinks, safe reads."""

from __future__ import annotations

import os
from pathlib import Path

from regtui.host import Host, decode_config_bytes
from rootfs import write_tree


def test_absolute_paths_read_under_root(tmp_path: Path) -> None:
    """/etc/x inside the root is read, not the live /etc/x."""
    write_tree(tmp_path, {"/etc/hostname": "node-7\n"})
    host = Host.from_args(tmp_path, {})
    f = host.read("/etc/hostname")
    assert f.ok and f.text == "node-7\n" and f.path == "/etc/hostname"


def test_absolute_symlink_stays_in_root(tmp_path: Path) -> None:
    """An absolute symlink target is resolved inside the root, as chroot would."""
    write_tree(tmp_path, {"/data/real.json": "{}"})
    os.makedirs(tmp_path / "etc/docker")
    os.symlink("/data/real.json", tmp_path / "etc/docker/daemon.json")
    host = Host.from_args(tmp_path, {})
    assert host.resolve("/etc/docker/daemon.json") == tmp_path / "data/real.json"
    assert host.read("/etc/docker/daemon.json").text == "{}"


def test_dotdot_cannot_escape(tmp_path: Path) -> None:
    """``..`` beyond the root stays at the root; a symlink to /etc/shadow reads the root's copy."""
    host = Host.from_args(tmp_path, {})
    assert host.resolve("/../../etc/passwd") == tmp_path / "etc/passwd"
    os.makedirs(tmp_path / "x")
    os.symlink("../../../../etc/shadow", tmp_path / "x/link")
    assert host.resolve("/x/link") == tmp_path / "etc/shadow"
    assert host.read("/x/link").status == "missing"


def test_symlink_loop_is_unreadable_not_a_hang(tmp_path: Path) -> None:
    """A symlink loop gives an 'unreadable' result, not an exception or a hang."""
    os.symlink("/b", tmp_path / "a")
    os.symlink("/a", tmp_path / "b")
    f = Host.from_args(tmp_path, {}).read("/a")
    assert f.status == "unreadable"


def test_fifo_and_directory_are_not_read(tmp_path: Path) -> None:
    """A FIFO or directory where a config file should be is reported, never opened for reading."""
    os.makedirs(tmp_path / "etc/docker/daemon.json")
    os.mkfifo(tmp_path / "etc/fifo")
    host = Host.from_args(tmp_path, {})
    assert host.read("/etc/docker/daemon.json").status == "not-a-file"
    assert host.read("/etc/fifo").status == "not-a-file"


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """A file larger than the limit is not read into memory."""
    write_tree(tmp_path, {"/etc/big": "x" * 2000})
    assert Host.from_args(tmp_path, {}).read("/etc/big", limit=1000).status == "too-large"


def test_missing_file(tmp_path: Path) -> None:
    """A missing file (or a missing parent) is 'missing', meaning not configured."""
    host = Host.from_args(tmp_path, {})
    assert host.read("/etc/containerd/config.toml").status == "missing"
    write_tree(tmp_path, {"/etc/file": "x"})
    assert host.read("/etc/file/child").status == "missing"


def test_encodings_like_dockerd() -> None:
    """UTF-8 with BOM and UTF-16LE with BOM decode; invalid bytes are flagged with their offset."""
    assert decode_config_bytes(b"\xef\xbb\xbf{}") == ("{}", "")
    assert decode_config_bytes("{}".encode("utf-16"))[0] == "{}"
    text, err = decode_config_bytes(b'{"a": "\xff"}')
    assert err == "invalid UTF-8 at byte 7"


def test_which_and_home_use_the_root(tmp_path: Path) -> None:
    """Binaries are found on the root's PATH dirs; homes come from the root's /etc/passwd."""
    write_tree(tmp_path, {"/usr/bin/docker-credential-pass": "#!/bin/sh\n",
                          "/etc/passwd": "root:x:0:0:root:/var/roothome:/bin/bash\n"})
    os.chmod(tmp_path / "usr/bin/docker-credential-pass", 0o755)
    host = Host.from_args(tmp_path, {"PATH": "/nonexistent"})
    assert host.which("docker-credential-pass") == "/usr/bin/docker-credential-pass"
    assert host.which("docker-credential-desktop") is None
    assert host.home() == "/var/roothome"


def test_readlink_resolves_the_directories_above_under_the_root(tmp_path: Path) -> None:
    """A link read through a linked directory (/etc/docker -> /srv/docker) is the root's link, never this machine's path."""
    root = tmp_path / "root"
    (root / "srv/docker/certs.d/reg").mkdir(parents=True)
    (root / "etc").mkdir()
    os.symlink("/srv/docker", root / "etc/docker")  # absolute: the root's /srv/docker
    os.symlink("gone.pem", root / "srv/docker/certs.d/reg/client.cert")
    host = Host(root=root)
    assert host.readlink("/etc/docker/certs.d/reg/client.cert") == "gone.pem"
    assert host.readlink("/etc/docker") == "/srv/docker"
    assert host.readlink("/srv/docker/certs.d/reg") is None  # a directory, not a link
    assert host.readlink("/") is None
