"""Shared pytest setup: the lab fixtures, and an environment free of the developer's proxies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["lab.fixtures"]

_SHELL_VARS = (
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "CONTAINERS_REGISTRIES_CONF",
    "REGISTRIES_CONFIG_PATH", "DOCKER_AUTH_CONFIG",
)


# -- network only on loopback --------------------------------------------------------------------------
# Every socket a test opens from Python (TCP connect, UDP sendto) must target 127.0.0.0/8 or ::1 (or a
# Unix socket). Anything else fails the test at once, so a fake root that forgot its resolv.conf, or a
# probe that wanders to a public NTP pool, is caught instead of leaving the machine.
import ipaddress as _ipaddress
import socket as _socket


def _loopback_only(address: Any) -> None:
    if not isinstance(address, tuple) or not address:
        return  # Unix socket path or abstract address
    host = str(address[0]).split("%", 1)[0]
    try:
        ip = _ipaddress.ip_address(host)
    except ValueError:
        raise OSError(f"tests may only connect to IP literals on loopback, not {host!r}") from None
    if not ip.is_loopback and not (ip.version == 6 and ip.ipv4_mapped and ip.ipv4_mapped.is_loopback):
        raise OSError(f"tests may only use loopback: refusing to reach {host}")


def _guard(method: Any, addr_index: int) -> Any:
    def guarded(self: _socket.socket, *args: Any) -> Any:
        if self.family in (_socket.AF_INET, _socket.AF_INET6) and len(args) > addr_index:
            _loopback_only(args[addr_index])
        return method(self, *args)

    guarded.__name__ = method.__name__
    return guarded


_socket.socket.connect = _guard(_socket.socket.connect, 0)  # type: ignore[method-assign]
_socket.socket.connect_ex = _guard(_socket.socket.connect_ex, 0)  # type: ignore[method-assign]
_socket.socket.sendto = _guard(_socket.socket.sendto, -1)  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _clean_shell_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the developer's proxy, TLS or registry variables."""
    for name in _SHELL_VARS:
        monkeypatch.delenv(name, raising=False)


# -- SVG snapshot baselines (pytest-textual-snapshot) live in the top-level snapshots/ folder --------
SNAPSHOTS_DIR = Path(__file__).resolve().parent.parent / "snapshots"


def _top_level_snapshot_assertion() -> type:
    """A syrupy assertion whose SVG extension stores files under ``snapshots/<test module>/``."""
    from pytest_textual_snapshot import SVGImageExtension
    from syrupy.assertion import SnapshotAssertion

    class TopLevelSVGExtension(SVGImageExtension):
        """pytest-textual-snapshot's SVG extension with the baseline directory moved to the top level."""

        @classmethod
        def dirname(cls, *, test_location: Any) -> str:
            return str(SNAPSHOTS_DIR / test_location.basename)

    class TopLevelSnapshotAssertion(SnapshotAssertion):
        """Swaps in the top-level extension when snap_compare asks for the SVG one."""

        def use_extension(self, extension_class: Any = None) -> SnapshotAssertion:
            if extension_class is SVGImageExtension:
                extension_class = TopLevelSVGExtension
            return super().use_extension(extension_class)

    return TopLevelSnapshotAssertion


@pytest.fixture
def snapshot(snapshot: Any) -> Any:
    """syrupy's snapshot fixture, storing SVG baselines in the top-level ``snapshots/`` folder."""
    cls = _top_level_snapshot_assertion()
    return cls(session=snapshot.session, extension_class=snapshot.extension_class,
               test_location=snapshot.test_location, update_snapshots=snapshot.update_snapshots)
