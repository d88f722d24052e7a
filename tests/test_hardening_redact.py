"""No secret reaches any output: secrets planted in every configuration location regtui reads never
appear (nor their base64) in check, report, fix preview/apply/undo, the workbench's export helpers
or --debug output."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from regtui import redact
from regtui.cli import main
from tests.rootfs import write_tree

BUSY = Path(__file__).parent / "data" / "busy-root"
# Fixed markers around every planted secret: output holding either end of one is a leak.
HEAD, TAIL = "kQ7zXq", "Vw3jRm"
# Printable, with the characters that break naive redaction; no backslash or '%' (systemd specifiers).
ALPHABET = st.sampled_from(list("abcXYZ0189 /@:#?&=+,;!~'\"[]{}<>|*") + ["é", "ü", "中", "ß", "€"])
BODY = st.text(alphabet=ALPHABET, min_size=4, max_size=14)


def secret(i: int, body: str) -> str:
    """The ``i``-th planted secret: fixed markers around a random body (never shorter than 12)."""
    return f"{HEAD}{i:02d}{body}{TAIL}"


def b64_needles(s: str) -> list[str]:
    """Base64 and base64url of ``s`` at the three alignments, without the edge characters that depend
    on the neighbouring bytes."""
    raw = s.encode()
    out = []
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode().rstrip("=")
        core = enc[4 if k else 0: -4]
        out += [core, core.replace("+", "-").replace("/", "_")]
    return out


def jstr(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def tstr(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ustr(s: str) -> str:
    """A systemd double-quoted word."""
    return s.replace("\\", "\\\\").replace('"', '\\"')


def b64(user: str, s: str) -> str:
    return base64.b64encode(f"{user}:{s}".encode()).decode()


def plant(root: Path, body: str, malformed: bool) -> list[str]:
    """Write secrets into every configuration file regtui reads under ``root``; returns them."""
    S = [secret(i, body) for i in range(41)]
    daemon = ('{\n  "registry-mirrors": [' + jstr(f"https://u:{S[0]}@mirror.example") + '],\n'
              '  "x-registry-password": ' + jstr(S[1]) + ',\n'
              '  "proxies": {"http-proxy": ' + jstr(f"http://u:{S[2]}@proxy.example:3128") + ',\n'
              '              "https-proxy": ' + jstr(f"http://u:{S[3]}@proxy.example:3128") + '},\n'
              '  "insecure-registries": [' + jstr(f"u:{S[4]}@insecure.example") + '],\n'
              '  "api_key": [' + jstr(S[5]) + '],\n'
              '  "log-opts": {"password": ' + jstr(S[6]) + '}' + (',\n  "password": ' + S[37] + ' !!' if malformed else '') +
              '\n}\n')
    config_json = json.dumps({
        "auths": {"registry.example": {"auth": b64("bob", S[7])},
                  "h2.example": {"username": "bob", "password": S[8]},
                  "h3.example": {"identitytoken": S[9]},
                  "h4.example": {"auth": [S[10]]},
                  "h5.example": {"password": {"x": S[11]}},
                  "h6.example": S[12]},
        "proxies": {"default": {"httpProxy": f"http://u:{S[13]}@p.example:3128"}},
    }, indent=2, ensure_ascii=False)
    containerd = (
        'version = 2\n'
        '[plugins."io.containerd.grpc.v1.cri".registry]\n'
        '  config_path = "/etc/containerd/certs.d"\n'
        '  [plugins."io.containerd.grpc.v1.cri".registry.headers]\n'
        f'    X-Custom = [{tstr(S[14])}]\n'
        f'    X-Wrong = {tstr(S[40])}\n'
        '  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
        f'    endpoint = [{tstr(f"https://u:{S[15]}@mirror.example")}]\n'
        '  [plugins."io.containerd.grpc.v1.cri".registry.configs."registry.example".auth]\n'
        '    username = "bob"\n'
        f'    password = {tstr(S[16])}\n'
        f'    auth = {tstr(b64("bob", S[17]))}\n'
        f'    identitytoken = {tstr(S[18])}\n'
        + (f'    password = {S[36]}\n' if malformed else '')
    )
    hosts = (
        'server = "https://registry-1.docker.io"\n'
        f'[host.{tstr(f"https://u:{S[19]}@mirror2.example")}]\n'
        '  capabilities = ["pull", "resolve"]\n'
        f'  [host.{tstr(f"https://u:{S[19]}@mirror2.example")}.header]\n'
        f'    Authorization = [{tstr("Basic " + S[20])}]\n'
        f'    X-Other = {tstr(S[21])}\n'
    )
    registries_conf = (
        'unqualified-search-registries = ["docker.io"]\n'
        '[[registry]]\nprefix = "docker.io"\n'
        f'location = {tstr(f"u:{S[22]}@registry-1.docker.io")}\n'
        f'[[registry.mirror]]\nlocation = {tstr(f"https://u:{S[23]}@mirror3.example")}\n'
    )
    auth_json = json.dumps({"auths": {"quay.io": {"auth": b64("bob", S[24])},
                                      "x.example": {"password": [S[38]]}}}, ensure_ascii=False)
    k3s = (
        'mirrors:\n  docker.io:\n    endpoint:\n'
        f'      - {jstr(f"https://u:{S[25]}@mirror4.example")}\n'
        'configs:\n  "registry.example":\n    auth:\n      username: bob\n'
        f'      password: {jstr(S[26])}\n'
        f'      auth: {jstr(b64("bob", S[27]))}\n'
        f'      identity_token: {jstr(S[28])}\n'
        + (f'      password: [{S[39]}\n' if malformed else '')
    )
    dropin = (
        '[Service]\n'
        f'Environment="HTTP_PROXY={ustr(f"http://u:{S[29]}@proxy.example:3128")}"\n'
        f'Environment="HTTPS_PROXY={ustr(f"http://u:{S[30]}@proxy.example:3128")}" "GITHUB_TOKEN={ustr(S[31])}"\n'
        f'Environment="AWS_SECRET_ACCESS_KEY={ustr(S[32])}"\n'
        'EnvironmentFile=/etc/default/docker-proxy\n'
    )
    envfile = f'HTTPS_PROXY="{ustr(f"http://u:{S[33]}@p.example:3128")}"\nREGISTRY_PASSWORD="{ustr(S[34])}"\n'
    cdropin = f'[Service]\nEnvironment="HTTPS_PROXY={ustr(f"u:{S[35]}@proxy.example:3128")}"\n'
    write_tree(root, {
        "/etc/docker/daemon.json": daemon,
        "/root/.docker/config.json": config_json,
        "/etc/containerd/config.toml": containerd,
        "/etc/containerd/certs.d/docker.io/hosts.toml": hosts,
        "/etc/containers/registries.conf": registries_conf,
        "/run/containers/0/auth.json": auth_json,
        "/etc/rancher/k3s/registries.yaml": k3s,
        "/etc/systemd/system/docker.service.d/http-proxy.conf": dropin,
        "/etc/default/docker-proxy": envfile,
        "/etc/systemd/system/containerd.service.d/http-proxy.conf": cdropin,
    })
    return [s for i, s in enumerate(S) if malformed or i not in (36, 37, 39)]


def leaks(output: str, secrets: list[str]) -> list[str]:
    """What of the planted secrets shows in ``output`` (either marker, a whole secret, its base64)."""
    found = [m for m in (HEAD, TAIL) if m in output]
    for s in secrets:
        found += [n for n in [s, *b64_needles(s)] if n in output]
    return found


def _strings(obj: Any) -> str:
    """Every string of a JSON document, decoded (escapes resolved), one per line."""
    out: list[str] = []
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            out += [str(k) for k in o]
            stack += list(o.values())
        elif isinstance(o, list):
            stack += o
        elif isinstance(o, str):
            out.append(o)
    return "\n".join(out)


def outputs(root: Path, tmp: Path, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str]]:
    """Every output regtui produces for ``root``: (what, text)."""
    got: list[tuple[str, str]] = []

    def run(*argv: str) -> str:
        main(list(argv))
        out, err = capsys.readouterr()
        got.append((" ".join(argv[:2]), out + err))
        return out

    base = ("--offline", "--root", str(root), "--runtime", "all", "--image", "alpine",
            "--image", "registry.example/team/app:1")
    for fmt in ("text", "json", "markdown", "html"):
        out = run("check", *base, "--format", fmt)
        if fmt == "json":
            got.append(("json strings", _strings(json.loads(out))))
    run("check", *base, "--format", "json", "--debug")
    target = tmp / "report.html"
    run("report", *base, "--format", "html", "--output", str(target))
    got.append(("report file", target.read_text()))
    # The workbench's export writes through the same writers; its copy helpers work on the dict.
    from regtui.engine import run_check  # noqa: PLC0415
    from regtui.options import CheckOptions  # noqa: PLC0415
    from regtui.tui import data as tui_data  # noqa: PLC0415

    report = run_check(CheckOptions(root=str(root), images=("alpine",), runtime="all", offline=True))
    d = report.to_dict()
    for f in d["findings"]:
        got.append(("tui finding", tui_data.finding_text(f)))
        got += [("tui reproducer", c.text) for c in tui_data.finding_reproducers(d, f)]
    fix = ("--offline", "--root", str(root), "--runtime", "all", "--state-dir", str(tmp / "state"))
    listing = run("fix", *fix, "--list")
    ids = [ln.split()[0] for ln in listing.splitlines() if ln and not ln.startswith(" ") and "@" in ln.split()[0]]
    for fix_id in ids:
        run("fix", *fix, fix_id)
    for fix_id in ids:
        run("fix", *fix, fix_id, "--apply", "--yes")
    run("undo", "--root", str(root), "--state-dir", str(tmp / "state"), "--list")
    for backup in sorted((tmp / "state").glob("backups/*")) if (tmp / "state").exists() else []:
        run("undo", "--root", str(root), "--state-dir", str(tmp / "state"), backup.name, "--force")
    return got


@settings(max_examples=12, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=BODY, malformed=st.booleans())
def test_planted_secrets_reach_no_output(body: str, malformed: bool, tmp_path_factory: pytest.TempPathFactory,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Random secrets in every config location appear in no output of check/report/fix/undo/export/--debug."""
    tmp = tmp_path_factory.mktemp("planted")
    root = tmp / "root"
    shutil.copytree(BUSY, root, symlinks=True)
    secrets = plant(root, body, malformed)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    bad = [(what, leaks(text, secrets), context(text, HEAD)[:3] + context(text, TAIL)[:3])
           for what, text in outputs(root, tmp, capsys)]
    bad = [b for b in bad if b[1]]
    assert not bad, bad[:5]


