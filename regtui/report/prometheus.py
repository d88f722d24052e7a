"""Prometheus textfile writer: the check as gauges for node_exporter's textfile collector.

The metrics are built in a ``prometheus_client`` registry from the redacted report dict, so label
values are escaped by the library and no secret reaches the file. ``--output`` writes it as every
report is written (a temporary file in the same directory, then a rename), as the collector
requires: it never reads a half-written file.

Series (every one is a gauge; a check is a snapshot, not a counter):

- ``regtui_pull_ok{runtime,image,status,cause}``: the verdict; 1 when the image can be pulled
  (``ok`` or ``degraded``), 0 when it ``fails``, NaN when ``unknown`` (so ``== 0`` alerts only on
  a known failure);
- ``regtui_pull_seconds`` and ``regtui_pull_bytes{runtime,image}``: the test pull, when it ran;
- ``regtui_finding{code,severity,runtime}``: how many findings of that code;
- ``regtui_endpoint_up{runtime,role,url}``: 1 when the endpoint answered (or served the pull),
  0 when it failed; endpoints that were skipped or not tested have no series;
- ``regtui_clock_offset_seconds``: local clock minus the reference (NTP or registry ``Date``);
- ``regtui_cert_expiry_timestamp_seconds{host}``: the leaf certificate's notAfter;
- ``regtui_check_timestamp_seconds``, ``regtui_check_exit_code`` and ``regtui_check_info{...}``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from regtui.report import sections

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from regtui.report import Report

__all__ = ["registry", "render"]

#: Verdict status -> regtui_pull_ok value.
_PULL_OK = {"ok": 1.0, "degraded": 1.0, "fails": 0.0, "unknown": math.nan}


def _timestamp(text: str | None) -> float | None:
    """An ISO-8601 time (``Z`` or offset) as Unix seconds, or ``None``."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def registry(data: dict[str, Any]) -> CollectorRegistry:
    """The metrics of one report (its redacted dict) in a fresh registry."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, registry=reg)

    hostname = (data.get("host") or {}).get("hostname") or ""
    info = gauge("regtui_check_info", "The check that wrote this file (value 1).", ("hostname", "mode", "root"))
    info.labels(hostname, data.get("mode") or "", (data.get("host") or {}).get("root") or "").set(1)
    stamp = _timestamp(data.get("generated_at"))
    if stamp is not None:
        gauge("regtui_check_timestamp_seconds", "When the check ran (Unix time).").set(stamp)
    gauge("regtui_check_exit_code", "regtui check's exit status: 0 ok, 1 an error finding or a failing verdict.").set(
        (data.get("summary") or {}).get("exit_code", 0))

    pull_ok = gauge("regtui_pull_ok", "1 when the runtime can pull the image (ok or degraded), 0 when it fails, "
                    "NaN when unknown.", ("runtime", "image", "status", "cause"))
    for v in data.get("verdicts") or []:
        cause = (v.get("cause") or {}).get("code") or ""
        pull_ok.labels(v["runtime"], v["image"], v["status"], cause).set(_PULL_OK.get(v["status"], math.nan))

    pull = data.get("pull")
    if isinstance(pull, dict) and pull.get("ok"):
        labels = (pull.get("runtime") or "", pull.get("image") or "")
        gauge("regtui_pull_seconds", "Wall time of the test pull (manifest to last blob).", ("runtime", "image")).labels(
            *labels).set((pull.get("wall_ms") or 0) / 1000)
        gauge("regtui_pull_bytes", "Bytes the test pull downloaded.", ("runtime", "image")).labels(*labels).set(
            pull.get("bytes") or 0)

    counts: dict[tuple[str, str, str], int] = {}
    for f in data.get("findings") or []:
        key = (f["code"], f["severity"], f.get("runtime") or "")
        counts[key] = counts.get(key, 0) + 1
    finding = gauge("regtui_finding", "Findings of this code (0 series: none).", ("code", "severity", "runtime"))
    for key, n in sorted(counts.items()):
        finding.labels(*key).set(n)

    up: dict[tuple[str, str, str], float] = {}
    for route in data.get("routes") or []:
        for ep in route.get("endpoints") or []:
            value = {"ok": 1.0, "failed": 0.0}.get(ep.get("status"))
            if value is None:
                continue
            key = (route["runtime"], ep.get("role") or "", ep.get("url") or "")
            # One URL can be several endpoints (containerd's host entry and its server fallback): up if any served.
            up[key] = max(up.get(key, 0.0), value)
    endpoint_up = gauge("regtui_endpoint_up", "1 when the endpoint answered, 0 when it failed.", ("runtime", "role", "url"))
    for key, value in sorted(up.items()):
        endpoint_up.labels(*key).set(value)

    probes = data.get("probes") or {}
    clock = probes.get("clock") if isinstance(probes.get("clock"), dict) else {}
    if isinstance(clock.get("skew_seconds"), (int, float)):
        gauge("regtui_clock_offset_seconds", "Local clock minus the reference clock (NTP or registry Date headers).").set(
            clock["skew_seconds"])

    expiry: dict[str, float] = {}
    for row in sections.certificates(data):  # the leaf the Markdown and HTML reports show
        when = _timestamp(row["leaf"]["not_after"]) if row["host"] and row["leaf"] else None
        if when is not None:
            expiry[row["host"]] = min(expiry.get(row["host"], when), when)
    if expiry:
        cert = gauge("regtui_cert_expiry_timestamp_seconds", "notAfter of the registry's leaf certificate (Unix time).",
                     ("host",))
        for host, when in sorted(expiry.items()):
            cert.labels(host).set(when)
    return reg


def render(report: Report) -> str:
    """The report in the Prometheus text exposition format."""
    from prometheus_client import generate_latest

    return generate_latest(registry(report.to_dict())).decode("utf-8")

