"""`regtui explain`'s reading of runtime pull errors: the corpus of real texts, and the parser's edges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regtui.explain import endpoint_host, parse_pull_error, relate
from regtui.findings import CATALOGUE

CORPUS = json.loads((Path(__file__).parent / "data/pull_errors.json").read_text())["errors"]
#: The failure classes regtui knows; the corpus has at least one text for each.
CLASSES = ("dns", "connect", "proxy", "tls-unknown-authority", "tls-expired", "tls-hostname", "auth", "rate-limit",
           "not-found", "digest", "clock", "http-mismatch")


def test_corpus_covers_every_failure_class_and_cites_a_source() -> None:
    """Every failure class has a text, and every text says where it comes from."""
    assert set(CLASSES) <= {e["class"] for e in CORPUS}
    assert all(e["source"] and e["text"] for e in CORPUS)
    assert len({e["id"] for e in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_corpus_text_is_read_as_expected(entry: dict[str, Any]) -> None:
    """The parser names the text's failure, phase, endpoint host, first cause and runtime."""
    p = parse_pull_error(entry["text"])
    want = entry["expect"]
    assert (p.failure, p.phase, p.host) == (want["failure"], want["phase"], want["host"]), p.to_dict()
    assert p.causes and p.causes[0].code == want["cause"], p.to_dict()
    assert all(c.code in CATALOGUE for c in p.causes)
    assert p.runtime == want["runtime"], p.to_dict()
    if "image" in want:
        assert p.image == want["image"], p.to_dict()
    if "endpoint" in want:
        assert p.endpoint == want["endpoint"], p.to_dict()
    for got, m in zip(p.mirrors, want.get("mirrors", []), strict=True):
        assert (got.failure, got.host, got.causes[0].code) == (m["failure"], m["host"], m["cause"])
    assert p.summary.endswith(".") and (want["host"] or "") in p.summary


def test_escaped_journal_text_reads_like_the_plain_one() -> None:
    """A containerd error quoted inside a log line (\\" escapes, twice) gives the same reading as the plain text."""
    plain = ('failed to pull and unpack image "docker.io/library/nginx:1": failed to resolve reference '
             '"docker.io/library/nginx:1": failed to do request: Head "https://registry-1.docker.io/v2/library/nginx/'
             'manifests/1": dial tcp 10.1.2.3:443: connect: connection refused')
    once = 'level=error msg="PullImage failed" error="' + plain.replace('"', '\\"') + '"'
    twice = 'err="' + once.replace('\\', '\\\\').replace('"', '\\"') + '"'
    readings = {(q.failure, q.phase, q.host, q.image) for q in map(parse_pull_error, (plain, once, twice))}
    assert readings == {("connect-refused", "connect", "registry-1.docker.io", "docker.io/library/nginx:1")}


def test_certificate_times_end_where_the_log_line_quotes_the_message() -> None:
    """skopeo's fatal log line (msg="...") ends with the x509 bound: the quote that closes msg is not part of it."""
    text = ('time="2026-12-04T16:59:53Z" level=fatal msg="Error parsing image name \\"docker://registry.lab.test:32951/'
            'lab/app:latest\\": pinging container registry registry.lab.test:32951: Get \\"https://registry.lab.test:'
            '32951/v2/\\": x509: certificate has expired or is not yet valid: current time 2026-12-04T16:59:53Z is '
            'before 2026-12-04T17:04:53+01:00"')
    p = parse_pull_error(text)
    assert (p.failure, p.host) == ("tls-not-yet-valid", "registry.lab.test:32951"), p.to_dict()
    assert p.details == {"current_time": "2026-12-04T16:59:53Z", "bound": "2026-12-04T17:04:53+01:00"}
    assert p.summary.endswith("the certificate's bound 2026-12-04T17:04:53+01:00); it failed in the TLS handshake.")


def test_secrets_in_a_pasted_text_are_redacted() -> None:
    """Credentials in a proxy URL or an Authorization header never reach the reading or its summary."""
    p = parse_pull_error('Error response from daemon: Get "https://reg.example/v2/": proxyconnect tcp: dial tcp '
                         'http://bob:hunter2@10.0.0.5:3128: i/o timeout Authorization: Bearer abc.def.ghi')
    text = json.dumps(p.to_dict())
    assert "hunter2" not in text and "abc.def.ghi" not in text
    assert p.phase == "proxy"