def context(text: str, needle: str) -> list[str]:
    """Lines of ``text`` holding ``needle`` (for a readable failure)."""
    return [ln for ln in text.splitlines() if needle in ln]


# -- one regression test per leak seen on a real run ---------------------------------------------

def _check_json(capsys: pytest.CaptureFixture[str], root: Path, runtime: str, *extra: str) -> str:
    main(["check", "--offline", "--root", str(root), "--runtime", runtime, "--format", "json", *extra])
    out, err = capsys.readouterr()
    return out + err


def test_containerd_registry_headers_are_masked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Values of containerd's ``registry.headers`` table appear in no report (JSON, text, HTML)."""
    write_tree(tmp_path, {"/etc/containerd/config.toml": (
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.headers]\n'
        '  X-Custom = ["hdr-value-7f3k2p9q1z"]\n  X-Other = "hdr-value-7f3k2p9q2z"\n')})
    for fmt in ("json", "text", "html"):
        out = _check_json(capsys, tmp_path, "containerd", "--image", "alpine") if fmt == "json" else ""
        if fmt != "json":
            main(["check", "--offline", "--root", str(tmp_path), "--runtime", "containerd", "--format", fmt])
            out = "".join(capsys.readouterr())
        assert "hdr-value-7f3k2p9q" not in out, fmt
    assert "X-Custom" in _check_json(capsys, tmp_path, "containerd")


