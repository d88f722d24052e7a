"""Plan, preview, apply, re-check and undo: the fix engine behind ``regtui fix``/``undo`` and the workbench.

- :func:`plan` is pure: it reads the files the fix touches and returns a :class:`FixPlan` with
  their bytes before and after (or the command, or the manual steps). It also validates the
  result: every changed file re-parses, and the whole offline check runs on the planned files
  (an :class:`~regtui.fixes._overlay.OverlayHost`), so a change that would add an error is
  refused before anything is written, and the plan says whether the finding will be gone.
- :func:`apply` re-reads every file and refuses when one changed since planning; backs the
  originals up (a manifest with paths, hashes, modes, owners; absent files recorded as absent);
  writes temporary files next to the targets with the original mode and owner and runs the
  runtime's validator on them; renames them into place (fsyncing files and directories); then
  re-runs the check and says whether the finding is gone.
- :func:`undo` restores every byte of a backup and refuses when a file changed after the fix.

Recovery of applies a killed process left half done lives in :mod:`regtui.fixes._recover`.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat as stat_mod
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timezone
from pathlib import Path
from typing import Any, Mapping

from regtui import checker, redact
from regtui.findings import CATALOGUE
from regtui.fixes import _fs, catalogue
from regtui.fixes._backup import STATE_DIR, BackupStore, FileRecord, Manifest
from regtui.fixes._context import Context, ManualOnly
from regtui.fixes._model import (ApplyRefused, ApplyResult, BackupInfo, Check, FileChange, FixPlan, PlanRefused,
                                 Preview, UndoRefused, UndoResult, UnsafePath, error_text, sha256)
from regtui.fixes._overlay import overlay
from regtui.fixes._recover import recover_locked
from regtui.fixes._text import unified_diff
from regtui.fixes._validate import (Runner, file_kind, reparse, run_validator, subprocess_runner, validator_binary,
                                    validator_for)
from regtui.host import Host
from regtui.model import Finding
from regtui.options import CheckOptions

__all__ = ["plan", "preview", "apply", "undo", "list_backups", "recheck", "same_finding", "restart_command",
           "run_command", "state_store"]

_LINE_IN_DETAIL = re.compile(r":\d+$")
#: Probe panel that re-checks a finding of each code prefix (findings no offline check reproduces).
_NETWORK_PANEL = {"tls": "certs", "mirror": "mirrors", "auth": "mirrors", "proxy": "proxy", "dns": "dns",
                  "clock": "clock"}
_COMMAND_TIMEOUT = 120.0


# -- identity of a finding across checks ------------------------------------------------------

def _identity(f: Finding) -> tuple[Any, ...]:
    detail = ""
    if f.fix and "#" in f.fix.id:
        detail = _LINE_IN_DETAIL.sub("", f.fix.id.split("#", 1)[1])
    return (f.code, f.subject, f.runtime, detail)


def same_finding(a: Finding, b: Finding) -> bool:
    """``b`` is ``a`` seen again (same code, subject, runtime and fix detail; line numbers ignored)."""
    return _identity(a) == _identity(b)


# -- planning ---------------------------------------------------------------------------------

def _options_for(host: Host, options: CheckOptions | None, finding: Finding) -> CheckOptions:
    if options is not None:
        return options
    runtime = finding.runtime if finding.runtime in ("docker", "containerd", "crio", "k3s") else "auto"
    return CheckOptions(root=str(host.root), runtime=runtime, offline=True)


def _probe_data(probes: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Probe data by panel (``certs`` is called ``tls``), from ``NetworkResults.probes`` or a report's
    ``probes`` (whose ``panels`` keeps every panel's whole result)."""
    out: dict[str, Any] = {}
    probes = probes or {}
    source = probes.get("panels") if isinstance(probes.get("panels"), Mapping) else probes
    for key, value in source.items():
        data = value.get("data", value) if isinstance(value, dict) else getattr(value, "data", value)
        out[{"certs": "tls"}.get(key, key)] = data
    return out


def restart_command(restart: str, *, daemon_reload: bool = False) -> str:
    """The command that makes a change take effect (``reload docker`` -> ``systemctl reload docker``)."""
    words = restart.split()
    if restart in ("", "none") or len(words) != 2 or words[0] not in ("reload", "restart"):
        return ""
    command = f"systemctl {words[0]} {words[1]}"
    return f"systemctl daemon-reload && {command}" if daemon_reload else command


