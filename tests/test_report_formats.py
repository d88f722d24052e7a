"""Reports people can send: the verdict-first Markdown (parsed with markdown-it-py), the one-file HTML
(strict html5lib parse, nothing external, no horizontal overflow at 800 and 1400 px in headless
Chromium, a waterfall row per layer) and reproducer commands, from a recorded root and a live lab run.

The live run uses htpasswd credentials and a proxy URL with a password; no secret, nor its base64,
may appear in any format. Screenshots go to ``.artifacts/`` (ignored by git) for a human to look at.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import html5lib
import pytest
from markdown_it import MarkdownIt

from lab.fixtures import LAB_CREDENTIALS, LAB_PROXY_CREDENTIALS
from lab.images import OciImage
from lab.proxy import TinyProxy
from lab.pullroots import containerd_root, crio_root, write_root
from lab.registry import Registry
from lab.require import require_binary
from lab.verdicts import HOSTS, cli_args, lab_image_ref, lab_name
from regtui.cli import main

REPO = Path(__file__).resolve().parent.parent
BUSY_ROOT = REPO / "tests" / "data" / "busy-root"
ARTIFACTS = REPO / ".artifacts"
FORMATS = ("text", "json", "markdown", "html", "prometheus")
#: Secrets planted in the busy root (config.toml, registries.yaml, config.json auth blobs).
BUSY_SECRETS = ("hunter2-not-shown", "Y2ktYm90OnMzY3JldC1wYXNz", "s3cret-pass", "bm90LWJhc2U2NC1AIQ==")


def lab_secrets() -> list[str]:
    """The lab's passwords, plain and base64-encoded as an auth blob or a Basic header carries them."""
    pairs = (LAB_CREDENTIALS, LAB_PROXY_CREDENTIALS)
    return [p for _, p in pairs] + [base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in pairs]


def render_all(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``regtui check ... --format F --output FILE`` for every format."""
    out = {}
    for fmt in FORMATS:
        target = tmp_path / f"report.{fmt}"
        main(["check", *args, "--format", fmt, "--output", str(target)])
        out[fmt] = target.read_text()
    capsys.readouterr()
    return out


def md_outline(md: str) -> list[tuple[str, str]]:
    """(token type, text) of headings and paragraphs, in document order, as markdown-it parses them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    out = []
    for i, t in enumerate(tokens):
        if t.type in ("heading_open", "paragraph_open") and i + 1 < len(tokens):
            out.append((t.tag, tokens[i + 1].content))
    return out


def md_tables(md: str) -> int:
    """How many GFM tables markdown-it finds."""
    return sum(1 for t in MarkdownIt("commonmark").enable("table").parse(md) if t.type == "table_open")


def assert_self_contained(html: str) -> None:
    """Strict HTML5 parse; no script, stylesheet link, image or frame; no src/href at all (nothing loads)."""
    html5lib.HTMLParser(strict=True).parse(html)
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"\s(src|href)\s*=", html, re.I)
    assert "url(" not in html and "@import" not in html


