"""The test suite's own network rule: nothing but loopback (enforced in conftest.py)."""

from __future__ import annotations

import socket

import pytest


def test_guard_refuses_off_host_addresses() -> None:
    """A connect or sendto to a non-loopback address raises before any packet leaves."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(OSError, match="only use loopback"):
            s.sendto(b"x", ("192.0.2.1", 53))
        with pytest.raises(OSError, match="only use loopback"):
            s.connect(("198.51.100.7", 123))


def test_guard_allows_loopback() -> None:
    """Loopback v4 and v6 pass the guard (the lab depends on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("127.0.0.9", 9))
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("::1", 9))
