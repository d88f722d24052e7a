"""The fix engine itself: plan purity, refusal on concurrent edits, backups and undo, mode and owner,
nothing written outside the root, validation and rollback, command fixes, the CLI contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from regtui import fixes
from regtui.cli import main
from regtui.findings import finding, fix
from regtui.fixes import RunResult
from regtui.fixes import _fs
from regtui.host import Host
from regtui.options import CheckOptions
from test_fix_kit import CONTAINERD_16, DOCKER_27, ca_pem, find, make_root, snapshot

DJ = "/etc/docker/daemon.json"
DPKG = "/var/lib/dpkg/status"
MIRROR_KEY = '{\n  "registry-mirror": "https://m.example"\n}\n'


def _mirror_root(tmp_path: Path) -> Path:
    return make_root(tmp_path, {DJ: MIRROR_KEY, DPKG: DOCKER_27})


def test_file_changed_after_planning_is_refused(tmp_path: Path) -> None:
    """An edit between plan and apply: apply refuses with a clear message and writes nothing, no backup kept."""
    root = _mirror_root(tmp_path)
    host, options, f = find(root, "config.ignored-key", runtime="docker")
    plan = fixes.plan(f, host, options=options)
    (root / DJ.lstrip("/")).write_text(MIRROR_KEY.replace("m.example", "other.example"))
    before = snapshot(root)
    result = fixes.apply(plan, options, host=host)
    assert not result.applied and not result.ok
    assert "changed since the fix was planned; nothing was written" in result.message
    assert snapshot(root) == before and fixes.list_backups(host) == []


def test_file_created_after_planning_is_refused(tmp_path: Path) -> None:
    """A file the plan would create appears before apply: refused, the newcomer untouched."""
    unit = "[Service]\nExecStart=/usr/bin/dockerd --config-file /etc/docker/custom.json\n"
    root = make_root(tmp_path, {"/lib/systemd/system/docker.service": unit, DPKG: DOCKER_27})
    host, options, f = find(root, "config.invalid-value", runtime="docker")
    plan = fixes.plan(f, host, options=options)
    (root / "etc/docker").mkdir(parents=True)
    (root / "etc/docker/custom.json").write_text('{"debug": true}\n')
    result = fixes.apply(plan, options, host=host)
    assert not result.applied and "was created since the fix was planned" in result.message
    assert (root / "etc/docker/custom.json").read_text() == '{"debug": true}\n'


def test_mode_and_owner_survive(tmp_path: Path) -> None:
    """The rewritten file keeps its permission bits and its owner and group."""
    root = _mirror_root(tmp_path)
    path = root / DJ.lstrip("/")
    os.chmod(path, 0o604)
    if os.geteuid() == 0:
        os.chown(path, 1234, 2345)
    host, options, f = find(root, "config.ignored-key", runtime="docker")
    assert fixes.apply(f, options, host=host).applied
    st = os.stat(path)
    assert st.st_mode & 0o7777 == 0o604
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 2345)


def test_backup_manifest_records_paths_hashes_modes_and_absent_files(tmp_path: Path) -> None:
    """The manifest lists each file (absent ones as absent), with hashes, mode and owner; blobs are 0600."""
    root = make_root(tmp_path, {"/lib/systemd/system/docker.service": "[Service]\nExecStart=/usr/bin/dockerd -H fd:// "
                                "--insecure-registry r.example:5000\n", DPKG: DOCKER_27,
                                DJ: '{"insecure-registries": ["r.example:5000"]}\n'})
    host, options, f = find(root, "config.flag-conflict", runtime="docker")
    result = fixes.apply(f, options, host=host)
    folder = root / "var/lib/regtui/backups" / str(result.backup_id)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "applied" and manifest["fix_id"] == f.fix.id
    (record,) = manifest["files"]
    assert record["path"] == "/etc/systemd/system/docker.service.d/override.conf"
    assert record["existed"] is False and record["before_sha256"] is None and record["after_sha256"]
    assert manifest["dirs_created"] == ["/etc/systemd", "/etc/systemd/system", "/etc/systemd/system/docker.service.d"]
    assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    assert fixes.undo(str(result.backup_id), options, host=host).ok
    assert not (root / "etc/systemd").exists()


def test_state_dir_override_keeps_the_root_clean(tmp_path: Path) -> None:
    """--state-dir puts the backups there; nothing is created under ROOT/var/lib/regtui."""
    root = _mirror_root(tmp_path)
    state = tmp_path / "state"
    host, options, f = find(root, "config.ignored-key", runtime="docker", state_dir=str(state))
    result = fixes.apply(f, options, host=host)
    assert result.applied and (state / "backups" / str(result.backup_id) / "manifest.json").exists()
    assert not (root / "var/lib/regtui").exists()
    assert fixes.undo(str(result.backup_id), options, host=host).ok


def test_undo_twice_is_refused_and_force_restores_over_later_edits(tmp_path: Path) -> None:
    """A second undo is refused; after a later edit undo refuses, and --force restores the backup anyway."""
    root = _mirror_root(tmp_path)
    host, options, f = find(root, "config.ignored-key", runtime="docker")
    first = fixes.apply(f, options, host=host)
    assert fixes.undo(str(first.backup_id), options, host=host).ok
    assert "already undone" in fixes.undo(str(first.backup_id), options, host=host).message
    second = fixes.apply(fixes.plan(f, host, options=options), options, host=host)
    (root / DJ.lstrip("/")).write_text('{"registry-mirrors": ["https://edited.example"]}\n')
    refused = fixes.undo(str(second.backup_id), options, host=host)
    assert not refused.ok and "--force" in refused.message
    forced = fixes.undo(str(second.backup_id), options, host=host, force=True)
    assert forced.ok and (root / DJ.lstrip("/")).read_text() == MIRROR_KEY


def test_already_done_is_an_empty_plan(tmp_path: Path) -> None:
    """When the files already say what the fix would write, the plan is empty and apply does nothing."""
    pem = ca_pem()
    root = make_root(tmp_path, {"/etc/docker/certs.d/r.example:5000/ca.crt": pem})
    from test_fix_certs import _trust

    f = _trust("docker", pem, install_to="/etc/docker/certs.d/r.example:5000/ca.crt", via="certs.d")
    plan = fixes.plan(f, Host(root=root))
    assert plan.empty and not plan.can_apply
    result = fixes.apply(plan, host=Host(root=root))
    assert result.ok and not result.applied and "nothing to do" in result.message


def test_symlink_out_of_the_root_is_never_written_through(tmp_path: Path) -> None:
    """/etc/docker linking to a directory outside the root: creating a file there is refused, outside untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    unit = "[Service]\nExecStart=/usr/bin/dockerd --config-file /etc/docker/custom.json\n"
    root = make_root(tmp_path, {"/lib/systemd/system/docker.service": unit, DPKG: DOCKER_27, "/etc/": ""})
    (root / "etc/docker").symlink_to(outside)
    host, options, f = find(root, "config.invalid-value", runtime="docker")
    result = fixes.apply(f, options, host=host)
    assert not result.applied and "symbolic link" in result.message
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_file_swapped_for_a_link_after_planning_is_not_followed(tmp_path: Path) -> None:
    """daemon.json replaced by a link to an outside file after planning: refused, the outside file unchanged."""
    outside = tmp_path / "victim.json"
    outside.write_text(MIRROR_KEY)
    root = _mirror_root(tmp_path)
    host, options, f = find(root, "config.ignored-key", runtime="docker")
    plan = fixes.plan(f, host, options=options)
    (root / DJ.lstrip("/")).unlink()
    (root / DJ.lstrip("/")).symlink_to(outside)
    result = fixes.apply(plan, options, host=host)
    assert not result.applied
    assert outside.read_text() == MIRROR_KEY


