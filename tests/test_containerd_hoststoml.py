"""hosts.toml and certs.d directories resolved the way containerd's ConfigureHosts does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regtui.config.hostsdir import (
    dir_namespace,
    host_directory,
    host_paths,
    misnamed_dirs,
    read_hosts_dir,
    resolve_hosts,
)
from regtui.config.hoststoml import K3S_HEADER, hosts_toml_text, parse_go_duration
from regtui.host import Host
from rootfs import line_of, write_tree

CERTS = "/etc/containerd/certs.d"
PEM_CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

# The docs' docker.io example, plus an internal pull-only cache with its own CA.
HUB_HOSTS = """server = "https://registry-1.docker.io"

[host."https://mirror.gcr.io"]
  capabilities = ["pull", "resolve"]

[host."https://cache.corp.example:5000"]
  capabilities = ["pull"]
  ca = "cache-ca.crt"
"""


def _host(tmp_path: Path, files: dict[str, str | bytes]) -> Host:
    """A fake root with these files."""
    return Host(root=write_tree(tmp_path, files))


def _resolve(host: Host, namespace: str, roots: list[str] | None = None, **kw):
    """resolve_hosts over CERTS (or the given roots) for the containerd runtime."""
    return resolve_hosts(host, roots or [CERTS], namespace, "containerd", **kw)


def test_host_directory_names_follow_containerd():
    """``host:port`` also has a ``host_port_`` form, tried first; ``_default`` comes last."""
    assert host_directory("myreg:5000") == "myreg_5000_"
    assert host_directory("myreg") == "myreg"
    assert host_paths(CERTS, "myreg:5000") == [f"{CERTS}/myreg_5000_", f"{CERTS}/myreg:5000", f"{CERTS}/_default"]
    assert host_paths(CERTS, "docker.io") == [f"{CERTS}/docker.io", f"{CERTS}/_default"]
    assert dir_namespace("myreg_5000_") == "myreg:5000"


def test_hosts_are_tried_in_file_order_then_server(tmp_path):
    """Each [host] table in file order, then the server entry last, with its line as provenance."""
    host = _host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS,
                            f"{CERTS}/docker.io/cache-ca.crt": PEM_CA})
    res = _resolve(host, "docker.io")
    assert res.mode == "hosts.toml"
    assert [e.url for e in res.entries] == [
        "https://mirror.gcr.io/v2", "https://cache.corp.example:5000/v2", "https://registry-1.docker.io/v2"]
    path = f"{CERTS}/docker.io/hosts.toml"
    assert res.entries[0].source == f"{path}:{line_of(HUB_HOSTS, 'mirror.gcr.io')}"
    assert res.entries[2].source == f"{path}:1"
    assert res.entries[2].is_default_upstream and res.entries[2].capabilities == ("pull", "resolve", "push")
    assert res.entries[1].capabilities == ("pull",)
    assert res.entries[1].ca_files == (f"{CERTS}/docker.io/cache-ca.crt",)
    assert res.findings == []


def test_mirrors_get_ns_query_but_hub_upstream_does_not(tmp_path):
    """containerd's isProxy: mirrors carry ?ns=docker.io; registry-1.docker.io is docker.io itself."""
    host = _host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": HUB_HOSTS,
                            f"{CERTS}/docker.io/cache-ca.crt": PEM_CA})
    mirror, cache, upstream = _resolve(host, "docker.io").entries
    assert (mirror.is_mirror, mirror.query) == (True, "ns=docker.io")
    assert (upstream.is_mirror, upstream.query) == (False, "")


def test_server_replaces_the_upstream(tmp_path):
    """With server set to a mirror, the registry itself is no longer in the list."""
    text = 'server = "https://harbor.corp.example"\ncapabilities = ["pull", "resolve"]\n'
    host = _host(tmp_path, {f"{CERTS}/ghcr.io/hosts.toml": text})
    res = _resolve(host, "ghcr.io")
    assert [e.host for e in res.entries] == ["harbor.corp.example"]
    assert res.entries[0].is_default_upstream and res.entries[0].query == "ns=ghcr.io"
    assert res.entries[0].capabilities == ("pull", "resolve")


