"""The diagnosis on in-memory findings, routes and pulls: verdicts, causes, chains and the consistency rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from regtui import diagnosis
from regtui.engine import build_report, plan
from regtui.findings import assign_ids, finding, fix
from regtui.host import Host
from regtui.model import Endpoint, Finding, Route, Verdict
from regtui.options import CheckOptions
from regtui.registry.errors import classify_exception
from regtui.report import Report, render

SCHEMA = json.loads((Path(__file__).parent.parent / "regtui/report/schema.json").read_text())
BUSY = Path(__file__).parent / "data" / "busy-root"
IMAGE = "registry.lab.test:5004/lab/small:1"
UP = "https://registry.lab.test:5004/v2"
MIRROR = "https://mirror.lab.test:5005/v2"


def _route(rt: str = "containerd", *urls: str, statuses: tuple[str, ...] = ()) -> Route:
    urls = urls or (UP,)
    eps = []
    for i, url in enumerate(urls):
        host = url.split("//", 1)[1].split("/", 1)[0]
        eps.append(Endpoint(url, host, "upstream" if i == len(urls) - 1 else "mirror", "default", "lab/small",
                            status=statuses[i] if i < len(statuses) else "untested"))
    return Route(rt, IMAGE, tuple(eps))


def _row(url: str, status: str, **kw: Any) -> dict[str, Any]:
    host = url.split("//", 1)[1].split("/", 1)[0]
    return {"url": url, "host": host, "role": kw.pop("role", "upstream"), "status": status, **kw}


def _pull(rt: str, ok: bool, rows: list[dict[str, Any]], error: dict[str, Any] | None = None) -> dict[str, Any]:
    served = next((r["url"] for r in rows if r["status"] == "ok"), None)
    return {"image": IMAGE, "runtime": rt, "ok": ok, "endpoint": served, "endpoints": rows, "error": error}


def _tls_finding(rt: str = "containerd", code: str = "tls.unknown-authority", **ev: Any) -> Finding:
    return finding(code, "registry.lab.test:5004", f"{rt} does not trust registry.lab.test:5004", "",
                   evidence={"endpoints": [UP], "runtimes": [rt], **ev}, runtime=rt,
                   fix=fix(code, "registry.lab.test:5004", "trust the lab CA", kind="edit", detail=rt))


def _pull_failed(rt: str = "containerd", phase: str = "tls") -> Finding:
    return finding("pull.failed", IMAGE, f"{rt}: the test pull of {IMAGE} failed ({phase})", "",
                   evidence={"image": IMAGE, "endpoint": UP + "/lab/small/manifests/1", "phase": phase}, runtime=rt,
                   fix=fix("pull.failed", IMAGE, "fix the cause named in the evidence", detail=rt))


def _one(findings: list[Finding], routes: list[Route], pull: dict[str, Any] | None, **kw: Any) -> Verdict:
    (v,) = diagnosis.diagnose(assign_ids(findings), routes, pull, **kw)
    return v


def test_clean_pull_is_ok_with_no_cause() -> None:
    """A pull served by the only endpoint, with no finding against it, is ok with no cause and no fix."""
    v = _one([], [_route(statuses=("ok",))], _pull("containerd", True, [_row(UP, "ok")]))
    assert (v.status, v.cause, v.fix, v.chain) == ("ok", None, None, ())
    assert v.summary == f"containerd pulls {IMAGE} from registry.lab.test:5004."


def test_tls_failure_names_the_certificate_finding_and_its_fix() -> None:
    """pull.failed <- tls.unknown-authority: fails, cause the TLS finding at the endpoint, fix its own, chain symptom first."""
    findings = assign_ids([_pull_failed(), _tls_finding()])
    pull = _pull("containerd", False, [_row(UP, "failed", phase="tls", kind="unknown-authority")],
                 {"phase": "tls", "kind": "unknown-authority", "url": UP + "/lab/small/manifests/1"})
    (v,) = diagnosis.diagnose(findings, [_route(statuses=("failed",))], pull)
    assert v.status == "fails"
    assert v.cause is not None and (v.cause.code, v.cause.endpoint, v.cause.phase) == ("tls.unknown-authority", UP, "tls")
    assert v.chain == (findings[0].id, findings[1].id)
    assert v.fix == findings[1].fix.id  # type: ignore[union-attr]
    assert "registry.lab.test:5004, TLS handshake" in v.summary and "fix the cause" not in (v.manual or "")
    assert diagnosis.independent(findings, [v]) == []


def test_expired_certificate_summary_says_when() -> None:
    """tls.expired: the summary is one sentence with the expiry date, the endpoint and the phase."""
    findings = [_pull_failed(), _tls_finding(code="tls.expired", not_after="2026-12-02T00:00:00Z")]
    pull = _pull("containerd", False, [_row(UP, "failed", phase="tls", kind="expired")], {"phase": "tls", "kind": "expired", "url": UP})
    v = _one(findings, [_route()], pull)
    assert v.summary == (f"containerd cannot pull {IMAGE}: the registry's certificate expired on 2026-12-02 "
                         "(registry.lab.test:5004, TLS handshake).")


def test_clock_skew_is_the_cause_of_a_not_yet_valid_certificate() -> None:
    """tls.not-yet-valid with an erroring clock.skew: the clock is the cause, the certificate finding sits in the chain."""
    skew = finding("clock.skew", "clock", "the clock is 2 days behind", evidence={"skew_seconds": -172800.0})
    tlsf = _tls_finding(code="tls.not-yet-valid")
    findings = assign_ids([_pull_failed(), tlsf, skew])
    pull = _pull("containerd", False, [_row(UP, "failed", phase="tls", kind="not-yet-valid")], {"phase": "tls", "url": UP})
    (v,) = diagnosis.diagnose(findings, [_route()], pull)
    assert v.cause is not None and v.cause.code == "clock.skew"
    assert v.chain == (findings[0].id, findings[1].id, findings[2].id)
    assert "clock" in v.summary


def _clock_case(kind: str, skew_seconds: float, **ev: Any) -> tuple[list[Finding], Verdict]:
    """A failed pull on an expired / not-yet-valid certificate with an erroring clock.skew of ``skew_seconds``."""
    skew = finding("clock.skew", "clock", "the clock is off", evidence={"skew_seconds": skew_seconds},
                   fix=fix("clock.skew", "clock", "step the clock", kind="command"))
    findings = assign_ids([_pull_failed(), _tls_finding(code=f"tls.{kind}", **ev), skew])
    pull = _pull("containerd", False, [_row(UP, "failed", phase="tls", kind=kind)], {"phase": "tls", "url": UP})
    (v,) = diagnosis.diagnose(findings, [_route()], pull)
    return findings, v


def test_clock_behind_names_the_clock_and_its_direction() -> None:
    """A clock 600 s behind the certificate's start, as the certs probe says: cause clock.skew, its fix, the direction in words."""
    findings, v = _clock_case("not-yet-valid", -600.0, explained_by_clock=True)
    assert v.cause is not None and v.cause.code == "clock.skew" and v.fix == findings[2].fix.id  # type: ignore[union-attr]
    assert "this host's clock is 600 s behind, so the certificate seems not yet valid" in v.summary


