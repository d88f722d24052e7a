"""Pure logic of the registry client: challenges, token flows, manifests and platforms, error
classification and the runtime's wording, timing sums, fallback rules, concurrency sources.

No network: the authorizer gets a fake token sender, exceptions are built by hand.
"""

from __future__ import annotations

import asyncio
import errno
import json
import ssl
from pathlib import Path

import httpcore
import httpx
import pytest

from regtui.credentials import Credential
from regtui.host import Host
from regtui.model import Endpoint, Route
from regtui.net.http import PhaseTimings, Timeouts
from regtui.net.resolver import ResolveError, Resolver, ResolverConfig
from regtui.options import CheckOptions
from regtui.probecontext import ProbeContext
from regtui.refs import Reference, parse
from regtui.registry.auth import Authorizer, parse_challenges
from regtui.registry.blobs import is_transient
from regtui.registry.client import Hop, sum_timings
from regtui.registry.diagnose import ratelimit_exhausted
from regtui.registry.errors import (
    HTTP_TO_HTTPS,
    Failure,
    RegistryError,
    classify_exception,
    display_url,
    runtime_error,
    status_failure,
)
from regtui.registry.flavors import CONTAINERD, CONTAINERS_IMAGE, DOCKER, flavor_for
from regtui.registry.manifest import (
    ACCEPT,
    DOCKER_LIST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestError,
    Platform,
    digest_of,
    goarch,
    host_platform,
    parse_manifest,
    select_platform,
)
from regtui.registry.pull import concurrency_for
from regtui.registry.pull import test_pull as run_test_pull
from regtui.runtimes.view import RuntimeView

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
URL = "https://reg.example:5000/v2/lab/app/manifests/latest"


# -- challenges -------------------------------------------------------------------------------
def test_bearer_challenge_with_quoted_commas() -> None:
    """A Bearer challenge keeps a scope containing commas and colons intact."""
    (c,) = parse_challenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                            'scope="repository:library/nginx:pull,push"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/nginx:pull,push"}


def test_several_challenges_and_escapes() -> None:
    """Two challenges in one header are both found; escaped quotes are unescaped."""
    challenges = parse_challenges('Basic realm="a \\"quoted\\" realm", Bearer realm="https://t/token",service=s')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].params["realm"] == 'a "quoted" realm'
    assert challenges[1].params["service"] == "s"


@pytest.mark.parametrize("garbage", ["", "=,=,", '"unterminated', "Bearer realm", "\x00\xff Bearer"])
def test_garbage_challenges_never_raise(garbage: str) -> None:
    """Hostile WWW-Authenticate values parse to whatever is usable (possibly nothing), never an exception."""
    assert isinstance(parse_challenges(garbage), list)


# -- token flows with a fake token server -----------------------------------------------------
class FakeTokenServer:
    """Answers token requests from a table and records them (no network)."""

    def __init__(self, post_status: int = 200, get_status: int = 200, body: dict | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, str], dict[str, str] | None]] = []
        self.post_status, self.get_status = post_status, get_status
        self.body = body if body is not None else {"token": "tok-1", "expires_in": 300}

    async def __call__(self, method: str, url: str, headers: dict[str, str], form: dict[str, str] | None) -> httpx.Response:
        self.calls.append((method, url, headers, form))
        status = self.post_status if method == "POST" else self.get_status
        return httpx.Response(status, json=self.body if status == 200 else {"details": "no"},
                              request=httpx.Request(method, url))


def challenge(header: str, status: int = 401) -> httpx.Response:
    """A 401 response carrying ``header`` as WWW-Authenticate."""
    return httpx.Response(status, headers={"WWW-Authenticate": header}, request=httpx.Request("GET", URL))


BEARER = 'Bearer realm="https://auth.example/token",service="reg",scope="repository:lab/app:pull"'
SCOPE = "repository:lab/app:pull"


