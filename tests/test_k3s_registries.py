"""k3s/RKE2: registries.yaml decoded as wharfie's yaml.v2 does, config.yaml and service flags,
the embedded containerd's proxy environment, and secrets kept out of every output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from regtui.host import Host
from regtui.refs import parse
from regtui.runtimes import k3s
from regtui.runtimes.k3s.registries import read_registries
from rootfs import line_of, write_tree

REG = "/etc/rancher/k3s/registries.yaml"
UNIT = "/etc/systemd/system/k3s.service"
UNIT_ENV = "/etc/systemd/system/k3s.service.env"
# What the k3s install script writes (trimmed): note the %N specifiers.
K3S_UNIT = """\
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/etc/systemd/system/k3s.service.env
KillMode=process
Delegate=yes
ExecStartPre=/bin/sh -xc '! /usr/bin/systemctl is-enabled --quiet nm-cloud-setup.service'
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStart=/usr/local/bin/k3s \\
    server \\

"""
K3S_AGENT_UNIT = K3S_UNIT.replace("k3s.service.env", "k3s-agent.service.env").replace("    server \\", "    agent \\")


def _host(tmp_path: Path, files: dict[str, str | bytes]) -> Host:
    return Host.from_args(write_tree(tmp_path, files), {})


def _codes(findings: list) -> list[str]:
    return [f.code for f in findings]


def test_docs_sample_decodes(tmp_path: Path) -> None:
    """The k3s docs sample (comments after empty tls paths) decodes without findings."""
    text = """\
mirrors:
  docker.io:
    endpoint:
      - "https://registry.example.com:5000"
configs:
  "registry.example.com:5000":
    auth:
      username: xxxxxx # this is the registry username
      password: xxxxxx # this is the registry password
    tls:
      cert_file: # path to the cert file used in the registry
      key_file:  # path to the key file used in the registry
      ca_file:   # path to the ca file used in the registry
"""
    reg = read_registries(_host(tmp_path, {REG: text}), REG)
    assert reg.status == "ok" and reg.findings == []
    assert [e.value for e in reg.mirrors["docker.io"].endpoints] == ["https://registry.example.com:5000"]
    cfg = reg.configs["registry.example.com:5000"]
    assert cfg.auth is not None and cfg.auth.username == "xxxxxx" and cfg.auth.line == line_of(text, "auth:")
    assert cfg.tls is not None and (cfg.tls.ca_file, cfg.tls.cert_file, cfg.tls.insecure_skip_verify) == ("", "", False)


@pytest.mark.parametrize("typo,meant", [
    ("endpoints", "endpoint"), ("rewrites", "rewrite"),
])
def test_mirror_key_typos_are_ignored(tmp_path: Path, typo: str, meant: str) -> None:
    """yaml.v2 drops unknown keys silently: a typo is config.ignored-key at its line, with the key meant."""
    text = f"mirrors:\n  docker.io:\n    {typo}:\n      - https://mirror.corp.example\n"
    reg = read_registries(_host(tmp_path, {REG: text}), REG)
    (f,) = reg.findings
    assert f.code == "config.ignored-key" and f.severity == "warning"
    assert f.evidence["line"] == 3 and f.fix is not None and f.fix.params["new_key"] == meant
    assert reg.mirrors["docker.io"].endpoints == []


def test_auth_and_tls_typos(tmp_path: Path) -> None:
    """identitytoken (the TOML spelling) and insecure-skip-verify are ignored; the YAML keys are identity_token and insecure_skip_verify."""
    text = """\
configs:
  ghcr.io:
    auth:
      identitytoken: ghp_abcdefghijklmnop
    tls:
      insecure-skip-verify: true
