"""The container image (deploy/container/Containerfile), built by buildah and run by podman.

The base is a Debian bookworm made locally with ``debootstrap --variant=minbase`` plus python3 (the
only download a test may make besides the package index, and cached between runs under
``$REGTUI_TEST_CACHE`` or ``~/.cache/regtui-test``). The build runs without network: the context
carries a wheel directory, as the Containerfile documents for offline builds. Every engine keeps its
storage in a temporary directory (vfs driver), so the machine's own images and containers are never
touched. The image then checks fake host roots mounted read-only at /host, offline and against the
lab registry on loopback under the restrictions the Kubernetes manifests set.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from lab.fixtures import LAB_CREDENTIALS
from lab.images import OciImage
from lab.pullroots import LAB_CONTAINERD_VERSION, containerd_root, crio_root, write_root
from lab.registry import Registry
from lab.require import require_binary, require_root
from lab.verdicts import HOSTS, SCHEMA, lab_image_ref, lab_name
from regtui.cli import main

REPO = Path(__file__).parent.parent
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"
DAEMONSET = REPO / "deploy" / "kubernetes" / "daemonset.yaml"
BUSY_ROOT = Path(__file__).parent / "data" / "busy-root"

SUITE = "bookworm"  # its python3 is 3.11, the version the wheels are made for
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
PYTHON = "3.11"
IMAGE = "localhost/regtui:test"
#: podman's default rlimits (nofile 1048576) need CAP_SYS_RESOURCE, which some CI sandboxes lack.
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
#: What deploy/kubernetes asks of the container runtime: read-only image, no capabilities, no setuid.
RESTRICTED = ("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")

pytestmark = pytest.mark.lab


def cache_dir() -> Path:
    """Where the debootstrap base and the dependency wheels are kept between runs."""
    base = os.environ.get("REGTUI_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "regtui-test")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def debian_mirror() -> str:
    """The Debian mirror apt uses here (``REGTUI_TEST_DEBIAN_MIRROR`` overrides), else deb.debian.org."""
    if os.environ.get("REGTUI_TEST_DEBIAN_MIRROR"):
        return os.environ["REGTUI_TEST_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
               *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for url in re.findall(r"^(?:URIs:|deb(?:\s+\[[^\]]*\])?)\s+(\S+)", text, re.M):
            if url.rstrip("/").endswith("/debian"):
                return url
    return "http://deb.debian.org/debian"


def run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its output when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        raise AssertionError(f"{cmd[0]} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def debian_base() -> tuple[Path, str]:
    """A tar of the debootstrap root (cached under a key of every input) and that key."""
    mirror = debian_mirror()
    key = hashlib.sha256(json.dumps([SUITE, "minbase", BASE_PACKAGES, mirror, platform.machine()]).encode()
                         ).hexdigest()[:16]
    tar = cache_dir() / f"debian-{SUITE}-python3-{key}.tar"
    if tar.exists():
        return tar, key
    debootstrap = require_binary("debootstrap")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        rootfs = Path(tmp) / "rootfs"
        run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs), mirror],
            timeout=1800)
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / leftovers).glob("*"):
                if item.is_file():
                    item.unlink()
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", f"{tmp}/base.tar", "."], timeout=600)
        os.replace(f"{tmp}/base.tar", tar)
    return tar, key


def dependency_wheels() -> Path:
    """Wheels of regtui's dependencies and build backend for Python 3.11, fetched once from pip's index."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    deps = [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]
    key = hashlib.sha256(json.dumps([deps, PYTHON, platform.machine()]).encode()).hexdigest()[:16]
    target = cache_dir() / f"wheels-{key}"
    if target.is_dir():
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", PYTHON,
             "-d", f"{tmp}/wheels", *deps], timeout=900)
        os.replace(f"{tmp}/wheels", target)
    return target


@dataclass
class Engines:
    """buildah and podman on a private storage (vfs) under one temporary directory."""

    buildah_bin: str
    podman_bin: str
    storage: Path

    def _global(self) -> list[str]:
        return ["--root", str(self.storage / "root"), "--runroot", str(self.storage / "run"),
                "--storage-driver", "vfs"]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "TMPDIR": str(self.storage / "tmp")}

    def buildah(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``buildah`` on the private storage."""
        return run([self.buildah_bin, *self._global(), *args], timeout=timeout, env=self._env())

    def podman(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``podman`` on the private storage; ``check=False`` returns a failed run instead of raising."""
        cmd = [self.podman_bin, *self._global(), "--tmpdir", str(self.storage / "libpod"), *args]
        if check:
            return run(cmd, timeout=timeout, env=self._env())
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self._env())