def plan(finding: Finding, host: Host, *, options: CheckOptions | None = None,
         probes: Mapping[str, Any] | None = None, predict: bool = True,
         baselines: dict[CheckOptions, Any] | None = None, supplied_ca: bytes | None = None) -> FixPlan:
    """What fixing ``finding`` on ``host`` would do (nothing is written).

    ``probes`` is the network stage's data by panel (``report.probes`` or ``NetworkResults.probes``);
    CA installs read the certificate there when the finding's params do not carry it.
    ``predict`` runs the offline check on the planned files (validation and predicted re-check).
    ``baselines`` keeps the offline check of the unchanged host between plans of one caller that
    plans several fixes on the same host at once (the verdicts of one report).
    ``supplied_ca`` is PEM the user gave (``--ca-file``) for a CA install whose root the server does not send.
    """
    fx = finding.fix
    base = dict(fix_id=fx.id if fx else f"{finding.code}@{finding.subject}", code=finding.code,
                subject=finding.subject, runtime=finding.runtime, finding=finding)
    if fx is None:
        return FixPlan(summary="no suggested fix", kind="manual", steps=redact.text(finding.detail),
                       blocked="this finding has no suggested fix", **base)  # type: ignore[arg-type]
    opts = _options_for(host, options, finding)
    ctx = Context(finding, host, opts, _probe_data(probes), supplied_ca=supplied_ca)
    planner = catalogue.planner_for(finding)
    restart = fx.restart
    if planner is None:
        kind = "manual" if fx.kind != "command" else "command"
        steps = _manual_steps(finding)
        return FixPlan(summary=fx.summary, kind=kind, steps=steps, restart=restart,
                       restart_command=restart_command(restart), **base)  # type: ignore[arg-type]
    try:
        planner(ctx)
    except ManualOnly as exc:
        return FixPlan(summary=fx.summary, kind="manual", steps=f"{exc}\n\n{_manual_steps(finding)}",
                       restart=restart, restart_command=restart_command(restart), **base)  # type: ignore[arg-type]
    except PlanRefused as exc:
        return FixPlan(summary=ctx.summary or fx.summary, kind=ctx.kind or fx.kind, steps=_manual_steps(finding),
                       blocked=redact.text(str(exc)), restart=restart, notes=tuple(ctx.notes),
                       **base)  # type: ignore[arg-type]
    except Exception as exc:  # a planner bug must not take the other fixes down; nothing is planned
        return FixPlan(summary=fx.summary, kind=fx.kind, steps=_manual_steps(finding), restart=restart,
                       blocked=f"internal error while planning ({error_text(exc)}); nothing planned",
                       **base)  # type: ignore[arg-type]
    changes = ctx.changes()
    kind = ctx.kind or ("command" if ctx.commands and not changes else "edit")
    restart = ctx.restart or restart
    units = any(file_kind(c.path) == "unit" for c in changes)
    result = FixPlan(summary=ctx.summary or fx.summary, kind=kind, changes=tuple(changes),
                     commands=tuple(ctx.commands), restart=restart,
                     restart_command=restart_command(restart, daemon_reload=units), confirm=ctx.confirm,
                     notes=tuple(ctx.notes), remove_dirs=tuple(ctx.remove_dirs), **base)  # type: ignore[arg-type]
    if result.empty:
        return replace(result, notes=result.notes + ("nothing to change: the files already say this",))
    checks = [c for c in (reparse(ch.path, ch.after) for ch in changes if ch.path not in ctx.verbatim) if c is not None]
    failed = [c for c in checks if c.status == "failed"]
    if failed:
        return replace(result, checks=tuple(checks),
                       blocked=redact.text(f"validation failed: {failed[0].name}: {failed[0].detail}"))
    if predict and changes:
        pred_checks, gone, blocked = _predict(finding, host, opts, result, baselines)
        checks += pred_checks
        result = replace(result, predicted_gone=gone, blocked=blocked)
    return replace(result, checks=tuple(checks))


def _manual_steps(finding: Finding) -> str:
    fx = finding.fix
    where = finding.evidence.get("file")
    line = finding.evidence.get("line")
    at = f"\nWhere: {where}{':' + str(line) if line else ''}" if where else ""
    return redact.text(f"{fx.summary if fx else ''}{at}\n\n{finding.detail}".strip())