def test_no_server_means_default_upstream_with_push(tmp_path):
    """Without server, the root entry is https://registry-1.docker.io/v2 (docker.io) with all capabilities."""
    text = '[host."https://mirror.gcr.io"]\n  capabilities = ["pull", "resolve"]\n'
    host = _host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text})
    res = _resolve(host, "docker.io")
    assert [e.url for e in res.entries] == ["https://mirror.gcr.io/v2", "https://registry-1.docker.io/v2"]
    assert res.entries[-1].source.startswith("default (no server in")
    assert res.entries[-1].capabilities == ("pull", "resolve", "push")


def test_default_dir_applies_when_no_specific_dir(tmp_path):
    """_default serves every registry without its own dir; a specific dir wins over it."""
    host = _host(tmp_path, {
        f"{CERTS}/_default/hosts.toml": '[host."https://pull-through.corp.example"]\n  capabilities = ["pull", "resolve"]\n',
        f"{CERTS}/quay.io/hosts.toml": 'server = "https://quay.io"\n',
    })
    res = _resolve(host, "registry.k8s.io")
    assert res.dir == f"{CERTS}/_default" and not res.specific
    assert [e.url for e in res.entries] == ["https://pull-through.corp.example/v2", "https://registry.k8s.io/v2"]
    assert res.entries[0].query == "ns=registry.k8s.io"
    assert _resolve(host, "quay.io").dir == f"{CERTS}/quay.io"


def test_host_port_dir_wins_over_colon_dir(tmp_path):
    """For myreg:5000, certs.d/myreg_5000_ is looked at before certs.d/myreg:5000."""
    host = _host(tmp_path, {
        f"{CERTS}/myreg_5000_/hosts.toml": 'server = "https://myreg:5000"\nskip_verify = true\n',
        f"{CERTS}/myreg:5000/hosts.toml": 'server = "https://myreg:5000"\n',
    })
    res = _resolve(host, "myreg:5000")
    assert res.dir == f"{CERTS}/myreg_5000_"
    assert res.entries[0].skip_verify is True


def test_first_root_default_beats_second_root_specific(tmp_path):
    """Multi-directory config_path: root1/_default wins over root2/<registry>."""
    host = _host(tmp_path, {
        f"{CERTS}/_default/hosts.toml": 'server = "https://cache.corp.example"\n',
        "/etc/docker/certs.d/docker.io/hosts.toml": '[host."https://mirror.gcr.io"]\n',
    })
    res = _resolve(host, "docker.io", [CERTS, "/etc/docker/certs.d"])
    assert res.dir == f"{CERTS}/_default"
    assert [e.host for e in res.entries] == ["cache.corp.example"]
    assert res.candidates == [f"{CERTS}/docker.io", f"{CERTS}/_default"]


def test_second_root_used_when_first_has_nothing(tmp_path):
    """Roots are tried in order; an empty first root hands over to the second."""
    host = _host(tmp_path, {"/etc/docker/certs.d/docker.io/hosts.toml": '[host."https://mirror.gcr.io"]\n'})
    res = _resolve(host, "docker.io", [CERTS, "/etc/docker/certs.d"])
    assert res.dir == "/etc/docker/certs.d/docker.io"


@pytest.mark.parametrize("url, override, expected", [
    ("https://harbor.corp.example/v2/dockerhub-proxy", True, "https://harbor.corp.example/v2/dockerhub-proxy"),
    ("https://nexus.corp.example/repository/hub", False, "https://nexus.corp.example/repository/hub/v2"),
    ("https://nexus.corp.example/repository/hub/", False, "https://nexus.corp.example/repository/hub/v2"),
    ("https://registry.corp.example/v2", False, "https://registry.corp.example/v2"),
    ("mirror.corp.example:8443", False, "https://mirror.corp.example:8443/v2"),
])
def test_path_handling_and_override_path(tmp_path, url, override, expected):
    """/v2 is appended unless the path ends in /v2 or override_path is true; no scheme means https."""
    text = f'[host."{url}"]\n  capabilities = ["pull", "resolve"]\n  override_path = {str(override).lower()}\n'
    host = _host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text})
    entry = _resolve(host, "docker.io").entries[0]
    assert entry.url == expected
    assert entry.override_path is override


