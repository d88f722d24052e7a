"""Real containerd (1.6 in the lab) as referee: config dump, CRI plugin load, and ctr pulls through hosts dirs.

Every config regtui treats as valid must be accepted by ``containerd config dump`` (exit 0), every
broken one refused; the effective values regtui computes must match the dump; the CRI plugin must
fail exactly when regtui says it does; and ``ctr --hosts-dir`` must pull from the endpoint regtui
plans first.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.containerd import Containerd, containerd_config_dump
from lab.images import OciImage, build_oci_layout, push
from lab.registry import Registry
from lab.require import require_binary, require_root
from regtui.runtimes.containerd.config import load_config
from regtui.config.hostsdir import HostsResolution, resolve_hosts
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.refs import parse
from regtui.runtimes.containerd.routes import needed_capabilities
from regtui.runtimes.containerd.versions import installed_version
from test_containerd_config import CKS_MIRRORS, KUBEADM_V2
from test_containerd_routes import HOSTS_MODE, LEGACY

pytestmark = pytest.mark.lab

CRI = "io.containerd.grpc.v1.cri"
LAB_VERSION = (1, 6, 20)
V1_SHORT = '[plugins.cri.registry]\n  config_path = "/etc/containerd/certs.d"\n'
V1_WITH_V2_NAMES = f'[plugins."{CRI}".registry]\n  config_path = "/etc/containerd/certs.d"\n'
VALID = {
    "kubeadm-v2": KUBEADM_V2,
    "hosts-mode": HOSTS_MODE,
    "legacy-mirrors": LEGACY,
    "cks-mirrors-only": CKS_MIRRORS,
    "v1-short-names": V1_SHORT,
    "v1-with-v2-names": V1_WITH_V2_NAMES,
    "empty": "",
}
BROKEN = {
    "garbage-bytes": b"\x00\xff\xfe\x13version = 2\n\x89PNG\r\n\x1a\n",
    "unclosed-table": b'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry\n',
    "unclosed-array": b'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ["/a"\n',
    "config-path-list": f'version = 2\n[plugins."{CRI}".registry]\n  config_path = ["/etc/containerd/certs.d"]\n'.encode(),
    "headers-string": f'version = 2\n[plugins."{CRI}".registry.headers]\n  X-Team = "infra"\n'.encode(),
    "endpoint-string": f'version = 2\n[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = "https://m"\n'.encode(),
}


def _regtui(tmp_path: Path, text: str | bytes):
    """regtui's reading of ``text`` as /etc/containerd/config.toml on containerd 1.6.20."""
    target = tmp_path / "root/etc/containerd/config.toml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text if isinstance(text, bytes) else text.encode())
    host = Host(root=tmp_path / "root")
    return load_config(host, version=installed_version(host, CheckOptions(containerd_version="1.6.20")))


def _dump(tmp_path: Path, text: str | bytes) -> tuple[int, str]:
    """Run the real `containerd -c FILE config dump` on text."""
    require_binary("containerd")
    path = tmp_path / "dump.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return containerd_config_dump(path, timeout=20)


def _dumped_config_path(output: str) -> str:
    """config_path of the CRI registry table in a dump (stdout and stderr are mixed, so no TOML parse)."""
    match = re.search(r'\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\s*\n\s*config_path = "(.*)"', output)
    assert match, output
    return match.group(1)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_configs_are_accepted_by_containerd(tmp_path, name):
    """Configs regtui reads without a start-stopping finding: containerd config dump exits 0, same config_path."""
    cfg = _regtui(tmp_path, VALID[name])
    assert cfg.starts and not [f for f in cfg.findings if f.code in ("config.parse-error", "config.invalid-value")]
    rc, output = _dump(tmp_path, VALID[name])
    assert rc == 0, output
    assert _dumped_config_path(output) == cfg.config_path


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_configs_are_refused_by_containerd(tmp_path, name):
    """Configs regtui says containerd will not start with: containerd config dump exits non-zero."""
    cfg = _regtui(tmp_path, BROKEN[name])
    assert not cfg.starts
    assert [f for f in cfg.findings if f.severity == "error"]
    rc, output = _dump(tmp_path, BROKEN[name])
    assert rc != 0, output