def _errors_about(findings: list[Finding], paths: set[str]) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    for f in findings:
        if f.severity != "error":
            continue
        where = {str(f.evidence.get("file") or ""), f.subject}
        if where & paths:
            out[(f.code, f.subject, f.runtime, _LINE_IN_DETAIL.sub("", f.title.split(": ", 1)[-1]))] += 1
    return out


def _predict(finding: Finding, host: Host, options: CheckOptions, p: FixPlan,
             baselines: dict[CheckOptions, Any] | None = None) -> tuple[list[Check], bool | None, str]:
    """Run the offline check before and on the planned files: is the finding gone, is anything new broken?"""
    paths = {c.path for c in p.changes}
    offline_opts = replace(options, offline=True)
    try:
        check = checker.current().plan
        before = baselines.get(offline_opts) if baselines is not None else None
        if before is None:
            before = check(offline_opts, host)
            if baselines is not None:
                baselines[offline_opts] = before
        after = check(offline_opts, overlay(host, {c.path: c.after for c in p.changes}, p.remove_dirs))
    except Exception as exc:  # a reader bug must not stop a fix; say so
        return [Check("predicted re-check", "skipped", f"the offline check failed: {error_text(exc)}")], None, ""
    checks: list[Check] = []
    new_errors = _errors_about(after.findings, paths) - _errors_about(before.findings, paths)
    new_errors = Counter({k: v for k, v in new_errors.items() if k[0] != finding.code or k[1] != finding.subject})
    blocked = ""
    if new_errors:
        first = next(iter(new_errors))
        detail = next(f.title for f in after.findings if f.code == first[0] and f.subject == first[1])
        detail = redact.text(detail)
        checks.append(Check("predicted re-check", "failed", f"the change would add {first[0]}: {detail}"))
        blocked = f"validation failed: the change would add {first[0]}: {detail}"
    known = any(same_finding(finding, f) for f in before.findings)
    if not known:
        checks.append(Check("predicted re-check", "skipped",
                            f"{finding.code} comes from a network probe: only a live re-check can confirm the fix"))
        return checks, None, blocked
    gone = not any(same_finding(finding, f) for f in after.findings)
    checks.append(Check("predicted re-check", "ok" if gone else "failed",
                        "the offline check on the planned files no longer reports the finding" if gone else
                        "the offline check on the planned files still reports the finding"))
    return checks, gone, blocked


# -- preview ----------------------------------------------------------------------------------

def render(p: FixPlan) -> str:
    """The whole preview as text: diff or commands or steps, then restart, checks and notes (redacted)."""
    pv = _preview_of(p)
    parts = [f"{p.fix_id}\n  {p.code}: {redact.text(p.summary)} [{p.kind}]"]
    if pv.diff:
        parts.append(pv.diff.rstrip("\n"))
    if pv.command:
        parts.append(pv.command.rstrip("\n"))
    if pv.steps and (p.kind == "manual" or not (pv.diff or pv.command)):
        parts.append(pv.steps.rstrip("\n"))
    if pv.note:
        parts.append(pv.note.rstrip("\n"))
    return "\n".join(parts) + "\n"


def _preview_of(p: FixPlan) -> Preview:
    diff = "".join(unified_diff(c.path, c.before, c.after, note=c.note) for c in p.changes)
    for d in p.remove_dirs:
        diff += f"# remove the emptied directory {d}\n"
    command = "".join(f"$ {c.command}\n  ({c.effect}{'' if c.runnable else '; not run by regtui: ' + c.why_not})\n"
                      for c in p.commands)
    notes: list[str] = []
    if p.confirm:
        notes.append(f"confirm: {p.confirm}")
    if p.restart and p.restart != "none":
        notes.append(f"to take effect: {p.restart}" + (f" ({p.restart_command})" if p.restart_command else ""))
    elif p.changes:
        notes.append("to take effect: nothing (the runtime reads it on the next pull)")
    notes += [f"note: {n}" for n in p.notes]
    notes += [f"check: {c.name}: {c.status}{' (' + c.detail + ')' if c.detail else ''}" for c in p.checks]
    if p.predicted_gone is False:
        notes.append("warning: the offline re-check predicts the finding will still be reported")
    if p.blocked:
        notes.append(f"cannot apply: {p.blocked}")
    elif p.empty and p.kind != "manual":
        notes.append("nothing to do")
    return Preview(kind=p.kind, diff=diff, command=redact.text(command), steps=redact.text(p.steps),
                   restart=p.restart, can_apply=p.can_apply, note=redact.text("\n".join(notes)), plan=p)


