"""Fix catalogue, Docker: daemon.json keys and values, the ExecStart conflict, certs.d, the CLI's config.json."""

from __future__ import annotations

import json
from pathlib import Path

from regtui import fixes
from test_fix_kit import DOCKER_20, DOCKER_27, make_root, roundtrip

DJ = "/etc/docker/daemon.json"
DPKG = "/var/lib/dpkg/status"
VENDOR_UNIT = """[Unit]
Description=Docker Application Container Engine

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --insecure-registry reg.example:5000 --containerd=/run/containerd/containerd.sock
ExecReload=/bin/kill -s HUP $MAINPID
"""


def test_registry_mirror_moves_to_registry_mirrors_and_merges(tmp_path: Path) -> None:
    """'registry-mirror' joins the existing 'registry-mirrors' list; indentation, order, mode and newline survive."""
    text = ('{\n    "debug": true,\n    "registry-mirror": "https://m2.example",\n'
            '    "registry-mirrors": [\n        "https://m1.example"\n    ],\n    "log-level": "warn"\n}\n')
    root = make_root(tmp_path, {DJ: text, DPKG: DOCKER_27}, {DJ: 0o640})
    r = roundtrip(root, "config.ignored-key", runtime="docker", match=lambda f: "registry-mirror" in f.fix.id)
    new = r.texts[DJ]
    assert json.loads(new) == {"debug": True, "registry-mirrors": ["https://m1.example", "https://m2.example"],
                               "log-level": "warn"}
    assert new.startswith('{\n    "debug": true,\n    "registry-mirrors": [\n        "https://m1.example",\n'
                          '        "https://m2.example"\n    ],\n') and new.endswith("}\n")
    assert r.plan.restart == "reload docker" and r.plan.restart_command == "systemctl reload docker"


def test_unknown_key_renamed_in_place(tmp_path: Path) -> None:
    """A key dockerd rejects ('registry_mirrors') is renamed where it stands; dockerd would start again."""
    text = '{"registry_mirrors": ["https://m.example"], "debug": false}\n'
    root = make_root(tmp_path, {DJ: text, DPKG: DOCKER_27})
    r = roundtrip(root, "config.unknown-key", runtime="docker")
    assert r.texts[DJ] == '{"registry-mirrors": ["https://m.example"], "debug": false}\n'


def test_unknown_key_without_meaning_is_removed(tmp_path: Path) -> None:
    """A key with no near match is removed (the plan says so; the backup keeps it)."""
    root = make_root(tmp_path, {DJ: '{\n  "debug": true,\n  "frobnicate": 3\n}\n', DPKG: DOCKER_27})
    r = roundtrip(root, "config.unknown-key", runtime="docker")
    assert r.texts[DJ] == '{\n  "debug": true\n}\n'
    assert any("removed" in n for n in r.plan.notes)


def test_flag_name_proxy_key_moves_into_proxies(tmp_path: Path) -> None:
    """Top-level 'https-proxy' (a flag name, ignored) moves into a new "proxies" object."""
    root = make_root(tmp_path, {DJ: '{\n  "https-proxy": "http://proxy.example:3128"\n}\n', DPKG: DOCKER_27})
    r = roundtrip(root, "config.ignored-key", runtime="docker")
    assert json.loads(r.texts[DJ]) == {"proxies": {"https-proxy": "http://proxy.example:3128"}}
    assert r.texts[DJ] == '{\n  "proxies": {\n    "https-proxy": "http://proxy.example:3128"\n  }\n}\n'


def test_flattened_object_is_unnested(tmp_path: Path) -> None:
    """An object dockerd flattens and ignores ('registry': {...}) has its keys moved to the top level."""
    text = '{\n  "registry": {"insecure-registries": ["reg.example:5000"]},\n  "debug": true\n}\n'
    root = make_root(tmp_path, {DJ: text, DPKG: DOCKER_27})
    r = roundtrip(root, "config.ignored-key", runtime="docker", match=lambda f: f.fix.params.get("action") == "unnest")
    assert json.loads(r.texts[DJ]) == {"debug": True, "insecure-registries": ["reg.example:5000"]}


def test_mirror_without_scheme_is_normalised(tmp_path: Path) -> None:
    """A mirror without https:// (dockerd refuses to start) gets the scheme."""
    root = make_root(tmp_path, {DJ: '{ "registry-mirrors": ["mirror.example.com"] }\n', DPKG: DOCKER_27})
    r = roundtrip(root, "config.invalid-value", runtime="docker")
    assert r.texts[DJ] == '{ "registry-mirrors": ["https://mirror.example.com"] }\n'


