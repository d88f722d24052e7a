"""The Prometheus textfile (`--format prometheus`): built with prometheus_client, accepted by promtool,
parsed back by prometheus_client's own parser, written atomically, and free of secrets.

The live case runs the whole check on lab roots (a TLS registry with htpasswd credentials, a
containerd whose proxy URL carries a password); the recorded case renders the offline busy root.
"""

from __future__ import annotations

import base64
import math
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.fixtures import LAB_CREDENTIALS, LAB_PROXY_CREDENTIALS
from lab.images import OciImage
from lab.proxy import TinyProxy
from lab.pullroots import containerd_root, crio_root, write_root
from lab.registry import Registry
from lab.require import require_binary
from lab.verdicts import HOSTS, cli_args, lab_image_ref, lab_name
from regtui.cli import main
from regtui.report import prometheus

BUSY_ROOT = Path(__file__).parent / "data" / "busy-root"


def promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` on the file (it reads the exposition on stdin)."""
    promtool = require_binary("promtool")
    with path.open("rb") as fh:
        return subprocess.run([promtool, "check", "metrics"], stdin=fh, capture_output=True, text=True, timeout=60)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric name -> [(labels, value)], as prometheus_client's text parser reads the file."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def secrets() -> list[str]:
    """Every secret of the lab run, plain and as the base64 a config.json or auth header would carry."""
    plain = [LAB_CREDENTIALS[1], LAB_PROXY_CREDENTIALS[1]]
    blobs = [base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in (LAB_CREDENTIALS, LAB_PROXY_CREDENTIALS)]
    return plain + blobs


@pytest.mark.lab
def test_live_check_textfile_passes_promtool_and_carries_the_verdicts(
    tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage,
    tinyproxy_factory: Callable[..., TinyProxy], hosts_file_factory: Callable[[dict[str, str]], Path],
) -> None:
    """A live check (credentials, proxy with a password) writes a textfile promtool accepts, with pull_ok per runtime and no secret."""
    name, root = lab_name(registry_tls_auth), tmp_path / "root"
    proxy = tinyproxy_factory(auth=LAB_PROXY_CREDENTIALS, hosts_file=hosts_file_factory(HOSTS))
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls_auth.ca_file, hosts=HOSTS,
                    auths={name: LAB_CREDENTIALS})
    crio_root(root, name, hosts=HOSTS, auths={name: LAB_CREDENTIALS})  # no CA for CRI-O: it fails
    write_root(root, {
        "/etc/hostname": "node-7\n",
        "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n",
        "/etc/systemd/system/containerd.service.d/http-proxy.conf": f'[Service]\nEnvironment="HTTPS_PROXY={proxy.url}"\n',
    }, hosts=HOSTS)
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    out = textfile_dir / "regtui.prom"
    args = cli_args(root, lab_image_ref(registry_tls_auth), "auto")
    rc = main(["check", *args, "--format", "prometheus", "--output", str(out)])
    assert rc == 1  # CRI-O fails
    assert sorted(os.listdir(textfile_dir)) == ["regtui.prom"], "no temporary file is left beside the textfile"
    checked = promtool_check(out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = out.read_text()
    for secret in secrets():
        assert secret not in text
    got = samples(text)
    ok = {labels["runtime"]: (labels["status"], labels["cause"], value) for labels, value in got["regtui_pull_ok"]}
    assert ok["containerd"] == ("ok", "", 1.0)
    assert ok["crio"] == ("fails", "tls.unknown-authority", 0.0)
    (pull_s,) = got["regtui_pull_seconds"]
    (pull_b,) = got["regtui_pull_bytes"]
    assert pull_s[0]["runtime"] == "containerd" and pull_s[1] > 0 and pull_b[1] >= sum(b.size for b in lab_image.layers)
    assert ({"code": "tls.unknown-authority", "severity": "error", "runtime": "crio"}, 1.0) in got["regtui_finding"]
    up = {(lb["runtime"], lb["url"]): v for lb, v in got["regtui_endpoint_up"]}
    assert up[("containerd", f"https://{name}/v2")] == 1.0 and up[("crio", f"https://{name}/v2")] == 0.0
    ((expiry_labels, expiry),) = got["regtui_cert_expiry_timestamp_seconds"]
    assert expiry_labels == {"host": name}
    assert expiry == pytest.approx(registry_tls_auth.tls.not_after.timestamp(), abs=1)
    assert "regtui_clock_offset_seconds" in got and abs(got["regtui_clock_offset_seconds"][0][1]) < 30
    (stamp,) = got["regtui_check_timestamp_seconds"]
    assert stamp[1] > 1.7e9
    assert got["regtui_check_info"][0][0]["hostname"] == "node-7"


@pytest.mark.lab
def test_recorded_offline_report_passes_promtool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The offline busy root: promtool accepts the textfile from stdout; verdicts there are unknown (NaN) or fails (0)."""
    rc = main(["check", "--root", str(BUSY_ROOT), "--offline", "--runtime", "all", "--image", "alpine",
               "--format", "prometheus"])
    text = capsys.readouterr().out
    assert rc in (0, 1)
    out = tmp_path / "busy.prom"
    out.write_text(text)
    checked = promtool_check(out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    got = samples(text)
    values = {(lb["runtime"], lb["status"]): v for lb, v in got["regtui_pull_ok"]}
    assert values, "one pull_ok series per runtime and image"
    for (_, status), v in values.items():
        assert (math.isnan(v) if status == "unknown" else v == (0.0 if status == "fails" else 1.0))
    assert sum(v for _, v in got["regtui_finding"]) >= 5
    assert "regtui_pull_seconds" not in got, "no test pull offline, so no pull timing series"


def test_label_values_are_escaped_and_round_trip() -> None:
    """Quotes, backslashes and newlines in label values come back unchanged through the exposition format."""
    nasty = 'reg.example/a"b\\c\nd:1'
    data = {"host": {"hostname": 'h"1', "root": "/"}, "mode": "network", "generated_at": "2026-01-02T03:04:05Z",
            "summary": {"exit_code": 1},
            "verdicts": [{"runtime": "docker", "image": nasty, "status": "fails",
                          "cause": {"code": "proxy.unreachable", "endpoint": "http://p:3128"}}],
            "findings": [], "routes": [{"runtime": "docker", "endpoints": [
                {"role": "mirror", "url": 'https://m"x/v2', "status": "failed"},
                {"role": "mirror", "url": "https://skipped/v2", "status": "skipped"}]}],
            "probes": {}, "pull": None}
    from prometheus_client import generate_latest

    got = samples(generate_latest(prometheus.registry(data)).decode())
    ((labels, value),) = got["regtui_pull_ok"]
    assert labels["image"] == nasty and value == 0.0
    assert got["regtui_check_info"][0][0]["hostname"] == 'h"1'
    assert [lb["url"] for lb, _ in got["regtui_endpoint_up"]] == ['https://m"x/v2'], "skipped endpoints have no series"
    assert got["regtui_check_timestamp_seconds"][0][1] == 1767323045.0


def test_write_to_unwritable_directory_keeps_the_old_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Writing into a directory that cannot take the temporary file is exit 2 with one line; the old textfile stays whole."""
    if os.geteuid() == 0:
        target_dir = tmp_path / "missing-dir"  # root can write anywhere: a missing directory fails the same way
    else:
        target_dir = tmp_path / "ro"
        target_dir.mkdir()
        target_dir.chmod(0o500)
    out = target_dir / "regtui.prom"
    rc = main(["check", "--root", str(BUSY_ROOT), "--offline", "--image", "alpine", "--format", "prometheus",
               "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and f"cannot write {out}" in err and "Traceback" not in err
    assert not out.exists()


def test_leaf_expiry_is_the_leaf_every_report_shows() -> None:
    """The textfile and the Markdown report take the certificate the probe marks as the leaf, not merely the first one sent."""
    from prometheus_client import generate_latest

    from regtui.report import markdown

    presented = [  # the leaf marked at position 1
        {"position": 0, "role": "intermediate", "subject": "CN=Issuing CA", "issuer": "CN=Root",
         "not_after": "2030-01-01T00:00:00+00:00", "days_left": 1123, "sha256": "aa"},
        {"position": 1, "role": "leaf", "subject": "CN=registry.example", "issuer": "CN=Issuing CA",
         "not_after": "2027-02-01T00:00:00+00:00", "days_left": 59, "sha256": "bb"}]
    data = {"host": {"hostname": "h", "root": "/"}, "mode": "network", "generated_at": "2026-12-04T00:00:00Z",
            "summary": {"exit_code": 0}, "verdicts": [], "findings": [], "routes": [], "pull": None,
            "probes": {"tls": [{"runtime": "containerd", "host": "registry.example", "url": "https://registry.example/v2",
                                "status": "ok", "chain": presented, "verdict": {}}]}}
    got = samples(generate_latest(prometheus.registry(data)).decode())
    ((labels, value),) = got["regtui_cert_expiry_timestamp_seconds"]
    assert labels["host"] == "registry.example" and value == 1801440000.0  # 2027-02-01
    assert "2027-02-01T00:00:00+00:00 (59 days)" in "\n".join(markdown._certificates(data))