def test_anonymous_token_then_authorization_header() -> None:
    """Without credentials the token is fetched anonymously with GET and sent as Bearer."""
    server = FakeTokenServer()
    auth = Authorizer(None, server)
    asyncio.run(auth.handle("reg.example:5000", challenge(BEARER), SCOPE, sent_auth=False))
    method, url, headers, _ = server.calls[0]
    assert method == "GET" and "Authorization" not in headers
    assert url == "https://auth.example/token?service=reg&scope=repository%3Alab%2Fapp%3Apull"
    assert auth.authorization("reg.example:5000", SCOPE) == "Bearer tok-1"
    assert auth.authorization("cdn.example", SCOPE) is None
    assert auth.outcome.method == "token-anonymous" and auth.outcome.status == "ok"


def test_identity_token_post_then_get_fallback() -> None:
    """An identity token is POSTed as refresh_token; a 404 makes the client GET with Basic instead."""
    server = FakeTokenServer(post_status=404)
    auth = Authorizer(Credential("", "refresh-secret", "config.json:3", kind="identitytoken"), server)
    asyncio.run(auth.handle("reg", challenge(BEARER), SCOPE, sent_auth=False))
    (m1, _, _, form), (m2, _, headers, _) = server.calls
    assert (m1, form["grant_type"], form["refresh_token"]) == ("POST", "refresh_token", "refresh-secret")
    assert m2 == "GET" and headers["Authorization"].startswith("Basic ")
    assert auth.outcome.token_request == "POST 404 -> GET" and auth.outcome.method == "token-identity"
    assert "refresh-secret" not in json.dumps(auth.outcome.to_dict())


def test_containerd_posts_password_grant_and_docker_gets() -> None:
    """containerd POSTs grant_type=password with username/password; Docker GETs with Basic."""
    cred = Credential("u", "p", "src")
    server = FakeTokenServer()
    asyncio.run(Authorizer(cred, server, flavor="containerd").handle("reg", challenge(BEARER), SCOPE, sent_auth=False))
    assert server.calls[0][0] == "POST" and server.calls[0][3]["grant_type"] == "password"
    server = FakeTokenServer()
    asyncio.run(Authorizer(cred, server, flavor="docker").handle("reg", challenge(BEARER), SCOPE, sent_auth=False))
    assert server.calls[0][0] == "GET" and server.calls[0][2]["Authorization"].startswith("Basic ")


def test_basic_without_credentials_is_missing_and_docker_falls_back() -> None:
    """A Basic challenge with no credentials raises auth 'no-credentials' (transport not confirmed: Docker tries http)."""
    auth = Authorizer(None, FakeTokenServer())
    with pytest.raises(RegistryError) as err:
        asyncio.run(auth.handle("reg", challenge('Basic realm="r"'), SCOPE, sent_auth=False))
    assert err.value.failure.kind == "no-credentials" and err.value.failure.go_error == "no basic auth credentials"
    assert not err.value.failure.transport_ok and auth.outcome.status == "missing"
    assert DOCKER.moves_on(err.value.failure, _ep("upstream"))


def test_second_401_with_credentials_is_rejected() -> None:
    """A 401 although Basic credentials were sent means they are refused."""
    auth = Authorizer(Credential("u", "wrong", "src"), FakeTokenServer())
    asyncio.run(auth.handle("reg", challenge('Basic realm="r"'), SCOPE, sent_auth=False))
    assert auth.authorization("reg", SCOPE).startswith("Basic ")
    with pytest.raises(RegistryError):
        asyncio.run(auth.handle("reg", challenge('Basic realm="r"'), SCOPE, sent_auth=True))
    assert auth.outcome.status == "rejected"


@pytest.mark.parametrize(("server", "status"), [
    (FakeTokenServer(get_status=401), "missing"),
    (FakeTokenServer(body={"no": "token"}), "failed"),
    (FakeTokenServer(body={"token": 42}), "failed"),
])
def test_token_server_refusals_and_garbage(server: FakeTokenServer, status: str) -> None:
    """A token server refusing anonymous access is auth missing; an answer without a token is a failure."""
    auth = Authorizer(None, server)
    with pytest.raises(RegistryError):
        asyncio.run(auth.handle("reg", challenge(BEARER), SCOPE, sent_auth=False))
    assert auth.outcome.status == status


