"""Config fuzzing: random bytes and random-but-well-shaped JSON, TOML, YAML and unit files go through every
reader and the route planner (the offline check on a fake root); nothing escapes, every problem is a finding.

The example budget is fixed and the runs derandomized, so the file stays fast and its failures reproducible.
"""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomlkit
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regtui.config import timesync
from regtui.engine import run_check
from regtui.host import Host
from regtui.net.resolver import read_resolver_config
from regtui.options import CheckOptions
from regtui.report import Report
from rootfs import write_tree

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

IMAGES = ("alpine", "docker.io/library/alpine:latest", "registry.example.com:5000/team/app:1.0", "quay.io/a/b",
          "localhost:5000/x@sha256:" + "a" * 64, "10.0.0.1/y:latest", "[::1]:5000/z")

JSON_FILES = ("/etc/docker/daemon.json", "/root/.docker/config.json", "/run/containers/0/auth.json")
TOML_FILES = ("/etc/containerd/config.toml", "/etc/containerd/certs.d/docker.io/hosts.toml",
              "/etc/containerd/certs.d/_default/hosts.toml", "/etc/containers/registries.conf",
              "/etc/containers/registries.conf.d/50-fuzz.conf", "/etc/crio/crio.conf")
YAML_FILES = ("/etc/rancher/k3s/registries.yaml", "/etc/rancher/k3s/config.yaml", "/var/lib/kubelet/config.yaml")
UNIT_FILES = ("/etc/systemd/system/docker.service.d/fuzz.conf", "/etc/systemd/system/containerd.service",
              "/etc/systemd/system/k3s.service", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
              "/etc/systemd/system/crio.service.d/fuzz.conf", "/etc/default/docker", "/etc/default/k3s",
              "/etc/systemd/system/k3s.service.env")
OTHER_FILES = ("/etc/chrony/chrony.conf", "/etc/systemd/timesyncd.conf", "/etc/resolv.conf", "/etc/hosts")
EVERY_FILE = JSON_FILES + TOML_FILES + YAML_FILES + UNIT_FILES + OTHER_FILES

