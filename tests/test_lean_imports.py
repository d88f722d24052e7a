"""`regtui pull` loads only what the pull uses: no workbench, fixes, report writers, other runtimes or trio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.fixtures import LAB_REPO, LAB_TAG
from lab.images import OciImage
from lab.pullroots import containerd_root
from lab.registry import Registry

#: Module prefixes a pull as containerd never needs (a prefix matches the module and its submodules).
#: ``trio`` itself is listed by importtime even when its import is refused, so its core stands for it.
NOT_FOR_A_PULL = (
    "textual", "rich", "regtui.tui", "regtui.fixes", "regtui.probes", "regtui.checks.tls", "regtui.checks.dns",
    "regtui.checks.clock", "regtui.checks.mirrors", "regtui.report.html", "regtui.report.markdown",
    "regtui.report.prometheus", "regtui.report.merge", "dns", "cryptography", "OpenSSL", "trio._core",
    "prometheus_client", "tomlkit",
    # Other runtimes' readers and planners (``--runtime auto`` loads only their detection modules).
    "regtui.runtimes.docker.runtime", "regtui.runtimes.docker.daemon", "regtui.runtimes.docker.routes",
    "regtui.runtimes.docker.model", "regtui.runtimes.docker.cliconfig",
    "regtui.runtimes.crio.view", "regtui.runtimes.crio.config", "regtui.runtimes.crio.routes",
    "regtui.runtimes.k3s.loading", "regtui.runtimes.k3s.routes",
    # The pasted-error explainer (the runtimes' logs hold no pull error here), the k3s service and YAML
    # readers (no k3s, no kubelet config file), and stdlib modules a pull of two small layers never calls.
    "regtui.explain", "regtui.config.k3sservice", "regtui.config._yaml", "regtui.config.yamlscan",
    "platform", "statistics",
)

#: A pull with ``--runtime containerd`` does not even detect the other runtimes.
NOT_FOR_A_CONTAINERD_PULL = NOT_FOR_A_PULL + ("regtui.runtimes.docker", "regtui.runtimes.crio", "regtui.runtimes.k3s")

#: ``check`` of a containerd root probes and pulls, but reads no other runtime, k3s, YAML or logged error.
NOT_FOR_A_CONTAINERD_CHECK = (
    "textual", "rich", "regtui.tui", "regtui.report.html", "regtui.report.markdown", "regtui.report.prometheus",
    "regtui.report.merge", "trio._core", "tomlkit", "regtui.runtimes.docker", "regtui.runtimes.crio",
    "regtui.runtimes.k3s", "regtui.explain", "regtui.config.k3sservice", "regtui.config._yaml",
    "regtui.config.yamlscan", "platform",
)

#: What ``--help`` needs is argparse: not even the network stack or the engine.
NOT_FOR_HELP = NOT_FOR_A_CONTAINERD_PULL + ("httpx", "httpcore", "regtui.engine", "regtui.runtimes", "regtui.registry", "asyncio")


CHECKOUT = str(Path(__file__).resolve().parent.parent)


#: Runs ``python -m regtui`` and, at exit, lists every loaded module on stderr: importtime does not
#: see modules loaded through ``importlib.import_module`` (the engine loads runtimes that way).
_RUN_AND_LIST = ("import atexit, runpy, sys\n"
                 "atexit.register(lambda: sys.stderr.write(''.join(f'loaded: {n}\\n' for n, m in list(sys.modules.items())"
                 " if m is not None)))\n"
                 "runpy.run_module('regtui', run_name='__main__', alter_sys=True)\n")


def imported(*args: str, cwd: Path) -> tuple[int, set[str], str]:
    """Run ``python -X importtime -m regtui ARGS``; return its exit status, the modules it imported, its stdout."""
    # The checkout under test, whatever is installed: the child runs outside it (cwd) so nothing else shadows it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [CHECKOUT, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", _RUN_AND_LIST, *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    names |= {line.removeprefix("loaded: ") for line in done.stderr.splitlines() if line.startswith("loaded: ")}
    names.discard("package")  # the header line
    return done.returncode, names, done.stdout


def offenders(names: set[str], prefixes: tuple[str, ...]) -> list[str]:
    """The modules of ``names`` that are, or are under, one of ``prefixes``."""
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


def test_pull_help_imports_only_the_parser(tmp_path: Path) -> None:
    """`regtui pull --help` prints its usage without loading the engine, the runtimes or httpx."""
    code, names, out = imported("pull", "--help", cwd=tmp_path)
    assert code == 0 and "usage: regtui pull" in out
    assert "regtui.cli" in names and "argparse" in names
    assert offenders(names, NOT_FOR_HELP) == []


@pytest.mark.lab
@pytest.mark.parametrize(("runtime", "not_loaded"), [("containerd", NOT_FOR_A_CONTAINERD_PULL), ("auto", NOT_FOR_A_PULL)])
def test_containerd_pull_imports_only_what_it_uses(tmp_path: Path, registry_tls: Registry, lab_image: OciImage,
                                                   runtime: str, not_loaded: tuple[str, ...]) -> None:
    """A real pull on a containerd host loads httpx and containerd's reader, no other runtime's reader, no trio."""
    root = tmp_path / "root"
    containerd_root(root, registry_tls.host_port, server=registry_tls.url, server_ca=registry_tls.ca_file)
    ref = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    code, names, out = imported("pull", ref, "--root", str(root), "--runtime", runtime, cwd=tmp_path)
    assert code == 0, out
    assert "result: ok" in out
    assert {"httpx", "regtui.registry.pull", "regtui.runtimes.containerd.service"} <= names
    assert offenders(names, not_loaded) == []


@pytest.mark.lab
def test_containerd_check_imports_only_what_it_uses(tmp_path: Path, registry_tls: Registry, lab_image: OciImage) -> None:
    """`regtui check` of a containerd root probes and pulls without loading other runtimes, k3s, YAML or the explainer."""
    root = tmp_path / "root"
    containerd_root(root, registry_tls.host_port, server=registry_tls.url, server_ca=registry_tls.ca_file)
    ref = f"{registry_tls.host_port}/{LAB_REPO}:{LAB_TAG}"
    code, names, out = imported("check", "--image", ref, "--root", str(root), "--runtime", "containerd",
                                "--format", "json", cwd=tmp_path)
    assert code in (0, 1), out
    assert json.loads(out)["pull"]["ok"] is True
    assert {"httpx", "regtui.registry.pull", "regtui.probes", "regtui.runtimes.containerd.service",
            "regtui.config.kubelet", "regtui.runtimelog"} <= names
    assert offenders(names, NOT_FOR_A_CONTAINERD_CHECK) == []
