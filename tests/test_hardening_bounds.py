"""Bounded cost on hostile config: junk is one finding per file, reports cap findings, deep nesting and
long import chains end in findings instead of internal errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from regtui.runtimes.containerd.config import load_config
from regtui.config.systemd import load_unit
from regtui.engine import run_check
from regtui import findings
from regtui.findings import finding
from regtui.fixes._jsonedit import JsonDoc
from regtui.fixes._model import PlanRefused
from regtui.fixes._tomledit import TomlDoc
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.report import Report
from rootfs import write_tree

IMAGE = "docker.io/library/alpine:latest"
CD_CONFIG_PATH = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                  'config_path = "/etc/containerd/certs.d"\n')


def _check(root: Path, files: dict[str, str | bytes], runtime: str = "all") -> Report:
    write_tree(root, files)
    return run_check(CheckOptions(root=str(root), images=(IMAGE,), runtime=runtime, offline=True),
                     Host.from_args(root, {}))


def _about(report: Report, path: str, code: str | None = None) -> list:
    return [f for f in report.findings if f.evidence.get("file") == path and (code is None or f.code == code)]


def _junk_lines(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 -_./:[]\"'#"
    return "\n".join("".join(rng.choices(alphabet, k=rng.randrange(1, 60))) for _ in range(n)) + "\n"


# -- junk does not multiply ------------------------------------------------------------------------

def test_junk_dropin_is_one_finding(tmp_path: Path) -> None:
    """A drop-in of 5,000 junk lines is one config.parse-error quoting the first bad lines and counting all."""
    path = "/etc/systemd/system/docker.service.d/junk.conf"
    report = _check(tmp_path, {"/etc/docker/": "", path: "[Service]\n" + "not a directive\n" * 5000})
    (f,) = _about(report, path)
    assert f.code == "config.parse-error" and f.evidence["count"] == 5000 and f.evidence["line"] == 2
    assert [b["line"] for b in f.evidence["bad_lines"]] == [2, 3, 4, 5, 6]
    assert "4999 more bad lines" in f.title
    assert not report.errors and "docker" in [r.name for r in report.runtimes]


def test_random_bytes_unit_is_one_finding(tmp_path: Path) -> None:
    """A unit file of random bytes (not UTF-8) gives one finding, whatever its size."""
    path = "/etc/systemd/system/containerd.service"
    write_tree(tmp_path, {path: random.Random(3).randbytes(200_000)})
    unit = load_unit(Host.from_args(tmp_path, {}), "containerd.service", "containerd")
    assert [f.code for f in unit.findings] == ["config.parse-error"]
    assert unit.findings[0].evidence["count"] > 100


def test_env_file_junk_is_one_finding(tmp_path: Path) -> None:
    """Junk lines in an EnvironmentFile= are one located finding that quotes none of them (they may hold secrets)."""
    env = "/etc/default/docker"
    report = _check(tmp_path, {
        "/etc/docker/": "",
        "/etc/systemd/system/docker.service.d/env.conf": f"[Service]\nEnvironmentFile={env}\n",
        env: 'OK=1\nTOKEN="s3cr3t-unbalanced\n' + "".join(f"junk line {i}\n" for i in range(3000)),
    })
    (f,) = _about(report, env)
    assert f.evidence["count"] == 3001 and f.evidence["line"] == 2
    assert all("excerpt" not in b for b in f.evidence["bad_lines"]) and "s3cr3t" not in json.dumps(f.to_dict())


def test_bad_quotes_in_directives_join_the_file_finding(tmp_path: Path) -> None:
    """Unbalanced quotes in many Environment=/ExecStart= lines stay one finding for their drop-in."""
    path = "/etc/systemd/system/containerd.service.d/q.conf"
    text = "[Service]\n" + 'Environment="A=1\n' * 400 + 'ExecStart=/usr/bin/containerd "x\n'
    write_tree(tmp_path, {path: text})
    unit = load_unit(Host.from_args(tmp_path, {}), "containerd.service", "containerd")
    (f,) = unit.findings
    assert f.evidence["count"] == 401 and f.evidence["bad_lines"][0]["line"] == 2
    assert [s.status for s in unit.files] == ["parse-error"]


def test_report_caps_findings_per_file(tmp_path: Path) -> None:
    """300 unknown daemon.json keys list MAX_PER_FILE findings and one summary counting the rest; still exit 1."""
    path = "/etc/docker/daemon.json"
    report = _check(tmp_path, {path: json.dumps({f"no-such-key-{i}": i for i in range(300)})}, runtime="docker")
    about = _about(report, path)
    (summary,) = [f for f in about if f.code == "config.findings-capped"]
    listed = [f for f in about if f.code == "config.unknown-key"]
    assert len(listed) == findings.MAX_PER_FILE
    assert summary.evidence["by_code"] == {"config.unknown-key": 300 - findings.MAX_PER_FILE}
    assert summary.severity == "error" and report.exit_code == 1
    assert not report.errors


def test_many_unknown_daemon_keys_cost_what_fifty_do(tmp_path: Path) -> None:
    """1,000 unknown daemon.json keys: fifty findings are built, each quoting dockerd's refusal abbreviated."""
    path = "/etc/docker/daemon.json"
    report = _check(tmp_path, {path: json.dumps({f"k{i}": i for i in range(1000)})}, runtime="docker")
    listed = _about(report, path, "config.unknown-key")
    (summary,) = _about(report, path, "config.findings-capped")
    assert len(listed) == findings.MAX_PER_FILE and summary.evidence["dropped"] == 1000 - findings.MAX_PER_FILE
    assert all(len(f.detail) < 1000 and len(f.evidence["error"]) < 300 for f in listed)
    assert "(990 more)" in listed[0].evidence["error"]