def test_clock_skew_that_does_not_explain_the_certificate_is_not_its_cause() -> None:
    """The certs probe says the skew does not explain it, or the skew points the other way: the certificate is the cause."""
    _, said_no = _clock_case("not-yet-valid", -600.0, explained_by_clock=False)
    _, wrong_way = _clock_case("expired", -600.0)
    _, ahead = _clock_case("expired", 600.0)
    assert said_no.cause is not None and said_no.cause.code == "tls.not-yet-valid" and "clock" not in said_no.summary
    assert wrong_way.cause is not None and wrong_way.cause.code == "tls.expired"
    assert ahead.cause is not None and ahead.cause.code == "clock.skew" and "600 s ahead" in ahead.summary


def test_refused_connect_without_a_deeper_finding_says_what_to_do() -> None:
    """A refused connect to the registry: the summary says the port refuses, the step is concrete, not "fix the cause"."""
    findings = [_pull_failed(phase="connect")]
    pull = _pull("containerd", False, [_row(UP, "failed", phase="connect", kind="refused")],
                 {"phase": "connect", "kind": "refused", "url": UP})
    v = _one(findings, [_route()], pull)
    assert v.status == "fails" and v.cause is not None and (v.cause.code, v.cause.phase) == ("pull.failed", "connect")
    assert "registry.lab.test:5004 refuses connections" in v.summary
    assert v.fix is None and v.manual is not None and v.manual.startswith("start the registry at registry.lab.test:5004")


