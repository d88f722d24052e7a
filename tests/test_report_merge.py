"""`regtui report --merge`: many hosts' JSON reports as one Markdown/HTML/JSON that says which hosts
share which verdict cause ("half the fleet cannot pull since the proxy change").

The live case checks three lab roots (one good, two whose containerd proxy is a dead port with a
password in its URL) and merges their JSON reports; the Markdown is parsed with markdown-it-py.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from lab.images import OciImage
from lab.pullroots import containerd_root, write_root
from lab.registry import Registry
from lab.verdicts import HOSTS, cli_args, lab_image_ref, lab_name
from regtui.cli import main
from regtui.report import merge

SECRET = "proxy-s3cret"


def fleet_root(base: Path, hostname: str, registry: Registry, proxy_port: int | None) -> Path:
    """A containerd host trusting the lab registry; with ``proxy_port``, its HTTPS_PROXY is that (dead) port."""
    root = base / hostname
    name = lab_name(registry)
    containerd_root(root, name, server=f"https://{name}", server_ca=registry.ca_file, hosts=HOSTS)
    files = {"/etc/hostname": f"{hostname}\n",
             "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n"}
    if proxy_port is not None:
        files["/etc/systemd/system/containerd.service.d/http-proxy.conf"] = (
            f'[Service]\nEnvironment="HTTPS_PROXY=http://ops:{SECRET}@127.0.0.1:{proxy_port}"\n')
    return write_root(root, files, hosts=HOSTS)


def table_rows(md: str, heading: str) -> list[list[str]]:
    """The body rows (cell texts) of the first table after ``heading``, as markdown-it parses the document."""
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    start = next(i for i, t in enumerate(tokens) if t.type == "inline" and t.content == heading)
    rows: list[list[str]] = []
    row: list[str] | None = None
    in_body = False
    for t in tokens[start:]:
        if t.type == "tbody_open":
            in_body = True
        elif t.type == "tbody_close":
            break
        elif in_body and t.type == "tr_open":
            row = []
        elif in_body and t.type == "tr_close" and row is not None:
            rows.append(row)
        elif in_body and t.type == "inline" and row is not None:
            row.append(t.content)
    return rows


class _Strict(HTMLParser):
    """Collects start tags and fails on anything that would load a resource."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert tag not in ("script", "link", "img", "iframe"), tag
        assert not any(k in ("src", "href") for k, _ in attrs), attrs


@pytest.mark.lab
def test_merge_names_the_hosts_that_share_the_dead_proxy(
    tmp_path: Path, registry_tls: Registry, lab_image: OciImage, closed_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Three hosts, two behind a dead proxy: the merged report has one proxy cause naming exactly those two, and no secret."""
    image = lab_image_ref(registry_tls)
    reports = []
    for hostname, port in (("node-a", None), ("node-b", closed_port), ("node-c", closed_port)):
        root = fleet_root(tmp_path / "roots", hostname, registry_tls, port)
        out = tmp_path / f"{hostname}.json"
        rc = main(["check", *cli_args(root, image, "containerd"), "--format", "json", "--output", str(out)])
        assert rc == (0 if port is None else 1), out.read_text()[:2000]
        reports.append(str(out))
    capsys.readouterr()

    rc = main(["report", "--merge", *reports, "--format", "markdown"])
    md = capsys.readouterr().out
    assert rc == 1, "a host that cannot pull makes the merge exit 1"
    assert SECRET not in md
    causes = table_rows(md, "Causes")
    assert len(causes) == 1, causes
    cause = causes[0]
    assert cause[0] == "`proxy.unreachable`" and f"127.0.0.1:{closed_port}" in cause[1]
    assert cause[3] == "2: node-b, node-c"
    matrix = {row[0]: row[1:] for row in table_rows(md, "Host x cause")}
    assert matrix == {"node-a": ["ok", ""], "node-b": ["fails", "X"], "node-c": ["fails", "X"]}

    rc = main(["report", "--merge", *reports, "--format", "html", "--output", str(tmp_path / "fleet.html")])
    html = (tmp_path / "fleet.html").read_text()
    assert rc == 1 and SECRET not in html
    parser = _Strict()
    parser.feed(html)
    parser.close()
    assert parser.tags.count("table") == 4 and "node-b, node-c" in html

    rc = main(["report", "--merge", *reports, "--format", "json"])
    merged = json.loads(capsys.readouterr().out)
    assert [(h["name"], h["status"]) for h in merged["hosts"]] == [("node-a", "ok"), ("node-b", "fails"), ("node-c", "fails")]
    assert merged["statuses"] == {"fails": 2, "degraded": 0, "unknown": 0, "ok": 1}


def test_merge_refuses_what_is_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file, non-JSON, another JSON and a prometheus format are one-line usage errors (exit 2), no traceback."""
    good = tmp_path / "good.json"
    main(["check", "--root", str(Path(__file__).parent / "data" / "busy-root"), "--offline", "--image", "alpine",
          "--format", "json", "--output", str(good)])
    capsys.readouterr()
    (tmp_path / "text.json").write_text("not json {")
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something/else", "verdicts": []}))
    cases = {str(tmp_path / "absent.json"): "cannot read", str(tmp_path / "text.json"): "not JSON",
             str(tmp_path / "other.json"): "not a regtui JSON report"}
    for path, message in cases.items():
        rc = main(["report", "--merge", str(good), path, "--format", "markdown"])
        err = capsys.readouterr().err
        assert rc == 2 and path in err and message in err and "Traceback" not in err
    rc = main(["report", "--merge", str(good), "--format", "prometheus"])
    assert rc == 2 and "--merge writes markdown, html or json" in capsys.readouterr().err



@pytest.mark.parametrize("change", [
    {"host": "x"},
    {"summary": {"counts": [1]}},
    {"verdicts": [{"status": "fails", "cause": "proxy.unreachable"}]},
    {"verdicts": [{"status": "fails", "runtime": 5, "image": "alpine"}]},
    {"findings": ["pull.failed"]},
    {"runtime_said": {"errors": 5}},
], ids=["host-text", "counts-list", "cause-text", "runtime-number", "finding-text", "said-errors-number"])
def test_merge_names_a_malformed_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        change: dict[str, Any]) -> None:
    """A regtui report whose parts have the wrong types is a one-line usage error naming the file, not an internal error."""
    good = tmp_path / "good.json"
    main(["check", "--root", str(Path(__file__).parent / "data" / "busy-root"), "--offline", "--image", "alpine",
          "--format", "json", "--output", str(good)])
    capsys.readouterr()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(good.read_text()), **change}))
    rc = main(["report", "--merge", str(good), str(bad), "--format", "markdown"])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and "malformed regtui report" in err and "internal error" not in err


