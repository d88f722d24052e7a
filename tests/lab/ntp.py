"""chronyd as an NTP server on a high loopback port that never touches the system clock.

``chronyd -d -x -f CONF`` with ``port N``, ``bindaddress 127.0.0.1``, ``local stratum 8``,
``allow 127.0.0.1`` and ``cmdport 0`` serves its own (system) time. With ``offset`` set, it runs
under libfaketime (``LD_PRELOAD=libfaketime.so.1 FAKETIME=+600s``) and serves a clock that far
ahead (or behind), which is how clock-skew findings are tested without changing the real clock.

:func:`sntp_query` is a minimal SNTP client (one 48-byte mode-3 request over UDP).
"""

from __future__ import annotations

import glob
import os
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import LOOPBACK, Component, LabError, free_port, need_binary

__all__ = ["Chrony", "SntpAnswer", "sntp_query", "find_libfaketime"]

# Seconds between the NTP epoch (1900) and the Unix epoch (1970).
NTP_EPOCH_OFFSET = 2208988800

# Where Debian's faketime package puts the library (multiarch dir varies by architecture).
_FAKETIME_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
)


def find_libfaketime() -> str | None:
    """Path of ``libfaketime.so.1`` from Debian's faketime package, or None."""
    for pattern in _FAKETIME_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


@dataclass(frozen=True)
class SntpAnswer:
    """The parts of an NTP server reply the lab looks at."""

    stratum: int
    leap: int
    version: int
    mode: int
    transmit: float
    """Server transmit timestamp as Unix time (seconds)."""
    receive: float
    """Server receive timestamp as Unix time (seconds)."""
    sent_at: float
    """Local Unix time when the request was sent."""
    received_at: float
    """Local Unix time when the answer arrived."""

    @property
    def offset(self) -> float:
        """Server clock minus local clock (the usual NTP formula), in seconds."""
        return ((self.receive - self.sent_at) + (self.transmit - self.received_at)) / 2


def _ntp_to_unix(seconds: int, fraction: int) -> float:
    """Convert a 64-bit NTP timestamp to Unix time."""
    return seconds - NTP_EPOCH_OFFSET + fraction / 2**32


def sntp_query(host: str, port: int, *, timeout: float = 2.0) -> SntpAnswer:
    """Send one SNTP (v4, client mode) request and parse the reply.

    Raises ``TimeoutError`` when nothing answers, ``ConnectionRefusedError`` when the port is closed.
    """
    packet = bytearray(48)
    packet[0] = (0 << 6) | (4 << 3) | 3  # LI=0, VN=4, mode=3 (client)
    sent_at = time.time()
    seconds = int(sent_at) + NTP_EPOCH_OFFSET
    fraction = int((sent_at % 1) * 2**32)
    packet[40:48] = struct.pack("!II", seconds, fraction)  # our transmit = their originate
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        # Connected, so a closed port fails at once with ECONNREFUSED instead of timing out.
        sock.connect((host, port))
        sock.send(bytes(packet))
        data = sock.recv(512)
    received_at = time.time()
    if len(data) < 48:
        raise LabError(f"short NTP reply ({len(data)} bytes)")
    first = data[0]
    rx_s, rx_f, tx_s, tx_f = struct.unpack("!IIII", data[32:48])
    return SntpAnswer(
        stratum=data[1],
        leap=first >> 6,
        version=(first >> 3) & 0x7,
        mode=first & 0x7,
        transmit=_ntp_to_unix(tx_s, tx_f),
        receive=_ntp_to_unix(rx_s, rx_f),
        sent_at=sent_at,
        received_at=received_at,
    )


class Chrony(Component):
    """``chronyd -d -x`` serving NTP on ``host:port`` (UDP), optionally with a faked clock."""

    name = "chronyd"
    start_timeout = 15.0

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        offset: int = 0,
    ) -> None:
        """Configure (not start) chronyd; ``offset`` seconds shifts its clock via libfaketime."""
        super().__init__(workdir)
        self.host = host
        self.port = port or free_port(host, udp=True, tcp=False)
        self.offset = offset
        self.config_path = self.workdir / "chrony.conf"

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Write chrony.conf; set up LD_PRELOAD/FAKETIME for a shifted clock."""
        lines = [
            f"port {self.port}",
            f"bindaddress {self.host}",
            "local stratum 8",
            "allow 127.0.0.0/8",
            # No command port and no Unix command socket: several chronyd can run at once and
            # none touches /run/chrony.
            "cmdport 0",
            "bindcmdaddress /",
            f"pidfile {self.workdir / 'chronyd.pid'}",
            f"driftfile {self.workdir / 'chrony.drift'}",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")
        env = dict(os.environ)
        if self.offset:
            lib = find_libfaketime()
            if lib is None:
                raise LabError("libfaketime.so.1 not found (Debian package faketime)")
            env["LD_PRELOAD"] = lib
            env["FAKETIME"] = f"{self.offset:+d}s"
        argv = [need_binary("chronyd"), "-d", "-x", "-f", str(self.config_path)]
        # As root chronyd would drop to _chrony and then fail to write into our temp dir.
        argv += ["-u", "root"] if os.geteuid() == 0 else ["-U"]
        return argv, env

    def _ready(self) -> bool:
        """Ready when an SNTP query is answered."""
        try:
            sntp_query(self.host, self.port, timeout=0.3)
        except OSError:
            return False
        return True
