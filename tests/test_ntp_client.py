"""The SNTP client: RFC 4330 arithmetic and reply checks on synthetic packets, then real chronyd."""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

import pytest

from lab.dns import Dnsmasq
from lab.ntp import Chrony
from lab.probectx import context, fake_root
from lab.sockets import UdpBlackHole
from regtui.net import ntp
from regtui.net.ntp import NtpError, NtpSample


def _reply(request: bytes, *, t2: float, t3: float, stratum: int = 2, leap: int = 0, mode: int = 4,
           refid: bytes = b"\x0a\x00\x00\x01", echo: bool = True) -> bytes:
    """A server reply to ``request`` with receive/transmit times ``t2``/``t3`` (Unix seconds)."""
    def ts(u: float) -> bytes:
        s = u + ntp.NTP_UNIX_DELTA
        return struct.pack("!II", int(s) & 0xFFFFFFFF, int((s - int(s)) * 2**32))
    packet = bytearray(48)
    packet[0] = (leap << 6) | (4 << 3) | mode
    packet[1] = stratum
    packet[4:12] = struct.pack("!II", 1 << 16, 1 << 15)
    packet[12:16] = refid
    packet[24:32] = request[40:48] if echo else b"\x00" * 8
    packet[32:40] = ts(t2)
    packet[40:48] = ts(t3)
    return bytes(packet)


def test_compute_uses_rfc4330_formula() -> None:
    """Offset is the mean of the two one-way differences; delay excludes server processing time."""
    offset, delay = ntp.compute(t1=100.0, t2=700.05, t3=700.06, t4=100.11)
    assert offset == pytest.approx(600.0)
    assert delay == pytest.approx(0.10)


def test_request_is_client_mode_v4_with_our_timestamp() -> None:
    """The request is 48 bytes, LI 0, version 4, mode 3, transmit timestamp = T1 (to the microsecond)."""
    t1 = 1_750_000_000.25
    req = ntp.build_request(t1)
    assert len(req) == 48 and req[0] == 0b00_100_011
    seconds, fraction = struct.unpack("!II", req[40:48])
    assert seconds - ntp.NTP_UNIX_DELTA + fraction / 2**32 == pytest.approx(t1, abs=1e-5)


def test_parse_reply_reads_fields_and_checks_origin() -> None:
    """A well-formed reply yields stratum, leap, refid and the server timestamps."""
    req = ntp.build_request(1_750_000_000.0)
    fields = ntp.parse_reply(_reply(req, t2=1_750_000_010.0, t3=1_750_000_010.5), req)
    assert fields["stratum"] == 2 and fields["leap"] == 0 and fields["refid"] == "10.0.0.1"
    assert fields["t3"] == pytest.approx(1_750_000_010.5, abs=1e-6)
    assert fields["root_delay"] == pytest.approx(1.0) and fields["root_dispersion"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "kind", "text"),
    [
        ({"mode": 3}, "bad-reply", "mode 3"),
        ({"echo": False}, "bad-reply", "echo"),
        ({"stratum": 0, "refid": b"RATE"}, "kiss", "RATE"),
    ],
)
def test_parse_reply_rejects_bad_replies(kwargs: dict, kind: str, text: str) -> None:
    """Wrong mode, an unechoed origin (stale/forged) and a kiss-o'-death are refused with their reason."""
    req = ntp.build_request(1_750_000_000.0)
    with pytest.raises(NtpError) as err:
        ntp.parse_reply(_reply(req, t2=1.8e9, t3=1.8e9, **kwargs), req)
    assert err.value.kind == kind and text in str(err.value)


def test_parse_reply_rejects_short_packet() -> None:
    """A reply shorter than 48 bytes is a bad reply, not an exception of another type."""
    with pytest.raises(NtpError, match="short"):
        ntp.parse_reply(b"\x24" * 20, ntp.build_request(1.7e9))