def build_context(dest: Path) -> Path:
    """The build context: the files .dockerignore lets through, plus an offline wheel directory."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", ".dockerignore"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "regtui", dest / "regtui", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(dependency_wheels(), dest / "wheels")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index", "--find-links", str(dest / "wheels"),
         str(dest), "-w", str(dest / "wheels")], timeout=300, cwd=dest)
    shutil.rmtree(dest / "build", ignore_errors=True)
    return dest


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """The regtui image, built from the Containerfile on the local Debian base without network."""
    require_root("buildah and podman with a private storage")
    engines = Engines(require_binary("buildah"), require_binary("podman"), tmp_path_factory.mktemp("engines"))
    (engines.storage / "tmp").mkdir()
    try:
        tar, key = debian_base()
        base = f"localhost/regtui-test-base:{key}"
        engines.podman("import", str(tar), base)
        ctx = build_context(tmp_path_factory.mktemp("build") / "ctx")
        engines.buildah("bud", "--network", "none", "--build-arg", f"BASE={base}", "-f", str(CONTAINERFILE),
                        "-t", IMAGE, str(ctx))
        yield engines
    finally:
        shutil.rmtree(engines.storage, ignore_errors=True)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric name -> [(labels, value)], as prometheus_client's parser reads the textfile."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def lab_root(root: Path, registry: Registry, *, crio: bool) -> None:
    """A node that pulls from the lab registry with containerd (CA, credentials) and, if asked, fails with CRI-O (no CA)."""
    name = lab_name(registry)
    containerd_root(root, name, server=f"https://{name}", server_ca=registry.ca_file, hosts=HOSTS,
                    auths={name: LAB_CREDENTIALS})
    if crio:
        crio_root(root, name, hosts=HOSTS, auths={name: LAB_CREDENTIALS})
    write_root(root, {"/etc/hostname": "node-7\n"}, hosts=HOSTS)


def test_image_config_runs_regtui_as_root_on_host(image: Engines) -> None:
    """The image's entrypoint is regtui, its default command checks /host, and it runs as root."""
    (config,) = json.loads(image.podman("image", "inspect", IMAGE).stdout)
    assert config["Config"]["Entrypoint"] == ["regtui"]
    assert config["Config"]["Cmd"] == ["check", "--root", "/host"]
    assert config["Config"].get("User", "") in ("0", "root", "")
    version = image.podman("run", "--rm", "--network", "none", *ULIMITS, IMAGE, "--version").stdout
    assert version.strip().startswith("regtui ")