"""
    reg = read_registries(_host(tmp_path, {REG: text}), REG)
    by_key = {f.evidence["key"]: f for f in reg.findings}
    token = by_key["configs.ghcr.io.auth.identitytoken"]
    assert token.fix.params["new_key"] == "identity_token" and token.evidence["value"] == "***"
    assert by_key["configs.ghcr.io.tls.insecure-skip-verify"].fix.params["new_key"] == "insecure_skip_verify"
    assert "ghp_abcdefghijklmnop" not in json.dumps([f.to_dict() for f in reg.findings])


def test_endpoint_string_is_fatal(tmp_path: Path) -> None:
    """`endpoint: "https://..."` (a string, not a list) stops k3s at start-up: config.invalid-value, error, at its line."""
    text = 'mirrors:\n  docker.io:\n    endpoint: "https://mirror.corp.example"\n'
    host = _host(tmp_path, {REG: text, UNIT: K3S_UNIT})
    view = k3s.load(host)
    (f,) = [f for f in view.findings if f.code == "config.invalid-value"]
    assert f.severity == "error" and f.evidence["line"] == 3
    assert "cannot unmarshal !!str `https://mirror.corp.example` into []string" in f.title
    assert f.fix.restart == "restart k3s" and f.fix.params["want"] == "[]string"
    route, _ = view.plan(parse("alpine"))
    assert route.endpoints == () and "does not start" in route.notes[0]


def test_quoted_true_is_fatal_but_yes_is_true(tmp_path: Path) -> None:
    """insecure_skip_verify: "true" is a string yaml.v2 cannot put in a bool; yes is a YAML 1.1 boolean it accepts."""
    bad = 'configs:\n  harbor.corp.example:\n    tls:\n      insecure_skip_verify: "true"\n'
    reg = read_registries(_host(tmp_path / "a", {REG: bad}), REG)
    assert reg.status == "invalid" and reg.findings[0].evidence["line"] == 4
    assert "into bool" in reg.findings[0].title
    good = 'configs:\n  harbor.corp.example:\n    tls:\n      insecure_skip_verify: yes\n'
    reg = read_registries(_host(tmp_path / "b", {REG: good}), REG)
    assert reg.findings == [] and reg.configs["harbor.corp.example"].tls.insecure_skip_verify is True


def test_numeric_password_keeps_its_text(tmp_path: Path) -> None:
    """A password YAML reads as a number reaches containerd as its source text, as yaml.v2 stores it."""
    text = "configs:\n  registry-1.docker.io:\n    auth:\n      username: ci\n      password: 0123\n"
    host = _host(tmp_path, {REG: text})
    view = k3s.load(host)
    cred = view.credentials("registry-1.docker.io")
    assert cred is not None and cred.username == "ci" and cred.secret == "0123"
    assert cred.source == f"{REG}:3 (configs.\"registry-1.docker.io\".auth)"


def test_hub_credentials_under_docker_io(tmp_path: Path) -> None:
    """Pattern 16 (k3s flavour): configs."docker.io".auth is never sent to registry-1.docker.io."""
    text = """\
mirrors:
  docker.io:
    endpoint:
      - https://mirror.corp.example
configs:
  docker.io:
    auth:
      username: ops
      password: dckr_pat_s3cret