def test_cert_file_mode_without_hosts_toml(tmp_path):
    """No hosts.toml: *.crt are CAs, *.cert client certs with an optional same-name *.key."""
    d = f"{CERTS}/registry.corp.example"
    host = _host(tmp_path, {f"{d}/ca.crt": PEM_CA, f"{d}/client.cert": PEM_CA, f"{d}/client.key": PEM_KEY,
                            f"{d}/combined.cert": PEM_CA + PEM_KEY})
    res = _resolve(host, "registry.corp.example")
    assert res.mode == "cert-files"
    (entry,) = res.entries
    assert entry.url == "https://registry.corp.example/v2"
    assert entry.ca_files == (f"{d}/ca.crt",)
    assert entry.client_pairs == ((f"{d}/client.cert", f"{d}/client.key"), (f"{d}/combined.cert", ""))
    assert entry.source == f"default (cert files in {d})"
    assert res.findings == []


def test_zero_byte_hosts_toml_is_cert_file_mode(tmp_path):
    """An empty hosts.toml is the same as none: the *.crt files are used."""
    d = f"{CERTS}/registry.corp.example"
    host = _host(tmp_path, {f"{d}/hosts.toml": "", f"{d}/ca.crt": PEM_CA})
    res = _resolve(host, "registry.corp.example")
    assert res.mode == "cert-files" and res.entries[0].ca_files == (f"{d}/ca.crt",)


def test_crt_next_to_hosts_toml_is_not_loaded(tmp_path):
    """With a hosts.toml, a ca.crt it does not name is ignored: config.ignored-key says so."""
    d = f"{CERTS}/registry.corp.example"
    text = '# registry CA\n[host."https://registry.corp.example"]\n  capabilities = ["pull", "resolve", "push"]\n'
    host = _host(tmp_path, {f"{d}/hosts.toml": text, f"{d}/ca.crt": PEM_CA})
    res = _resolve(host, "registry.corp.example")
    assert res.mode == "hosts.toml"
    assert all(e.ca_files == () for e in res.entries)
    (f,) = [f for f in res.findings if f.code == "config.ignored-key"]
    assert f.evidence["value"] == [f"{d}/ca.crt"]
    assert f.fix.params["key"] == "ca"


def test_garbage_hosts_toml_falls_back_to_cert_files(tmp_path):
    """Pattern 17: a hosts.toml that does not parse gives a parse error, and the plan is cert-file mode."""
    d = f"{CERTS}/docker.io"
    host = _host(tmp_path, {f"{d}/hosts.toml": b'server = "https://registry-1.docker.io"\n[host."https://m\x00\xff\n',
                            f"{d}/ca.crt": PEM_CA})
    res = _resolve(host, "docker.io")
    assert res.mode == "cert-files" and res.fell_back
    (f,) = [f for f in res.findings if f.code == "config.parse-error"]
    assert f.severity == "error" and f.evidence["file"] == f"{d}/hosts.toml"
    assert (f.evidence["line"], f.evidence["column"]) == (2, 18)
    assert "falls back to cert-file mode" in f.detail
    assert [e.url for e in res.entries] == ["https://registry-1.docker.io/v2"]
    assert res.entries[0].ca_files == (f"{d}/ca.crt",)


def test_toml_syntax_error_has_line_and_column(tmp_path):
    """A TOML syntax error points at its line and column."""
    text = '[host."https://mirror.gcr.io"]\n  capabilities = ["pull", "resolve"\n'
    host = _host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text})
    (f,) = _resolve(host, "docker.io").findings
    assert f.code == "config.parse-error"
    assert (f.evidence["line"], f.evidence["column"]) == (2, 36)


