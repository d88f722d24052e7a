"""A small SNTP client (RFC 4330) over UDP, resolving through regtui's resolver.

One 48-byte client request (version 4, mode 3) per server address, a bounded wait for the
reply, and the RFC 4330 quantities from the four timestamps:

    T1 = request sent (local)      T2 = request received (server)
    T3 = reply sent (server)       T4 = reply received (local)
    offset = ((T2 - T1) + (T3 - T4)) / 2        server clock minus local clock
    delay  = (T4 - T1) - (T3 - T2)              round trip minus server processing

Replies are checked as RFC 4330 §5 asks: mode 4 (server), our transmit timestamp echoed as the
originate timestamp, a non-zero transmit timestamp, stratum 0 treated as a kiss-o'-death (the
kiss code is in the reference id), leap indicator 3 meaning the server itself is unsynchronised.

The local clock is a parameter (``clock``, Unix seconds) so a probe measures the *host's* clock;
T4 is derived from T1 plus a monotonic interval so a clock step during the exchange cannot
distort the delay.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable

from regtui.net.resolver import ResolveError, Resolver

__all__ = [
    "NTP_PORT",
    "NtpError",
    "NtpSample",
    "build_request",
    "parse_reply",
    "compute",
    "query",
    "query_address",
    "parse_server_spec",
]

#: The NTP port.
NTP_PORT = 123
#: Seconds between the NTP era-0 epoch (1900-01-01) and the Unix epoch.
NTP_UNIX_DELTA = 2_208_988_800
_PACKET = 48
_MAX_REPLY = 1024


class NtpError(Exception):
    """No usable answer; ``kind`` is ``dns``, ``timeout``, ``refused``, ``network``, ``bad-reply`` or ``kiss``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class NtpSample:
    """One server's answer, reduced."""

    server: str
    """As asked (``host`` or ``host:port``)."""
    address: str
    """``IP:port`` that answered."""
    offset: float
    """Server minus local, seconds (positive: the local clock is behind)."""
    delay: float
    """Round-trip delay, seconds."""
    stratum: int
    leap: int
    """Leap indicator: 0 none, 1/2 leap second pending, 3 server unsynchronised."""
    version: int
    refid: str
    """Reference id: four ASCII characters at stratum 1, an IPv4 address above."""
    server_time: float
    """The server's transmit timestamp (Unix seconds)."""
    root_delay: float
    root_dispersion: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"server": self.server, "address": self.address, "offset_seconds": round(self.offset, 6),
                "delay_seconds": round(self.delay, 6), "stratum": self.stratum, "leap": self.leap,
                "version": self.version, "refid": self.refid, "root_delay": round(self.root_delay, 6),
                "root_dispersion": round(self.root_dispersion, 6)}


def _to_ntp(unix: float) -> tuple[int, int]:
    seconds = unix + NTP_UNIX_DELTA
    whole = int(seconds)
    return whole & 0xFFFFFFFF, int((seconds - whole) * 2**32) & 0xFFFFFFFF


def _from_ntp(seconds: int, fraction: int) -> float:
    # Era handling (RFC 4330 §3): values with the top bit clear belong to era 1 (after 2036).
    if not seconds & 0x80000000:
        seconds += 1 << 32
    return seconds - NTP_UNIX_DELTA + fraction / 2**32


def _short(value: int) -> float:
    """NTP short format (16.16 fixed point) to seconds."""
    return value / 65536.0


def build_request(t1: float) -> bytes:
    """A version-4 client request whose transmit timestamp is ``t1`` (plus random low bits).

    The low fraction bits are random so the originate check cannot be satisfied by a stale or
    forged reply (RFC 4330 §3 suggests this); they are below a microsecond.
    """
    seconds, fraction = _to_ntp(t1)
    fraction = (fraction & ~0xFFF) | (int.from_bytes(os.urandom(2), "big") & 0xFFF)
    packet = bytearray(_PACKET)
    packet[0] = (0 << 6) | (4 << 3) | 3
    packet[40:48] = struct.pack("!II", seconds, fraction)
    return bytes(packet)


def _refid(data: bytes, stratum: int) -> str:
    raw = data[12:16]
    if stratum <= 1:
        return raw.rstrip(b"\0").decode("ascii", errors="replace")
    return ".".join(str(b) for b in raw)


