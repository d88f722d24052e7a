"""``regtui pull REF``: the command line over the test pull (JSON report, text, OCI layout, exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from lab.fixtures import LAB_REPO, LAB_TAG
from lab.images import OciImage, push, skopeo_env
from lab.procs import need_binary, run
from lab.pullroots import containerd_root
from lab.registry import Registry
from regtui.cli import main

pytestmark = pytest.mark.lab

SCHEMA = json.loads((Path(__file__).parent.parent / "regtui/report/schema.json").read_text())


def regtui(*args: str) -> tuple[int, str, str]:
    """Run the real ``regtui`` command (``python -m regtui``) with a timeout."""
    done = subprocess.run([sys.executable, "-m", "regtui", *args], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def tls_root(tmp_path: Path, registry_tls: Registry, lab_image: OciImage) -> tuple[Path, str]:
    """A containerd root whose hosts.toml points at the TLS lab registry; the image reference."""
    containerd_root(tmp_path / "root", registry_tls.host_port, server=registry_tls.url, server_ca=registry_tls.ca_file)
    return tmp_path / "root", f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"


def test_json_report_validates_and_holds_the_pull(tls_root: tuple[Path, str], lab_image: OciImage) -> None:
    """`regtui pull --format json` prints a schema-valid report whose pull object has the digests; exit 0."""
    root, image = tls_root
    code, out, err = regtui("pull", image, "--root", str(root), "--runtime", "containerd", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    pull = report["pull"]
    assert pull["ok"] and pull["manifest"]["digest"] == lab_image.digest and pull["runtime"] == "containerd"
    assert [l["digest"] for l in pull["layers"]] == [b.digest for b in lab_image.layers]
    assert report["routes"][0]["runtime"] == "containerd"


def test_text_output_shows_endpoints_and_blob_timings(tls_root: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The text form lists the endpoints, the digest and one timing line per blob."""
    root, image = tls_root
    code = main(["pull", image, "--root", str(root), "--runtime", "containerd", "--concurrency", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "digest:" in out and "concurrency 2 (--concurrency)" in out and "result: ok" in out
    assert out.count("sha256:") >= 4


def test_output_dir_is_an_oci_layout_skopeo_reads(tls_root: tuple[Path, str], lab_image: OciImage, tmp_path: Path) -> None:
    """--output DIR writes a verified OCI image layout that skopeo copies (digests checked by skopeo)."""
    root, image = tls_root
    out_dir = tmp_path / "layout"
    assert main(["pull", image, "--root", str(root), "--runtime", "containerd", "--output", str(out_dir)]) == 0
    assert not list(out_dir.rglob("*.partial"))
    result = run([need_binary("skopeo"), "--policy", str(_policy(tmp_path)), "copy", "--quiet",
                  f"oci:{out_dir}:{LAB_TAG}", f"dir:{tmp_path / 'copy'}"], timeout=60, env=skopeo_env(tmp_path / "sk"))
    assert result.returncode == 0, result.stderr
    assert (out_dir / "blobs/sha256" / lab_image.layers[0].digest.split(":")[1]).is_file()


def test_nothing_written_without_output(tls_root: tuple[Path, str], tmp_path: Path) -> None:
    """Without --output the pull writes nothing under the root or the working directory."""
    root, image = tls_root
    before = sorted(p for p in root.rglob("*"))
    assert main(["pull", image, "--root", str(root), "--runtime", "containerd", "--format", "json"]) == 0
    assert sorted(p for p in root.rglob("*")) == before


def test_failed_pull_exits_1(tmp_path: Path, registry_factory: Callable[..., Registry],
                             image_factory: Callable[..., OciImage], capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupted layer makes `regtui pull` exit 1 and name the digest mismatch."""
    registry = registry_factory()
    image_obj = image_factory(seed=13)
    push(image_obj, registry, LAB_REPO)
    registry.corrupt_blob(image_obj.layers[0].digest)
    containerd_root(tmp_path / "root", registry.host_port, server=registry.url)
    code = main(["pull", f"{registry.host_port}/{LAB_REPO}:{LAB_TAG}", "--root", str(tmp_path / "root"),
                 "--runtime", "containerd"])
    out = capsys.readouterr().out
    assert code == 1
    assert "pull.digest-mismatch" in out and "FAILED" in out


@pytest.mark.parametrize("args", [["--platform", "a/b/c/d"], ["--concurrency", "0"], []])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A bad platform, a zero concurrency or an invalid reference is a usage error (exit 2), not a traceback."""
    (tmp_path / "etc").mkdir()
    ref = "Bad/Ref" if not args else "127.0.0.1:1/lab/app"
    assert main(["pull", ref, "--root", str(tmp_path), "--runtime", "containerd", *args]) == 2
    assert "Traceback" not in capsys.readouterr().err


def _policy(directory: Path) -> Path:
    """A signature policy accepting anything."""
    path = directory / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return path


def test_check_text_and_markdown_show_the_test_pull(tls_root: tuple[Path, str], lab_image: OciImage) -> None:
    """A network `regtui check` summarises the test pull in text and Markdown: outcome, endpoint, digest, blob table."""
    root, image = tls_root
    code, out, err = regtui("check", "--root", str(root), "--runtime", "containerd", "--image", image, "--timeout", "3")
    assert code == 0, out + err
    assert f"TEST PULL  {image} as containerd: ok" in out
    assert f"digest {lab_image.digest}" in out and "slowest blob sha256:" in out
    code, md, err = regtui("check", "--root", str(root), "--runtime", "containerd", "--image", image, "--timeout", "3",
                           "--format", "markdown")
    assert code == 0, err
    section = md.split("## Test pull", 1)[1]
    assert "**ok**" in section.splitlines()[2]
    assert section.count("| `sha256:") == len(lab_image.layers) + 1
