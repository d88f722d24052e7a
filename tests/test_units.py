"""One byte formatter: the pull's text, the text, Markdown and HTML reports, progress and the workbench give one figure."""

from __future__ import annotations

from typing import Any

import pytest

from regtui import pullcmd, units
from regtui.report import html, markdown, text

TIMINGS = {"dns": None, "connect": None, "tls": None, "ttfb": 1.0, "transfer": 2.0, "total": 3.0, "reused": True}


def _pull() -> dict[str, Any]:
    blob = {"digest": "sha256:" + "ab" * 32, "size": 300_000, "endpoint": "https://registry.example.test/v2",
            "attempts": 1, "ok": True, "error": None, "started_ms": 1.0, "timings_ms": TIMINGS,
            "bytes_per_second": 120_000}
    return {"image": "registry.example.test/app:1", "runtime": "containerd", "flavor": "containerd",
            "platform": "linux/amd64", "endpoint": "https://registry.example.test/v2", "endpoints": [],
            "manifest": {"digest": "sha256:" + "cd" * 32, "media_type": "application/vnd.oci.image.manifest.v1+json",
                         "platform_digest": "sha256:" + "cd" * 32, "platform": "linux/amd64"},
            "config": None, "layers": [blob], "bytes": 300_000, "wall_ms": 2500.0, "ok": True,
            "concurrency": 3, "concurrency_source": "default (CRI)"}


@pytest.mark.parametrize(("n", "shown"), [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (300_000, "300.0 kB"),
                                          (22_500_000, "22.5 MB"), (524_447_670, "524.4 MB"), (3e9, "3.0 GB"),
                                          (None, "-"), ("many", "-")])
def test_decimal_units_as_docker_shows_them(n: Any, shown: str) -> None:
    """Sizes are decimal (kB, MB, GB), as docker pull and registries show them; a non-number is a dash."""
    assert units.human_bytes(n) == shown


def test_every_output_shows_one_layer_size_and_rate_alike() -> None:
    """A 300 kB layer pulled at 120 kB/s reads "300.0 kB" and "120.0 kB/s" in every output, never KiB or 0.3 MB."""
    pull = _pull()
    outputs = {
        "pull text": pullcmd.render_text(pull, []),
        "text report": "\n".join(text._pull({"pull": pull})),
        "markdown": "\n".join(markdown._pull({"pull": pull})),
        "html": "\n".join(html._pull({"pull": pull})),
    }
    for name, out in outputs.items():
        assert "300.0 kB" in out, name
        assert "KiB" not in out and "0.3 MB" not in out, name
    for name in ("pull text", "text report"):
        assert "120.0 kB/s" in outputs[name], name


def test_the_workbench_uses_the_same_formatter() -> None:
    """The workbench's pull panel and progress bars format bytes with the shared formatter."""
    from regtui.tui import data

    assert data.human_bytes is units.human_bytes
