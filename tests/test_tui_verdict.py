"""The Verdict panel: the workbench's first screen answers per (runtime, image), with chain, fix and gaps."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

import pytest

from regtui.fixes import Preview
from regtui.model import Cause, Finding, FixRef, Verdict
from regtui.options import CheckOptions
from regtui.report import Report
from regtui.tui.app import RegtuiApp, make_app
from regtui.tui.demo import IMAGE, SECRETS, demo_report
from regtui.tui.fixing import Applied
from regtui.tui.screens.fix import FixScreen
from regtui.tui.source import RecordedSource
from regtui.tui.verdicts import STATUS_MARK, verdict_text, verdict_views
from regtui.tui.widgets.base import FindingsTable
from regtui.tui.widgets.verdict import VerdictList, VerdictPanel

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
_PROXY = "http://svc:hunter2@proxy.corp.example:3128"


class _Fixes:
    """A fix engine that previews the finding's own words and records what it was asked."""

    available = True

    def __init__(self) -> None:
        self.calls: list[str] = []

    def preview(self, finding: Any, options: CheckOptions, probes: Any = None) -> Preview:
        """Steps from the finding."""
        self.calls.append(f"preview {finding.code}")
        return Preview(kind="manual", steps=finding.fix.summary if finding.fix else finding.detail)

    def apply(self, finding: Any, options: CheckOptions, probes: Any = None) -> Applied:
        """Never reached here."""
        raise AssertionError("apply")

    def undo(self, backup_id: str, options: CheckOptions) -> Applied:
        """Never reached here."""
        raise AssertionError("undo")


def _failing_report() -> Report:
    """docker fails through a dead proxy (no plannable fix: a manual step); containerd was not tested."""
    report = demo_report()
    dead = Finding("proxy.unreachable", "error", "proxy", "proxy.corp.example:3128",
                   f"docker's proxy {_PROXY} refuses connections",
                   "Every docker pull goes through this proxy; the daemon reports a connect error.",
                   {"file": "/etc/systemd/system/docker.service.d/http-proxy.conf", "line": 2, "proxy": _PROXY},
                   FixRef("proxy.unreachable@proxy.corp.example:3128", "start the proxy or remove it", kind="manual"),
                   "docker", id="proxy.unreachable@proxy.corp.example:3128#docker")
    failed = Finding("pull.failed", "error", "pull", IMAGE, f"docker cannot pull {IMAGE}",
                     "proxyconnect tcp: connection refused", {"endpoint": "https://registry-1.docker.io/v2"},
                     None, "docker", id=f"pull.failed@{IMAGE}#docker")
    verdicts = [
        Verdict("docker", IMAGE, "fails",
                f"docker cannot pull {IMAGE}: its proxy {_PROXY} refuses connections (registry-1.docker.io, proxy).",
                Cause("proxy.unreachable", dead.id, "https://registry-1.docker.io/v2", "proxy"),
                (failed.id, dead.id), None, f"start the proxy at {_PROXY} or remove HTTPS_PROXY from docker's drop-in",
                ()),
        Verdict("containerd", IMAGE, "unknown", f"containerd: {IMAGE} not tested: --no-pull.",
                untested=("the test pull (--no-pull): layers not downloaded",)),
    ]
    return replace(report, findings=[*report.findings, dead, failed], verdicts=verdicts,
                   independent=["tls.unknown-authority@mirror.corp.example#containerd"])


def _app(report: Report | None = None, fixes: _Fixes | None = None) -> RegtuiApp:
    return make_app(CheckOptions(root="/host", images=(IMAGE,)),
                    source=RecordedSource.of(report if report is not None else demo_report()),
                    fixes=fixes or _Fixes(), export_dir="/nonexistent")


def _screen_text(app: RegtuiApp) -> str:
    """What the terminal shows, as plain text (from the SVG screenshot)."""
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


async def _settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


# -- data -------------------------------------------------------------------------------------------

def test_views_resolve_chain_to_findings_and_the_setting_line() -> None:
    """Each chain id becomes its finding (code, title, file:line); the cause endpoint's config line ends the tree."""
    views = verdict_views(demo_report().to_dict())
    assert [(v.runtime, v.status, v.mark) for v in views] == [("containerd", "degraded", STATUS_MARK["degraded"]),
                                                              ("docker", "ok", STATUS_MARK["ok"])]
    chain = views[0].chain
    assert [n.code for n in chain] == ["mirror.unreachable", "tls.unknown-authority"]
    assert chain[1].severity == "error" and chain[1].where == "https://mirror.corp.example/v2"
    assert views[0].setting == "/etc/containerd/certs.d/docker.io/hosts.toml:4"
    assert views[0].fix == "tls.unknown-authority@mirror.corp.example"
    assert views[0].cause is not None and views[0].cause["code"] == "tls.unknown-authority"
    assert views[1].cause is None and views[1].untested == ("layer downloads: the test pull ran as containerd",)


