"""Image references, parsed and normalised exactly as distribution/reference does.

``alpine`` is ``docker.io/library/alpine:latest``; ``foo/bar`` is ``docker.io/foo/bar``; the
first path component is a registry host only if it is ``localhost`` or contains ``.``, ``:`` or
an uppercase letter; ``index.docker.io`` becomes ``docker.io`` but ``registry-1.docker.io`` is a
registry of its own; a reference with a tag and a digest keeps only the digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Reference", "ReferenceError", "parse", "DOCKER_HUB", "HUB_API_HOST"]

#: The canonical domain of Docker Hub references.
DOCKER_HUB = "docker.io"
#: The host Docker Hub's registry API is served from.
HUB_API_HOST = "registry-1.docker.io"
_LEGACY_HUB = "index.docker.io"
_NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*))"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ANCHORED_HEX = re.compile(r"^[a-f0-9]{64}$")
_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


class ReferenceError(ValueError):
    """The string is not a valid image reference; the message says why, as docker would."""


@dataclass(frozen=True)
class Reference:
    """A normalised image reference."""

    domain: str
    """Registry host[:port]; ``docker.io`` for Docker Hub."""
    path: str
    """Repository path, e.g. ``library/alpine``."""
    tag: str | None = None
    """Tag, ``None`` when the reference is by digest."""
    digest: str | None = None
    """``algorithm:hex`` when the reference pins a digest."""
    original: str = ""
    """What the user typed."""

    @property
    def name(self) -> str:
        """``domain/path``, e.g. ``docker.io/library/alpine``."""
        return f"{self.domain}/{self.path}"

    @property
    def reference(self) -> str:
        """What the manifest request asks for: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def by_digest(self) -> bool:
        """The reference pins a digest."""
        return self.digest is not None

    @property
    def is_docker_hub(self) -> bool:
        """The reference is a Docker Hub reference (mirrors for Hub apply to it)."""
        return self.domain == DOCKER_HUB

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"

    def familiar(self) -> str:
        """The short form docker prints (``alpine:latest``, ``foo/bar:1``)."""
        name = self.name
        if self.domain == DOCKER_HUB:
            name = self.path[len("library/"):] if self.path.startswith("library/") and self.path.count("/") == 1 else self.path
        return f"{name}@{self.digest}" if self.digest else f"{name}:{self.tag or 'latest'}"

    def with_path(self, domain: str, path: str) -> "Reference":
        """The same tag/digest under another domain and path (used by rewrites)."""
        return Reference(domain=domain, path=path, tag=self.tag, digest=self.digest, original=self.original)


def _split_docker_domain(name: str) -> tuple[str, str]:
    """distribution/reference splitDockerDomain: separate the registry host from the path."""
    i = name.find("/")
    if i == -1 or (not any(c in name[:i] for c in ".:") and name[:i] != "localhost" and name[:i].lower() == name[:i]):
        domain, remainder = DOCKER_HUB, name
    else:
        domain, remainder = name[:i], name[i + 1:]
    if domain == _LEGACY_HUB:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in remainder:
        remainder = "library/" + remainder
    return domain, remainder


def parse(text: str) -> Reference:
    """Parse and normalise ``text`` (docker's ``ParseDockerRef``), or raise :class:`ReferenceError`."""
    raw = text.strip()
    if not raw:
        raise ReferenceError("invalid reference format: empty reference")
    if _ANCHORED_HEX.match(raw):
        raise ReferenceError(f"invalid repository name ({raw}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(raw)
    # The path part (before ':tag' / '@digest') must be lowercase.
    path_part = re.split(r"[:@]", remainder, maxsplit=1)[0]
    if path_part.lower() != path_part:
        raise ReferenceError(f"invalid reference format: repository name ({path_part}) must be lowercase")
    m = _REFERENCE.match(f"{domain}/{remainder}")
    if not m or m.group("domain") != domain:
        raise ReferenceError(f"invalid reference format: {raw!r}")
    if len(m.group("name")) > _NAME_MAX:
        raise ReferenceError(f"invalid reference format: repository name must not be more than {_NAME_MAX} characters")
    digest = m.group("digest")
    if digest:
        algorithm, _, hexpart = digest.partition(":")
        want = _DIGEST_HEX_LEN.get(algorithm)
        if want is None:
            raise ReferenceError(f"invalid reference format: unsupported digest algorithm {algorithm!r}")
        if len(hexpart) != want or hexpart.lower() != hexpart:
            raise ReferenceError(f"invalid checksum digest format: {digest!r}")
    tag = m.group("tag")
    if digest:
        tag = None  # ParseDockerRef keeps only the digest.
    elif not tag:
        tag = "latest"
    return Reference(domain=domain, path=m.group("path"), tag=tag, digest=digest, original=text)
