"""An endpoint is more than its URL: probe results, statuses and findings follow ``Endpoint.key``.

containerd's hosts.toml can list one URL twice (``server`` and a ``[host]`` table) with other TLS
inputs; containerd tries each ``[host]`` table in file order, then the root entry with ``server``
(containerd ``core/remotes/docker/config/hosts.go``: ``getSortedHosts``, then the root host; SEMANTICS
§2.3 "Endpoint list order"). A result of one of them says nothing of the other. The real runtime
referee for this is ``tests/test_endpoint_identity_lab.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from regtui import diagnosis
from regtui.engine import _with_status
from regtui.findings import assign_ids, finding, fix
from regtui.model import Endpoint, Finding, Route, TLSInputs
from regtui.net.proxy import from_environ
from regtui.runtimes.endpoints import endpoint

IMAGE = "reg.lab.test:5001/lab/app:1"
URL = "https://reg.lab.test:5001/v2"
HOST = "reg.lab.test:5001"
HOSTS_TOML = "/etc/containerd/certs.d/reg.lab.test:5001/hosts.toml"
CA = "/etc/containerd/certs.d/reg.lab.test:5001/ca.crt"
SECRET = "s3cret-proxy-pass"


def _ep(source: str, *, ca: tuple[str, ...] = (), proxy_env: Any = None, credentials: str | None = None,
        caps: tuple[str, ...] = ("pull", "resolve")) -> Endpoint:
    return endpoint(URL, HOST, "upstream", source, "lab/app", proxy_env or from_environ({}), capabilities=caps,
                    tls=TLSInputs(ca_files=ca), credentials=credentials)


def _host_entry_then_server() -> Route:
    """``[host."https://reg"]`` with ``ca`` (line 3), then ``server = "https://reg"`` without (line 1)."""
    return Route("containerd", IMAGE, (_ep(f"{HOSTS_TOML}:3", ca=(CA,)),
                                       _ep(f"{HOSTS_TOML}:1", caps=("pull", "resolve", "push"))))


def _row(ep: Endpoint, status: str, **kw: Any) -> dict[str, Any]:
    return {"url": ep.url, "key": ep.key, "host": ep.host, "role": ep.role, "source": ep.source, "status": status, **kw}


def _pull(rows: list[dict[str, Any]], ok: bool = True) -> dict[str, Any]:
    served = next((r["url"] for r in rows if r["status"] == "ok"), None)
    return {"image": IMAGE, "runtime": "containerd", "ok": ok, "endpoint": served, "endpoints": rows, "error": None}


def _mirror_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"panels": {"mirrors": {"data": {"routes": [{"runtime": "containerd", "image": IMAGE, "endpoints": rows}]}}}}


def _untrusted(ep: Endpoint) -> Finding:
    """The certs probe's finding for one endpoint (its identity in ``endpoint_keys``), as an error."""
    return finding("tls.unknown-authority", HOST, f"containerd does not trust {HOST}", "",
                   evidence={"endpoints": [ep.url], "endpoint_keys": [ep.key], "runtimes": ["containerd"]},
                   runtime="containerd", severity="error",
                   fix=fix("tls.unknown-authority", HOST, "trust the lab CA", kind="edit", detail="containerd"))


def test_same_url_with_other_inputs_is_another_endpoint() -> None:
    """TLS inputs, proxy or credentials make another key; where it is written or its capabilities do not."""
    base = _ep(f"{HOSTS_TOML}:3", ca=(CA,))
    assert _ep(f"{HOSTS_TOML}:1", ca=(CA,), caps=("pull", "resolve", "push")).key == base.key
    assert _ep(f"{HOSTS_TOML}:1").key != base.key
    proxied = _ep(f"{HOSTS_TOML}:3", ca=(CA,), proxy_env=from_environ({"HTTPS_PROXY": f"http://u:{SECRET}@127.0.0.9:3128"}))
    assert proxied.key != base.key
    assert _ep(f"{HOSTS_TOML}:3", ca=(CA,), credentials="/etc/containerd/config.toml:12 (auth)").key != base.key
    skip = replace(base, tls=replace(base.tls, verify=False))
    assert skip.key != base.key
    assert base.to_dict()["key"] == base.key


def test_the_key_and_label_never_show_a_secret() -> None:
    """A proxy password is neither in the printed key nor in the endpoint's label or JSON."""
    ep = _ep(f"{HOSTS_TOML}:3", proxy_env=from_environ({"HTTPS_PROXY": f"http://u:{SECRET}@127.0.0.9:3128"}))
    assert ep.proxy and SECRET not in ep.proxy
    assert SECRET not in ep.key and SECRET not in ep.label() and SECRET not in str(ep.to_dict())
    assert "127.0.0.9:3128" in ep.label()


def test_the_server_fallback_failing_tls_is_information_and_the_verdict_ok() -> None:
    """The [host] entry with the CA served the test pull: the server fallback's TLS failure is info, verdict ok."""
    route = _host_entry_then_server()
    host_entry, server = route.endpoints
    pull = _pull([_row(host_entry, "ok"), _row(server, "untested")])
    probes = _mirror_rows([_row(host_entry, "ok"), _row(server, "failed", phase="tls", error="x509")])
    routes = _with_status([route], {("containerd", host_entry.key): ("ok", ""), ("containerd", server.key): ("failed", "x509")})
    findings, routes, probes = diagnosis.reconcile([_untrusted(server)], routes, pull, probes)
    (f,) = findings
    assert f.severity == "info" and f.evidence["fallback_only"] is True
    assert f.evidence["served_first_by_key"] == host_entry.key and "Not an error" in f.detail
    assert [ep.status for ep in routes[0].endpoints] == ["ok", "failed"], "one URL, two endpoints, two statuses"
    (v,) = diagnosis.diagnose(assign_ids(findings), routes, pull, probes=probes)
    assert v.status == "ok" and v.cause is None and v.endpoint == URL and v.endpoint_key == host_entry.key


