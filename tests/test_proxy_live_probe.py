"""Proxy panel end to end against real tinyproxy (open, auth, deny), a closed port and a black hole."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.fixtures import LAB_PROXY_CREDENTIALS
from lab.probectx import context, fake_root, route, view
from lab.proxy import TinyProxy
from lab.registry import Registry
from lab.sockets import TcpBlackHole
from regtui.checks import proxy_live
from regtui.net.proxy import ProxyEnv, from_environ
from regtui.probecontext import ProbeResult

pytestmark = pytest.mark.lab

PASSWORD = LAB_PROXY_CREDENTIALS[1]


def _env(https_proxy: str, no_proxy: str = "", source: str = "/etc/systemd/system/docker.service.d/http-proxy.conf:3") -> ProxyEnv:
    """A daemon proxy environment as a systemd drop-in would give it."""
    env = {"HTTPS_PROXY": https_proxy}
    if no_proxy:
        env["NO_PROXY"] = no_proxy
    return from_environ(env, {k: source for k in env}, label="dockerd")


def _run(tmp_path: Path, env: ProxyEnv, urls: list[str], runtime: str = "docker", **kwargs) -> ProbeResult:
    ctx = context(fake_root(tmp_path), views=[view(runtime, env)], routes=[route(runtime, urls, env)], **kwargs)
    return asyncio.run(proxy_live.probe(ctx))


def _only(result: ProbeResult, code: str):
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, [(f.code, f.title) for f in result.findings]
    return found[0]


def _no_secret(result: ProbeResult) -> None:
    """The proxy password appears nowhere in the data or the findings."""
    blob = json.dumps(result.data) + json.dumps([f.to_dict() for f in result.findings])
    assert PASSWORD not in blob


def test_working_proxy_tunnels(tinyproxy_factory: Callable[..., TinyProxy], hosts_file_factory: Callable[[dict[str, str]], Path],
                               registry_plain: Registry, tmp_path: Path) -> None:
    """tinyproxy that resolves the lab name: CONNECT 200, no finding; the decision names HTTPS_PROXY per endpoint."""
    proxy = tinyproxy_factory(hosts_file=hosts_file_factory({"registry.lab.test": "127.0.0.1"}))
    result = _run(tmp_path, _env(proxy.url), [f"https://registry.lab.test:{registry_plain.port}"])
    assert result.findings == []
    [p] = result.data["proxies"]
    assert p["ok"] and p["connects"][0]["status"] == 200 and p["connects"][0]["target"] == f"registry.lab.test:{registry_plain.port}"
    [ep] = result.data["runtimes"]["docker"]["endpoints"]
    assert ep["configured"]["variable"] == "HTTPS_PROXY" and ep["configured"]["proxy"] == proxy.url
    assert f"CONNECT registry.lab.test:{registry_plain.port}" in proxy.proxy_log()


def test_no_proxy_match_is_shown_and_not_probed(tinyproxy: TinyProxy, tmp_path: Path) -> None:
    """NO_PROXY=.lab.test: the endpoint goes direct, the matching entry is in the data, and no proxy is contacted."""
    result = _run(tmp_path, _env(tinyproxy.url, no_proxy="localhost,.lab.test"), ["https://registry.lab.test:5000"])
    [ep] = result.data["runtimes"]["docker"]["endpoints"]
    assert ep["configured"]["proxy"] is None and ep["configured"]["no_proxy_match"] == ".lab.test"
    assert result.data["proxies"] == [] and result.findings == []


def test_closed_port_is_unreachable(closed_port: int, tmp_path: Path) -> None:
    """HTTPS_PROXY on a closed port: proxy.unreachable (error), phase connect, Go's error text, the drop-in named."""
    result = _run(tmp_path, _env(f"http://127.0.0.1:{closed_port}"), ["https://registry.lab.test"])
    f = _only(result, "proxy.unreachable")
    assert f.severity == "error" and f.subject == f"127.0.0.1:{closed_port}" and f.runtime == "docker"
    assert f.evidence["phase"] == "connect" and "connection refused" in f.evidence["runtime_error"].lower()
    assert f.evidence["runtime_error"].startswith("proxyconnect tcp:")
    assert f.fix is not None and f.fix.files == ("/etc/systemd/system/docker.service.d/http-proxy.conf",)


