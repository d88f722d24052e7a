"""The Docker CLI's config.json: which credentials docker pull sends (SEMANTICS §1.6)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from regtui.runtimes.docker.cliconfig import HUB_AUTH_KEY, convert_to_hostname, decode_auth, load_cli_config
from regtui.host import Host
from rootfs import line_of, write_tree

SECRET = "s3cr3t-Pa55"
AUTH = base64.b64encode(f"deploy:{SECRET}".encode()).decode()
TOKEN = "eyJhbGciOiJSUzI1NiJ9.refresh-token-value"
CONFIG = "/root/.docker/config.json"


def _host(tmp_path: Path, text: str | bytes, mode: int = 0o600, extra: dict[str, str] | None = None) -> Host:
    write_tree(tmp_path, {CONFIG: text, **(extra or {})})
    os.chmod(tmp_path / CONFIG.lstrip("/"), mode)
    return Host(root=tmp_path)


def _executable(tmp_path: Path, path: str) -> None:
    write_tree(tmp_path, {path: "#!/bin/sh\n"})
    os.chmod(tmp_path / path.lstrip("/"), 0o755)


def test_hub_credentials_from_index_key(tmp_path: Path) -> None:
    """docker login's own key https://index.docker.io/v1/ serves docker.io pulls, with provenance."""
    text = json.dumps({"auths": {HUB_AUTH_KEY: {"auth": AUTH}}}, indent=2)
    cli = load_cli_config(_host(tmp_path, text))
    cred = cli.credential_for("docker.io")
    assert cred is not None and cred.username == "deploy" and cred.secret == SECRET
    assert cred.source == f"{CONFIG}:{line_of(text, HUB_AUTH_KEY)} (auths.\"{HUB_AUTH_KEY}\")"
    assert cli.findings == []


def test_legacy_url_key_found_by_hostname(tmp_path: Path) -> None:
    """A legacy https://host/v2/ key is found through ConvertToHostname."""
    text = json.dumps({"auths": {"https://registry.lab:5000/v2/": {"auth": AUTH}}})
    cli = load_cli_config(_host(tmp_path, text))
    assert cli.credential_for("registry.lab:5000") is not None
    assert convert_to_hostname("https://registry.lab:5000/v2/") == "registry.lab:5000"


def test_identity_token(tmp_path: Path) -> None:
    """identitytoken entries become identitytoken credentials."""
    text = json.dumps({"auths": {"registry.lab": {"identitytoken": TOKEN}}})
    cred = load_cli_config(_host(tmp_path, text)).credential_for("registry.lab")
    assert cred is not None and cred.kind == "identitytoken" and cred.secret == TOKEN


def test_hub_under_registry_1_is_wrong_key(tmp_path: Path) -> None:
    """Hub credentials stored under registry-1.docker.io are never looked up for Hub images."""
    text = json.dumps({"auths": {"registry-1.docker.io": {"auth": AUTH}}}, indent=2)
    cli = load_cli_config(_host(tmp_path, text))
    assert cli.credential_for("docker.io") is None
    [f] = cli.findings
    assert f.code == "auth.wrong-key" and f.severity == "warning"
    assert f.evidence["line"] == line_of(text, "registry-1.docker.io")
    assert f.fix is not None and f.fix.params["new_key"] == HUB_AUTH_KEY


def test_docker_io_key_with_right_key_present_is_info(tmp_path: Path) -> None:
    """A stray docker.io entry next to the right key is only informational."""
    text = json.dumps({"auths": {"docker.io": {"auth": AUTH}, HUB_AUTH_KEY: {"auth": AUTH}}})
    [f] = load_cli_config(_host(tmp_path, text)).findings
    assert f.code == "auth.wrong-key" and f.severity == "info"


def test_malformed_auth(tmp_path: Path) -> None:
    """An auth that is not base64 of user:password is auth.malformed at its line, value masked."""
    bad = base64.b64encode(b"no-colon-here").decode()
    text = json.dumps({"auths": {"ghcr.io": {"auth": bad}}}, indent=2)
    cli = load_cli_config(_host(tmp_path, text))
    [f] = cli.findings
    assert f.code == "auth.malformed" and f.evidence["line"] == line_of(text, '"auth"')
    assert f.evidence["value"] == "***" and bad not in json.dumps(f.to_dict())
    assert isinstance(decode_auth("%%%"), str)


def test_malformed_auth_title_names_the_evidence_line(tmp_path: Path) -> None:
    """The title's file:line is the auth value's line, the one the evidence (and the text report's header) gives."""
    text = json.dumps({"auths": {"ghcr.io": {"auth": base64.b64encode(b"no-colon-here").decode()}}}, indent=2)
    [f] = load_cli_config(_host(tmp_path, text)).findings
    line = line_of(text, '"auth"')
    assert f.evidence["line"] == line and f.title.startswith(f"/root/.docker/config.json:{line}: ")


def test_helper_missing_desktop_leftover(tmp_path: Path) -> None:
    """Pattern 11: credsStore "desktop" without docker-credential-desktop on PATH."""
    text = '{\n  "auths": {"https://index.docker.io/v1/": {}},\n  "credsStore": "desktop"\n}\n'
    cli = load_cli_config(_host(tmp_path, text))
    [f] = cli.findings
    assert f.code == "auth.helper-missing" and f.evidence["line"] == 3
    assert f.evidence["binary"] == "docker-credential-desktop"
    assert f.fix is not None and f.fix.params["action"] == "remove" and f.fix.params["key"] == ["credsStore"]
    assert cli.credential_for("docker.io") is None
    assert "docker-credential-desktop" in (cli.credential_source("docker.io") or "")