def test_realm_that_is_not_http_is_refused() -> None:
    """A realm with another scheme is never contacted."""
    server = FakeTokenServer()
    auth = Authorizer(None, server)
    with pytest.raises(RegistryError):
        asyncio.run(auth.handle("reg", challenge('Bearer realm="file:///etc/passwd"'), SCOPE, sent_auth=False))
    assert server.calls == [] and auth.outcome.status == "failed"


def test_registry_token_is_used_directly() -> None:
    """A registrytoken credential is sent as the Bearer token without asking a token server."""
    server = FakeTokenServer()
    auth = Authorizer(Credential("", "reg-tok", "src", kind="registrytoken"), server)
    asyncio.run(auth.handle("reg", challenge(BEARER), SCOPE, sent_auth=False))
    assert server.calls == [] and auth.authorization("reg", SCOPE) == "Bearer reg-tok"


# -- manifests and platforms ------------------------------------------------------------------
def _index(*platforms: tuple[str, str, str | None]) -> bytes:
    manifests = [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + str(i) * 64, "size": 10,
                  "platform": {"os": o, "architecture": a, **({"variant": v} if v else {})}}
                 for i, (o, a, v) in enumerate(platforms, 1)]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


def test_parse_image_manifest_blobs_in_order() -> None:
    """An image manifest gives config then layers as blobs."""
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "c", "digest": D1, "size": 5},
                       "layers": [{"mediaType": "l", "digest": D2, "size": 7}, {"mediaType": "l", "digest": D3, "size": 9}]}).encode()
    m = parse_manifest(body, OCI_MANIFEST, digest_of(body))
    assert m.kind == "image" and [b.digest for b in m.blobs] == [D1, D2, D3]


@pytest.mark.parametrize(("body", "kind"), [
    (b"\xff\xfe not json", "invalid"),
    (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), "schema1"),
    (json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:xyz", "size": 1}}).encode(), "invalid"),
    (json.dumps({"schemaVersion": 2, "config": {"digest": D1, "size": -1}}).encode(), "invalid"),
    (json.dumps({"schemaVersion": 2, "config": {"digest": D1, "size": 1}, "layers": "x"}).encode(), "invalid"),
    (json.dumps({"schemaVersion": 2, "manifests": [{"digest": D1, "size": 1}] * 5000}).encode(), "invalid"),
    (json.dumps({"mediaType": "application/x-unknown"}).encode(), "unsupported"),
    (b" " * (MAX_MANIFEST_BYTES + 1), "too-large"),
])
def test_hostile_manifests_are_manifest_errors(body: bytes, kind: str) -> None:
    """Bad JSON, schema 1, invalid digests/sizes, absurd entry counts, unknown types, >4 MiB: a ManifestError of the right kind."""
    with pytest.raises(ManifestError) as err:
        parse_manifest(body, None, digest_of(body))
    assert err.value.kind == kind


def test_docker_list_content_type_is_an_index() -> None:
    """The Content-Type decides the kind when the body has no mediaType."""
    body = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert parse_manifest(body, DOCKER_LIST + "; charset=utf-8", digest_of(body)).kind == "index"


@pytest.mark.parametrize(("machine", "expected"), [
    ("x86_64", ("amd64", None)), ("aarch64", ("arm64", None)), ("armv7l", ("arm", "v7")), ("i686", ("386", None)),
    ("ppc64le", ("ppc64le", None)), ("s390x", ("s390x", None)), ("riscv64", ("riscv64", None)),
])
def test_machine_names_map_to_goarch(machine: str, expected: tuple[str, str | None]) -> None:
    """platform.machine() names become Go's GOARCH (and ARM variant)."""
    assert goarch(machine) == expected
    assert host_platform(machine) == Platform("linux", *expected)


