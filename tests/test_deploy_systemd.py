"""deploy/systemd: the service and timer that write regtui's textfile for node_exporter.

``systemd-analyze verify`` and ``systemd-analyze security --offline`` read the units in a scratch
root (the system's unit directory copied in, ``regtui`` at the path ExecStart names); the
ExecStart line is then run as systemd would expand it, on lab roots, with only the output path
moved to a temporary directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.images import OciImage
from lab.pullroots import containerd_root, write_root
from lab.registry import Registry
from lab.require import require_binary
from lab.verdicts import HOSTS, cli_args, lab_image_ref, lab_name

pytestmark = pytest.mark.lab

REPO = Path(__file__).parent.parent
UNITS = REPO / "deploy" / "systemd"
SERVICE, TIMER = "regtui-textfile.service", "regtui-textfile.timer"


def unit(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> values in order (a key may repeat), as systemd reads the file."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def scratch_root(base: Path, units: Path = UNITS) -> Path:
    """A root holding the system's units, ours in /etc/systemd/system and an executable where ExecStart points."""
    root = base / "sysroot"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    target = root / "etc/systemd/system"
    target.mkdir(parents=True)
    for name in (SERVICE, TIMER):
        shutil.copy(units / name, target / name)
    executable = shlex.split(unit(units / SERVICE)["Service.ExecStart"][0])[0]
    launcher = root / executable.lstrip("/")
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text("#!/bin/sh\nexit 0\n")
    launcher.chmod(0o755)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    """systemd-analyze with a timeout."""
    return subprocess.run([require_binary("systemd-analyze"), *args], capture_output=True, text=True, timeout=120)


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify loads both units without a single warning."""
    root = scratch_root(tmp_path)
    result = analyze("verify", f"--root={root}", SERVICE, TIMER)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt ProtectSystem value and an unknown key are reported."""
    broken = tmp_path / "units"
    shutil.copytree(UNITS, broken)
    service = broken / SERVICE
    service.write_text(service.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictt\nRandomKey=1"))
    result = analyze("verify", f"--root={scratch_root(tmp_path, broken)}", SERVICE, TIMER)
    assert "strictt" in result.stderr and "RandomKey" in result.stderr


def test_service_hardening_exposure_is_low(tmp_path: Path) -> None:
    """systemd-analyze security rates the service's exposure at 3.0 or less (of 10)."""
    result = analyze("security", f"--root={scratch_root(tmp_path)}", "--offline=true", "--threshold=30", SERVICE)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "Overall exposure level for regtui-textfile.service: " in result.stdout


def test_unit_settings_fit_together() -> None:
    """The output lies in the only writable path, exit 1 counts as success, and the timer runs every 15 min with jitter."""
    service, timer = unit(UNITS / SERVICE), unit(UNITS / TIMER)
    argv = shlex.split(service["Service.ExecStart"][0])
    output = Path(argv[argv.index("--output") + 1])
    assert service["Service.ReadWritePaths"] == [str(output.parent)] == ["/var/lib/prometheus/node-exporter"]
    assert service["Service.ProtectSystem"] == ["strict"] and service["Service.Type"] == ["oneshot"]
    assert "1" in service["Service.SuccessExitStatus"][0].split()
    assert argv[1:2] == ["check"] and argv[argv.index("--format") + 1] == "prometheus"
    assert timer["Timer.OnCalendar"] == ["*:0/15"] and timer["Timer.RandomizedDelaySec"] == ["5min"]


def expand(service: dict[str, list[str]], environ: dict[str, str]) -> list[str]:
    """ExecStart as systemd expands it: ``$VAR`` unbraced becomes one argument per word of the variable."""
    words: list[str] = []
    for word in shlex.split(service["Service.ExecStart"][0]):
        if word.startswith("$") and not word.startswith("${"):
            words += environ.get(word[1:], "").split()
        else:
            words.append(word)
    return words


def unit_environment(service: dict[str, list[str]], environment_file: str | None) -> dict[str, str]:
    """Environment= assignments, then the EnvironmentFile's lines (they win, as in systemd)."""
    env: dict[str, str] = {}
    for value in service.get("Service.Environment", []):
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            env[key] = val
    if environment_file:
        for line in environment_file.splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, val = line.partition("=")
                env[key.strip()] = shlex.split(val)[0] if val.strip() else ""
    return env


def run_exec_start(root: Path, image: str, output: Path) -> tuple[int, list[str]]:
    """Run the unit's ExecStart with REGTUI_ARGS from an /etc/default/regtui naming the lab root, output moved."""
    service = unit(UNITS / SERVICE)
    default_file = f'REGTUI_ARGS="{shlex.join(cli_args(root, image, "containerd"))}"\n'
    argv = expand(service, unit_environment(service, default_file))
    argv[argv.index("--output") + 1] = str(output)
    # The regtui of this checkout stands in for the installed entry point.
    command = [sys.executable, "-m", "regtui", *argv[1:]]
    umask = int(service["Service.UMask"][0], 8)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=lambda: os.umask(umask))
    assert "Traceback" not in result.stderr, result.stderr
    success = {0, *map(int, service["Service.SuccessExitStatus"][0].split())}
    assert result.returncode in success, (result.returncode, result.stderr)
    return result.returncode, argv