def test_black_hole_proxy_costs_one_timeout(tcp_black_hole: TcpBlackHole, tmp_path: Path) -> None:
    """A proxy that accepts and never answers: proxy.unreachable (phase answer) after about one timeout."""
    started = time.monotonic()
    result = _run(tmp_path, _env(tcp_black_hole.url), ["https://a.lab.test", "https://b.lab.test:5000"], timeout=1.0)
    elapsed = time.monotonic() - started
    f = _only(result, "proxy.unreachable")
    assert f.evidence["phase"] == "answer" and "never answers" in f.title
    assert elapsed < 2.5


def test_auth_proxy_without_credentials_wants_them(tinyproxy_auth: TinyProxy, tmp_path: Path) -> None:
    """tinyproxy with BasicAuth and no credentials in the URL: proxy.connect-refused, 407, 'wants credentials'."""
    result = _run(tmp_path, _env(tinyproxy_auth.url_without_auth), ["https://registry.lab.test:5000"])
    f = _only(result, "proxy.connect-refused")
    assert f.severity == "error" and f.evidence["status"] == 407
    assert f.evidence["wants_credentials"] is True and f.evidence["credentials_sent"] is False
    assert "wants credentials" in f.title and f.evidence["targets"] == ["registry.lab.test:5000"]


def test_auth_proxy_with_credentials_never_leaks_them(tinyproxy_factory: Callable[..., TinyProxy],
                                                     hosts_file_factory: Callable[[dict[str, str]], Path],
                                                     registry_plain: Registry, tmp_path: Path) -> None:
    """With user:password in HTTPS_PROXY the CONNECT succeeds; the password is nowhere in data or findings."""
    proxy = tinyproxy_factory(auth=LAB_PROXY_CREDENTIALS, hosts_file=hosts_file_factory({"registry.lab.test": "127.0.0.1"}))
    result = _run(tmp_path, _env(proxy.url), [f"https://registry.lab.test:{registry_plain.port}"])
    assert result.findings == []
    [p] = result.data["proxies"]
    assert p["credentials"] is True and p["connects"][0]["status"] == 200 and p["ok"]
    assert "***@" in p["proxy"]
    _no_secret(result)


def test_auth_proxy_wrong_password_is_rejected(tinyproxy_auth: TinyProxy, tmp_path: Path) -> None:
    """A wrong password: 407 'rejects the credentials', and the wrong password is not shown either."""
    url = f"http://{LAB_PROXY_CREDENTIALS[0]}:wrong-{PASSWORD}@127.0.0.1:{tinyproxy_auth.port}"
    result = _run(tmp_path, _env(url), ["https://registry.lab.test:5000"])
    f = _only(result, "proxy.connect-refused")
    # tinyproxy 1.11 answers 401 (not 407) to wrong credentials; both mean "authenticate to the proxy".
    assert f.evidence["status"] in (401, 407) and f.evidence["credentials_sent"] is True
    assert "rejects the credentials" in f.detail
    _no_secret(result)


def test_deny_proxy_forbids_connect(tinyproxy_deny: TinyProxy, tmp_path: Path) -> None:
    """tinyproxy allowing CONNECT only to 443: proxy.connect-refused with 403 and the status line."""
    result = _run(tmp_path, _env(tinyproxy_deny.url), ["https://registry.lab.test:5000"])
    f = _only(result, "proxy.connect-refused")
    assert f.evidence["status"] == 403 and f.evidence["status_line"].startswith("HTTP/1.")
    assert "forbids" in f.detail