def test_merge_redacts_planted_secrets_and_keeps_duplicate_hosts_apart(tmp_path: Path) -> None:
    """A hand-edited report with a proxy password in a summary is masked; two reports of one hostname stay two rows."""
    def report(status: str) -> dict:
        return {"schema": "regtui.report/1", "host": {"hostname": "node-x", "root": "/"},
                "summary": {"exit_code": 1, "counts": {"error": 1, "warning": 0, "info": 0}},
                "verdicts": [{"runtime": "docker", "image": "alpine", "status": status,
                              "summary": f"docker cannot pull alpine via http://u:{SECRET}@proxy:3128",
                              "cause": {"code": "proxy.unreachable", "endpoint": "http://proxy:3128", "phase": "proxy"},
                              "fix": None, "manual": None}],
                "findings": [{"code": "proxy.unreachable", "severity": "error",
                              "title": f"proxy http://u:{SECRET}@proxy:3128 refuses connections"}]}

    paths = []
    for folder, status in (("a", "fails"), ("b", "degraded")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "r.json").write_text(json.dumps(report(status)))
        paths.append(tmp_path / folder / "r.json")
    merged = merge.merge([(str(p), merge.load(p)) for p in paths])
    text = merge.render_markdown(merged) + merge.render_html(merged)
    assert SECRET not in text
    assert [h["name"] for h in merged["hosts"]] == ["node-x (r.json) #1", "node-x (r.json) #2"]
    (cause,) = merged["causes"]
    assert cause["status"] == "fails" and len(cause["hosts"]) == 2


def test_merge_combines_what_the_runtimes_logged_across_hosts(tmp_path: Path) -> None:
    """Logged pull errors are one row per runtime, endpoint, phase, kind and status, with the hosts that logged them;
    unexplained ones come first, in Markdown, HTML and JSON alike, and a password in a logged text stays masked."""
    def logged(status: str, count: int, last: str) -> dict[str, Any]:
        return {"runtime": "containerd", "endpoint": "https://mirror.example:5000/v2", "phase": "tls",
                "failure": "tls-unknown-authority", "go_class": "x509.UnknownAuthorityError",
                "go_error": f"x509: certificate signed by unknown authority (via http://u:{SECRET}@proxy:3128)",
                "error": "failed to resolve reference", "count": count, "first": None, "last": last,
                "status": status, "reason": "", "verdict": None, "finding": None}

    def report(host: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
        return {"schema": "regtui.report/1", "host": {"hostname": host, "root": "/"},
                "summary": {"exit_code": 0, "counts": {"error": 0, "warning": 0, "info": 0}},
                "verdicts": [{"runtime": "containerd", "image": "alpine", "status": "ok", "cause": None}],
                "findings": [], "runtime_said": {"since": "2026-12-03T00:00:00Z", "sources": [], "notes": [],
                                                 "errors": errors}}

    inputs = {"node-a": [logged("unexplained", 3, "2026-12-04T01:00:00Z")],
              "node-b": [logged("unexplained", 2, "2026-12-04T02:00:00Z"), dict(logged("explained", 1, ""), phase="dns")],
              "node-c": []}
    paths = []
    for host, errors in inputs.items():
        path = tmp_path / f"{host}.json"
        path.write_text(json.dumps(report(host, errors)))
        paths.append(path)
    merged = merge.merge([(str(p), merge.load(p)) for p in paths])
    first, second = merged["runtime_said"]
    assert (first["status"], first["hosts"], first["count"], first["last"]) == (
        "unexplained", ["node-a", "node-b"], 5, "2026-12-04T02:00:00Z")
    assert (second["status"], second["phase"], second["hosts"]) == ("explained", "dns", ["node-b"])
    md = merge.render_markdown(merged)
    rows = table_rows(md, "What the runtime said")
    assert [r[0] for r in rows] == ["not explained", "explained by the verdict"]
    assert rows[0][4] == "2: node-a, node-b" and rows[0][5] == "5"
    page = merge.render_html(merged)
    assert "What the runtime said" in page and "2: node-a, node-b" in page
    _Strict().feed(page)
    assert SECRET not in md + page + json.dumps(merged)