def test_insecure_entry_scheme_is_stripped(tmp_path: Path) -> None:
    """'http://reg:5000' in insecure-registries becomes 'reg:5000'."""
    root = make_root(tmp_path, {DJ: '{"insecure-registries": ["http://reg.example:5000"]}', DPKG: DOCKER_27})
    r = roundtrip(root, "config.invalid-value", runtime="docker")
    assert r.texts[DJ] == '{"insecure-registries": ["reg.example:5000"]}'


def test_wrong_type_value_is_coerced(tmp_path: Path) -> None:
    """"3" (a string) for max-concurrent-downloads becomes 3."""
    root = make_root(tmp_path, {DJ: '{\n\t"max-concurrent-downloads": "3"\n}\n', DPKG: DOCKER_27})
    r = roundtrip(root, "config.invalid-value", runtime="docker")
    assert r.texts[DJ] == '{\n\t"max-concurrent-downloads": 3\n}\n'


def test_docker_hub_insecure_entry_is_removed(tmp_path: Path) -> None:
    """docker.io in insecure-registries (never honoured) is removed, the other entries stay."""
    root = make_root(tmp_path, {DJ: '{"insecure-registries": ["docker.io", "reg.example:5000"]}\n', DPKG: DOCKER_27})
    r = roundtrip(root, "config.ignored-key", runtime="docker")
    assert json.loads(r.texts[DJ]) == {"insecure-registries": ["reg.example:5000"]}


def test_missing_config_file_is_created(tmp_path: Path) -> None:
    """--config-file naming a missing file: the file is created with {}; undo deletes it again."""
    unit = VENDOR_UNIT.replace(" --insecure-registry reg.example:5000", " --config-file /etc/docker/custom.json")
    root = make_root(tmp_path, {"/lib/systemd/system/docker.service": unit, DPKG: DOCKER_27})
    r = roundtrip(root, "config.invalid-value", runtime="docker")
    assert r.plan.changes[0].before is None and r.texts["/etc/docker/custom.json"] == "{}\n"


def test_flag_conflict_dropin_keeps_file_value(tmp_path: Path) -> None:
    """A flag also set in daemon.json: a drop-in restarts dockerd without it; the packaged unit is untouched."""
    root = make_root(tmp_path, {"/lib/systemd/system/docker.service": VENDOR_UNIT, DPKG: DOCKER_27,
                                DJ: '{"insecure-registries": ["reg.example:5000"]}\n'})
    r = roundtrip(root, "config.flag-conflict", runtime="docker")
    dropin = "/etc/systemd/system/docker.service.d/override.conf"
    assert set(r.plan.files) == {dropin}
    assert r.texts[dropin] == ("[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// "
                               "--containerd=/run/containerd/containerd.sock\n")
    assert r.plan.restart_command == "systemctl daemon-reload && systemctl restart docker"


def test_flag_conflict_edits_existing_dropin(tmp_path: Path) -> None:
    """When the ExecStart is already in an administrator's drop-in, that drop-in is edited line-wise."""
    dropin = "/etc/systemd/system/docker.service.d/10-flags.conf"
    text = "# our flags\n[Service]\nLimitNOFILE=4096\nExecStart=\nExecStart=/usr/bin/dockerd --debug --insecure-registry r.example:5000\n"
    root = make_root(tmp_path, {"/lib/systemd/system/docker.service": VENDOR_UNIT.replace(
        " --insecure-registry reg.example:5000", ""), dropin: text, DPKG: DOCKER_27,
        DJ: '{"insecure-registries": ["r.example:5000"]}\n'})
    r = roundtrip(root, "config.flag-conflict", runtime="docker")
    assert r.texts[dropin] == "# our flags\n[Service]\nLimitNOFILE=4096\nExecStart=\nExecStart=/usr/bin/dockerd --debug\n"


def test_credential_helper_entry_removed(tmp_path: Path) -> None:
    """credsStore naming a helper that is not installed is removed from config.json, other keys kept."""
    cfg = '{\n  "auths": {\n    "reg.example": {}\n  },\n  "credsStore": "desktop"\n}\n'
    root = make_root(tmp_path, {"/root/.docker/config.json": cfg, DPKG: DOCKER_27},
                     {"/root/.docker/config.json": 0o600})
    r = roundtrip(root, "auth.helper-missing", runtime="docker")
    assert r.texts["/root/.docker/config.json"] == '{\n  "auths": {\n    "reg.example": {}\n  }\n}\n'


