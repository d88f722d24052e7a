"""Fix catalogue, proxies: the daemon's own drop-in, environment file or daemon.json, never the packaged unit."""

from __future__ import annotations

import json
from pathlib import Path

from regtui import fixes
from regtui.findings import finding, fix
from test_fix_kit import CONTAINERD_16, DOCKER_27, make_root, roundtrip

DPKG = "/var/lib/dpkg/status"
UNIT = "/lib/systemd/system/docker.service"
DROPIN = "/etc/systemd/system/docker.service.d/http-proxy.conf"
VENDOR = "[Unit]\nDescription=Docker\n\n[Service]\nExecStart=/usr/bin/dockerd -H fd://\n"


def test_https_proxy_added_next_to_http_proxy(tmp_path: Path) -> None:
    """HTTP_PROXY only: HTTPS_PROXY with the same value goes into the same drop-in; other lines kept."""
    text = '# corporate proxy\n[Service]\nEnvironment="HTTP_PROXY=http://proxy.corp:3128"\nEnvironment="NO_PROXY=localhost"\n'
    root = make_root(tmp_path, {UNIT: VENDOR, DROPIN: text, DPKG: DOCKER_27})
    r = roundtrip(root, "proxy.https-missing", runtime="docker")
    assert r.texts[DROPIN] == text + 'Environment="HTTPS_PROXY=http://proxy.corp:3128"\n'
    assert r.plan.restart_command == "systemctl daemon-reload && systemctl restart docker"


def test_https_proxy_from_a_packaged_unit_goes_to_a_new_dropin(tmp_path: Path) -> None:
    """HTTP_PROXY set in the packaged unit: the unit is not edited; the drop-in is created."""
    unit = VENDOR.replace("[Service]\n", '[Service]\nEnvironment="HTTP_PROXY=http://proxy.corp:3128"\n')
    root = make_root(tmp_path, {UNIT: unit, DPKG: DOCKER_27})
    r = roundtrip(root, "proxy.https-missing", runtime="docker")
    assert r.plan.files == (DROPIN,)
    assert r.texts[DROPIN] == '[Service]\nEnvironment="HTTPS_PROXY=http://proxy.corp:3128"\n'


def test_https_proxy_added_to_environment_file(tmp_path: Path) -> None:
    """HTTP_PROXY from an EnvironmentFile: HTTPS_PROXY is appended to that file."""
    unit = "[Service]\nEnvironmentFile=-/etc/default/containerd\nExecStart=/usr/bin/containerd\n"
    env = "# proxy for containerd\nexport HTTP_PROXY=http://proxy.corp:3128\n"
    root = make_root(tmp_path, {"/lib/systemd/system/containerd.service": unit, "/etc/default/containerd": env,
                                DPKG: CONTAINERD_16, "/etc/containerd/config.toml": "version = 2\n"})
    r = roundtrip(root, "proxy.https-missing", runtime="containerd")
    assert r.texts["/etc/default/containerd"] == env + "HTTPS_PROXY=http://proxy.corp:3128\n"
    assert r.plan.restart == "restart containerd"


def test_https_proxy_added_to_daemon_json_proxies(tmp_path: Path) -> None:
    """Proxies set in daemon.json (which override the environment): https-proxy is added there."""
    dj = '{\n  "proxies": {\n    "http-proxy": "http://proxy.corp:3128"\n  }\n}\n'
    root = make_root(tmp_path, {"/etc/docker/daemon.json": dj, UNIT: VENDOR, DPKG: DOCKER_27})
    r = roundtrip(root, "proxy.https-missing", runtime="docker")
    assert json.loads(r.texts["/etc/docker/daemon.json"]) == {
        "proxies": {"http-proxy": "http://proxy.corp:3128", "https-proxy": "http://proxy.corp:3128"}}


def test_case_conflict_lowercase_takes_uppercase_value(tmp_path: Path) -> None:
    """https_proxy disagreeing with HTTPS_PROXY is set to the value Go uses."""
    text = ('[Service]\nEnvironment="HTTPS_PROXY=http://new-proxy:3128" "HTTP_PROXY=http://new-proxy:3128"\n'
            'Environment="https_proxy=http://old-proxy:3128"\n')
    root = make_root(tmp_path, {UNIT: VENDOR, DROPIN: text, DPKG: DOCKER_27})
    r = roundtrip(root, "proxy.case-conflict", runtime="docker")
    assert r.texts[DROPIN] == text.replace("old-proxy", "new-proxy")


def test_private_registry_added_to_no_proxy(tmp_path: Path) -> None:
    """A private-address registry sent through the proxy is appended to NO_PROXY."""
    text = ('[Service]\nEnvironment="HTTPS_PROXY=http://proxy.corp:3128" "HTTP_PROXY=http://proxy.corp:3128"\n'
            'Environment="NO_PROXY=localhost,.corp.example"\n')
    root = make_root(tmp_path, {UNIT: VENDOR, DROPIN: text, DPKG: DOCKER_27})
    r = roundtrip(root, "proxy.bypass-missing", runtime="docker", images=("10.20.0.5:5000/team/app:1",))
    assert r.texts[DROPIN].endswith('Environment="NO_PROXY=localhost,.corp.example,10.20.0.5"\n')


