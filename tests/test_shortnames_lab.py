"""Short names against podman 4.3 as referee: the candidates regtui plans are the ones podman pulls from.

Three loopback registries: A (first search registry) lacks ``lab/app``, B (second) has it, C
is the target of an alias. podman runs with ``CONTAINERS_REGISTRIES_CONF`` on the very file
regtui reads from the fake root, isolated storage (vfs under tmp) and no TTY; regtui runs the
whole check (probes, test pull, verdict) and must name the endpoint and digest podman pulled,
or fail where podman fails.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.fixtures import LAB_REPO
from lab.images import OciImage, push
from lab.procs import need_binary, run
from lab.pullroots import write_root
from lab.registry import Registry
from lab.verdicts import check, verdict
from regtui.cli import main
from regtui.report import render

pytestmark = pytest.mark.lab

SYSTEM = "/etc/containers/registries.conf"


def podman_pull(workdir: Path, conf: Path, image: str) -> tuple[int, str, dict[str, str]]:
    """``podman pull`` on ``conf`` without a TTY, storage under ``workdir``: (status, stderr, name -> digest)."""
    workdir.mkdir(parents=True, exist_ok=True)
    policy = workdir / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
    with tempfile.TemporaryDirectory(prefix="podman-run") as runroot:  # podman wants a runroot under 50 chars
        return _podman_pull(workdir, Path(runroot), policy, conf, image)


def _podman_pull(workdir: Path, runroot: Path, policy: Path, conf: Path, image: str) -> tuple[int, str, dict[str, str]]:
    storage = workdir / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{runroot}"\ngraphroot = "{workdir / "root"}"\n')
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir),
           "XDG_RUNTIME_DIR": str(workdir / "xdg"), "CONTAINERS_REGISTRIES_CONF": str(conf),
           "CONTAINERS_CONF": "/dev/null", "CONTAINERS_STORAGE_CONF": str(storage),
           "REGISTRY_AUTH_FILE": str(workdir / "auth.json")}
    (workdir / "auth.json").write_text('{"auths": {}}\n')
    (workdir / "xdg").mkdir(exist_ok=True)
    base = [need_binary("podman"), "--root", str(workdir / "root"), "--runroot", str(runroot),
            "--storage-driver", "vfs"]
    pulled = run([*base, "pull", "--signature-policy", str(policy), image], timeout=120, env=env)
    listed = run([*base, "images", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}"], timeout=60, env=env)
    names = dict(line.split(" ", 1) for line in listed.stdout.splitlines() if " " in line)
    return pulled.returncode, pulled.stderr, names


@pytest.fixture
def three(registry_factory: Callable[..., Registry], registry_plain: Registry, lab_image: OciImage,
          image_factory: Callable[..., OciImage]) -> dict[str, Any]:
    """A (empty but for a decoy "aliased"), B (registry_plain: lab/app) and C (the alias target)."""
    a, c = registry_factory(), registry_factory()
    decoy, target = image_factory(seed=41), image_factory(seed=42)
    push(decoy, a, "aliased")
    push(target, c, "other/app")
    return {"a": a, "b": registry_plain, "c": c, "lab": lab_image, "decoy": decoy, "target": target}


def _conf(three: dict[str, Any], mode: str) -> str:
    a, b, c = (three[k].host_port for k in "abc")
    lines = [f'unqualified-search-registries = ["{a}", "{b}"]', f'short-name-mode = "{mode}"', "",
             "[aliases]", f'"aliased" = "{c}/other/app"']
    for host in (a, b, c):
        lines += ["", "[[registry]]", f'location = "{host}"', "insecure = true"]
    return "\n".join(lines) + "\n"


def _case(tmp_path: Path, three: dict[str, Any], mode: str, image: str) -> tuple[tuple[int, str, dict[str, str]], dict[str, Any]]:
    root = write_root(tmp_path / "root", {SYSTEM: _conf(three, mode)})
    podman = podman_pull(tmp_path / "podman", root / SYSTEM.lstrip("/"), image)
    _, data = check(root, image, runtime="crio")
    return podman, data


def test_second_search_registry_serves_like_podman(tmp_path: Path, three: dict[str, Any]) -> None:
    """permissive, A lacks lab/app: podman and regtui both pull B's lab/app, same digest."""
    (rc, err, names), data = _case(tmp_path, three, "permissive", LAB_REPO)
    b = three["b"]
    assert rc == 0, err
    assert names == {f"{b.host_port}/{LAB_REPO}:latest": three["lab"].digest}
    v = verdict(data, "crio")
    assert data["pull"]["ok"] and data["pull"]["endpoint"] == f"{b.url}/v2"
    assert v["status"] in ("ok", "degraded") and v["endpoint"] == data["pull"]["endpoint"], v
    assert data["pull"]["manifest"]["digest"] == three["lab"].digest
    hosts = [e["host"] for e in data["routes"][0]["endpoints"]]
    assert hosts == [three["a"].host_port, b.host_port]


def test_alias_wins_over_search_registries_like_podman(tmp_path: Path, three: dict[str, Any]) -> None:
    """An alias is the only candidate even when the first search registry has the short name."""
    (rc, err, names), data = _case(tmp_path, three, "enforcing", "aliased:latest")
    c = three["c"]
    assert rc == 0, err
    assert names == {f"{c.host_port}/other/app:latest": three["target"].digest}
    v = verdict(data, "crio")
    assert data["pull"]["endpoint"] == f"{c.url}/v2"
    assert v["status"] == "ok" and v["endpoint"] == data["pull"]["endpoint"], v
    assert data["pull"]["ok"] and data["pull"]["manifest"]["digest"] == three["target"].digest != three["decoy"].digest