def test_cap_per_run_keeps_errors_first() -> None:
    """Past MAX_FINDINGS in a run, errors are kept before infos and the rest are one summary of the same severity."""
    total = findings.MAX_FINDINGS
    infos = [finding("mirror.skipped", f"m{i}", f"skipped {i}") for i in range(total)]
    errors = [finding("dns.nxdomain", f"h{i}", f"h{i} does not resolve") for i in range(20)]
    out = findings.cap(infos + errors)
    assert len(out) == total and out[-1].code == "config.findings-capped"
    assert sum(f.code == "dns.nxdomain" for f in out) == 20
    assert out[-1].evidence["dropped"] == 21 and out[-1].severity == "info"


def test_cap_leaves_small_reports_alone() -> None:
    """A report under the caps is returned as it is, in order."""
    fs = [finding("dns.nxdomain", f"h{i}", f"h{i}") for i in range(10)]
    assert findings.cap(fs) == fs


# -- containerd imports: any chain length, cycles end, containerd's order ---------------------------

def test_containerd_import_chain_of_1200_files(tmp_path: Path) -> None:
    """A 1,200-file imports chain that loops back to the main file is read whole, like containerd 1.6 does."""
    files: dict[str, str] = {}
    for i in range(1200):
        nxt = "/etc/containerd/config.toml" if i == 1199 else f"/etc/containerd/c{i + 1}.toml"
        files[f"/etc/containerd/c{i}.toml"] = f'version = 2\nimports = ["{nxt}"]\n'
    files["/etc/containerd/c1199.toml"] += ('[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                            'config_path = "/etc/containerd/deep"\n')
    files["/etc/containerd/config.toml"] = 'version = 2\nimports = ["/etc/containerd/c0.toml"]\n'
    report = _check(tmp_path, files, runtime="containerd")
    assert not report.errors and [r.name for r in report.runtimes] == ["containerd"]
    assert report.summaries["containerd"]["config_path"] == "/etc/containerd/deep"
    assert len(report.summaries["containerd"]["imports"]) == 1200


def test_containerd_imports_are_merged_breadth_first(tmp_path: Path) -> None:
    """main imports [a, b] and a imports c: containerd merges main, a, b, c, so c's value wins (config dump shows it)."""
    reg = '[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "{}"\n'
    write_tree(tmp_path, {
        "/etc/containerd/config.toml": 'version = 2\nimports = ["/etc/containerd/a.toml", "/etc/containerd/b.toml"]\n',
        "/etc/containerd/a.toml": 'version = 2\nimports = ["/etc/containerd/c.toml"]\n',
        "/etc/containerd/b.toml": "version = 2\n" + reg.format("/from-b"),
        "/etc/containerd/c.toml": "version = 2\n" + reg.format("/from-c"),
    })
    cfg = load_config(Host.from_args(tmp_path, {}))
    assert [f.path.rsplit("/", 1)[1] for f in cfg.files] == ["config.toml", "a.toml", "b.toml", "c.toml"]
    assert cfg.summary()["config_path"] == "/from-c"


# -- deep nesting: a finding that says the runtime reads the file ----------------------------------

def _deep_inline(n: int) -> str:
    return "x = " + "{a=" * n + "1" + "}" * n + "\n"


DEEP = {
    "config.toml": ("/etc/containerd/config.toml", lambda n: "version = 2\n" + _deep_inline(n), {}),
    "hosts.toml": ("/etc/containerd/certs.d/docker.io/hosts.toml", _deep_inline,
                   {"/etc/containerd/config.toml": CD_CONFIG_PATH}),
    "registries.conf": ("/etc/containers/registries.conf",
                        lambda n: "unqualified-search-registries = " + "[" * n + "]" * n + "\n", {}),
    "registries.conf.d": ("/etc/containers/registries.conf.d/deep.conf", _deep_inline, {}),
    "daemon.json": ("/etc/docker/daemon.json", lambda n: '{"registry-mirrors":' + "[" * n + "]" * n + "}", {}),
    "config.json": ("/root/.docker/config.json", lambda n: '{"auths":' + '{"a":' * n + "1" + "}" * n + "}",
                    {"/etc/docker/": ""}),
    "auth.json": ("/run/containers/0/auth.json", lambda n: '{"auths":' + '{"a":' * n + "1" + "}" * n + "}",
                  {"/etc/containers/": ""}),
    "registries.yaml": ("/etc/rancher/k3s/registries.yaml", lambda n: "mirrors: " + "[" * n + "]" * n + "\n", {}),
    "k3s config.yaml": ("/etc/rancher/k3s/config.yaml", lambda n: "a: " + "{b: " * n + "1" + "}" * n + "\n", {}),
    "kubelet config.yaml": ("/var/lib/kubelet/config.yaml",
                            lambda n: "".join(" " * i + "a:\n" for i in range(n)) + " " * n + "b\n",
                            {"/etc/containerd/": ""}),
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_nesting_regtui_does_not_follow_is_too_deep(tmp_path: Path, name: str) -> None:
    """1,000+ levels of nesting the runtime accepts give config.too-deep, never a parse error or an internal error."""
    path, make, extra = DEEP[name]
    report = _check(tmp_path, {**extra, path: make(1500)})
    assert not report.errors, report.errors
    found = [f for f in _about(report, path) if f.code != "config.permission"]  # credentials readable by others
    assert found and {f.code for f in found} == {"config.too-deep"}  # once per runtime that reads the file
    assert all("The runtime reads it" in f.detail for f in found)


@pytest.mark.parametrize("make", [
    lambda n: (TomlDoc, _deep_inline(n)),
    lambda n: (TomlDoc, "x = " + "[" * n + "]" * n + "\n"),
    lambda n: (JsonDoc, '{"a":' * n + "1" + "}" * n),
])
@pytest.mark.parametrize("depth", [1500, 20000])
def test_editors_refuse_deep_files_without_calling_them_invalid(make, depth: int) -> None:
    """The JSON and TOML editors refuse a deeply nested (valid) file with a refusal, never a RecursionError."""
    cls, text = make(depth)
    with pytest.raises(PlanRefused) as refused:
        cls(text)
    assert "not valid" not in str(refused.value) and "edit it by hand" in str(refused.value)
