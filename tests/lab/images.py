"""Build OCI images in pure Python (no network) and push them to lab registries with skopeo.

:func:`build_oci_layout` writes an OCI image layout directory: for each platform, N layers of
seeded random bytes packed as tar+gzip (deterministic: fixed mtimes, gzip mtime 0), a config
blob whose ``rootfs.diff_ids`` match the layers (Docker verifies them), and a manifest; with
several platforms an OCI image index ties them together. :func:`push` copies the layout to a
registry with ``skopeo copy --preserve-digests`` so the digests computed here are the ones served.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .procs import LabError, need_binary, run
from .registry import Registry

__all__ = [
    "Blob",
    "PlatformImage",
    "OciImage",
    "build_oci_layout",
    "push",
    "skopeo_env",
    "skopeo_inspect_digest",
]

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

# A fixed creation time keeps the config (and so every digest) reproducible for a given seed.
_CREATED = "2024-01-01T00:00:00Z"
_MTIME = 1704067200


@dataclass(frozen=True)
class Blob:
    """A content-addressed blob: digest, size in bytes, media type."""

    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class PlatformImage:
    """One single-platform image: its manifest, config and layers."""

    os: str
    architecture: str
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]

    @property
    def platform(self) -> str:
        """``os/architecture``, e.g. ``linux/amd64``."""
        return f"{self.os}/{self.architecture}"


@dataclass(frozen=True)
class OciImage:
    """An OCI layout on disk and what it contains.

    ``digest`` is what a tag resolves to: the index digest for a multi-platform image, the
    manifest digest otherwise.
    """

    layout_dir: Path
    tag: str
    images: tuple[PlatformImage, ...]
    index: Blob | None = None
    pushed_to: list[str] = field(default_factory=list, compare=False)

    @property
    def digest(self) -> str:
        """The digest the tag points at."""
        return self.index.digest if self.index else self.images[0].manifest.digest

    @property
    def manifest_digest(self) -> str:
        """The first (or only) platform's manifest digest."""
        return self.images[0].manifest.digest

    @property
    def index_digest(self) -> str | None:
        """The image index digest, when there are several platforms."""
        return self.index.digest if self.index else None

    @property
    def layers(self) -> tuple[Blob, ...]:
        """The first (or only) platform's layers."""
        return self.images[0].layers

    def for_platform(self, platform: str) -> PlatformImage:
        """The image for ``os/arch``; KeyError if absent."""
        for image in self.images:
            if image.platform == platform:
                return image
        raise KeyError(platform)


def _sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _LayoutWriter:
    """Writes blobs into ``blobs/sha256`` of an OCI layout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def put(self, data: bytes, media_type: str) -> Blob:
        """Store ``data`` and describe it."""
        digest = _sha256(data)
        (self.root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return Blob(digest, len(data), media_type)


#: ``Random.randbytes`` refuses 2**28 bytes or more at once; a larger layer is made of pieces this size.
_PIECE = 1 << 27


def _layer(rng: random.Random, index: int, size: int) -> tuple[bytes, str]:
    """One gzipped tar holding ``layer-N.bin`` of ``size`` random bytes; returns (gz, diff_id)."""
    if size < 1 << 28:
        payload = rng.randbytes(size)
    else:
        payload = b"".join(rng.randbytes(min(_PIECE, size - at)) for at in range(0, size, _PIECE))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"layer-{index}.bin")
        info.size = len(payload)
        info.mtime = _MTIME
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    # Random payload does not compress, so gzip level 1 is as good as 9 and faster.
    gz = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return gz, _sha256(tar_bytes)


def _json(obj: object) -> bytes:
    """Canonical-ish JSON bytes (stable key order, no spaces) for blobs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build_oci_layout(
    layout_dir: Path,
    *,
    tag: str = "latest",
    layers: int = 2,
    layer_size: int | Sequence[int] = 4096,
    seed: int = 0,
    platforms: Sequence[str] = ("linux/amd64",),
) -> OciImage:
    """Write an OCI image layout and return its description.

    - ``layers``: number of layers per platform; ``layer_size``: bytes of random payload per
      layer (one int for all, or one per layer). Tiny by default so tests stay fast.
    - ``seed``: different seeds give different images (same seed, same digests).
    - ``platforms``: one entry gives a plain manifest; several give an OCI image index with
      one manifest per platform (each with its own layers).
    """
    sizes = [layer_size] * layers if isinstance(layer_size, int) else list(layer_size)
    if len(sizes) != layers:
        raise ValueError("layer_size must be an int or have one entry per layer")
    writer = _LayoutWriter(layout_dir)
    images: list[PlatformImage] = []
    for p_index, platform in enumerate(platforms):
        os_name, arch = platform.split("/", 1)
        rng = random.Random(f"{seed}/{platform}")
        layer_blobs: list[Blob] = []
        diff_ids: list[str] = []
        for i, size in enumerate(sizes):
            gz, diff_id = _layer(rng, i, size)
            layer_blobs.append(writer.put(gz, MEDIA_LAYER))
            diff_ids.append(diff_id)
        config = {
            "architecture": arch,
            "os": os_name,
            "created": _CREATED,
            "config": {"Cmd": ["/layer-0.bin"], "Labels": {"regtui.lab.seed": str(seed)}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [
                {"created": _CREATED, "created_by": f"regtui lab layer {i}"} for i in range(layers)
            ],
        }
        config_blob = writer.put(_json(config), MEDIA_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_blob.digest, "size": config_blob.size},
            "layers": [
                {"mediaType": b.media_type, "digest": b.digest, "size": b.size} for b in layer_blobs
            ],
        }
        manifest_blob = writer.put(_json(manifest), MEDIA_MANIFEST)
        images.append(
            PlatformImage(os_name, arch, manifest_blob, config_blob, tuple(layer_blobs), tuple(diff_ids))
        )

    index_blob: Blob | None = None
    top: Blob
    if len(images) > 1:
        index = {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_MANIFEST,
                    "digest": im.manifest.digest,
                    "size": im.manifest.size,
                    "platform": {"os": im.os, "architecture": im.architecture},
                }
                for im in images
            ],
        }
        index_blob = top = writer.put(_json(index), MEDIA_INDEX)
    else:
        top = images[0].manifest
    layout_index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": top.media_type,
            "digest": top.digest,
            "size": top.size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    (layout_dir / "index.json").write_text(json.dumps(layout_index))
    return OciImage(layout_dir=layout_dir, tag=tag, images=tuple(images), index=index_blob)