def test_exec_start_writes_the_textfile_on_lab_hosts(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, closed_port: int,
) -> None:
    """The unit's exact command on a good and a dead-proxy lab host: exit 0 and 1 (both success), readable textfiles promtool accepts."""
    promtool = require_binary("promtool")
    name, image = lab_name(registry_tls), lab_image_ref(registry_tls)
    results: dict[str, str] = {}
    for host, proxy in (("node-good", None), ("node-proxy", closed_port)):
        root = tmp_path / host
        containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls.ca_file, hosts=HOSTS)
        files = {"/etc/hostname": f"{host}\n",
                 "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n"}
        if proxy is not None:
            files["/etc/systemd/system/containerd.service.d/http-proxy.conf"] = (
                f'[Service]\nEnvironment="HTTPS_PROXY=http://127.0.0.1:{proxy}"\n')
        write_root(root, files, hosts=HOSTS)
        textfile_dir = tmp_path / f"textfile-{host}"
        textfile_dir.mkdir()
        out = textfile_dir / "regtui.prom"
        rc, argv = run_exec_start(root, image, out)
        assert rc == (0 if proxy is None else 1)
        assert argv[argv.index("--root") + 1] == str(root) and argv[argv.index("--image") + 1] == image
        assert os.listdir(textfile_dir) == ["regtui.prom"]
        assert out.stat().st_mode & 0o004, "node_exporter's user can read the textfile"
        with out.open("rb") as fh:
            checked = subprocess.run([promtool, "check", "metrics"], stdin=fh, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        results[host] = out.read_text()
    assert gauges(results["node-good"], "regtui_pull_ok") == [("ok", "", 1.0)]
    assert gauges(results["node-proxy"], "regtui_pull_ok") == [("fails", "proxy.unreachable", 0.0)]


def gauges(text: str, metric: str) -> list[tuple[str, str, float]]:
    """(status, cause, value) of every sample of ``metric`` in the textfile."""
    return [(s.labels["status"], s.labels["cause"], s.value) for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name == metric]


def test_default_image_is_used_without_an_environment_file(tmp_path: Path) -> None:
    """With no /etc/default/regtui, ExecStart checks the image named in the unit's Environment= default."""
    service = unit(UNITS / SERVICE)
    argv = expand(service, unit_environment(service, None))
    assert argv[:4] == ["/usr/local/bin/regtui", "check", "--image", "registry.k8s.io/pause:3.9"]
    assert argv[-4:] == ["--format", "prometheus", "--output", "/var/lib/prometheus/node-exporter/regtui.prom"]
