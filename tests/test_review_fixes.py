"""Review of the fix engine: damaged backups, an unwritable state directory, a held lock and secrets in
error text end as a refusal with a message, never as a traceback, a hang or a leaked credential."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from regtui import fixes
from regtui.fixes import RunResult
from regtui.fixes import _backup
from test_fix_kit import DOCKER_27, find, make_root, snapshot

DJ = "/etc/docker/daemon.json"
DPKG = "/var/lib/dpkg/status"
MIRROR_KEY = '{\n  "registry-mirror": "https://m.example"\n}\n'
SECRET = "hunter2-s3cret"


def _applied(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = make_root(tmp_path, {DJ: MIRROR_KEY, DPKG: DOCKER_27})
    host, options, f = find(root, "config.ignored-key", runtime="docker")
    result = fixes.apply(f, options, host=host)
    assert result.applied
    return root, host, options, str(result.backup_id)


def test_undo_with_a_missing_backup_copy_refuses_and_restores_nothing(tmp_path: Path) -> None:
    """A backup whose copy of the original is gone: undo says so and leaves every file as it is."""
    root, host, options, backup_id = _applied(tmp_path)
    (root / "var/lib/regtui/backups" / backup_id / "files/0").unlink()
    before = snapshot(root)
    result = fixes.undo(backup_id, options, host=host)
    assert not result.ok and "cannot be read" in result.message and result.restored == ()
    assert snapshot(root) == before


def test_undo_with_a_damaged_backup_copy_restores_nothing(tmp_path: Path) -> None:
    """A backup copy whose hash does not match: refused before any file is touched."""
    root, host, options, backup_id = _applied(tmp_path)
    (root / "var/lib/regtui/backups" / backup_id / "files/0").write_bytes(b"{}\n")
    before = snapshot(root)
    result = fixes.undo(backup_id, options, host=host)
    assert not result.ok and "damaged" in result.message and snapshot(root) == before


@pytest.mark.parametrize("manifest", ["[]", '{"files": [1]}', '{"id": "x"}', '{"files": null}'])
def test_malformed_manifest_is_skipped_by_list_and_refused_by_undo(tmp_path: Path, manifest: str) -> None:
    """A manifest.json of the wrong shape: --list skips it, undo refuses it with a message."""
    root, host, options, backup_id = _applied(tmp_path)
    bad = root / "var/lib/regtui/backups/bad"
    (bad / "files").mkdir(parents=True)
    (bad / "manifest.json").write_text(manifest)
    assert [b.id for b in fixes.list_backups(host)] == [backup_id]
    result = fixes.undo("bad", options, host=host)
    assert not result.ok and "unreadable manifest" in result.message


def test_backup_pointing_outside_its_folder_is_refused(tmp_path: Path) -> None:
    """A manifest naming ../../x as a backup copy: undo refuses instead of reading outside the backup."""
    root, host, options, backup_id = _applied(tmp_path)
    manifest = root / "var/lib/regtui/backups" / backup_id / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"blob": "0"', '"blob": "../../../../../etc/docker/daemon.json"'))
    before = snapshot(root)
    result = fixes.undo(backup_id, options, host=host)
    assert not result.ok and snapshot(root) == before


def test_unwritable_state_directory_refuses_without_writing(tmp_path: Path) -> None:
    """A state directory that cannot be created: apply says not applied, and no file changes."""
    root = make_root(tmp_path, {DJ: MIRROR_KEY, DPKG: DOCKER_27})
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    host, options, f = find(root, "config.ignored-key", runtime="docker", state_dir=str(blocker / "state"))
    before = snapshot(root)
    result = fixes.apply(f, options, host=host)
    assert not result.ok and not result.applied and result.message.startswith("not applied:")
    assert snapshot(root) == before


def test_a_held_lock_is_waited_for_a_bounded_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another fix holding the state lock: undo gives up after LOCK_WAIT with a message, and works once it is free."""
    root, host, options, backup_id = _applied(tmp_path)
    monkeypatch.setattr(_backup, "LOCK_WAIT", 0.3)
    fd = os.open(root / "var/lib/regtui/lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        undone = fixes.undo(backup_id, options, host=host)
        assert not undone.ok and "another regtui fix or undo" in undone.message
    finally:
        os.close(fd)
    assert fixes.undo(backup_id, options, host=host).ok


def test_validator_output_is_redacted(tmp_path: Path) -> None:
    """dockerd --validate quoting a mirror URL with credentials: the refusal message masks the password."""
    root = make_root(tmp_path, {DJ: MIRROR_KEY, DPKG: DOCKER_27})
    host, options, f = find(root, "config.ignored-key", runtime="docker")

    def runner(argv, timeout):  # type: ignore[no-untyped-def]
        if "--help" in argv:
            return RunResult(0, "  --validate   Validate daemon configuration and exit\n", "")
        return RunResult(1, "", f"invalid mirror: \"https://user:{SECRET}@m.example\"\n")

    result = fixes.apply(f, options, host=host, runner=runner, validators={"dockerd": "/usr/bin/dockerd"})
    assert not result.applied and "dockerd --validate rejected" in result.message
    assert SECRET not in result.message and all(SECRET not in c.detail for c in result.checks)


def test_planner_error_text_is_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected planner error quoting a proxy URL with credentials: blocked, with the password masked."""
    from regtui.fixes import catalogue

    root = make_root(tmp_path, {DJ: MIRROR_KEY, DPKG: DOCKER_27})
    host, options, f = find(root, "config.ignored-key", runtime="docker")

    def broken(ctx):  # type: ignore[no-untyped-def]
        raise ValueError(f"cannot use http://admin:{SECRET}@proxy.example:3128")

    monkeypatch.setattr(catalogue, "planner_for", lambda finding: broken)
    plan = fixes.plan(f, host, options=options)
    assert plan.blocked.startswith("internal error while planning") and SECRET not in plan.blocked
    result = fixes.apply(plan, options, host=host)
    assert not result.applied and SECRET not in result.message and SECRET not in fixes.render(plan)