def preview(target: Finding | FixPlan, options: CheckOptions | None = None, *, host: Host | None = None,
            probes: Mapping[str, Any] | None = None) -> Preview:
    """The preview of a finding's fix (planned now) or of a plan: diff, command or steps; nothing is written."""
    if isinstance(target, FixPlan):
        return _preview_of(target)
    host = host or Host.from_args(options.root if options else "/")
    return _preview_of(plan(target, host, options=options, probes=probes))


# -- state directory --------------------------------------------------------------------------

def state_store(host: Host, state_dir: str | os.PathLike[str] | None) -> BackupStore:
    """The backup store: ``state_dir`` (a real path) or ``ROOT/var/lib/regtui`` (created safely under the root)."""
    if state_dir:
        return BackupStore(Path(state_dir))
    _fs.make_dirs(host, posixpath.join(STATE_DIR, "backups"), mode=0o700)
    return BackupStore(_fs.target(host, STATE_DIR).real)


def _with_notes(notes: list[str], message: str) -> str:
    return "\n".join([*notes, message])


def list_backups(host: Host, state_dir: str | os.PathLike[str] | None = None) -> list[BackupInfo]:
    """Every backup in the state directory, oldest first."""
    if state_dir:
        return BackupStore(Path(state_dir)).list()
    try:
        real = _fs.target(host, STATE_DIR).real
    except UnsafePath:
        return []
    return BackupStore(real).list()


# -- apply ------------------------------------------------------------------------------------

@dataclass
class _Prepared:
    change: FileChange
    target: _fs.Target
    temp: Path | None = None
    stat: os.stat_result | None = None


def apply(target: Finding | FixPlan, options: CheckOptions | None = None, *, host: Host | None = None,
          probes: Mapping[str, Any] | None = None, state_dir: str | os.PathLike[str] | None = None,
          runner: Runner | None = None, validators: Mapping[str, str] | None = None,
          recheck_after: bool = True) -> ApplyResult:
    """Apply a plan (or plan a finding's fix now and apply it): back up, validate, write, re-check.

    The caller has already shown the preview and obtained the user's confirmation. ``runner``
    runs validators and commands (tests pass a fake); ``validators`` names validator binaries to
    use under a root that is not the live system (``{"containerd": "/usr/bin/containerd"}``).
    """
    host = host or Host.from_args(options.root if options else "/")
    runner = runner or subprocess_runner
    p = target if isinstance(target, FixPlan) else plan(target, host, options=options, probes=probes)
    if p.blocked:
        return ApplyResult(False, f"not applied: {p.blocked}", restart=p.restart)
    if p.kind == "manual":
        return ApplyResult(False, "not applied: this fix is done by hand (see the steps)", restart=p.restart)
    if p.empty:
        return ApplyResult(True, "nothing to do: the files already say this", gone=None, restart=p.restart)
    opts = _options_for(host, options, p.finding) if p.finding else options or CheckOptions(root=str(host.root))
    if p.kind == "command" and not p.changes:
        return _run_commands(p, host, opts, runner, probes, recheck_after)
    notes: list[str] = []
    try:
        store = state_store(host, state_dir or opts.state_dir)
        with store.lock():
            notes = recover_locked(host, store)
            backup_id, checks, written = _write(p, host, store, runner, validators)
    except (ApplyRefused, UnsafePath) as exc:
        return ApplyResult(False, _with_notes(notes, f"not applied: {exc}"), restart=p.restart,
                           restart_command=p.restart_command)
    except OSError as exc:  # before the first write: not root, disk full, the lock held by another fix
        return ApplyResult(False, _with_notes(notes, f"not applied: {exc}; nothing was written"), restart=p.restart,
                           restart_command=p.restart_command)
    gone, recheck_checks, detail = (None, [], "")
    if recheck_after and p.finding is not None:
        gone, recheck_checks, detail = recheck(p.finding, host, opts, probes=probes,
                                               offline=True if p.predicted_gone is not None else None)
    checks += recheck_checks
    message = f"applied ({len(written)} file(s)); backup {backup_id} (undo: regtui undo {backup_id})"
    message += f"; {detail}" if detail else ""
    if p.restart and p.restart != "none":
        message += f"; to take effect: {p.restart_command or p.restart}"
    message = _with_notes(notes, message)
    return ApplyResult(gone is not False, message, backup_id=backup_id, applied=True, gone=gone, checks=tuple(checks),
                       written=tuple(written), restart=p.restart, restart_command=p.restart_command)