def skopeo_env(workdir: Path) -> dict[str, str]:
    """An environment that makes skopeo ignore this machine's registries.conf and auth.json."""
    workdir.mkdir(parents=True, exist_ok=True)
    registries = workdir / "registries.conf"
    if not registries.exists():
        registries.write_text("# regtui lab: no mirrors, no search registries\n")
    auth = workdir / "auth.json"
    if not auth.exists():
        auth.write_text('{"auths": {}}\n')
    return {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "REGISTRY_AUTH_FILE": str(auth),
    }


def _policy(workdir: Path) -> Path:
    """A signature policy accepting anything (the lab never signs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "policy.json"
    if not path.exists():
        path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return path


def push(
    image: OciImage,
    registry: Registry,
    repo: str,
    *,
    tag: str | None = None,
    timeout: float = 60.0,
) -> str:
    """Push ``image`` to ``registry`` as ``repo:tag`` with skopeo; return the pushed digest.

    Raises LabError when skopeo fails or the registry reports a digest other than the one
    computed when the layout was built.
    """
    tag = tag or image.tag
    work = image.layout_dir.parent / f".skopeo-{image.layout_dir.name}"
    env = skopeo_env(work)
    digest_file = work / "digest"
    argv = [
        need_binary("skopeo"), "--policy", str(_policy(work)), "copy", "--quiet",
        "--preserve-digests", "--digestfile", str(digest_file), "--dest-tls-verify=false",
    ]
    if len(image.images) > 1:
        argv += ["--multi-arch", "all"]
    if registry.creds:
        argv += ["--dest-creds", registry.creds]
    argv += [f"oci:{image.layout_dir}:{image.tag}", f"docker://{registry.host_port}/{repo}:{tag}"]
    result = run(argv, timeout=timeout, env=env)
    if result.returncode != 0:
        raise LabError(f"skopeo copy failed ({result.returncode}):\n{result.stderr}")
    pushed = digest_file.read_text().strip()
    if pushed != image.digest:
        raise LabError(f"pushed digest {pushed} differs from the built one {image.digest}")
    image.pushed_to.append(f"{registry.host_port}/{repo}:{tag}")
    return pushed


def skopeo_inspect_digest(
    reference: str,
    *,
    registry: Registry | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
    workdir: Path,
) -> tuple[int, str, str | None]:
    """Run ``skopeo inspect REFERENCE``; return (returncode, stderr, ``Digest`` or None).

    With ``registry``, its CA dir and credentials are passed (``--cert-dir``, ``--creds``).
    """
    argv = [need_binary("skopeo"), "--policy", str(_policy(workdir)), "inspect"]
    if registry is not None:
        argv += registry.skopeo_tls_args()
        if registry.creds:
            argv += ["--creds", registry.creds]
    argv += [*extra_args, reference]
    result = run(argv, timeout=timeout, env=skopeo_env(workdir))
    digest = None
    if result.returncode == 0:
        try:
            digest = json.loads(result.stdout).get("Digest")
        except json.JSONDecodeError:
            digest = None
    return result.returncode, result.stderr, digest