"""
    view = k3s.load(_host(tmp_path, {REG: text, UNIT: K3S_UNIT}))
    (f,) = [f for f in view.findings if f.code == "auth.wrong-key" and f.severity == "warning"]
    assert f.evidence["line"] == line_of(text, "auth:")
    assert f.fix.params == {"key": "configs.docker.io.auth", "new_key": "configs.registry-1.docker.io.auth",
                            "line": line_of(text, "auth:")}
    assert f.fix.restart == "restart k3s"
    route, _ = view.plan(parse("nginx:1.27"))
    upstream = route.endpoints[-1]
    assert upstream.url == "https://registry-1.docker.io/v2" and upstream.credentials is None
    assert view.credentials("registry-1.docker.io") is None


def test_hub_credentials_keyed_correctly(tmp_path: Path) -> None:
    """With configs."registry-1.docker.io" the credentials apply to the upstream endpoint and carry their line."""
    text = "configs:\n  registry-1.docker.io:\n    auth:\n      username: ops\n      password: dckr_pat_s3cret\n"
    view = k3s.load(_host(tmp_path, {REG: text}))
    assert "auth.wrong-key" not in _codes(view.findings)
    route, _ = view.plan(parse("nginx"))
    assert route.endpoints[-1].credentials == f"{REG}:3 (configs.\"registry-1.docker.io\".auth)"


def test_mirror_gets_no_registry_credentials(tmp_path: Path) -> None:
    """Credentials for a registry are not sent to its mirrors: info, pointing at the endpoint line."""
    text = "mirrors:\n  ghcr.io:\n    endpoint:\n      - https://ghcr-cache.corp.example\nconfigs:\n  ghcr.io:\n    auth:\n      username: bot\n      password: ghp_x\n"
    view = k3s.load(_host(tmp_path, {REG: text}))
    (f,) = [f for f in view.findings if f.code == "auth.wrong-key"]
    assert f.severity == "info" and f.evidence["line"] == 4 and f.fix.params["new_key"] == "configs.ghcr-cache.corp.example.auth"


def test_wildcard_credentials(tmp_path: Path) -> None:
    """configs."*".auth is not a credential containerd looks up."""
    text = 'configs:\n  "*":\n    auth:\n      username: u\n      password: p\n'
    reg_view = k3s.load(_host(tmp_path, {REG: text}))
    (f,) = [f for f in reg_view.findings if f.code == "auth.wrong-key"]
    assert f.evidence["key"] == "configs.*.auth" and f.evidence["line"] == 3


def test_malformed_auth_blob(tmp_path: Path) -> None:
    """An auth value that is not base64 user:password is auth.malformed, without quoting it."""
    text = "configs:\n  quay.io:\n    auth:\n      auth: not-base64!!\n"
    view = k3s.load(_host(tmp_path, {REG: text}))
    (f,) = [f for f in view.findings if f.code == "auth.malformed"]
    assert f.evidence["value"] == "***" and "not-base64" not in json.dumps(f.to_dict())


def test_unquoted_star_key_is_a_parse_error(tmp_path: Path) -> None:
    """`*:` starts a YAML alias: the file does not parse, and the error says to quote it."""
    text = "mirrors:\n  *:\n    endpoint:\n      - https://mirror.corp.example\n"
    view = k3s.load(_host(tmp_path, {REG: text}))
    (f,) = [f for f in view.findings if f.code == "config.parse-error"]
    assert (f.evidence["line"], f.evidence["column"]) == (2, 3) and "quoted" in f.title


def test_garbage_registries_yaml(tmp_path: Path) -> None:
    """Random bytes, tabs and wrong shapes are findings with a line, never a traceback."""
    rnd = random.Random(3937)
    samples: list[str | bytes] = [
        bytes(rnd.randrange(256) for _ in range(300)),
        "mirrors:\n\tdocker.io:\n\t\tendpoint: [x]\n",
        "- just\n- a\n- list\n",
        "mirrors: [docker.io]\n",
        "configs:\n  quay.io: yes\n",
        "mirrors:\n  docker.io:\n    endpoint:\n      - [nested]\n",
        "",
    ]
    for i, sample in enumerate(samples):
        view = k3s.load(_host(tmp_path / str(i), {REG: sample}))
        bad = [f for f in view.findings if f.code in ("config.parse-error", "config.invalid-value")]
        if sample == "":
            assert bad == []
            continue
        assert bad, sample
        if isinstance(sample, str):
            assert all(f.evidence.get("line") for f in bad), sample
        view.plan(parse("alpine"))


def test_duplicate_sections_merge(tmp_path: Path) -> None:
    """Two `mirrors:` blocks merge (yaml.v2 decodes both into the same map); the repeat is reported as info."""
    text = "mirrors:\n  docker.io:\n    endpoint: [https://a.corp.example]\nconfigs: {}\nmirrors:\n  quay.io:\n    endpoint: [https://b.corp.example]\n"
    reg = read_registries(_host(tmp_path, {REG: text}), REG)
    assert set(reg.mirrors) == {"docker.io", "quay.io"}
    (f,) = reg.findings
    assert f.code == "config.ignored-key" and f.severity == "info" and (f.evidence["first_line"], f.evidence["line"]) == (1, 5)


def test_duplicate_registry_last_wins(tmp_path: Path) -> None:
    """The same registry twice: only the later block applies, and the earlier one is called out."""
    text = "mirrors:\n  docker.io:\n    endpoint: [https://a.corp.example]\n  docker.io:\n    endpoint: [https://b.corp.example]\n"
    reg = read_registries(_host(tmp_path, {REG: text}), REG)
    assert [e.value for e in reg.mirrors["docker.io"].endpoints] == ["https://b.corp.example"]
    (f,) = reg.findings
    assert f.severity == "warning" and f.evidence["line"] == 4


def test_tls_files_must_exist(tmp_path: Path) -> None:
    """A ca_file that is not there fails every pull from that registry: config.invalid-value at the ca_file line."""
    text = "configs:\n  harbor.corp.example:\n    tls:\n      ca_file: /etc/rancher/k3s/harbor-ca.crt\n      cert_file: /etc/rancher/k3s/client.crt\n"
    view = k3s.load(_host(tmp_path, {REG: text}))
    titles = {f.evidence["key"]: f for f in view.findings if f.code == "config.invalid-value"}
    assert titles["configs.harbor.corp.example.tls.ca_file"].evidence["line"] == 4
    assert titles["configs.harbor.corp.example.tls.key_file"].evidence["line"] == 5  # cert without key


def test_config_yaml_and_flags_move_files(tmp_path: Path) -> None:
    """data-dir and private-registry come from config.yaml(.d); ExecStart flags beat the file."""
    unit = K3S_UNIT.replace("    server \\", "    server --private-registry=/opt/k3s/registries.yaml \\")
    host = _host(tmp_path, {
        UNIT: unit,
        "/etc/rancher/k3s/config.yaml": "data-dir: /opt/k3s/data\nprivate-registry: /etc/rancher/k3s/other.yaml\n",
        "/etc/rancher/k3s/config.yaml.d/50-registry.yaml": "disable-default-registry-endpoint: true\n",
        "/opt/k3s/registries.yaml": "mirrors:\n  docker.io:\n    endpoint: [https://mirror.corp.example]\n",
    })
    view = k3s.load(host)
    s = view.summary
    assert s["data_dir"] == "/opt/k3s/data" and s["data_dir_source"] == "/etc/rancher/k3s/config.yaml:1"
    assert s["registries_yaml"] == "/opt/k3s/registries.yaml" and s["registries_yaml_source"].startswith(UNIT)
    assert s["disable_default_registry_endpoint"] is True
    assert s["disable_default_registry_endpoint_source"] == "/etc/rancher/k3s/config.yaml.d/50-registry.yaml:1"
    assert s["generated_config"] == "/opt/k3s/data/agent/etc/containerd/config.toml"
    route, _ = view.plan(parse("alpine"))
    assert [e.url for e in route.endpoints] == ["https://mirror.corp.example/v2"]


def test_config_yaml_garbage(tmp_path: Path) -> None:
    """A broken config.yaml or a non-boolean flag value is a finding with its line."""
    host = _host(tmp_path, {"/etc/rancher/k3s/config.yaml": "disable-default-registry-endpoint: maybe\ndata-dir: [a]\n"})
    view = k3s.load(host)
    bad = sorted((f.evidence["key"], f.evidence["line"]) for f in view.findings if f.code == "config.invalid-value")
    assert bad == [("data-dir", 2), ("disable-default-registry-endpoint", 1)]
    host = _host(tmp_path / "b", {"/etc/rancher/k3s/config.yaml": "token: abc\n  data-dir: x\n"})
    (f,) = [f for f in k3s.load(host).findings if f.code == "config.parse-error"]
    assert f.evidence["line"] == 2


def test_detect_k3s_and_rke2(tmp_path: Path) -> None:
    """Detection names the files (registries.yaml rather than its directory), binaries and units found."""
    assert k3s.detect(_host(tmp_path / "none", {"/etc/hostname": "node\n"})) == []
    found = k3s.detect(_host(tmp_path / "k3s", {REG: "", UNIT: K3S_UNIT}))
    assert REG in found and "/etc/rancher/k3s" not in found and UNIT in found
    found = k3s.detect(_host(tmp_path / "rke2", {"/usr/local/lib/systemd/system/rke2-agent.service": "[Service]\n",
                                                 "/var/lib/rancher/rke2/agent/": ""}))
    assert "/var/lib/rancher/rke2" in found and "/usr/local/lib/systemd/system/rke2-agent.service" in found


def test_rke2_paths_and_version(tmp_path: Path) -> None:
    """RKE2 reads /etc/rancher/rke2/registries.yaml, restarts as rke2-agent, and its version shows in the data dir."""
    host = _host(tmp_path, {
        "/usr/local/lib/systemd/system/rke2-agent.service":
            "[Service]\nEnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/usr/local/lib/systemd/system/%N.env\n"
            "ExecStart=/usr/local/bin/rke2 agent\n",
        "/etc/default/rke2-agent": "HTTPS_PROXY=http://proxy.corp:3128\n",
        "/etc/rancher/rke2/registries.yaml": "configs:\n  docker.io:\n    auth: {username: a, password: b}\n",
        "/var/lib/rancher/rke2/data/v1.32.2-rke2r1-4d2d7a3c1f6b/bin/containerd": "",
    })
    view = k3s.load(host)
    s = view.summary
    assert (s["flavour"], s["role"], s["unit"]) == ("rke2", "agent", "rke2-agent.service")
    assert s["version"] == "v1.32.2-rke2r1"
    (f,) = [f for f in view.findings if f.code == "auth.wrong-key"]
    assert f.fix.restart == "restart rke2-agent"
    assert view.proxy_env.https_proxy == "http://proxy.corp:3128"
    assert view.proxy_env.sources["HTTPS_PROXY"] == "/etc/default/rke2-agent:1"


def test_environment_file_specifiers_expanded_once(tmp_path: Path) -> None:
    """EnvironmentFile=-/etc/default/k3s-%%N names the file /etc/default/k3s-%N, which k3s's containerd gets its proxy from."""
    host = _host(tmp_path, {
        UNIT: "[Service]\nEnvironmentFile=-/etc/default/k3s-%%N\nExecStart=/usr/local/bin/k3s server\n",
        "/etc/default/k3s-%N": "HTTPS_PROXY=http://proxy.corp:3128\n",
        "/etc/default/k3s-k3s": "HTTPS_PROXY=http://wrong.corp:3128\n",
    })
    view = k3s.load(host)
    assert view.proxy_env.https_proxy == "http://proxy.corp:3128"
    assert view.proxy_env.sources["HTTPS_PROXY"] == "/etc/default/k3s-%N:1"


