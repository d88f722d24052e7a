"""How each runtime family pulls (:class:`Flavor`): which endpoint is tried next after a failure, and why.

Fallback rules (SEMANTICS §1.3, §2.4, §3.3):

- **Docker, classic store**: every endpoint failure moves on (transport, unexpected HTTP
  answers, ping failures, layer failures, "no basic auth credentials"), *except* registry error
  statuses from a non-mirror endpoint (a 401/404 from the registry itself ends the pull) and
  schema-1/unsupported manifests. Once an ``https://`` endpoint has spoken HTTP, the plain
  ``http://`` endpoint for the same host is skipped. The user sees only the *last* error.
- **containerd** (also k3s and Docker's containerd image store): tag resolution tries hosts with
  the ``resolve`` capability (digest references: ``pull``) with ``HEAD``; any failure moves on.
  The manifests are then read from the host that resolved the tag; blobs are fetched per blob
  from the hosts in order (the first that serves it wins). The error shown is the "furthest" one
  (HTTP status > 404 > transport).
- **containers/image** (CRI-O, podman, skopeo): the first endpoint whose manifest fetch succeeds
  serves the whole image; any manifest error moves on; a blob error ends the pull. The error
  shown is the primary's, with ``(Mirrors also failed: ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from regtui.model import Endpoint, Route
from regtui.registry.errors import Failure

__all__ = ["Flavor", "FLAVORS", "DOCKER", "CONTAINERD", "CONTAINERS_IMAGE", "DOCKER_CONTAINERD_STORE", "flavor_for"]


@dataclass(frozen=True)
class Flavor:
    """How one runtime family pulls: Accept list, ping, resolution and fallback rules."""

    name: str
    """``docker``, ``containerd`` or ``containers-image`` (also the Accept list key)."""
    label: str
    """What the user runs: ``dockerd``, ``containerd``, ``CRI-O/podman``."""
    ping_first: bool
    """``GET /v2/`` before anything else (Docker, containers/image)."""
    head_first: bool
    """Resolve a tag with ``HEAD`` and its ``Docker-Content-Digest`` (containerd)."""
    per_blob_hosts: bool
    """Each blob is asked from the hosts in order (containerd), not only from the resolving one."""
    blob_failure_moves_on: bool
    """A blob failure restarts the whole pull on the next endpoint (Docker's graphdriver store)."""

    def moves_on(self, failure: Failure, ep: Endpoint) -> bool:
        """Whether the runtime tries the next endpoint after ``failure`` at ``ep``."""
        if failure.kind in ("schema1", "unsupported", "platform-missing"):
            return False
        if self.head_first and failure.phase == "manifest" and failure.kind == "digest-mismatch":
            # containerd takes the digest the first answering host names and fetches exactly that: content that
            # does not match it (or is not there) fails the pull; the hosts after it do not make it right.
            return False
        if self.name != "docker":
            return True
        if failure.phase == "auth" and failure.kind == "no-credentials":
            return True  # "no basic auth credentials" is a client-side error: Docker falls back (SEMANTICS §8)
        if failure.status is not None and 400 <= failure.status < 500 and (
                failure.error_code is not None or failure.status in (401, 429)):
            # A registry error code (distribution's errcode: a JSON error body, or 401/429 which the
            # client turns into one): only a mirror's is passed over. 5xx and 4xx without an error
            # body are UnexpectedHTTP*Errors, which always fall back.
            return ep.role == "mirror"
        return True


DOCKER = Flavor("docker", "dockerd", ping_first=True, head_first=False, per_blob_hosts=False, blob_failure_moves_on=True)
CONTAINERD = Flavor("containerd", "containerd", ping_first=False, head_first=True, per_blob_hosts=True,
                    blob_failure_moves_on=False)
CONTAINERS_IMAGE = Flavor("containers-image", "CRI-O/podman", ping_first=True, head_first=False, per_blob_hosts=False,
                          blob_failure_moves_on=False)
#: Docker's containerd image store resolves and fetches with containerd's code.
DOCKER_CONTAINERD_STORE = Flavor("containerd", "dockerd (containerd image store)", ping_first=False, head_first=True,
                                 per_blob_hosts=True, blob_failure_moves_on=False)
FLAVORS = {f.name: f for f in (DOCKER, CONTAINERD, CONTAINERS_IMAGE)}


def flavor_for(route: Route) -> Flavor:
    """The pull flavor of a route: its runtime, and for Docker its image store (``route.mode``)."""
    if route.runtime == "crio":
        return CONTAINERS_IMAGE
    if route.runtime in ("containerd", "k3s"):
        return CONTAINERD
    mode = route.mode.lower()
    if "containerd" in mode and "classic" not in mode and "graphdriver" not in mode:
        return DOCKER_CONTAINERD_STORE
    return DOCKER