def test_unknown_capability_rejects_the_whole_file(tmp_path):
    """Pattern 17: capabilities = ["pull", "fetch"] fails the file; containerd silently uses cert files."""
    text = ('server = "https://registry-1.docker.io"\n\n[host."https://mirror.gcr.io"]\n'
            '  capabilities = ["pull", "fetch"]\n')
    host = _host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text})
    res = _resolve(host, "docker.io")
    assert res.mode == "cert-files" and res.fell_back
    (f,) = res.findings
    assert f.code == "config.invalid-value" and f.severity == "error"
    assert f.evidence["line"] == 4 and f.evidence["value"] == "fetch"
    assert f.fix.params["allowed"] == ["pull", "resolve", "push", "referrers"]
    assert [e.host for e in res.entries] == ["registry-1.docker.io"]


@pytest.mark.parametrize("line, message", [
    ('  ca = 42', 'invalid type integer for "ca"'),
    ('  skip_verify = "true"', "skip_verify must be true or false"),
    ('  capabilities = "pull"', "capabilities must be a list of strings"),
    ('  dial_timeout = "5 seconds"', "invalid duration"),
    ('  dial_timeout = 5', "dial_timeout must be a string"),
    ('  client = [["a.cert"]]', 'invalid pair'),
    ('  client = 7', 'invalid type integer for "client"'),
    ('  override_path = 1', "override_path must be true or false"),
])
def test_wrong_types_reject_the_file_with_the_line(tmp_path, line, message):
    """Every field type containerd's decoder refuses is a config.invalid-value at its line, then cert-file mode."""
    text = f'[host."https://mirror.corp.example"]\n{line}\n'
    host = _host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text})
    res = _resolve(host, "docker.io")
    assert res.mode == "cert-files"
    (f,) = res.findings
    assert f.code == "config.invalid-value" and message in f.title
    assert f.evidence["line"] == 2


def test_accepted_field_forms(tmp_path):
    """ca as string or list, the three client forms, header as string or list, dial_timeout."""
    d = f"{CERTS}/registry.corp.example"
    text = """[host."https://a.corp.example"]
  ca = "a.crt"
  client = "a.pem"
  header = { X-Team = "infra" }
  dial_timeout = "1m30s"

[host."https://b.corp.example"]
  ca = ["/etc/pki/b1.crt", "b2.crt"]
  client = ["b1.pem", "b2.pem"]
  [host."https://b.corp.example".header]
    X-Trace = ["1", "2"]

[host."https://c.corp.example"]
  client = [["c.cert", "/etc/pki/c.key"]]
"""
    host = _host(tmp_path, {f"{d}/hosts.toml": text, f"{d}/a.crt": PEM_CA, f"{d}/a.pem": PEM_CA + PEM_KEY,
                            "/etc/pki/b1.crt": PEM_CA, f"{d}/b2.crt": PEM_CA, f"{d}/b1.pem": PEM_CA + PEM_KEY,
                            f"{d}/b2.pem": PEM_CA + PEM_KEY, f"{d}/c.cert": PEM_CA, "/etc/pki/c.key": PEM_KEY})
    res = _resolve(host, "registry.corp.example")
    assert res.findings == [] and res.fatal == ""
    a, b, c, _ = res.entries
    assert a.ca_files == (f"{d}/a.crt",) and a.client_pairs == ((f"{d}/a.pem", ""),)
    assert a.headers == {"X-Team": ("infra",)} and a.dial_timeout == "1m30s"
    assert b.ca_files == ("/etc/pki/b1.crt", f"{d}/b2.crt")
    assert b.client_pairs == ((f"{d}/b1.pem", ""), (f"{d}/b2.pem", ""))
    assert b.headers == {"X-Trace": ("1", "2")}
    assert c.client_pairs == ((f"{d}/c.cert", "/etc/pki/c.key"),)


