"""deploy/prometheus: the alerting and recording rules for regtui's textfile, judged on real checks.

A module fixture runs the real ``regtui check --format prometheus`` on lab roots: a good containerd
host, one behind a dead proxy, one without the registry's CA, one whose mirror is down, one whose
registry certificate expires in 7 days, one whose NTP server is 600 s ahead, and one pulling from a
registry that turns slow. ``promtool test rules`` then runs on unit tests generated from those
textfiles; the end-to-end test serves two of them through node_exporter to a real prometheus.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from lab.fakeregistry import FakeRegistry
from lab.fixtures import LAB_REPO
from lab.images import OciImage, push
from lab.ntp import Chrony
from lab.pki import LabPKI
from lab.promstack import NodeExporter, Prometheus, input_series, rules_for_test, series_literal
from lab.pullroots import containerd_root, write_root
from lab.registry import Registry
from lab.require import require_binary
from lab.sockets import closed_port
from lab.verdicts import HOSTS, cli_args, lab_image_ref, lab_name
from regtui.cli import main

pytestmark = pytest.mark.lab

RULES = Path(__file__).parent.parent / "deploy" / "prometheus" / "regtui-rules.yml"
#: promtool's evaluation interval in the generated unit tests.
INTERVAL = "5m"


@dataclass(frozen=True)
class Node:
    """One checked lab host: its textfile, exit status and the series in it."""

    name: str
    image: str
    rc: int
    textfile: Path
    text: str

    def values(self, metric: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample of ``metric``."""
        return [(dict(s.labels), s.value) for fam in text_string_to_metric_families(self.text)
                for s in fam.samples if s.name == metric]

    @property
    def checked_at(self) -> float:
        """The check's Unix time (regtui_check_timestamp_seconds)."""
        ((_, stamp),) = self.values("regtui_check_timestamp_seconds")
        return stamp


def node_root(base: Path, hostname: str, registry_name: str, server: str, ntp_port: int, *,
              server_ca: Path | None = None, mirrors: list[dict[str, Any]] | None = None,
              proxy_port: int | None = None) -> Path:
    """A containerd host for ``registry_name`` with chrony pointed at the lab NTP server on ``ntp_port``."""
    root = base / hostname
    containerd_root(root, registry_name, server=server, server_ca=server_ca, mirrors=mirrors or [], hosts=HOSTS)
    files = {"/etc/hostname": f"{hostname}\n",
             "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n",
             "/etc/chrony/chrony.conf": f"server 127.0.0.1 port {ntp_port} iburst\n",
             "/lib/systemd/system/chrony.service": "[Service]\nExecStart=/usr/sbin/chronyd\n"}
    if proxy_port is not None:
        files["/etc/systemd/system/containerd.service.d/http-proxy.conf"] = (
            f'[Service]\nEnvironment="HTTPS_PROXY=http://127.0.0.1:{proxy_port}"\n')
    return write_root(root, files, hosts=HOSTS)


