"""Reading what the runtimes logged: real journal files (systemd-journal-remote), plain log fixtures, bounds, notes."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lab.journal import JournalEntry, write_journal
from regtui import engine, runtimelog
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.report import render

DATA = Path(__file__).parent / "data"
#: The plain-log fixtures' "now": their errors lie within the default 24 hours before it, one line before that.
FIXTURE_NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)

PROXY_ERROR = ('time="2026-01-01T00:00:00Z" level=error msg="PullImage \\"registry.corp.test:5000/app/web:1\\" failed" '
               'error="rpc error: code = Unknown desc = failed to pull and unpack image \\"registry.corp.test:5000/app/web:1\\": '
               'failed to resolve reference \\"registry.corp.test:5000/app/web:1\\": failed to do request: Head '
               '\\"https://registry.corp.test:5000/v2/app/web/manifests/1\\": proxyconnect tcp: dial tcp 10.0.0.5:3128: i/o timeout"')
X509_KUBELET = ('E0101 00:00:00.000000    4321 remote_image.go:180] "PullImage from image service failed" '
                'err="rpc error: code = Unknown desc = failed to pull and unpack image \\"other.corp.test/x/y:2\\": failed to '
                'resolve reference \\"other.corp.test/x/y:2\\": failed to do request: Head \\"https://other.corp.test/v2/x/y/'
                'manifests/2\\": tls: failed to verify certificate: x509: certificate signed by unknown authority" '
                'image="other.corp.test/x/y:2"')


def _fixture_root(root: Path) -> Path:
    """A root holding the plain-log fixtures where k3s, dockerd and CRI-O write their logs."""
    for name, target in (("runtimelog-k3s-containerd.log", "var/lib/rancher/k3s/agent/containerd/containerd.log"),
                         ("runtimelog-docker.log", "var/log/docker.log"), ("runtimelog-crio.log", "var/log/crio.log")):
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / name, root / target)
    return root


@pytest.mark.parametrize("line,error_start,image", [
    (PROXY_ERROR, "rpc error: code = Unknown desc = failed to pull and unpack", "registry.corp.test:5000/app/web:1"),
    (X509_KUBELET, "rpc error: code = Unknown", "other.corp.test/x/y:2"),
    ('E0101 00:00:00.1  12 kuberuntime_image.go:55] "Failed to pull image" err="rpc error: code = NotFound desc = '
     'failed to pull and unpack image \\"a.test/b:c\\": a.test/b:c: not found" image="a.test/b:c"', "rpc error: code = NotFound", "a.test/b:c"),
    ('E0601 10:00:00.000000    1234 remote_image.go:113] PullImage "a.test/b:c" from image service failed: rpc error: '
     'code = Unknown desc = Error response from daemon: manifest for a.test/b:c not found', "rpc error: code = Unknown",
     "a.test/b:c"),
    ('level=error msg="Handler for POST /v1.45/images/create returned error: Get \\"https://r.test/v2/\\": dial tcp: '
     'lookup r.test: no such host" spanID=1 traceID=2', 'Get "https://r.test/v2/": dial tcp', ""),
    ('ERRO[2025-03-05T03:31:31.956496429Z] Handler for POST /v1.48/images/create returned error: Get '
     '"https://registry-1.docker.io/v2/": tls: failed to verify certificate: x509: certificate signed by unknown authority ',
     'Get "https://registry-1.docker.io/v2/": tls', ""),
    ('level=debug msg="Error pulling image quay.io/a/b:1: reading manifest 1 in quay.io/a/b: manifest unknown" id=x',
     "reading manifest 1 in quay.io/a/b", "quay.io/a/b:1"),
])
def test_pull_error_lines_of_each_runtime_are_recognised(line: str, error_start: str, image: str) -> None:
    """containerd, kubelet (klog), dockerd (logfmt and terminal) and CRI-O pull-failure lines give the error and image."""
    found = runtimelog.pull_error(line)
    assert found is not None
    assert found[0].startswith(error_start), found
    assert found[1] == image


@pytest.mark.parametrize("line", [
    'level=info msg="PullImage \\"a.test/b:1\\""',
    'level=info msg="PullImage \\"a.test/b:1\\" returns image reference \\"sha256:00\\""',
    'level=warning msg="Error getting v2 registry: Get \\"https://r.test/v2/\\": EOF"',
    'level=info msg="trying next host" error="failed to do request: Head ..." host="m.test"',
    'I0101 00:00:00.1  12 kubelet.go:1] "Pulling image" image="a.test/b:1"',
    "", "pull pull pull", 'msg="PullImage \\"x\\" failed"',
])
def test_lines_that_are_not_a_failed_pull_are_ignored(line: str) -> None:
    """Starts, retries, successes and noise are not pull errors (a failure line without an error text neither)."""
    assert runtimelog.pull_error(line) is None


def test_journal_written_by_journal_remote_gives_the_units_pull_errors(tmp_path: Path) -> None:
    """containerd and kubelet entries in a real journal file: two distinct errors (kubelet's repeat counted), noise,
    other units and entries older than the window left out; endpoint and phase come from the shared parser."""
    root = tmp_path / "root"
    write_journal(root, [
        JournalEntry("containerd.service", PROXY_ERROR, age_seconds=3600),
        JournalEntry("containerd.service", 'level=info msg="loading plugin" id=io.containerd.grpc.v1.cri', 3500),
        JournalEntry("kubelet.service", X509_KUBELET, age_seconds=600),
        JournalEntry("kubelet.service", X509_KUBELET, age_seconds=300),
        JournalEntry("kubelet.service", 'I0101 00:00:00.1  12 kubelet.go:1] "Pulling image" image="a"', 200),
        JournalEntry("sshd.service", PROXY_ERROR.replace("corp.test", "sshd.test"), age_seconds=100),
        JournalEntry("containerd.service", PROXY_ERROR.replace("corp.test", "old.test"), age_seconds=3 * 86400),
    ])
    said = runtimelog.read(Host(root=root), kubelet_runtime="containerd")
    assert [s["status"] for s in said.sources] == ["read", "missing"], said.sources
    assert said.notes == []
    by_endpoint = {e.endpoint: e for e in said.errors}
    assert set(by_endpoint) == {"registry.corp.test:5000", "other.corp.test"}, said.to_dict()
    proxy, x509 = by_endpoint["registry.corp.test:5000"], by_endpoint["other.corp.test"]
    assert (proxy.runtime, proxy.phase, proxy.count, proxy.image) == ("containerd", "proxy", 1, "registry.corp.test:5000/app/web:1")
    assert (x509.runtime, x509.via, x509.phase, x509.count) == ("containerd", "kubelet", "tls", 2)
    assert "(kubelet.service)" in x509.source and x509.first < x509.last
    assert said.errors[0] is x509  # newest first


def test_plain_log_fixtures_are_read_from_their_tails(tmp_path: Path) -> None:
    """k3s's embedded containerd log, dockerd's and CRI-O's: one error each in the window (the older k3s one is out)."""
    root = _fixture_root(tmp_path / "root")
    said = runtimelog.read(Host(root=root, clock=lambda: FIXTURE_NOW))
    got = {(e.runtime, e.endpoint, e.phase, e.count) for e in said.errors}
    assert got == {("k3s", "registry.example.internal", "dns", 2), ("docker", "registry-1.docker.io", "connect", 1),
                   ("crio", "quay.io", "manifest", 1)}, said.to_dict()
    k3s = next(e for e in said.errors if e.runtime == "k3s")
    assert k3s.image == "registry.example.internal/team/app:2.1" and k3s.last == "2026-03-10T07:58:40Z"
    assert {s["source"] for s in said.sources if s["status"] == "read"} >= set(runtimelog.LOG_FILES) - {"/var/log/containerd.log"}
    assert "no systemd journal under this root" in said.notes[0]


def test_only_the_tail_of_a_big_log_is_read(tmp_path: Path) -> None:
    """An error before the last bytes read is not seen; the one at the end is; the cut first line is dropped."""
    root = tmp_path / "root"
    log = root / "var/log/containerd.log"
    log.parent.mkdir(parents=True)
    late = PROXY_ERROR.split(" ", 1)[1]  # no time: kept whatever the window
    early = late.replace("corp.test", "early.test")
    log.write_text(early + "\n" + ("x" * 200 + "\n") * 2000 + late + "\n")
    said = runtimelog.read(Host(root=root), tail=64 * 1024)
    assert [e.endpoint for e in said.errors] == ["registry.corp.test:5000"]
    (source,) = [s for s in said.sources if s["source"] == "/var/log/containerd.log"]
    assert source["detail"].startswith("last 65536 of ")


def test_a_root_without_journal_or_logs_gets_a_note_not_an_error(tmp_path: Path) -> None:
    """No journal and no log file: a note in the report's runtime_said, no finding, no internal error, exit 0."""
    root = tmp_path / "root"
    root.mkdir()
    report = engine.run_check(CheckOptions(root=str(root), runtime="containerd", offline=True), Host(root=root, environ={}))
    said = report.to_dict()["runtime_said"]
    assert said["errors"] == [] and any("no systemd journal" in n for n in said["notes"])
    assert report.errors == [] and report.exit_code == 0
    assert not [f for f in report.findings if f.code == "pull.logged-error"]
    assert "no systemd journal" in render(report, "markdown") and "no pull error logged" in render(report, "text")


def test_unreadable_journals_are_notes(tmp_path: Path) -> None:
    """A journal path that is a file, and a journal directory whose files journalctl cannot read, each give a note."""
    root = tmp_path / "root"
    (root / "var/log").mkdir(parents=True)
    (root / "var/log/journal").write_text("not a directory\n")
    corrupt = root / "run/log/journal/0123/system.journal"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(bytes(range(256)) * 64)
    said = runtimelog.read(Host(root=root))
    assert [s["status"] for s in said.sources] == ["unreadable", "unreadable"], said.sources
    assert any("/var/log/journal is not a directory" in n for n in said.notes), said.notes
    assert any("/run/log/journal" in n and "no entry" in n for n in said.notes), said.notes
    assert said.errors == []


def test_missing_journalctl_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journal but no journalctl on PATH: the journal is not read and a note says why; plain logs still are."""
    root = _fixture_root(tmp_path / "root")
    (root / "var/log/journal").mkdir(parents=True)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    said = runtimelog.read(Host(root=root, clock=lambda: FIXTURE_NOW))
    assert any("journalctl is not installed" in n for n in said.notes), said.notes
    assert {e.runtime for e in said.errors} == {"k3s", "docker", "crio"}


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_reading_the_logs_is_an_internal_error_with_a_traceback_under_debug(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug: bool) -> None:
    """A reader bug costs only the logs: the verdicts stand, the error is named, and --debug adds its traceback."""
    root = tmp_path / "root"
    root.mkdir()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("reader bug")

    monkeypatch.setattr(runtimelog, "read", broken)
    options = CheckOptions(root=str(root), runtime="containerd", offline=True)
    report = engine.run_check(options, Host(root=root, environ={}), debug=debug)
    (error,) = report.errors
    assert error.startswith("reading the runtimes' logs: RuntimeError: reader bug")
    assert ("Traceback (most recent call last)" in error) is debug
    assert report.to_dict()["runtime_said"] is None and report.verdicts is not None


def test_logs_since_zero_reads_nothing(tmp_path: Path) -> None:
    """--logs-since 0: the report has no runtime_said and the logs are not read."""
    root = _fixture_root(tmp_path / "root")
    options = CheckOptions(root=str(root), runtime="containerd", offline=True, logs_since_hours=0)
    report = engine.run_check(options, Host(root=root, environ={}, clock=lambda: FIXTURE_NOW))
    assert report.to_dict()["runtime_said"] is None
    assert not [f for f in report.findings if f.code == "pull.logged-error"]


def test_binary_huge_and_secret_bearing_messages_are_read_safely(tmp_path: Path) -> None:
    """A non-UTF-8 message (a byte array in journalctl's JSON), a 1 MB one and one quoting a proxy password: each pull
    error is still read, shortened, and no secret reaches the report's runtime_said."""
    root = tmp_path / "root"
    secret = PROXY_ERROR.replace("proxyconnect tcp: dial tcp 10.0.0.5:3128: i/o timeout",
                                 "proxyconnect tcp: dial tcp: lookup alice:s3cretpw@proxy.corp.test: no such host")
    secret = secret.replace("registry.corp.test:5000/v2", "registry.corp.test:5000/v2/?token=abcdef0123456789abcdef")
    write_journal(root, [
        JournalEntry("containerd.service", PROXY_ERROR.replace("corp.test", "bin.test").encode() + b" \xff\xfe", 300),
        JournalEntry("containerd.service", PROXY_ERROR.replace("corp.test", "huge.test") + " " + "z" * 1_000_000, 200),
        JournalEntry("containerd.service", secret.replace("corp.test", "sec.test"), 100),
    ])
    said = runtimelog.read(Host(root=root))
    by_endpoint = {e.endpoint: e for e in said.errors}
    assert {"registry.bin.test:5000", "registry.huge.test:5000"} <= set(by_endpoint), said.to_dict()
    assert all(len(e.error) <= 2000 for e in said.errors)
    text = json.dumps(said.to_dict())
    assert "s3cretpw" not in text and "abcdef0123456789abcdef" not in text


@pytest.mark.parametrize("body", ["z" * 262_144, "a=b " + "z" * 262_144 + "=", "ERRO[x] " + "  z" * 87_381,
                                  '"' * 262_144, "E0101 00:00:00.1 1 " + "a" * 262_144, "x " + '="' * 131_072,
                                  'level=error msg="PullImage \\"' + "z" * 262_144])
def test_hostile_lines_are_read_in_linear_time(body: str) -> None:
    """A 256 KiB line built to make a regex backtrack is answered (not a pull error) well within a generous bound."""
    import time

    start = time.monotonic()
    assert runtimelog.pull_error("pull " + body) is None
    assert time.monotonic() - start < 10, "quadratic backtracking"


def test_k3s_log_under_a_configured_data_dir_is_read(tmp_path: Path) -> None:
    """k3s with `data-dir: /srv/k3s` in its config.yaml: the embedded containerd's log there is read, as k3s's."""
    root = tmp_path / "root"
    (root / "etc/rancher/k3s").mkdir(parents=True)
    (root / "etc/rancher/k3s/config.yaml").write_text("data-dir: /srv/k3s\n")
    log = root / "srv/k3s/agent/containerd/containerd.log"
    log.parent.mkdir(parents=True)
    shutil.copyfile(DATA / "runtimelog-k3s-containerd.log", log)
    options = CheckOptions(root=str(root), runtime="k3s", offline=True)
    report = engine.run_check(options, Host(root=root, environ={}, clock=lambda: FIXTURE_NOW))
    said = report.to_dict()["runtime_said"]
    assert [(e["runtime"], e["source"], e["endpoint"]) for e in said["errors"]] == [
        ("k3s", "/srv/k3s/agent/containerd/containerd.log", "registry.example.internal")], said
    assert report.errors == []


def test_the_logs_are_read_once_per_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A report rebuilt from the same plan (the workbench does after every probe) reads the logs once and says the same."""
    root = _fixture_root(tmp_path / "root")
    host = Host(root=root, environ={}, clock=lambda: FIXTURE_NOW)
    p = engine.plan(CheckOptions(root=str(root), runtime="all", offline=True), host)
    reads: list[int] = []
    real = runtimelog.read

    def counted(*args: object, **kwargs: object) -> runtimelog.RuntimeSaid:
        reads.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runtimelog, "read", counted)
    first = engine.build_report(p, None).to_dict()
    second = engine.build_report(p, None).to_dict()
    assert len(reads) == 1
    assert first["runtime_said"]["errors"] and first["runtime_said"] == second["runtime_said"]
    assert [f["id"] for f in first["findings"]] == [f["id"] for f in second["findings"]]
