"""Go's proxy selection and NO_PROXY matching (SEMANTICS 0.2), not Python's."""

from __future__ import annotations

import pytest

from regtui.net.proxy import decide, from_environ, parse_proxy

ENV = from_environ({
    "HTTPS_PROXY": "http://user:s3cret@proxy.corp:3128",
    "https_proxy": "http://other:1",
    "HTTP_PROXY": "http://plain.corp:8080",
    "NO_PROXY": "10.0.0.0/8, .lab.test,example.com:5000,*.corp.internal,registry.local,192.168.1.7,[::2]:443",
})


@pytest.mark.parametrize(
    ("url", "proxied", "match"),
    [
        ("https://registry-1.docker.io/v2/", True, None),
        ("https://10.1.2.3:5000/v2/", False, "10.0.0.0/8"),
        ("https://a.lab.test/v2/", False, ".lab.test"),
        ("https://lab.test/v2/", True, None),  # leading dot: subdomains only
        ("https://example.com:5000/v2/", False, "example.com:5000"),
        ("https://example.com/v2/", True, None),  # port-qualified entry: that port only
        ("https://sub.example.com:5000/v2/", False, "example.com:5000"),
        ("https://x.corp.internal/v2/", False, "*.corp.internal"),
        ("https://corp.internal/v2/", True, None),  # *. means subdomains only
        ("https://registry.local/v2/", False, "registry.local"),
        ("https://mirror.registry.local/v2/", False, "registry.local"),  # bare domain: itself and subdomains
        ("https://192.168.1.7/v2/", False, "192.168.1.7"),
        ("https://[::2]/v2/", False, "[::2]:443"),
        ("https://127.0.0.5:5000/v2/", False, None),  # loopback never proxied
        ("https://localhost:5000/v2/", False, None),
    ],
)
def test_no_proxy_matching(url: str, proxied: bool, match: str | None) -> None:
    """Each URL is proxied or not exactly as Go's httpproxy decides, naming the entry that matched."""
    d = decide(ENV, url)
    assert (d.proxy is not None) == proxied
    assert d.no_proxy_match == match


def test_cidr_never_matches_names() -> None:
    """A CIDR entry matches IP literals only: a name resolving into it is still proxied (no DNS)."""
    env = from_environ({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "10.0.0.0/8"})
    assert decide(env, "https://registry.in.ten.net/v2/").proxy == "http://p:3128"


def test_uppercase_wins_and_empty_falls_through() -> None:
    """HTTPS_PROXY beats https_proxy; an empty uppercase value falls through to the lowercase one."""
    assert decide(ENV, "https://r.io/").url == "http://user:s3cret@proxy.corp:3128"
    env = from_environ({"HTTPS_PROXY": "", "https_proxy": "http://low:3128"})
    assert decide(env, "https://r.io/").url == "http://low:3128"


def test_http_proxy_never_used_for_https() -> None:
    """With only HTTP_PROXY set, https registries are reached directly (Go >= 1.16)."""
    env = from_environ({"HTTP_PROXY": "http://p:3128"})
    d = decide(env, "https://registry-1.docker.io/v2/")
    assert d.proxy is None and "HTTP_PROXY is never used for https" in d.reason
    assert decide(env, "http://plain.registry/v2/").proxy == "http://p:3128"


def test_star_disables_all_and_all_proxy_is_ignored() -> None:
    """NO_PROXY=* disables proxying; ALL_PROXY is not read by Go."""
    assert decide(from_environ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}), "https://r.io/").proxy is None
    assert decide(from_environ({"ALL_PROXY": "http://p:1"}), "https://r.io/").proxy is None


def test_scheme_less_proxy_gets_http() -> None:
    """A proxy value without a scheme is taken as http://."""
    assert parse_proxy("proxy.corp:3128") == "http://proxy.corp:3128"
    assert parse_proxy("https://proxy.corp:3128") == "https://proxy.corp:3128"


def test_credentials_redacted_in_decision() -> None:
    """The displayed proxy never carries the password; only the client-facing url does."""
    d = decide(ENV, "https://registry-1.docker.io/v2/")
    assert "s3cret" not in d.proxy and "s3cret" not in repr(d)