#: Present in every root so that each runtime is detected and its files are read.
BASE = {"/etc/docker/": "", "/etc/containerd/": "", "/etc/containers/": "", "/etc/rancher/k3s/": "",
        "/usr/local/bin/k3s": "", "/etc/systemd/system/docker.service.d/env.conf":
        "[Service]\nEnvironmentFile=-/etc/default/docker\n",
        "/etc/containerd/config.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                       'config_path = "/etc/containerd/certs.d"\n'}

# -- building blocks ----------------------------------------------------------------------------

URLS = st.sampled_from([
    "https://mirror.example", "http://10.0.0.1:5000", "mirror.example:5000", "https://u:p@mirror.example",
    "", "*", "docker.io", "registry-1.docker.io", "::1", "[::1]:5000", "https://m.example/v2/", "unix:///x.sock",
    "http://proxy:3128", "https://", "http://[::1", "%", "localhost", "a/b/c", "https://m.example?q=1",
]) | st.text(max_size=24)
TEXT = st.text(max_size=16)
SCALAR = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | TEXT | URLS
ANY = st.recursive(SCALAR, lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=8)
NO_NONE = st.recursive(st.booleans() | st.integers(-2**40, 2**40) | TEXT | URLS,
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=8)


def shaped(skeleton: Any, anything: st.SearchStrategy[Any] = ANY) -> st.SearchStrategy[Any]:
    """A document shaped like ``skeleton`` (every key optional, any value sometimes of the wrong type)."""
    if isinstance(skeleton, dict):
        inner = st.fixed_dictionaries({}, optional={k: shaped(v, anything) for k, v in skeleton.items()})
    elif isinstance(skeleton, list):
        inner = st.lists(shaped(skeleton[0], anything), max_size=3)
    elif isinstance(skeleton, tuple):  # ("map", key strategy, value skeleton)
        inner = st.dictionaries(skeleton[1], shaped(skeleton[2], anything), max_size=3)
    else:
        inner = skeleton
    return st.one_of(inner, inner, inner, anything)


AUTH = {"auth": st.sampled_from(["dTpw", "dTpwOg==", "!!", "dXNlcjpwYXNz"]) | TEXT, "username": TEXT,
        "password": TEXT, "identitytoken": TEXT, "email": TEXT}
TLS = {"insecure_skip_verify": st.booleans(), "ca_file": TEXT, "cert_file": TEXT, "key_file": TEXT}
CAPS = st.lists(st.sampled_from(["pull", "resolve", "push", "referrers", "bogus"]), max_size=4)
SKELETONS: dict[str, Any] = {
    "/etc/docker/daemon.json": {
        "registry-mirrors": [URLS], "insecure-registries": [URLS], "registry-mirror": URLS,
        "proxies": {"http-proxy": URLS, "https-proxy": URLS, "no-proxy": TEXT},
        "max-concurrent-downloads": st.integers(-5, 100), "features": {"containerd-snapshotter": st.booleans()},
        "hosts": [URLS], "allow-nondistributable-artifacts": [URLS], "data-root": TEXT, "x-registry-password": TEXT,
    },
    "/root/.docker/config.json": {"auths": ("map", URLS, AUTH), "credsStore": TEXT, "credHelpers": ("map", URLS, TEXT),
                                  "proxies": {"default": {"httpProxy": URLS, "httpsProxy": URLS, "noProxy": TEXT}}},
    "/run/containers/0/auth.json": {"auths": ("map", URLS, AUTH)},
    "/etc/containerd/config.toml": {
        "version": st.sampled_from([1, 2, 3, 4]), "imports": [st.sampled_from(["/etc/containerd/conf.d/*.toml",
                                                                               "x.toml", "/etc/containerd/config.toml"])],
        "plugins": {
            "io.containerd.grpc.v1.cri": {"registry": {
                "config_path": st.sampled_from(["/etc/containerd/certs.d", "/etc/containerd/certs.d:/etc/docker/certs.d"])
                | TEXT,
                "mirrors": ("map", URLS, {"endpoint": [URLS]}),
                "configs": ("map", URLS, {"auth": AUTH, "tls": TLS}),
                "headers": ("map", TEXT, [TEXT])}, "max_concurrent_downloads": st.integers(-1, 50)},
            "io.containerd.cri.v1.images": {"registry": {"config_path": TEXT}, "use_local_image_pull": st.booleans()},
            "io.containerd.transfer.v1.local": {"config_path": TEXT, "max_concurrent_downloads": st.integers(-1, 9)},
        },
    },
    "/etc/containerd/certs.d/docker.io/hosts.toml": {
        "server": URLS, "capabilities": CAPS, "skip_verify": st.booleans(), "ca": TEXT, "override_path": st.booleans(),
        "header": ("map", TEXT, TEXT),
        "host": ("map", URLS, {"capabilities": CAPS, "skip_verify": st.booleans(), "ca": TEXT | st.lists(TEXT),
                               "client": TEXT, "header": ("map", TEXT, [TEXT]), "override_path": st.booleans(),
                               "dial_timeout": TEXT}),
    },
    "/etc/containers/registries.conf": {
        "unqualified-search-registries": [URLS], "short-name-mode": st.sampled_from(["enforcing", "permissive", "x"]),
        "credential-helpers": [TEXT], "aliases": ("map", TEXT, URLS),
        "registry": [{"prefix": URLS, "location": URLS, "insecure": st.booleans(), "blocked": st.booleans(),
                      "mirror-by-digest-only": st.booleans(),
                      "mirror": [{"location": URLS, "insecure": st.booleans(),
                                  "pull-from-mirror": st.sampled_from(["all", "digest-only", "tag-only", "x"])}]}],
    },
    "/etc/crio/crio.conf": {"crio": {"image": {"global_auth_file": TEXT, "pause_image": URLS,
                                               "default_transport": TEXT}}},
    "/etc/rancher/k3s/registries.yaml": {"mirrors": ("map", URLS, {"endpoint": [URLS], "rewrite": ("map", TEXT, TEXT)}),
                                         "configs": ("map", URLS, {"auth": AUTH, "tls": TLS})},
    "/etc/rancher/k3s/config.yaml": {"system-default-registry": URLS, "disable-default-registry-endpoint": st.booleans(),
                                     "embedded-registry": st.booleans(), "private-registry": TEXT,
                                     "container-runtime-endpoint": URLS},
    "/var/lib/kubelet/config.yaml": {"apiVersion": TEXT, "kind": st.just("KubeletConfiguration"),
                                     "containerRuntimeEndpoint": st.sampled_from(
                                         ["unix:///run/containerd/containerd.sock", "unix:///var/run/crio/crio.sock",
                                          "unix:///var/run/cri-dockerd.sock", "unix:///run/k3s/containerd/containerd.sock"])
                                     | URLS},
}
SKELETONS["/etc/containerd/certs.d/_default/hosts.toml"] = SKELETONS["/etc/containerd/certs.d/docker.io/hosts.toml"]
SKELETONS["/etc/containers/registries.conf.d/50-fuzz.conf"] = SKELETONS["/etc/containers/registries.conf"]

UNIT_LINE = st.one_of(
    st.sampled_from(["[Service]", "[Unit]", "[Service", "Environment=", "EnvironmentFile=", "ExecStart=", "", "# c",
                     "EnvironmentFile=-/etc/default/%N", "EnvironmentFile=/etc/default/k3s", "\\"]),
    st.builds("Environment={}".format, TEXT), st.builds('Environment="HTTPS_PROXY={}"'.format, URLS),
    st.builds('Environment="NO_PROXY={}" "http_proxy={}"'.format, TEXT, URLS),
    st.builds("ExecStart=/usr/bin/dockerd --registry-mirror={} {}".format, URLS, TEXT),
    st.builds("ExecStart=/usr/local/bin/k3s server --system-default-registry {} {}".format, URLS, TEXT),
    st.builds("ExecStart=/usr/bin/kubelet --container-runtime-endpoint={} {}".format, URLS, TEXT),
    st.builds("{}={}".format, st.sampled_from(["HTTPS_PROXY", "NO_PROXY", "export http_proxy", "CONTAINERD_HTTP_PROXY"]),
              URLS),
    TEXT,
)
UNIT_TEXT = st.lists(UNIT_LINE, max_size=12).map("\n".join)
OTHER_TEXT = st.lists(st.one_of(
    st.builds("server {} iburst port {}".format, URLS, TEXT), st.builds("include {}".format, TEXT),
    st.builds("[Time]\nNTP={}".format, URLS), st.builds("nameserver {}".format, URLS),
    st.builds("{} {}".format, URLS, TEXT), TEXT), max_size=8).map("\n".join)


def _serialise(path: str, doc: Any) -> str:
    if path in JSON_FILES:
        return json.dumps(doc)
    if path.endswith((".toml", ".conf")):
        return tomlkit.dumps(doc if isinstance(doc, dict) else {"value": doc})
    return yaml.safe_dump(doc)


def shaped_file(path: str) -> st.SearchStrategy[str]:
    """Well-shaped random text for ``path``."""
    if path in UNIT_FILES:
        return UNIT_TEXT
    if path in OTHER_FILES:
        return OTHER_TEXT
    anything = NO_NONE if path.endswith((".toml", ".conf")) else ANY
    return shaped(SKELETONS[path], anything).map(lambda doc: _serialise(path, doc))


# -- properties ---------------------------------------------------------------------------------

def _check(files: dict[str, str | bytes], image: str) -> Report:
    """The offline check of a fake root holding ``files``; also the readers only the network stage uses."""
    with tempfile.TemporaryDirectory(prefix="regtui-fuzz-") as tmp:
        root = Path(tmp)
        write_tree(root, {**BASE, **files})
        host = Host.from_args(root, {})
        report = run_check(CheckOptions(root=str(root), images=(image,), runtime="all", offline=True), host)
        timesync.load(host)  # the clock probe's reader
        read_resolver_config(host)  # the DNS probe's reader
        return report


def _verdict(path: str, data: str | bytes) -> str:
    """``rejected``, ``accepted`` or ``blank`` by the file's decoder (JSON and TOML: Go's decoders agree there).

    Python's parsers stop at about a thousand levels of nesting where Go's do not: such a file is accepted.
    """
    try:
        text = data.decode() if isinstance(data, bytes) else data
        if not text.strip():
            return "blank"
        json.loads(text) if path in JSON_FILES else tomllib.loads(text)
    except RecursionError:
        return "accepted"
    except (ValueError, UnicodeDecodeError):
        return "rejected"
    return "accepted"


def _assert_sound(report: Report, files: dict[str, str | bytes]) -> None:
    """No internal error; a file its decoder refuses is named by a finding, one it accepts by no parse error."""
    assert report.errors == [], report.errors
    json.dumps(report.to_dict())  # the report serialises
    named = {f.evidence.get("file") for f in report.findings}
    parse_errors = {f.evidence.get("file") for f in report.findings if f.code == "config.parse-error"}
    for path, data in files.items():
        if path in JSON_FILES or path in TOML_FILES:
            verdict = _verdict(path, data)
            if verdict == "rejected":
                assert path in named, f"{path} does not parse but no finding names it"
            elif verdict == "accepted":
                assert path not in parse_errors, f"{path} parses but a finding says it does not"


@FUZZ
@given(target=st.sampled_from(EVERY_FILE), data=st.binary(max_size=600), image=st.sampled_from(IMAGES))
def test_random_bytes_in_any_file(target: str, data: bytes, image: str) -> None:
    """Random bytes in any one config file: no internal error, and a file that does not parse is named by a finding."""
    report = _check({target: data}, image)
    _assert_sound(report, {target: data})


@FUZZ
@given(files=st.fixed_dictionaries({}, optional={p: shaped_file(p) for p in EVERY_FILE}),
       image=st.sampled_from(IMAGES))
def test_well_shaped_random_configs(files: dict[str, str], image: str) -> None:
    """Well-shaped documents with random values and wrong types in every file at once plan without internal errors."""
    report = _check(files, image)
    _assert_sound(report, files)


#: daemon.json is left out: its values pass through the report's redaction, which is made iterative separately.
DEEP_TARGETS = tuple(p for p in JSON_FILES + TOML_FILES + YAML_FILES if p != "/etc/docker/daemon.json")


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(target=st.sampled_from(DEEP_TARGETS), depth=st.integers(50, 3000),
       kind=st.sampled_from("[{"))
def test_deep_nesting_in_any_structured_file(target: str, depth: int, kind: str) -> None:
    """Nesting of any depth in any structured file ends in findings, never an internal error."""
    if target in JSON_FILES:
        inner = '[' * depth + ']' * depth if kind == "[" else '{"a":' * depth + "1" + "}" * depth
        text = '{"registry-mirrors":' + inner + ', "auths":' + inner + "}"
    elif target in TOML_FILES:
        inner = "[" * depth + "]" * depth if kind == "[" else "{a=" * depth + "1" + "}" * depth
        text = f"version = 2\nimports = {inner}\nserver = {inner}\n"
    else:
        inner = "[" * depth + "]" * depth if kind == "[" else "{a: " * depth + "1" + "}" * depth
        text = f"mirrors: {inner}\n"
    report = _check({target: text}, "alpine")
    _assert_sound(report, {target: text})
