"""Every output of regtui agrees with what the runtime really does on the same host (real containerd and
registries in the lab), and the outputs agree with each other: JSON check, text check, reports, test pull.

Each scenario is built once; the real runtime (``ctr`` with the same hosts directory) pulls the same image,
and regtui's verdict, routes table and test pull must say what happened to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.containerd import Containerd
from lab.fakeregistry import FakeRegistry, Faults
from lab.fixtures import LAB_REPO
from lab.images import OciImage
from lab.pullroots import containerd_root
from lab.registry import Registry
from lab.verdicts import HOSTS, check, cli_args, lab_image_ref, lab_name, verdict
from regtui.cli import main

pytestmark = pytest.mark.lab


def _outputs(root: Path, image: str, runtime: str, tmp_path: Path,
             capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`regtui pull --format json` and the Prometheus report of the same root and image."""
    args = cli_args(root, image, runtime)
    capsys.readouterr()
    main(["pull", image, *[a for a in args if a not in ("--image", image)], "--format", "json"])
    pulled = json.loads(capsys.readouterr().out)
    prom = tmp_path / "regtui.prom"
    main(["report", *args, "--format", "prometheus", "--output", str(prom)])
    capsys.readouterr()
    return {"pull": pulled, "prom": prom.read_text()}


def test_mirror_whose_head_names_a_digest_it_does_not_serve_fails_containerd_as_ctr_does(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, containerd: Containerd,
        hosts_file_factory: Callable[[dict[str, str]], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Mirror whose HEAD for the tag names a digest it does not serve, good upstream after it: ctr fails (containerd
    fetches the named digest, no host has it); the verdict, test pull and metrics fail too, on the mirror, and no
    finding says containerd pulls the mirror's image."""
    name, root = lab_name(registry_tls), tmp_path / "root"
    image = lab_image_ref(registry_tls)
    with FakeRegistry(lab_image.layout_dir, faults=Faults(wrong_digest_header=True)) as mirror:
        hosts_dir = containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file,
                                    hosts=HOSTS, mirrors=[{"url": mirror.url}])
        pulled = containerd.ctr_pull(image, hosts_dir=hosts_dir, hosts_file=hosts_file_factory(HOSTS), timeout=60)
        _, data = check(root, image, "containerd")
        out = _outputs(root, image, "containerd", tmp_path, capsys)
    assert not pulled.ok and "not found" in pulled.output, pulled.output
    v = verdict(data, "containerd")
    assert (v["status"], v["cause"]["code"], v["cause"]["endpoint"]) == ("fails", "pull.digest-mismatch",
                                                                         f"{mirror.url}/v2"), v
    assert data["pull"]["ok"] is False and out["pull"]["pull"]["ok"] is False
    # The error regtui predicts is the one ctr prints.
    (failed,) = [e for e in data["pull"]["endpoints"] if e["status"] == "failed"]
    assert pulled.output.strip().splitlines()[-1] == "ctr: " + failed["runtime_error"], failed
    # The mirror serves no other image (its header names one it does not have): no "it pulls the mirror's image".
    assert "mirror.stale" not in {f["code"] for f in data["findings"]}, [f["title"] for f in data["findings"]]
    assert 'status="fails"' in out["prom"] and 'status="degraded"' not in out["prom"]


def test_pull_by_digest_ignores_a_wrong_digest_header_as_ctr_does(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, containerd: Containerd,
        hosts_file_factory: Callable[[dict[str, str]], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """By-digest pull from a mirror that sends a wrong Docker-Content-Digest: ctr pulls from the mirror (it checks
    the bytes against the digest it asked for); regtui's verdict is ok, served by the mirror, which no output fails."""
    name, root = lab_name(registry_tls), tmp_path / "root"
    image = f"{name}/{LAB_REPO}@{lab_image.digest}"
    with FakeRegistry(lab_image.layout_dir, faults=Faults(wrong_digest_header=True)) as mirror:
        hosts_dir = containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file,
                                    hosts=HOSTS, mirrors=[{"url": mirror.url}])
        pulled = containerd.ctr_pull(image, hosts_dir=hosts_dir, hosts_file=hosts_file_factory(HOSTS), timeout=60)
        served_by_mirror = bool(mirror.requests_to("/blobs/"))
        _, data = check(root, image, "containerd")
        out = _outputs(root, image, "containerd", tmp_path, capsys)
    assert pulled.ok and served_by_mirror, pulled.output
    v = verdict(data, "containerd")
    assert (v["status"], v["endpoint"]) == ("ok", f"{mirror.url}/v2"), v
    assert "pull.digest-mismatch" not in {f["code"] for f in data["findings"]}
    (route,) = data["routes"]
    assert {ep["url"]: ep["status"] for ep in route["endpoints"]}[f"{mirror.url}/v2"] == "ok"
    assert out["pull"]["pull"]["ok"] and out["pull"]["pull"]["endpoint"] == f"{mirror.url}/v2"
    assert f'regtui_endpoint_up{{role="mirror",runtime="containerd",url="{mirror.url}/v2"}} 1.0' in out["prom"]


@pytest.mark.parametrize("where", ["etc/containerd/certs.d/{name}/ca.crt", "usr/local/share/ca-certificates/lab.crt"])
def test_root_ca_waiting_on_the_host_is_the_one_the_fix_installs(
        where: str, tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The registry's root CA is on the host but no runtime reads it (next to a hosts.toml that does not name it,
    or staged for update-ca-certificates): the report does not say the root is nowhere here, the fix it offers
    is an edit that `regtui fix` applies without --ca-file, and the re-check is ok."""
    name, root = lab_name(registry_tls), tmp_path / "root"
    image = lab_image_ref(registry_tls)
    containerd_root(root, name, server=f"https://{name}", hosts=HOSTS)
    waiting = root / where.format(name=name)
    waiting.parent.mkdir(parents=True, exist_ok=True)
    waiting.write_bytes(registry_tls.ca_file.read_bytes())
    _, data = check(root, image, "containerd")
    v = verdict(data, "containerd")
    assert (v["status"], v["cause"]["code"]) == ("fails", "tls.unknown-authority"), v
    cause = next(f for f in data["findings"] if f["id"] == v["cause"]["finding"])
    assert "nor in another runtime's CA files here" not in cause["detail"], cause["detail"]
    assert cause["fix"]["kind"] == "edit" and v["fix"] == cause["fix"]["id"]
    capsys.readouterr()
    assert main(["fix", v["fix"], *cli_args(root, image, "containerd"), "--apply", "--yes"]) == 0, capsys.readouterr().out
    _, after = check(root, image, "containerd")
    assert verdict(after, "containerd")["status"] == "ok", verdict(after, "containerd")


@pytest.mark.parametrize("fault", ["dead-proxy", "untrusted-ca"])
def test_pull_command_names_the_cause_and_fix_check_names(
        fault: str, tmp_path: Path, registry_tls: Registry, lab_image: OciImage, closed_port: int,
        capsys: pytest.CaptureFixture[str]) -> None:
    """containerd behind a proxy that refuses connections, or without the registry's CA: `regtui pull --format json`
    gives the verdict `regtui check` gives (status, cause, summary, fix), naming the proxy, not the bare symptom."""
    name, root = lab_name(registry_tls), tmp_path / "root"
    image = lab_image_ref(registry_tls)
    ca = registry_tls.ca_file if fault == "dead-proxy" else None
    containerd_root(root, name, server=f"https://{name}", server_ca=ca, hosts=HOSTS)
    proxy = f"http://127.0.0.1:{closed_port}"
    if fault == "dead-proxy":
        dropin = root / "etc/systemd/system/containerd.service.d/http-proxy.conf"
        dropin.parent.mkdir(parents=True)
        dropin.write_text(f'[Service]\nEnvironment="HTTPS_PROXY={proxy}"\n')
    _, data = check(root, image, "containerd")
    pulled = _outputs(root, image, "containerd", tmp_path, capsys)["pull"]
    v, pv = verdict(data, "containerd"), verdict(pulled, "containerd")
    expected = "proxy.unreachable" if fault == "dead-proxy" else "tls.unknown-authority"
    assert (v["status"], v["cause"]["code"]) == ("fails", expected), v
    assert [pv[k] for k in ("status", "cause", "summary", "fix", "manual")] == \
        [v[k] for k in ("status", "cause", "summary", "fix", "manual")], (pv, v)
    if fault == "dead-proxy":
        assert f"its proxy {proxy}" in pv["summary"], pv["summary"]


def test_rejected_basic_credentials_predict_the_error_ctr_prints_and_explain_agrees(
        tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage, containerd: Containerd,
        hosts_file_factory: Callable[[dict[str, str]], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """htpasswd registry, a wrong password: the error regtui says containerd prints is the line ctr prints with the
    same credentials, and `regtui explain` of that line is explained by the check's auth.rejected verdict."""
    name, root = lab_name(registry_tls_auth), tmp_path / "root"
    image = lab_image_ref(registry_tls_auth)
    hosts_dir = containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls_auth.ca_file,
                                hosts=HOSTS, auths={name: ("labuser", "not-the-password")})
    pulled = containerd.ctr_pull(image, hosts_dir=hosts_dir, hosts_file=hosts_file_factory(HOSTS),
                                 user="labuser:not-the-password", timeout=60)
    line = pulled.output.strip().splitlines()[-1]
    _, data = check(root, image, "containerd")
    assert verdict(data, "containerd")["cause"]["code"] == "auth.rejected"
    predicted = {e["runtime_error"] for e in data["pull"]["endpoints"] if e["status"] == "failed"}
    assert not pulled.ok and predicted == {line.removeprefix("ctr: ")}, (line, predicted)
    capsys.readouterr()
    rc = main(["explain", *cli_args(root, image, "containerd"), "--format", "json", line])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["explains"]["explains"] is True, out["explains"]


def test_refused_mirror_error_is_the_one_containerd_logs_before_the_next_host(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, containerd: Containerd, closed_port: int,
        hosts_file_factory: Callable[[dict[str, str]], Path]) -> None:
    """A mirror refusing connections before a good upstream: ctr pulls and logs "trying next host" with
    'failed to do request: Head "URL?ns=HOST%3APORT": ...'; regtui's degraded verdict predicts that same error."""
    import re

    name, root = lab_name(registry_tls), tmp_path / "root"
    image = lab_image_ref(registry_tls)
    hosts_dir = containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS,
                                mirrors=[{"url": f"http://127.0.0.1:{closed_port}"}])
    pulled = containerd.ctr_pull(image, hosts_dir=hosts_dir, hosts_file=hosts_file_factory(HOSTS), timeout=60)
    logged = re.search(r'msg="trying next host" error="((?:[^"\\]|\\.)*)"', pulled.output)
    assert pulled.ok and logged, pulled.output
    said = logged.group(1).replace('\\"', '"')
    _, data = check(root, image, "containerd")
    assert verdict(data, "containerd")["status"] == "degraded"
    (failed,) = [e for e in data["pull"]["endpoints"] if e["status"] == "failed"]
    assert failed["runtime_error"].endswith(said), (failed["runtime_error"], said)