def test_containerd_proxy_variables_win(tmp_path: Path) -> None:
    """CONTAINERD_HTTPS_PROXY replaces HTTPS_PROXY for the embedded containerd; servers add cluster ranges to NO_PROXY."""
    env = ("HTTPS_PROXY=http://proxy.corp:3128\nHTTP_PROXY=http://proxy.corp:3128\nNO_PROXY=localhost,127.0.0.1,.corp\n"
           "CONTAINERD_HTTPS_PROXY=http://image-proxy.corp:3128\n")
    view = k3s.load(_host(tmp_path, {UNIT: K3S_UNIT, UNIT_ENV: env}))
    p = view.proxy_env
    assert p.https_proxy == "http://image-proxy.corp:3128"
    assert p.sources["HTTPS_PROXY"] == f"{UNIT_ENV}:4 (CONTAINERD_HTTPS_PROXY)"
    assert p.no_proxy == "localhost,127.0.0.1,.corp,.svc,.cluster.local,10.42.0.0/16,10.43.0.0/16"
    agent = k3s.load(_host(tmp_path / "agent", {"/etc/systemd/system/k3s-agent.service": K3S_AGENT_UNIT,
                                                "/etc/systemd/system/k3s-agent.service.env": env}))
    assert agent.proxy_env.no_proxy == "localhost,127.0.0.1,.corp"


