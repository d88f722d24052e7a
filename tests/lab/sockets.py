"""In-process sockets that misbehave on purpose: black holes and closed ports.

- :class:`TcpBlackHole`: listens but never accepts or reads. The kernel completes handshakes
  into the listen backlog, so a client connects and then waits forever for a byte (a TLS
  handshake or an HTTP answer hangs until the client's own timeout).
- :class:`UdpBlackHole`: a bound UDP socket that never reads or answers (NTP/DNS time out
  rather than being refused).
- :func:`closed_port`: a port that was bound and released, so connecting is refused
  (``ECONNREFUSED``), as with a stopped proxy or registry.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self

from .procs import LOOPBACK

__all__ = ["TcpBlackHole", "UdpBlackHole", "closed_port"]


class _Hole:
    """Common lifecycle of the black holes: start binds, stop closes."""

    kind = socket.SOCK_STREAM

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        """Bind ``host:port`` on start (port 0: the kernel picks one)."""
        self.host = host
        self.port = port
        self.sock: socket.socket | None = None

    @property
    def host_port(self) -> str:
        """``HOST:PORT``."""
        return f"{self.host}:{self.port}"

    def _activate(self, sock: socket.socket) -> None:
        """Kind-specific step after bind (listen for TCP)."""

    def start(self) -> Self:
        """Bind the socket and remember the actual port."""
        sock = socket.socket(socket.AF_INET, self.kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self._activate(sock)
        self.port = sock.getsockname()[1]
        self.sock = sock
        return self

    def stop(self) -> None:
        """Close the socket (pending connections are reset by the kernel)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> Self:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block."""
        self.stop()


class TcpBlackHole(_Hole):
    """A TCP port that completes handshakes and then never sends or reads a byte."""

    kind = socket.SOCK_STREAM

    def __init__(self, host: str = LOOPBACK, port: int = 0, backlog: int = 128) -> None:
        """``backlog`` bounds how many clients connect before further SYNs are dropped."""
        super().__init__(host, port)
        self.backlog = backlog

    def _activate(self, sock: socket.socket) -> None:
        """Listen, and never call accept()."""
        sock.listen(self.backlog)

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` for use as a proxy or mirror endpoint."""
        return f"http://{self.host_port}"


class UdpBlackHole(_Hole):
    """A bound UDP port that never answers (datagrams pile up unread)."""

    kind = socket.SOCK_DGRAM


def closed_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` with nothing listening: bound, then closed, so connects are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