@pytest.mark.parametrize("link", ["../../../../../..", "/", "/../../..", "../etc/../../.."])
def test_write_targets_always_resolve_inside_the_root(tmp_path: Path, link: str) -> None:
    """Whatever a link in the root says, the write target is under the root (links are re-rooted)."""
    root = make_root(tmp_path, {"/etc/": ""})
    (root / "etc/evil").symlink_to(link)
    t = _fs.target(Host(root=root), "/etc/evil/daemon.json")
    assert str(t.real).startswith(str(root) + "/")


def test_validator_failure_rolls_back_and_removes_created_directories(tmp_path: Path) -> None:
    """containerd rejecting the new config.toml: nothing is renamed, new directories are removed, no backup kept."""
    config = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
              '  endpoint = ["https://mirror.example"]\n')
    root = make_root(tmp_path, {"/etc/containerd/config.toml": config, DPKG: CONTAINERD_16})
    host, options, f = find(root, "config.legacy-registry-config", runtime="containerd")
    before = snapshot(root)

    def runner(argv, timeout):  # type: ignore[no-untyped-def]
        return RunResult(1, "", "containerd: failed to load TOML: boom\n")

    result = fixes.apply(f, options, host=host, runner=runner, validators={"containerd": "/usr/bin/containerd"})
    assert not result.applied and "containerd config dump rejected" in result.message and "boom" in result.message
    assert snapshot(root) == before
    assert fixes.list_backups(host) == []  # nothing was changed: no backup is kept


