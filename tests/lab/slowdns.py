"""A slow DNS server on loopback: answers real DNS queries over UDP, but only after a delay.

dnsmasq cannot be told to answer late, and a slow resolver is a real failure mode (an
overloaded or far-away nameserver, a first nameserver that drops queries). This server answers
``A`` queries for its names with their address, ``AAAA`` with an empty NOERROR answer, and
everything else with NXDOMAIN, each ``delay`` seconds after the query arrived. It runs in a
thread of the test process; every reply is scheduled on its own timer so concurrent queries are
not serialised.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Self

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .procs import LOOPBACK

__all__ = ["SlowDns"]


class SlowDns:
    """``with SlowDns({"slow.lab.test": "127.0.0.1"}, delay=0.8) as server: server.port``."""

    def __init__(self, names: Mapping[str, str], *, delay: float, host: str = LOOPBACK) -> None:
        """Answer ``names`` (exact, lowercase, no trailing dot) after ``delay`` seconds."""
        self.names = {k.lower().rstrip("."): v for k, v in names.items()}
        self.delay = delay
        self.host = host
        self.port = 0
        self.queries = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._timers: list[threading.Timer] = []

    def start(self) -> Self:
        """Bind and serve in a daemon thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, 0))
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="slowdns", daemon=True)
        self._thread.start()
        return self

    def _reply(self, query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        if name not in self.names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, dns.rdatatype.A,
                                                       self.names[name]))
        return response.to_wire()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
                wire = self._reply(query)
            except Exception:  # a malformed query gets no answer, like a real server under attack
                continue
            self.queries += 1
            timer = threading.Timer(self.delay, self._send, (wire, peer))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def _send(self, wire: bytes, peer: tuple[str, int]) -> None:
        sock = self._sock
        if sock is not None and not self._stop.is_set():
            try:
                sock.sendto(wire, peer)
            except OSError:
                pass

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stop.set()
        for t in self._timers:
            t.cancel()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Self:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop on leaving a ``with`` block."""
        self.stop()
