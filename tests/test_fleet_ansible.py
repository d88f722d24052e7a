"""deploy/ansible: the playbook run by a real ``ansible-playbook`` against an inventory of lab hosts.

Every inventory host is this machine (``ansible_connection=local``) with its own ``regtui_root``
tree: node-a trusts the lab TLS registry, node-b and node-c send containerd through a dead proxy
(with a password in its URL), node-d trusts another CA, and node-e's root does not exist (a usage
error, exit 2, which must fail that host and no other). The merged Markdown must name the hosts
per cause; the HTML must hold no secret. A second case builds the wheel from this checkout on the
"controller" and installs it into per-host venvs through the playbook, twice: the second run
changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from lab.images import OciImage
from lab.pki import LabPKI
from lab.pullroots import LAB_CONTAINERD_VERSION, containerd_root, write_root
from lab.registry import Registry
from lab.require import require_binary, require_module
from lab.verdicts import HOSTS, lab_image_ref, lab_name

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "deploy/ansible/check.yml"
SECRET = "fleet-s3cret"
#: Bounds a whole playbook run; a run that hangs fails the test instead of the suite.
RUN_TIMEOUT = 600


def _root(base: Path, hostname: str, registry: Registry, *, ca: Path, proxy_port: int | None = None) -> Path:
    """A containerd host trusting ``ca`` for the lab registry; with ``proxy_port``, HTTPS_PROXY is that port."""
    root, name = base / hostname, lab_name(registry)
    containerd_root(root, name, server=f"https://{name}", server_ca=ca, hosts=HOSTS)
    files = {"/etc/hostname": f"{hostname}\n",
             "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n"}
    if proxy_port is not None:
        files["/etc/systemd/system/containerd.service.d/http-proxy.conf"] = (
            f'[Service]\nEnvironment="HTTPS_PROXY=http://ops:{SECRET}@127.0.0.1:{proxy_port}"\n')
    return write_root(root, files, hosts=HOSTS)


def _inventory(path: Path, hosts: dict[str, dict[str, Any]], **group_vars: Any) -> Path:
    """A YAML inventory (written as JSON, which YAML reads) of local-connection hosts in the group ``regtui``."""
    common = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    path.write_text(json.dumps({"regtui": {"hosts": hosts, "vars": {**common, **group_vars}}}, indent=2))
    return path


def _check_vars(registry: Registry, report_dir: Path) -> dict[str, Any]:
    """The check's variables for the lab: the lab image, containerd, short timeouts."""
    return {"regtui_images": [lab_image_ref(registry)], "regtui_runtime": "containerd",
            "regtui_extra_args": ["--timeout", "2", "--containerd-version", LAB_CONTAINERD_VERSION],
            "regtui_report_dir": str(report_dir)}


def _playbook(tmp: Path, inventory: Path, *args: str, pythonpath: bool) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook`` on the deploy playbook, its temp dirs under ``tmp``, no host keys, no retry files."""
    binary = require_binary("ansible-playbook")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = str(REPO)  # `python3 -m regtui` runs this checkout
    (tmp / "ansible.cfg").write_text("")
    env.update(ANSIBLE_CONFIG=str(tmp / "ansible.cfg"), ANSIBLE_HOME=str(tmp / "ansible-home"),
               ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"), ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"),
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_FORKS="5",
               ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="False")
    return subprocess.run([binary, "-i", str(inventory), str(PLAYBOOK), *args], cwd=tmp, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT, check=False)


def _recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP counters per host."""
    recap = output.rsplit("PLAY RECAP", 1)[1]
    return {m[1]: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[2])}
            for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", recap, re.M)}


def _table(md: str, heading: str) -> list[list[str]]:
    """The body rows (cell texts) of the first table after ``heading``, as markdown-it parses the document."""
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    start = next(i for i, t in enumerate(tokens) if t.type == "inline" and t.content == heading)
    rows: list[list[str]] = []
    for t in tokens[start:]:
        if t.type == "tbody_close":
            break
        if t.type == "tr_open":
            rows.append([])
        elif t.type == "inline" and rows:
            rows[-1].append(t.content)
    return rows[1:]  # the header row


def test_playbook_merges_the_fleet_and_names_the_hosts_per_cause(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, closed_port: int) -> None:
    """Five local hosts: per cause the merged Markdown names node-b, node-c (proxy) and node-d (TLS); node-e alone fails."""
    roots, other_ca = tmp_path / "roots", LabPKI("untrusted lab").write_ca(tmp_path / "other-ca")
    good = registry_tls.ca_file
    hosts = {
        "node-a": {"regtui_root": str(_root(roots, "node-a", registry_tls, ca=good))},
        "node-b": {"regtui_root": str(_root(roots, "node-b", registry_tls, ca=good, proxy_port=closed_port))},
        "node-c": {"regtui_root": str(_root(roots, "node-c", registry_tls, ca=good, proxy_port=closed_port))},
        "node-d": {"regtui_root": str(_root(roots, "node-d", registry_tls, ca=other_ca))},
        "node-e": {"regtui_root": str(roots / "no-such-root")},
    }
    out = tmp_path / "reports"
    regtui = f"{sys.executable} -m regtui"
    inventory = _inventory(tmp_path / "inventory.yml", hosts, regtui_install=False, regtui_bin=regtui,
                           regtui_controller_bin=regtui, **_check_vars(registry_tls, out))

    run = _playbook(tmp_path, inventory, pythonpath=True)
    recap = _recap(run.stdout)
    assert run.returncode == 2, run.stdout[-3000:]  # a failed host fails the play
    assert {h: recap[h]["failed"] for h in hosts} == {"node-a": 0, "node-b": 0, "node-c": 0, "node-d": 0,
                                                      "node-e": 1}, run.stdout[-3000:]
    assert "not a directory" in run.stdout and "Merge the hosts' reports" in run.stdout
    assert sorted(p.name for p in (out / "hosts").iterdir()) == [f"node-{c}.json" for c in "abcd"]
    statuses = {h: [v["status"] for v in json.loads((out / "hosts" / f"{h}.json").read_text())["verdicts"]]
                for h in ("node-a", "node-b", "node-c", "node-d")}
    assert statuses == {"node-a": ["ok"], "node-b": ["fails"], "node-c": ["fails"], "node-d": ["fails"]}

    md = (out / "fleet.md").read_text()
    assert SECRET not in md
    causes = {row[0]: row for row in _table(md, "Causes")}
    assert sorted(causes) == ["`proxy.unreachable`", "`tls.unknown-authority`"], causes
    assert causes["`proxy.unreachable`"][3] == "2: node-b, node-c"
    assert f"127.0.0.1:{closed_port}" in causes["`proxy.unreachable`"][1]
    assert causes["`tls.unknown-authority`"][3] == "1: node-d"
    matrix = {row[0]: row[1] for row in _table(md, "Host x cause")}
    assert matrix == {"node-a": "ok", "node-b": "fails", "node-c": "fails", "node-d": "fails"}

    html = (out / "fleet.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html>") and "node-b, node-c" in html
    assert SECRET not in html and "node-e" not in html