def chromium_layout(html: str, width: int, tmp_path: Path, name: str) -> dict[str, int]:
    """Lay the page out in headless Chromium at ``width`` px: page width, viewport width, waterfall rows.

    A probe script is appended to a copy of the page (the report itself has none) and writes the
    figures into the title; a screenshot of the same width is kept under ``.artifacts/``.
    """
    chromium = require_binary("chromium")
    probe = ("<script>var e=document.documentElement;document.title='W='+e.scrollWidth+' C='+e.clientWidth"
             "+' R='+document.querySelectorAll('svg.waterfall g.layer').length</script>")
    page = tmp_path / f"{name}-{width}.html"
    page.write_text(html.replace("</body>", probe + "</body>"))
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", f"--user-data-dir={tmp_path / 'chromium-profile'}",
            f"--window-size={width},1200"]
    p = subprocess.run([*base, "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"<title>W=(\d+) C=(\d+) R=(\d+)</title>", p.stdout)
    assert m, p.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = tmp_path / f"{name}-{width}.png"
    subprocess.run([*base, f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    if shot.exists():
        (ARTIFACTS / shot.name).write_bytes(shot.read_bytes())
    return {"page": int(m.group(1)), "viewport": int(m.group(2)), "rows": int(m.group(3))}


@pytest.mark.lab
def test_live_report_in_every_format_is_verdict_first_complete_and_secret_free(
    tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage,
    tinyproxy_factory: Callable[..., TinyProxy], hosts_file_factory: Callable[[dict[str, str]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Live lab run (credentials, proxy password): every format is secret-free; Markdown parses, verdicts first;
    HTML is strict, self-contained, fits 800 and 1400 px in Chromium and draws one waterfall row per layer."""
    name, root = lab_name(registry_tls_auth), tmp_path / "root"
    proxy = tinyproxy_factory(auth=LAB_PROXY_CREDENTIALS, hosts_file=hosts_file_factory(HOSTS))
    containerd_root(root, name, server=f"https://{name}", server_ca=registry_tls_auth.ca_file, hosts=HOSTS,
                    auths={name: LAB_CREDENTIALS})
    crio_root(root, name, hosts=HOSTS, auths={name: LAB_CREDENTIALS})  # CRI-O lacks the CA: it fails
    write_root(root, {
        "/etc/hostname": "node-7\n",
        "/lib/systemd/system/containerd.service": "[Service]\nExecStart=/usr/bin/containerd\n",
        "/etc/systemd/system/containerd.service.d/http-proxy.conf": f'[Service]\nEnvironment="HTTPS_PROXY={proxy.url}"\n',
    }, hosts=HOSTS)
    outputs = render_all(cli_args(root, lab_image_ref(registry_tls_auth), "auto"), tmp_path, capsys)
    for fmt, text in outputs.items():
        for secret in lab_secrets():
            assert secret not in text, f"{fmt} leaks a secret"
    data = json.loads(outputs["json"])
    layers = len(data["pull"]["layers"])
    assert data["pull"]["ok"] and layers == len(lab_image.layers)

    md = outputs["markdown"]
    outline = md_outline(md)
    first_heading = next(i for i, (tag, _) in enumerate(outline) if tag == "h2")
    verdict_paras = [text for tag, text in outline[:first_heading] if text.startswith(("**OK**", "**FAILS**"))]
    assert len(verdict_paras) == 2 and verdict_paras[0].startswith("**OK**: containerd pulls")
    assert "**FAILS**: crio cannot pull" in verdict_paras[1] and "regtui fix" in verdict_paras[1]
    headings = [text for tag, text in outline if tag == "h2"]
    assert headings[:8] == ["What the runtime said", "Findings", "Routes", "Certificates", "Proxy", "Clock", "Test pull",
                            "Reproducers"]
    assert md_tables(md) >= 6
    assert re.search(r"\| layer \| `sha256:[0-9a-f]{12}` \| [\d.]+ kB \|", md), "per-layer rows with sizes in kB"
    assert "USER:PASSWORD" in md and "http://***@" in md

    html = outputs["html"]
    assert_self_contained(html)
    assert html.count("<g class=layer>") == layers
    for width in (800, 1400):
        layout = chromium_layout(html, width, tmp_path, "live")
        assert layout["page"] <= layout["viewport"], f"horizontal overflow at {width} px: {layout}"
        assert layout["rows"] == layers


@pytest.mark.lab
def test_narrow_window_stacks_tables_without_overflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The busy root's report (long paths, many findings) at 800, 1400 and a 480 px phone: never wider than the window."""
    outputs = render_all(["--root", str(BUSY_ROOT), "--offline", "--runtime", "all", "--image", "alpine",
                          "--image", "registry.corp.example:5000/team/app:1.2"], tmp_path, capsys)
    assert_self_contained(outputs["html"])
    for width in (480, 800, 1400):
        layout = chromium_layout(outputs["html"], width, tmp_path, "busy")
        assert layout["page"] <= layout["viewport"], f"horizontal overflow at {width} px: {layout}"
        assert layout["rows"] == 0, "no test pull offline, so no waterfall"


def test_recorded_root_in_every_format_keeps_its_planted_secrets_out(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The busy root (passwords in config.toml and registries.yaml, auth blobs in config.json): no format shows one."""
    outputs = render_all(["--root", str(BUSY_ROOT), "--offline", "--runtime", "all", "--image", "alpine"],
                         tmp_path, capsys)
    for fmt, text in outputs.items():
        for secret in BUSY_SECRETS:
            assert secret not in text, f"{fmt} leaks {secret}"
    md = outputs["markdown"]
    headings = [text for tag, text in md_outline(md) if tag == "h2"]
    assert headings[:2] == ["What the runtime said", "Findings"] and "Routes" in headings
    sev = [text for tag, text in md_outline(md) if tag == "h3" and re.fullmatch(r"(Error|Warning|Info) \(\d+\)", text)]
    assert [s.split()[0] for s in sev] == ["Error", "Warning", "Info"], "findings grouped by severity, errors first"
    html5lib.HTMLParser(strict=True).parse(outputs["html"])


@pytest.mark.lab
def test_reproducer_commands_fail_the_way_the_runtime_does(
    tmp_path: Path, registry_tls_auth: Registry, lab_image: OciImage, capsys: pytest.CaptureFixture[str],
) -> None:
    """The reproducers for CRI-O's failing endpoint (CA not trusted): with the placeholder filled in, curl fails on
    the certificate (exit 60) and skopeo on x509, as CRI-O does; given the CA, the same curl gets the manifest."""
    curl_bin = require_binary("curl")
    skopeo_bin = require_binary("skopeo")
    name, root = lab_name(registry_tls_auth), tmp_path / "root"
    crio_root(root, name, hosts=HOSTS, auths={name: LAB_CREDENTIALS})
    target = tmp_path / "r.json"
    main(["report", *cli_args(root, lab_image_ref(registry_tls_auth), "crio"), "--format", "json",
          "--output", str(target)])
    md_target = tmp_path / "r.md"
    main(["report", *cli_args(root, lab_image_ref(registry_tls_auth), "crio"), "--format", "markdown",
          "--output", str(md_target)])
    capsys.readouterr()
    md = md_target.read_text()
    block = md.split("## Reproducers", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    commands = {c.split()[0]: c for c in block.splitlines()}
    assert set(commands) >= {"curl", "openssl", "skopeo", "crictl"}
    assert "USER:PASSWORD" in commands["curl"] and LAB_CREDENTIALS[1] not in md
    real = ":".join(LAB_CREDENTIALS)
    resolve = ["--resolve", f"{name}:127.0.0.1"]

    curl = shlex.split(commands["curl"].replace("USER:PASSWORD", real))
    curl = [curl_bin, *resolve, *curl[1:]]
    p = subprocess.run(curl, capture_output=True, text=True, timeout=30)
    assert p.returncode == 60, (p.returncode, p.stderr)  # SSL certificate problem, as CRI-O's x509 error
    p = subprocess.run([*curl[:1], "--cacert", str(registry_tls_auth.ca_file), *curl[1:]], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("200 "), (p.stdout, p.stderr)

    skopeo = shlex.split(commands["skopeo"].replace("USER:PASSWORD", real).replace(name, f"127.0.0.1:{registry_tls_auth.port}"))
    p = subprocess.run([skopeo_bin, *skopeo[1:]], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "x509" in p.stderr, p.stderr
