"""CRI-O / podman short names: the candidates containers/image resolves, planned as routes of their own.

Follows containers/image ``pkg/shortnames/shortnames_test.go`` (``TestResolve``,
``TestResolveWithVaryingShortNameModes``) and ``pkg/sysregistriesv2`` alias handling; the lab
test in ``test_shortnames_lab.py`` has podman as referee.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from regtui.host import Host
from regtui.refs import parse
from regtui.runtimes import crio
from regtui.runtimes.crio.config import load_config
from regtui.runtimes.crio.shortnames import resolve
from regtui.runtimes.view import RuntimeView
from rootfs import write_tree

SYSTEM = "/etc/containers/registries.conf"
DROPINS = "/etc/containers/registries.conf.d"
CACHE = "/var/cache/containers/short-name-aliases.conf"
DIGEST = "@sha256:d366a4665ab44f0648d7a00ae3fae139d55e32f9712c67accd604bb55df9d05a"

# containers/image pkg/shortnames/testdata/aliases.conf
ALIASES = """short-name-mode="enforcing"

[aliases]
docker="docker.io/library/foo"
"quay/foo"="quay.io/library/foo"
example="example.com/library/foo"
empty=""
"""
TWO = 'unqualified-search-registries = ["quay.io", "registry.com"]\nshort-name-mode = "enforcing"\n'


def _view(tmp_path: Path, files: dict[str, str], *, crio_binary: bool = False) -> RuntimeView:
    root = write_tree(tmp_path, files)
    if crio_binary:
        write_tree(root, {"/usr/bin/crio": "#!/bin/sh\n"})
        os.chmod(root / "usr/bin/crio", 0o755)
    return crio.load(Host.from_args(root, {}), client_env={})


def _targets(route) -> list[tuple[str, str, str]]:
    return [(e.host, e.repository, e.status) for e in route.endpoints]


@pytest.mark.parametrize(("typed", "value", "line"), [
    ("docker", "docker.io/library/foo:latest", 5),
    ("docker:tag", "docker.io/library/foo:tag", 5),
    ("docker" + DIGEST, "docker.io/library/foo" + DIGEST, 5),
    ("quay/foo", "quay.io/library/foo:latest", 6),
    ("quay/foo:tag", "quay.io/library/foo:tag", 6),
    ("example" + DIGEST, "example.com/library/foo" + DIGEST, 7),
])
def test_alias_wins_and_keeps_tag_or_digest(tmp_path: Path, typed: str, value: str, line: int) -> None:
    """shortnames_test.go TestResolve: an alias is the one candidate, with the typed tag or digest."""
    files = {SYSTEM: ALIASES.replace("[aliases]", 'unqualified-search-registries = ["a.io", "b.io"]\n[aliases]')}
    view = _view(tmp_path, files)
    cfg, _, _ = load_config(Host.from_args(tmp_path, {}), client_env={})
    res = resolve(cfg.registries, parse(typed), "podman")
    assert res is not None and not res.error
    assert [str(c.ref) for c in res.candidates] == [value]
    assert res.candidates[0].source == f"{SYSTEM}:{line}"
    route, findings = view.plan(parse(typed))
    ref = parse(value)
    host = "registry-1.docker.io" if ref.domain == "docker.io" else ref.domain
    assert _targets(route) == [(host, ref.path, "untested")]
    assert route.endpoints[0].source.startswith("alias " + res.candidates[0].source)
    assert not [f for f in findings if f.code == "config.short-name-unresolved"]


def test_search_registries_in_order_docker_io_gets_library(tmp_path: Path) -> None:
    """Each search registry in order, registry/typed normalised: docker.io adds library/ for one component."""
    text = 'unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]\n'
    view = _view(tmp_path, {SYSTEM: text})
    route, findings = view.plan(parse("alpine:3.20"))
    assert _targets(route) == [("registry.fedoraproject.org", "alpine", "untested"),
                               ("registry-1.docker.io", "library/alpine", "untested")]
    assert all(e.source == f"search {SYSTEM}:1" for e in route.endpoints)
    assert findings == []
    route, _ = view.plan(parse("team/app" + DIGEST))
    assert _targets(route) == [("registry.fedoraproject.org", "team/app", "untested"),
                               ("registry-1.docker.io", "team/app", "untested")]
    route, _ = view.plan(parse("docker.io/library/alpine"))
    assert _targets(route) == [("registry-1.docker.io", "library/alpine", "untested")]


def test_enforcing_without_tty_fails_for_podman_not_crio(tmp_path: Path) -> None:
    """TestResolveWithVaryingShortNameModes: enforcing + two candidates + no TTY is an error; CRI-O forces disabled."""
    files = {SYSTEM: TWO}
    route, findings = _view(tmp_path / "podman", files).plan(parse("image"))
    assert route.endpoints == ()
    err = next(f for f in findings if f.code == "config.short-name-unresolved")
    assert err.severity == "error" and err.evidence["error"] == "short-name resolution enforced but cannot prompt without a TTY"
    assert err.evidence["line"] == 2 and err.evidence["candidates"] == ["quay.io/image:latest", "registry.com/image:latest"]
    route, findings = _view(tmp_path / "crio", files, crio_binary=True).plan(parse("image"))
    assert _targets(route) == [("quay.io", "image", "untested"), ("registry.com", "image", "untested")]
    assert not [f for f in findings if f.code == "config.short-name-unresolved"]
    # One candidate is never ambiguous; permissive tries them all.
    route, _ = _view(tmp_path / "one", {SYSTEM: 'unqualified-search-registries = ["quay.io"]\nshort-name-mode = "enforcing"\n'}).plan(parse("image"))
    assert _targets(route) == [("quay.io", "image", "untested")]
    route, _ = _view(tmp_path / "perm", {SYSTEM: TWO, f"{DROPINS}/50-ci.conf": 'short-name-mode = "permissive"\n'}).plan(parse("image"))
    assert [e.host for e in route.endpoints] == ["quay.io", "registry.com"]


def test_no_alias_no_search_registries_is_no_route(tmp_path: Path) -> None:
    """Resolve's error when nothing resolves: the message names the file that set an empty list."""
    route, findings = _view(tmp_path / "a", {SYSTEM: "unqualified-search-registries = []\n"}).plan(parse("nginx"))
    assert route.endpoints == ()
    err = next(f for f in findings if f.code == "config.short-name-unresolved")
    assert err.evidence["error"] == (f'short-name "nginx" did not resolve to an alias and no unqualified-search '
                                     f'registries are defined in "{SYSTEM}"')
    _, findings = _view(tmp_path / "b", {SYSTEM: "# nothing\n"}).plan(parse("nginx:1"))
    err = next(f for f in findings if f.code == "config.short-name-unresolved")
    assert err.evidence["file"] == SYSTEM and err.evidence["line"] is None
    assert err.evidence["error"] == ('short-name "nginx:1" did not resolve to an alias and no '
                                     'containers-registries.conf(5) was found')