def test_platform_selection_like_containerd() -> None:
    """arm64 matches arm64/v8; arm/v7 falls back to v6; amd64 prefers no variant; a missing platform is None."""
    index = parse_manifest(_index(("linux", "arm", "v6"), ("linux", "arm64", "v8"), ("linux", "amd64", None),
                                  ("windows", "amd64", None)), None, D1)
    assert select_platform(index, Platform.parse("linux/arm64")).digest == "sha256:" + "2" * 64
    assert select_platform(index, Platform.parse("linux/arm/v7")).digest == "sha256:" + "1" * 64
    assert select_platform(index, Platform.parse("amd64")).digest == "sha256:" + "3" * 64
    assert select_platform(index, Platform.parse("linux/s390x")) is None


def test_accept_lists_are_the_runtimes() -> None:
    """containerd ends with */*; containers/image starts with OCI; Docker starts with v2 schema 2."""
    assert ACCEPT["containerd"][-1] == "*/*"
    assert ACCEPT["containers-image"][0] == OCI_MANIFEST
    assert ACCEPT["docker"][0] == "application/vnd.docker.distribution.manifest.v2+json"


# -- errors -----------------------------------------------------------------------------------
def _wrapped(inner: BaseException, outer: type[Exception] = httpx.ConnectError) -> Exception:
    """``inner`` wrapped the way httpx wraps httpcore errors."""
    try:
        try:
            raise httpcore.ConnectError(str(inner)) from inner
        except httpcore.ConnectError as core:
            raise outer(str(core)) from core
    except Exception as exc:  # noqa: BLE001 - we return what was raised
        return exc


def test_dns_failure_is_the_dns_phase() -> None:
    """A resolver NXDOMAIN inside a connect error is the dns phase with Go's wording."""
    f = classify_exception(_wrapped(ResolveError("m.nx.test", "nxdomain", "lookup m.nx.test on 127.0.0.1:53: no such host")),
                           "https://m.nx.test/v2/")
    assert (f.phase, f.kind) == ("dns", "nxdomain")
    assert f.go_error == "dial tcp: lookup m.nx.test on 127.0.0.1:53: no such host"


def test_certificate_errors_by_verify_code() -> None:
    """An unknown authority and an expired certificate are the tls phase with Go's x509 text."""
    unknown = ssl.SSLCertVerificationError(1, "certificate verify failed")
    unknown.verify_code, unknown.verify_message = 20, "unable to get local issuer certificate"
    f = classify_exception(_wrapped(unknown), URL)
    assert (f.phase, f.kind) == ("tls", "unknown-authority") and "x509: certificate signed by unknown authority" in f.go_error
    expired = ssl.SSLCertVerificationError(1, "certificate verify failed")
    expired.verify_code, expired.verify_message = 10, "certificate has expired"
    assert classify_exception(_wrapped(expired), URL).kind == "expired"


def test_plain_http_answer_to_tls_is_http_to_https() -> None:
    """OpenSSL's WRONG_VERSION_NUMBER means the server answered in plain HTTP (Go's message is quoted)."""
    err = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    err.reason = "WRONG_VERSION_NUMBER"
    f = classify_exception(_wrapped(err), URL)
    assert (f.phase, f.kind, f.go_error) == ("tls", "http-to-https", HTTP_TO_HTTPS)


def test_timeouts_tell_tcp_from_tls() -> None:
    """A connect timeout after TCP connected and TLS started is a TLS handshake timeout, else a dial timeout."""
    exc = httpx.ConnectTimeout("")
    tls_events = [("connection.connect_tcp.started", 0.0), ("connection.connect_tcp.complete", 0.1),
                  ("connection.start_tls.started", 0.1)]
    assert classify_exception(exc, URL, events=tls_events).go_error == "net/http: TLS handshake timeout"
    f = classify_exception(exc, URL, events=[], peer="10.0.0.1:5000")
    assert (f.phase, f.go_error, f.timed_out) == ("connect", "dial tcp 10.0.0.1:5000: i/o timeout", True)
    assert classify_exception(exc, URL, proxy="http://proxy:3128").phase == "proxy"


