"""`regtui explain` on the command line: the reading, the check it runs, exit status, JSON, stdin, usage errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from regtui.cli import main, unknown_command
from regtui.explain import parse_pull_error
from regtui.explaincmd import choose_runtime, pick_verdict

KUBELET = ('Failed to pull image "registry.example:5000/team/app:1.2": rpc error: code = Unknown desc = failed to pull '
           'and unpack image "registry.example:5000/team/app:1.2": failed to resolve reference '
           '"registry.example:5000/team/app:1.2": failed to do request: Head '
           '"https://registry.example:5000/v2/team/app/manifests/1.2": proxyconnect tcp: dial tcp 10.0.0.5:3128: '
           'i/o timeout')


def test_offline_explain_prints_the_reading_and_says_the_check_could_not_decide(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Offline: the reading (runtime, image, endpoint, phase, causes) and an unknown verdict that does not claim to explain."""
    rc = main(["explain", "--root", str(tmp_path), "--offline", KUBELET])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "runtime:   containerd, passed on by kubelet" in out
    assert "image:     registry.example:5000/team/app:1.2" in out
    assert "endpoint:  https://registry.example:5000/v2" in out and "phase:     proxy" in out
    assert "1. proxy.unreachable" in out
    assert "What regtui finds now (containerd, registry.example:5000/team/app:1.2, offline)" in out
    assert "Explains the pasted error: no: the check could not decide" in out


def test_json_output_has_the_reading_the_verdict_and_the_report(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """--format json: schema regtui.explain/1 with parsed, verdict, explains and the whole report."""
    rc = main(["explain", "--root", str(tmp_path), "--offline", "--format", "json", KUBELET])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["schema"] == "regtui.explain/1"
    assert (data["parsed"]["phase"], data["parsed"]["host"]) == ("proxy", "registry.example:5000")
    assert data["runtime"] == "containerd" and data["image"] == "registry.example:5000/team/app:1.2"
    assert data["verdict"]["status"] == "unknown" and data["explains"]["explains"] is False
    assert data["report"]["schema"] == "regtui.report/1"


def test_text_from_stdin_and_image_override(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`-` reads the text from stdin; --image replaces the image the text names for the check."""
    monkeypatch.setattr("sys.stdin", io.StringIO(KUBELET + "\n"))
    rc = main(["explain", "--root", str(tmp_path), "--offline", "--image", "other.example/x:9", "-"])
    out = capsys.readouterr().out
    assert rc == 0 and "phase:     proxy" in out
    assert "What regtui finds now (containerd, other.example/x:9, offline)" in out


def test_text_without_an_image_reads_it_and_asks_for_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No image in the text and no --image: the reading is printed, no check runs, exit 2 with the reason."""
    rc = main(["explain", "--root", str(tmp_path), "--offline",
               'Error response from daemon: Get "https://registry-1.docker.io/v2/": EOF'])
    captured = capsys.readouterr()
    assert rc == 2 and "phase:     http  [eof]" in captured.out
    assert "What regtui finds now" not in captured.out
    assert "give --image" in captured.err


@pytest.mark.parametrize("argv,words", [
    (["explain", "   "], "the error text is empty"),
    (["explain", "--image", "a:1", "--image", "b:1", "x509: certificate signed by unknown authority"], "one --image"),
])
def test_usage_errors_exit_2(argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty text or two images is a usage error (exit 2, one line on stderr)."""
    rc = main([argv[0], "--root", str(tmp_path), *argv[1:]])
    assert rc == 2 and words in capsys.readouterr().err


def test_explain_is_a_listed_command() -> None:
    """The command list and the help name explain, and a typo of it is corrected."""
    assert "`regtui explain`" in unknown_command("explian")
    assert "explain" in unknown_command("nope")


def test_containerd_wording_on_a_k3s_host_checks_k3s() -> None:
    """containerd's wording where only k3s is detected means k3s's embedded containerd; --runtime wins over the text."""
    parsed = parse_pull_error(KUBELET)
    assert choose_runtime(parsed, "auto", ["k3s"]) == "k3s"
    assert choose_runtime(parsed, "auto", ["containerd", "k3s"]) == "containerd"
    assert choose_runtime(parsed, "crio", ["containerd"]) == "crio"
    assert choose_runtime(parse_pull_error("EOF"), "auto", ["docker"]) == "auto"


def test_pick_verdict_prefers_the_runtime_and_image_then_a_failing_one() -> None:
    """The verdict of the checked runtime and image; under auto, the first failing one."""
    vs = [{"runtime": "docker", "image": "a", "status": "ok"}, {"runtime": "crio", "image": "a", "status": "fails"}]
    assert pick_verdict(vs, "docker", "a")["runtime"] == "docker"
    assert pick_verdict(vs, "auto", "a")["runtime"] == "crio"
    assert pick_verdict(vs, "containerd", "a") is None