def test_no_proxy_created_next_to_https_proxy(tmp_path: Path) -> None:
    """Without any NO_PROXY, one is added to the drop-in that sets HTTPS_PROXY."""
    text = '[Service]\nEnvironment="HTTPS_PROXY=http://proxy.corp:3128"\nEnvironment="HTTP_PROXY=http://proxy.corp:3128"\n'
    root = make_root(tmp_path, {UNIT: VENDOR, DROPIN: text, DPKG: DOCKER_27})
    r = roundtrip(root, "proxy.bypass-missing", runtime="docker", images=("registry.svc.cluster.local/app:1",))
    assert r.texts[DROPIN] == text + 'Environment="NO_PROXY=registry.svc.cluster.local"\n'


def test_https_proxy_scheme_switched_to_http(tmp_path: Path) -> None:
    """proxy.scheme-tls (from the live probe): https://proxy becomes http://proxy where dockerd reads it."""
    text = '[Service]\nEnvironment="HTTPS_PROXY=https://proxy.corp:3128"\n'
    root = make_root(tmp_path, {UNIT: VENDOR, DROPIN: text, DPKG: DOCKER_27})
    f = finding("proxy.scheme-tls", "proxy.corp:3128", "HTTPS_PROXY=https://proxy.corp:3128 points at a plain HTTP proxy",
                runtime="docker",
                fix=fix("proxy.scheme-tls", "proxy.corp:3128", "change the proxy URL to http://proxy.corp:3128",
                        files=[DROPIN], restart="restart docker",
                        params={"variables": ["HTTPS_PROXY"], "from": "https://proxy.corp:3128",
                                "to": "http://proxy.corp:3128", "sources": [f"{DROPIN}:2"], "runtimes": ["docker"]}))
    r = roundtrip(root, "proxy.scheme-tls", runtime="docker", finding=f, expect_gone=None)
    assert r.texts[DROPIN] == text.replace("https://proxy", "http://proxy")
    assert r.result.gone is None and "network" in r.result.message


def test_proxy_credentials_never_appear_in_the_preview(tmp_path: Path) -> None:
    """A proxy URL with user:password is written whole but masked in the diff."""
    text = '[Service]\nEnvironment="HTTP_PROXY=http://alice:pr0xy-pass@proxy.corp:3128"\n'
    root = make_root(tmp_path, {UNIT: VENDOR, DROPIN: text, DPKG: DOCKER_27})
    r = roundtrip(root, "proxy.https-missing", runtime="docker")
    assert "pr0xy-pass" in r.texts[DROPIN]
    shown = fixes.render(r.plan)
    assert "pr0xy-pass" not in shown and "alice" not in shown and "***@proxy.corp:3128" in shown


def test_preview_of_a_proxy_with_credentials_names_the_variable_it_adds(tmp_path: Path) -> None:
    """Masking the proxy's password keeps the variable names: the diff shows HTTPS_PROXY added next to HTTP_PROXY
    (not two identical masked lines)."""
    text = '[Service]\nEnvironment="HTTP_PROXY=http://alice:pr0xy-pass@proxy.corp:3128"\n'
    root = make_root(tmp_path, {UNIT: VENDOR, DROPIN: text, DPKG: DOCKER_27})
    r = roundtrip(root, "proxy.https-missing", runtime="docker")
    shown = fixes.render(r.plan)
    assert ' Environment="HTTP_PROXY=http://***@proxy.corp:3128"' in shown, shown
    assert '+Environment="HTTPS_PROXY=http://***@proxy.corp:3128"' in shown, shown
    assert "pr0xy-pass" not in shown


def test_k3s_environment_file_case_conflict(tmp_path: Path) -> None:
    """k3s.service.env (an EnvironmentFile under /etc/systemd/system) is edited as KEY=VALUE lines."""
    env = "HTTP_PROXY=http://proxy:3128\nhttps_proxy=http://other:3128\nHTTPS_PROXY=http://proxy:3128\n"
    root = make_root(tmp_path, {
        "/etc/rancher/k3s/registries.yaml": "mirrors: {}\n",
        "/etc/systemd/system/k3s.service": "[Service]\nEnvironmentFile=-/etc/systemd/system/k3s.service.env\n"
                                           "ExecStart=/usr/local/bin/k3s server\n",
        "/etc/systemd/system/k3s.service.env": env})
    r = roundtrip(root, "proxy.case-conflict", runtime="k3s")
    assert r.texts["/etc/systemd/system/k3s.service.env"] == env.replace("other", "proxy")
    assert r.plan.restart == "restart k3s"