def test_missing_ca_file_fails_every_pull(tmp_path):
    """A ca that does not exist makes containerd fail the whole pull (`unable to read CA cert`)."""
    text = 'server = "https://registry.corp.example"\nca = "/etc/pki/corp-root.crt"\n'
    host = _host(tmp_path, {f"{CERTS}/registry.corp.example/hosts.toml": text})
    res = _resolve(host, "registry.corp.example")
    assert "corp-root.crt" in res.fatal
    (f,) = [f for f in res.findings if f.severity == "error"]
    assert f.code == "config.invalid-value" and f.evidence["line"] == 2
    assert f.evidence["value"] == "/etc/pki/corp-root.crt"


@pytest.mark.parametrize("namespace, url, skip, fallback", [
    ("localhost", "https://localhost/v2", True, False),
    ("localhost:443", "https://localhost:443/v2", True, False),
    ("localhost:80", "http://localhost:80/v2", None, False),
    ("localhost:5000", "https://localhost:5000/v2", True, True),
    ("127.0.0.1:5000", "https://127.0.0.1:5000/v2", True, True),
    ("[::1]:5000", "https://[::1]:5000/v2", True, True),
    ("registry.corp.example:5000", "https://registry.corp.example:5000/v2", None, False),
])
def test_default_upstream_schemes(tmp_path, namespace, url, skip, fallback):
    """Localhost and loopback get skip_verify and an HTTP fallback; other hosts never fall back to HTTP."""
    (entry,) = _resolve(_host(tmp_path, {f"{CERTS}/": ""}), namespace).entries
    assert (entry.url, entry.skip_verify, entry.http_fallback) == (url, skip, fallback)


def test_localhost_before_1_7_is_plain_http(tmp_path):
    """containerd 1.6 has no HTTPS-first fallback: localhost is plain HTTP (skip_verify set), http hosts stay http."""
    text = '[host."http://10.20.0.5:5000"]\n  skip_verify = true\n'
    host = _host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text})
    (entry,) = _resolve(host, "localhost:5000", containerd_version=(1, 6, 20)).entries
    assert (entry.url, entry.http_fallback) == ("http://localhost:5000/v2", False)
    mirror = _resolve(host, "docker.io", containerd_version=(1, 6, 20)).entries[0]
    assert (mirror.scheme, mirror.http_fallback) == ("http", False)


def test_http_host_with_tls_settings_tries_https_first(tmp_path):
    """http:// plus ca/skip_verify and a port other than 80: HTTPS first, then HTTP."""
    text = ('[host."http://10.20.0.5:5000"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n\n'
            '[host."http://10.20.0.6:80"]\n  skip_verify = true\n\n[host."http://10.20.0.7:5000"]\n')
    res = _resolve(_host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text}), "docker.io")
    first, port80, plain = res.entries[:3]
    assert (first.scheme, first.http_fallback, first.url) == ("https", True, "https://10.20.0.5:5000/v2")
    assert (port80.scheme, port80.http_fallback) == ("http", False)
    assert (plain.scheme, plain.http_fallback) == ("http", False)


def test_k3s_generated_file_is_recognised(tmp_path):
    """The k3s header is exposed, and k3s's rewrite tables are not reported as unknown keys."""
    text = (f"{K3S_HEADER} Use /etc/rancher/k3s/registries.yaml instead.\n[host]\n"
            '[host."https://registry.corp.example/v2"]\n  capabilities = ["pull", "resolve"]\n'
            '[host."https://registry.corp.example/v2".rewrite]\n  "^library/(.*)" = "mirror/$1"\n')
    res = _resolve(_host(tmp_path, {"/var/lib/rancher/k3s/agent/etc/containerd/certs.d/docker.io/hosts.toml": text}),
                   "docker.io", ["/var/lib/rancher/k3s/agent/etc/containerd/certs.d"])
    assert res.generated_by_k3s
    assert res.findings == []
    assert res.entries[0].url == "https://registry.corp.example/v2"