def test_v1_file_with_v2_names_is_really_ignored(tmp_path):
    """containerd 1.6 dumps config_path = "" for a version-less file with grpc.v1.cri tables, as regtui says."""
    cfg = _regtui(tmp_path, V1_WITH_V2_NAMES)
    assert "config.ignored-key" in [f.code for f in cfg.findings]
    rc, output = _dump(tmp_path, V1_WITH_V2_NAMES)
    assert rc == 0 and _dumped_config_path(output) == "" == cfg.config_path


def test_containerd_config_default_reads_clean(tmp_path):
    """The output of `containerd config default` reads with no error or warning and the same config_path."""
    binary = require_binary("containerd")
    default = subprocess.run([binary, "config", "default"], capture_output=True, text=True, timeout=20, check=True).stdout
    cfg = _regtui(tmp_path, default)
    assert [f.code for f in cfg.findings if f.severity != "info"] == []
    assert cfg.config_path == _dumped_config_path(default) == ""
    assert cfg.max_concurrent_downloads == tomllib.loads(default)["plugins"][CRI]["max_concurrent_downloads"]


def test_imports_merge_like_containerd(tmp_path):
    """An imported drop-in's config_path wins in both regtui and containerd's own merge."""
    drop = tmp_path / "root/etc/containerd/conf.d/10-registry.toml"
    drop.parent.mkdir(parents=True)
    drop.write_text(f'version = 2\n[plugins."{CRI}".registry]\n  config_path = "/srv/hosts"\n')
    main = KUBEADM_V2.replace("version = 2\n", f'version = 2\nimports = ["{drop.parent}/*.toml"]\n')
    rc, output = _dump(tmp_path, main)
    assert rc == 0 and _dumped_config_path(output) == "/srv/hosts"
    # regtui sees host paths under its root, so the import is written as a host path there.
    cfg = _regtui(tmp_path, main.replace(str(drop.parent), "/etc/containerd/conf.d"))
    assert cfg.config_path == "/srv/hosts"


def test_installed_version_matches_the_binary():
    """On the live lab machine, the detected version is what `containerd --version` prints."""
    binary = require_binary("containerd")
    printed = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    detected = installed_version(Host.from_args("/", environ={}), CheckOptions())
    assert detected.version is not None
    assert ".".join(map(str, detected.version)) in printed


# -- the CRI plugin as referee for patterns 14 and 15 ----------------------------------------------

CRI_CASES = {
    "config-path-only": (f'[plugins."{CRI}".registry]\n  config_path = "/etc/containerd/certs.d"\n', True),
    "mirrors-and-config-path": (f'[plugins."{CRI}".registry]\n  config_path = "/etc/containerd/certs.d"\n'
                                f'[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://mirror.gcr.io"]\n',
                                False),
    "tls-and-config-path": (f'[plugins."{CRI}".registry]\n  config_path = "/etc/containerd/certs.d"\n'
                            f'[plugins."{CRI}".registry.configs."harbor.corp.example".tls]\n  insecure_skip_verify = true\n',
                            False),
    "legacy-mirrors-only": (f'[plugins."{CRI}".registry.mirrors."docker.io"]\n  endpoint = ["https://mirror.gcr.io"]\n', True),
}


@pytest.mark.parametrize("name", sorted(CRI_CASES))
def test_cri_plugin_loads_exactly_when_regtui_says(tmp_path, name):
    """A private containerd with CRI on: `ctr plugins ls` shows the cri plugin ok or error as regtui predicts."""
    require_root("containerd with the CRI plugin")
    require_binary("containerd")
    require_binary("ctr")
    snippet, loads = CRI_CASES[name]
    cfg = _regtui(tmp_path, "version = 2\n" + snippet)
    assert cfg.cri_loads is loads
    daemon = Containerd(tmp_path / "containerd", enable_cri=True, extra_toml=snippet)
    daemon.start()
    try:
        plugins = daemon.ctr(["plugins", "ls"], timeout=15).stdout
        status = next(line.split()[-1] for line in plugins.splitlines() if line.split()[1:2] == ["cri"])
        log = daemon.log_path.read_text()
    finally:
        daemon.stop()
    assert status == ("ok" if loads else "error")
    if not loads:
        assert cfg.why_not in log


