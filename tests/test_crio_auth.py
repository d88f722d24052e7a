"""Credentials as containers/image looks them up: the auth.json chain, explicit files, keys, helpers, secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path

from regtui.runtimes import crio
from regtui.runtimes.crio.auth import auth_chain, load_auth, normalize_auth_key
from regtui.host import Host
from regtui.refs import parse
from rootfs import line_of, write_tree

RUN_AUTH = "/run/containers/0/auth.json"
USER_AUTH = "/root/.config/containers/auth.json"
DOCKER_CFG = "/root/.docker/config.json"
PASSWORD = "s3cr3t-Passw0rd"
USER_PASS_B64 = "Y2lib3Q6czNjcjN0LVBhc3N3MHJk"  # base64("cibot:s3cr3t-Passw0rd")
TOKEN = "eyJhbGciOiJSUzI1NiJ9.refresh-token-value"

# What `podman login` writes (root, no XDG_RUNTIME_DIR) with a namespaced entry added by hand.
PODMAN_AUTH = f"""{{
\t"auths": {{
\t\t"quay.io": {{
\t\t\t"auth": "cXVheXVzZXI6cXVheXBhc3M="
\t\t}},
\t\t"quay.io/team-a": {{
\t\t\t"auth": "{USER_PASS_B64}"
\t\t}}
\t}}
}}
"""

def _host(tmp_path: Path, files: dict[str, str | bytes]) -> Host:
    return Host.from_args(write_tree(tmp_path, files), {})


def _store(tmp_path: Path, files: dict[str, str | bytes], env: dict[str, str] | None = None, **kw):
    host = _host(tmp_path, files)
    return load_auth(host, "/root", env or {}, ["containers-auth.json"], **kw)


def test_default_chain_for_root() -> None:
    """Without XDG_RUNTIME_DIR: /run/containers/0, ~/.config, ~/.docker/config.json, ~/.dockercfg."""
    chain = auth_chain(Host(), "/root", {})
    assert [a.path for a in chain] == [RUN_AUTH, USER_AUTH, DOCKER_CFG, "/root/.dockercfg"]
    assert chain[-1].legacy


def test_chain_follows_xdg_and_docker_config(tmp_path: Path) -> None:
    """XDG_RUNTIME_DIR, XDG_CONFIG_HOME and DOCKER_CONFIG move their files; a missing runtime dir is skipped."""
    host = _host(tmp_path, {"/run/user/0/": ""})
    env = {"XDG_RUNTIME_DIR": "/run/user/0", "XDG_CONFIG_HOME": "/srv/cfg", "DOCKER_CONFIG": "/srv/docker"}
    assert [a.path for a in auth_chain(host, "/root", env)][:3] == [
        "/run/user/0/containers/auth.json", "/srv/cfg/containers/auth.json", "/srv/docker/config.json"]
    chain = auth_chain(host, "/root", {"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert chain[0].path == USER_AUTH


def test_first_file_in_chain_wins(tmp_path: Path) -> None:
    """The runtime file is read before ~/.docker/config.json: its entry wins."""
    store = _store(tmp_path, {RUN_AUTH: PODMAN_AUTH,
                              DOCKER_CFG: '{"auths": {"quay.io": {"auth": "ZG9ja2VyOmRvY2tlcg=="}}}'})
    match = store.lookup("quay.io/team-b/app")
    assert match.source == f"{RUN_AUTH}:3 (quay.io)"
    assert match.credential.username == "quayuser"


def test_most_specific_namespaced_key_wins(tmp_path: Path) -> None:
    """quay.io/team-a/app uses the quay.io/team-a entry, quay.io/team-ab/app the registry entry."""
    store = _store(tmp_path, {RUN_AUTH: PODMAN_AUTH})
    assert store.lookup("quay.io/team-a/app").source == f"{RUN_AUTH}:{line_of(PODMAN_AUTH, 'team-a')} (quay.io/team-a)"
    assert store.lookup("quay.io/team-a/app").credential.username == "cibot"
    assert store.lookup("quay.io/team-ab/app").source == f"{RUN_AUTH}:3 (quay.io)"


def test_url_keys_and_hub_aliases_normalise(tmp_path: Path) -> None:
    """https://index.docker.io/v1/ and registry-1.docker.io keys serve docker.io; URL keys serve their host."""
    assert normalize_auth_key("https://index.docker.io/v1/") == "index.docker.io"
    assert normalize_auth_key("registry-1.docker.io") == "index.docker.io"
    assert normalize_auth_key("http://registry.lan:5000/v2/") == "registry.lan:5000"
    cfg = ('{"auths": {"https://index.docker.io/v1/": {"auth": "aHViOmh1Yg=="},'
           ' "http://registry.lan:5000/v2/": {"auth": "bGFuOmxhbg=="}}}')
    store = _store(tmp_path, {DOCKER_CFG: cfg})
    assert store.lookup("docker.io/library/nginx").credential.username == "hub"
    assert store.lookup("registry.lan:5000/app").credential.username == "lan"
    assert store.lookup("registry-1.docker.io").credential.username == "hub"


