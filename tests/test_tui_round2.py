"""Pilot tests of the workbench's second round: selection, quitting, cancel and progress, reasons, 80 columns,
values in words, rendering only what is on screen, CLI details."""

from __future__ import annotations

import html
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Tab

from lab.pullroots import containerd_root
from lab.sockets import TcpBlackHole, UdpBlackHole, closed_port
from regtui.cli import main
from regtui.fixes import Preview
from regtui.model import PANELS
from regtui.options import CheckOptions
from regtui.tui.app import make_app
from regtui.tui.data import fold_diff, human_value, panel_findings
from regtui.tui.demo import IMAGE, SECRETS, demo_report
from regtui.tui.screens.endpoint import EndpointScreen
from regtui.tui.screens.fix import FixScreen
from regtui.tui.source import LiveSource, RecordedSource
from regtui.tui.widgets.base import Panel
from regtui.tui.widgets.pull import PullPanel
from test_tui_app import FakeFixes, _app, _screen_text, _settle, _source

pytestmark = pytest.mark.anyio

SIZE = (80, 24)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


def _lines(app: Any) -> list[str]:
    """The screen as lines of text, from the SVG screenshot's text runs (grouped by row, ordered by column)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text[^>]*?x="([\d.]+)"[^>]*?y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot(), re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", m.group(3))).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            line = line.ljust(int(round(x / 12.2))) + text
        lines.append(line.rstrip())
    return lines


def _footer(app: Any) -> str:
    """The last line on screen (the footer's keys)."""
    return [line for line in _lines(app) if line.strip()][-1]


# -- 1. f acts on the panel on screen, which opens on its most severe finding --------------------

async def test_f_after_switching_panels_opens_the_most_severe_finding_of_the_panel_on_screen(tmp_path: Path) -> None:
    """A cursor moved in one view does not leak into the next: 0 (after moving), 4, 0 then f open each view's first row."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("0", "down", "down", "4")
        await _settle(pilot)
        await pilot.press("f")
        await _settle(pilot)
        assert isinstance(app.screen, FixScreen)
        assert app.screen.finding["code"] == panel_findings(app.data, "proxy")[0]["code"]
        await pilot.press("escape", "0")
        await _settle(pilot)
        await pilot.press("f")
        await _settle(pilot)
        assert app.screen.finding == panel_findings(app.data, None)[0]
        assert app.screen.finding["severity"] == "error"


async def test_a_panel_follows_its_most_severe_finding_as_results_arrive(tmp_path: Path) -> None:
    """An error arriving after a warning takes the highlight, unless the user moved the cursor."""
    full = demo_report()
    first = replace(full, findings=[f for f in full.findings if f.severity != "error"])
    reports = iter([first, full])
    source = RecordedSource(lambda options: next(reports, full))
    app = make_app(CheckOptions(root="/host", images=(IMAGE,)), source=source, fixes=FakeFixes(),
                   export_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("0")
        await _settle(pilot)
        assert app.selected_finding()["severity"] == "error"


# -- 2. ctrl+c and q quit at once -------------------------------------------------------------------

async def test_ctrl_c_quits_and_cancels_what_runs(tmp_path: Path) -> None:
    """ctrl+c during a run cancels the source and exits with status 0 (no "press ctrl+q" notice)."""
    gate = threading.Event()
    source = _source(gate=gate)
    app = _app(tmp_path, source=source)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            await pilot.pause(0.02)
            if app.report is not None:
                break
        assert app.running
        # Posted, not pressed: the pilot's wait for the screen would race the app's shutdown.
        app.simulate_key("ctrl+c")
        for _ in range(250):
            await pilot.pause(0.02)
            if not app.is_running:
                break
    assert app.return_code == 0
    assert source.cancels >= 1 and "quit" in app.events


def _black_hole_root(tmp_path: Path, hole: TcpBlackHole) -> tuple[Path, str]:
    """A containerd root whose only mirror is a TCP black hole, the upstream a closed port."""
    upstream = f"127.0.0.1:{closed_port()}"
    root = tmp_path / "root"
    containerd_root(root, upstream, server=f"https://{upstream}",
                    mirrors=[{"url": f"https://{hole.host_port}", "skip_verify": True}])
    return root, f"{upstream}/lab/app:latest"


async def test_q_during_a_black_hole_stops_the_probes_at_once(tmp_path: Path) -> None:
    """q while probes wait on a black hole (30 s timeout) exits and ends the run's thread within a few seconds."""
    with TcpBlackHole() as hole, UdpBlackHole() as ntp:
        root, image = _black_hole_root(tmp_path, hole)
        source = LiveSource()
        options = CheckOptions(root=str(root), images=(image,), timeout=30.0, no_pull=True,
                               ntp_servers=(f"127.0.0.1:{ntp.port}",))
        app = make_app(options, source=source, fixes=FakeFixes(), export_dir=str(tmp_path))
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(500):
                await pilot.pause(0.02)
                if app.running and app.running != frozenset(PANELS) and source._task is not None:
                    break
            assert source._task is not None, "the probes never started"
            started = time.monotonic()
            app.simulate_key("q")
            for _ in range(250):
                await pilot.pause(0.02)
                if not app.is_running:
                    break
        # The run holds the source's lock until its thread is done: it must come free long before 30 s.
        assert source._lock.acquire(timeout=10)
        source._lock.release()
        assert time.monotonic() - started < 10


# -- 3. cancel in the app; progress of the headless commands ----------------------------------------

async def test_x_and_esc_cancel_a_run_and_the_app_stays(tmp_path: Path) -> None:
    """x cancels the running probes: panels say cancelled, tabs mark it, the app stays; esc does the same."""
    for key in ("x", "escape"):
        gate = threading.Event()
        source = _source(gate=gate)
        app = _app(tmp_path, source=source)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(100):
                await pilot.pause(0.02)
                if app.report is not None:
                    break
            for _ in range(50):  # the footer recomposes after the bindings change
                await pilot.pause(0.02)
                if "x cancel" in _footer(app):
                    break
            assert "x cancel" in _footer(app) and "q quit" in _footer(app)
            await pilot.press(key)
            await _settle(pilot)
            assert source.cancels == 1
            assert app.running == frozenset() and app.is_running
            assert any(e.startswith("run cancelled") for e in app.events)
            assert app.query_one("#panel-mirrors", Panel).state == "cancelled"
            assert "×" in app.query_one("#tab-mirrors", Tab).label.plain
            await pilot.press("2")
            await _settle(pilot)
            assert "cancelled" in _screen_text(app)


def _pty_run(argv: list[str], *, stderr_tty: bool, timeout: float = 60) -> tuple[str, str, int]:
    """Run ``regtui ARGV`` with stdout on a pipe and stderr on a pseudo-terminal (or a pipe)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "regtui", *argv]
    if not stderr_tty:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        return out.stdout, out.stderr, out.returncode
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    err = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            err += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    return stdout, err.decode(errors="replace"), proc.wait(timeout=timeout)


def test_headless_check_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    """On a TTY, check redraws its phase and the waiting probes and endpoints; on a pipe or with json, nothing."""
    with TcpBlackHole() as hole, UdpBlackHole() as ntp:
        root, image = _black_hole_root(tmp_path, hole)
        argv = ["check", "--root", str(root), "--image", image, "--timeout", "1.5", "--no-pull",
                "--ntp-server", f"127.0.0.1:{ntp.port}"]
        out, err, _ = _pty_run(argv, stderr_tty=True)
        assert "regtui: probing" in err and "waiting for" in err and hole.host_port in err
        assert "\x1b[J" in err  # erased at the end, the report alone is left
        assert "mirror" in out
        _, err_pipe, _ = _pty_run(argv, stderr_tty=False)
        assert "probing" not in err_pipe and "\x1b" not in err_pipe
        _, err_json, _ = _pty_run([*argv, "--format", "json"], stderr_tty=True)
        assert "probing" not in err_json


def test_headless_pull_progress_names_the_phase_and_layer_bytes() -> None:
    """The pull's progress block shows the phase, then each layer's bytes as docker pull does."""
    from regtui.progress import Progress

    class Tty:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> int:
            self.text += s
            return len(s)

        def flush(self) -> None:
            """Nothing buffered."""

    stream = Tty()
    p = Progress(stream)  # type: ignore[arg-type]
    p.phase("pulling registry.example/app:1 as containerd")
    p.layer("sha256:" + "a" * 64, 1_500_000, 3_000_000)
    p.layer("sha256:" + "b" * 64, 2_000_000, 2_000_000)
    p.draw()
    assert "pulling registry.example/app:1" in stream.text
    assert "aaaaaaaaaaaa: downloading 1.5 MB / 3.0 MB" in stream.text
    assert "bbbbbbbbbbbb: pull complete 2.0 MB" in stream.text
    p.clear()
    assert stream.text.endswith("\x1b[3A\r\x1b[J")


# -- 4. reasons where the eye is; Enter on an endpoint -----------------------------------------------

async def test_mirrors_rows_say_why_and_enter_opens_the_endpoint(tmp_path: Path) -> None:
    """The failed endpoint's reason is on screen at 80 columns; Enter opens its detail; c copies a command."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("2")
        await _settle(pilot)
        screen = _screen_text(app)
        assert "└ x509: certificate signed by unknown authority" in screen
        assert "1E" in app.query_one("#tab-certs", Tab).label.plain
        await pilot.press("shift+tab", "down", "down", "enter")
        await _settle(pilot)
        assert isinstance(app.screen, EndpointScreen)
        heads = [h for h, _ in app.screen.sections]
        assert heads[:4] == ["Result", "Timings", "TLS", "Proxy"]
        assert "probe total 41 ms" in dict(app.screen.sections)["Timings"]
        await pilot.press("c")
        await _settle(pilot)
        assert app.events[-1] == "copied curl mirror.corp.example"
        await pilot.press("escape")
        assert not isinstance(app.screen, EndpointScreen)


async def test_endpoint_detail_names_the_no_proxy_entry_and_redacts(tmp_path: Path) -> None:
    """The detail of an endpoint behind a proxy shows the decision and never a password."""
    app = _app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        await pilot.press("2")
        await _settle(pilot)
        route = app.data["routes"][1]
        ep = dict(route["endpoints"][1], proxy_reason="direct: NO_PROXY entry '.docker.io' matches")
        app.push_screen(EndpointScreen(app.data, route["runtime"], route["image"], ep))
        await _settle(pilot)
        proxy = dict(app.screen.sections)["Proxy"]
        assert "matching NO_PROXY entry: .docker.io" in proxy
        text = _screen_text(app)
        assert "USER:PASSWORD@" in text, "the reproducers carry a placeholder where the proxy's credentials were"
        assert not any(s in text for s in SECRETS)


# -- 5. 80 columns ---------------------------------------------------------------------------------

async def test_80_columns_show_the_whole_finding_and_keep_help_and_quit(tmp_path: Path) -> None:
    """The highlighted finding's whole title wraps in the detail area; ? help and q quit stay in the footer."""
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        for key in ("1", "4", "0"):
            await pilot.press(key)
            await _settle(pilot)
            f = app.selected_finding()
            detail = app.current_view().query_one(".finding-detail")
            assert detail.display and detail.region.height >= 2
            assert f["title"] in " ".join(str(detail.render()).split())
            rows = [line.strip("│ ") for line in _lines(app)]
            on_screen = " ".join(" ".join(rows).split())
            assert f["title"].split()[-1] in on_screen  # the last word of the title is on screen (wrapped)
            footer = _footer(app)
            assert "? help" in footer and "q quit" in footer


def _ca_diff() -> str:
    pem = _self_signed_pem()
    body = "".join(f"+{line}\n" for line in pem.strip().splitlines())
    return ("--- /dev/null\n+++ /etc/containerd/certs.d/reg.example/ca.crt\n@@ -0,0 +1,%d @@\n%s"
            "--- /etc/containerd/certs.d/reg.example/hosts.toml\n+++ /etc/containerd/certs.d/reg.example/hosts.toml\n"
            "@@ -1,2 +1,3 @@\n server = \"https://reg.example\"\n+ca = \"ca.crt\"\n" % (len(pem.splitlines()), body))


def _self_signed_pem() -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corp Root CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


async def test_fix_preview_shows_file_edits_first_and_folds_certificates(tmp_path: Path) -> None:
    """A CA fix's preview opens on the hosts.toml change; the certificate is one line: subject and fingerprint."""
    diff = _ca_diff()

    class CaFix(FakeFixes):
        def preview(self, finding: Any, options: CheckOptions, probes: Any = None) -> Preview:
            """A CA file and a hosts.toml edit."""
            return Preview(kind="edit", diff=diff, can_apply=True)

    app = _app(tmp_path, fixes=CaFix())
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("3", "f")
        await _settle(pilot)
        text = "\n".join(_lines(app))
        assert text.index("hosts.toml") < text.index("ca.crt")
        assert '+ca = "ca.crt"' in text
        assert "[certificate CN=Corp Root CA, sha256" in text
        assert "BEGIN CERTIFICATE" not in text and "MII" not in text
    folded = fold_diff(diff)
    assert len(folded.splitlines()) < 14 and folded.startswith("--- /etc/containerd/certs.d/reg.example/hosts.toml")


# -- 6. no program internals on screen ------------------------------------------------------------------

async def test_config_values_read_as_a_person_writes_them(tmp_path: Path) -> None:
    """Dicts, booleans and empty strings become lines, yes/no and "not set"; runtimes and rows are not repeated."""
    base = demo_report()
    summaries = dict(base.summaries)
    summaries["docker"] = {**summaries["docker"], "version_assumed": False,
                           "proxy": {"HTTP_PROXY": "", "HTTPS_PROXY": "http://proxy.corp.example:3128"},
                           "differences": {"HTTP_PROXY": {"daemon": "", "shell": "http://p:3128"}}}
    routes = list(base.routes)
    # containerd lists the server again as a [host]: the same decision must not make a second row.
    routes[0] = replace(routes[0], endpoints=(*routes[0].endpoints, routes[0].endpoints[-1]))
    report = replace(base, summaries=summaries, runtimes=[*base.runtimes, base.runtimes[1]], routes=routes, pull=None)
    app = make_app(CheckOptions(root="/host", images=(IMAGE,)), source=RecordedSource.of(report), fixes=FakeFixes(),
                   export_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        await pilot.press("1")  # the app opens on the verdict; a panel is rendered when shown
        await pilot.pause()
        tree = app.query_one("#config-tree")
        labels = []

        def walk(node: Any) -> None:
            for child in node.children:
                labels.append(str(child.label))
                walk(child)

        walk(tree.root)
        text = "\n".join(labels)
        assert "version assumed: no" in text
        assert "HTTP_PROXY: not set" in text and "HTTPS_PROXY: http://proxy.corp.example:3128" in text
        assert "{" not in text and "False" not in text and "''" not in text
        strip = str(app.query_one("#status").render())
        assert "containerd, containerd" not in strip and "docker, containerd" in strip
        await pilot.press("4")
        await _settle(pilot)
        decisions = {(r["runtime"], ep["host"], ep.get("proxy")) for r in app.data["routes"] for ep in r["endpoints"]
                     if ep.get("status") != "skipped"}
        assert app.query_one("#proxy-decisions").row_count == len(decisions)
    assert human_value([True, "a", "a", None]) == "yes, a, not set"


async def test_command_preview_has_one_dollar(tmp_path: Path) -> None:
    """A command fix's preview shows "$ ctr ..." once, not "$ $ ctr"."""

    class CommandFix(FakeFixes):
        def preview(self, finding: Any, options: CheckOptions, probes: Any = None) -> Preview:
            """The engine's command text."""
            return Preview(kind="command", command="$ ctr images pull --hosts-dir /etc/containerd/certs.d <image>\n"
                                                   "  (pulls with the hosts dir)\n", can_apply=False)

    app = _app(tmp_path, fixes=CommandFix())
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot)
        await pilot.press("1", "f")
        await _settle(pilot)
        text = _screen_text(app)
        assert "$ ctr images pull" in text and "$ $" not in text


# -- 7. only the view on screen renders ------------------------------------------------------------------

async def test_only_the_panel_on_screen_renders_during_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Panels off screen get their state and badge, and their body only when shown (less work per update)."""
    calls: dict[str, int] = {}
    original = PullPanel.render_body

    def counting(self: Panel, data: dict[str, Any], state: str) -> None:
        calls[self.panel] = calls.get(self.panel, 0) + 1
        original(self, data, state)

    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        monkeypatch.setattr(PullPanel, "render_body", counting)
        await _settle(pilot)
        assert calls.get("pull", 0) == 0
        assert app.query_one(PullPanel).state == "done"
        await pilot.press("7")
        await _settle(pilot)
        assert calls["pull"] >= 1 and "pulled" in str(app.query_one("#pull-summary").render())


# -- 8. CLI details ---------------------------------------------------------------------------------------

def test_mistyped_command_lists_commands_and_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    """`regtui chek` is a usage error that names `check` and lists every command."""
    assert main(["chek"]) == 2
    err = capsys.readouterr().err
    assert "did you mean `regtui check`" in err and "commands: check, pull, fix, undo, report, tui" in err


def test_fix_apply_without_terminal_or_yes_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`fix --apply` with no TTY and no --yes exits 2 before doing anything."""
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["fix", "--root", str(tmp_path), "--offline", "--list", "--apply"]) == 2
    assert "needs --yes" in capsys.readouterr().err


def test_help_and_readme_describe_check_and_the_workbench(capsys: pytest.CaptureFixture[str]) -> None:
    """The top-level help describes check without "when built"; README says how to start the workbench and its keys."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "when built" not in out and "probe endpoints and run a test pull" in out
    readme = (REPO / "README.md").read_text()
    section = readme.split("## The workbench", 1)[1].split("\n## ", 1)[0]
    for key in ("`f` / enter", "enter on an endpoint", "`x` / esc", "`q` / ctrl+c", "`?`"):
        assert key in section

