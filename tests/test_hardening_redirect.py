"""Credentials never follow a redirect to another host: a registry on 127.0.0.1 that takes Basic credentials
and then redirects manifests or blobs to 127.0.0.2, which asks for credentials itself (Basic, or Bearer with
a token realm on 127.0.0.2). The second server records every header and body it receives; the registry's
password must never reach it, in clear or base64 at any alignment, for Docker, containerd and CRI-O routes
planned from real configs in a fake root, through ``regtui pull`` and ``regtui check``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from lab.hostile_auth import AuthRegistry, Trap, leaked_forms
from lab.images import OciImage, build_oci_layout
from lab.pullroots import containerd_root, crio_root, docker_root
from regtui.cli import main
from regtui.credentials import Credential
from regtui.registry.auth import Authorizer
from regtui.registry.errors import RegistryError

USER, PASSWORD = "labuser", "s3cret-do-not-follow-redirects"
TRAP_USER, TRAP_PASSWORD = "trapuser", "the-traps-own-password"
RUNTIMES = ("docker", "containerd", "crio")
#: Docker's containerd image store pulls with containerd's authorizer and dockerd's one auth config.
FLAVOURS = RUNTIMES + ("docker-containerd-store",)
SCHEMA = json.loads((Path(__file__).parent.parent / "regtui/report/schema.json").read_text())


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """Two small layers."""
    return build_oci_layout(tmp_path_factory.mktemp("redirect") / "layout", layers=2, layer_size=1024, seed=9)


@pytest.fixture
def servers() -> Iterator[list[Any]]:
    """Servers started by a test; stopped afterwards."""
    started: list[Any] = []
    yield started
    for s in started:
        s.stop()


def lab(image: OciImage, servers: list[Any], *, redirect: tuple[str, ...], scheme: str = "basic",
        trap_own: tuple[str, str] | None = None) -> tuple[AuthRegistry, Trap]:
    """The trap on 127.0.0.2 and the registry on 127.0.0.1 redirecting ``redirect`` kinds to it."""
    trap = Trap(image.layout_dir, scheme=scheme, own=trap_own).start()
    servers.append(trap)
    registry = AuthRegistry(image.layout_dir, (USER, PASSWORD), target=trap.url, redirect=redirect).start()
    servers.append(registry)
    return registry, trap  # type: ignore[return-value]


def write_root(root: Path, runtime: str, registry: AuthRegistry, auths: dict[str, tuple[str, str]]) -> list[str]:
    """The runtime's config in ``root`` with credentials for ``auths`` hosts only; extra CLI arguments."""
    if runtime.startswith("docker"):
        docker_root(root, {"insecure-registries": [registry.host_port]}, auths=auths)
        return ["--docker-store", "containerd" if runtime.endswith("containerd-store") else "classic"]
    if runtime == "containerd":
        containerd_root(root, registry.host_port, server=registry.url, auths=auths)
        return []
    crio_root(root, registry.host_port, insecure=True, auths=auths)
    return []


def run(capsys: pytest.CaptureFixture[str], command: str, root: Path, runtime: str, image: str,
        extra: list[str]) -> tuple[int, dict[str, Any]]:
    """``regtui pull|check`` through the CLI entry point; exit status and the JSON report."""
    args = [command, image] if command == "pull" else [command, "--image", image]
    capsys.readouterr()
    code = main([*args, "--root", str(root), "--runtime", runtime.split("-", 1)[0], "--timeout", "3", "--format", "json",
                 *extra])
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, SCHEMA)
    return code, report


