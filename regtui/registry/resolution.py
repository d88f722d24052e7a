"""Resolution of a reference on one endpoint: ping, manifest (checked against its digest), index -> platform."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regtui.refs import Reference
from regtui.registry.client import Session
from regtui.registry.errors import Failure, RegistryError, display_url, status_failure
from regtui.registry.flavors import Flavor
from regtui.registry.manifest import (
    Descriptor,
    Manifest,
    ManifestError,
    Platform,
    digest_of,
    host_platform,
    parse_manifest,
    select_platform,
    valid_digest,
)

__all__ = ["resolve", "Resolved", "wanted_platform"]


def wanted_platform(option: str | None) -> Platform:
    """``--platform`` or this host's platform."""
    return Platform.parse(option) if option else host_platform()


@dataclass
class Resolved:
    """What a reference resolved to on one endpoint."""

    top: Manifest
    """What the reference names: an index, or the image manifest itself."""
    image: Manifest
    """The image manifest pulled (the platform's entry of an index)."""
    entry: Descriptor | None
    """The index entry chosen, ``None`` without an index."""


def _manifest_failure(url: str, kind: str, message: str, go: str, **details: Any) -> RegistryError:
    return RegistryError(Failure("manifest", kind, message, go, url=display_url(url), transport_ok=True,
                                 details=details))


def _checked(body: bytes, header: str | None, expected: str | None, url: str) -> str:
    """The manifest's digest, checked against the digest asked for, else against ``Docker-Content-Digest``.

    A runtime that fetches by digest verifies the bytes against that digest and never reads the header, so a
    wrong header on such a response is no failure (containerd, dockerd and containers/image alike).
    """
    algorithm = (expected or header or "sha256:").split(":", 1)[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        algorithm = "sha256"
    computed = digest_of(body, algorithm)
    claims = ((expected, "the digest asked for"),) if expected else ((header, "Docker-Content-Digest"),)
    for claimed, what in claims:
        if claimed and valid_digest(claimed) and claimed.split(":", 1)[0] == algorithm and claimed != computed:
            raise _manifest_failure(url, "digest-mismatch", f"the manifest body hashes to {computed}, not {claimed} "
                                    f"({what})", f"content digest {computed} does not match {claimed}",
                                    expected=claimed, computed=computed, claimed_by=what)
    return computed


def _parse(body: bytes, content_type: str | None, digest: str, url: str) -> Manifest:
    try:
        return parse_manifest(body, content_type, digest)
    except ManifestError as exc:
        raise _manifest_failure(url, exc.kind, str(exc), str(exc)) from None


async def _get_manifest(session: Session, reference: str, expected: str | None) -> Manifest:
    exchange = await session.manifest(reference, "GET")
    url = session.url("manifests", reference)
    digest = _checked(exchange.body, exchange.response.headers.get("docker-content-digest"), expected, url)
    return _parse(exchange.body, exchange.response.headers.get("content-type"), digest, url)


async def resolve(session: Session, ref: Reference, flavor: Flavor, wanted: Platform) -> Resolved:
    """Resolve ``ref`` on one endpoint: ping, manifest (HEAD first for containerd), index -> platform."""
    if flavor.ping_first:
        ping = await session.ping()
        status = ping.response.status_code
        if status not in (200, 401):
            raise RegistryError(status_failure(status, f"{session.base_url}/", ping.body, phase="http"))
    expected = ref.digest
    if flavor.head_first and not ref.by_digest:
        claimed, head = await session.head_digest(ref.reference)
        if head is not None:
            expected = claimed
    try:
        top = await _get_manifest(session, expected or ref.reference, expected)
    except RegistryError as err:
        if err.failure.status != 404 or expected is None or ref.by_digest:
            raise
        await _claimed_digest_lied(session, ref, expected)
        raise
    if top.kind != "index":
        return Resolved(top, top, None)
    entry = select_platform(top, wanted)
    if entry is None:
        available = sorted({str(d.platform) for d in top.manifests if d.platform})
        raise RegistryError(Failure("manifest", "platform-missing",
                                    f"the index has no manifest for {wanted} (it has: {', '.join(available) or 'none'})",
                                    "no match for platform in manifest: not found",
                                    url=display_url(session.url("manifests", ref.reference)), transport_ok=True,
                                    details={"wanted": str(wanted), "available": available, "index_digest": top.digest}))
    image = await _get_manifest(session, entry.digest, entry.digest)
    if image.kind != "image":
        raise _manifest_failure(session.url("manifests", entry.digest), "unsupported",
                                "the index entry for this platform is not an image manifest", "unexpected media type")
    return Resolved(top, image, entry)


async def _claimed_digest_lied(session: Session, ref: Reference, claimed: str) -> None:
    """After a 404 for the digest HEAD named: if the tag's body hashes elsewhere, the header lied (raise that)."""
    try:
        exchange = await session.manifest(ref.reference, "GET")
    except RegistryError:
        return
    computed = digest_of(exchange.body, claimed.split(":", 1)[0] if claimed.startswith(("sha256:", "sha512:")) else "sha256")
    if computed != claimed:
        # containerd resolved the tag to the claimed digest and fails when it fetches the content under it.
        go = (f"failed to copy: httpReadSeeker: failed open: content at {session.url('manifests', claimed)} "
              "not found: not found")
        raise _manifest_failure(session.url("manifests", ref.reference), "digest-mismatch",
                                f"HEAD named {claimed} (Docker-Content-Digest), which the registry does not serve; the "
                                f"tag's manifest hashes to {computed}", go,
                                expected=claimed, computed=computed, claimed_by="Docker-Content-Digest", unserved=True)
