"""Configuration is evidence: any file a runtime or its CLI reads makes that runtime count, the report
names the file, and the findings about it appear without --runtime."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

import regtui
from lab.dockerd import DockerDaemon, docker_cli
from lab.fixtures import LAB_CREDENTIALS, LAB_REPO, LAB_TAG
from lab.images import OciImage, push
from lab.procs import run
from lab.registry import Registry
from regtui import engine
from regtui.cli import main
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.runtimes import crio, docker
from rootfs import write_tree

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((Path(regtui.__file__).parent / "report" / "schema.json").read_text())
CLI_CONFIG = "/root/.docker/config.json"
DOCKER_DROPIN = "/etc/systemd/system/docker.service.d/http-proxy.conf"
MISSING_HELPER = "regtui-absent"

UNIT = "[Service]\nEnvironment=\"HTTPS_PROXY=http://127.0.0.1:3128\"\n"
HOSTS_TOML = 'server = "https://registry-1.docker.io"\n[host."https://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n'
PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"


def _detect(root: Path) -> dict[str, list[str]]:
    errors: list[str] = []
    found = engine.select_runtimes(Host.from_args(root, environ={}), "auto", errors)
    assert errors == []
    return found


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out, _ = capsys.readouterr()
    return rc, out


# One file of each kind a runtime (or its CLI) reads, alone under the root: (files, runtime, evidence).
ONE_FILE = [
    ({CLI_CONFIG: '{"credsStore": "desktop"}'}, "docker", [CLI_CONFIG]),
    ({DOCKER_DROPIN: UNIT}, "docker", [DOCKER_DROPIN]),
    ({"/run/systemd/system/docker.service.d/10-env.conf": UNIT}, "docker",
     ["/run/systemd/system/docker.service.d/10-env.conf"]),
    ({"/etc/default/docker": 'DOCKER_OPTS="--dns 127.0.0.1"\n'}, "docker", ["/etc/default/docker"]),
    ({"/etc/passwd": PASSWD, "/home/alice/.docker/config.json": "{}"}, "docker", ["/home/alice/.docker/config.json"]),
    ({"/etc/containerd/conf.d/registry.toml": "version = 2\n"}, "containerd", ["/etc/containerd/conf.d/registry.toml"]),
    ({"/etc/containerd/certs.d/docker.io/hosts.toml": HOSTS_TOML}, "containerd", ["/etc/containerd/certs.d"]),
    ({"/etc/systemd/system/containerd.service.d/http-proxy.conf": UNIT}, "containerd",
     ["/etc/systemd/system/containerd.service.d/http-proxy.conf"]),
    ({"/root/.config/containers/registries.conf": 'unqualified-search-registries = ["docker.io"]\n'}, "crio",
     ["/root/.config/containers/registries.conf"]),
    ({"/root/.config/containers/registries.conf.d/50-mirror.conf": ""}, "crio",
     ["/root/.config/containers/registries.conf.d/50-mirror.conf"]),
    ({"/root/.config/containers/auth.json": '{"auths": {}}'}, "crio", ["/root/.config/containers/auth.json"]),
    ({"/root/.config/containers/policy.json": '{"default": [{"type": "insecureAcceptAnything"}]}'}, "crio",
     ["/root/.config/containers/policy.json"]),
    ({"/run/containers/0/auth.json": '{"auths": {}}'}, "crio", ["/run/containers/0/auth.json"]),
    ({"/etc/systemd/system/crio.service.d/proxy.conf": UNIT}, "crio", ["/etc/systemd/system/crio.service.d/proxy.conf"]),
    ({"/etc/sysconfig/crio": "HTTPS_PROXY=http://127.0.0.1:3128\n"}, "crio", ["/etc/sysconfig/crio"]),
    ({"/etc/rancher/k3s/registries.yaml": "mirrors: {}\n"}, "k3s", ["/etc/rancher/k3s/registries.yaml"]),
    ({"/etc/rancher/rke2/registries.yaml": "mirrors: {}\n"}, "k3s", ["/etc/rancher/rke2/registries.yaml"]),
    ({"/etc/default/k3s": "CONTAINERD_HTTPS_PROXY=http://127.0.0.1:3128\n"}, "k3s", ["/etc/default/k3s"]),
    ({"/etc/systemd/system/k3s.service.d/proxy.conf": UNIT}, "k3s", ["/etc/systemd/system/k3s.service.d/proxy.conf"]),
]


@pytest.mark.parametrize(("files", "runtime", "evidence"), ONE_FILE, ids=[next(iter(f)) for f, _, _ in ONE_FILE])
def test_one_file_makes_its_runtime_count(tmp_path: Path, files: dict[str, str], runtime: str,
                                          evidence: list[str]) -> None:
    """A file only one runtime (or its CLI) reads, alone under the root, detects that runtime and no other."""
    write_tree(tmp_path, files)
    assert _detect(tmp_path) == {runtime: evidence}


def test_client_variables_name_evidence_on_the_live_system(tmp_path: Path) -> None:
    """On the live root, $DOCKER_CONFIG/config.json counts for docker, $CONTAINERS_REGISTRIES_CONF and $REGISTRY_AUTH_FILE for podman."""
    write_tree(tmp_path, {"/cli/config.json": "{}", "/podman/registries.conf": "", "/podman/auth.json": "{}"})
    environ = {"DOCKER_CONFIG": str(tmp_path / "cli"), "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "podman/registries.conf"),
               "REGISTRY_AUTH_FILE": str(tmp_path / "podman/auth.json")}
    live = Host.from_args("/", environ=environ)
    assert live.live
    assert str(tmp_path / "cli/config.json") in docker.detect(live)
    assert {str(tmp_path / "podman/registries.conf"), str(tmp_path / "podman/auth.json")} <= set(crio.detect(live))


def test_nothing_of_a_runtime_detects_nothing(tmp_path: Path) -> None:
    """An empty root, and one with files no runtime reads (other units' drop-ins, ~/.docker without config.json), detect nothing."""
    (tmp_path / "empty").mkdir()
    assert _detect(tmp_path / "empty") == {}
    write_tree(tmp_path / "unrelated", {
        "/etc/passwd": PASSWD, "/etc/hostname": "node\n", "/etc/hosts": "127.0.0.1 localhost\n",
        "/etc/systemd/system/nginx.service.d/override.conf": UNIT, "/etc/default/grub": "GRUB_TIMEOUT=5\n",
        "/root/.docker/buildx/current": "{}", "/home/alice/.config/helm/registry/config.json": "{}",
        "/root/.config/containers/storage.conf.bak": "", "/etc/containerd/certs.d/": "",
        "/etc/rancher/": "", "/usr/share/doc/docker/README": "",
    })
    assert _detect(tmp_path / "unrelated") == {}


def test_data_roots_name_only_files_that_are_there() -> None:
    """On every tree under tests/data the runtimes found are the same four, each backed by paths that exist there."""
    for root in sorted(p for p in DATA.iterdir() if p.is_dir()):
        found = _detect(root)
        assert set(found) == {"docker", "containerd", "crio", "k3s"}, root
        for evidence in found.values():
            assert evidence and all((root / p.lstrip("/")).exists() for p in evidence), (root, evidence)
        assert found["docker"][-1] == CLI_CONFIG and "/etc/systemd/system/docker.service.d/override.conf" in found["docker"]


def test_cli_config_alone_reports_the_missing_helper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only root's config.json, credsStore helper missing: docker counts by it, the one finding is auth.helper-missing (no daemon complaints)."""
    write_tree(tmp_path, {CLI_CONFIG: json.dumps({"credsStore": MISSING_HELPER})})
    rc, out = _run(capsys, "check", "--offline", "--root", str(tmp_path), "--format", "json")
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    assert rc == 1
    assert data["runtimes"] == [{"name": "docker", "detected_by": [CLI_CONFIG], "files": [CLI_CONFIG]}]
    assert [(f["code"], f["runtime"], f["evidence"]["file"]) for f in data["findings"]] == [
        ("auth.helper-missing", "docker", CLI_CONFIG)]
    rc, out = _run(capsys, "check", "--offline", "--root", str(tmp_path))
    assert rc == 1 and f"runtimes: docker (detected by {CLI_CONFIG})" in out.splitlines()


def test_fix_code_without_runtime_finds_and_applies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fix --code auth.helper-missing` without --runtime plans the config.json edit, applies it, and the next check is clean."""
    write_tree(tmp_path, {CLI_CONFIG: json.dumps({"credsStore": MISSING_HELPER, "auths": {}})})
    state = str(tmp_path / "state")
    rc, out = _run(capsys, "fix", "--offline", "--root", str(tmp_path), "--state-dir", state,
                   "--code", "auth.helper-missing")
    assert rc == 0 and "nothing to do" not in out
    assert f"-{{\"credsStore\": \"{MISSING_HELPER}\", \"auths\": {{}}}}" in out
    rc, out = _run(capsys, "fix", "--offline", "--root", str(tmp_path), "--state-dir", state,
                   "--code", "auth.helper-missing", "--apply", "--yes")
    assert rc == 0, out
    assert "credsStore" not in json.loads((tmp_path / CLI_CONFIG.lstrip("/")).read_text())
    rc, out = _run(capsys, "check", "--offline", "--root", str(tmp_path), "--format", "json")
    assert rc == 0 and json.loads(out)["findings"] == []


def test_dropin_alone_reports_the_dead_proxy(tmp_path: Path, closed_port: int,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Only a docker.service.d drop-in with a closed HTTPS_PROXY: docker counts, proxy.unreachable is the verdict's cause, fix --code finds it."""
    proxy = f"127.0.0.1:{closed_port}"
    write_tree(tmp_path, {
        DOCKER_DROPIN: f'[Service]\nEnvironment="HTTPS_PROXY=http://{proxy}"\n',
        "/etc/hosts": "127.0.0.1 localhost\n127.0.0.1 registry.example.test\n",
    })
    image = "registry.example.test:5000/app:1"
    args = ("--root", str(tmp_path), "--image", image, "--no-pull", "--timeout", "2")
    rc, out = _run(capsys, "check", *args, "--format", "json")
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    assert rc == 1
    assert [(r["name"], r["detected_by"]) for r in data["runtimes"]] == [("docker", [DOCKER_DROPIN])]
    [dead] = [f for f in data["findings"] if f["code"] == "proxy.unreachable"]
    assert dead["subject"] == proxy and dead["severity"] == "error"
    [verdict] = data["verdicts"]
    assert verdict["status"] == "fails" and verdict["cause"]["code"] == "proxy.unreachable"
    rc, out = _run(capsys, "fix", *args, "--code", "proxy.unreachable")
    assert rc == 0 and "nothing to do" not in out and f"proxy.unreachable@{proxy}" in out


def test_other_users_cli_config_counts_but_root_s_is_checked(tmp_path: Path) -> None:
    """alice's ~/.docker/config.json makes docker count; it is listed as another user's file and raises nothing."""
    write_tree(tmp_path, {"/etc/passwd": PASSWD,
                          "/home/alice/.docker/config.json": json.dumps({"credsStore": MISSING_HELPER})})
    view = docker.load(Host.from_args(tmp_path, environ={}), CheckOptions(root=str(tmp_path)))
    assert view.detected_by == ["/home/alice/.docker/config.json"]
    [alice] = [s for s in view.sources if s.path == "/home/alice/.docker/config.json"]
    assert alice.status == "ignored" and "another user's" in alice.detail
    assert [f.code for f in view.findings] == []


def test_markdown_names_the_evidence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Markdown report says which file made each runtime count, and `asked for` when none did."""
    write_tree(tmp_path, {DOCKER_DROPIN: UNIT})
    rc, out = _run(capsys, "check", "--offline", "--root", str(tmp_path), "--runtime", "all", "--format", "markdown")
    assert f"- runtimes: docker (detected by {DOCKER_DROPIN}); containerd (asked for);" in out


@pytest.mark.lab
def test_real_docker_cli_reads_root_config_like_regtui_says(
    tmp_path: Path, dockerd: DockerDaemon, registry_plain: Registry, lab_image: OciImage,
    registry_factory: Callable[..., Registry], image_factory: Callable[..., OciImage],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Referee: the real docker CLI on that config.json pulls public images anonymously, gets 'no basic auth credentials' when a login is needed, fails docker login: as regtui says."""
    write_tree(tmp_path / "host", {CLI_CONFIG: json.dumps({"credsStore": MISSING_HELPER})})
    root = tmp_path / "host"
    private = registry_factory(auth=LAB_CREDENTIALS)
    push(image_factory(seed=41, layers=1), private, "lab/private")
    public_ref = f"{registry_plain.host_port}/{LAB_REPO}:{LAB_TAG}"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(root / "root")}

    def cli(*argv: str, stdin: bytes | None = None) -> tuple[int, str]:
        done = run([docker_cli(), "-H", dockerd.host, *argv], timeout=90, env=env, input=stdin)
        return done.returncode, done.stdout + done.stderr

    run([docker_cli(), "-H", dockerd.host, "rmi", "-f", public_ref], timeout=60, env=env)
    rc_public, out_public = cli("pull", public_ref)
    rc_private, out_private = cli("pull", f"{private.host_port}/lab/private:latest")
    rc_login, out_login = cli("login", "-u", LAB_CREDENTIALS[0], "--password-stdin", private.host_port,
                              stdin=LAB_CREDENTIALS[1].encode())
    assert rc_public == 0 and lab_image.digest in out_public, out_public
    assert rc_private != 0 and "no basic auth credentials" in out_private, out_private
    assert rc_login != 0 and "error storing credentials" in out_login and f"docker-credential-{MISSING_HELPER}" in out_login

    rc, out = _run(capsys, "check", "--root", str(root), "--image", public_ref, "--timeout", "5", "--format", "json")
    data = json.loads(out)
    assert [(r["name"], r["detected_by"]) for r in data["runtimes"]] == [("docker", [CLI_CONFIG])]
    [helper] = [f for f in data["findings"] if f["code"] == "auth.helper-missing"]
    assert "no basic auth credentials" in helper["detail"] and "error storing credentials" in helper["detail"]
    [verdict] = data["verdicts"]
    # dockerd, like regtui, tries https first on a loopback registry and pulls over plain http ("degraded")
    assert verdict["status"] in ("ok", "degraded") and verdict["cause"] is None and data["pull"]["ok"]
    assert verdict["endpoint"] == f"http://{registry_plain.host_port}/v2"
    assert helper["id"] in data["independent_findings"]


def test_crio_env_file_alone_is_crio_s_proxy(tmp_path: Path, closed_port: int,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Only /etc/sysconfig/crio with a closed HTTPS_PROXY: it is CRI-O's proxy in JSON, findings and verdict, with file:line."""
    proxy = f"127.0.0.1:{closed_port}"
    write_tree(tmp_path, {
        "/etc/sysconfig/crio": f"CRIO_CONFIG_OPTIONS=\nhttps_proxy=http://{proxy}\nNO_PROXY=.svc\n",
        "/etc/hosts": "127.0.0.1 localhost\n127.0.0.1 registry.example.test\n",
    })
    image = "registry.example.test:5000/app:1"
    rc, out = _run(capsys, "check", "--root", str(tmp_path), "--image", image, "--no-pull", "--timeout", "2",
                   "--format", "json")
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    assert [(r["name"], r["detected_by"]) for r in data["runtimes"]] == [("crio", ["/etc/sysconfig/crio"])]
    daemon = data["probes"]["proxy"]["daemons"]["crio"]
    assert daemon["effective"] == {"HTTP_PROXY": "", "HTTPS_PROXY": f"http://{proxy}", "NO_PROXY": ".svc"}
    assert daemon["sources"]["https_proxy"] == "/etc/sysconfig/crio:2"
    assert daemon["sources"]["NO_PROXY"] == "/etc/sysconfig/crio:3"
    [endpoint] = data["routes"][0]["endpoints"]
    assert endpoint["proxy"] == f"http://{proxy}"
    [dead] = [f for f in data["findings"] if f["code"] == "proxy.unreachable"]
    assert dead["subject"] == proxy and dead["runtime"] == "crio"
    assert dead["evidence"]["sources"] == ["/etc/sysconfig/crio:2"]
    [verdict] = data["verdicts"]
    assert rc == 1 and verdict["status"] == "fails" and verdict["cause"]["code"] == "proxy.unreachable"
