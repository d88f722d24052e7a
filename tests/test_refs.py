"""Image reference normalisation, as distribution/reference does it (SEMANTICS 0.1)."""

from __future__ import annotations

import pytest

from regtui.refs import ReferenceError, parse

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("alpine", "docker.io/library/alpine:latest"),
        ("alpine:3.20", "docker.io/library/alpine:3.20"),
        ("foo/bar", "docker.io/foo/bar:latest"),
        ("docker.io/alpine", "docker.io/library/alpine:latest"),
        ("index.docker.io/library/alpine:1", "docker.io/library/alpine:1"),
        ("index.docker.io/foo/bar", "docker.io/foo/bar:latest"),
        ("registry-1.docker.io/library/alpine", "registry-1.docker.io/library/alpine:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1"),
        ("ghcr.io/org/app", "ghcr.io/org/app:latest"),
        ("myreg:5000/team/app", "myreg:5000/team/app:latest"),
        ("foo:5000", "docker.io/library/foo:5000"),
        ("[::1]:5000/app", "[::1]:5000/app:latest"),
        ("Registry.Corp/app", "Registry.Corp/app:latest"),
        (f"alpine@{DIGEST}", f"docker.io/library/alpine@{DIGEST}"),
        (f"ghcr.io/org/app:v1@{DIGEST}", f"ghcr.io/org/app@{DIGEST}"),
    ],
)
def test_normalisation(typed: str, normalised: str) -> None:
    """Each reference normalises exactly as docker pull would name it."""
    assert str(parse(typed)) == normalised


def test_uppercase_first_component_is_a_domain() -> None:
    """An uppercase first component is a registry host, not a Hub namespace."""
    ref = parse("Foo/bar")
    assert ref.domain == "Foo" and ref.path == "bar"


def test_tag_and_digest_keeps_digest() -> None:
    """A reference with both a tag and a digest resolves by the digest only."""
    ref = parse(f"alpine:3@{DIGEST}")
    assert ref.tag is None and ref.digest == DIGEST and ref.reference == DIGEST and ref.by_digest


def test_registry_1_is_not_docker_hub() -> None:
    """registry-1.docker.io references are not canonicalised to docker.io (Hub mirrors skip them)."""
    assert not parse("registry-1.docker.io/library/alpine").is_docker_hub
    assert parse("index.docker.io/library/alpine").is_docker_hub


@pytest.mark.parametrize(
    "bad",
    ["", "docker.io/Library/alpine", "alpine:", "a" * 64, "foo/bar:bad tag", f"alpine@sha256:{'a' * 10}",
     "alpine@md5:" + "a" * 32, "-foo/bar", "foo//bar"],
)
def test_invalid_references(bad: str) -> None:
    """Invalid references raise ReferenceError with a reason (never another exception)."""
    with pytest.raises(ReferenceError):
        parse(bad)


def test_familiar_form() -> None:
    """The short form is what docker prints."""
    assert parse("docker.io/library/alpine:3").familiar() == "alpine:3"
    assert parse("docker.io/foo/bar").familiar() == "foo/bar:latest"
    assert parse("ghcr.io/a/b:1").familiar() == "ghcr.io/a/b:1"
