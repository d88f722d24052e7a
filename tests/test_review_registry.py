"""Review regressions for the registry client (registry/)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from regtui.registry.auth import Authorizer
from regtui.registry.errors import RegistryError, status_failure
from regtui.registry.manifest import ManifestError, parse_manifest

# Nested deeper than Python's recursion limit: json.loads raises RecursionError, not ValueError.
_DEEP = b"[" * 70000


def test_deeply_nested_manifest_is_a_manifest_error() -> None:
    """A hostile manifest nested past the recursion limit is refused as not JSON, not a traceback."""
    with pytest.raises(ManifestError, match="not JSON"):
        parse_manifest(_DEEP, "application/vnd.oci.image.manifest.v1+json", "sha256:" + "0" * 64)


def test_deeply_nested_error_body_gives_a_plain_status_failure() -> None:
    """An error answer whose body is nested past the recursion limit still gives its status failure."""
    failure = status_failure(404, "https://r.example/v2/x/manifests/latest", _DEEP)
    assert failure.status == 404 and failure.error_code is None and failure.kind == "not-found"


def test_deeply_nested_token_response_is_a_bad_token_response() -> None:
    """A token server answering JSON nested past the recursion limit fails authentication, not the probe."""
    async def send(method: str, url: str, headers: dict[str, str], form: dict[str, str] | None) -> httpx.Response:
        return httpx.Response(200, content=_DEEP, request=httpx.Request(method, url))

    challenge = httpx.Response(401, headers={"www-authenticate": 'Bearer realm="https://auth.example/token"'},
                               request=httpx.Request("GET", "https://r.example/v2/"))
    authorizer = Authorizer(None, send)
    with pytest.raises(RegistryError) as err:
        asyncio.run(authorizer.handle("r.example", challenge, "repository:x:pull", sent_auth=False))
    assert err.value.failure.kind == "bad-token-response"