def test_a_fix_that_adds_an_error_is_refused_while_planning(tmp_path: Path) -> None:
    """A planned hosts.toml naming a CA file that does not exist would fail every pull: the plan is refused."""
    config = ('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
              '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = ["https://m.example"]\n'
              '[plugins."io.containerd.grpc.v1.cri".registry.configs."m.example".tls]\n  ca_file = "/etc/ssl/gone.pem"\n')
    root = make_root(tmp_path, {"/etc/containerd/config.toml": config, DPKG: CONTAINERD_16})
    host, options, f = find(root, "config.mirrors-with-config-path", runtime="containerd")
    plan = fixes.plan(f, host, options=options)
    assert not plan.can_apply and plan.blocked.startswith("validation failed") and "/etc/ssl/gone.pem" in plan.blocked
    assert any(c.name == "predicted re-check" and c.status == "failed" for c in plan.checks)


def test_manual_fix_writes_nothing(tmp_path: Path) -> None:
    """A manual fix has steps with the evidence and cannot be applied."""
    root = make_root(tmp_path, {DJ: '{"registry-mirrors": [}\n', DPKG: DOCKER_27})
    host, options, f = find(root, "config.parse-error", runtime="docker")
    plan = fixes.plan(f, host, options=options)
    assert plan.kind == "manual" and not plan.can_apply and f"{DJ}:1" in plan.steps
    result = fixes.apply(plan, options, host=host)
    assert not result.applied and "by hand" in result.message


def test_command_fix_runs_only_through_the_runner_inside_the_root(tmp_path: Path) -> None:
    """config.permission: the exact chmod is shown; apply runs it via the runner, chrooted into the root."""
    cfg = '{"auths": {"reg.example": {"auth": "dXNlcjpwYXNz"}}}\n'
    root = make_root(tmp_path, {"/root/.docker/config.json": cfg, DPKG: DOCKER_27}, {"/root/.docker/config.json": 0o644})
    host, options, f = find(root, "config.permission", runtime="docker")
    plan = fixes.plan(f, host, options=options)
    assert plan.kind == "command" and plan.commands[0].command == "chmod 600 /root/.docker/config.json"
    assert "chmod 600" in fixes.render(plan)
    calls = []

    def runner(argv, timeout):  # type: ignore[no-untyped-def]
        calls.append(list(argv))
        return RunResult(0)

    result = fixes.apply(plan, options, host=host, runner=runner)
    assert result.applied and calls == [["chroot", str(root), "sh", "-c", "chmod 600 /root/.docker/config.json"]]
    assert result.gone is False  # the fake runner changed nothing, and the re-check says so


def test_command_with_a_placeholder_is_shown_not_run(tmp_path: Path) -> None:
    """`ctr images pull --hosts-dir ... <image>` is shown; it cannot be applied."""
    hosts = 'server = "https://reg.example"\n'
    root = make_root(tmp_path, {"/etc/containerd/config.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                '  config_path = "/etc/containerd/certs.d"\n', DPKG: CONTAINERD_16,
                                "/etc/containerd/certs.d/reg.example/hosts.toml": hosts})
    host, options, f = find(root, "config.hosts-dir-unused", runtime="containerd", match=lambda f: f.fix.kind == "command")
    plan = fixes.plan(f, host, options=options)
    assert plan.kind == "command" and not plan.can_apply and "<image>" in plan.commands[0].why_not


def test_restart_commands() -> None:
    """Each restart statement maps to the systemctl command offered (daemon-reload after unit changes)."""
    assert fixes.restart_command("reload docker") == "systemctl reload docker"
    assert fixes.restart_command("restart containerd", daemon_reload=True) == \
        "systemctl daemon-reload && systemctl restart containerd"
    assert fixes.restart_command("none") == ""


def test_workbench_adapter_previews_applies_and_undoes(tmp_path: Path) -> None:
    """The workbench's fix back end (regtui.tui.fixing) drives this engine with a finding and the options."""
    from regtui.tui.fixing import EngineFixes

    root = _mirror_root(tmp_path)
    host, options, f = find(root, "config.ignored-key", runtime="docker")
    backend = EngineFixes()
    assert backend.available
    preview = backend.preview(f, options)
    assert preview.can_apply and '"registry-mirrors"' in preview.diff and "reload docker" in preview.note
    applied = backend.apply(f, options)
    assert applied.ok and applied.backup_id
    assert backend.undo(applied.backup_id, options).ok
    assert (root / DJ.lstrip("/")).read_text() == MIRROR_KEY


# -- the CLI ----------------------------------------------------------------------------------

def _cli(*args: str) -> int:
    return main(["fix", "--offline", "--runtime", "docker", *args])


