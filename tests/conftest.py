"""Shared pytest setup: the lab fixtures, and an environment free of the developer's proxies."""

from __future__ import annotations

import pytest

pytest_plugins = ["lab.fixtures"]

_SHELL_VARS = (
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "CONTAINERS_REGISTRIES_CONF",
    "REGISTRIES_CONFIG_PATH", "DOCKER_AUTH_CONFIG",
)


@pytest.fixture(autouse=True)
def _clean_shell_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the developer's proxy, TLS or registry variables."""
    for name in _SHELL_VARS:
        monkeypatch.delenv(name, raising=False)
