"""Clock panel end to end: real chronyd (true and +600 s), black holes, registry Date headers, sync state."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from lab.ntp import Chrony
from lab.probectx import context, fake_root
from lab.registry import Registry
from lab.sockets import UdpBlackHole
from regtui.checks import clock
from regtui.checks.clock import KernelSync
from regtui.config.timesync import TimeSync
from regtui.probecontext import ProbeResult
from regtui.probes import run_probes

CHRONY_UNIT = "[Service]\nExecStart=/usr/sbin/chronyd\n[Install]\nWantedBy=multi-user.target\n"


def _chrony_root(root: Path, lines: list[str], *, enabled: bool = True) -> Path:
    """A fake root with chrony installed, configured with ``lines``, and enabled (or not)."""
    fake_root(root, {"/etc/chrony/chrony.conf": "\n".join(lines) + "\n",
                     "/lib/systemd/system/chrony.service": CHRONY_UNIT})
    if enabled:
        link = root / "etc/systemd/system/multi-user.target.wants/chrony.service"
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/lib/systemd/system/chrony.service", link)
    return root


def _codes(result: ProbeResult) -> dict[str, str]:
    return {f.code: f.severity for f in result.findings}


@pytest.mark.lab
def test_true_server_no_skew(chrony: Chrony, tmp_path: Path) -> None:
    """Against a true chronyd from chrony.conf (with port), skew is near zero and nothing is reported."""
    ctx = context(_chrony_root(tmp_path, [f"server 127.0.0.1 port {chrony.port} iburst"]))
    result = asyncio.run(clock.probe(ctx))
    assert result.findings == []
    assert abs(result.data["skew_seconds"]) < 1 and result.data["skew_kind"] == "ntp"
    [row] = result.data["ntp"]["servers"]
    assert row["ok"] and row["stratum"] == 8 and row["source"] == "/etc/chrony/chrony.conf:1"
    assert result.data["sync"]["enabled"] == ["chrony"]
    json.dumps(result.data)


@pytest.mark.lab
def test_server_600s_ahead_is_skew_error(chrony_ahead: Chrony, tmp_path: Path) -> None:
    """A server ten minutes ahead: clock.skew error, skew -600 s (local behind), certs 'not yet valid', chronyc makestep."""
    ctx = context(_chrony_root(tmp_path, [f"server 127.0.0.1 port {chrony_ahead.port}"]))
    result = asyncio.run(clock.probe(ctx))
    [skew] = [f for f in result.findings if f.code == "clock.skew"]
    assert skew.severity == "error" and skew.panel == "clock"
    assert skew.evidence["skew_seconds"] == pytest.approx(-600, abs=5)
    assert skew.evidence["kind"] == "ntp" and f"127.0.0.1:{chrony_ahead.port}" in skew.evidence["source"]
    assert any("not yet valid" in b for b in skew.evidence["breaks"])
    assert any("401" in b for b in skew.evidence["breaks"])
    assert skew.fix is not None and skew.fix.kind == "command" and skew.fix.params["command"] == "chronyc makestep"
    assert result.data["skew_seconds"] == pytest.approx(-600, abs=5)
    assert "behind" in skew.title


@pytest.mark.lab
def test_local_clock_ahead_is_warning_and_names_token_effect(chrony: Chrony, tmp_path: Path) -> None:
    """A host clock 5 s ahead of a true server: warning; 90 s ahead: error naming token expiry on arrival."""
    for offset, severity in ((5, "warning"), (90, "error")):
        root = _chrony_root(tmp_path / str(offset), [f"server 127.0.0.1 port {chrony.port}"])
        ctx = context(root, clock=lambda o=offset: datetime.now(timezone.utc) + timedelta(seconds=o))
        result = asyncio.run(clock.probe(ctx))
        [skew] = [f for f in result.findings if f.code == "clock.skew"]
        assert skew.severity == severity
        assert skew.evidence["skew_seconds"] == pytest.approx(offset, abs=1)
        assert ("looks expired on arrival" in " ".join(skew.evidence["breaks"])) == (offset > 60)


@pytest.mark.lab
def test_majority_wins_over_a_falseticker(chrony: Chrony, chrony_ahead: Chrony, tmp_path: Path) -> None:
    """Two names for the true server outvote the +600 s one: no skew finding, the disagreement is noted."""
    root = _chrony_root(tmp_path, [f"server 127.0.0.1 port {chrony.port}", f"server ntp.lab.test port {chrony.port}",
                                   f"server 127.0.0.1 port {chrony_ahead.port}"])
    (root / "etc/hosts").write_text("127.0.0.1 localhost ntp.lab.test\n")
    result = asyncio.run(clock.probe(context(root)))
    assert "clock.skew" not in _codes(result)
    assert abs(result.data["skew_seconds"]) < 1
    assert any("disagree" in n and str(chrony_ahead.port) in n for n in result.data["notes"])


@pytest.mark.lab
def test_no_server_answers(udp_black_hole: UdpBlackHole, closed_port: int, tmp_path: Path) -> None:
    """A black hole and a closed port: clock.ntp-unreachable (warning) with each error, in about one timeout."""
    root = _chrony_root(tmp_path, [f"server 127.0.0.1 port {udp_black_hole.port}", f"server 127.0.0.1 port {closed_port}"])
    ctx = context(root, timeout=1.0)
    started = time.monotonic()
    result = asyncio.run(clock.probe(ctx))
    elapsed = time.monotonic() - started
    [f] = [f for f in result.findings if f.code == "clock.ntp-unreachable"]
    assert f.severity == "warning"
    kinds = {s["server"]: s["kind"] for s in f.evidence["servers"]}
    assert kinds == {f"127.0.0.1:{udp_black_hole.port}": "timeout", f"127.0.0.1:{closed_port}": "refused"}
    assert result.data["skew_seconds"] is None
    assert elapsed < 2 * ctx.timeouts.read


@pytest.mark.lab
def test_ntp_server_option_overrides_config(chrony_ahead: Chrony, udp_black_hole: UdpBlackHole, tmp_path: Path) -> None:
    """--ntp-server replaces the configured servers (a dead one in chrony.conf is not asked)."""
    root = _chrony_root(tmp_path, [f"server 127.0.0.1 port {udp_black_hole.port}"])
    ctx = context(root, ntp_servers=[f"127.0.0.1:{chrony_ahead.port}"])
    result = asyncio.run(clock.probe(ctx))
    assert result.data["ntp"]["configured_from"] == "--ntp-server"
    assert [s["server"] for s in result.data["ntp"]["servers"]] == [f"127.0.0.1:{chrony_ahead.port}"]
    assert _codes(result)["clock.skew"] == "error"
    assert "clock.ntp-unreachable" not in _codes(result)


def test_no_sync_daemon_enabled_is_unsynchronized(tmp_path: Path) -> None:
    """chrony installed and configured but not enabled: clock.unsynchronized with 'systemctl enable --now chrony.service'."""
    root = _chrony_root(tmp_path, ["server 127.0.0.1 port 9"], enabled=False)
    result = asyncio.run(clock.probe(context(root, ntp_servers=[])))
    [f] = [f for f in result.findings if f.code == "clock.unsynchronized"]
    assert f.severity == "warning" and f.fix is not None and f.fix.kind == "command"
    assert f.fix.params["command"] == "systemctl enable --now chrony.service"
    assert "not enabled" in f.evidence["reasons"][0]


def test_bare_root_unsynchronized_suggests_timedatectl(tmp_path: Path) -> None:
    """No sync daemon at all: unsynchronized, fix 'timedatectl set-ntp true'; no NTP server is asked."""
    result = asyncio.run(clock.probe(context(fake_root(tmp_path))))
    [f] = [f for f in result.findings if f.code == "clock.unsynchronized"]
    assert f.fix is not None and f.fix.params["command"] == "timedatectl set-ntp true"
    assert result.data["ntp"]["servers"] == [] and "--ntp-server" in result.data["notes"][0]


def test_kernel_unsync_state_is_reported() -> None:
    """STA_UNSYNC from adjtimex makes clock.unsynchronized even with a daemon enabled."""
    from regtui.config.timesync import SyncDaemon

    ts = TimeSync([SyncDaemon("chrony", "chrony.service", installed=True, enabled=True)])
    [f] = clock._unsynchronized(ts, KernelSync(state=5, status=0x40, maxerror_us=16_000_000, esterror_us=0))
    assert f.code == "clock.unsynchronized" and "kernel" in f.evidence["reasons"][0]
    assert f.evidence["kernel"]["sta_unsync"] is True
    assert clock._unsynchronized(ts, KernelSync(state=0, status=0x1, maxerror_us=1000, esterror_us=10)) == []


def test_kernel_sync_state_reads_this_kernel() -> None:
    """adjtimex answers on this Linux with a state between TIME_OK and TIME_ERROR and a maxerror."""
    state = clock.kernel_sync_state()
    assert state.error == "" and state.state in range(0, 6) and state.maxerror_us is not None


def _date_result(ctx_data: dict | None = None) -> dict[str, ProbeResult]:
    return {"clock": ProbeResult("clock", ctx_data or {"skew_seconds": None, "notes": [], "registry_dates": []})}


def test_registry_dates_give_skew_when_ntp_is_silent(tmp_path: Path) -> None:
    """No NTP answer: correlate turns Date headers 10 min behind the local clock into clock.skew (+600 s, error)."""
    now = datetime(2026, 1, 10, 12, 0, 0, tzinfo=timezone.utc)
    dates = [{"endpoint": "https://reg.example/v2/", "date": "Sat, 10 Jan 2026 11:50:00 GMT",
              "local_time": now.isoformat()}]
    ctx = context(fake_root(tmp_path), observations={"registry_dates": dates})
    results = _date_result()
    [f] = clock.correlate(results, ctx)
    assert f.code == "clock.skew" and f.severity == "error"
    assert f.evidence["kind"] == "registry-date" and f.evidence["skew_seconds"] == pytest.approx(599.5)
    assert f.evidence["endpoints"] == ["https://reg.example/v2/"]
    assert results["clock"].data["skew_seconds"] == pytest.approx(599.5)
    assert results["clock"].data["registry_dates"][0]["offset_seconds"] == pytest.approx(-599.5)
    assert clock.skew_estimate(results, ctx)["kind"] == "registry-date"


def test_registry_date_within_resolution_is_not_skew(tmp_path: Path) -> None:
    """A Date one second off is inside the header's resolution: no finding."""
    dates = [{"endpoint": "e", "date": "Sat, 10 Jan 2026 12:00:00 GMT", "local_time": "2026-01-10T12:00:01.900+00:00"}]
    assert clock.correlate(_date_result(), context(fake_root(tmp_path), observations={"registry_dates": dates})) == []


