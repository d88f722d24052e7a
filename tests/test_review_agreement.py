"""Every output of one check agrees with every other: the error regtui predicts a runtime prints, pasted
back into ``regtui explain``, is explained by the same check's verdict.

Lab roots are built as the verdict lab tests build them; the check runs once and its JSON report is the
reference every other output is compared with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.images import OciImage
from lab.pullroots import containerd_root, write_root
from lab.registry import Registry
from lab.sockets import TcpBlackHole, UdpBlackHole
from lab.verdicts import HOSTS, check, cli_args, lab_image_ref, lab_name, verdict
from regtui.cli import main
from regtui.explain import parse_pull_error
from regtui.explaincmd import against_report
from regtui.report import merge as merge_reports


def runtime_errors(data: Any) -> list[str]:
    """Every distinct ``runtime_error`` (what regtui says the runtime will print) anywhere in a JSON report."""
    found: list[str] = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            value = node.get("runtime_error")
            if isinstance(value, str) and value and value not in found:
                found.append(value)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


@pytest.mark.lab
def test_predicted_dns_timeout_error_is_explained_by_the_same_check(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, udp_black_hole: UdpBlackHole,
        capsys: pytest.CaptureFixture[str]) -> None:
    """--dns-server that never answers: each error the report predicts (including the bare "dial tcp: lookup
    NAME on SERVER: i/o timeout") is explained by that report's verdict, and `regtui explain` exits as check."""
    name, root = lab_name(registry_tls), tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
    image, server = lab_image_ref(registry_tls), udp_black_hole.host_port
    _, data = check(root, image, "containerd", dns_server=server)
    v = verdict(data, "containerd")
    assert (v["status"], v["cause"]["code"]) == ("fails", "dns.timeout"), v
    errors = runtime_errors(data)
    assert f"dial tcp: lookup registry.lab.test on {server}: i/o timeout" in errors, errors
    for text in errors:
        e = against_report(parse_pull_error(text), data)
        assert e.relation is not None and e.relation.explains, (text, e.relation)

    args = [*cli_args(root, image, "containerd"), "--dns-server", server]
    rc_check = main(["check", *args])
    capsys.readouterr()
    rc = main(["explain", *args, "--format", "json", f"dial tcp: lookup registry.lab.test on {server}: i/o timeout"])
    out = json.loads(capsys.readouterr().out)
    assert rc == rc_check == 1
    assert out["explains"]["explains"], out["explains"]


@pytest.mark.lab
def test_merge_of_a_degraded_short_name_search_does_not_say_no_host_is_degraded(
        tmp_path: Path, registry_plain: Registry, registry_factory: Any, lab_image: OciImage,
        capsys: pytest.CaptureFixture[str]) -> None:
    """CRI-O short name, first search registry lacks the image: the check is degraded (no cause); the merged
    Markdown and HTML count it as degraded and their Causes section does not then claim no host is degraded."""
    empty = registry_factory()
    conf = (f'unqualified-search-registries = ["{empty.host_port}", "{registry_plain.host_port}"]\n'
            'short-name-mode = "permissive"\n')
    for host in (empty.host_port, registry_plain.host_port):
        conf += f'\n[[registry]]\nlocation = "{host}"\ninsecure = true\n'
    root = write_root(tmp_path / "root", {"/etc/containers/registries.conf": conf})
    report = tmp_path / "node.json"
    rc = main(["check", *cli_args(root, "lab/app", "crio"), "--format", "json", "--output", str(report)])
    v = verdict(json.loads(report.read_text()), "crio")
    assert rc == 0 and v["status"] == "degraded" and v["cause"] is None, v
    capsys.readouterr()

    assert main(["report", "--merge", str(report), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "1 degraded" in md
    html_file = tmp_path / "fleet.html"
    assert main(["report", "--merge", str(report), "--format", "html", "--output", str(html_file)]) == 0
    html = html_file.read_text()
    assert "1 degraded" in html
    for text in (md, html):
        assert "No host has a failing or degraded verdict" not in text
        assert "none names a cause" in text
    assert merge_reports.merge([(str(report), json.loads(report.read_text()))])["statuses"]["degraded"] == 1


@pytest.mark.lab
def test_short_name_candidate_errors_name_the_candidate_not_docker_hub(
        tmp_path: Path, registry_plain: Registry, registry_factory: Any, lab_image: OciImage) -> None:
    """CRI-O short name over two search registries, the first lacks it: every error regtui predicts for a
    candidate names that candidate (podman: "reading manifest latest in HOST/lab/app"), never docker.io."""
    empty = registry_factory()
    conf = (f'unqualified-search-registries = ["{empty.host_port}", "{registry_plain.host_port}"]\n'
            'short-name-mode = "permissive"\n')
    for host in (empty.host_port, registry_plain.host_port):
        conf += f'\n[[registry]]\nlocation = "{host}"\ninsecure = true\n'
    root = write_root(tmp_path / "root", {"/etc/containers/registries.conf": conf})
    _, data = check(root, "lab/app", "crio")
    assert verdict(data, "crio")["status"] == "degraded"
    errors = [e for e in runtime_errors(data) if "reading manifest" in e]
    assert errors, runtime_errors(data)
    for text in errors:
        assert f"in {empty.host_port}/lab/app:" in text and "docker.io" not in text, text


@pytest.mark.lab
def test_degraded_verdict_names_the_endpoint_that_served_not_the_mirror_that_failed(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, tcp_black_hole: TcpBlackHole) -> None:
    """Black-holed mirror before a good upstream: the verdict's endpoint and endpoint_key ("the serving endpoint")
    are the upstream that served the test pull, which is ok in the routes table; the mirror stays the cause."""
    name, root = lab_name(registry_tls), tmp_path / "root"
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS,
                    mirrors=[{"url": f"https://{tcp_black_hole.host_port}", "skip_verify": True}])
    _, data = check(root, lab_image_ref(registry_tls), "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "degraded" and tcp_black_hole.host_port in v["cause"]["endpoint"], v
    (route,) = [r for r in data["routes"] if r["runtime"] == "containerd"]
    status = {ep["key"]: ep["status"] for ep in route["endpoints"]}
    served = [r["key"] for r in data["pull"]["endpoints"] if r["status"] == "ok"]
    assert data["pull"]["ok"] and served and data["pull"]["endpoint"] == f"https://{name}/v2"
    assert (v["endpoint"], v["endpoint_key"]) == (data["pull"]["endpoint"], served[0]), v
    assert status[v["endpoint_key"]] != "failed", (v, status)
    assert v["cause"]["endpoint_key"] != v["endpoint_key"] and status[v["cause"]["endpoint_key"]] == "failed"
