"""Review fixes, workbench and reports: secrets, tracebacks from odd input, markup in typed text."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from regtui import findings, redact
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.tui.app import make_app
from regtui.tui.data import endpoint_reproducers
from regtui.tui.demo import IMAGE, demo_report
from regtui.tui.screens.prompts import ImageScreen
from regtui.tui.source import RecordedSource

DIGEST = "sha256:" + "a" * 64


def test_password_with_at_sign_is_masked_whole() -> None:
    """A password holding '@' is masked up to the last '@' of the authority, as Go parses it."""
    assert redact.url("http://u:pa@ss@proxy:3128") == "http://***@proxy:3128"
    assert "ss@" not in redact.text("mirror 'https://u:pa@ss@m.example/v2' refused")


def test_userinfo_without_scheme_is_masked() -> None:
    """``user:password@host`` typed without a scheme is masked in text and URLs."""
    assert redact.text("set it to 'iu:s3cret@insecure.example'") == "set it to '***@insecure.example'"
    assert redact.url("u:s3cret@proxy.example:3128") == "***@proxy.example:3128"
    assert redact.text('location = "qu:p@w@quay.example"') == 'location = "***@quay.example"'


def test_tags_digests_and_addresses_are_kept() -> None:
    """A tag before a digest, a digest reference and a plain mail address are not credentials."""
    for s in (f"alpine:3.19@{DIGEST}", f"docker.io/library/alpine:3@{DIGEST}", "ops@example.com",
              "https://registry.example:5000/v2/"):
        assert redact.text(s) == s


def test_redaction_is_linear_on_hostile_text() -> None:
    """Long runs of ':' and '=' (a one-line config) do not make redaction quadratic."""
    import time

    start = time.monotonic()
    for s in ("=a:" * 100_000 + "@x", "=a" * 100_000, "https://" + "a@" * 100_000):
        redact.text(s)
    assert time.monotonic() - start < 5


def test_finding_title_detail_and_fix_summary_are_redacted() -> None:
    """Every finding is redacted where it is built, so ``fix --list`` cannot print a password."""
    fx = findings.fix("config.invalid-value", "/etc/docker/daemon.json", "set it to 'u:s3cret@m.example'",
                      params={"value": "u:s3cret@m.example"})
    f = findings.finding("config.invalid-value", "/etc/docker/daemon.json", "bad 'https://u:s3cret@m.example'",
                         "dockerd says 'u:s3cret@m.example'", fix=fx)
    assert "s3cret" not in f.title + f.detail + fx.summary
    assert fx.params["value"] == "u:s3cret@m.example"  # the planner still gets the real value


def test_nul_byte_path_is_unreadable_not_a_traceback(tmp_path: Path) -> None:
    """A ``\\u0000`` in a config path is an unreadable file, not a ValueError."""
    host = Host.from_args(tmp_path)
    assert host.read("/etc/\x00x").status == "unreadable"
    assert host.listdir("/etc/\x00") is None
    assert host.glob("/etc/\x00") == []
    assert not host.exists("/etc/\x00x")


def test_reproducers_tolerate_bad_ports() -> None:
    """An endpoint or proxy with a port out of range still gets reproducer commands."""
    out = endpoint_reproducers({"url": "https://m.example:99999/v2", "repository": "library/alpine",
                                "proxy": "http://p.example:abc"}, "docker.io/library/alpine:latest")
    assert any(c.text.startswith("curl ") for c in out)


@pytest.fixture
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


@pytest.mark.anyio
async def test_markup_in_filter_image_and_notes_does_not_crash() -> None:
    """'[/]' typed in the filter or image field, or in a note, is shown as text, not parsed as markup."""
    report = replace(demo_report(), notes=["pull: [/] broke [@click=app.quit]q[/]"], pull=None)
    app = make_app(CheckOptions(images=(IMAGE,)), source=RecordedSource.of(report))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("7", "slash", "[", "slash", "]", "enter")
        await pilot.pause()
        assert app.query_text == "[/]"
        await pilot.press("escape", "i")
        await pilot.pause()
        app.screen.query_one("#image-input").value = "x[/]"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ImageScreen)
        assert "not a valid reference" in str(app.screen.query_one("#image-error").render())