def test_without_a_test_pull_the_mirrors_probe_decides_who_serves_first() -> None:
    """--no-pull: the probe resolved the image on the [host] entry, so the fallback's failure is info too."""
    route = _host_entry_then_server()
    host_entry, server = route.endpoints
    probes = _mirror_rows([_row(host_entry, "ok"), _row(server, "failed", phase="tls")])
    findings, _, _ = diagnosis.reconcile([_untrusted(server)], [route], None, probes)
    assert findings[0].severity == "info"


def test_the_endpoint_tried_first_failing_stays_an_error_and_costs() -> None:
    """Reversed: the entry without the CA is tried first; its failure costs every pull (degraded, not ok)."""
    first, second = _host_entry_then_server().endpoints[::-1]
    route = Route("containerd", IMAGE, (first, second))
    pull = _pull([_row(first, "failed", phase="tls", kind="unknown-authority"), _row(second, "ok")])
    findings, routes, _ = diagnosis.reconcile([_untrusted(first)], [route], pull)
    assert findings[0].severity == "error", "served by the other endpoint of the same URL: no contradiction"
    assert [ep.status for ep in routes[0].endpoints] == ["failed", "ok"]
    (v,) = diagnosis.diagnose(assign_ids(findings), routes, pull)
    assert v.status == "degraded" and v.cause is not None and v.cause.code == "tls.unknown-authority"
    assert v.cause.endpoint_key == first.key and v.endpoint_key == second.key, "the verdict names the serving entry"


def test_same_url_through_another_proxy_keeps_its_own_result() -> None:
    """Two entries of one URL, one through a dead proxy: its failure is its own, the direct one serves."""
    via = _ep(f"{HOSTS_TOML}:3", proxy_env=from_environ({"HTTPS_PROXY": "http://127.0.0.9:3128"}))
    direct = _ep(f"{HOSTS_TOML}:1")
    route = Route("containerd", IMAGE, (via, direct))
    dead = finding("mirror.unreachable", HOST, f"containerd: {HOST} is unreachable (proxy)", "",
                   evidence={"endpoint": URL, "endpoint_key": via.key, "phase": "proxy"}, runtime="containerd",
                   severity="error")
    pull = _pull([_row(via, "failed", phase="proxy", kind="refused"), _row(direct, "ok")])
    findings, routes, _ = diagnosis.reconcile([dead], [route], pull)
    assert findings[0].severity == "error" and "served_test_pull" not in findings[0].evidence
    assert [ep.status for ep in routes[0].endpoints] == ["failed", "ok"]
    (v,) = diagnosis.diagnose(assign_ids(findings), routes, pull)
    assert v.status == "degraded" and v.cause is not None and v.cause.code == "mirror.unreachable"


def test_same_url_with_other_credentials_keeps_its_own_result() -> None:
    """Two entries of one URL with other credential sources: auth.missing on one is not lowered by the other's pull."""
    anonymous = _ep(f"{HOSTS_TOML}:3")
    logged_in = _ep(f"{HOSTS_TOML}:1", credentials="/etc/containerd/config.toml:9 (configs.auth)")
    route = Route("containerd", IMAGE, (anonymous, logged_in))
    missing = finding("auth.missing", HOST, f"containerd: {HOST} requires credentials and none apply", "",
                      evidence={"endpoint": URL, "endpoint_key": anonymous.key}, runtime="containerd", severity="error")
    pull = _pull([_row(anonymous, "failed", phase="auth", http_status=401), _row(logged_in, "ok")])
    probes = _mirror_rows([_row(anonymous, "failed", phase="auth", http_status=401), _row(logged_in, "ok")])
    routes = _with_status([route], {("containerd", anonymous.key): ("failed", "401"), ("containerd", logged_in.key): ("ok", "")})
    findings, routes, probes = diagnosis.reconcile([missing], routes, pull, probes)
    assert findings[0].severity == "error"
    assert [ep.status for ep in routes[0].endpoints] == ["failed", "ok"]
    assert [r["status"] for r in probes["panels"]["mirrors"]["data"]["routes"][0]["endpoints"]] == ["failed", "ok"]


def test_the_verdict_tree_ends_at_the_line_of_the_endpoint_that_failed() -> None:
    """The workbench's "configured at" line is the failing endpoint's (hosts.toml:1), not the first of its URL."""
    from regtui.tui.verdicts import verdict_views

    first, second = _host_entry_then_server().endpoints[::-1]
    route = Route("containerd", IMAGE, (second, first))  # [host] with the CA listed first, failing one second
    pull = _pull([_row(second, "failed", phase="tls", kind="unknown-authority"), _row(first, "failed", phase="tls",
                                                                                         kind="unknown-authority")],
                 ok=False)
    pull["error"] = {"url": URL, "key": first.key, "phase": "tls", "kind": "unknown-authority"}
    findings = assign_ids([_untrusted(first)])
    (v,) = diagnosis.diagnose(findings, [route], pull)
    assert v.status == "fails" and v.cause is not None and v.cause.endpoint_key == first.key
    data = {"routes": [route.to_dict()], "findings": [f.to_dict() for f in findings], "verdicts": [v.to_dict()]}
    (view,) = verdict_views(data)
    assert (view.setting_what, view.setting) == ("configured at", f"{HOSTS_TOML}:1")