def run_check(root: Path, image: str, textfile_dir: Path) -> Node:
    """``regtui check --format prometheus --output DIR/regtui.prom`` on the root, as the systemd unit runs it."""
    textfile_dir.mkdir(parents=True)
    out = textfile_dir / "regtui.prom"
    rc = main(["check", *cli_args(root, image, "containerd"), "--format", "prometheus", "--output", str(out)])
    return Node(root.name, image, rc, out, out.read_text())


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, registry_tls: Registry, lab_image: OciImage, lab_pki: LabPKI,
          chrony: Chrony, chrony_ahead: Chrony) -> Iterator[dict[str, Node]]:
    """Real checks of seven lab hosts (plus the slow host's baseline), by host name."""
    base = tmp_path_factory.mktemp("fleet")
    roots, out = base / "roots", base / "textfiles"
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    server, ca = f"https://{name}", registry_tls.ca_file
    dead = closed_port()
    nodes: dict[str, Node] = {}
    with contextlib.ExitStack() as stack:
        cases = {
            "node-good": dict(server_ca=ca),
            "node-proxy": dict(server_ca=ca, proxy_port=dead),
            "node-ca": dict(),
            "node-mirror": dict(server_ca=ca, mirrors=[{"url": f"http://127.0.0.1:{dead}"}]),
        }
        for host, kwargs in cases.items():
            root = node_root(roots, host, name, server, chrony.port, **kwargs)
            nodes[host] = run_check(root, image, out / host)
        root = node_root(roots, "node-clock", name, server, chrony_ahead.port, server_ca=ca)
        nodes["node-clock"] = run_check(root, image, out / "node-clock")

        soon = lab_pki.issue(base / "pki-soon", not_after=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7))
        expiring = stack.enter_context(Registry(base / "registry-soon", tls=soon))
        push(lab_image, expiring, LAB_REPO)
        root = node_root(roots, "node-cert", lab_name(expiring), f"https://{lab_name(expiring)}", chrony.port,
                         server_ca=expiring.ca_file)
        nodes["node-cert"] = run_check(root, lab_image_ref(expiring), out / "node-cert")

        slow = FakeRegistry(lab_image.layout_dir).start()
        stack.callback(slow.stop)
        root = node_root(roots, "node-slow", slow.host_port, slow.url, chrony.port)
        slow_image = f"{slow.host_port}/{LAB_REPO}:latest"
        nodes["node-slow-before"] = run_check(root, slow_image, out / "node-slow-before")
        slow.faults.delay = 0.5  # every answer half a second late: the same pull, much slower
        nodes["node-slow"] = run_check(root, slow_image, out / "node-slow")
        yield nodes


def pull_ok(node: Node) -> tuple[str, float]:
    """(cause, value) of the host's only regtui_pull_ok series."""
    ((labels, value),) = node.values("regtui_pull_ok")
    return labels["cause"], value


def test_lab_checks_produce_the_cases_the_rules_judge(fleet: dict[str, Node]) -> None:
    """The real checks give what each case needs: verdicts, causes, mirror down, 7-day cert, clock +600 s, slow pull."""
    assert pull_ok(fleet["node-good"]) == ("", 1.0) and fleet["node-good"].rc == 0
    assert pull_ok(fleet["node-proxy"]) == ("proxy.unreachable", 0.0)
    assert pull_ok(fleet["node-ca"]) == ("tls.unknown-authority", 0.0)
    assert pull_ok(fleet["node-mirror"])[1] == 1.0, "the upstream serves the pull when the mirror is down"
    assert [v for lb, v in fleet["node-mirror"].values("regtui_endpoint_up") if lb["role"] == "mirror"] == [0.0]
    ((_, expiry),) = fleet["node-cert"].values("regtui_cert_expiry_timestamp_seconds")
    assert 6 * 86400 < expiry - fleet["node-cert"].checked_at < 8 * 86400
    ((_, offset),) = fleet["node-clock"].values("regtui_clock_offset_seconds")
    assert abs(offset) > 500
    ((_, good_offset),) = fleet["node-good"].values("regtui_clock_offset_seconds")
    assert abs(good_offset) < 1
    ((_, before),) = fleet["node-slow-before"].values("regtui_pull_seconds")
    ((_, after),) = fleet["node-slow"].values("regtui_pull_seconds")
    assert after > 2 * before and after - before > 1, (before, after)


# -- promtool test rules ------------------------------------------------------------------------------
def scraped(node: Node, instance: str, steps: int) -> list[dict[str, str]]:
    """The host's textfile as promtool input series, as a scrape of ``instance`` would store them."""
    return input_series(node.text, {"instance": instance, "job": "node"}, steps=steps, rebase=node.checked_at)