def test_dead_proxy_is_named_not_the_registry() -> None:
    """A failure in the proxy phase has the proxy finding as its cause (Docker's reset on the http retry ignored)."""
    proxy = finding("proxy.unreachable", "127.0.0.1:9", "proxy http://127.0.0.1:9 is unreachable",
                    evidence={"proxy": "http://127.0.0.1:9", "runtimes": ["docker"], "endpoints": [UP]}, runtime="docker")
    findings = [_pull_failed("docker", "connect"), proxy]
    rows = [_row(UP, "failed", phase="proxy", kind="refused"),
            _row("http://registry.lab.test:5004/v2", "failed", phase="connect", kind="reset")]
    pull = _pull("docker", False, rows, {"phase": "connect", "kind": "reset", "url": "http://registry.lab.test:5004/v2/"})
    v = _one(findings, [_route("docker", UP, "http://registry.lab.test:5004/v2")], pull)
    assert v.status == "fails" and v.cause is not None
    assert (v.cause.code, v.cause.endpoint, v.cause.phase) == ("proxy.unreachable", UP, "proxy")
    assert "proxy http://127.0.0.1:9" in v.summary
    named = diagnosis.name_components(assign_ids(findings), [v])
    assert named[0].detail.startswith("The failure starts at the proxy http://127.0.0.1:9 (proxy.unreachable)")
    assert named[0].title.endswith("(proxy)") and named[1] == assign_ids(findings)[1]
    assert named[0].fix is not None and "proxy.unreachable" in named[0].fix.summary
    assert "fix the cause named" not in named[0].fix.summary


def test_proxy_failures_name_the_proxy_in_the_failure_itself() -> None:
    """classify_exception: a refused connection through a proxy names the proxy's address, not the registry."""
    import httpx

    exc = httpx.ConnectError("[Errno 111] Connection refused")
    f = classify_exception(exc, "https://registry.lab.test:5004/v2/", proxy="http://127.0.0.1:9")
    assert f.phase == "proxy" and "127.0.0.1:9" in f.message and "registry.lab.test" not in f.message
    assert f.go_error == "proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection refused"
    assert f.details["proxy"] == "http://127.0.0.1:9"


def test_dead_mirror_before_a_good_upstream_is_degraded() -> None:
    """A timed-out mirror before an upstream that serves: degraded, the mirror's finding is the cause."""
    dead = finding("mirror.unreachable", "mirror.lab.test:5005", "containerd: mirror mirror.lab.test:5005 is unreachable (tls)",
                   evidence={"endpoint": MIRROR, "phase": "tls"}, runtime="containerd",
                   fix=fix("mirror.unreachable", "mirror.lab.test:5005", "remove it", kind="edit", detail="containerd"))
    rows = [_row(MIRROR, "failed", role="mirror", phase="tls", kind="timeout", timed_out=True), _row(UP, "ok")]
    v = _one([dead], [_route("containerd", MIRROR, UP)], _pull("containerd", True, rows))
    assert v.status == "degraded" and v.cause is not None
    assert (v.cause.code, v.cause.endpoint) == ("mirror.unreachable", MIRROR)
    assert v.endpoint == UP and v.fix == dead.fix.id  # type: ignore[union-attr]