def test_registry_rules_apply_per_candidate(tmp_path: Path) -> None:
    """A blocked first search registry is skipped; the second gets its [[registry]] mirror, rewritten."""
    text = ('unqualified-search-registries = ["blocked.example", "docker.io"]\n'
            '[[registry]]\nlocation = "blocked.example"\nblocked = true\n'
            '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n'
            '[[registry.mirror]]\nlocation = "mirror.corp.example:5000/hub"\n')
    route, findings = _view(tmp_path, {SYSTEM: text}).plan(parse("alpine"))
    assert _targets(route) == [("blocked.example", "alpine", "skipped"),
                               ("mirror.corp.example:5000", "hub/library/alpine", "untested"),
                               ("registry-1.docker.io", "library/alpine", "untested")]
    assert route.endpoints[1].source == f"{SYSTEM}:9 (candidate from search {SYSTEM}:1)"
    assert any(f.code == "config.blocked" for f in findings)


def test_recorded_alias_wins_and_empty_erases(tmp_path: Path) -> None:
    """sysregistriesv2 ResolveShortNameAlias: short-name-aliases.conf first; "" there falls back to search."""
    conf = 'unqualified-search-registries = ["quay.io"]\n[aliases]\napp = "conf.example/app"\nold = "conf.example/old"\n'
    cache = '[aliases]\napp = "cache.example/team/app"\nold = ""\n'
    view = _view(tmp_path, {SYSTEM: conf, CACHE: cache})
    route, _ = view.plan(parse("app:1"))
    assert _targets(route) == [("cache.example", "team/app", "untested")]
    assert route.endpoints[0].source == f"alias {CACHE}:2"
    route, _ = view.plan(parse("old"))
    assert _targets(route) == [("quay.io", "old", "untested")]


def test_candidate_that_cannot_be_rewritten_is_passed_over(tmp_path: Path) -> None:
    """A mirror rewrite error ends only its candidate (a warning); the next search registry is still planned."""
    text = ('unqualified-search-registries = ["bad.example", "quay.io"]\n'
            '[[registry]]\nlocation = "bad.example"\n[[registry.mirror]]\nlocation = "localmirror/x"\n')
    route, findings = _view(tmp_path, {SYSTEM: text}).plan(parse("app"))
    assert _targets(route) == [("quay.io", "app", "untested")]
    err = next(f for f in findings if f.code == "config.invalid-value")
    assert err.severity == "warning" and err.evidence["line"] == 5
    assert any(n.startswith("candidate bad.example/app:latest: rewriting reference") for n in route.notes)