def test_parse_server_spec_forms() -> None:
    """HOST, HOST:PORT, [v6]:PORT and bare IPv6 parse; junk raises ValueError."""
    assert ntp.parse_server_spec("pool.ntp.org") == ("pool.ntp.org", 123)
    assert ntp.parse_server_spec("127.0.0.1:1123") == ("127.0.0.1", 1123)
    assert ntp.parse_server_spec("[::1]:1123") == ("::1", 1123)
    assert ntp.parse_server_spec("::1") == ("::1", 123)
    with pytest.raises(ValueError):
        ntp.parse_server_spec("host:0")


@pytest.mark.lab
def test_query_true_chrony(chrony: Chrony, tmp_path: Path) -> None:
    """chronyd serving this machine's time: offset near zero, stratum 8, positive small delay."""
    ctx = context(fake_root(tmp_path))
    [sample] = asyncio.run(ntp.query(ctx.resolver, chrony.host, chrony.port, timeout=2))
    assert isinstance(sample, NtpSample)
    assert abs(sample.offset) < 0.5 and sample.stratum == 8 and 0 <= sample.delay < 0.5
    assert sample.address == f"127.0.0.1:{chrony.port}"


@pytest.mark.lab
def test_query_chrony_600s_ahead_by_name(chrony_ahead: Chrony, tmp_path: Path) -> None:
    """A name from the root's hosts file is resolved by regtui's resolver; the +600 s server gives offset ~ +600."""
    ctx = context(fake_root(tmp_path, hosts={"ntp.lab.test": "127.0.0.1"}))
    [sample] = asyncio.run(ntp.query(ctx.resolver, "ntp.lab.test", chrony_ahead.port, timeout=2))
    assert isinstance(sample, NtpSample)
    assert sample.offset == pytest.approx(600, abs=5)
    assert sample.server == f"ntp.lab.test:{chrony_ahead.port}"
    assert ctx.resolver.log[-1].source == "hosts"


@pytest.mark.lab
def test_query_local_clock_is_a_parameter(chrony: Chrony, tmp_path: Path) -> None:
    """With a local clock 30 s ahead, the true server's offset is about -30 s."""
    ctx = context(fake_root(tmp_path))
    [sample] = asyncio.run(ntp.query(ctx.resolver, chrony.host, chrony.port, timeout=2,
                                     clock=lambda: time.time() + 30))
    assert isinstance(sample, NtpSample) and sample.offset == pytest.approx(-30, abs=1)


@pytest.mark.lab
def test_query_black_hole_times_out_in_one_timeout(udp_black_hole: UdpBlackHole, tmp_path: Path) -> None:
    """A UDP port that never answers gives a timeout error after about the timeout, never a hang."""
    ctx = context(fake_root(tmp_path))
    started = time.monotonic()
    [err] = asyncio.run(ntp.query(ctx.resolver, udp_black_hole.host, udp_black_hole.port, timeout=0.5))
    elapsed = time.monotonic() - started
    assert isinstance(err, NtpError) and err.kind == "timeout"
    assert 0.4 < elapsed < 1.5


@pytest.mark.lab
def test_query_closed_port_is_refused(closed_port: int, tmp_path: Path) -> None:
    """A UDP port nothing listens on is reported as refused (ICMP port unreachable), at once."""
    ctx = context(fake_root(tmp_path))
    [err] = asyncio.run(ntp.query(ctx.resolver, "127.0.0.1", closed_port, timeout=2))
    assert isinstance(err, NtpError) and err.kind == "refused"


@pytest.mark.lab
def test_query_unresolvable_name_is_a_dns_error(dnsmasq: Dnsmasq, tmp_path: Path) -> None:
    """A server name that is NXDOMAIN at the lab DNS gives one 'dns' error naming the lookup."""
    ctx = context(fake_root(tmp_path), dns_port=dnsmasq.port)
    [err] = asyncio.run(ntp.query(ctx.resolver, "time.nx.test", 123, timeout=2))
    assert isinstance(err, NtpError) and err.kind == "dns" and "no such host" in str(err)