def test_stale_mirror_that_serves_is_degraded_and_costliest() -> None:
    """A stale mirror that serves the pull outranks a slower mirror: degraded, cause mirror.stale."""
    stale = finding("mirror.stale", "mirror.lab.test:5005", "containerd: mirror serves another image",
                    evidence={"endpoint": MIRROR}, runtime="containerd")
    slow = finding("mirror.slower-than-upstream", "mirror.lab.test:5005", "slower", evidence={"endpoint": MIRROR},
                   runtime="containerd")
    rows = [_row(MIRROR, "ok", role="mirror"), _row(UP, "untested")]
    v = _one([slow, stale], [_route("containerd", MIRROR, UP)], _pull("containerd", True, rows))
    assert v.status == "degraded" and v.cause is not None and v.cause.code == "mirror.stale"


def test_missing_credentials_fail_with_auth_missing() -> None:
    """401 at the only endpoint and auth.missing for it: fails, cause auth.missing, no fix offered (a manual one)."""
    missing = finding("auth.missing", "registry.lab.test:5004", "crio: registry.lab.test:5004 requires credentials",
                      evidence={"endpoint": UP}, runtime="crio",
                      fix=fix("auth.missing", "registry.lab.test:5004", "log in", detail="crio"))
    pull = _pull("crio", False, [_row(UP, "failed", phase="auth", http_status=401)], {"phase": "auth", "status": 401, "url": UP})
    v = _one([_pull_failed("crio", "auth"), missing], [_route("crio")], pull)
    assert v.status == "fails" and v.cause is not None and v.cause.code == "auth.missing"
    assert v.fix is None and v.manual == "log in"


def test_unplannable_fix_is_not_offered() -> None:
    """A cause whose fix the fix engine would refuse: fix null, the manual step says why."""
    findings = [_pull_failed(), _tls_finding()]
    pull = _pull("containerd", False, [_row(UP, "failed", phase="tls", kind="unknown-authority")], {"phase": "tls", "url": UP})
    v = _one(findings, [_route()], pull, fix_check=lambda f: "insecure-registries is not a list")
    assert v.fix is None and v.manual is not None and "insecure-registries is not a list" in v.manual


def test_not_pulled_runtime_is_predicted_from_probe_rows() -> None:
    """A runtime the test pull did not imitate is judged from the mirrors probe's rows, saying what was not tested."""
    probes = {"panels": {"mirrors": {"data": {"routes": [
        {"runtime": "crio", "image": IMAGE, "endpoints": [_row(UP, "ok")]}]}}}}
    v = _one([], [_route("crio")], _pull("containerd", True, [_row(UP, "ok")]), probes=probes)
    assert v.status == "ok" and v.untested == ("layer downloads: the test pull ran as containerd",)


def test_no_pull_with_working_endpoints_is_unknown_and_every_failing_endpoint_fails() -> None:
    """--no-pull: endpoints that answer give unknown (layers untested); endpoints that all fail give fails."""
    ok = {"panels": {"mirrors": {"data": {"routes": [{"runtime": "crio", "image": IMAGE, "endpoints": [_row(UP, "ok")]}]}}}}
    v = _one([], [_route("crio")], None, no_pull=True, probes=ok)
    assert v.status == "unknown" and "--no-pull" in v.untested[0]
    bad = {"panels": {"mirrors": {"data": {"routes": [
        {"runtime": "crio", "image": IMAGE, "endpoints": [_row(UP, "failed", phase="tls", kind="unknown-authority")]}]}}}}
    v = _one([_tls_finding("crio")], [_route("crio")], None, no_pull=True, probes=bad)
    assert v.status == "fails" and v.cause is not None and v.cause.code == "tls.unknown-authority"