def test_offline_check_of_a_read_only_host_root_matches_the_source(
    image: Engines, capsys: pytest.CaptureFixture[str],
) -> None:
    """The image's offline JSON report on the busy root at /host (read-only) validates and carries the source's verdicts."""
    import jsonschema

    args = ["check", "--root", "/host", "--offline", "--runtime", "all", "--image", "alpine", "--format", "json"]
    done = image.podman("run", "--rm", "--network", "none", *ULIMITS, *RESTRICTED,
                        "-v", f"{BUSY_ROOT}:/host:ro", IMAGE, *args, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr == "", "stderr stays empty, so `kubectl logs` of the Job is the JSON alone"
    data = json.loads(done.stdout)
    jsonschema.validate(data, SCHEMA)
    assert data["host"] == {"root": "/host", "hostname": "node-1"}
    main([*args[:2], str(BUSY_ROOT), *args[3:]])
    local = json.loads(capsys.readouterr().out)

    def verdicts(d: dict) -> list[tuple[str, str, str | None]]:
        return [(v["runtime"], v["status"], (v.get("cause") or {}).get("code")) for v in d["verdicts"]]

    assert verdicts(data) == verdicts(local)
    assert ("docker", "fails") == verdicts(data)[0][:2]
    assert sorted(f["code"] for f in data["findings"]) == sorted(f["code"] for f in local["findings"])


def test_live_check_with_host_network_writes_the_textfile(
    image: Engines, tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage,
) -> None:
    """With the host network, no capabilities and a read-only image, a live check pulls from the lab registry and writes the textfile."""
    root = tmp_path / "root"
    lab_root(root, registry_tls_auth, crio=True)
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    done = image.podman(
        "run", "--rm", "--network", "host", *ULIMITS, *RESTRICTED,
        "-v", f"{root}:/host:ro", "-v", f"{textfile}:/textfile", IMAGE,
        "check", "--root", "/host", "--image", lab_image_ref(registry_tls_auth), "--timeout", "5",
        "--containerd-version", LAB_CONTAINERD_VERSION, "--format", "prometheus", "--output", "/textfile/regtui.prom",
        check=False)
    assert done.returncode == 1, done.stdout + done.stderr  # CRI-O fails
    assert sorted(os.listdir(textfile)) == ["regtui.prom"]
    text = (textfile / "regtui.prom").read_text()
    assert LAB_CREDENTIALS[1] not in text
    got = samples(text)
    ok = {labels["runtime"]: (labels["status"], labels["cause"], value) for labels, value in got["regtui_pull_ok"]}
    assert ok == {"containerd": ("ok", "", 1.0), "crio": ("fails", "tls.unknown-authority", 0.0)}
    (pulled,) = got["regtui_pull_bytes"]
    assert pulled[1] >= sum(b.size for b in lab_image.layers)
    assert got["regtui_check_info"][0][0]["hostname"] == "node-7"


def test_daemonset_loop_runs_in_the_image_and_ends_on_sigterm(
    image: Engines, tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage,
) -> None:
    """The DaemonSet's own command, env and mounts in the image write the textfile; SIGTERM ends the loop with status 0."""
    (container,) = yaml.safe_load(DAEMONSET.read_text())["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    env["REGTUI_IMAGE"] = lab_image_ref(registry_tls_auth)  # the pull goes to the lab registry on loopback
    root, textfile = tmp_path / "root", tmp_path / "textfile"
    lab_root(root, registry_tls_auth, crio=False)
    textfile.mkdir()
    name = f"regtui-ds-{os.getpid()}"
    try:
        image.podman(
            "run", "-d", "--name", name, "--network", "host", *ULIMITS, *RESTRICTED,
            *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
            "-v", f"{root}:/host:ro", "-v", f"{textfile}:/textfile",
            "--entrypoint", json.dumps(container["command"]), IMAGE, *container["args"])
        prom = textfile / "regtui.prom"
        deadline = time.monotonic() + 180
        while not prom.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert prom.exists(), image.podman("logs", name, check=False).stderr
        # A shell that ignored SIGTERM would be killed after the 30 s grace period, with status 137.
        image.podman("stop", "-t", "30", name, timeout=120)
        status = image.podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip()
        assert status == "0"
    finally:
        image.podman("rm", "-f", name, check=False)
    ok = {labels["runtime"]: (labels["status"], value) for labels, value in samples(prom.read_text())["regtui_pull_ok"]}
    assert ok == {"containerd": ("ok", 1.0)}


def test_workbench_starts_in_the_image_on_a_terminal(image: Engines) -> None:
    """The `kubectl debug node/... -it -- regtui --root /host` recipe: the workbench shows the host root and quits on q."""
    tmux, socket = require_binary("tmux"), f"regtui-image-{os.getpid()}"
    name = f"regtui-workbench-{os.getpid()}"

    def tmux_run(*args: str) -> str:
        return subprocess.run([tmux, "-L", socket, *args], capture_output=True, text=True, timeout=20).stdout

    podman = " ".join(shlex.quote(a) for a in [
        image.podman_bin, *image._global(), "--tmpdir", str(image.storage / "libpod"), "run", "--name", name, "-it",
        "--network", "none", *ULIMITS, *RESTRICTED, "-v", f"{BUSY_ROOT}:/host:ro", IMAGE, "--root", "/host"])
    try:
        tmux_run("new-session", "-d", "-s", "wb", "-x", "120", "-y", "35", "sleep 600")
        tmux_run("set-option", "-t", "wb", "remain-on-exit", "on")
        tmux_run("respawn-pane", "-k", "-t", "wb", podman)
        screen, deadline = "", time.monotonic() + 120
        while "node-1 /host" not in screen and time.monotonic() < deadline:
            time.sleep(0.5)
            screen = tmux_run("capture-pane", "-t", "wb", "-p")
        assert "node-1 /host" in screen and "Verdict" in screen, screen
        tmux_run("send-keys", "-t", "wb", "q")
        dead, deadline = "", time.monotonic() + 60
        while dead != "1" and time.monotonic() < deadline:
            time.sleep(0.5)
            dead = tmux_run("display-message", "-p", "-t", "wb", "#{pane_dead}").strip()
        assert dead == "1", tmux_run("capture-pane", "-t", "wb", "-p")
        # The workbench's own exit status, as the container runtime recorded it.
        status = image.podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip()
        assert status == "0", tmux_run("capture-pane", "-t", "wb", "-p")
    finally:
        subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True, timeout=20)
        image.podman("rm", "-f", name, check=False)