def test_proxy_cause_ends_at_the_line_that_sets_the_proxy() -> None:
    """A proxy failure's tree ends at the drop-in line that sets the runtime's proxy, not at the endpoint's line."""
    data = demo_report().to_dict()
    cause = data["verdicts"][0]["cause"]
    hub = "https://registry-1.docker.io/v2"
    data["verdicts"][0].update(chain=[], cause={**cause, "endpoint": hub, "phase": "proxy"})
    view = verdict_views(data)[0]
    assert (view.setting_what, view.setting) == (
        "proxy set at", "/etc/systemd/system/containerd.service.d/http-proxy.conf:2")
    assert "<- proxy set at /etc/systemd/system/containerd.service.d/http-proxy.conf:2" in verdict_text(view)


def test_views_keep_file_line_unknown_ids_and_manual_step_redacted() -> None:
    """No endpoint line after a file line or for a proxy cause; an unknown chain id stays; secrets are redacted."""
    data = _failing_report().to_dict()
    data["verdicts"][1]["chain"] = ["gone.finding@x"]
    views = verdict_views(data)
    docker = views[0]
    assert docker.chain[-1].where == "/etc/systemd/system/docker.service.d/http-proxy.conf:2"
    assert docker.setting == ""
    data["verdicts"][0]["chain"] = [data["verdicts"][0]["chain"][0]]
    data["verdicts"][0]["cause"]["endpoint"] = "https://mirror.corp.example/v2"
    assert verdict_views(data)[0].setting == "", "a proxy cause is not set on the endpoint's line"
    data["verdicts"][0]["cause"]["phase"] = "tls"
    assert verdict_views(data)[0].setting == "/etc/docker/daemon.json:5"
    assert docker.fix is None and docker.manual.startswith("start the proxy")
    assert [n.code for n in views[1].chain] == ["gone.finding@x"]
    text = verdict_text(docker)
    assert text.startswith("[XX] docker cannot pull") and "by hand: start the proxy" in text
    assert not any(s in text for s in SECRETS)


def test_views_of_a_report_without_verdicts_are_empty() -> None:
    """An older or partial report (no ``verdicts`` key, or junk in it) gives no verdict, not a traceback."""
    assert verdict_views({"findings": []}) == []
    assert verdict_views({"verdicts": [None, "x"], "findings": []}) == []


# -- pilot ------------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_first_screen_is_the_verdict_without_scrolling() -> None:
    """At 80x24 the app opens on the verdicts (chain, fix, not tested) with no scrolling; provisional while running."""
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        assert app.current == "verdict"
        assert isinstance(app.focused, VerdictList)
        lst = app.query_one(VerdictList)
        assert lst.max_scroll_y == 0 and lst.highlighted == 0
        text = _screen_text(app)
        for words in ("[~~] containerd pulls", "tls.unknown-authority", "hosts.toml:4",
                      "regtui fix tls.unknown-authority@mirror.corp.example", "[ok] docker pulls",
                      "not tested: layer downloads", "0 lists every finding"):
            assert words in text, words
        panel = app.query_one(VerdictPanel)
        assert str(panel.border_subtitle) == "1 degraded, 1 ok"
        panel.show(app.data, True)
        assert str(panel.border_subtitle) == "provisional: 1 degraded, 1 ok", "a run in progress may change them"


@pytest.mark.anyio
async def test_f_opens_the_fix_of_the_highlighted_verdicts_cause() -> None:
    """f (and enter) on a verdict open the guided fix of its cause; on an ok verdict it says there is nothing."""
    fixes = _Fixes()
    app = _app(fixes=fixes)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        await pilot.press("f")
        await _settle(pilot)
        assert isinstance(app.screen, FixScreen)
        assert app.screen.finding["code"] == "tls.unknown-authority"
        assert fixes.calls == ["preview tls.unknown-authority"]
        await pilot.press("escape")
        await pilot.press("down", "f")
        await pilot.pause()
        assert not isinstance(app.screen, FixScreen)
        assert any("docker: nothing to fix (ok)" in n.message for n in app._notifications)
        await pilot.press("up", "enter")
        await _settle(pilot)
        assert isinstance(app.screen, FixScreen) and app.events[-1] == "fix dialog tls.unknown-authority"