def alert(labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    """One expected alert of promtool's ``exp_alerts`` (labels include the rule's own; annotations expanded)."""
    return {"exp_labels": labels, "exp_annotations": annotations}


def humanize_duration(seconds: float) -> str:
    """Prometheus's ``humanizeDuration`` template function, for durations of a minute or more."""
    whole = int(seconds)
    days, hours, minutes, secs = whole // 86400, whole // 3600 % 24, whole // 60 % 60, whole % 60
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s"


def fleet_test(fleet: dict[str, Node]) -> dict[str, Any]:
    """One promtool test group: every host checked at t=0, its textfile scraped unchanged for 2 h."""
    steps = 24  # 2 h of 5 min samples
    series: list[dict[str, str]] = []
    for host in ("node-good", "node-proxy", "node-ca", "node-mirror", "node-clock", "node-cert"):
        series += scraped(fleet[host], host, steps)
    good, proxy, ca = fleet["node-good"], fleet["node-proxy"], fleet["node-ca"]
    mirror_url = next(lb["url"] for lb, _ in fleet["node-mirror"].values("regtui_endpoint_up") if lb["role"] == "mirror")
    ((cert_labels, _),) = fleet["node-cert"].values("regtui_cert_expiry_timestamp_seconds")
    base = {"job": "node", "runtime": "containerd"}

    def cannot_pull(node: Node, cause: str) -> dict[str, Any]:
        labels = {**base, "alertname": "RegtuiCannotPull", "severity": "critical", "instance": node.name,
                  "image": node.image, "status": "fails", "cause": cause}
        return alert(labels, {
            "summary": f"{node.name}: containerd cannot pull {node.image}",
            "description": f"regtui verdict on {node.name}: containerd cannot pull {node.image}, cause {cause}. "
                           f"Run `regtui check --image {node.image}` on the node for the evidence and the fix."})

    def stale(host: str) -> dict[str, Any]:
        return alert({"job": "node", "alertname": "RegtuiCheckStale", "severity": "warning", "instance": host}, {
            "summary": f"{host}: regtui has not checked for over an hour",
            "description": f"The last regtui check on {host} ran 1h 15m 0s ago: see "
                           "`systemctl status regtui-textfile.timer regtui-textfile.service`."})

    ((_, offset),) = fleet["node-clock"].values("regtui_clock_offset_seconds")
    cert = fleet["node-cert"]
    ((_, expiry),) = cert.values("regtui_cert_expiry_timestamp_seconds")
    host = cert_labels["host"]
    alerts = [
        # Not yet: 10 minutes of `for`, the first sample at 0.
        {"eval_time": "5m", "alertname": "RegtuiCannotPull", "exp_alerts": []},
        {"eval_time": "15m", "alertname": "RegtuiCannotPull",
         "exp_alerts": [cannot_pull(ca, "tls.unknown-authority"), cannot_pull(proxy, "proxy.unreachable")]},
        {"eval_time": "20m", "alertname": "RegtuiMirrorDown", "exp_alerts": [alert({
            **base, "alertname": "RegtuiMirrorDown", "severity": "warning", "instance": "node-mirror",
            "role": "mirror", "url": mirror_url}, {
            "summary": f"node-mirror: mirror {mirror_url} is down",
            "description": f"containerd on node-mirror has mirror {mirror_url} configured and it did not answer; "
                           "pulls fall back to the next endpoint or fail."})]},
        {"eval_time": "15m", "alertname": "RegtuiClockOffset", "exp_alerts": [alert({
            "job": "node", "alertname": "RegtuiClockOffset", "severity": "warning", "instance": "node-clock"}, {
            "summary": "node-clock: clock off by more than 1 s",
            "description": f"The clock of node-clock is {abs(offset):.1f} s away from the reference (NTP or "
                           "registry Date headers): TLS and token validity checks can fail."})]},
        {"eval_time": "65m", "alertname": "RegtuiCertificateExpiresSoon", "exp_alerts": [alert({
            "alertname": "RegtuiCertificateExpiresSoon", "severity": "warning", "host": host}, {
            "summary": f"Registry {host}: TLS certificate expires within 14 days",
            "description": f"The leaf certificate of {host} expires in "
                           f"{humanize_duration(expiry - cert.checked_at - 65 * 60)} (as regtui saw it from the nodes)."
        })]},
        # The good host's certificate (30 days) is not in it; nothing is stale yet at 65 min (for: 10m).
        {"eval_time": "65m", "alertname": "RegtuiCheckStale", "exp_alerts": []},
        # The file never changed: at 75 minutes every host's check is over an hour old.
        {"eval_time": "75m", "alertname": "RegtuiCheckStale", "exp_alerts": [
            stale(h) for h in ("node-ca", "node-cert", "node-clock", "node-good", "node-mirror", "node-proxy")]},
        {"eval_time": "2h", "alertname": "RegtuiPullSlow", "exp_alerts": []},
    ]
    exprs = [
        {"eval_time": "15m", "expr": "regtui:nodes_cannot_pull:count_by_cause", "exp_samples": [
            {"labels": series_literal("regtui:nodes_cannot_pull:count_by_cause", {"cause": "proxy.unreachable"}),
             "value": 1},
            {"labels": series_literal("regtui:nodes_cannot_pull:count_by_cause", {"cause": "tls.unknown-authority"}),
             "value": 1}]},
        {"eval_time": "15m", "expr": "regtui:nodes_checked:count",
         "exp_samples": [{"labels": "regtui:nodes_checked:count", "value": 6}]},
        {"eval_time": "15m", "expr": 'regtui:nodes_with_finding:count_by_code{code="tls.unknown-authority"}',
         "exp_samples": [{"labels": series_literal("regtui:nodes_with_finding:count_by_code",
                                                   {"code": "tls.unknown-authority", "severity": "error"}),
                          "value": 1}]},
    ]
    return {"interval": INTERVAL, "input_series": series, "alert_rule_test": alerts, "promql_expr_test": exprs}


def fresh_checks_test(fleet: dict[str, Node]) -> dict[str, Any]:
    """A timer that keeps running: the check timestamp advances with the clock, so nothing is stale at 3 h."""
    good = fleet["node-good"]
    series = [s for s in scraped(good, "node-good", 36) if not s["series"].startswith("regtui_check_timestamp_seconds")]
    # A new check every 15 minutes (three samples): the value steps 0, 0, 0, 900, 900, 900, ...
    steps = " ".join(str(900 * (i // 3)) for i in range(37))
    series.append({"series": series_literal("regtui_check_timestamp_seconds", {"instance": "node-good", "job": "node"}),
                   "values": steps})
    return {"interval": INTERVAL, "input_series": series, "alert_rule_test": [
        {"eval_time": "3h", "alertname": "RegtuiCheckStale", "exp_alerts": []},
        {"eval_time": "3h", "alertname": "RegtuiCannotPull", "exp_alerts": []},
        {"eval_time": "3h", "alertname": "RegtuiClockOffset", "exp_alerts": []},
        {"eval_time": "3h", "alertname": "RegtuiMirrorDown", "exp_alerts": []},
        {"eval_time": "3h", "alertname": "RegtuiCertificateExpiresSoon", "exp_alerts": []}]}


def slow_pull_test(fleet: dict[str, Node]) -> dict[str, Any]:
    """The slow host: 3 h of its fast pull, then the slow one; the alert fires after 20 minutes of it."""
    before, after = fleet["node-slow-before"], fleet["node-slow"]
    ((labels, fast),) = before.values("regtui_pull_seconds")
    ((_, slow),) = after.values("regtui_pull_seconds")
    name = series_literal("regtui_pull_seconds", {**labels, "instance": "node-slow", "job": "node"})
    series = [{"series": name, "values": f"{fast!r}x35 {slow!r}x12"}]  # 0..175 min fast, 180..240 min slow
    expected = {"alertname": "RegtuiPullSlow", "severity": "warning", "instance": "node-slow", "job": "node", **labels}
    return {"interval": INTERVAL, "input_series": series, "alert_rule_test": [
        {"eval_time": "175m", "alertname": "RegtuiPullSlow", "exp_alerts": []},
        {"eval_time": "190m", "alertname": "RegtuiPullSlow", "exp_alerts": []},  # pending: 10 of the 20 minutes
        {"eval_time": "205m", "alertname": "RegtuiPullSlow", "exp_alerts": [alert(expected, {
            "summary": f"node-slow: pulling {labels['image']} got slower",
            "description": f"The test pull of {labels['image']} by containerd on node-slow took {slow:.1f} s, "
                           "more than twice its median of the previous day."})]}]}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run promtool with a timeout."""
    return subprocess.run([require_binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_rules_pass_promtool_check() -> None:
    """promtool accepts the shipped rules file (syntax, PromQL, templates)."""
    result = promtool("check", "rules", str(RULES), cwd=RULES.parent)
    assert result.returncode == 0 and "SUCCESS: 11 rules found" in result.stdout, result.stdout + result.stderr


def test_promtool_unit_tests_on_real_textfiles(fleet: dict[str, Node], tmp_path: Path) -> None:
    """promtool test rules, fed the lab hosts' textfiles: each alert fires for its broken host only, and on time."""
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
             "tests": [fleet_test(fleet), fresh_checks_test(fleet), slow_pull_test(fleet)]}
    path = tmp_path / "regtui-rules.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_test_catches_a_wrong_expectation(fleet: dict[str, Node], tmp_path: Path) -> None:
    """The generated tests can fail: claiming the good host cannot pull makes promtool report the mismatch."""
    group = fleet_test(fleet)
    wrong = {"eval_time": "15m", "alertname": "RegtuiCannotPull", "exp_alerts": [alert({
        "alertname": "RegtuiCannotPull", "severity": "critical", "instance": "node-good", "job": "node"}, {})]}
    group["alert_rule_test"] = [wrong]
    path = tmp_path / "wrong.test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "tests": [group]}, sort_keys=False))
    result = promtool("test", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 1 and "node-proxy" in result.stdout + result.stderr


# -- end to end: node_exporter + prometheus ------------------------------------------------------------
def firing(prom: Prometheus, name: str) -> list[dict[str, Any]]:
    """The firing alerts called ``name``."""
    return [a for a in prom.alerts() if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_prometheus_fires_for_the_broken_node_only(fleet: dict[str, Node], tmp_path: Path) -> None:
    """node_exporter serves each host's textfile, prometheus scrapes both: the pull alert fires for the broken host only."""
    rules = rules_for_test(RULES, tmp_path / "rules-fast.yml")
    exporters: dict[str, NodeExporter] = {}
    with contextlib.ExitStack() as stack:
        for host in ("node-proxy", "node-good"):
            exporters[host] = stack.enter_context(NodeExporter(tmp_path / host, fleet[host].textfile.parent))
        assert "regtui_pull_ok{" in exporters["node-proxy"].metrics()
        prom = stack.enter_context(Prometheus(tmp_path / "prometheus", {h: e.address for h, e in exporters.items()},
                                              [rules]))
        deadline = time.monotonic() + 60
        alerts: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            alerts = firing(prom, "RegtuiCannotPull")
            if alerts:
                break
            time.sleep(0.5)
        assert [a["labels"]["instance"] for a in alerts] == ["node-proxy"], prom.alerts()
        (fired,) = alerts
        assert fired["labels"]["cause"] == "proxy.unreachable"
        assert "cause proxy.unreachable" in fired["annotations"]["description"]
        # Both hosts are scraped and evaluated: the good one is up, checked, and silent. Prometheus
        # scrapes each target on its own clock, so the good host's first sample may come a moment
        # after the broken host's alert.
        up: dict[str, str] = {}
        while time.monotonic() < deadline:
            up = {r["metric"]["instance"]: r["value"][1] for r in prom.query("regtui_pull_ok")}
            if len(up) == 2:
                break
            time.sleep(0.5)
        assert up == {"node-proxy": "0", "node-good": "1"}
        assert not [a for a in prom.alerts() if a["labels"].get("instance") == "node-good"]
