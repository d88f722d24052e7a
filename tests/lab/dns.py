"""dnsmasq as an authoritative-looking DNS server for lab zones on a high loopback port.

``dnsmasq -k --port=N --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts
--address=/lab.test/127.0.0.1 --address=/nx.test/`` answers every name under ``lab.test`` with
127.0.0.1 and NXDOMAIN for everything under ``nx.test``; nothing is forwarded anywhere
(``--no-resolv`` and no ``--server``), and the machine's /etc/dnsmasq.conf is not read.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from .procs import LOOPBACK, Component, free_port, need_binary

__all__ = ["Dnsmasq", "port_53_address"]

DEFAULT_ADDRESSES: Mapping[str, str] = {"lab.test": "127.0.0.1"}
DEFAULT_NXDOMAINS: tuple[str, ...] = ("nx.test",)


def port_53_address() -> str | None:
    """A loopback address (127.53.x.y) whose UDP and TCP port 53 are free, or None.

    Go's resolver always asks port 53 and cannot be given another, so a lab server that Go
    programs use as their only nameserver listens on port 53 of a loopback address of its own.
    """
    rng = random.Random()
    for _ in range(50):
        addr = f"127.53.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((addr, 53))
        except OSError:
            continue
        return addr
    return None


def _probe_query(name: str) -> bytes:
    """A minimal DNS query (id 0x1ab, RD set, one A question) used for readiness."""
    header = struct.pack("!HHHHHH", 0x1AB, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return header + qname + struct.pack("!HH", 1, 1)


class Dnsmasq(Component):
    """``dnsmasq -k`` on ``host:port`` (UDP and TCP), logging to its component log."""

    name = "dnsmasq"
    start_timeout = 15.0

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        addresses: Mapping[str, str] = DEFAULT_ADDRESSES,
        nxdomains: Sequence[str] = DEFAULT_NXDOMAINS,
        hosts: Mapping[str, str] | None = None,
    ) -> None:
        """Configure (not start) dnsmasq.

        - ``addresses``: domain -> IP; the domain and every name below it answer that IP.
        - ``nxdomains``: domains (and their subdomains) that answer NXDOMAIN.
        - ``hosts``: exact name -> IP records (``--host-record``).
        """
        super().__init__(workdir)
        self.host = host
        self.port = port or free_port(host, udp=True, tcp=True)
        self.addresses = dict(addresses)
        self.nxdomains = tuple(nxdomains)
        self.hosts = dict(hosts or {})

    @property
    def nameserver(self) -> tuple[str, int]:
        """``(host, port)`` to point a resolver at."""
        return self.host, self.port

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Build the command line; an empty conf file keeps /etc/dnsmasq.conf out."""
        conf = self.workdir / "dnsmasq.conf"
        conf.write_text("# regtui lab: everything is on the command line\n")
        argv = [
            need_binary("dnsmasq"),
            "-k",
            f"--conf-file={conf}",
            f"--port={self.port}",
            f"--listen-address={self.host}",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--log-queries",
            "--log-facility=-",
            f"--pid-file={self.workdir / 'dnsmasq.pid'}",
        ]
        if os.geteuid() == 0:
            # Stay root: the dropped-to "dnsmasq" user could not read our 0700 temp dir.
            argv.append("--user=root")
        argv += [f"--host-record={name},{ip}" for name, ip in self.hosts.items()]
        argv += [f"--address=/{domain}/{ip}" for domain, ip in self.addresses.items()]
        argv += [f"--address=/{domain}/" for domain in self.nxdomains]
        return argv, None

    def _ready(self) -> bool:
        """Ready when a UDP query gets any answer with our id."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            try:
                # Connected, so a not-yet-bound port fails at once with ECONNREFUSED.
                sock.connect((self.host, self.port))
                sock.send(_probe_query("ready.nx.test"))
                data = sock.recv(512)
            except OSError:
                return False
        return data[:2] == b"\x01\xab"