def test_enforcing_ambiguous_short_name_fails_like_podman(tmp_path: Path, three: dict[str, Any]) -> None:
    """enforcing, two search registries, no TTY: podman refuses before any request and regtui predicts it."""
    (rc, err, names), data = _case(tmp_path, three, "enforcing", LAB_REPO)
    assert rc != 0 and "short-name resolution enforced but cannot prompt without a TTY" in err
    assert names == {}
    v = verdict(data, "crio")
    assert v["status"] == "fails", v
    cause = next(f for f in data["findings"] if f["id"] == v["cause"]["finding"])
    assert cause["code"] == "config.short-name-unresolved"
    assert cause["evidence"]["error"] in err
    assert data["routes"][0]["endpoints"] == []


def test_every_candidate_failing_lists_each_like_podman(tmp_path: Path, three: dict[str, Any]) -> None:
    """No search registry has the name: podman and regtui try both and report one error per candidate."""
    (rc, err, names), data = _case(tmp_path, three, "permissive", "missing/app:1")
    assert rc != 0 and names == {}
    a, b = three["a"].host_port, three["b"].host_port
    wanted = [f" * initializing source docker://{a}/missing/app:1: ", f" * initializing source docker://{b}/missing/app:1: "]
    podman_lines = [line for line in err.splitlines() if line.startswith(" * ")]
    ours = data["pull"]["runtime_error"].splitlines()
    assert ours[0] == "2 errors occurred while pulling:" and "Error: 2 errors occurred while pulling:" in err
    assert [line[:len(w)] for line, w in zip(ours[1:], wanted)] == wanted
    assert [line[:len(w)] for line, w in zip(podman_lines, wanted)] == wanted
    assert ours[1:] == podman_lines, (ours, err)
    assert verdict(data, "crio")["status"] == "fails"


def test_platform_missing_at_first_candidate_moves_on_like_podman(
    tmp_path: Path, registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage]
) -> None:
    """An index without this platform at A ends that candidate only: podman and regtui pull B's image."""
    a, b = registry_factory(), registry_factory()
    foreign = image_factory(seed=51, layers=1, platforms=("linux/s390x", "linux/ppc64le"))
    native = image_factory(seed=52, layers=1)
    push(foreign, a, "multi/app")
    push(native, b, "multi/app")
    text = (f'unqualified-search-registries = ["{a.host_port}", "{b.host_port}"]\n'
            + "".join(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n' for h in (a.host_port, b.host_port)))
    root = write_root(tmp_path / "root", {SYSTEM: text})
    rc, err, names = podman_pull(tmp_path / "podman", root / SYSTEM.lstrip("/"), "multi/app")
    assert rc == 0, err
    assert names == {f"{b.host_port}/multi/app:latest": native.digest}
    _, data = check(root, "multi/app", runtime="crio")
    assert data["pull"]["ok"] and data["pull"]["endpoint"] == f"{b.url}/v2"
    assert data["pull"]["manifest"]["digest"] == native.digest
    assert [(e["host"], e["kind"]) for e in data["pull"]["endpoints"]] == [(a.host_port, "platform-missing"), (b.host_port, None)]


@pytest.mark.parametrize("short", [True, False], ids=["short-name", "qualified"])
def test_insecure_plain_http_registry_is_named_as_served_over_http(
    short: bool, tmp_path: Path, registry_plain: Registry, lab_image: OciImage, capsys: pytest.CaptureFixture[str]
) -> None:
    """insecure = true on a plain-HTTP registry: podman pulls over http and every output names http://, none calls it failed."""
    b = registry_plain
    conf = f'unqualified-search-registries = ["{b.host_port}"]\n[[registry]]\nlocation = "{b.host_port}"\ninsecure = true\n'
    root = write_root(tmp_path / "root", {SYSTEM: conf})
    image = LAB_REPO if short else f"{b.host_port}/{LAB_REPO}"
    rc, err, names = podman_pull(tmp_path / "podman", root / SYSTEM.lstrip("/"), image)
    assert rc == 0 and names == {f"{b.host_port}/{LAB_REPO}:latest": lab_image.digest}, err
    served = f"http://{b.host_port}/v2"
    report, data = check(root, image, runtime="crio")
    assert data["pull"]["ok"] and data["pull"]["endpoint"] == served
    v = verdict(data, "crio")
    assert v["status"] == "ok" and v["endpoint"] == served, v
    assert v["summary"].endswith(f"from {b.host_port} over plain http."), v
    (row,) = data["routes"][0]["endpoints"]
    assert row["key"] == v["endpoint_key"] and row["status"] == "ok", row
    assert row["reason"].startswith(f"served the test pull over plain http ({served})"), row
    assert not [f for f in data["findings"] if f["severity"] == "error"], data["findings"]
    for fmt in ("text", "markdown", "html"):
        out = render(report, fmt)
        assert "over plain http" in out, (fmt, out)
        assert not [ln for ln in re.split(r"\n|<tr", out) if b.host_port in ln and "failed" in ln.lower()], (fmt, out)
    capsys.readouterr()
    assert main(["pull", image, "--root", str(root), "--runtime", "crio", "--timeout", "2"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ok ")]
    assert line.split()[1] == served and "failed" not in line, line