def test_diff_context_masks_secret_environment_variables() -> None:
    """A context line ``Environment="GITHUB_TOKEN=..."`` of a fix diff is masked, whatever the value holds."""
    from regtui.fixes._text import unified_diff

    before = (b'[Service]\nEnvironment="GITHUB_TOKEN=ghp tok/en@9x8y7w6v"\n'
              b'Environment="HTTP_PROXY=http://proxy.example:3128"\n')
    after = before.replace(b"proxy.example", b"proxy2.example")
    diff = unified_diff("/etc/systemd/system/docker.service.d/http-proxy.conf", before, after)
    assert "proxy2.example" in diff and "GITHUB_TOKEN=" in diff
    assert "9x8y7w6v" not in diff and "tok/en" not in diff


def test_unquoted_toml_password_in_parse_error_excerpt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unquoted ``password = ...`` line that breaks the TOML is masked in the parse-error excerpt."""
    write_tree(tmp_path, {"/etc/containerd/config.toml": (
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]\n'
        '  username = "bob"\n  password = hunter2 unquoted 5q8w\n')})
    out = _check_json(capsys, tmp_path, "containerd")
    assert "config.parse-error" in out and "password = ***" in out
    assert "hunter2" not in out and "5q8w" not in out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_url_passwords_with_slash_and_space(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    """Passwords holding '/' or a space in mirror, endpoint and proxy URLs are masked whole."""
    write_tree(tmp_path, {
        "/etc/docker/daemon.json": json.dumps({
            "registry-mirrors": ["https://u:mir/pw 8k2j@mirror.example"],
            "proxies": {"http-proxy": "http://u:prx/pw 8k2j@proxy.example:3128",
                        "https-proxy": "http://u:prx2 pw/8k2j@proxy.example:3128"}}),
        "/etc/containerd/config.toml": (
            'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
            '  endpoint = ["https://u:end/pw 8k2j@mirror.example"]\n'),
    })
    main(["check", "--offline", "--root", str(tmp_path), "--runtime", "all", "--image", "alpine", "--format", fmt])
    out = "".join(capsys.readouterr())
    assert "mirror.example" in out
    assert not any(s in out for s in ("8k2j", "mir/", "prx", "end/pw"))


def test_secret_named_daemon_json_key_in_evidence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown daemon.json key named like a secret (``x-registry-password``) keeps its value out of the report."""
    write_tree(tmp_path, {"/etc/docker/daemon.json": json.dumps({"x-registry-password": "reg-pass-3v7n1m"})})
    out = _check_json(capsys, tmp_path, "docker")
    assert "x-registry-password" in out and "reg-pass-3v7n1m" not in out


