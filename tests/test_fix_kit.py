"""Shared helpers of the fix engine tests (no tests here): fake roots, tree snapshots, and the
round trip every catalogue fix must pass: preview writes nothing; apply changes exactly the planned
files and keeps modes; the re-check no longer reports the finding; undo restores every byte; undo
after a later edit refuses."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from regtui import engine, fixes
from regtui.fixes import ApplyResult, FixPlan
from regtui.host import Host
from regtui.model import Finding
from regtui.options import CheckOptions
from rootfs import write_tree

STATE = "var/lib/regtui"
CONTAINERD_16 = "Package: containerd\nStatus: install ok installed\nVersion: 1.6.20~ds1-1\n\n"
DOCKER_27 = "Package: docker-ce\nStatus: install ok installed\nVersion: 5:27.5.1-1~debian.12~bookworm\n\n"
DOCKER_20 = "Package: docker.io\nStatus: install ok installed\nVersion: 20.10.24+dfsg1-1\n\n"


def snapshot(root: Path) -> dict[str, tuple[str, bytes, int]]:
    """Every file and directory under ``root`` (host path -> kind, bytes, mode), the state dir excluded."""
    out: dict[str, tuple[str, bytes, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if str(rel).startswith(STATE):
            dirnames[:] = []
            continue
        for d in dirnames:
            p = Path(dirpath) / d
            out["/" + str((rel / d))] = ("dir", b"", stat.S_IMODE(os.lstat(p).st_mode))
        for f in filenames:
            p = Path(dirpath) / f
            st = os.lstat(p)
            data = os.readlink(p).encode() if stat.S_ISLNK(st.st_mode) else p.read_bytes()
            out["/" + str(rel / f)] = ("link" if stat.S_ISLNK(st.st_mode) else "file", data,
                                                    stat.S_IMODE(st.st_mode))
    return {k: v for k, v in out.items() if not k.startswith("/" + STATE)}


def changed_files(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    """Host paths of files added, removed or modified between two snapshots."""
    paths = {p for p, v in before.items() if v[0] == "file"} | {p for p, v in after.items() if v[0] == "file"}
    return {p for p in paths if before.get(p) != after.get(p)}


def make_root(tmp_path: Path, files: Mapping[str, str | bytes], modes: Mapping[str, int] | None = None) -> Path:
    """A fake host root with ``files`` (and ``modes`` for some of them)."""
    root = write_tree(tmp_path / "root", {"/var/lib/": "", **files})
    for path, mode in (modes or {}).items():
        os.chmod(root / path.lstrip("/"), mode)
    return root


def find(root: Path, code: str, *, runtime: str = "auto", images: tuple[str, ...] = (),
         match: Callable[[Finding], bool] | None = None, **extra: Any) -> tuple[Host, CheckOptions, Finding]:
    """The first offline finding with ``code`` (and ``match``) under ``root``."""
    host = Host(root=root)
    options = CheckOptions(root=str(root), runtime=runtime, images=images, offline=True, **extra)
    found = [f for f in engine.plan(options, host).findings if f.code == code and f.fix and (match is None or match(f))]
    assert found, f"no {code} finding: {[f.code for f in engine.plan(options, host).findings]}"
    return host, options, found[0]


def containerd_validator() -> dict[str, str]:
    """The lab's containerd as the validator for fake roots (skips, or fails in CI, when missing)."""
    from lab.require import require_binary

    return {"containerd": require_binary("containerd")}


@dataclass
class Round:
    """What a round trip saw."""

    root: Path
    host: Host
    options: CheckOptions
    finding: Finding
    plan: FixPlan
    result: ApplyResult
    before: dict[str, Any]
    after: dict[str, Any]
    texts: dict[str, str] = field(default_factory=dict)
    """Host path -> text of each changed file after the apply."""


def roundtrip(root: Path, code: str, *, runtime: str = "auto", images: tuple[str, ...] = (),
              match: Callable[[Finding], bool] | None = None, validators: Mapping[str, str] | None = None,
              probes: Mapping[str, Any] | None = None, expect_gone: bool | None = True,
              finding: Finding | None = None, **extra: Any) -> Round:
    """Plan, preview, apply, undo, re-apply, edit, refused undo: the acceptance checks of one fix."""
    if finding is None:
        host, options, finding = find(root, code, runtime=runtime, images=images, match=match, **extra)
    else:
        host = Host(root=root)
        options = CheckOptions(root=str(root), runtime=runtime, images=images, offline=True, **extra)
    before = snapshot(root)
    plan = fixes.plan(finding, host, options=options, probes=probes)
    fixes.render(plan)
    fixes.preview(plan)
    assert snapshot(root) == before, "planning or previewing wrote something"
    assert plan.can_apply, f"{plan.fix_id}: {plan.blocked or plan.steps}"
    result = fixes.apply(plan, options, host=host, probes=probes, validators=validators)
    assert result.applied, result.message
    after = snapshot(root)
    assert changed_files(before, after) == set(plan.files), "apply changed other files than planned"
    for change in plan.changes:
        real = host.resolve(change.path)
        if change.after is None:
            assert not real.exists()
        else:
            assert real.read_bytes() == change.after
        if change.before is not None and change.after is not None:
            assert before[change.path][2] == after[change.path][2], f"{change.path}: mode changed"
    if expect_gone is not None:
        assert result.gone is expect_gone, result.message
    failed = [c for c in result.checks if c.status == "failed" and c.name != "re-check"]
    assert not failed, failed
    texts = {c.path: c.after.decode("utf-8", "replace") for c in plan.changes if c.after is not None}
    undone = fixes.undo(result.backup_id or "", options, host=host)
    assert undone.ok, undone.message
    assert snapshot(root) == before, "undo did not restore every byte"
    again = fixes.apply(fixes.plan(finding, host, options=options, probes=probes), options, host=host, probes=probes,
                        validators=validators)
    assert again.applied and snapshot(root) == after, again.message
    edited = next(c.path for c in plan.changes)
    real = host.resolve(edited)
    if real.exists():
        real.write_bytes(real.read_bytes() + b"\n")
    else:
        real.write_bytes(b"later\n")
    refused = fixes.undo(again.backup_id or "", options, host=host)
    assert not refused.ok and "changed after the fix" in refused.message
    return Round(root, host, options, finding, plan, result, before, after, texts)


def copy_binary(name: str) -> str | None:
    """Path of a binary on this machine, or ``None``."""
    return shutil.which(name)


def ca_pem(common_name: str = "Test Registry CA") -> bytes:
    """A self-signed CA certificate in PEM (EC P-256; fast to make)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)
