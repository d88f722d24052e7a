"""The Kubernetes manifests (deploy/kubernetes): valid against the API schemas, offline, and shaped as
the README promises (node root read-only at /host, host network, every taint tolerated, root without
capabilities or privilege, the textfile on the node_exporter hostPath).

kubernetes-validate ships the OpenAPI schemas of each Kubernetes release, so no cluster is needed.
"""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

MANIFESTS = Path(__file__).parent.parent / "deploy" / "kubernetes"
#: Releases to validate against: the oldest still common in managed clusters and a recent one.
VERSIONS = ("1.29.0", "1.30.0", "1.33.0")
TEXTFILE_DIR = "/var/lib/node_exporter/textfile_collector"


def documents() -> dict[str, dict[str, Any]]:
    """Every resource in deploy/kubernetes, by kind."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out[doc["kind"]] = doc
    return out


def pod_spec(kind: str) -> dict[str, Any]:
    """The pod template's spec of the DaemonSet or Job."""
    return documents()[kind]["spec"]["template"]["spec"]


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_are_valid_kubernetes_resources(version: str) -> None:
    """Each manifest passes strict schema validation (no unknown field) for the Kubernetes release."""
    docs = documents()
    assert sorted(docs) == ["DaemonSet", "Job", "Namespace"]
    for doc in docs.values():
        kubernetes_validate.validate(doc, version, strict=True)


def test_validation_catches_a_broken_manifest() -> None:
    """The validator is not a formality: a misspelt field and a wrongly typed one are both refused."""
    daemonset = documents()["DaemonSet"]
    misspelt = copy.deepcopy(daemonset)
    misspelt["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readonly"] = True
    mistyped = copy.deepcopy(daemonset)
    mistyped["spec"]["template"]["spec"]["hostNetwork"] = "yes"
    for broken in (misspelt, mistyped):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


@pytest.mark.parametrize("kind", ["DaemonSet", "Job"])
def test_pods_read_the_node_root_with_the_least_privilege(kind: str) -> None:
    """The node's / is at /host read-only without propagation; root without capabilities, privilege or a writable image."""
    spec = pod_spec(kind)
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    (container,) = spec["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    host = mounts["/host"]
    assert volumes[host["name"]]["hostPath"] == {"path": "/", "type": "Directory"}
    assert host["readOnly"] is True and host["mountPropagation"] == "None"
    sc = container["securityContext"]
    assert sc["runAsUser"] == 0 and sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"] == {"drop": ["ALL"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "a read-only image still needs a writable /tmp"
    assert set(container["resources"]) == {"requests", "limits"}
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert all(not volumes[mounts[p]["name"]].get("hostPath") or p == "/textfile" for p in writable)


def test_daemonset_writes_the_textfile_where_node_exporter_reads() -> None:
    """The DaemonSet loops `regtui check --root /host --format prometheus` into the textfile hostPath."""
    spec = pod_spec("DaemonSet")
    (container,) = spec["containers"]
    script = container["args"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    check = next(line for line in script.replace("\\\n", " ").splitlines() if "regtui check" in line)
    words = shlex.split(check)
    assert words[words.index("--root") + 1] == "/host"
    assert words[words.index("--format") + 1] == "prometheus"
    assert words[words.index("--output") + 1] == "/textfile/regtui.prom"
    volumes = {v["name"]: v for v in spec["volumes"]}
    (textfile,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/textfile"]
    assert volumes[textfile["name"]]["hostPath"]["path"] == TEXTFILE_DIR
    assert "trap 'exit 0' TERM" in script and 'wait $!' in script, "SIGTERM ends the loop without the grace period"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["INTERVAL"]) >= 60 and env["REGTUI_IMAGE"]


def test_job_prints_one_json_report_of_one_node() -> None:
    """The Job runs once (no retry, a deadline) on the node its nodeSelector names and prints JSON."""
    job = documents()["Job"]
    spec = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] > 0
    assert spec["restartPolicy"] == "Never" and "kubernetes.io/hostname" in spec["nodeSelector"]
    (container,) = spec["containers"]
    args = container["args"]
    assert args[:3] == ["check", "--root", "/host"] and args[args.index("--format") + 1] == "json"
    assert "--output" not in args, "the report goes to the log"