def test_failure_no_finding_explains_gets_a_would_fail_cause_when_no_pull_ran() -> None:
    """--no-pull, every endpoint times out and nothing else explains it: the cause is a pull.would-fail finding
    naming the endpoint the runtime reports and its phase, and it is handed back for the report to list."""
    rows = {"panels": {"mirrors": {"data": {"routes": [{"runtime": "containerd", "image": IMAGE, "endpoints": [
        _row(MIRROR, "failed", role="mirror", phase="manifest", kind="deadline"),
        _row(UP, "failed", phase="manifest", kind="deadline", error="no whole body within 3 s")]}]}}}}
    created: list[Finding] = []
    v = _one([], [_route("containerd", MIRROR, UP)], None, no_pull=True, probes=rows, created=created)
    assert v.status == "fails" and v.cause is not None
    assert (v.cause.code, v.cause.endpoint, v.cause.phase) == ("pull.would-fail", UP, "manifest")
    assert [f.id for f in created] == [v.cause.finding] and created[0].severity == "error"
    assert "no whole body within 3 s" in created[0].detail


def test_offline_is_unknown_unless_the_configuration_stops_the_runtime() -> None:
    """Offline: unknown with 'offline' untested; a daemon that does not start is fails with the config finding."""
    v = _one([], [_route("docker")], None, mode="offline")
    assert v.status == "unknown" and "offline" in v.untested[0]
    stop = finding("config.flag-conflict", "/etc/docker/daemon.json", "/etc/docker/daemon.json:8: 'x' set twice",
                   "dockerd refuses to start", evidence={"file": "/etc/docker/daemon.json", "line": 8}, runtime="docker")
    v = _one([stop], [_route("docker")], None, mode="offline", summaries={"docker": {"starts": False}})
    assert v.status == "fails" and v.cause is not None and (v.cause.code, v.cause.phase) == ("config.flag-conflict", "config")
    assert "/etc/docker/daemon.json:8" in v.summary


def test_independent_errors_are_listed() -> None:
    """An error finding on no verdict's chain is an independent problem; chained ones are not."""
    other = finding("auth.malformed", "/root/.docker/config.json", "bad auth", runtime="docker")
    findings = assign_ids([_pull_failed(), _tls_finding(), other])
    pull = _pull("containerd", False, [_row(UP, "failed", phase="tls", kind="unknown-authority")], {"phase": "tls", "url": UP})
    verdicts = diagnosis.diagnose(findings, [_route()], pull)
    assert diagnosis.independent(findings, verdicts) == [findings[2].id]


def test_served_endpoint_carries_no_error_and_no_failed_status() -> None:
    """Rule: the endpoint that served the test pull is not failed in the route, and its error findings are lowered."""
    tlsf = _tls_finding()
    route = _route(statuses=("failed",))
    probes = {"panels": {"mirrors": {"data": {"routes": [
        {"runtime": "containerd", "image": IMAGE, "endpoints": [_row(UP, "failed", error="x509")]}]}}}}
    findings, routes, probes_out = diagnosis.reconcile([tlsf], [route], _pull("containerd", True, [_row(UP, "ok")]), probes)
    assert findings[0].severity == "warning" and "served by" in findings[0].detail
    assert routes[0].endpoints[0].status == "ok"
    assert probes_out is not None
    assert probes_out["panels"]["mirrors"]["data"]["routes"][0]["endpoints"][0]["status"] == "ok"
    other_rt = _tls_finding("crio")
    kept, _, _ = diagnosis.reconcile([other_rt], [route], _pull("containerd", True, [_row(UP, "ok")]))
    assert kept[0].severity == "error", "another runtime's trust is not contradicted by this pull"


def test_one_endpoint_one_status() -> None:
    """Rule: the same URL listed twice in one route never shows two statuses."""
    route = _route("containerd", UP, UP, statuses=("failed", "ok"))
    _, routes, _ = diagnosis.reconcile([], [route], None)
    assert {ep.status for ep in routes[0].endpoints} == {"ok"}