def test_unknown_keys_are_reported_with_the_key_meant(tmp_path):
    """insecure_skip_verify is not a hosts.toml key: config.ignored-key suggests skip_verify."""
    text = '[host."https://harbor.corp.example"]\n  capabilities = ["pull", "resolve"]\n  insecure_skip_verify = true\n'
    res = _resolve(_host(tmp_path, {f"{CERTS}/harbor.corp.example/hosts.toml": text}), "harbor.corp.example")
    (f,) = res.findings
    assert f.code == "config.ignored-key" and f.severity == "warning"
    assert f.evidence["line"] == 3
    assert f.fix.params["new_key"] == "skip_verify"
    assert res.entries[0].skip_verify is None


def test_host_without_table_header_is_never_tried(tmp_path):
    """A host written as an inline table is decoded but containerd never lists it."""
    text = 'server = "https://registry-1.docker.io"\nhost."https://mirror.gcr.io" = { capabilities = ["pull", "resolve"] }\n'
    res = _resolve(_host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text}), "docker.io")
    assert [e.host for e in res.entries] == ["registry-1.docker.io"]
    (f,) = res.findings
    assert f.code == "config.ignored-key" and f.evidence["line"] == 2


def test_root_only_file_rejected_before_2_0(tmp_path):
    """containerd 1.7 rejects a hosts.toml without [host] tables (invalid host tree) and uses cert files."""
    text = 'server = "https://registry.corp.example"\nskip_verify = true\n'
    host = _host(tmp_path, {f"{CERTS}/registry.corp.example/hosts.toml": text})
    old = _resolve(host, "registry.corp.example", containerd_version=(1, 7, 27))
    assert old.mode == "cert-files" and old.entries[0].skip_verify is None
    assert old.findings[0].code == "config.invalid-value" and "invalid `host` tree" in old.findings[0].title
    new = _resolve(host, "registry.corp.example", containerd_version=(2, 0, 0))
    assert new.mode == "hosts.toml" and new.entries[0].skip_verify is True and new.findings == []
    unknown = _resolve(host, "registry.corp.example")
    assert unknown.mode == "hosts.toml" and unknown.findings[0].severity == "warning"


def test_header_secrets_are_masked(tmp_path):
    """An Authorization header value never appears in the entry's printable fields or findings."""
    secret = "Basic ZGVwbG95OnMzY3JldC1wYXNz"
    text = f'[host."https://harbor.corp.example"]\n  [host."https://harbor.corp.example".header]\n    Authorization = "{secret}"\n'
    res = _resolve(_host(tmp_path, {f"{CERTS}/harbor.corp.example/hosts.toml": text}), "harbor.corp.example")
    entry = res.entries[0]
    assert entry.headers == {"Authorization": ("***",)}
    assert entry.raw_headers["Authorization"] == (secret,)
    assert "s3cret" not in repr(entry) and "ZGVwbG95" not in repr(entry)
    assert "ZGVwbG95" not in json.dumps([s.to_dict() for s in res.sources] + [f.to_dict() for f in res.findings])


def test_misnamed_dirs_are_found(tmp_path):
    """A dir without the port, with a different case, or host_port without the trailing underscore."""
    host = _host(tmp_path, {f"{CERTS}/myreg/": "", f"{CERTS}/MyReg:5000/": "", f"{CERTS}/myreg_5000/": "",
                            f"{CERTS}/other:5000/": ""})
    found = misnamed_dirs(host, [CERTS], "myreg:5000")
    assert sorted(found) == sorted([f"{CERTS}/myreg", f"{CERTS}/MyReg:5000", f"{CERTS}/myreg_5000"])


def test_not_a_directory_fails_the_registry(tmp_path):
    """A regular file where the hosts dir should be: containerd errors on every pull."""
    res = _resolve(_host(tmp_path, {f"{CERTS}/docker.io": "oops"}), "docker.io")
    assert res.fatal and res.findings[0].code == "config.invalid-value"


