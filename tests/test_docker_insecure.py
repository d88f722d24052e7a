"""dockerd's secure/insecure decision by resolved address (moby ``registry/config.go isSecureIndex``).

``isCIDRMatch`` resolves the registry's host name with ``net.LookupIP`` and treats the registry as
insecure when any address falls in an ``insecure-registries`` CIDR or in 127.0.0.0/8 (and ::1/128
from Engine 28); a failed lookup matches nothing. Offline the route says the answer depends on
resolution; online the answer is learnt first (``RuntimeView.resolved``) and the route planned again.
"""

from __future__ import annotations

import json
from pathlib import Path

from regtui.host import Host
from regtui.options import CheckOptions
from regtui.refs import parse
from regtui.runtimes import docker
from regtui.runtimes.view import RuntimeView
from rootfs import write_tree

DJ = "/etc/docker/daemon.json"
DPKG = "/var/lib/dpkg/status"
IMAGE = "nexus.corp.test:5000/team/app:1"


def _dpkg(version: str) -> str:
    return f"Package: docker.io\nStatus: install ok installed\nVersion: {version}\n"


def _view(tmp_path: Path, insecure: list[str], version: str = "20.10.24+dfsg1-1") -> RuntimeView:
    host = Host(root=write_tree(tmp_path, {DPKG: _dpkg(version), DJ: json.dumps({"insecure-registries": insecure}),
                                           "/etc/hosts": "127.0.0.1 localhost\n"}))
    return docker.load(host, CheckOptions(docker_store="classic"))


def test_offline_route_says_the_answer_depends_on_resolution(tmp_path: Path) -> None:
    """Offline, a name that only DNS can place gets a verifying endpoint and a note naming the CIDRs that would flip it."""
    view = _view(tmp_path, ["10.0.0.0/8"])
    route, _ = view.plan(parse(IMAGE))
    (https,) = route.endpoints
    assert https.tls.verify and https.url == "https://nexus.corp.test:5000/v2"
    (note,) = [n for n in route.notes if "depends on resolution" in n]
    assert "10.0.0.0/8 (insecure-registries)" in note and "127.0.0.0/8" in note
    assert view.resolves is not None and view.resolves(parse(IMAGE)) == ["nexus.corp.test"]


def test_name_resolving_into_a_user_cidr_is_insecure_with_http_fallback(tmp_path: Path) -> None:
    """A resolved address in a user-written CIDR: https without verification (citing the entry), then plain http."""
    view = _view(tmp_path, ["10.0.0.0/8"])
    view.resolved["nexus.corp.test"] = (("10.1.2.3",), " via 127.0.0.1:53, system resolver")
    route, findings = view.plan(parse(IMAGE))
    https, http = route.endpoints
    assert not https.tls.verify and https.http_fallback
    assert "10.0.0.0/8" in https.tls.verify_reason and f"{DJ}:1" in https.tls.verify_reason
    assert "nexus.corp.test resolves to 10.1.2.3" in https.tls.verify_reason
    assert http.url == "http://nexus.corp.test:5000/v2"
    assert not any("depends on resolution" in n for n in route.notes)
    assert view.resolves is not None and view.resolves(parse(IMAGE)) == []


def test_name_resolving_outside_every_cidr_or_not_at_all_stays_secure(tmp_path: Path) -> None:
    """An address outside the CIDRs, or a failed lookup (isCIDRMatch: no match), keeps verification on and says why."""
    view = _view(tmp_path, ["10.0.0.0/8"])
    view.resolved["nexus.corp.test"] = (("192.168.7.7",), " via 127.0.0.1:53, system resolver")
    route, _ = view.plan(parse(IMAGE))
    assert [e.tls.verify for e in route.endpoints] == [True]
    assert any("is secure for dockerd" in n and "192.168.7.7" in n for n in route.notes)
    view.resolved["nexus.corp.test"] = ((), " (lookup failed: no such host)")
    route, _ = view.plan(parse(IMAGE))
    assert [e.tls.verify for e in route.endpoints] == [True]
    assert any("did not resolve" in n for n in route.notes)


def test_ipv6_loopback_is_insecure_from_engine_28_only(tmp_path: Path) -> None:
    """::1/128 joined the default insecure CIDRs in Engine 28 (moby 6a1d8a9 "daemon: add IPv6 loopback as insecure registry")."""
    ref = parse("[::1]:5000/app:1")
    old = _view(tmp_path / "20", [], "20.10.24+dfsg1-1")
    new = _view(tmp_path / "28", [], "5:28.0.1-1~debian.12~bookworm")
    assert [e.tls.verify for e in old.plan(ref)[0].endpoints] == [True]
    assert [e.tls.verify for e in new.plan(ref)[0].endpoints] == [False, True]
    assert old.summary["insecure_registries"] == ["127.0.0.0/8"]