def test_containerd_1_6_does_not_warn_for_configs_auth(tmp_path):
    """containerd 1.6 with CRI logs a deprecation for configs.tls but none for configs.auth, as regtui predicts."""
    require_root("containerd with the CRI plugin")
    require_binary("containerd")
    auth = f'[plugins."{CRI}".registry.configs."harbor.corp.example".auth]\n  username = "ci"\n  password = "pw"\n'
    tls = f'[plugins."{CRI}".registry.configs."harbor.corp.example".tls]\n  insecure_skip_verify = true\n'
    logs = {}
    for name, snippet in (("auth", auth), ("tls", tls)):
        cfg = _regtui(tmp_path / name, "version = 2\n" + snippet)
        legacy = [f for f in cfg.findings if f.code == "config.legacy-registry-config"]
        assert (legacy != []) is (name == "tls"), [f.title for f in cfg.findings]
        daemon = Containerd(tmp_path / name / "containerd", enable_cri=True, extra_toml=snippet)
        daemon.start()
        try:
            logs[name] = daemon.log_path.read_text()
        finally:
            daemon.stop()
    assert "`configs.tls` is deprecated, please use `config_path` instead" in logs["tls"]  # the log has warnings
    assert "is deprecated" not in logs["auth"], logs["auth"]


# -- ctr --hosts-dir as referee for the hosts.toml planner -------------------------------------------

class Lab:
    """An upstream and a mirror registry holding different images under the same tag."""

    def __init__(self, upstream: Registry, mirror: Registry, up_image: OciImage, mirror_image: OciImage) -> None:
        """Keep the registries and their images."""
        self.upstream, self.mirror = upstream, mirror
        self.up_image, self.mirror_image = up_image, mirror_image

    @property
    def ref(self) -> str:
        """The image reference, named by the upstream registry."""
        return f"{self.upstream.host_port}/lab/app:latest"

    def served_by(self, digest: str | None) -> str | None:
        """Which registry's image a pulled digest is."""
        return {self.up_image.digest: self.upstream.host_port, self.mirror_image.digest: self.mirror.host_port}.get(digest or "")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Two plain-HTTP registries on loopback with different images as lab/app:latest."""
    require_binary("docker-registry")
    require_binary("skopeo")
    base = tmp_path_factory.mktemp("ctd-lab")
    upstream, mirror = Registry(base / "upstream"), Registry(base / "mirror")
    upstream.start()
    try:
        mirror.start()
        try:
            up_image = build_oci_layout(base / "up-image", tag="latest", layers=1, seed=11)
            mirror_image = build_oci_layout(base / "mirror-image", tag="latest", layers=1, seed=12)
            push(up_image, upstream, "lab/app")
            push(mirror_image, mirror, "lab/app")
            yield Lab(upstream, mirror, up_image, mirror_image)
        finally:
            mirror.stop()
    finally:
        upstream.stop()


def _first_tried(res: HostsResolution, ref: str) -> str:
    """The first host containerd tries for ref (capability filter applied)."""
    need = needed_capabilities(parse(ref))
    return next(e.host for e in res.entries if all(c in e.capabilities for c in need))


def _plan_and_pull(containerd: Containerd, lab: Lab, hosts_dir: Path, dirname: str, text: str) -> tuple[HostsResolution, str | None]:
    """Write one hosts.toml, plan it with regtui, pull with ctr; return the plan and who served."""
    (hosts_dir / dirname).mkdir(parents=True)
    (hosts_dir / dirname / "hosts.toml").write_text(text)
    res = resolve_hosts(Host.from_args("/", environ={}), [str(hosts_dir)], lab.upstream.host_port, "containerd",
                        containerd_version=LAB_VERSION)
    pulled = containerd.ctr_pull(lab.ref, hosts_dir=hosts_dir, timeout=60)
    assert pulled.ok, pulled.output
    return res, lab.served_by(pulled.digest)


def test_ctr_uses_the_mirror_regtui_plans_first(containerd, lab, tmp_path):
    """A pull+resolve mirror is tried first: ctr pulls the mirror's image."""
    text = f'[host."http://{lab.mirror.host_port}"]\n  capabilities = ["pull", "resolve"]\n'
    res, served = _plan_and_pull(containerd, lab, tmp_path / "hosts", lab.upstream.host_port, text)
    assert _first_tried(res, lab.ref) == served == lab.mirror.host_port