def test_unreadable_hosts_toml_is_a_permission_finding(tmp_path):
    """A hosts.toml that cannot be read (a directory here) is reported, not raised."""
    res = read_hosts_dir(_host(tmp_path, {f"{CERTS}/docker.io/hosts.toml/": ""}), f"{CERTS}/docker.io", "docker.io",
                         "containerd")
    assert res.fatal and res.findings[0].code == "config.permission"


@pytest.mark.parametrize("text, seconds", [("30s", 30.0), ("1m30s", 90.0), ("1.5h", 5400.0), ("300ms", 0.3),
                                           ("0", 0.0), ("5", None), ("", None), ("5 s", None), ("1d", None)])
def test_go_durations(text, seconds):
    """dial_timeout is parsed like Go's time.ParseDuration."""
    result = parse_go_duration(text)
    assert result == pytest.approx(seconds) if seconds is not None else result is None


def test_generated_hosts_toml_round_trips(tmp_path):
    """hosts_toml_text output is read back by resolve_hosts as the same mirrors and server."""
    text = hosts_toml_text("https://registry-1.docker.io", [
        {"url": "https://mirror.gcr.io", "capabilities": ("pull", "resolve")},
        {"url": "http://10.0.0.9:5000", "capabilities": ("pull",), "skip_verify": True}])
    res = _resolve(_host(tmp_path, {f"{CERTS}/docker.io/hosts.toml": text}), "docker.io")
    assert res.findings == []
    assert [e.url for e in res.entries] == ["https://mirror.gcr.io/v2", "https://10.0.0.9:5000/v2",
                                            "https://registry-1.docker.io/v2"]


@pytest.mark.parametrize("version, expected", [
    ((1, 6, 20), ("pull", "resolve", "push")),
    ((2, 1, 4), ("pull", "resolve", "push")),
    ((2, 2, 0), ("pull", "resolve", "push", "referrers")),
    ((2, 3, 0), ("pull", "resolve", "push", "referrers")),
])
def test_default_capabilities_follow_the_version(tmp_path, version, expected):
    """containerd 2.2 adds referrers to a host without capabilities and to the default host.

    containerd ``core/remotes/docker/config/hosts.go`` (v2.2.0, commit "Update capabilities for
    referrers"); ``hosts_test.go TestDefaultHosts`` expects ``allCaps`` (pull|resolve|push|referrers)
    for docker.io. v2.1.x and earlier give pull|resolve|push.
    """
    text = 'server = "https://registry.corp.example"\n[host."https://mirror.corp.example"]\n'
    host = _host(tmp_path, {f"{CERTS}/registry.corp.example/hosts.toml": text,
                            f"{CERTS}/_default/hosts.toml": '[host."https://cache.corp.example"]\n  capabilities = ["pull"]\n'})
    res = _resolve(host, "registry.corp.example", containerd_version=version)
    assert [e.capabilities for e in res.entries] == [expected, expected]
    res = _resolve(host, "docker.io", containerd_version=version)
    assert [e.capabilities for e in res.entries] == [("pull",), expected]


def test_referrers_capability_is_unknown_before_2_2(tmp_path):
    """Before 2.2 parseHostConfig has no "referrers" case: `unknown capability referrers`, the file is voided."""
    text = '[host."https://mirror.corp.example"]\n  capabilities = ["pull", "resolve", "referrers"]\n'
    host = _host(tmp_path, {f"{CERTS}/registry.corp.example/hosts.toml": text})
    old = _resolve(host, "registry.corp.example", containerd_version=(2, 1, 4))
    assert old.mode == "cert-files" and old.findings[0].evidence["error"] == "unknown capability referrers"
    new = _resolve(host, "registry.corp.example", containerd_version=(2, 2, 0))
    assert new.mode == "hosts.toml" and new.entries[0].capabilities == ("pull", "resolve", "referrers")