def test_non_string_credentials_in_config_json_diff() -> None:
    """Non-string ``password``/``auth`` values of config.json (arrays, objects, numbers) are masked in diffs."""
    from regtui.fixes._text import unified_diff

    doc = {"auths": {"r.example": {"password": ["arr-secret-4h6j"], "auth": {"x": "obj-secret-4h6j"},
                                   "identitytoken": 987654321098765, "email": "a@example.com"}}}
    before = json.dumps(doc, indent=2).encode()
    after = before.replace(b"a@example.com", b"b@example.com")
    diff = unified_diff("/root/.docker/config.json", before, after)
    assert '+      "email": "b@example.com"' in diff
    assert "4h6j" not in diff and "987654321098765" not in diff


def test_deeply_nested_daemon_json_keeps_the_docker_runtime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """daemon.json nested 600 levels deep gives the Docker runtime and a finding, never an internal error."""
    nested = "1"
    for _ in range(600):
        nested = '{"a": ' + nested + "}"
    write_tree(tmp_path, {"/etc/docker/daemon.json": '{"debug": true, "x-deep": ' + nested + "}\n"})
    rc = main(["check", "--offline", "--root", str(tmp_path), "--runtime", "docker", "--format", "json"])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert rc == 1 and "internal error" not in err and not data["errors"]
    assert [r["name"] for r in data["runtimes"]] == ["docker"]
    assert "config.unknown-key" in {f["code"] for f in data["findings"]}


