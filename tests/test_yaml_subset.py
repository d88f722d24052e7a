"""The line-keeping YAML subset reader: agreement with PyYAML on real files, yaml.v2 scalars,
clear errors with line and column, and no traceback on garbage."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from regtui.config._yaml import loads, loads_with_lines, read_yaml
from regtui.config.yamlscan import YAMLError, resolve_plain
from regtui.host import Host, decode_config_bytes
from rootfs import line_of, write_tree

# Real-world shapes: the k3s docs, issues people filed, kubeadm and k3s config files.
K3S_DOCS_MIRROR = """\
mirrors:
  docker.io:
    endpoint:
      - "https://registry.example.com:5000"
configs:
  "registry.example.com:5000":
    auth:
      username: xxxxxx # this is the registry username
      password: xxxxxx # this is the registry password
    tls:
      cert_file: # path to the cert file used in the registry
      key_file:  # path to the key file used in the registry
      ca_file:   # path to the ca file used in the registry
"""

K3S_DOCS_REWRITE = """\
mirrors:
  docker.io:
    endpoint:
      - "https://registry.example.com:5000"
    rewrite:
      "^rancher/(.*)": "mirrorproject/rancher-images/$1"
"""

WILDCARD_AND_EMBEDDED = """\
---
# /etc/rancher/rke2/registries.yaml
mirrors:
  "*":
  docker.io:
  registry.k8s.io: {}
  quay.io:
    endpoint: ["https://quay-mirror.corp.example", 'https://backup.corp.example:8443/v2']
configs:
  quay-mirror.corp.example:
    auth: {username: robot$rke2, password: "p@ss:word#1"}
    tls:
      insecure_skip_verify: true
...
"""

ISSUE_STYLE = """\
mirrors:
  docker.io:
    endpoint:
    - "http://192.168.1.10:5000"
    - https://harbor.lab.local/v2/proxy-dockerhub
  "harbor.lab.local":
    endpoint:
      - "https://harbor.lab.local"
configs:
  "harbor.lab.local":
    auth:
      username: admin
      password: 'Harbor12345'
    tls:
      ca_file: /etc/rancher/k3s/harbor-ca.crt
  "192.168.1.10:5000":
    tls:
      insecure_skip_verify: true
"""

KUBELET_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: unix:///var/run/containerd/containerd.sock
evictionHard:
  imagefs.available: 15%
  memory.available: "100Mi"
kind: KubeletConfiguration
maxPods: 110
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
"""

K3S_CONFIG = """\
# /etc/rancher/k3s/config.yaml
write-kubeconfig-mode: "0644"
tls-san:
  - "k3s.example.com"
  - 10.0.0.10
node-label:
  - "topology.kubernetes.io/zone=eu-1a"
kubelet-arg:
  - "max-pods=250"
  - "image-gc-high-threshold=85"
disable:
  - traefik
data-dir: /opt/rancher/k3s
disable-default-registry-endpoint: true
"""

PEM_INLINE = """\
registries:
  - name: harbor
    url: https://harbor.example.com
    ca_bundle: |
      -----BEGIN CERTIFICATE-----
      MIIBszCCAVmgAwIBAgIUJd7Xq0nXlgWvFq0xbFh0Kp3Q0uMwCgYIKoZIzj0EAwIw
      -----END CERTIFICATE-----
    note: >-
      folded text
      on two lines

      and a paragraph
    keep: |+
      kept

    strip: |-
      stripped
"""

QUOTING = """\
escapes: "tab\\there \\u00e9 \\x41 back\\\\slash \\"quoted\\" \\/"
single: 'it''s'
joined: "line one\\
  continued"
folded_plain: first
  second

  third
hash_inside: abc#123
hash_comment: abc #123
url: https://example.com:8443/v2?ns=docker.io#frag
leading: "  spaced"
empty_string: ""
empty_value:
tilde: ~
numbers: [1, -2, +3, 0x1F, 0777, 1_000, 1.5, .5, -.inf]
bools: [true, False, TRUE, yes, No, on, OFF]
"""

CORPUS = [K3S_DOCS_MIRROR, K3S_DOCS_REWRITE, WILDCARD_AND_EMBEDDED, ISSUE_STYLE, KUBELET_CONFIG, K3S_CONFIG,
          PEM_INLINE, QUOTING]