def _write(p: FixPlan, host: Host, store: BackupStore, runner: Runner,
           validators: Mapping[str, str] | None) -> tuple[str, list[Check], list[str]]:
    """The guarded write: compare, back up, validate temp files, rename; roll back on failure."""
    prepared: list[_Prepared] = []
    for change in p.changes:
        t = _fs.target(host, change.path)
        current, st = _fs.current_bytes(t)
        if sha256(current) != sha256(change.before):
            state = "was created" if change.before is None else ("was deleted" if current is None else "changed")
            raise ApplyRefused(f"{change.path} {state} since the fix was planned; nothing was written. "
                               "Preview the fix again to see the current difference.")
        prepared.append(_Prepared(change, t, stat=st))
    for d in p.remove_dirs:
        planned_gone = {c.path for c in p.changes if c.after is None}
        left = [n for n in host.listdir(d) or [] if posixpath.join(d, n) not in planned_gone
                and posixpath.join(d, n) not in p.remove_dirs]
        if left:
            raise ApplyRefused(f"{d} now holds {', '.join(left[:5])}, which the fix did not plan for; nothing was written")
    stamp = host.now().astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    manifest = Manifest(id=store.new_id(stamp, p.fix_id), fix_id=p.fix_id, code=p.code, subject=p.subject,
                        summary=redact.text(p.summary), created_at=host.now().astimezone(timezone.utc).isoformat(),
                        root=str(host.root), restart=p.restart)
    originals: list[bytes | None] = []
    for i, pr in enumerate(prepared):
        st = pr.stat
        manifest.files.append(FileRecord(
            path=pr.change.path, existed=pr.change.before is not None, before_sha256=sha256(pr.change.before),
            after_sha256=sha256(pr.change.after), mode=stat_mod.S_IMODE(st.st_mode) if st else None,
            uid=st.st_uid if st else None, gid=st.st_gid if st else None,
            blob=str(i) if pr.change.before is not None else None))
        originals.append(pr.change.before)
    for d in p.remove_dirs:
        try:
            dst = os.stat(_fs.target(host, d).real)
            manifest.dirs_removed.append({"path": d, "mode": stat_mod.S_IMODE(dst.st_mode), "uid": dst.st_uid,
                                          "gid": dst.st_gid})
        except OSError:
            continue
    step = f"writing the backup in {store.dir / manifest.id}"
    try:
        store.create(manifest, originals)
    except BaseException as exc:  # nothing was touched yet: the incomplete backup goes too
        _discard_quietly(store, manifest.id)
        raise ApplyRefused(f"nothing was changed: {_failure_text(exc, step)}; no backup was kept") from exc
    checks: list[Check] = []
    written: list[str] = []
    try:
        for pr in prepared:
            if pr.change.after is None:
                continue
            parent = posixpath.dirname(pr.change.path)
            step = f"creating the directories of {pr.change.path}"
            planned = [d for d in _fs.missing_dirs(host, parent) if d not in manifest.dirs_created]
            if planned:  # named in the manifest before they exist, so a recovery knows they are ours
                manifest.dirs_created += planned
                store.save(manifest)
            _fs.make_dirs(host, parent)
            pr.target = _fs.target(host, pr.change.path)
            if pr.stat is not None:
                mode, uid, gid = stat_mod.S_IMODE(pr.stat.st_mode), pr.stat.st_uid, pr.stat.st_gid
            else:
                pst = os.stat(pr.target.real.parent)
                mode = pr.change.mode if pr.change.mode is not None else (0o600 if pr.change.secret else 0o644)
                uid, gid = (pst.st_uid, pst.st_gid) if os.geteuid() == 0 else (None, None)
            name = _fs.temp_name(pr.target)
            _record(manifest, pr.change.path).temp = name
            step = f"saving the backup manifest in {store.dir / manifest.id}"
            store.save(manifest)
            step = f"writing the new {pr.change.path} (as {posixpath.join(parent, name)})"
            pr.temp = pr.target.real.parent / name
            _fs.write_temp(pr.target, pr.change.after, mode=mode, uid=uid, gid=gid, name=name)
            which = validator_for(pr.change.path)
            if which:
                binary, why = validator_binary(which, host.live, lambda name: _real_binary(host, name), validators)
                if binary is None and not host.live:
                    check = Check("containerd config dump" if which == "containerd" else "dockerd --validate",
                                  "skipped", why)
                else:
                    check = run_validator(which, pr.temp, binary, runner, why)
                checks.append(check)
                if check.status == "failed":
                    raise ApplyRefused(f"{check.name} rejected the new {pr.change.path}: {check.detail}; nothing was written")
        for pr in prepared:
            if pr.temp is not None:
                step = f"renaming the new {pr.change.path} into place"
                _fs.target(host, pr.change.path)  # re-check the path just before the rename
                current, _ = _fs.current_bytes(pr.target)
                if sha256(current) != sha256(pr.change.before):
                    raise ApplyRefused(f"{pr.change.path} changed while the fix was being written; stopped")
                os.replace(pr.temp, pr.target.real)
                pr.temp = None
                written.append(pr.change.path)  # before the fsync: a failing fsync must still roll it back
                _fs.fsync_dir(pr.target.real.parent)
            elif pr.change.after is None:
                step = f"removing {pr.change.path}"
                _fs.remove_file(host, pr.change.path)
                written.append(pr.change.path)
        for d in p.remove_dirs:
            step = f"removing the emptied directory {d}"
            _fs.remove_dir(host, d)
    except BaseException as exc:
        for pr in prepared:
            if pr.temp is not None:
                _fs.discard_temp(pr.temp)
        what = exc if isinstance(exc, (ApplyRefused, UnsafePath)) else None
        if not written:  # no file was renamed or removed: undo what was created, keep no backup
            for d in reversed(manifest.dirs_created):
                try:
                    _fs.remove_dir(host, d)
                except (OSError, UnsafePath):
                    pass
            _discard_quietly(store, manifest.id)
            if what is not None:
                raise
            raise ApplyRefused(f"nothing was changed: {_failure_text(exc, step)}; no backup was kept") from exc
        try:
            _rollback(host, store, manifest, written)
        except Exception as again:  # the originals stay in the backup: say where, never lose them silently
            still = [r.path for r in manifest.files if r.path in written
                     and sha256(_fs.current_or_none(host, r.path)) != r.before_sha256]
            raise ApplyRefused(f"{_failure_text(exc, step)}; putting the originals back failed too "
                               f"({error_text(again)}), so {', '.join(still) or 'some files'} still hold the fix's "
                               f"version; the originals are kept in backup {manifest.id}: run "
                               f"`regtui undo {manifest.id}`") from exc
        if what is not None:
            raise
        raise ApplyRefused(f"{_failure_text(exc, step)}; every file was restored") from exc
    manifest.status = "applied"
    for r in manifest.files:
        r.temp = None
    manifest.events.append({"at": host.now().astimezone(timezone.utc).isoformat(), "status": "applied", "note": ""})
    try:
        store.save(manifest)
    except OSError:
        pass  # the files are written; the backup keeps status "writing", which the next recovery marks applied
    return manifest.id, checks, written