def parse_reply(data: bytes, request: bytes) -> dict[str, Any]:
    """Check a reply against ``request`` and extract its fields; raises :class:`NtpError`."""
    if len(data) < _PACKET:
        raise NtpError("bad-reply", f"short NTP reply ({len(data)} bytes)")
    first = data[0]
    leap, version, mode = first >> 6, (first >> 3) & 0x7, first & 0x7
    stratum = data[1]
    if mode != 4:
        raise NtpError("bad-reply", f"reply mode {mode}, expected 4 (server)")
    if data[24:32] != request[40:48]:
        raise NtpError("bad-reply", "reply does not echo our transmit timestamp (stale or forged)")
    root_delay, root_disp = struct.unpack("!II", data[4:12])
    rx_s, rx_f, tx_s, tx_f = struct.unpack("!IIII", data[32:48])
    if stratum == 0:
        code = data[12:16].rstrip(b"\0").decode("ascii", errors="replace")
        raise NtpError("kiss", f"kiss-o'-death from server: {code or '?'}")
    if tx_s == 0 and tx_f == 0:
        raise NtpError("bad-reply", "reply has a zero transmit timestamp")
    return {"leap": leap, "version": version, "stratum": stratum, "refid": _refid(data, stratum),
            "t2": _from_ntp(rx_s, rx_f), "t3": _from_ntp(tx_s, tx_f),
            "root_delay": _short(root_delay), "root_dispersion": _short(root_disp)}


def compute(t1: float, t2: float, t3: float, t4: float) -> tuple[float, float]:
    """RFC 4330 offset and round-trip delay from the four timestamps."""
    return ((t2 - t1) + (t3 - t4)) / 2.0, (t4 - t1) - (t3 - t2)


class _Reply(asyncio.DatagramProtocol):
    """Receives the first datagram (or error) for one request."""

    def __init__(self) -> None:
        self.future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.future.done():
            self.future.set_result(data[:_MAX_REPLY])

    def error_received(self, exc: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.future.done():
            self.future.set_exception(exc or ConnectionError("socket closed"))


async def query_address(address: str, port: int, *, timeout: float, server: str = "",
                        clock: Callable[[], float] = time.time) -> NtpSample:
    """Ask one ``address:port`` (an IP literal) once; raises :class:`NtpError`."""
    loop = asyncio.get_running_loop()
    label = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    try:
        transport, proto = await loop.create_datagram_endpoint(_Reply, remote_addr=(address, port))
    except OSError as exc:
        raise NtpError("network", f"{label}: {exc.strerror or exc}") from None
    try:
        t1 = clock()
        started = time.monotonic()
        request = build_request(t1)
        transport.sendto(request)
        try:
            data = await asyncio.wait_for(proto.future, timeout)
        except asyncio.TimeoutError:
            raise NtpError("timeout", f"{label}: no NTP answer within {timeout:g} s") from None
        except ConnectionRefusedError:
            raise NtpError("refused", f"{label}: port unreachable (nothing listens)") from None
        except OSError as exc:
            raise NtpError("network", f"{label}: {exc.strerror or exc}") from None
        t4 = t1 + (time.monotonic() - started)
    finally:
        transport.close()
    fields = parse_reply(data, request)
    offset, delay = compute(t1, fields["t2"], fields["t3"], t4)
    return NtpSample(server or label, label, offset, delay, fields["stratum"], fields["leap"], fields["version"],
                     fields["refid"], fields["t3"], fields["root_delay"], fields["root_dispersion"])


def parse_server_spec(spec: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[v6]:PORT`` or a bare IPv6 address -> (host, port)."""
    spec = spec.strip()
    if spec.startswith("["):
        end = spec.find("]")
        if end == -1:
            raise ValueError(f"unterminated '[' in {spec!r}")
        rest = spec[end + 1:]
        port = int(rest[1:]) if rest.startswith(":") else NTP_PORT
        host = spec[1:end]
    elif spec.count(":") == 1:
        host, p = spec.split(":")
        port = int(p)
    else:
        host, port = spec, NTP_PORT
    if not host or not 0 < port < 65536:
        raise ValueError(f"invalid NTP server {spec!r}")
    return host, port


async def query(resolver: Resolver, host: str, port: int = NTP_PORT, *, timeout: float = 2.0,
                clock: Callable[[], float] = time.time, max_addresses: int = 1) -> list[NtpSample | NtpError]:
    """Resolve ``host`` with ``resolver`` and ask up to ``max_addresses`` of its addresses concurrently.

    Returns one sample or error per address asked; a name that does not resolve gives one
    ``NtpError("dns", ...)``. Never raises for network trouble.
    """
    server = f"{host}:{port}" if port != NTP_PORT else host
    try:
        lookup = await resolver.resolve(host)
    except ResolveError as exc:
        return [NtpError("dns", f"{server}: {exc}")]
    addresses = list(lookup.addresses)[:max(1, max_addresses)]

    async def one(address: str) -> NtpSample | NtpError:
        try:
            return await query_address(address, port, timeout=timeout, server=server, clock=clock)
        except NtpError as exc:
            return exc

    return list(await asyncio.gather(*(one(a) for a in addresses)))
