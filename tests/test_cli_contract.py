"""The command-line and JSON contract of DESIGN.md, on an empty root and a misconfigured one."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import regtui
from regtui.cli import main
from regtui.findings import CATALOGUE

BUSY = Path(__file__).parent / "data" / "busy-root"
SCHEMA = json.loads((Path(regtui.__file__).parent / "report" / "schema.json").read_text())
SECRETS = ("hunter2-not-shown", "Y2ktYm90OnMzY3JldC1wYXNz", "s3cret-pass", "bm90LWJhc2U2NC1AIQ==")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _busy_json(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    rc, out, _ = _run(capsys, "check", "--offline", "--root", str(BUSY), "--runtime", "all",
                      "--image", "alpine", "--image", "registry.corp.example:5000/team/app:1.2",
                      "--format", "json", *extra)
    return rc, json.loads(out)


def test_empty_root_exits_zero_and_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty root has no findings: exit 0, and the JSON report validates against the schema."""
    rc, out, err = _run(capsys, "check", "--offline", "--root", str(tmp_path), "--format", "json")
    assert rc == 0, err
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    assert data["schema"] == "regtui.report/1" and data["findings"] == [] and data["pull"] is None


def test_busy_root_exits_one_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    """A misconfigured root has errors: exit 1; the report validates and has routes for every runtime."""
    rc, data = _busy_json(capsys)
    assert rc == 1
    jsonschema.validate(data, SCHEMA)
    assert {r["runtime"] for r in data["routes"]} == {"docker", "containerd", "crio", "k3s"}
    assert data["errors"] == []
    assert data["kubelet"]["runtime"] == "containerd"


def test_every_emitted_code_is_in_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    """Every finding code in a real report exists in the catalogue with its panel."""
    _, data = _busy_json(capsys)
    assert len(data["findings"]) >= 10
    for f in data["findings"]:
        assert f["code"] in CATALOGUE
        assert f["panel"] == CATALOGUE[f["code"]].panel


def test_every_code_in_the_source_is_in_the_catalogue() -> None:
    """Every literal code passed to finding()/fix() anywhere in regtui/ is a catalogue code."""
    root = Path(regtui.__file__).parent
    used: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("finding", "fix"):
                if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    used.add(node.args[0].value)
    assert used, "no finding() calls found"
    assert sorted(used - set(CATALOGUE)) == []