def _record(manifest: Manifest, path: str) -> FileRecord:
    return next(r for r in manifest.files if r.path == path)


def _discard_quietly(store: BackupStore, backup_id: str) -> None:
    """Remove an incomplete backup folder of ours (best effort: on a full disk, deleting still works)."""
    try:
        store.discard(backup_id)
    except OSError:
        pass


def _failure_text(exc: BaseException, step: str) -> str:
    """What failed and where, in words: ``writing the new X: no space left on the device holding DIR``."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = os.path.dirname(exc.filename) if isinstance(exc.filename, str) else ""
        return f"{step} failed: no space left on the device" + (f" holding {where}" if where else "")
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted while {step}"
    return f"{step} failed ({error_text(exc)})"


def _real_binary(host: Host, name: str) -> str | None:
    found = host.which(name)
    return str(host.resolve(found)) if found else None


def _rollback(host: Host, store: BackupStore, manifest: Manifest, written: list[str]) -> None:
    """Put back what a failed apply already changed; the backup stays, marked rolled back.

    When even the manifest cannot be saved (a full disk), the files are back all the same: the
    backup is deleted, since there is nothing left to undo.
    """
    for record in manifest.files:
        if record.path not in written:
            continue
        if record.existed and record.blob is not None:
            mode = record.mode if record.mode is not None else 0o644  # a 0000 file stays 0000
            _fs.restore_file(host, record.path, store.blob(manifest.id, record.blob), mode=mode,
                             uid=record.uid, gid=record.gid)
        else:
            _fs.remove_file(host, record.path)
    for d in reversed(manifest.dirs_created):
        _fs.remove_dir(host, d)
    for d in reversed(manifest.dirs_removed):
        _recreate_dir(host, d)
    manifest.status = "rolled-back"
    for record in manifest.files:
        record.temp = None
    manifest.events.append({"at": host.now().astimezone(timezone.utc).isoformat(), "status": "rolled-back",
                            "note": "apply failed; originals restored"})
    try:
        store.save(manifest)
    except OSError:
        _discard_quietly(store, manifest.id)


def _recreate_dir(host: Host, d: Mapping[str, Any]) -> None:
    created = _fs.make_dirs(host, d["path"], mode=int(d.get("mode") or 0o755))
    if created and d.get("uid") is not None and os.geteuid() == 0:
        os.chown(_fs.target(host, d["path"]).real, int(d["uid"]), int(d["gid"]))


# -- commands ---------------------------------------------------------------------------------

def _argv(command: str, host: Host) -> list[str]:
    """``sh -c COMMAND``, inside ``chroot ROOT`` when the root is not this machine's."""
    if host.live:
        return ["sh", "-c", command]
    return ["chroot", str(host.root), "sh", "-c", command]