def test_hub_credentials_moved_to_the_cli_key_and_never_previewed(tmp_path: Path) -> None:
    """auths["docker.io"] becomes auths["https://index.docker.io/v1/"]; the preview masks the secret."""
    secret = "dXNlcjpzM2NyZXQtcGFzcw=="  # user:s3cret-pass
    cfg = json.dumps({"auths": {"docker.io": {"auth": secret}}}, indent=2) + "\n"
    root = make_root(tmp_path, {"/root/.docker/config.json": cfg, DPKG: DOCKER_27}, {"/root/.docker/config.json": 0o600})
    r = roundtrip(root, "auth.wrong-key", runtime="docker")
    data = json.loads(r.texts["/root/.docker/config.json"])
    assert data == {"auths": {"https://index.docker.io/v1/": {"auth": secret}}}
    shown = fixes.render(r.plan) + fixes.preview(r.plan).diff
    assert secret not in shown and "s3cret" not in shown and "***" in shown


def test_certs_dir_for_containerd_store_copied_to_docker(tmp_path: Path) -> None:
    """Docker's containerd store reads /etc/docker/certs.d only: the containerd hosts dir is copied there."""
    files = {"/etc/containerd/certs.d/reg.example:5000/hosts.toml": 'server = "https://reg.example:5000"\n[host]\n',
             "/etc/containerd/certs.d/reg.example:5000/ca.crt": "-----BEGIN CERTIFICATE-----\nx\n", DPKG: DOCKER_27}
    root = make_root(tmp_path, files)
    r = roundtrip(root, "config.hosts-dir-unused", runtime="docker", docker_store="containerd",
                  match=lambda f: f.fix.params.get("action") == "copy")
    assert set(r.plan.files) == {"/etc/docker/certs.d/reg.example:5000/hosts.toml",
                                 "/etc/docker/certs.d/reg.example:5000/ca.crt"}


def test_misnamed_certs_dir_renamed_to_host_and_port(tmp_path: Path) -> None:
    """certs.d/reg.example (no port) for reg.example:5000/app is renamed; the old directory goes away, undo restores it."""
    files = {"/etc/docker/certs.d/reg.example/ca.crt": "-----BEGIN CERTIFICATE-----\nx\n", DPKG: DOCKER_27}
    root = make_root(tmp_path, files, {"/etc/docker/certs.d/reg.example/ca.crt": 0o600})
    r = roundtrip(root, "config.hosts-dir-misnamed", runtime="docker", images=("reg.example:5000/app:1",))
    assert "/etc/docker/certs.d/reg.example" not in r.after
    assert r.after["/etc/docker/certs.d/reg.example:5000/ca.crt"][2] == 0o600


def test_scheme_named_certs_dir_is_lifted(tmp_path: Path) -> None:
    """`mkdir -p certs.d/https://reg.example:5000` made certs.d/https:/reg.example:5000: moved to the right name."""
    files = {"/etc/docker/certs.d/https:/reg.example:5000/ca.crt": "-----BEGIN CERTIFICATE-----\nx\n", DPKG: DOCKER_27}
    root = make_root(tmp_path, files, {"/etc/docker/certs.d/https:": 0o700})
    r = roundtrip(root, "config.hosts-dir-misnamed", runtime="docker", images=("reg.example:5000/app:1",))
    assert "/etc/docker/certs.d/https:" not in r.after and "/etc/docker/certs.d/reg.example:5000/ca.crt" in r.after


def test_engine_20_10_has_no_validator(tmp_path: Path) -> None:
    """Under a live-looking validator setup, dockerd 20.10 without --validate is reported as unavailable."""
    from regtui.fixes import RunResult, run_validator

    calls = []

    def runner(argv, timeout):  # type: ignore[no-untyped-def]
        calls.append(list(argv))
        return RunResult(0, "Usage: dockerd [OPTIONS]\n  --config-file string\n")

    check = run_validator("dockerd", tmp_path / "dj", "/usr/bin/dockerd", runner)
    assert check.status == "unavailable" and "validator unavailable" in check.detail
    assert calls == [["/usr/bin/dockerd", "--help"]]