def test_https_scheme_on_plain_proxy(tinyproxy: TinyProxy, tmp_path: Path) -> None:
    """HTTPS_PROXY=https:// pointing at plain tinyproxy: proxy.scheme-tls (error), fix to http://, Go's error quoted."""
    url = f"https://127.0.0.1:{tinyproxy.port}"
    result = _run(tmp_path, _env(url), ["https://registry.lab.test:5000"], timeout=1.5)
    f = _only(result, "proxy.scheme-tls")
    assert f.severity == "error" and f.subject == f"127.0.0.1:{tinyproxy.port}"
    assert f.evidence["plain_http_answer"].startswith("HTTP/1.")
    assert "TLS" in f.evidence["tls_error"]
    assert f.evidence["runtime_error"].startswith("proxyconnect tcp:")
    assert f.fix is not None and f.fix.kind == "edit" and f.fix.params["to"] == f"http://127.0.0.1:{tinyproxy.port}"
    assert f.fix.files == ("/etc/systemd/system/docker.service.d/http-proxy.conf",)
    assert "proxy.unreachable" not in {x.code for x in result.findings}


def test_plain_http_endpoint_via_proxy_uses_get(tinyproxy_auth: TinyProxy, tmp_path: Path) -> None:
    """An http:// endpoint goes through HTTP_PROXY with an absolute-URI GET; 407 from the proxy is still refused."""
    env = from_environ({"HTTP_PROXY": tinyproxy_auth.url_without_auth}, {"HTTP_PROXY": "/etc/default/docker:1"})
    result = _run(tmp_path, env, ["http://registry.lab.test:5000"])
    f = _only(result, "proxy.connect-refused")
    assert f.evidence["status"] == 407
    assert "GET http://registry.lab.test:5000/v2/" in tinyproxy_auth.proxy_log() or f.evidence["targets"]


async def _with_hostile_proxy(tmp_path: Path, behaviour: str) -> ProbeResult:
    """Run the probe against an in-process 'proxy' that answers like an SSH server, or with endless headers."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1024)
            if behaviour == "ssh":
                writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
            else:
                writer.write(b"HTTP/1.1 200 Connection established\r\n")
                for _ in range(2000):  # 2000 x 64 bytes: far past the 64 KiB header bound, never a blank line
                    writer.write(b"X-Filler: " + b"a" * 52 + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.5)
        except OSError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        env = _env(f"http://127.0.0.1:{port}")
        ctx = context(fake_root(tmp_path), views=[view("docker", env)], routes=[route("docker", ["https://r.lab.test"], env)])
        return await proxy_live.probe(ctx)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("behaviour", "text"), [("ssh", "not an HTTP answer"), ("endless", "64 KiB")])
def test_hostile_proxy_answers_are_findings(behaviour: str, text: str, tmp_path: Path) -> None:
    """A non-HTTP answer or headers that never end: proxy.unreachable (phase protocol), never a traceback or a pass."""
    result = asyncio.run(_with_hostile_proxy(tmp_path, behaviour))
    f = _only(result, "proxy.unreachable")
    assert f.evidence["phase"] == "protocol" and text in f.evidence["error"]
    assert "does not answer in HTTP" in f.title


def test_proxy_cannot_reach_target_is_5xx(tinyproxy_factory: Callable[..., TinyProxy],
                                          hosts_file_factory: Callable[[dict[str, str]], Path],
                                          closed_port: int, tmp_path: Path) -> None:
    """tinyproxy resolves the name but nothing listens behind it: CONNECT answers 500, proxy.connect-refused names it."""
    proxy = tinyproxy_factory(hosts_file=hosts_file_factory({"registry.lab.test": "127.0.0.1"}))
    result = _run(tmp_path, _env(proxy.url), [f"https://registry.lab.test:{closed_port}"])
    f = _only(result, "proxy.connect-refused")
    assert f.evidence["status"] == 500 and "could not reach" in f.detail
    assert f.evidence["wants_credentials"] is False