def run_command(command: str, host: Host, runner: Runner | None = None,
                timeout: float = _COMMAND_TIMEOUT) -> dict[str, Any]:
    """Run one confirmed command for the host (``chroot ROOT`` under another root); its outcome."""
    runner = runner or subprocess_runner
    argv = _argv(command, host)
    try:
        res = runner(argv, timeout)
    except OSError as exc:
        return {"command": command, "argv": argv, "returncode": None, "output": redact.text(str(exc))}
    return {"command": command, "argv": argv, "returncode": res.returncode,
            "output": redact.text((res.stdout + res.stderr).strip())}


def _run_commands(p: FixPlan, host: Host, options: CheckOptions, runner: Runner,
                  probes: Mapping[str, Any] | None, recheck_after: bool) -> ApplyResult:
    runnable = [c for c in p.commands if c.runnable]
    if not runnable:
        why = "; ".join(c.why_not for c in p.commands if c.why_not) or "no command to run"
        return ApplyResult(False, f"not run: {why}", restart=p.restart)
    outputs = []
    for c in runnable:
        out = run_command(c.command, host, runner)
        outputs.append(out)
        if out["returncode"] != 0:
            return ApplyResult(False, f"`{c.command}` failed (exit {out['returncode']}): {out['output'][-300:]}",
                               applied=bool(outputs[:-1]), outputs=tuple(outputs), restart=p.restart)
    gone, checks, detail = (None, [], "")
    if recheck_after and p.finding is not None:
        gone, checks, detail = recheck(p.finding, host, options, probes=probes)
    message = f"ran {len(outputs)} command(s)" + (f"; {detail}" if detail else "")
    return ApplyResult(gone is not False, message, applied=True, gone=gone, checks=tuple(checks),
                       outputs=tuple(outputs), restart=p.restart)


# -- re-check ---------------------------------------------------------------------------------

def recheck(finding: Finding, host: Host, options: CheckOptions, probes: Mapping[str, Any] | None = None,
            offline: bool | None = None) -> tuple[bool | None, list[Check], str]:
    """Is ``finding`` gone? The offline check decides for findings it emits (``offline``: known to
    be one; ``None``: judged by code); the finding's probe (run again, unless ``--offline``) for
    network ones. ``None`` when it cannot tell."""
    try:
        p = checker.current().plan(replace(options, offline=True), host)
    except Exception as exc:
        return None, [Check("re-check", "skipped", f"the check failed: {error_text(exc)}")], \
            "the re-check itself failed"
    still = [f for f in p.findings if same_finding(finding, f)]
    if still:
        return False, [Check("re-check", "failed", still[0].title)], f"the re-check still reports it: {redact.text(still[0].title)}"
    info = CATALOGUE.get(finding.code)
    panel = _NETWORK_PANEL.get(finding.code.split(".", 1)[0])
    if info is not None and info.panel == "pull":
        panel = "pull"
    offline_code = finding.code.startswith(("config.",)) or panel is None
    if offline or offline_code or _offline_source(finding):
        return True, [Check("re-check", "ok", "the check no longer reports it")], "the re-check no longer reports it"
    if options.offline:
        return None, [Check("re-check", "skipped", f"{finding.code} needs the network to re-check (--offline)")], \
            "run `regtui check` (with the network) to confirm it is gone"
    try:
        found = checker.current().network_findings(p, panel)
    except Exception as exc:
        return None, [Check("re-check", "skipped", f"the {panel} probe failed: {error_text(exc)}")], \
            f"the {panel} probe could not re-check it"
    if found is None:
        return None, [Check("re-check", "skipped", f"the {panel} probe is not available")], \
            f"the {panel} probe is not available to re-check it"
    still = [f for f in found if same_finding(finding, f)]
    if still:
        return False, [Check("re-check", "failed", still[0].title)], f"the re-check still reports it: {redact.text(still[0].title)}"
    return True, [Check("re-check", "ok", f"the {panel} probe no longer reports it")], "the re-check no longer reports it"


