"""Provenance: every key of JSON and TOML config maps to its line; broken files become findings."""

from __future__ import annotations

from pathlib import Path

from regtui.config._source import json_key_lines, read_json, read_toml, toml_key_lines
from regtui.host import Host
from rootfs import write_tree

CONTAINERD = '''version = 2
# registry settings
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = [
      "https://mirror.corp",
      "https://registry-1.docker.io",
    ]
  [plugins."io.containerd.grpc.v1.cri".registry.configs."registry-1.docker.io".auth]
    username = "bot"
'''

REGISTRIES = '''unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
location = "registry-1.docker.io"
[[registry.mirror]]
location = "mirror.corp"
[[registry.mirror]]
location = "mirror2.corp"
[[registry]]
location = "quay.io"
insecure = true
'''


def test_toml_lines_of_quoted_tables_and_multiline_arrays() -> None:
    """Quoted dotted table names and multi-line arrays keep the right lines."""
    lines = toml_key_lines(CONTAINERD)
    cri = ("plugins", "io.containerd.grpc.v1.cri", "registry")
    assert lines[cri + ("config_path",)] == 4
    assert lines[cri + ("mirrors", "docker.io", "endpoint")] == 6
    assert lines[cri + ("configs", "registry-1.docker.io", "auth", "username")] == 11


def test_toml_lines_of_arrays_of_tables() -> None:
    """[[registry]] entries and their nested [[registry.mirror]] entries are indexed per parent."""
    lines = toml_key_lines(REGISTRIES)
    assert lines[("registry", 0, "location")] == 4
    assert lines[("registry", 0, "mirror", 1, "location")] == 8
    assert lines[("registry", 1, "insecure")] == 11


def test_json_lines() -> None:
    """JSON keys and array elements map to their lines."""
    text = '{\n  "debug": true,\n  "registry-mirrors": [\n    "https://a",\n    "https://b"\n  ],\n  "proxies": {"https-proxy": "x"}\n}\n'
    lines = json_key_lines(text)
    assert lines[("registry-mirrors", 1)] == 5
    assert lines[("proxies", "https-proxy")] == 7


def test_parse_errors_are_findings_with_line_and_column(tmp_path: Path) -> None:
    """Malformed JSON and TOML give config.parse-error with line and column, not an exception."""
    write_tree(tmp_path, {"/a.json": '{\n  "debug": true,\n  "x": [1,,]\n}\n', "/b.toml": 'version = 2\n[plugins\n'})
    host = Host.from_args(tmp_path, {})
    pj = read_json(host, "/a.json", "docker")
    assert pj.status == "parse-error"
    (f,) = pj.findings
    assert f.code == "config.parse-error" and f.severity == "error"
    assert f.evidence["line"] == 3 and f.evidence["column"] == 11
    pt = read_toml(host, "/b.toml", "containerd")
    assert pt.status == "parse-error" and pt.findings[0].evidence["line"] == 2


def test_garbage_bytes_never_raise(tmp_path: Path) -> None:
    """Random bytes in any JSON/TOML file produce a parse-error finding."""
    import random

    rnd = random.Random(7)
    for i in range(50):
        blob = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400)))
        write_tree(tmp_path, {f"/g{i}": blob})
        for reader in (read_json, read_toml):
            p = reader(Host.from_args(tmp_path, {}), f"/g{i}", "docker")
            assert p.status in ("ok", "parse-error")
            if p.status == "parse-error":
                assert p.findings[0].code == "config.parse-error"


def test_secret_files_have_no_excerpt(tmp_path: Path) -> None:
    """A broken credentials file is reported without quoting its text."""
    write_tree(tmp_path, {"/c.json": '{"auths": {"x": {"auth": "c2VjcmV0OnB3"}}\n'})
    p = read_json(Host.from_args(tmp_path, {}), "/c.json", "docker", secret=True)
    assert p.status == "parse-error" and "excerpt" not in p.findings[0].evidence
    assert "c2VjcmV0" not in repr(p.findings[0].to_dict())
