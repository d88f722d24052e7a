"""Fix catalogue, k3s: registries.yaml line edits (comments and quoting of untouched lines kept)."""

from __future__ import annotations

from pathlib import Path

from regtui import engine, fixes
from regtui.config import _yaml
from regtui.host import Host
from regtui.options import CheckOptions
from test_fix_kit import make_root, roundtrip

REG = "/etc/rancher/k3s/registries.yaml"


def test_hub_credentials_copied_to_registry_1(tmp_path: Path) -> None:
    """configs."docker.io".auth is copied to configs."registry-1.docker.io".auth; the preview masks the password."""
    text = ("# node registries\nmirrors:\n  docker.io:\n    endpoint:\n      - https://mirror.example\n"
            "configs:\n  docker.io:\n    auth:\n      username: hub\n      password: hub-pass-987\n")
    root = make_root(tmp_path, {REG: text}, {REG: 0o600})
    r = roundtrip(root, "auth.wrong-key", runtime="k3s")
    data = _yaml.loads(r.texts[REG]).data
    assert data["configs"]["registry-1.docker.io"]["auth"] == {"username": "hub", "password": "hub-pass-987"}
    assert r.texts[REG].startswith(text)
    assert "hub-pass-987" not in fixes.render(r.plan)
    assert r.plan.restart.startswith("restart k3s")


def test_duplicate_endpoint_removed(tmp_path: Path) -> None:
    """An endpoint that normalises to one already listed is removed."""
    text = 'mirrors:\n  docker.io:\n    endpoint:\n      - "https://mirror.example"\n      - "https://mirror.example/"\n'
    root = make_root(tmp_path, {REG: text})
    r = roundtrip(root, "config.ignored-key", runtime="k3s")
    assert r.texts[REG] == 'mirrors:\n  docker.io:\n    endpoint:\n      - "https://mirror.example"\n'


def test_misspelled_key_renamed(tmp_path: Path) -> None:
    """'rewrites' (ignored) is renamed to 'rewrite'; its entries keep their lines."""
    text = ('mirrors:\n  "reg.example:5000":\n    endpoint:\n      - https://m.example\n    rewrites:\n'
            '      "^foo/(.*)": "bar/$1"\n')
    root = make_root(tmp_path, {REG: text})
    r = roundtrip(root, "config.ignored-key", runtime="k3s")
    assert r.texts[REG] == text.replace("rewrites:", "rewrite:")


def test_endpoint_without_a_guess_is_manual(tmp_path: Path) -> None:
    """An invalid endpoint regtui cannot correct gets manual steps and no write."""
    text = 'mirrors:\n  "reg.example:5000":\n    endpoint:\n      - "mirror example"\n'
    root = make_root(tmp_path, {REG: text})
    host = Host(root=root)
    options = CheckOptions(root=str(root), runtime="k3s", offline=True)
    f = next(f for f in engine.plan(options, host).findings if f.code == "config.invalid-value")
    p = fixes.plan(f, host, options=options)
    assert p.kind == "manual" and not p.changes and not p.can_apply and "mirror example" in p.steps