def test_registry_auth_file_replaces_chain(tmp_path: Path) -> None:
    """podman/skopeo with REGISTRY_AUTH_FILE read only that file: entries elsewhere are not used."""
    files = {RUN_AUTH: PODMAN_AUTH, "/srv/ci/auth.json": '{"auths": {"ghcr.io": {"auth": "Z2g6Z2g="}}}',
             "/etc/containers/registries.conf": 'unqualified-search-registries = ["docker.io"]\n'}
    view = crio.load(_host(tmp_path, files), client_env={"REGISTRY_AUTH_FILE": "/srv/ci/auth.json"})
    assert view.summary["perspective"] == "podman/skopeo as root"
    assert view.summary["auth_files"] == ["/srv/ci/auth.json"]
    assert view.credentials("quay.io") is None
    assert view.credentials("ghcr.io").username == "gh"
    route, _ = view.plan(parse("ghcr.io/org/app:1"))
    assert route.endpoints[0].credentials == "/srv/ci/auth.json:1 (ghcr.io)"


def test_global_auth_file_replaces_chain_for_crio(tmp_path: Path) -> None:
    """CRI-O's global_auth_file (crio.conf.d drop-in) is the only file; a missing one is a warning."""
    root = write_tree(tmp_path, {
        "/etc/crio/crio.conf": "[crio.image]\npause_image = \"registry.k8s.io/pause:3.10\"\n",
        "/etc/crio/crio.conf.d/10-auth.conf": '[crio.image]\nglobal_auth_file = "/var/lib/kubelet/config.json"\n',
        RUN_AUTH: PODMAN_AUTH,
    })
    view = crio.load(Host.from_args(root, {}), client_env={})
    assert view.summary["perspective"] == "CRI-O daemon"
    assert view.summary["auth_files"] == ["/var/lib/kubelet/config.json"]
    assert view.credentials("quay.io") is None
    missing = next(f for f in view.findings if f.subject == "/var/lib/kubelet/config.json")
    assert missing.code == "config.invalid-value" and missing.severity == "warning"
    write_tree(root, {"/var/lib/kubelet/config.json": '{"auths": {"quay.io": {"auth": "a3ViZTprdWJl"}}}'})
    view = crio.load(Host.from_args(root, {}), client_env={})
    assert view.credentials("quay.io").username == "kube"
    assert view.credentials("quay.io").source == "/var/lib/kubelet/config.json:1 (quay.io)"


def test_malformed_auth_is_reported_without_secret(tmp_path: Path) -> None:
    """Bad base64 fails the lookup, a value without ':' is skipped; both are auth.malformed, secret masked."""
    bad = '{"auths": {\n"quay.io": {"auth": "not base64!!"},\n"ghcr.io": {"auth": "bm9jb2xvbmhlcmU="}\n}}'
    store = _store(tmp_path, {RUN_AUTH: bad, DOCKER_CFG: '{"auths": {"ghcr.io": {"auth": "Z2g6Z2g="}}}'})
    malformed = {f.evidence["key"]: f for f in store.findings if f.code == "auth.malformed"}
    assert set(malformed) == {"quay.io", "ghcr.io"}
    assert malformed["quay.io"].evidence["line"] == 2 and malformed["ghcr.io"].evidence["line"] == 3
    assert malformed["quay.io"].evidence["value"] == "***"
    assert "not base64!!" not in json.dumps([f.to_dict() for f in store.findings])
    assert store.lookup("quay.io/x/y").error
    assert store.lookup("ghcr.io/x/y").credential.username == "gh"  # skipped, next file answers


