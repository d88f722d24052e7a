"""Which CRI kubelet pulls through: kubeadm files, the systemd unit, k3s/RKE2's embedded kubelet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regtui.config import kubelet
from regtui.host import Host
from rootfs import line_of, write_tree

UNIT = "/usr/lib/systemd/system/kubelet.service"
DROPIN = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
CONFIG = "/var/lib/kubelet/config.yaml"
FLAGS = "/var/lib/kubelet/kubeadm-flags.env"
# What the kubeadm packages install.
KUBELET_UNIT = """\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10
"""
KUBEADM_DROPIN = """\
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""
KUBELET_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: unix:///var/run/containerd/containerd.sock
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
"""


def _host(tmp_path: Path, files: dict[str, str | bytes]) -> Host:
    return Host.from_args(write_tree(tmp_path, files), {})


def _kubeadm(extra: dict[str, str | bytes] | None = None) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {UNIT: KUBELET_UNIT, DROPIN: KUBEADM_DROPIN, CONFIG: KUBELET_CONFIG}
    files.update(extra or {})
    return files


def test_kubeadm_containerd(tmp_path: Path) -> None:
    """kubeadm with containerd: containerRuntimeEndpoint in config.yaml, with its line."""
    view = kubelet.load(_host(tmp_path, _kubeadm()))
    assert (view.runtime, view.endpoint) == ("containerd", "unix:///var/run/containerd/containerd.sock")
    assert view.source == f"{CONFIG}:{line_of(KUBELET_CONFIG, 'containerRuntimeEndpoint')}"
    assert view.detected and view.findings == []


def test_kubeadm_flags_beat_config(tmp_path: Path) -> None:
    """--container-runtime-endpoint in kubeadm-flags.env overrides the config file: CRI-O."""
    flags = 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/crio/crio.sock --pod-infra-container-image=registry.k8s.io/pause:3.9"\n'
    view = kubelet.load(_host(tmp_path, _kubeadm({FLAGS: flags})))
    assert (view.runtime, view.endpoint, view.source) == ("crio", "unix:///var/run/crio/crio.sock", f"{FLAGS}:1")


def test_extra_args_win_over_kubeadm_args(tmp_path: Path) -> None:
    """KUBELET_EXTRA_ARGS comes later on the command line, so it wins: Docker through cri-dockerd."""
    flags = 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock"\n'
    extra = "# overrides\nKUBELET_EXTRA_ARGS=--container-runtime-endpoint unix:///run/cri-dockerd.sock\n"
    view = kubelet.load(_host(tmp_path, _kubeadm({FLAGS: flags, "/etc/default/kubelet": extra})))
    assert (view.runtime, view.via, view.endpoint) == ("docker", "cri-dockerd", "unix:///run/cri-dockerd.sock")
    assert view.source == "/etc/default/kubelet:2"


def test_without_unit_files(tmp_path: Path) -> None:
    """A root with only kubeadm's files (no unit): the same files are read in the drop-in's order."""
    files: dict[str, str | bytes] = {CONFIG: KUBELET_CONFIG, "/etc/sysconfig/kubelet":
                                     "KUBELET_EXTRA_ARGS=--container-runtime-endpoint=unix:///var/run/crio/crio.sock\n"}
    view = kubelet.load(_host(tmp_path, files))
    assert (view.runtime, view.source) == ("crio", "/etc/sysconfig/kubelet:1")


def test_image_service_endpoint(tmp_path: Path) -> None:
    """imageServiceEndpoint decides where images are pulled, even when the runtime endpoint differs."""
    cfg = KUBELET_CONFIG + "imageServiceEndpoint: unix:///run/crio/crio.sock\n"
    view = kubelet.load(_host(tmp_path, _kubeadm({CONFIG: cfg})))
    assert (view.runtime, view.endpoint) == ("crio", "unix:///run/crio/crio.sock")
    assert view.runtime_endpoint == "unix:///var/run/containerd/containerd.sock"


def test_default_endpoint(tmp_path: Path) -> None:
    """No endpoint anywhere: the KubeletConfiguration default (containerd) with a default source."""
    cfg = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
    view = kubelet.load(_host(tmp_path, _kubeadm({CONFIG: cfg})))
    assert (view.runtime, view.endpoint) == ("containerd", kubelet.DEFAULT_ENDPOINT)
    assert view.source.startswith("default (")


def test_k3s_embedded(tmp_path: Path) -> None:
    """k3s runs its own kubelet on the embedded containerd socket."""
    view = kubelet.load(_host(tmp_path, {"/etc/rancher/k3s/registries.yaml": "",
                                         "/etc/systemd/system/k3s.service": "[Service]\nExecStart=/usr/local/bin/k3s server\n"}))
    assert (view.runtime, view.endpoint) == ("k3s", "unix:///run/k3s/containerd/containerd.sock")
    assert view.source == "default (k3s embedded containerd)" and view.detected


def test_k3s_with_external_runtime(tmp_path: Path) -> None:
    """k3s with container-runtime-endpoint in config.yaml hands its kubelet that socket."""
    text = "write-kubeconfig-mode: \"0644\"\ncontainer-runtime-endpoint: unix:///run/crio/crio.sock\n"
    view = kubelet.load(_host(tmp_path, {"/etc/rancher/k3s/config.yaml": text}))
    assert (view.runtime, view.source) == ("crio", "/etc/rancher/k3s/config.yaml:2")


def test_k3s_docker_and_kubelet_arg(tmp_path: Path) -> None:
    """k3s --docker uses its cri-dockerd; a kubelet-arg image-service-endpoint overrides where images come from."""
    view = kubelet.load(_host(tmp_path / "docker", {"/etc/rancher/k3s/config.yaml": "docker: true\n"}))
    assert (view.runtime, view.via) == ("docker", "cri-dockerd")
    text = "kubelet-arg:\n  - \"image-service-endpoint=unix:///run/containerd/containerd.sock\"\n"
    view = kubelet.load(_host(tmp_path / "arg", {"/etc/rancher/k3s/config.yaml": text}))
    assert view.runtime == "containerd" and view.runtime_endpoint == "unix:///run/k3s/containerd/containerd.sock"
    assert view.source == "/etc/rancher/k3s/config.yaml:1 (kubelet-arg)"


def test_rke2_agent(tmp_path: Path) -> None:
    """RKE2 agents use the same embedded socket."""
    view = kubelet.load(_host(tmp_path, {"/usr/local/lib/systemd/system/rke2-agent.service":
                                         "[Service]\nExecStart=/usr/local/bin/rke2 agent\n"}))
    assert (view.runtime, view.source) == ("k3s", "default (rke2 embedded containerd)")


def test_docker_sock_is_not_cri(tmp_path: Path) -> None:
    """docker.sock is not a CRI endpoint: config.invalid-value with the file and line, suggesting cri-dockerd."""
    cfg = KUBELET_CONFIG.replace("unix:///var/run/containerd/containerd.sock", "unix:///var/run/docker.sock")
    view = kubelet.load(_host(tmp_path, _kubeadm({CONFIG: cfg})))
    assert view.runtime is None
    (f,) = view.findings
    assert f.code == "config.invalid-value" and f.severity == "error"
    assert (f.evidence["file"], f.evidence["line"]) == (CONFIG, line_of(cfg, "containerRuntimeEndpoint"))
    assert f.fix.params["new_value"] == "unix:///run/cri-dockerd.sock"


@pytest.mark.parametrize("endpoint,runtime", [
    ("unix:///run/containerd/containerd.sock", "containerd"),
    ("/var/run/containerd/containerd.sock", "containerd"),
    ("unix:///run/k3s/containerd/containerd.sock", "k3s"),
    ("unix:///var/run/crio/crio.sock", "crio"),
    ("unix:///run/cri-dockerd.sock", "docker"),
    ("unix:///var/run/dockershim.sock", "docker"),
    ("tcp://10.0.0.1:2376", None),
    ("unix:///run/something-else.sock", None),
])
def test_runtime_for_endpoint(endpoint: str, runtime: str | None) -> None:
    """The socket file name names the runtime."""
    assert kubelet.runtime_for_endpoint(endpoint)[0] == runtime


def test_garbage_config(tmp_path: Path) -> None:
    """A broken config.yaml is a parse error with line and column; the flags still decide the runtime."""
    cfg = KUBELET_CONFIG.replace("cgroupDriver: systemd", "cgroupDriver: systemd\n\tmaxPods: 110")
    flags = 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/crio/crio.sock"\n'
    view = kubelet.load(_host(tmp_path, _kubeadm({CONFIG: cfg, FLAGS: flags})))
    (f,) = [f for f in view.findings if f.code == "config.parse-error"]
    assert f.evidence["line"] == line_of(cfg, "maxPods") and f.evidence["column"] == 1
    assert view.runtime == "crio"


def test_garbage_everywhere(tmp_path: Path) -> None:
    """Random bytes, wrong types and unbalanced quotes become findings, never a traceback."""
    files = _kubeadm({CONFIG: "containerRuntimeEndpoint: [unix, socket]\n",
                      FLAGS: 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///x\n',
                      "/etc/default/kubelet": bytes(range(256))})
    view = kubelet.load(_host(tmp_path, files))
    codes = sorted(f.code for f in view.findings)
    assert codes.count("config.parse-error") == 2 and "config.invalid-value" in codes
    assert all(f.evidence.get("file") for f in view.findings)
    json.dumps(view.to_dict())
    view = kubelet.load(_host(tmp_path / "scalar", {CONFIG: "just a string\n"}))
    assert [f.code for f in view.findings] == ["config.invalid-value"]


def test_not_a_kubernetes_node(tmp_path: Path) -> None:
    """No kubelet and no k3s: not detected, no runtime."""
    view = kubelet.load(_host(tmp_path, {"/etc/hostname": "laptop\n"}))
    assert not view.detected and view.runtime is None and view.endpoint is None