def test_refused_inside_an_exception_group() -> None:
    """anyio's "All connection attempts failed" hides ECONNREFUSED in a group: still a refused connect."""
    group = ExceptionGroup("attempts", [ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")])
    try:
        raise OSError("All connection attempts failed") from group
    except OSError as exc:
        f = classify_exception(_wrapped(exc), "https://127.0.0.1:5000/v2/")
    assert (f.phase, f.kind) == ("connect", "refused")
    assert f.go_error == "dial tcp 127.0.0.1:5000: connect: connection refused"


def test_read_failures_are_the_http_phase() -> None:
    """A read timeout and a reset after connecting are the http phase."""
    assert classify_exception(httpx.ReadTimeout(""), URL).kind == "timeout"
    reset = classify_exception(httpx.ReadError(str(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"))), URL)
    assert (reset.phase, reset.kind, reset.go_error) == ("http", "reset", "read: connection reset by peer")


def test_status_failures_use_the_registry_error_code() -> None:
    """A JSON errcode body gives the code and Docker's lowercase wording; Go's bare 400 is HTTP-to-HTTPS."""
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}).encode()
    f = status_failure(404, URL, body, phase="manifest")
    assert (f.kind, f.error_code, f.go_error) == ("not-found", "MANIFEST_UNKNOWN", "manifest unknown: manifest unknown")
    assert status_failure(400, URL, b"", headers=httpx.Headers()).kind == "https-to-http"
    assert status_failure(500, URL, b"<html>oops</html>").details["body"] == "<html>oops</html>"


def test_runtime_wording_per_flavor() -> None:
    """Docker quotes the last error as 'Error response from daemon', containerd as a resolve failure."""
    refused = Failure("connect", "refused", "x", "dial tcp 1.2.3.4:443: connect: connection refused", url=URL)
    assert runtime_error("docker", refused, "r").startswith('Error response from daemon: Get "')
    assert runtime_error("containerd", refused, "r").startswith('failed to resolve reference "r": failed to do request')
    assert runtime_error("containers-image", refused, "r").startswith("pinging container registry reg.example:5000")


def test_display_url_hides_query_and_userinfo() -> None:
    """Pre-signed query strings and URL credentials never reach a report."""
    assert display_url("https://u:pw@cdn.example/blob?X-Amz-Signature=abc") == "https://***@cdn.example/blob"


# -- timings ----------------------------------------------------------------------------------
def _hop(dns: float | None, connect: float | None, tls: float | None, ttfb: float, transfer: float) -> Hop:
    total = (dns or 0) + (connect or 0) + (tls or 0) + ttfb + transfer
    return Hop("GET", "u", "h", 200, PhaseTimings(dns, connect, tls, ttfb, transfer, total, reused=connect is None))


def test_sum_timings_charges_gaps_to_waiting() -> None:
    """Phases over several hops add up to the wall total; the time between hops is waiting (ttfb)."""
    t = sum_timings([_hop(1, 2, 3, 4, 5), _hop(None, None, None, 2, 10)], started=0.0, ended=0.040)
    assert (t.dns, t.connect, t.tls, t.transfer) == (1, 2, 3, 15)
    assert t.total == pytest.approx(40.0) and t.ttfb == pytest.approx(19.0)
    assert t.dns + t.connect + t.tls + t.ttfb + t.transfer == pytest.approx(t.total)
    assert not t.reused


def test_sum_timings_never_negative() -> None:
    """Clock granularity cannot make waiting negative: phases are scaled into the wall time."""
    t = sum_timings([_hop(1, 1, 1, 1, 6)], started=0.0, ended=0.005)
    assert t.ttfb >= 0 and (t.dns + t.connect + t.tls + t.ttfb + t.transfer) == pytest.approx(5.0)


# -- fallback rules and settings --------------------------------------------------------------
def _ep(role: str) -> Endpoint:
    return Endpoint("https://r/v2", "r", role, "s", "lab/app")


def test_docker_fallback_rules() -> None:
    """Docker moves on after transport errors anywhere, after registry errors only from mirrors, never after schema 1."""
    errcode = Failure("manifest", "unauthorized", "x", status=401, error_code="UNAUTHORIZED")
    transport = Failure("tls", "unknown-authority", "x")
    assert DOCKER.moves_on(errcode, _ep("mirror")) and not DOCKER.moves_on(errcode, _ep("upstream"))
    assert DOCKER.moves_on(transport, _ep("upstream"))
    assert not DOCKER.moves_on(Failure("manifest", "schema1", "x"), _ep("mirror"))
    assert DOCKER.moves_on(Failure("manifest", "status", "x", status=503), _ep("upstream"))
    assert DOCKER.moves_on(Failure("manifest", "not-found", "x", status=404), _ep("upstream"))  # no errcode body
    assert not DOCKER.moves_on(Failure("manifest", "rate-limited", "x", status=429), _ep("upstream"))
    assert CONTAINERD.moves_on(errcode, _ep("upstream")) and CONTAINERS_IMAGE.moves_on(errcode, _ep("upstream"))


def test_flavor_follows_runtime_and_docker_store() -> None:
    """The Docker containerd image store pulls like containerd; CRI-O like containers/image."""
    assert flavor_for(Route("docker", "i", (), mode="docker classic store (graphdriver)")).name == "docker"
    assert flavor_for(Route("docker", "i", (), mode="docker containerd image store")).name == "containerd"
    assert flavor_for(Route("k3s", "i", ())).name == "containerd"
    assert flavor_for(Route("crio", "i", ())).name == "containers-image"


def test_concurrency_sources_in_order() -> None:
    """The argument wins, then --concurrency, then the runtime's setting (with its source), then 3."""
    view = RuntimeView("containerd", [], summary={"max_concurrent_downloads": 7,
                                                  "max_concurrent_downloads_source": "/etc/containerd/config.toml:4"})
    assert concurrency_for(view, 2, 5) == (2, "argument")
    assert concurrency_for(view, None, 5) == (5, "--concurrency")
    assert concurrency_for(view, None, None) == (7, "/etc/containerd/config.toml:4")
    assert concurrency_for(None, None, None) == (3, "default (3)")


def test_transient_failures_and_rate_limit_headers() -> None:
    """5xx and resets are retried, digest mismatches and 404/429 are not; remaining 0 is exhausted."""
    assert is_transient(Failure("blob", "status", "x", status=503))
    assert is_transient(Failure("http", "reset", "x"))
    assert not is_transient(Failure("blob", "digest-mismatch", "x"))
    assert not is_transient(Failure("blob", "rate-limited", "x", status=429))
    assert ratelimit_exhausted({"remaining": "0;w=21600"}) and not ratelimit_exhausted({"remaining": "99;w=21600"})


def _ctx(route: Route, platform: str | None = None) -> ProbeContext:
    """A probe context that is never used for network access (no endpoint is tried)."""
    resolver = Resolver(ResolverConfig((("127.0.0.1", 53),)), 1.0)
    return ProbeContext(Host(root=Path("/nonexistent")), CheckOptions(platform=platform), [route], [], resolver,
                        Timeouts(1, 1))


def test_route_without_endpoints_is_pull_failed() -> None:
    """A route with nothing to try (a blocked registry) gives a failed pull and pull.failed, no traceback."""
    route = Route("crio", "reg.example/lab/app:latest", (), notes=("blocked",))
    report, findings = asyncio.run(run_test_pull(_ctx(route), route_ref(route), "crio"))
    assert not report["ok"] and report["manifest"]["digest"] is None
    assert [f.code for f in findings] == ["pull.failed"]


def test_invalid_platform_is_a_finding_not_a_traceback() -> None:
    """An invalid --platform reaching the pull (from `regtui check`) fails it with pull.failed naming the option."""
    route = Route("containerd", "reg.example/lab/app:latest", (_ep("upstream"),))
    report, findings = asyncio.run(run_test_pull(_ctx(route, "a/b/c/d"), route_ref(route), "containerd"))
    assert not report["ok"] and report["endpoints"][0]["status"] == "untested"
    failed = [f for f in findings if f.code == "pull.failed"]
    assert failed and failed[0].evidence["phase"] == "options"


def route_ref(route: Route) -> Reference:
    """The reference of a route."""
    return parse(route.image)