def test_query_strings_of_pre_signed_urls_are_cut() -> None:
    """A blob redirect's pre-signed query (signature, credential) is masked in the stored text and gone from the URL."""
    p = parse_pull_error('error pulling image configuration: Get "https://cdn.example/sha256/a7/a79?X-Amz-Credential='
                         'AKIAEXAMPLE&X-Amz-Signature=acd641dd&sig=zz9": x509: certificate has expired or is not yet valid')
    text = json.dumps(p.to_dict())
    assert "acd641dd" not in text and "AKIAEXAMPLE" not in text and "zz9" not in text
    assert p.url == "https://cdn.example/sha256/a7/a79" and p.failure == "tls-expired"


def test_text_with_no_known_failure_is_unknown_with_no_cause() -> None:
    """A text that is not a pull error gives failure unknown and no likely cause (not a guess)."""
    p = parse_pull_error("the weather is nice today")
    assert (p.failure, p.causes, p.runtime, p.image, p.host) == ("unknown", (), None, None, None)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_parses_without_raising(text: str) -> None:
    """Arbitrary input (control characters, brackets, half URLs) gives a reading, never an exception."""
    p = parse_pull_error(text)
    assert p.failure and isinstance(p.to_dict(), dict)


def test_endpoint_host_drops_the_default_port_only() -> None:
    """Hosts compare without the scheme's default port, and keep any other port."""
    assert endpoint_host("https://Reg.Example:443/v2") == "reg.example"
    assert endpoint_host("http://reg.example:80/v2") == "reg.example"
    assert endpoint_host("https://reg.example:5000/v2") == "reg.example:5000"
    assert endpoint_host("reg.example:5000") == "reg.example:5000"


def _verdict(status: str, code: str | None = None, endpoint: str | None = None, phase: str | None = None) -> dict:
    cause = {"code": code, "finding": f"{code}@x", "endpoint": endpoint, "phase": phase} if code else None
    return {"runtime": "containerd", "image": "x", "status": status, "cause": cause}


TLS_TEXT = ('failed to do request: Head "https://reg.example:5000/v2/app/manifests/1": tls: failed to verify '
            'certificate: x509: certificate signed by unknown authority')


def test_relate_same_endpoint_and_phase_explains() -> None:
    """A failing verdict at the text's endpoint, in its phase, explains it."""
    r = relate(parse_pull_error(TLS_TEXT), _verdict("fails", "tls.unknown-authority", "https://reg.example:5000/v2", "tls"))
    assert r.explains and "reg.example:5000" in r.reason


def test_relate_ok_verdict_does_not_explain() -> None:
    """When the pull works now, the pasted error is not explained (it is older than the current state)."""
    r = relate(parse_pull_error(TLS_TEXT), _verdict("ok"))
    assert not r.explains and "works now" in r.reason


def test_relate_other_host_does_not_explain() -> None:
    """A verdict failing at another endpoint does not explain the text's failure."""
    r = relate(parse_pull_error(TLS_TEXT), _verdict("fails", "dns.nxdomain", "https://mirror.example/v2", "dns"))
    assert not r.explains and "mirror.example" in r.reason


def test_relate_same_host_other_phase_does_not_explain() -> None:
    """Same endpoint, but the verdict fails in another way: not explained, and the reason says so."""
    r = relate(parse_pull_error(TLS_TEXT), _verdict("fails", "pull.failed", "https://reg.example:5000/v2", "connect"))
    assert not r.explains and "another way" in r.reason


@pytest.mark.parametrize("runtime", ["containerd", "docker", "crio"])
def test_summary_and_reading_name_the_runtime_alike(runtime: str) -> None:
    """The summary and the reading lines name a runtime with the same words (CRI-O was "CRI-O / podman" in one, "CRI-O/podman" in the other)."""
    from regtui.explain import RUNTIME_WORDS
    from regtui.explaincmd import reading_lines

    entry = next(e for e in CORPUS if e["expect"].get("runtime") == runtime)
    parsed = parse_pull_error(entry["text"])
    assert parsed.runtime == runtime
    words = RUNTIME_WORDS[runtime]
    assert words in parsed.summary
    assert any(words in line for line in reading_lines(parsed))