def test_cred_helper_present_is_not_run(tmp_path: Path) -> None:
    """An installed helper is reported as the source; regtui returns no secret and runs nothing."""
    text = json.dumps({"credHelpers": {"gcr.io": "gcloud"}, "auths": {"gcr.io": {"auth": AUTH}}})
    host = _host(tmp_path, text)
    _executable(tmp_path, "/usr/bin/docker-credential-gcloud")
    cli = load_cli_config(host)
    assert cli.findings == []
    assert cli.credential_for("gcr.io") is None
    assert cli.credential_source("gcr.io", ).startswith("credential helper docker-credential-gcloud")
    assert cli.credential_for("other.lab") is None


def test_default_store_detected_when_no_auth(tmp_path: Path) -> None:
    """With no auth configured, the CLI picks pass when pass and its helper are installed."""
    host = _host(tmp_path, "{}")
    _executable(tmp_path, "/usr/bin/pass")
    _executable(tmp_path, "/usr/bin/docker-credential-pass")
    cli = load_cli_config(host)
    assert cli.default_store == "pass"
    assert cli.helper_for("docker.io") == ("docker-credential-pass",
                                           "detected by the CLI (no auth configured in the file)")


def test_permission_warning(tmp_path: Path) -> None:
    """Credentials readable by others: config.permission with a chmod 600 command."""
    cli = load_cli_config(_host(tmp_path, json.dumps({"auths": {"ghcr.io": {"auth": AUTH}}}), mode=0o644))
    [f] = cli.findings
    assert f.code == "config.permission" and f.fix is not None
    assert f.fix.kind == "command" and f.fix.params["command"] == f"chmod 600 {CONFIG}"


def test_garbage_config_json_is_parse_error(tmp_path: Path) -> None:
    """Broken JSON gives config.parse-error with line and column, and no excerpt of the secret file."""
    text = '{\n  "auths": {\n    "ghcr.io": {"auth": "' + AUTH + '"}\n  ,,\n}\n'
    cli = load_cli_config(_host(tmp_path, text))
    [f] = cli.findings
    assert f.code == "config.parse-error" and f.evidence["line"] == 4 and f.evidence["column"] == 4
    assert "excerpt" not in f.evidence and AUTH not in json.dumps(f.to_dict())


def test_binary_garbage_and_wrong_types(tmp_path: Path) -> None:
    """Random bytes and wrongly typed fields become findings, never exceptions."""
    cli = load_cli_config(_host(tmp_path, b"\xff\xfe\x00garbage\xc3\x28"))
    assert cli.findings[0].code == "config.parse-error"
    text = json.dumps({"auths": ["ghcr.io"], "credsStore": 7, "credHelpers": {"x": ["y"]}})
    codes = [f.code for f in load_cli_config(_host(tmp_path, text)).findings]
    assert codes == ["config.invalid-value"] * 3


def test_auths_entry_wrong_type(tmp_path: Path) -> None:
    """An auths entry that is a string, or an auth that is a number, is invalid, not fatal."""
    text = json.dumps({"auths": {"a.lab": "dXNlcjpwdw==", "b.lab": {"auth": 5}}})
    codes = [f.code for f in load_cli_config(_host(tmp_path, text)).findings]
    assert codes == ["config.invalid-value", "config.invalid-value"]


def test_docker_config_env_only_on_live_root(tmp_path: Path) -> None:
    """$DOCKER_CONFIG is the shell's: honoured on the live root, ignored under another --root."""
    write_tree(tmp_path, {"/cfg/config.json": json.dumps({"auths": {"registry.lab": {"auth": AUTH}}})})
    offline = load_cli_config(Host(root=tmp_path, environ={"DOCKER_CONFIG": "/cfg"}))
    assert offline.path == CONFIG
    live = load_cli_config(Host(root=Path("/"), environ={"DOCKER_CONFIG": str(tmp_path / "cfg")}))
    assert live.path == str(tmp_path / "cfg" / "config.json")
    assert live.credential_for("registry.lab") is not None


def test_docker_auth_config_env_overlay(tmp_path: Path) -> None:
    """DOCKER_AUTH_CONFIG overlays exact keys; garbage in it is a parse error without the value."""
    env = {"DOCKER_CONFIG": str(tmp_path / "none"),
           "DOCKER_AUTH_CONFIG": json.dumps({"auths": {"registry.lab": {"auth": AUTH}}})}
    cli = load_cli_config(Host(root=Path("/"), environ=env))
    cred = cli.credential_for("registry.lab")
    assert cred is not None and cred.source.startswith("DOCKER_AUTH_CONFIG")
    env["DOCKER_AUTH_CONFIG"] = '{"auths": {"x": {"auth": "' + AUTH + '"}'
    bad = load_cli_config(Host(root=Path("/"), environ=env))
    assert bad.findings[0].code == "config.parse-error" and AUTH not in json.dumps(bad.findings[0].to_dict())


def test_secrets_never_in_outputs(tmp_path: Path) -> None:
    """Passwords, auth blobs and tokens appear in no finding, source or credential repr."""
    text = json.dumps({"auths": {"registry-1.docker.io": {"auth": AUTH}, "a.lab": {"identitytoken": TOKEN},
                                 "b.lab": {"username": "u", "password": SECRET}}, "credsStore": "gone"})
    cli = load_cli_config(_host(tmp_path, text, mode=0o644))
    dumped = json.dumps([f.to_dict() for f in cli.findings] + [s.to_dict() for s in cli.sources])
    dumped += repr(cli) + str(cli.credential_for("b.lab"))
    for secret in (SECRET, AUTH, TOKEN):
        assert secret not in dumped