def _offline_source(finding: Finding) -> bool:
    """Findings the offline check emits (proxy.https-missing, auth.wrong-key in a file, tls.verify-disabled...)."""
    return finding.code in ("proxy.https-missing", "proxy.case-conflict", "proxy.bypass-missing",
                            "proxy.daemon-differs", "tls.verify-disabled", "auth.helper-missing",
                            "auth.wrong-key", "auth.malformed") or finding.code.startswith("config.")


# -- undo -------------------------------------------------------------------------------------

def undo(backup_id: str, options: CheckOptions | None = None, *, host: Host | None = None,
         state_dir: str | os.PathLike[str] | None = None, force: bool = False) -> UndoResult:
    """Restore the files of a backup byte for byte; refuse (unless ``force``) when one changed after the fix."""
    host = host or Host.from_args(options.root if options else "/")
    state_dir = state_dir or (options.state_dir if options else None)
    try:
        store = BackupStore(Path(state_dir)) if state_dir else BackupStore(_fs.target(host, STATE_DIR).real)
        notes: list[str] = []
        with store.lock():
            notes = recover_locked(host, store)
            restored = _undo(host, store, backup_id, force)
    except (UndoRefused, UnsafePath) as exc:
        return UndoResult(False, _with_notes(notes, f"not undone: {exc}"), backup_id)
    except OSError as exc:  # not root, lock held, a directory in the way
        return UndoResult(False, _with_notes(notes, f"not undone: {exc}"), backup_id)
    return UndoResult(True, _with_notes(notes, f"restored {len(restored)} file(s) from {backup_id}"), backup_id,
                      tuple(restored))


def _undo(host: Host, store: BackupStore, backup_id: str, force: bool) -> list[str]:
    m = store.load(backup_id)
    if m.status == "undone" and not force:
        raise UndoRefused(f"{backup_id} was already undone")
    if m.status == "rolled-back":
        raise UndoRefused(f"{backup_id} was rolled back when it was applied; there is nothing to undo")
    changed = []
    originals: dict[str, bytes] = {}
    for r in m.files:
        current, _ = _fs.current_bytes(_fs.target(host, r.path))
        now = sha256(current)
        if now not in (r.after_sha256, r.before_sha256):
            changed.append(r.path)
        if r.existed and r.blob is not None:  # every backup copy is checked before the first file is touched
            data = store.blob(m.id, r.blob)
            if sha256(data) != r.before_sha256:
                raise UndoRefused(f"the backup copy of {r.path} is damaged (hash mismatch); nothing restored")
            originals[r.path] = data
    if changed and not force:
        raise UndoRefused(f"{', '.join(changed)} changed after the fix; undo would lose those edits "
                          "(use --force to restore the backup anyway)")
    restored = []
    for d in reversed(m.dirs_removed):  # outermost first, each with its own mode
        _recreate_dir(host, d)
    for r in m.files:
        current, _ = _fs.current_bytes(_fs.target(host, r.path))
        if sha256(current) == r.before_sha256:
            continue
        if r.existed and r.blob is not None:
            data = originals[r.path]
            parent = posixpath.dirname(r.path)
            _fs.make_dirs(host, parent)
            _fs.restore_file(host, r.path, data, mode=r.mode if r.mode is not None else 0o644, uid=r.uid, gid=r.gid)
        else:
            _fs.remove_file(host, r.path)
        restored.append(r.path)
    for d in reversed(m.dirs_created):
        _fs.remove_dir(host, d)
    m.status = "undone"
    m.events.append({"at": host.now().astimezone(timezone.utc).isoformat(), "status": "undone",
                     "note": "forced" if changed else ""})
    store.save(m)
    return restored
