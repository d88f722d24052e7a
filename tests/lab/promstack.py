"""Prometheus and node_exporter on loopback, and regtui textfiles as ``promtool test rules`` input.

- :class:`NodeExporter`: Debian's ``prometheus-node-exporter`` with only the textfile collector,
  reading one directory, on ``127.0.0.1:<free port>``;
- :class:`Prometheus`: a real ``prometheus`` with a generated config (given scrape targets, rule
  files, 1 s scrape and evaluation intervals) and its TSDB in the component's directory;
  :meth:`Prometheus.alerts` reads ``/api/v1/alerts``;
- :func:`input_series`: the samples of a textfile as promtool ``input_series`` entries, with the
  labels a scrape adds and the ``*_timestamp_seconds`` values re-based so that test time 0 is the
  moment of the check (promtool evaluates from the Unix epoch);
- :func:`rules_for_test`: a copy of a rules file with every ``for:`` replaced.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from .procs import LOOPBACK, Component, free_port, need_binary

__all__ = ["NodeExporter", "Prometheus", "input_series", "series_literal", "rules_for_test", "http_json"]


def http_json(url: str, timeout: float = 3.0) -> Any:
    """GET ``url`` and decode its JSON body (a short timeout: callers poll)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL built by the lab
        return json.loads(resp.read())


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback URL built by the lab
            return resp.status == 200
    except OSError:
        return False


class NodeExporter(Component):
    """node_exporter serving only the textfile collector of ``textfile_dir``."""

    name = "node-exporter"

    def __init__(self, workdir: Path, textfile_dir: Path) -> None:
        """Read ``textfile_dir``; logs go to ``workdir``."""
        super().__init__(workdir)
        self.textfile_dir = textfile_dir
        self.port = 0

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{LOOPBACK}:{self.port}"

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        self.port = free_port()
        return [need_binary("prometheus-node-exporter"), "--collector.disable-defaults", "--collector.textfile",
                f"--collector.textfile.directory={self.textfile_dir}", f"--web.listen-address={self.address}"], None

    def _ready(self) -> bool:
        return _http_ok(f"http://{self.address}/metrics")

    def metrics(self) -> str:
        """The exposition node_exporter serves now."""
        with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=3) as resp:  # noqa: S310
            return resp.read().decode()


class Prometheus(Component):
    """prometheus scraping ``targets`` (instance name -> address) every second, evaluating ``rule_files``."""

    name = "prometheus"
    start_timeout = 60.0

    def __init__(self, workdir: Path, targets: Mapping[str, str], rule_files: Sequence[Path]) -> None:
        """Targets get their instance name as the ``instance`` label, as a fleet's relabelling would."""
        super().__init__(workdir)
        self.targets = dict(targets)
        self.rule_files = list(rule_files)
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL of the web UI and API."""
        return f"http://{LOOPBACK}:{self.port}"

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [{
                "job_name": "node",
                "static_configs": [{"targets": [address], "labels": {"instance": instance}}
                                   for instance, address in self.targets.items()],
            }],
        }
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        return [need_binary("prometheus"), f"--config.file={config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address={LOOPBACK}:{self.port}"], None

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/-/ready")

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) from ``/api/v1/alerts``."""
        body = http_json(f"{self.url}/api/v1/alerts")
        assert body["status"] == "success", body
        return body["data"]["alerts"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        body = http_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert body["status"] == "success", body
        return body["data"]["result"]


def _label_text(labels: Mapping[str, str]) -> str:
    # Go-style double-quoted strings: JSON escaping is a subset the PromQL lexer accepts.
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))


def series_literal(name: str, labels: Mapping[str, str]) -> str:
    """``name{a="x", ...}`` for promtool's ``series`` field."""
    return f"{name}{{{_label_text(labels)}}}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def input_series(text: str, extra_labels: Mapping[str, str], *, steps: int,
                 rebase: float | None = None) -> list[dict[str, str]]:
    """The textfile's samples as promtool ``input_series``, each value repeated for ``steps`` intervals.

    ``extra_labels`` are what a scrape adds (``instance``, ``job``). With ``rebase`` (the check's
    Unix time), ``*_timestamp_seconds`` values become relative to it, so promtool's clock (0 at the
    start of the test) stands for the moment the check ran.
    """
    out: list[dict[str, str]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            value = sample.value
            if rebase is not None and sample.name.endswith("_timestamp_seconds"):
                value -= rebase
            labels = {**sample.labels, **extra_labels}
            out.append({"series": series_literal(sample.name, labels), "values": f"{_number(value)}x{steps}"})
    return out


def rules_for_test(source: Path, target: Path, duration: str = "0s") -> Path:
    """Copy the rules file with every alert's ``for:`` set to ``duration`` (for a fast end-to-end test)."""
    doc = yaml.safe_load(source.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = duration
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target