def redirect_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``auth.redirect-challenge`` findings of a report."""
    return [f for f in report["findings"] if f["code"] == "auth.redirect-challenge"]


def test_leaked_forms_cover_every_alignment() -> None:
    """The leak detector finds user:password in base64 and base64url wherever it sits in a longer encoded value."""
    forms = leaked_forms(PASSWORD, USER)
    for prefix in (b"", b"x", b"xy"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            value = encode(prefix + f"{USER}:{PASSWORD}".encode() + b"tail").decode()
            assert any(f in value for f in forms), (prefix, value)
    assert not any(f in base64.b64encode(f"{USER}:other-password".encode()).decode() for f in forms)


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
@pytest.mark.parametrize("kind", ["manifests", "blobs"])
@pytest.mark.parametrize("runtime", FLAVOURS)
def test_credentials_never_reach_the_redirect_target(tmp_path: Path, image: OciImage, servers: list[Any],
                                                     capsys: pytest.CaptureFixture[str], runtime: str, kind: str,
                                                     scheme: str) -> None:
    """The registry's password never reaches 127.0.0.2; the pull fails there with 401 and auth.redirect-challenge."""
    registry, trap = lab(image, servers, redirect=(kind,), scheme=scheme)
    extra = write_root(tmp_path / "root", runtime, registry, {registry.host_port: (USER, PASSWORD)})
    ref = f"{registry.host_port}/lab/app:latest"
    code, report = run(capsys, "pull", tmp_path / "root", runtime, ref, extra)
    assert trap.received, "the redirect was followed"
    assert trap.leaks(PASSWORD, USER) == []
    assert not any(dict(r.headers).get("Authorization") for r in trap.received)
    assert code == 1 and not report["pull"]["ok"]
    found = redirect_findings(report)
    assert found, [f["code"] for f in report["findings"]]
    f = found[0]
    assert f["severity"] == "error"
    assert f["evidence"]["endpoint_host"] == registry.host_port and f["evidence"]["redirect_host"] == trap.host_port
    assert "nothing" in f["evidence"]["runtime_sends"]
    assert PASSWORD not in json.dumps(report)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_check_reports_the_redirect_challenge(tmp_path: Path, image: OciImage, servers: list[Any],
                                             capsys: pytest.CaptureFixture[str], runtime: str) -> None:
    """`regtui check` on a registry redirecting blobs to a host that asks for credentials: finding, exit 1, no leak."""
    registry, trap = lab(image, servers, redirect=("blobs",), scheme="bearer")
    extra = write_root(tmp_path / "root", runtime, registry, {registry.host_port: (USER, PASSWORD)})
    code, report = run(capsys, "check", tmp_path / "root", runtime, f"{registry.host_port}/lab/app:latest", extra)
    assert trap.received and trap.leaks(PASSWORD, USER) == []
    assert code == 1
    assert redirect_findings(report)
    assert not any(f["code"] == "auth.missing" and f["subject"] == registry.host_port for f in report["findings"])