def test_containerd_no_proxy_replaces_server_additions(tmp_path: Path) -> None:
    """CONTAINERD_NO_PROXY replaces the whole list, including what the server added."""
    env = "HTTPS_PROXY=http://proxy.corp:3128\nCONTAINERD_NO_PROXY=.corp.example\n"
    view = k3s.load(_host(tmp_path, {UNIT: K3S_UNIT, UNIT_ENV: env}))
    assert view.proxy_env.no_proxy == ".corp.example"


def test_lowercase_containerd_variable_loses(tmp_path: Path) -> None:
    """CONTAINERD_https_proxy becomes https_proxy, which Go ignores while HTTPS_PROXY is set: proxy.case-conflict."""
    env = "HTTPS_PROXY=http://proxy.corp:3128\nCONTAINERD_https_proxy=http://image-proxy.corp:3128\n"
    view = k3s.load(_host(tmp_path, {UNIT: K3S_UNIT, "/etc/default/k3s": env}))
    assert view.proxy_env.https_proxy == "http://proxy.corp:3128"
    (f,) = [f for f in view.findings if f.code == "proxy.case-conflict"]
    assert (f.evidence["file"], f.evidence["line"]) == ("/etc/default/k3s", 2)
    assert f.fix.params["new_key"] == "CONTAINERD_HTTPS_PROXY"