def test_dockerd_validate_runs_on_the_temp_file_and_can_refuse(tmp_path: Path) -> None:
    """With --validate support, a failing validation stops the apply: nothing is written, no backup is kept."""
    from regtui.fixes import RunResult

    root = make_root(tmp_path, {DJ: '{"registry-mirror": "https://m.example"}\n', DPKG: DOCKER_20})
    from test_fix_kit import find, snapshot

    host, options, finding = find(root, "config.ignored-key", runtime="docker")
    seen: list[str] = []

    def runner(argv, timeout):  # type: ignore[no-untyped-def]
        if argv[-1] == "--help":
            return RunResult(0, "      --validate    Validate daemon configuration and exit\n")
        seen.append(Path(argv[-1]).read_text())
        return RunResult(1, "", "unable to configure the Docker daemon with file X: bad\n")

    before = snapshot(root)
    result = fixes.apply(fixes.plan(finding, host, options=options), options, host=host, runner=runner,
                         validators={"dockerd": "/usr/sbin/dockerd"})
    assert not result.applied and "dockerd --validate rejected" in result.message
    assert seen and '"registry-mirrors"' in seen[0]
    assert snapshot(root) == before
    assert fixes.list_backups(host) == []  # nothing was changed: no backup is kept


def test_insecure_entry_removed_so_certs_d_is_read(tmp_path: Path) -> None:
    """A registry listed insecure never gets its certs.d CA or client cert: the entry is removed from daemon.json."""
    from test_fix_kit import ca_pem

    root = make_root(tmp_path, {DJ: '{"insecure-registries": ["reg.example:5000", "10.0.0.0/8"]}\n', DPKG: DOCKER_27,
                                "/etc/docker/certs.d/reg.example:5000/ca.crt": ca_pem()})
    r = roundtrip(root, "config.hosts-dir-unused", runtime="docker", images=("reg.example:5000/app:1",))
    assert r.texts[DJ] == '{"insecure-registries": ["10.0.0.0/8"]}\n'


def test_ca_pem_renamed_to_crt(tmp_path: Path) -> None:
    """certs.d/<host>/ca.pem (ignored: CAs must end in .crt) is renamed to ca.crt, mode kept."""
    from test_fix_kit import ca_pem

    pem = "/etc/docker/certs.d/reg.example:5000/ca.pem"
    root = make_root(tmp_path, {DJ: "{}\n", DPKG: DOCKER_27, pem: ca_pem()}, {pem: 0o640})
    r = roundtrip(root, "config.invalid-value", runtime="docker", images=("reg.example:5000/app:1",))
    assert r.plan.files == ("/etc/docker/certs.d/reg.example:5000/ca.crt", pem)
    assert r.after["/etc/docker/certs.d/reg.example:5000/ca.crt"][2] == 0o640


def test_cred_helpers_entry_removed(tmp_path: Path) -> None:
    """One credHelpers entry naming a missing helper is removed; the other stays."""
    cfg = '{"credHelpers": {"gcr.io": "gcloud", "reg.example": "pass"}}\n'
    root = make_root(tmp_path, {"/root/.docker/config.json": cfg, DPKG: DOCKER_27}, {"/root/.docker/config.json": 0o600})
    r = roundtrip(root, "auth.helper-missing", runtime="docker", match=lambda f: "gcr.io" in f.subject)
    assert r.texts["/root/.docker/config.json"] == '{"credHelpers": {"reg.example": "pass"}}\n'


def test_hub_mirror_written_into_a_registrys_hosts_toml(tmp_path: Path) -> None:
    """Docker's containerd store, non-Hub image: a hosts.toml for the registry is created with the mirror."""
    import tomllib

    root = make_root(tmp_path, {DJ: '{"registry-mirrors": ["https://mirror.example"]}\n', DPKG: DOCKER_27})
    # The planner still says daemon.json's mirrors do not apply to ghcr.io (true: the hosts.toml one does now).
    r = roundtrip(root, "mirror.not-applied", runtime="docker", images=("ghcr.io/org/app:1",), docker_store="containerd",
                  expect_gone=False)
    assert tomllib.loads(r.texts["/etc/docker/certs.d/ghcr.io/hosts.toml"]) == {
        "server": "https://ghcr.io", "host": {"https://mirror.example": {"capabilities": ["pull", "resolve"]}}}
    assert any("Docker Hub caches" in n for n in r.plan.notes)