def test_findings_carry_evidence_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """Config findings point at file and line, the way an on-call engineer opens them."""
    _, data = _busy_json(capsys)
    by_code = {f["code"]: f for f in data["findings"]}
    ignored = by_code["config.ignored-key"]
    assert ignored["evidence"]["file"] == "/etc/docker/daemon.json" and ignored["evidence"]["line"] == 6
    assert by_code["config.mirrors-with-config-path"]["evidence"]["line"] == 13


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "html"])
def test_no_secret_in_any_format(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Passwords and auth blobs from config.json, config.toml and registries.yaml appear in no format."""
    rc, out, err = _run(capsys, "check", "--offline", "--root", str(BUSY), "--runtime", "all", "--image", "alpine",
                        "--format", fmt)
    assert rc == 1 and out
    for secret in SECRETS:
        assert secret not in out and secret not in err


def test_output_file_and_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--output writes the file (stdout stays empty); `report` requires --format and --output."""
    target = tmp_path / "r.md"
    rc, out, err = _run(capsys, "report", "--offline", "--root", str(BUSY), "--image", "alpine",
                        "--format", "markdown", "--output", str(target))
    assert rc == 1 and out == "" and "wrote markdown report" in err
    text = target.read_text()
    assert text.startswith("# regtui report: node-1") and "### Error (" in text and "- **`config." in text
    with pytest.raises(SystemExit) as exc:
        main(["report", "--root", str(BUSY), "--format", "json"])
    assert exc.value.code == 2


def test_usage_errors_exit_two_without_traceback(tmp_path: Path) -> None:
    """A bad reference, root or option gives one line on stderr and exit 2, never a traceback or an internal error."""
    (tmp_path / "not-a-dir").write_text("a file where pull --output wants a directory\n")
    for argv in (["check", "--offline", "--root", str(tmp_path), "--image", "Not/Valid:ref:x"],
                 ["check", "--offline", "--root", str(tmp_path / "nope")],
                 ["check", "--offline", "--root", str(tmp_path), "--timeout", "0"],
                 ["check", "--root", str(tmp_path), "--dns-server", "not-an-ip"],
                 ["check", "--root", str(tmp_path), "--ntp-server", "ntp.example:99999"],
                 ["check", "--root", str(tmp_path), "--platform", "linux/"],
                 ["pull", "alpine", "--root", str(tmp_path), "--concurrency", "0"],
                 ["check", "--offline", "--root", str(tmp_path), "--containerd-version", "banana"],
                 ["pull", "127.0.0.1:1/lab/app:1", "--root", str(tmp_path), "--timeout", "1",
                  "--output", str(tmp_path / "not-a-dir")],
                 ["fix", "--offline", "--root", str(tmp_path), "--code", "no.such-code"],
                 ["report", "--offline", "--root", str(tmp_path), "--format", "json",
                  "--output", str(tmp_path / "no" / "such" / "dir" / "r.json")]):
        p = subprocess.run([sys.executable, "-m", "regtui", *argv], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, p.stderr
        assert "Traceback" not in p.stderr and p.stderr.startswith("regtui: ")
        assert "internal error" not in p.stderr, argv
        assert len(p.stderr.strip().splitlines()) == 1


def test_text_lists_findings_before_routes(capsys: pytest.CaptureFixture[str]) -> None:
    """The text summary shows findings grouped by panel first, then the route table."""
    rc, out, _ = _run(capsys, "check", "--offline", "--root", str(BUSY), "--runtime", "docker", "--image", "alpine")
    assert rc == 1
    assert out.index("FINDINGS") < out.index("[config]") < out.index("[proxy]") < out.index("ROUTES")
    assert "https://registry-1.docker.io/v2" in out


def test_garbage_everywhere_is_findings_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Random bytes in every config file the runtimes read give parse errors, exit 1, no internal error."""
    import random

    rnd = random.Random(42)
    paths = ["etc/docker/daemon.json", "root/.docker/config.json", "etc/containerd/config.toml",
             "etc/containerd/certs.d/docker.io/hosts.toml", "etc/containers/registries.conf",
             "etc/containers/registries.conf.d/01.conf", "etc/rancher/k3s/registries.yaml",
             "etc/systemd/system/docker.service.d/x.conf", "var/lib/kubelet/config.yaml",
             "run/containers/0/auth.json"]
    for p in paths:
        target = tmp_path / p
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"{[\x00" + bytes(rnd.randrange(256) for _ in range(300)))
    rc, out, err = _run(capsys, "check", "--offline", "--root", str(tmp_path), "--runtime", "all",
                        "--image", "alpine", "--format", "json")
    data = json.loads(out)
    assert data["errors"] == [], data["errors"]
    parse_errors = {f["subject"] for f in data["findings"] if f["code"] == "config.parse-error"}
    assert {"/etc/docker/daemon.json", "/etc/containerd/config.toml", "/etc/containers/registries.conf"} <= parse_errors
    assert rc == 1


def test_fix_ids_never_carry_credentials() -> None:
    """A subject or detail holding user:pass@host is redacted before it becomes a fix id."""
    from regtui.findings import fix_id

    fid = fix_id("config.ignored-key", "/etc/rancher/k3s/registries.yaml", "https://bob:pw-secret@mirror.example")
    assert "pw-secret" not in fid and "bob" not in fid
    assert fix_id("config.ignored-key", "bob:pw-secret@mirror.example:5000").count("pw-secret") == 0
    assert fix_id("config.ignored-key", "/etc/docker/daemon.json", "registry-mirror") == \
        "config.ignored-key@etc/docker/daemon.json#registry-mirror"


def test_control_characters_never_reach_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An ESC sequence or CR inside a config value is shown escaped (\\x1b), not replayed to the terminal."""
    daemon = tmp_path / "etc/docker/daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text('{"registry-mirrors": ["mirror\\u001b[2J\\u001b]0;owned\\u0007\\r.example"]}\n')
    rc, out, err = _run(capsys, "check", "--offline", "--root", str(tmp_path), "--runtime", "docker")
    assert rc == 1 and "config.invalid-value" in out
    assert "\x1b" not in out + err and "\x07" not in out + err and "\r" not in out + err
    assert "\\x1b[2J" in out


def test_dns_server_has_one_meaning_in_readme_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """README and `check --help` both say --dns-server replaces the root's resolver (hosts file too), root shown for comparison."""
    readme = (Path(regtui.__file__).parent.parent / "README.md").read_text()
    (item,) = [b for b in readme.split("\n- ") if b.startswith("`--dns-server IP[:PORT]`")]
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    option = helptext.split("--dns-server IP[:PORT] ", 1)[1][:400]
    for text in (" ".join(item.split()), option):
        assert "instead of the root's resolver" in text and "hosts file" in text, text
        assert "comparison only" in text and "also resolve" not in text, text


def test_fix_takes_the_finding_ids_the_check_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """Every id under 'independent problems' (a finding id, not a fix id) previews its fix with `regtui fix ID`."""
    args = ("--root", str(BUSY), "--runtime", "docker", "--offline", "--image", "alpine")
    rc, out, _ = _run(capsys, "check", *args, "--format", "json")
    data = json.loads(out)
    by_id = {f["id"]: f for f in data["findings"]}
    assert data["independent_findings"]
    for finding_id in data["independent_findings"]:
        fix_id = by_id[finding_id]["fix"]["id"]
        assert fix_id != finding_id
        rc, out, err = _run(capsys, "fix", *args, finding_id)
        assert rc == 0, err
        assert out.startswith(fix_id + "\n")