def _norm(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def _pyyaml_key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Line of every mapping key, from PyYAML's node marks."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = yaml.safe_load(yaml.serialize(k)) if k.value else None
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


@pytest.mark.parametrize("text", CORPUS, ids=["docs-mirror", "docs-rewrite", "wildcard", "issue", "kubelet",
                                             "k3s-config", "pem", "quoting"])
def test_agrees_with_pyyaml(text: str) -> None:
    """Real registries.yaml, kubelet and k3s config samples parse to exactly what PyYAML gives."""
    assert _norm(loads(text).data) == _norm(yaml.safe_load(text))


@pytest.mark.parametrize("text", CORPUS, ids=["docs-mirror", "docs-rewrite", "wildcard", "issue", "kubelet",
                                             "k3s-config", "pem", "quoting"])
def test_key_lines_agree_with_pyyaml(text: str) -> None:
    """Every mapping key's line matches PyYAML's node marks."""
    mine = loads(text).lines
    for path, line in _pyyaml_key_lines(text).items():
        assert mine[path] == line, path


def test_lines_for_keys_and_items() -> None:
    """Keys map to their own line and sequence items to the line of their dash."""
    data, lines = loads_with_lines(ISSUE_STYLE)
    assert data["mirrors"]["docker.io"]["endpoint"][1] == "https://harbor.lab.local/v2/proxy-dockerhub"
    assert lines[("mirrors", "docker.io", "endpoint", 1)] == line_of(ISSUE_STYLE, "harbor.lab.local/v2/proxy")
    assert lines[("configs", "harbor.lab.local", "auth", "password")] == line_of(ISSUE_STYLE, "Harbor12345")
    assert lines[("configs", "192.168.1.10:5000")] == line_of(ISSUE_STYLE, '"192.168.1.10:5000":')


def test_yaml_v2_scalar_resolution() -> None:
    """Scalars resolve as Go's yaml.v2 does: y/n are booleans, 1e3 and 1:20 stay strings, 0777 is octal."""
    assert resolve_plain("y") is True and resolve_plain("N") is False
    assert resolve_plain("on") is True and resolve_plain("Off") is False
    assert resolve_plain("0777") == 511 and resolve_plain("0o17") == 15 and resolve_plain("0b101") == 5
    assert resolve_plain("1e3") == "1e3" and resolve_plain("1e+3") == 1000.0
    assert resolve_plain("1:20") == "1:20" and resolve_plain("08") == 8.0
    assert resolve_plain("2024-01-02") == "2024-01-02"
    assert resolve_plain("~") is None and resolve_plain("Null") is None
    assert resolve_plain("True1") == "True1"


def test_raw_text_kept_for_go_strings() -> None:
    """A password that YAML reads as a number keeps its source text (yaml.v2 stores that in a string field)."""
    doc = loads("auth:\n  password: 0777\n  username: yes\n")
    assert doc.data == {"auth": {"password": 511, "username": True}}
    assert doc.raw[("auth", "password")] == "0777"
    assert doc.raw[("auth", "username")] == "yes"


def test_duplicates_are_listed() -> None:
    """A key given twice keeps the later value and is reported with both lines."""
    text = "mirrors:\n  docker.io:\n    endpoint: [a]\nconfigs: {}\nmirrors:\n  quay.io: {}\n"
    doc = loads(text)
    assert doc.data["mirrors"] == {"quay.io": {}}
    assert [(d.path, d.first_line, d.line) for d in doc.duplicates] == [(("mirrors",), 1, 5)]


def test_only_first_document() -> None:
    """Like yaml.v2's Unmarshal, only the first document is read."""
    assert loads("a: 1\n---\nb: 2\n").data == {"a": 1}
    assert loads("---\n---\na: 1\n").data is None


@pytest.mark.parametrize("text,line,column,words", [
    ("mirrors:\n  *:\n    endpoint: [x]\n", 2, 3, "must be quoted"),
    ("a: &anchor 1\nb: *anchor\n", 1, 4, "anchors"),
    ("a: !!str 1\n", 1, 4, "tags"),
    ("? complex\n: value\n", 1, 1, "complex"),
    ("mirrors:\n\tdocker.io:\n", 2, 1, "tab"),
    ("a: 1\n  b: 2\n", 2, 4, "mapping values are not allowed"),
    ("mirrors:\n    docker.io:\n  quay.io:\n", 3, 3, "bad indentation"),
    ('password: "unterminated\n', 1, 11, "unterminated"),
    ("a: [1, 2\nb: 3\n", 1, 8, "must be on the same line"),
    ("a: [1, 2\n", 1, 4, "unterminated flow collection"),
    ('a: "bad \\q escape"\n', 1, 9, "invalid escape"),
    ("a: b: c\n", 1, 5, "mapping values are not allowed"),
    ("key: - item\n", 1, 6, "sequence entry"),
    ("a: 1\n- b\n", 2, 1, "sequence entry"),
    ("password: @secret\n", 1, 11, "cannot start with '@'"),
    ("a: \x01\n", 1, 4, "control character"),
    ("%YAML 1.2\n---\na: 1\n", 1, 1, "directives"),
    ("<<: {a: 1}\n", 1, 1, "merge keys"),
])
def test_errors_have_line_and_column(text: str, line: int, column: int, words: str) -> None:
    """Outside the subset or malformed: a YAMLError naming the line and column, never another exception."""
    with pytest.raises(YAMLError) as info:
        loads(text)
    assert (info.value.line, info.value.column) == (line, column)
    assert words in info.value.message


def test_errors_where_pyyaml_errors() -> None:
    """Malformed samples that PyYAML rejects are rejected here too."""
    for text in ("a: 1\n  b: 2\n", "a: [1, 2\n", "mirrors:\n    docker.io:\n  quay.io:\n", 'k: "x\n', "a: b: c\n"):
        with pytest.raises(yaml.YAMLError):
            yaml.safe_load(text)
        with pytest.raises(YAMLError):
            loads(text)


def test_deep_nesting_is_an_error() -> None:
    """Pathological nesting stops with an error instead of exhausting the stack."""
    with pytest.raises(YAMLError, match="nesting too deep"):
        loads("[" * 5000)
    with pytest.raises(YAMLError, match="nesting too deep"):
        loads("- " * 3000 + "x")


def test_random_bytes_never_raise_anything_else() -> None:
    """Random bytes and random YAML-ish text either parse or raise YAMLError with a position."""
    rnd = random.Random(20240613)
    alphabet = b" \t\n\r-:#[]{},|>\"'&*!?%@`abcyn019\\."
    for i in range(3000):
        if i % 2:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 120)))
        else:
            data = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 120)))
        text, _ = decode_config_bytes(data)
        try:
            loads(text)
        except YAMLError as exc:
            assert exc.line >= 1 and exc.column >= 1