def test_ctr_skips_a_pull_only_mirror_for_tags(containerd, lab, tmp_path):
    """A pull-only mirror cannot resolve a tag: ctr resolves on the upstream, as planned."""
    text = f'[host."http://{lab.mirror.host_port}"]\n  capabilities = ["pull"]\n'
    res, served = _plan_and_pull(containerd, lab, tmp_path / "hosts", lab.upstream.host_port, text)
    assert _first_tried(res, lab.ref) == served == lab.upstream.host_port


def test_ctr_falls_back_on_a_bad_capability(containerd, lab, tmp_path):
    """Pattern 17: an unknown capability voids the file; ctr goes to the upstream, as regtui predicts."""
    text = f'[host."http://{lab.mirror.host_port}"]\n  capabilities = ["pull", "resolve", "fetch"]\n'
    res, served = _plan_and_pull(containerd, lab, tmp_path / "hosts", lab.upstream.host_port, text)
    assert res.mode == "cert-files" and res.findings[0].code == "config.invalid-value"
    assert _first_tried(res, lab.ref) == served == lab.upstream.host_port


def test_ctr_rejects_root_only_file_on_1_6(containerd, lab, tmp_path):
    """containerd 1.6 rejects a hosts.toml with no [host] table (invalid host tree): upstream, as regtui says."""
    text = f'server = "http://{lab.mirror.host_port}"\n'
    res, served = _plan_and_pull(containerd, lab, tmp_path / "hosts", lab.upstream.host_port, text)
    assert res.mode == "cert-files"
    assert _first_tried(res, lab.ref) == served == lab.upstream.host_port


def test_ctr_reads_the_host_port_dir(containerd, lab, tmp_path):
    """The host_port_ directory form is picked up by ctr and by regtui."""
    name = lab.upstream.host_port.replace(":", "_") + "_"
    text = f'[host."http://{lab.mirror.host_port}"]\n  capabilities = ["pull", "resolve"]\n'
    res, served = _plan_and_pull(containerd, lab, tmp_path / "hosts", name, text)
    assert res.dir == str(tmp_path / "hosts" / name)
    assert _first_tried(res, lab.ref) == served == lab.mirror.host_port


def test_ctr_reads_the_default_dir(containerd, lab, tmp_path):
    """_default applies when the registry has no dir of its own."""
    text = f'[host."http://{lab.mirror.host_port}"]\n  capabilities = ["pull", "resolve"]\n'
    res, served = _plan_and_pull(containerd, lab, tmp_path / "hosts", "_default", text)
    assert not res.specific
    assert _first_tried(res, lab.ref) == served == lab.mirror.host_port


def test_ctr_server_replaces_the_upstream(containerd, lab, tmp_path):
    """server = the mirror: the registry itself is not in the list, and ctr pulls the mirror's image."""
    text = f'server = "http://{lab.mirror.host_port}"\n[host."http://{lab.mirror.host_port}"]\n'
    res, served = _plan_and_pull(containerd, lab, tmp_path / "hosts", lab.upstream.host_port, text)
    assert lab.upstream.host_port not in [e.host for e in res.entries]
    assert _first_tried(res, lab.ref) == served == lab.mirror.host_port


def test_ctr_1_6_voids_a_file_with_the_referrers_capability(containerd, lab, tmp_path):
    """`referrers` is a capability from containerd 2.2 only: 1.6 fails to decode the file and uses the upstream."""
    text = f'[host."http://{lab.mirror.host_port}"]\n  capabilities = ["pull", "resolve", "referrers"]\n'
    res, served = _plan_and_pull(containerd, lab, tmp_path / "hosts", lab.upstream.host_port, text)
    assert res.mode == "cert-files"
    assert res.findings[0].evidence["error"] == "unknown capability referrers"
    assert _first_tried(res, lab.ref) == served == lab.upstream.host_port