def test_garbage_auth_file_is_parse_error_with_line(tmp_path: Path) -> None:
    """A truncated auth.json is a parse error at its line, with no excerpt of the secret text."""
    text = '{\n  "auths": {\n    "quay.io": {"auth": "' + USER_PASS_B64 + '"}\n'
    store = _store(tmp_path, {RUN_AUTH: text})
    err = next(f for f in store.findings if f.code == "config.parse-error")
    assert err.evidence["file"] == RUN_AUTH and err.evidence["line"] == 4
    assert "excerpt" not in err.evidence
    assert USER_PASS_B64 not in json.dumps(err.to_dict())
    assert store.lookup("docker.io/library/alpine").error.startswith("errors looking up credentials")


def test_garbage_bytes_and_wrong_types(tmp_path: Path) -> None:
    """Invalid UTF-8 is a parse error with a line; `auths` as a list is an invalid value; an empty file fails."""
    store = _store(tmp_path / "a", {RUN_AUTH: b'{"auths": {}}\n\xff\xfe garbage'})
    assert next(f for f in store.findings if f.code == "config.parse-error").evidence["line"] == 2
    store = _store(tmp_path / "b", {RUN_AUTH: '{"auths": ["quay.io"]}'})
    err = next(f for f in store.findings if f.code == "config.invalid-value")
    assert "cannot unmarshal array" in err.evidence["value"]
    store = _store(tmp_path / "c", {RUN_AUTH: ""})
    assert any(f.code == "config.parse-error" for f in store.findings)


def test_cred_helper_missing_and_creds_store_ignored(tmp_path: Path) -> None:
    """credHelpers naming a missing binary is auth.helper-missing; Docker's credsStore is ignored."""
    cfg = ('{\n  "auths": {"https://index.docker.io/v1/": {}},\n  "credHelpers": {\n'
           '    "123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"\n  },\n  "credsStore": "desktop"\n}\n')
    store = _store(tmp_path, {DOCKER_CFG: cfg})
    helper = next(f for f in store.findings if f.code == "auth.helper-missing")
    assert helper.evidence["line"] == 4 and helper.evidence["value"] == "docker-credential-ecr-login"
    assert "executable file not found" in store.lookup("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app").error
    ignored = next(f for f in store.findings if f.code == "config.ignored-key")
    assert ignored.evidence["line"] == 6 and ignored.fix.params["new_key"] == "credHelpers"


def test_helper_on_path_is_named_as_source(tmp_path: Path) -> None:
    """A credHelpers entry whose binary exists is reported as the credentials source."""
    root = write_tree(tmp_path, {DOCKER_CFG: '{"credHelpers": {"ghcr.io": "gh"}}', "/usr/bin/docker-credential-gh": "#!/bin/sh\n"})
    os.chmod(root / "usr/bin/docker-credential-gh", 0o755)
    store = load_auth(Host.from_args(root, {}), "/root", {}, ["containers-auth.json"])
    assert store.lookup("ghcr.io/org/app").source.startswith("credential helper docker-credential-gh")


def test_registries_conf_credential_helper_missing(tmp_path: Path) -> None:
    """credential-helpers = ["pass"] without docker-credential-pass breaks lookups that find nothing."""
    text = 'credential-helpers = ["pass", "containers-auth.json"]\n'
    view = crio.load(_host(tmp_path, {"/etc/containers/registries.conf": text}), client_env={})
    err = next(f for f in view.findings if f.code == "auth.helper-missing")
    assert err.evidence["file"] == "/etc/containers/registries.conf" and err.evidence["line"] == 1
    route, _ = view.plan(parse("docker.io/library/nginx"))
    assert route.endpoints[0].status == "failed"


