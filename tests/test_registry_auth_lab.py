"""Bearer-token authentication against a real docker-registry (``auth: token``) and its token server.

Anonymous tokens, Basic credentials (GET), containerd's POST ``grant_type=password``, identity
tokens (POST ``grant_type=refresh_token``, and the GET fallback when POST answers 404), refused
credentials and refused anonymous access; the token realm is recorded as an extra endpoint. The
credentials are the runtime's: root's ``~/.docker/config.json`` for Docker, ``configs.<host>.auth``
for containerd.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.fixtures import LAB_REPO, LAB_TAG
from lab.images import OciImage, build_oci_layout, push
from lab.pki import IssuedCert
from lab.pullroots import containerd_root, docker_root, plan_context
from lab.require import require_binary
from lab.tokenauth import TokenRegistry, TokenServer
from regtui.refs import parse
from regtui.registry.pull import test_pull as run_test_pull
from test_pull_lab import by_code

pytestmark = pytest.mark.lab

USER, PASSWORD = "tokenuser", "token-password-never-shown"
IDENTITY = "identity-token-never-shown"


@pytest.fixture(scope="module")
def token_setup(lab_cert: IssuedCert, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TokenServer, TokenRegistry, OciImage]]:
    """A TLS token registry holding lab/app:latest, its HTTPS token server, and the image."""
    require_binary("docker-registry")
    require_binary("skopeo")
    server = TokenServer(tmp_path_factory.mktemp("token-server"), users={USER: PASSWORD},
                         refresh_tokens={IDENTITY: USER}, tls=lab_cert).start()
    registry = TokenRegistry(tmp_path_factory.mktemp("token-registry"), server, tls=lab_cert, auth=(USER, PASSWORD))
    try:
        registry.start()
        image = build_oci_layout(tmp_path_factory.mktemp("token-image") / "layout", layers=2, seed=61)
        push(image, registry, LAB_REPO)
        yield server, registry, image
    finally:
        registry.stop()
        server.stop()


def pull(root: Path, runtime: str, registry: TokenRegistry) -> tuple[dict[str, Any], list[Any]]:
    """Plan and pull lab/app:latest from the token registry."""
    image = f"{registry.host_port}/{LAB_REPO}:{LAB_TAG}"
    ctx, _ = plan_context(root, runtime, image)
    return asyncio.run(run_test_pull(ctx, parse(image), runtime))


def docker_with(tmp_path: Path, registry: TokenRegistry, entry: dict[str, str] | None) -> Path:
    """A Docker root trusting the lab CA for the registry, with ``entry`` as its config.json auth."""
    root = docker_root(tmp_path / "root", {}, cas={registry.host_port: registry.ca_file})
    if entry is not None:
        path = root / "root/.docker/config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"auths": {registry.host_port: entry}}))
    return root


def basic_blob(user: str, password: str) -> str:
    """config.json's ``auth`` value: base64 of ``user:password``."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def secrets_absent(report: dict[str, Any], findings: list[Any]) -> None:
    """No password, identity token or JWT in the report or the findings."""
    text = json.dumps(report) + json.dumps([f.to_dict() for f in findings])
    assert PASSWORD not in text and IDENTITY not in text and "eyJ" not in text


def test_basic_credentials_get_a_token(tmp_path: Path, token_setup: Any) -> None:
    """Docker's credentials buy a token with GET + Basic; the realm is an extra endpoint; nothing secret is shown."""
    server, registry, image = token_setup
    before = len(server.requests)
    entry = {"auth": basic_blob(USER, PASSWORD)}
    report, findings = pull(docker_with(tmp_path, registry, entry), "docker", registry)
    assert report["ok"], report["error"]
    assert report["manifest"]["digest"] == image.digest
    auth = report["endpoints"][0]["authentication"]
    assert (auth["method"], auth["token_request"], auth["service"]) == ("token-credentials", "GET", "regtui-lab-registry")
    assert [(r.method, r.basic, r.status) for r in server.requests[before:]] == [("GET", True, 200)]
    realm = next(e for e in report["extra_endpoints"] if e["kind"] == "token-realm")
    assert realm["host"] == f"127.0.0.1:{server.port}" and realm["via"] == f"{registry.url}/v2"
    assert realm["tls"]["applies"] and realm["dns"]["source"] == "literal"
    assert realm["tls_session"]["version"] in ("TLSv1.2", "TLSv1.3") and len(realm["tls_session"]["peer_sha256"]) == 64
    secrets_absent(report, findings)


