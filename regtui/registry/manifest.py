"""Manifests and indexes: media types, each runtime's Accept list, parsing, platform choice.

- Accept lists are the runtimes' own (SEMANTICS §2.4 containerd, §3.4 containers/image, §5.3
  moby's registered manifest types).
- A manifest body is capped at 4 MiB, as containerd caps it; bigger is refused, never buffered.
- Parsing is defensive: a hostile registry's JSON (wrong types, bad digests, negative or absurd
  sizes, thousands of layers) gives a :class:`ManifestError`, never a traceback.
- Platforms use Go's names (``GOARCH``): ``platform.machine()`` is mapped (``x86_64`` ->
  ``amd64``, ``aarch64`` -> ``arm64``...), and matched the way containerd's default matcher does
  (``arm64`` equals ``arm64/v8``; an ``arm/v7`` host also runs ``v6`` and ``v5``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_MANIFEST_BYTES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "INDEX_TYPES",
    "IMAGE_TYPES",
    "ACCEPT",
    "Platform",
    "Descriptor",
    "Manifest",
    "ManifestError",
    "host_platform",
    "goarch",
    "parse_manifest",
    "select_platform",
    "digest_of",
    "valid_digest",
    "new_hasher",
]

#: containerd's manifest size limit (``remotes/docker``: manifests above it are refused).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: A layer or config size above this is treated as hostile (1 TiB).
MAX_BLOB_BYTES = 1 << 40
#: More entries than this in a manifest or index is treated as hostile.
MAX_ENTRIES = 4096

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)

#: Each runtime family's ``Accept`` list for manifest requests, in the order it sends them.
ACCEPT: dict[str, tuple[str, ...]] = {
    # containerd remotes/docker/resolver.go (also k3s and Docker's containerd image store).
    "containerd": (DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, "*/*"),
    # containers/image manifest.DefaultRequestedManifestMIMETypes (CRI-O, podman, skopeo).
    "containers-image": (OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1, DOCKER_LIST, OCI_INDEX),
    # moby graphdriver store: every manifest type registered with docker/distribution.
    "docker": (DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1),
}

# platform.machine() -> (GOARCH, variant)
_MACHINE = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None),
    "aarch64": ("arm64", None), "arm64": ("arm64", None), "armv8l": ("arm64", None),
    "armv7l": ("arm", "v7"), "armv7": ("arm", "v7"), "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"),
    "i386": ("386", None), "i486": ("386", None), "i586": ("386", None), "i686": ("386", None),
    "ppc64le": ("ppc64le", None), "ppc64": ("ppc64", None), "s390x": ("s390x", None),
    "riscv64": ("riscv64", None), "mips64": ("mips64", None), "loongarch64": ("loong64", None),
}
_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}|sha384:[a-f0-9]{96})$")


class ManifestError(ValueError):
    """The manifest cannot be used; the message says why in the registry user's terms."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind
        """``invalid``, ``schema1``, ``unsupported`` or ``too-large``."""


def goarch(machine: str) -> tuple[str, str | None]:
    """``platform.machine()`` value -> (GOARCH, variant)."""
    return _MACHINE.get(machine.lower(), (machine.lower(), None))