def test_world_readable_auth_file(tmp_path: Path) -> None:
    """An auth file readable by others is config.permission with a chmod 600 command."""
    host = _host(tmp_path, {RUN_AUTH: PODMAN_AUTH})
    os.chmod(tmp_path / RUN_AUTH.lstrip("/"), 0o644)
    store = load_auth(host, "/root", {}, ["containers-auth.json"])
    perm = next(f for f in store.findings if f.code == "config.permission")
    assert perm.fix.params["command"] == f"chmod 600 {RUN_AUTH}"


def test_identity_token_kept_as_token(tmp_path: Path) -> None:
    """An entry with identitytoken yields an identity-token credential."""
    cfg = json.dumps({"auths": {"myregistry.azurecr.io": {"auth": "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==",
                                                          "identitytoken": TOKEN}}})
    store = _store(tmp_path, {DOCKER_CFG: cfg})
    cred = store.lookup("myregistry.azurecr.io/app").credential
    assert cred.kind == "identitytoken" and cred.secret == TOKEN
    assert TOKEN not in repr(cred)


def test_secrets_never_in_view_or_routes(tmp_path: Path) -> None:
    """No password, auth blob, token or proxy password appears in findings, sources, summary or routes."""
    files = {
        "/etc/containers/registries.conf": ('[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n'
                                            '[[registry.mirror]]\nlocation = "harbor.corp.example/hub"\n'),
        RUN_AUTH: PODMAN_AUTH.replace("quay.io/team-a", "harbor.corp.example"),
        DOCKER_CFG: json.dumps({"auths": {"ghcr.io": {"auth": "bad!" + USER_PASS_B64}, "x.io": {"auth": "eDp5", "identitytoken": TOKEN}}}),
        "/etc/crio/crio.conf": "[crio.image]\n",
        "/etc/systemd/system/crio.service.d/proxy.conf": f"[Service]\nEnvironment=HTTPS_PROXY=http://svc:{PASSWORD}@proxy.corp:3128\n",
    }
    view = crio.load(_host(tmp_path, files), client_env={})
    routes = [view.plan(parse(i)) for i in ("docker.io/library/nginx", "quay.io/team-a/app:1", "ghcr.io/o/a:1", "x.io/a:1")]
    blob = json.dumps({
        "findings": [f.to_dict() for f in view.findings] + [f.to_dict() for _, fs in routes for f in fs],
        "sources": [s.to_dict() for s in view.sources],
        "summary": view.summary,
        "routes": [r.to_dict() for r, _ in routes],
        "proxy": view.proxy_env.effective(),
    })
    for secret in (PASSWORD, USER_PASS_B64, TOKEN, "cXVheXVzZXI6cXVheXBhc3M=", "quaypass"):
        assert secret not in blob, secret
    assert any(r.endpoints[0].proxy == "http://***@proxy.corp:3128" for r, _ in routes)


def test_podman_login_in_a_shell_is_not_read_by_crio(tmp_path: Path) -> None:
    """`podman login` with XDG_RUNTIME_DIR=/run/user/0 writes where CRI-O never looks: auth.wrong-key."""
    files = {"/etc/crio/crio.conf": "[crio.image]\n", "/run/user/0/containers/auth.json": PODMAN_AUTH}
    view = crio.load(_host(tmp_path, files), client_env={})
    wrong = next(f for f in view.findings if f.code == "auth.wrong-key")
    assert wrong.subject == "/run/user/0/containers/auth.json"
    assert wrong.evidence["value"] == ["quay.io", "quay.io/team-a"]
    assert wrong.fix.params["to"] == RUN_AUTH
    assert view.credentials("quay.io") is None


def test_view_credentials_accept_repository_keys(tmp_path: Path) -> None:
    """The view's lookup takes a host or a repository; registry-1.docker.io means docker.io."""
    auth = '{"auths": {"quay.io/team-a": {"auth": "' + USER_PASS_B64 + '"}, "docker.io/library": {"auth": "aHViOmh1Yg=="}}}'
    view = crio.load(_host(tmp_path, {RUN_AUTH: auth}), client_env={})
    assert view.credentials("quay.io") is None
    assert view.credentials("quay.io/team-a/app").username == "cibot"
    assert view.credentials("registry-1.docker.io/library/nginx").username == "hub"