def test_redaction_of_deep_data_is_bounded() -> None:
    """redact.value walks any depth without recursion and summarises what lies below its depth cap."""
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = {"password" if _ == 0 else "a": deep}
    shown = redact.value(deep)
    assert "{...}" in json.dumps(shown)


@pytest.mark.parametrize("debug", [False, True])
def test_internal_error_text_is_redacted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], debug: bool) -> None:
    """An unexpected exception quoting a proxy URL reaches stderr masked, with and without --debug."""
    import regtui.engine as engine
    from regtui.cli import main

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("cannot reach http://admin:Hunter2-internal-9f@proxy.corp:3128 for password=Hunter2-internal-9f")

    monkeypatch.setattr(engine, "run_check", boom)
    argv = ["check", "--offline", "--root", str(tmp_path)] + (["--debug"] if debug else [])
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "internal error" in err
    assert "Hunter2-internal-9f" not in err


def test_go_error_quoting_a_helper_name_is_prose() -> None:
    """Go's `exec: "docker-credential-x": executable file not found` keeps its words; a bare value after a
    quoted secret name that ends the text is still masked."""
    go = 'error getting credentials - err: exec: "docker-credential-desktop": executable file not found in $PATH'
    assert redact.text(go) == go
    assert "hunter2-secret" not in redact.text('{"identitytoken": hunter2-secret}')
    assert "12345678" not in redact.text('{"password": 12345678}')


def test_environment_file_values_follow_the_one_policy(tmp_path: Path) -> None:
    """An EnvironmentFile variable with a secret name the policy knows (REGISTRY_AUTH, API_KEY) is listed masked."""
    from regtui.config.systemd import env_file
    from regtui.host import Host

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "k3s.env").write_text("REGISTRY_AUTH=dXNlcjpodW50ZXIyLXNlY3JldA==\nAPI_KEY=k-9f8e7d6c5b\n"
                                               "HTTPS_PROXY=http://proxy.corp:3128\n")
    _, _, source, _ = env_file(Host(root=tmp_path), "/etc/k3s.env", "k3s")
    assert source.values["REGISTRY_AUTH"] == redact.MASK and source.values["API_KEY"] == redact.MASK
    assert source.values["HTTPS_PROXY"] == "http://proxy.corp:3128"


def test_go_error_chain_after_may_require_authorization_is_not_masked() -> None:
    """containerd's "may require authorization: unauthorized: authentication required" is an error chain, not an
    Authorization header: it is kept whole, while a real header value is still masked."""
    from regtui import redact

    chain = ('failed to resolve reference "r.example/app:1": pull access denied, repository does not exist or may '
             'require authorization: unauthorized: authentication required')
    assert redact.text(chain) == chain
    assert redact.text("Authorization: dXNlcjpwYXNz") == "Authorization: ***"
    assert redact.text("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic ***"


def test_auth_header_values_ending_in_a_colon_or_after_a_scheme_stay_masked() -> None:
    """Only a prose word ends a Go error chain's link: a credential ending in ':' is masked, and so is a Negotiate
    or NTLM token after its scheme word."""
    assert redact.text("Authorization: s3cr3t-T0ken:") == "Authorization: ***"
    assert redact.text("Proxy-Authorization: Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnag") == "Proxy-Authorization: Negotiate ***"
    assert redact.text("Proxy-Authorization: NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAA") == "Proxy-Authorization: NTLM ***"


def test_a_value_chaining_many_assignments_is_redacted_without_recursion() -> None:
    """A hostile value with thousands of NAME= before a URL with credentials: masked, no RecursionError."""
    hostile = "a=" * 5000 + "http://user:hunter2@proxy.example:3128"
    masked = redact.value({"k": hostile})["k"]
    assert "hunter2" not in masked and masked.endswith("http://***@proxy.example:3128")
    assert redact.url(hostile).endswith("http://***@proxy.example:3128")