def test_env_file_garbage(tmp_path: Path) -> None:
    """Unparsable lines in k3s.service.env are one parse error naming each bad line."""
    view = k3s.load(_host(tmp_path, {UNIT: K3S_UNIT, UNIT_ENV: 'HTTPS_PROXY="http://proxy.corp:3128\nnot an assignment\n'}))
    (f,) = [f for f in view.findings if f.code == "config.parse-error"]
    assert f.evidence["line"] == 1 and f.evidence["count"] == 2
    assert [b["line"] for b in f.evidence["bad_lines"]] == [1, 2]


def test_secrets_never_leak(tmp_path: Path) -> None:
    """Passwords, auth blobs, identity tokens and proxy credentials appear in no finding, source or route."""
    text = """\
mirrors:
  docker.io:
    endpoint:
      - https://robot:EndpointPass1@mirror.corp.example
configs:
  docker.io:
    auth:
      username: ops
      password: SuperSecretPw1
  mirror.corp.example:
    auth:
      auth: cm9ib3Q6QXV0aEJsb2JTZWNyZXQ=
  ghcr.io:
    auth:
      identity_token: IdentityTok3n
    tls:
      insecure_skip_verify: "nope"
  quay.io:
    auth:
      passwort: TypoSecret9
"""
    env = "HTTPS_PROXY=http://svc:ProxyPw77@proxy.corp:3128\n"
    view = k3s.load(_host(tmp_path, {REG: text, UNIT: K3S_UNIT, UNIT_ENV: env}))
    blobs = [json.dumps([f.to_dict() for f in view.findings], default=str),
             json.dumps([s.to_dict() for s in view.sources], default=str), json.dumps(view.summary, default=str)]
    for ref in ("alpine", "ghcr.io/org/app:1", "quay.io/x/y"):
        route, found = view.plan(parse(ref))
        blobs.append(json.dumps(route.to_dict(), default=str))
        blobs.append(json.dumps([f.to_dict() for f in found], default=str))
    text_out = "\n".join(blobs)
    for secret in ("SuperSecretPw1", "cm9ib3Q6QXV0aEJsb2JTZWNyZXQ=", "AuthBlobSecret", "IdentityTok3n", "ProxyPw77",
                   "EndpointPass1", "TypoSecret9"):
        assert secret not in text_out, secret
    assert "auth.wrong-key" in _codes(view.findings)