def test_identity_token_posts_refresh_token(tmp_path: Path, token_setup: Any) -> None:
    """An identitytoken in config.json is exchanged with POST grant_type=refresh_token."""
    server, registry, image = token_setup
    before = len(server.requests)
    report, findings = pull(docker_with(tmp_path, registry, {"identitytoken": IDENTITY}), "docker", registry)
    assert report["ok"], report["error"]
    assert report["endpoints"][0]["authentication"]["method"] == "token-identity"
    assert [(r.method, r.grant_type) for r in server.requests[before:]] == [("POST", "refresh_token")]
    secrets_absent(report, findings)


def test_identity_token_falls_back_to_get_on_404(tmp_path: Path, token_setup: Any) -> None:
    """A token server without the OAuth endpoint (POST 404) is asked again with GET, and the pull succeeds."""
    server, registry, image = token_setup
    server.post_status = 404
    try:
        before = len(server.requests)
        report, findings = pull(docker_with(tmp_path, registry, {"identitytoken": IDENTITY}), "docker", registry)
    finally:
        server.post_status = None
    assert report["ok"], report["error"]
    assert report["endpoints"][0]["authentication"]["token_request"] == "POST 404 -> GET"
    assert [(r.method, r.status) for r in server.requests[before:]] == [("POST", 404), ("GET", 200)]


def test_containerd_posts_password_grant(tmp_path: Path, token_setup: Any) -> None:
    """containerd's configs.<host>.auth credentials go to the token server as POST grant_type=password."""
    server, registry, image = token_setup
    containerd_root(tmp_path / "root", registry.host_port, server=registry.url, server_ca=registry.ca_file,
                    auths={registry.host_port: (USER, PASSWORD)})
    before = len(server.requests)
    report, findings = pull(tmp_path / "root", "containerd", registry)
    assert report["ok"], report["error"]
    assert [(r.method, r.grant_type) for r in server.requests[before:]][:1] == [("POST", "password")]
    secrets_absent(report, findings)


def test_anonymous_refused_is_auth_missing(tmp_path: Path, token_setup: Any) -> None:
    """With no credentials and a token server that refuses anonymous tokens, the finding is auth.missing."""
    server, registry, image = token_setup
    report, findings = pull(docker_with(tmp_path, registry, None), "docker", registry)
    assert not report["ok"]
    missing = by_code(findings, "auth.missing")
    assert missing.evidence["authentication"]["scheme"] == "bearer"
    assert missing.subject == registry.host_port


def test_anonymous_tokens_for_public_images(tmp_path: Path, token_setup: Any) -> None:
    """A token server granting anonymous pulls gives a token without credentials, as for public Hub images."""
    server, registry, image = token_setup
    server.anonymous_pull = True
    try:
        report, findings = pull(docker_with(tmp_path, registry, None), "docker", registry)
    finally:
        server.anonymous_pull = False
    assert report["ok"], report["error"]
    assert report["endpoints"][0]["authentication"]["method"] == "token-anonymous"


def test_wrong_password_is_auth_rejected(tmp_path: Path, token_setup: Any) -> None:
    """A wrong password is refused by the token server: auth.rejected, and Docker stops (no fallback for it)."""
    server, registry, image = token_setup
    entry = {"auth": basic_blob(USER, "wrong-password")}
    report, findings = pull(docker_with(tmp_path, registry, entry), "docker", registry)
    assert not report["ok"]
    rejected = by_code(findings, "auth.rejected")
    assert rejected.evidence["credentials_source"]
    assert "wrong-password" not in json.dumps(report) + json.dumps([f.to_dict() for f in findings])