def test_cli_preview_writes_nothing_and_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fix FIX_ID without --apply prints the diff and writes nothing; --list lists the id."""
    root = _mirror_root(tmp_path)
    before = snapshot(root)
    assert _cli("--root", str(root), "--list") == 0
    fix_id = "config.ignored-key@etc/docker/daemon.json#registry-mirror"
    assert fix_id in capsys.readouterr().out
    assert _cli("--root", str(root), fix_id) == 0
    out = capsys.readouterr().out
    assert '+  "registry-mirrors": ["https://m.example"]' in out and "systemctl reload docker" in out
    assert snapshot(root) == before


def test_cli_apply_needs_a_terminal_or_yes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a TTY and without --yes, --apply is a usage error (exit 2, nothing written); with --yes it applies."""
    root = _mirror_root(tmp_path)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    before = snapshot(root)
    assert _cli("--root", str(root), "--code", "config.ignored-key", "--apply") == 2
    assert "needs --yes" in capsys.readouterr().err and snapshot(root) == before
    assert _cli("--root", str(root), "--code", "config.ignored-key", "--apply", "--yes") == 0
    out = capsys.readouterr().out
    assert "the re-check no longer reports it" in out and "regtui undo " in out
    assert json.loads((root / DJ.lstrip("/")).read_text()) == {"registry-mirrors": ["https://m.example"]}


def test_cli_exit_codes_for_usage_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown fix id or code: 2; nothing to fix for a code: 0; a blocked fix with --apply --yes: 1."""
    root = _mirror_root(tmp_path)
    assert _cli("--root", str(root), "no-such-fix") == 2
    assert _cli("--root", str(root), "--code", "config.nonsense") == 2
    assert _cli("--root", str(root), "--code", "config.blocked", "--apply", "--yes") == 0
    bad = make_root(tmp_path / "b", {DJ: '{"registry-mirrors": [}\n', DPKG: DOCKER_27})
    assert _cli("--root", str(bad), "--code", "config.parse-error", "--apply", "--yes") == 1


def test_cli_undo_list_restore_and_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """undo --list shows the backup; undo restores (0); undo of an unknown id is a usage error (2); a changed file: 1."""
    root = _mirror_root(tmp_path)
    assert _cli("--root", str(root), "--code", "config.ignored-key", "--apply", "--yes") == 0
    capsys.readouterr()
    assert main(["undo", "--root", str(root), "--list"]) == 0
    listing = capsys.readouterr().out
    backup_id = listing.split()[0]
    assert "[applied]" in listing and "/etc/docker/daemon.json" in listing
    assert main(["undo", "--root", str(root), "nope"]) == 2
    assert main(["undo", "--root", str(root), backup_id]) == 0
    assert (root / DJ.lstrip("/")).read_text() == MIRROR_KEY
    assert _cli("--root", str(root), "--code", "config.ignored-key", "--apply", "--yes") == 0
    capsys.readouterr()
    main(["undo", "--root", str(root), "--list"])
    latest = capsys.readouterr().out.strip().splitlines()[-3].split()[0]
    (root / DJ.lstrip("/")).write_text("{}\n")
    assert main(["undo", "--root", str(root), latest]) == 1
    assert main(["undo", "--root", str(root), latest, "--force"]) == 0


def test_cli_fix_that_leaves_its_finding_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When the re-check still reports the finding after apply, fix exits 1 and says so."""
    import json as _json

    auth = _json.dumps({"auths": {"reg.example": {"auth": "dXNlcjpjcmlv"}}}) + "\n"
    root = make_root(tmp_path, {"/etc/containers/registries.conf": "", "/etc/crio/": "",
                                "/run/user/0/containers/auth.json": auth}, {"/run/user/0/containers/auth.json": 0o600})
    rc = main(["fix", "--offline", "--runtime", "crio", "--root", str(root), "--code", "auth.wrong-key", "--apply", "--yes"])
    assert rc == 1 and "still reports it" in capsys.readouterr().out


def test_finding_without_fix_is_refused_cleanly(tmp_path: Path) -> None:
    """plan() of a finding with no fix says so instead of raising."""
    f = finding("dns.slow", "reg.example", "slow")
    plan = fixes.plan(f, Host(root=tmp_path))
    assert not plan.can_apply and plan.blocked == "this finding has no suggested fix"


def test_plan_does_not_need_options(tmp_path: Path) -> None:
    """plan(finding, host) works without options (offline, the finding's runtime)."""
    root = _mirror_root(tmp_path)
    _, _, f = find(root, "config.ignored-key", runtime="docker")
    plan = fixes.plan(f, Host(root=root))
    assert plan.can_apply and plan.predicted_gone is True
    _ = CheckOptions  # the options type callers pass
    _ = fix