def test_skew_estimate_prefers_ntp(tmp_path: Path) -> None:
    """With an NTP measurement in the data, skew_estimate returns it (for the certs probe's correlate)."""
    ctx = context(fake_root(tmp_path), observations={"registry_dates": [{"date": "Sat, 10 Jan 2026 12:00:00 GMT",
                                                                         "local_time": "2026-01-10T13:00:00+00:00"}]})
    results = _date_result({"skew_seconds": -3.5, "skew_kind": "ntp", "skew_source": "ntp (x)",
                            "skew_uncertainty_seconds": 0.01, "notes": []})
    assert clock.skew_estimate(results, ctx) == {"skew_seconds": -3.5, "uncertainty_seconds": 0.01,
                                                 "source": "ntp (x)", "kind": "ntp"}


@pytest.mark.lab
def test_real_registry_date_header_with_clock_ahead(registry_plain: Registry, tmp_path: Path) -> None:
    """A real registry's Date header against a host clock 120 s ahead: correlate reports clock.skew ~ +120 s."""
    ahead = timedelta(seconds=120)
    response = httpx.get(registry_plain.url + "/v2/", timeout=5, trust_env=False)
    local = datetime.now(timezone.utc) + ahead
    dates = [{"endpoint": registry_plain.url + "/v2/", "date": response.headers["date"], "local_time": local.isoformat()}]
    ctx = context(fake_root(tmp_path), clock=lambda: datetime.now(timezone.utc) + ahead,
                  observations={"registry_dates": dates})
    results = asyncio.run(run_probes(ctx, panels=("clock",)))
    skews = [f for f in results["clock"].findings if f.code == "clock.skew"]
    assert len(skews) == 1 and skews[0].severity == "error"
    assert skews[0].evidence["skew_seconds"] == pytest.approx(120, abs=2)
    assert results["clock"].data["skew_kind"] == "registry-date"