def test_mutated_samples_agree_or_fail_cleanly() -> None:
    """Mutations of the corpus: when both parsers accept a text they agree on the data (yaml.v2-only scalars aside)."""
    rnd = random.Random(7)
    pieces = [" ", "\n", "-", ":", ": ", '"', "'", "#", " #", "[", "]", "{", "}", ",", "|", ">", "x", "1"]
    agreed = 0
    for _ in range(1500):
        chars = list(rnd.choice(CORPUS[:4] + CORPUS[5:]))
        for _ in range(rnd.randint(1, 3)):
            pos = rnd.randrange(len(chars) + 1)
            if rnd.random() < 0.5 and chars:
                del chars[min(pos, len(chars) - 1)]
            else:
                chars.insert(pos, rnd.choice(pieces))
        text = "".join(chars)
        try:
            mine = loads(text).data
        except YAMLError:
            continue
        try:
            theirs = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if _has_v2_only_scalars(text):
            continue
        assert _norm(mine) == _norm(theirs), text
        agreed += 1
    assert agreed > 300


def _has_v2_only_scalars(text: str) -> bool:
    """Texts where YAML 1.1 (PyYAML) and yaml.v2 legitimately resolve a scalar differently."""
    import re

    return bool(re.search(r"(^|[\s\[{,:])[yYnN](\s*[:,\]}]|\s*$|\s+#)|\d+\.([\s,\]}]|$)|\d:\d|---\n---", text, re.M))


def test_read_yaml_parse_error_finding(tmp_path: Path) -> None:
    """A broken file becomes config.parse-error with file, line and column; secrets are not quoted."""
    text = "configs:\n  harbor:\n    auth:\n      password: \"hunter2\n"
    host = Host.from_args(write_tree(tmp_path, {"/etc/rancher/k3s/registries.yaml": text}), {})
    parsed = read_yaml(host, "/etc/rancher/k3s/registries.yaml", "k3s", secret=True)
    assert parsed.status == "parse-error"
    (f,) = parsed.findings
    assert f.code == "config.parse-error" and f.severity == "error"
    assert f.evidence["line"] == 4 and f.evidence["column"] == 17
    assert "excerpt" not in f.evidence and "hunter2" not in repr(f.to_dict())


def test_read_yaml_garbage_bytes(tmp_path: Path) -> None:
    """Undecodable bytes are a parse error, not a traceback."""
    host = Host.from_args(write_tree(tmp_path, {"/etc/x.yaml": b"\xff\xfe\x00\xd8garbage\x00"}), {})
    parsed = read_yaml(host, "/etc/x.yaml", "k3s")
    assert parsed.status == "parse-error" and parsed.findings[0].code == "config.parse-error"


def test_read_yaml_missing_and_unreadable(tmp_path: Path) -> None:
    """A missing file is just missing; a directory in its place is reported, not raised."""
    host = Host.from_args(write_tree(tmp_path, {"/etc/dir.yaml/": ""}), {})
    assert read_yaml(host, "/etc/none.yaml", "k3s").status == "missing"
    parsed = read_yaml(host, "/etc/dir.yaml", "k3s")
    assert parsed.status == "unreadable" and parsed.findings[0].code == "config.permission"


def test_invalid_utf8_has_a_position(tmp_path: Path) -> None:
    """Invalid UTF-8 is reported at the line and column of the first bad byte."""
    host = Host.from_args(write_tree(tmp_path, {"/etc/r.yaml": b"mirrors:\n  docker.io:\n    endpoint: [\xc3\x28]\n"}), {})
    (f,) = read_yaml(host, "/etc/r.yaml", "k3s").findings
    assert (f.evidence["line"], f.evidence["column"]) == (3, 16)