def test_playbook_installs_the_wheel_it_builds_and_a_second_run_changes_nothing(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, closed_port: int) -> None:
    """The real install path: a wheel built from this checkout, one venv per host; again: no change; rebuilt: replaced."""
    require_module("wheel")  # builds without a package index (pip --no-build-isolation)
    source = tmp_path / "src"  # a copy: building in a tree leaves build/ and *.egg-info behind
    shutil.copytree(REPO / "regtui", source / "regtui", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    roots, venvs, out = tmp_path / "roots", tmp_path / "venvs", tmp_path / "reports"
    hosts = {
        "node-a": {"regtui_root": str(_root(roots, "node-a", registry_tls, ca=registry_tls.ca_file)),
                   "regtui_venv": str(venvs / "node-a")},
        "node-b": {"regtui_root": str(_root(roots, "node-b", registry_tls, ca=registry_tls.ca_file,
                                            proxy_port=closed_port)),
                   "regtui_venv": str(venvs / "node-b")},
    }
    inventory = _inventory(
        tmp_path / "inventory.yml", hosts, regtui_source=str(source), regtui_build_python=sys.executable,
        regtui_build_isolation=False, regtui_python=sys.executable, regtui_venv_site_packages=True,
        regtui_pip_extra_args="--no-index", regtui_controller_bin=str(venvs / "node-a/bin/regtui"),
        **_check_vars(registry_tls, out))

    run = _playbook(tmp_path, inventory, pythonpath=False)
    assert run.returncode == 0, run.stdout[-3000:]
    recap = _recap(run.stdout)
    assert all(recap[h]["failed"] == 0 and recap[h]["changed"] >= 3 for h in hosts), recap
    for host in hosts:
        located = subprocess.run([str(venvs / host / "bin/python"), "-c", "import regtui; print(regtui.__file__)"],
                                 capture_output=True, text=True, timeout=60, check=True, env={"PATH": os.defpath},
                                 cwd=tmp_path)
        assert Path(located.stdout.strip()).is_relative_to(venvs / host), located.stdout
        assert [p.name for p in (venvs / host / "wheels").iterdir()] == ["regtui-0.1.0-py3-none-any.whl"]
    matrix = {row[0]: row[1] for row in _table((out / "fleet.md").read_text(), "Host x cause")}
    assert matrix == {"node-a": "ok", "node-b": "fails"}
    assert SECRET not in (out / "fleet.html").read_text()

    again = _playbook(tmp_path, inventory, "--tags", "install", pythonpath=False)
    assert again.returncode == 0, again.stdout[-3000:]
    assert {h: _recap(again.stdout)[h]["changed"] for h in hosts} == {"node-a": 0, "node-b": 0}, again.stdout[-3000:]

    # A changed source of the same version: pip alone would keep the old files, the playbook replaces them.
    with (source / "regtui/__init__.py").open("a") as init:
        init.write('\nREBUILT = "yes"\n')
    rebuilt = _playbook(tmp_path, inventory, "--tags", "install", pythonpath=False)
    assert rebuilt.returncode == 0 and "Replace regtui by a rebuilt wheel" in rebuilt.stdout, rebuilt.stdout[-3000:]
    for host in hosts:
        located = subprocess.run([str(venvs / host / "bin/python"), "-c", "import regtui; print(regtui.REBUILT)"],
                                 capture_output=True, text=True, timeout=60, env={"PATH": os.defpath}, cwd=tmp_path)
        assert located.stdout.strip() == "yes", located.stderr[-2000:]


def test_playbook_passes_syntax_check_and_ansible_lint(tmp_path: Path) -> None:
    """``ansible-playbook --syntax-check`` and Debian's ``ansible-lint`` (offline, production profile) accept it."""
    run = _playbook(tmp_path, REPO / "deploy/ansible/inventory.example.yml", "--syntax-check", pythonpath=False)
    assert run.returncode == 0 and "playbook: " in run.stdout, run.stdout
    lint = require_binary("ansible-lint")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
               NO_COLOR="1")
    result = subprocess.run([lint, "--offline", "--profile", "production", "--nocolor", "check.yml"],
                            cwd=PLAYBOOK.parent, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT, check=False)
    assert result.returncode == 0 and "0 failure(s), 0 warning(s)" in result.stdout, result.stdout[-3000:]
