"""The workbench's pure rules: filters, reproducer commands, redaction, pull progress, waterfall, verdicts."""

from __future__ import annotations

from regtui.tui.data import (
    endpoint_reproducers,
    filter_findings,
    finding_reproducers,
    finding_text,
    panel_findings,
    probe_state,
)
from regtui.tui.demo import SECRETS, demo_report
from regtui.tui.source import PullTracker
from regtui.tui.widgets.clock import verdict
from regtui.tui.widgets.pull import segments


def _data() -> dict:
    return demo_report().to_dict()


def test_panel_findings_are_sorted_errors_first() -> None:
    """Every panel's list puts errors before warnings before info."""
    ranks = {"error": 0, "warning": 1, "info": 2}
    found = panel_findings(_data(), None)
    assert [ranks[f["severity"]] for f in found] == sorted(ranks[f["severity"]] for f in found)
    assert {f["panel"] for f in panel_findings(_data(), "config")} == {"config"}


def test_filter_matches_every_word_across_fields() -> None:
    """A filter keeps findings whose code/severity/subject/title contain every word."""
    found = filter_findings(panel_findings(_data(), None), "warning mirror")
    assert found and all(f["severity"] == "warning" for f in found)
    assert all("mirror" in (f["code"] + f["title"] + f["subject"]).lower() for f in found)
    assert filter_findings(panel_findings(_data(), None), "no-such-word") == []


def test_endpoint_reproducers_follow_the_runtime_view() -> None:
    """curl uses the daemon's proxy and the manifest URL; openssl and skopeo name the same host."""
    data = _data()
    ep = data["routes"][0]["endpoints"][2]
    reps = {r.label.split()[0]: r.text for r in endpoint_reproducers(ep, data["routes"][0]["image"])}
    assert reps["curl"].startswith("curl ") and "--proxy" in reps["curl"]
    assert "/library/alpine/manifests/3.20" in reps["curl"]
    assert "openssl s_client -connect registry-1.docker.io:443" in reps["openssl"]
    assert "docker://registry-1.docker.io/library/alpine:3.20" in reps["skopeo"]


def test_plain_http_endpoint_has_no_openssl_and_skips_tls_verify() -> None:
    """A plain-HTTP mirror gets curl and skopeo --tls-verify=false, never openssl s_client."""
    data = _data()
    ep = data["routes"][0]["endpoints"][1]
    labels = [r.label for r in endpoint_reproducers(ep, data["routes"][0]["image"])]
    texts = [r.text for r in endpoint_reproducers(ep, data["routes"][0]["image"])]
    assert not any(label.startswith("openssl") for label in labels)
    assert any("--tls-verify=false" in t for t in texts)


def test_copied_texts_are_redacted() -> None:
    """Finding text and reproducers never carry the proxy password or registry token."""
    data = _data()
    for f in data["findings"]:
        for text in [finding_text(f)] + [r.text for r in finding_reproducers(data, f)]:
            assert not any(s in text for s in SECRETS), text


def test_dns_finding_reproducer_is_dig_against_the_server() -> None:
    """A DNS finding's first reproducer asks the same server with dig."""
    data = _data()
    f = next(f for f in data["findings"] if f["panel"] == "dns")
    assert finding_reproducers(data, f)[0].text == "dig @10.0.0.2 mirror.corp.example"


def test_probe_state_says_not_built_and_offline() -> None:
    """A missing probe module reads 'not built in this version'; an offline report says offline."""
    data = _data()
    data["probes"]["dns"] = {"data": None, "elapsed_ms": 0.1, "error": "not built in this version"}
    assert probe_state(data, "dns", False) == ("not-built", "live DNS probe: not built in this version")
    data["mode"] = "offline"
    assert probe_state(data, "clock", False)[0] == "offline"
    assert probe_state(data, "clock", True)[0] == "running"


def test_pull_tracker_accepts_call_shapes_and_throttles() -> None:
    """Positional, keyword and object progress all count; intermediate updates are throttled, completion is not."""
    now = [0.0]
    frames: list[dict] = []
    tracker = PullTracker(frames.append, interval=1.0, clock=lambda: now[0])
    tracker("sha256:a", 10, 100)
    now[0] = 0.5
    tracker(digest="sha256:a", done=50)
    assert len(frames) == 1
    now[0] = 1.0
    tracker({"digest": "sha256:b", "bytes": 5, "size": 5})
    assert len(frames) == 2
    latest = frames[-1]
    assert latest["sha256:a"].done == 50 and latest["sha256:a"].total == 100
    assert latest["sha256:a"].rate == 100.0
    assert latest["sha256:b"].done == 5


def test_waterfall_segments_sit_on_a_shared_axis() -> None:
    """Phases follow one another from the layer's start; reused connections have no dns/connect/tls."""
    layer = {"started_ms": 10, "timings_ms": {"dns": 10, "connect": 10, "tls": 20, "ttfb": 10, "transfer": 40}}
    segs = segments(layer, 1.0)
    assert [s[0] for s in segs] == ["dns", "connect", "tls", "ttfb", "transfer"]
    assert segs[0][1] == 10 and segs[-1][1] + segs[-1][2] == 100
    reused = {"started_ms": 0, "timings_ms": {"dns": None, "connect": None, "tls": None, "ttfb": 5, "transfer": 5}}
    assert [s[0] for s in segments(reused, 1.0)] == ["ttfb", "transfer"]


def test_clock_verdict_uses_catalogue_thresholds() -> None:
    """Within 2 s is in sync, above 2 s a warning, above 60 s an error."""
    assert verdict([0.3])[0] == "ok"
    assert verdict([-4.0])[0] == "warn"
    assert verdict([600.0])[0] == "bad" and "behind" in verdict([600.0])[1]
    assert verdict([])[0] == "dim"