@pytest.mark.anyio
async def test_v_returns_to_the_verdict_and_0_still_lists_every_finding() -> None:
    """v shows the verdicts from any panel; 0 is still the all-findings list; c copies the verdict."""
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        await pilot.press("0")
        assert app.current == "all" and isinstance(app.focused, FindingsTable)
        assert len(app.focused.findings) == len(demo_report().findings)
        await pilot.press("3", "v")
        assert app.current == "verdict" and isinstance(app.focused, VerdictList)
        await pilot.press("c")
        assert app.clipboard.startswith("[~~] containerd pulls")
        assert "<- tls.unknown-authority" in app.clipboard


@pytest.mark.anyio
async def test_failing_verdict_shows_manual_step_and_no_secret() -> None:
    """A failing verdict without a plannable fix says the manual step; the proxy password never shows."""
    app = _app(_failing_report())
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        text = _screen_text(app)
        assert "[XX] docker cannot pull" in text and "by hand:" in text and "[??] containerd" in text
        assert "http-proxy.conf:2" in text
        assert "1 error(s) on no pull's path" in text
        assert not any(s in text for s in SECRETS)
        await pilot.press("c")
        assert not any(s in app.clipboard for s in SECRETS)
        await pilot.press("f")
        await _settle(pilot)
        assert isinstance(app.screen, FixScreen) and app.screen.finding["code"] == "proxy.unreachable"
        assert not any(s in app.export_screenshot() for s in SECRETS)


# -- snapshots --------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", list(SIZES))
def test_verdict_panel(snap_compare: Any, size: str) -> None:
    """The first screen: the recorded host's verdicts at the design size and a wide terminal."""

    async def show(pilot: Any) -> None:
        await _settle(pilot)

    assert snap_compare(_app(), terminal_size=SIZES[size], run_before=show)


def test_verdict_panel_failing(snap_compare: Any) -> None:
    """A failing verdict with its manual step, an untested one, and an error on no pull's path, at 80x24."""

    async def show(pilot: Any) -> None:
        await _settle(pilot)

    assert snap_compare(_app(_failing_report()), terminal_size=(80, 24), run_before=show)


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


def _said_report() -> Report:
    """The failing report with what docker and CRI-O logged: one error the verdict explains, one on no verdict."""
    report = _failing_report()
    said = {"since": "2026-01-01T00:00:00Z", "sources": [], "notes": [], "errors": [
        {"runtime": "docker", "via": None, "source": "journal /var/log/journal (docker.service)", "image": IMAGE,
         "endpoint": "registry-1.docker.io", "phase": "proxy", "go_error": "proxyconnect tcp: connection refused",
         "error": "Get \"https://registry-1.docker.io/v2/\": proxyconnect tcp: connection refused", "count": 3,
         "first": "2026-01-01T09:00:00Z", "last": "2026-01-01T10:00:00Z", "status": "explained",
         "reason": "the verdict fails at the same endpoint", "verdict": f"docker {IMAGE}", "finding": None},
        {"runtime": "crio", "via": None, "source": "/var/log/crio.log", "image": "quay.io/a/b:1", "endpoint": "quay.io",
         "phase": "manifest", "go_error": "manifest unknown", "error": "reading manifest 1 in quay.io/a/b: manifest unknown",
         "count": 1, "first": None, "last": None, "status": "unexplained", "reason": "no image was checked for crio",
         "verdict": None, "finding": "pull.logged-error@quay.io#crio"},
    ]}
    return replace(report, runtime_said=said)


def test_views_carry_what_the_runtime_said_next_to_their_verdict() -> None:
    """A logged error held against a verdict is in that verdict's view and its copied text; one on no verdict is not."""
    docker, containerd = verdict_views(_said_report().to_dict())
    (said,) = docker.said
    assert (said.status, said.label) == ("explained", "explained")
    assert said.text.startswith("docker: registry-1.docker.io (proxy, 2026-01-01T10:00:00Z, 3 times)")
    assert containerd.said == ()
    assert "runtime said (explained): docker: registry-1.docker.io" in verdict_text(docker)


@pytest.mark.anyio
async def test_verdict_panel_shows_what_the_runtime_said() -> None:
    """The Verdict panel shows the logged error under its verdict, and counts the one no verdict was held against."""
    app = _app(_said_report())
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        text = _screen_text(app)
        assert "runtime said: explained: docker: registry-1.docker.io (proxy" in text, text
        assert "1 logged pull error(s) match no verdict: crio: quay.io (manifest" in text, text