def test_finding_ids_are_stable_and_unique() -> None:
    """assign_ids: code@subject#runtime, a repeat gets ~2; the same input gives the same ids."""
    a = finding("config.ignored-key", "/etc/docker/daemon.json", "one", runtime="docker")
    b = finding("config.ignored-key", "/etc/docker/daemon.json", "two", runtime="docker")
    ids = [f.id for f in assign_ids([a, b])]
    assert ids == ["config.ignored-key@etc/docker/daemon.json#docker", "config.ignored-key@etc/docker/daemon.json#docker~2"]
    assert ids == [f.id for f in assign_ids([a, b])]


def _busy_report(fmt: str = "json") -> tuple[Report, str]:
    options = CheckOptions(root=str(BUSY), images=(IMAGE,), runtime="all", offline=True)
    report = build_report(plan(options, Host.from_args(BUSY, {})), None)
    return report, render(report, fmt)


def test_busy_root_offline_verdicts_and_schema() -> None:
    """Offline busy root: docker (daemon does not start) fails, k3s unknown; the JSON validates with verdicts first."""
    report, text = _busy_report()
    data = json.loads(text)
    jsonschema.validate(data, SCHEMA)
    status = {v["runtime"]: v["status"] for v in data["verdicts"]}
    assert status["docker"] == "fails" and status["k3s"] == "unknown"
    docker = next(v for v in data["verdicts"] if v["runtime"] == "docker")
    assert docker["cause"]["phase"] == "config" and docker["cause"]["finding"] in {f["id"] for f in data["findings"]}
    ids = {f["id"] for f in data["findings"]}
    for v in data["verdicts"]:
        assert set(v["chain"]) <= ids
    errors = {f["id"] for f in data["findings"] if f["severity"] == "error"}
    assert errors <= {i for v in data["verdicts"] for i in v["chain"]} | set(data["independent_findings"])
    assert report.exit_code == 1


def test_every_format_starts_with_the_verdicts() -> None:
    """Text: the verdict lines right after the header, then errors before warnings; markdown and HTML: verdicts first."""
    _, text = _busy_report("text")
    lines = text.splitlines()
    assert lines[1].startswith("[XX] docker cannot pull")
    assert "fix: regtui fix config.flag-conflict@" in text
    body = text[text.index("FINDINGS"):]
    assert body.index("ERROR") < body.index("WARN ")
    _, md = _busy_report("markdown")
    assert md.index("**FAILS**: docker") < md.index("## Findings")
    _, html = _busy_report("html")
    assert html.index("class='verdict fails'") < html.index("<h2 id=findings>Findings</h2>")


def test_exit_status_follows_a_failing_verdict() -> None:
    """A fails verdict alone (no error finding) makes the exit status 1."""
    r = Report(generated_at="2026-01-01T00:00:00Z", root="/", hostname="h",
               verdicts=[Verdict("docker", IMAGE, "fails", "docker cannot pull")])
    assert r.exit_code == 1
    r.verdicts = [Verdict("docker", IMAGE, "ok", "docker pulls")]
    assert r.exit_code == 0


def test_engine_offers_a_cause_fix_only_when_the_fix_engine_plans_it(monkeypatch: Any) -> None:
    """Busy root: the real planner builds docker's cause fix; a refusing planner turns it into a manual step everywhere."""
    from regtui import engine

    report, _ = _busy_report()
    docker = next(v for v in report.verdicts if v.runtime == "docker")
    assert docker.fix is not None and docker.fix.startswith("config.flag-conflict@")
    monkeypatch.setattr(engine, "_plan_refusal", lambda p, f, probes, baselines: "insecure-registries is not a list")
    report, _ = _busy_report()
    docker = next(v for v in report.verdicts if v.runtime == "docker")
    assert docker.fix is None and docker.manual is not None and "insecure-registries is not a list" in docker.manual
    assert docker.cause is not None
    cause = next(f for f in report.findings if f.id == docker.cause.finding)
    assert cause.fix is not None and cause.fix.kind == "manual" and "by hand: insecure-registries" in cause.fix.summary