@dataclass(frozen=True)
class Platform:
    """An OCI platform with Go's names (``linux/amd64``, ``linux/arm/v7``)."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """``os/arch[/variant]`` (``--platform``); ``arch`` alone means linux; machine names are mapped."""
        parts = [p for p in text.strip().lower().split("/") if p]
        if not parts or len(parts) > 3:
            raise ValueError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT]")
        if len(parts) == 1:
            parts = ["linux", parts[0]]
        arch, variant = goarch(parts[1])
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"os": self.os, "architecture": self.architecture, "variant": self.variant}


def host_platform(machine: str | None = None, os_name: str = "linux") -> Platform:
    """This host's platform in Go's names (``uname -m`` unless ``machine`` is given)."""
    # os.uname() is what platform.machine() reads on Linux, without loading the platform module.
    arch, variant = goarch(machine or os.uname().machine)
    return Platform(os_name, arch, variant)


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor from a manifest or index."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"media_type": self.media_type, "digest": self.digest, "size": self.size,
                "platform": str(self.platform) if self.platform else None}


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest or index."""

    media_type: str
    digest: str
    size: int
    kind: str
    """``index`` or ``image``."""
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    body: bytes = field(default=b"", repr=False)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config first, then layers (what a pull downloads)."""
        return ((self.config,) if self.config else ()) + self.layers


def valid_digest(digest: Any) -> bool:
    """``digest`` is ``sha256:<64 hex>`` (or sha384/sha512)."""
    return isinstance(digest, str) and bool(_DIGEST.match(digest))


def new_hasher(digest: str) -> "hashlib._Hash":
    """A hash object for the algorithm of ``digest``."""
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise ManifestError(f"unsupported digest algorithm {algorithm!r}", "unsupported")
    return hashlib.new(algorithm)


def digest_of(body: bytes, algorithm: str = "sha256") -> str:
    """``algorithm:hex`` of ``body``."""
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


def _descriptor(raw: Any, where: str, with_platform: bool = False) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} is not an object")
    digest, size, media = raw.get("digest"), raw.get("size"), raw.get("mediaType", "")
    if not valid_digest(digest):
        raise ManifestError(f"{where} has an invalid digest {str(digest)[:80]!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > MAX_BLOB_BYTES:
        raise ManifestError(f"{where} has an invalid size {str(size)[:40]!r}")
    if not isinstance(media, str):
        raise ManifestError(f"{where} has an invalid mediaType")
    plat = None
    if with_platform and isinstance(raw.get("platform"), dict):
        p = raw["platform"]
        os_name, arch, variant = p.get("os"), p.get("architecture"), p.get("variant")
        if isinstance(os_name, str) and isinstance(arch, str):
            plat = Platform(os_name.lower(), arch.lower(), variant.lower() if isinstance(variant, str) and variant else None)
    urls = raw.get("urls") if isinstance(raw.get("urls"), list) else []
    return Descriptor(media[:200], digest, size, plat, tuple(u for u in urls if isinstance(u, str))[:8])


def _entries(raw: Any, key: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ManifestError(f"{key} is not a list")
    if len(raw) > MAX_ENTRIES:
        raise ManifestError(f"{key} has {len(raw)} entries (more than {MAX_ENTRIES})")
    return raw


def parse_manifest(body: bytes, content_type: str | None, digest: str) -> Manifest:
    """Parse a manifest or index body (``content_type`` from the response, else the body's ``mediaType``)."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is {len(body)} bytes, more than the {MAX_MANIFEST_BYTES} containerd accepts",
                            "too-large")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: hostile nesting
        raise ManifestError(f"manifest is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    body_type = data.get("mediaType") if isinstance(data.get("mediaType"), str) else ""
    media = ctype if ctype and ctype not in ("application/json", "text/plain", "application/octet-stream") else body_type
    if data.get("schemaVersion") == 1 or media in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise ManifestError("the registry serves a Docker schema 1 manifest: Docker and containerd >= 2.0 refuse it "
                            "(DeprecatedSchema1ImageError)", "schema1")
    if not media:
        media = OCI_INDEX if "manifests" in data else OCI_MANIFEST if "config" in data else ""
    if media in INDEX_TYPES or (media not in IMAGE_TYPES and "manifests" in data):
        manifests = tuple(_descriptor(m, f"manifests[{i}]", True) for i, m in enumerate(_entries(data.get("manifests"), "manifests")))
        return Manifest(media or OCI_INDEX, digest, len(body), "index", manifests=manifests, body=body)
    if media in IMAGE_TYPES or "config" in data:
        config = _descriptor(data.get("config"), "config")
        layers = tuple(_descriptor(m, f"layers[{i}]") for i, m in enumerate(_entries(data.get("layers"), "layers")))
        return Manifest(media or OCI_MANIFEST, digest, len(body), "image", config=config, layers=layers, body=body)
    raise ManifestError(f"unsupported manifest media type {media[:100]!r}", "unsupported")


def _variant_rank(wanted: Platform, got: Platform) -> int | None:
    """How well ``got``'s variant fits ``wanted`` (0 best), or ``None`` when it does not run here."""
    if wanted.architecture == "arm64":
        return 0 if got.variant in (None, "v8") or got.variant == wanted.variant else None
    if wanted.architecture == "arm":
        order = {"v7": ["v7", "v6", "v5"], "v6": ["v6", "v5"], "v5": ["v5"]}.get(wanted.variant or "v7", [wanted.variant])
        if got.variant is None:
            return len(order)
        return order.index(got.variant) if got.variant in order else None
    if wanted.variant:
        return 0 if got.variant == wanted.variant else (1 if got.variant is None else None)
    return 0 if got.variant is None else 1


def select_platform(index: Manifest, wanted: Platform) -> Descriptor | None:
    """The index entry a runtime on ``wanted`` pulls (best variant first, then index order), or ``None``."""
    best: tuple[int, int, Descriptor] | None = None
    for position, entry in enumerate(index.manifests):
        plat = entry.platform
        if plat is None or plat.os != wanted.os or goarch(plat.architecture)[0] != wanted.architecture:
            continue
        rank = _variant_rank(wanted, plat)
        if rank is None:
            continue
        if best is None or (rank, position) < best[:2]:
            best = (rank, position, entry)
    return best[2] if best else None
