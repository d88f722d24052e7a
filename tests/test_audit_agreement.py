"""The report and `regtui fix` agree on every fix: the kind a report prints beside a finding (edit, command,
manual) is the kind `regtui fix` then plans for it, so no report offers an edit the fix command turns into steps.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from regtui import engine, fixes
from regtui.host import Host
from regtui.options import CheckOptions
from test_fix_kit import CONTAINERD_16, ca_pem, make_root

HOSTS_TOML = """server = "https://registry.example:5000"

[host."https://mirror.example:5001"]
  capabilities = ["pull", "resolve"]
  skip_verify = true

[host."https://registry.example:5000"]
  capabilities = ["pull", "resolve"]
  ca = "missing.crt"
"""


def _kinds(root: Path, runtime: str) -> list[tuple[str, str, str]]:
    """(fix id, the report's kind, the planned kind) of every finding with a fix in the offline check of ``root``."""
    host = Host(root=root, environ={})
    options = CheckOptions(root=str(root), images=("registry.example:5000/app:1",), runtime=runtime, offline=True)
    report = engine.run_check(options, host)
    return [(f.fix.id, f.fix.kind, fixes.plan(f, host, options=options, probes=report.probes).kind)
            for f in report.findings if f.fix is not None]


def test_hosts_toml_fix_kinds_in_the_report_are_the_kinds_fix_plans(tmp_path: Path) -> None:
    """A hosts.toml with skip_verify, a CA file it names but lacks and a *.crt it does not name: each finding's
    fix kind in the report (manual for these three) is the one `regtui fix` plans."""
    d = "/etc/containerd/certs.d/registry.example:5000"
    root = make_root(tmp_path, {
        "/etc/containerd/config.toml": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
                                       '  config_path = "/etc/containerd/certs.d"\n',
        f"{d}/hosts.toml": HOSTS_TOML, f"{d}/ca.crt": ca_pem(), "/var/lib/dpkg/status": CONTAINERD_16})
    kinds = _kinds(root, "containerd")
    codes = {fid.split("@", 1)[0] for fid, _, _ in kinds}
    assert {"tls.verify-disabled", "config.ignored-key", "config.invalid-value"} <= codes, kinds
    assert [k for k in kinds if k[1] != k[2]] == []


def test_busy_root_fix_kinds_in_the_report_are_the_kinds_fix_plans(tmp_path: Path) -> None:
    """The misconfigured sample host, every runtime: no fix is an edit in the report and steps in `regtui fix`."""
    root = tmp_path / "root"
    shutil.copytree(Path(__file__).parent / "data/busy-root", root, symlinks=True)
    kinds = _kinds(root, "all")
    assert len(kinds) > 5, kinds
    assert [k for k in kinds if k[1] != k[2]] == []