def test_containerd_sends_the_targets_own_credentials(tmp_path: Path, image: OciImage, servers: list[Any],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """containerd answers the target's challenge with the target's own configured credentials: pull ok, warning."""
    registry, trap = lab(image, servers, redirect=("blobs",), scheme="basic", trap_own=(TRAP_USER, TRAP_PASSWORD))
    write_root(tmp_path / "root", "containerd", registry,
               {registry.host_port: (USER, PASSWORD), trap.host_port: (TRAP_USER, TRAP_PASSWORD)})
    code, report = run(capsys, "pull", tmp_path / "root", "containerd", f"{registry.host_port}/lab/app:latest", [])
    assert trap.leaks(PASSWORD, USER) == []
    assert trap.leaks(TRAP_PASSWORD, TRAP_USER), "the trap's own credentials were sent to it"
    assert code == 0 and report["pull"]["ok"], report["pull"]["error"]
    found = redirect_findings(report)
    assert found and found[0]["severity"] == "warning"
    assert trap.host_port in found[0]["evidence"]["runtime_sends"]


# -- the authorizer alone: hosts, tokens, and concurrent tasks sharing one session ------------
class SlowRealm:
    """A token server (no network) that yields to other tasks, grants "anon" without credentials and "tok-<user>" with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], dict[str, str] | None]] = []

    async def __call__(self, method: str, url: str, headers: dict[str, str], form: dict[str, str] | None) -> httpx.Response:
        self.calls.append((method, url, headers, form))
        await asyncio.sleep(0.01)
        if method == "POST":
            return httpx.Response(404, request=httpx.Request(method, url))
        basic = headers.get("Authorization", "")
        user = base64.b64decode(basic[len("Basic "):]).decode().split(":", 1)[0] if basic else ""
        return httpx.Response(200, json={"token": f"tok-{user}" if user else "anon", "expires_in": 300},
                              request=httpx.Request(method, url))


def _challenge(host: str, header: str) -> httpx.Response:
    return httpx.Response(401, headers={"WWW-Authenticate": header},
                          request=httpx.Request("GET", f"https://{host}/v2/lab/app/blobs/sha256:00"))


def test_tokens_and_credentials_stay_with_their_host() -> None:
    """containerd: the endpoint's token and password never serve another host, even one naming the same realm."""
    realm = SlowRealm()
    bearer = 'Bearer realm="https://auth.example/token",service="reg"'
    cred = Credential(USER, PASSWORD, "config.toml:3")
    auth = Authorizer(cred, realm, flavor="containerd", host="reg.example", lookup=lambda h: None)
    scope = "repository:lab/app:pull"

    async def both() -> None:
        await auth.handle("reg.example", _challenge("reg.example", bearer), scope, sent_auth=False)
        await auth.handle("cdn.other", _challenge("cdn.other", bearer), scope, sent_auth=False)

    asyncio.run(both())
    assert auth.authorization("reg.example", scope) == f"Bearer tok-{USER}"
    assert auth.authorization("cdn.other", scope) == "Bearer anon"
    assert [c[2].get("Authorization") is not None for c in realm.calls if c[0] == "GET"] == [True, False]
    cdn_calls = realm.calls[2:]  # the endpoint's POST (404) and GET come first
    assert cdn_calls and all(PASSWORD not in json.dumps([c[2], c[3]]) for c in cdn_calls)
    assert auth.outcome.method == "token-credentials" and auth.outcome.status == "ok"
    assert auth.outcome.redirects[0]["host"] == "cdn.other" and auth.outcome.redirects[0]["status"] == "ok"


def test_concurrent_redirect_failure_leaves_the_endpoint_outcome_alone() -> None:
    """A redirect target's refusal, handled while another task answers the endpoint's challenge, is not the endpoint's."""
    realm = SlowRealm()
    realm_401 = 'Bearer realm="https://cdn.other/token",service="cdn"'
    cred = Credential(USER, PASSWORD, "config.toml:3")
    auth = Authorizer(cred, realm, flavor="containerd", host="reg.example", lookup=lambda h: None)
    scope = "repository:lab/app:pull"

    async def target() -> None:
        await auth.handle("cdn.other", _challenge("cdn.other", realm_401), scope, sent_auth=False)
        await auth.handle("cdn.other", _challenge("cdn.other", realm_401), scope, sent_auth=True)

    async def endpoint() -> None:
        await asyncio.sleep(0.005)
        await auth.handle("reg.example", _challenge("reg.example", 'Basic realm="reg"'), scope, sent_auth=False)

    async def run_both() -> list[Any]:
        return await asyncio.gather(target(), endpoint(), return_exceptions=True)

    results = asyncio.run(run_both())
    assert isinstance(results[0], RegistryError) and results[1] is None
    assert auth.outcome.status == "ok" and auth.outcome.method == "basic" and auth.outcome.failure is None
    assert auth.authorization("reg.example", scope) == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert auth.authorization("cdn.other", scope) == "Bearer anon"
    assert auth.outcome.redirects[0]["status"] == "failed"
    assert all(PASSWORD not in json.dumps([c[2], c[3]]) for c in realm.calls)
