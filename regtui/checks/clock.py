"""Clock panel: the host's clock against NTP servers and registry ``Date`` headers, and its sync state.

- NTP: the servers the root's chrony / timesyncd / ntpd configuration uses
  (:mod:`regtui.config.timesync`), or ``--ntp-server HOST[:PORT]`` (repeatable), asked once each
  with the SNTP client (:mod:`regtui.net.ntp`) through the shared resolver, all at once, each
  bounded by the read timeout. A pool name is asked on up to four of its addresses.
- Registry ``Date`` headers the mirrors probe saw (``ctx.observations["registry_dates"]``, a list
  of ``{endpoint, date, local_time}``), read in :func:`correlate` because probes run concurrently.
- Kernel sync state (``adjtimex``: ``STA_UNSYNC``, ``maxerror``) when the root is this machine.
- Whether a sync daemon is configured and enabled under the root.

Findings: ``clock.skew`` (error above 60 s, warning above 2 s, beyond the measurement's own
uncertainty; with what the skew breaks), ``clock.unsynchronized``, ``clock.ntp-unreachable``.
Fixes are commands (``chronyc makestep``, ``timedatectl set-ntp true``, ``systemctl enable --now
chrony``), shown and never run by regtui.

The data carries ``skew_seconds`` (float, positive = local clock ahead) and ``skew_source``; the
certs probe explains "not yet valid" with it. Its ``correlate`` runs before this module's, so it
should call :func:`skew_estimate`, which also counts registry ``Date`` headers.
"""

from __future__ import annotations

import asyncio
import ctypes
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from regtui.config import timesync
from regtui.config.timesync import NtpSource, SyncDaemon, TimeSync
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.net import ntp
from regtui.net.ntp import NtpError, NtpSample
from regtui.probecontext import ProbeContext, ProbeResult

__all__ = [
    "probe",
    "correlate",
    "skew_estimate",
    "kernel_sync_state",
    "KernelSync",
    "SKEW_ERROR_SECONDS",
    "SKEW_WARNING_SECONDS",
]

PANEL = "clock"
#: Above this (beyond the uncertainty), skew is an error: certificates and tokens break.
SKEW_ERROR_SECONDS = 60.0
#: Above this, skew is a warning.
SKEW_WARNING_SECONDS = 2.0
#: An HTTP ``Date`` has one-second resolution; with the round trip, trust it to about this.
DATE_UNCERTAINTY_SECONDS = 1.0
#: Docker Hub bearer tokens last this long when the token response names no ``expires_in`` (SEMANTICS §5).
HUB_TOKEN_SECONDS = 60
#: At most this many configured servers are asked (a bounded probe on a hostile config).
MAX_SERVERS = 8
#: Addresses asked per ``pool`` name (chrony's default ``maxsources``).
POOL_ADDRESSES = 4
#: Two samples agree when their offsets differ by less than this (or their delays).
_AGREEMENT_SECONDS = 1.0
#: Linux's NTP_PHASE_LIMIT-derived value: maxerror at or above 16 s means "unsynchronised".
_MAXERROR_UNSYNC_US = 16_000_000
_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


# -- kernel state --------------------------------------------------------------------------------

class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """``struct timex`` (linux/timex.h); ctypes supplies the same padding as the C compiler."""

    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time", _Timeval), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int), ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int), ("_reserved", ctypes.c_int * 11),
    ]


@dataclass(frozen=True)
class KernelSync:
    """What ``adjtimex(2)`` (read-only, ``modes = 0``) says about the kernel clock."""

    state: int | None = None
    """Return value: 0 TIME_OK ... 5 TIME_ERROR (clock not synchronised)."""
    status: int = 0
    maxerror_us: int | None = None
    esterror_us: int | None = None
    error: str = ""
    """Why it could not be read."""

    @property
    def unsynchronized(self) -> bool:
        """The kernel considers the clock unsynchronised."""
        if self.state is None:
            return False
        return bool(self.status & _STA_UNSYNC) or self.state == _TIME_ERROR or \
            (self.maxerror_us is not None and self.maxerror_us >= _MAXERROR_UNSYNC_US)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"state": self.state, "status": self.status, "sta_unsync": bool(self.status & _STA_UNSYNC),
                "maxerror_us": self.maxerror_us, "esterror_us": self.esterror_us,
                "unsynchronized": self.unsynchronized,
                "synchronized": None if self.state is None else not self.unsynchronized, "error": self.error}


def kernel_sync_state() -> KernelSync:
    """Read the kernel's NTP state with ``adjtimex`` (no change is requested)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError) as exc:
        return KernelSync(error=f"adjtimex unavailable: {exc}")
    if state < 0:
        return KernelSync(error=f"adjtimex failed: errno {ctypes.get_errno()}")
    return KernelSync(state, tx.status, tx.maxerror, tx.esterror)


# -- NTP measurements ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Asked:
    """One configured server and what its addresses answered."""

    source: NtpSource
    answers: tuple[NtpSample | NtpError, ...]


def _servers(ctx: ProbeContext, ts: TimeSync) -> tuple[list[NtpSource], str]:
    """The servers to ask, and where they come from."""
    if ctx.options.ntp_servers:
        out = []
        for spec in ctx.options.ntp_servers:
            try:
                h, p = ntp.parse_server_spec(spec)
            except ValueError:
                continue
            out.append(NtpSource(h, p, "--ntp-server", "", "--ntp-server"))
        return out[:MAX_SERVERS], "--ntp-server"
    servers = ts.servers()
    daemons = sorted({s.daemon for s in servers})
    return servers[:MAX_SERVERS], ", ".join(daemons) if daemons else "none configured"


async def _ask(ctx: ProbeContext, source: NtpSource, timeout: float) -> _Asked:
    def local_clock() -> float:
        return ctx.host.now().timestamp()

    answers = await ntp.query(ctx.resolver, source.host, source.port, timeout=timeout, clock=local_clock,
                              max_addresses=POOL_ADDRESSES if source.kind == "pool" else 1)
    return _Asked(source, tuple(answers))


def _answer_dict(asked: _Asked, answer: NtpSample | NtpError) -> dict[str, Any]:
    base = {"server": asked.source.spec, "kind": asked.source.kind, "source": asked.source.source}
    if isinstance(answer, NtpError):
        return {**base, "ok": False, "error": str(answer), "error_kind": answer.kind}
    return {**base, "ok": True, **answer.to_dict(), "skew_seconds": round(-answer.offset, 6)}


def _choose(samples: list[NtpSample]) -> tuple[list[NtpSample], list[NtpSample]]:
    """The largest group of mutually agreeing samples (ties: lower stratum, then shorter delay).

    Returns (chosen, disagreeing). A simplified form of NTP's selection: a server whose time
    disagrees with the majority is a falseticker, not evidence about this host's clock.
    """
    def agrees(a: NtpSample, b: NtpSample) -> bool:
        return abs(a.offset - b.offset) <= max(_AGREEMENT_SECONDS, a.delay + b.delay)

    best: list[NtpSample] = []
    best_key: tuple[float, ...] | None = None
    for s in samples:
        group = [o for o in samples if agrees(s, o)]
        key = (-len(group), min(o.stratum for o in group), min(o.delay for o in group))
        if best_key is None or key < best_key:
            best, best_key = group, key
    return best, [s for s in samples if s not in best]


def _ntp_estimate(asked: list[_Asked]) -> dict[str, Any] | None:
    samples = [a for x in asked for a in x.answers if isinstance(a, NtpSample)]
    usable = [s for s in samples if s.leap != 3]
    if not usable:
        return None
    chosen, others = _choose(usable)
    offset = statistics.median(s.offset for s in chosen)
    uncertainty = max(s.delay for s in chosen) / 2 + 0.001
    servers = ", ".join(s.server for s in chosen)
    return {"skew_seconds": -offset, "uncertainty_seconds": uncertainty, "source": f"ntp ({servers})",
            "kind": "ntp", "servers": [s.server for s in chosen],
            "disagreeing": [{"server": s.server, "skew_seconds": round(-s.offset, 3)} for s in others],
            "unsynchronized_servers": [s.server for s in samples if s.leap == 3]}


# -- registry Date headers -----------------------------------------------------------------------

def _as_epoch(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                dt = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
        return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
    return None


def _date_estimate(entries: Any) -> dict[str, Any] | None:
    """Skew from registry ``Date`` headers: local time at the response minus the header's time.

    A Date is truncated to the second, so the server's time lies in [date, date + 1): the
    midpoint is used and the estimate trusted to about one second.
    """
    skews = []
    endpoints = []
    for e in entries if isinstance(entries, (list, tuple)) else []:
        get = e.get if isinstance(e, dict) else (lambda k, _e=e: getattr(_e, k, None))
        date, local = get("date"), get("local_time")
        d = None
        if isinstance(date, str):
            try:
                d = parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError, IndexError):
                d = None
        else:
            d = _as_epoch(date)
        t = _as_epoch(local)
        if d is None or t is None:
            continue
        skews.append(t - (d + 0.5))
        endpoints.append(str(get("endpoint") or ""))
    if not skews:
        return None
    return {"skew_seconds": statistics.median(skews), "uncertainty_seconds": DATE_UNCERTAINTY_SECONDS,
            "source": f"registry Date headers ({len(skews)} responses)", "kind": "registry-date",
            "endpoints": sorted(set(e for e in endpoints if e))}


def skew_estimate(results: dict[str, ProbeResult], ctx: ProbeContext) -> dict[str, Any] | None:
    """The best skew measurement available now: NTP if any server answered, else registry ``Date``s.

    Returns ``{"skew_seconds", "uncertainty_seconds", "source", "kind"}`` (positive skew: the
    local clock is ahead), or ``None``. Safe to call from another probe's ``correlate``.
    """
    clock = results.get(PANEL)
    data = clock.data if clock is not None and isinstance(clock.data, dict) else {}
    if data.get("skew_seconds") is not None and data.get("skew_kind") == "ntp":
        return {"skew_seconds": data["skew_seconds"], "uncertainty_seconds": data.get("skew_uncertainty_seconds", 0.0),
                "source": data.get("skew_source"), "kind": "ntp"}
    return _date_estimate(ctx.observations.get("registry_dates", []))


# -- findings ------------------------------------------------------------------------------------

def _preferred(ts: TimeSync) -> SyncDaemon | None:
    """The daemon a fix should act through: enabled first, then installed, chrony first."""
    for pool in (ts.enabled(), [d for d in ts.daemons if d.installed and not d.masked],
                 [d for d in ts.daemons if d.installed]):
        if pool:
            return pool[0]
    return None


def _fmt(seconds: float) -> str:
    s = abs(seconds)
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 120:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def _breaks(skew: float) -> list[str]:
    """What a skew of ``skew`` seconds (positive: local ahead) breaks, in the user's terms."""
    amount = _fmt(skew)
    if skew < 0:
        out = [f"certificates issued less than {amount} ago look \"not yet valid\" "
               "(x509: certificate has expired or is not yet valid)"]
        if -skew > HUB_TOKEN_SECONDS:
            out.append(f"bearer tokens: the client keeps using a token for up to {amount} after the registry "
                       f"has expired it (Docker Hub tokens last {HUB_TOKEN_SECONDS} s), so requests can fail "
                       "with 401 unauthorized mid-pull")
        return out
    out = [f"certificates that expire within the next {amount} already look expired"]
    if skew > HUB_TOKEN_SECONDS:
        out.append(f"bearer tokens: every token looks expired on arrival (Docker Hub tokens last "
                   f"{HUB_TOKEN_SECONDS} s), so a new one is fetched for every request")
    return out


def _severity(skew: float, uncertainty: float) -> str | None:
    margin = abs(skew) - uncertainty
    if margin > SKEW_ERROR_SECONDS:
        return "error"
    if margin > SKEW_WARNING_SECONDS:
        return "warning"
    return None


def _skew_finding(estimate: dict[str, Any], ts: TimeSync) -> Finding | None:
    skew = float(estimate["skew_seconds"])
    severity = _severity(skew, float(estimate["uncertainty_seconds"]))
    if severity is None:
        return None
    daemon = _preferred(ts)
    if daemon is not None and daemon.enabled:
        command, summary = daemon.step_command, f"step the clock now through {daemon.name}: {daemon.step_command}"
    elif daemon is not None:
        command, summary = daemon.enable_command, f"enable {daemon.name} so it sets the clock: {daemon.enable_command}"
    else:
        command, summary = "timedatectl set-ntp true", "enable NTP synchronisation: timedatectl set-ntp true"
    direction = "ahead of" if skew > 0 else "behind"
    reference = "NTP" if estimate["kind"] == "ntp" else "the registries' clocks"
    breaks = _breaks(skew)
    return finding(
        "clock.skew", "clock",
        f"the local clock is {_fmt(skew)} {direction} {reference}",
        f"Measured against {estimate['source']}: the local clock is {skew:+.3f} s off "
        f"(±{float(estimate['uncertainty_seconds']):.3f} s). This breaks: " + "; ".join(breaks) + ".",
        severity=severity,
        evidence={"skew_seconds": round(skew, 3), "uncertainty_seconds": round(float(estimate["uncertainty_seconds"]), 3),
                  "source": estimate["source"], "kind": estimate["kind"], "breaks": breaks,
                  **({"servers": estimate["servers"]} if "servers" in estimate else {}),
                  **({"endpoints": estimate["endpoints"]} if "endpoints" in estimate else {}),
                  **({"disagreeing": estimate["disagreeing"]} if estimate.get("disagreeing") else {})},
        fix=fix("clock.skew", "clock", summary + " (regtui shows this command; it never runs it)", kind="command",
                params={"command": command, "daemon": daemon.name if daemon else None}),
    )


def _unreachable(asked: list[_Asked], origin: str) -> list[Finding]:
    if not asked or any(isinstance(a, NtpSample) for x in asked for a in x.answers):
        return []
    failures = [{"server": x.source.spec, "source": x.source.source, "error": str(a), "kind": a.kind}
                for x in asked for a in x.answers if isinstance(a, NtpError)]
    names = ", ".join(x.source.spec for x in asked)
    return [finding(
        "clock.ntp-unreachable", "ntp",
        f"no configured NTP server answers ({names})",
        f"None of the NTP servers from {origin} answered an SNTP request (UDP). The sync daemon cannot "
        "correct the clock, so it drifts; certificate validity and token expiry checks depend on it.",
        evidence={"servers": failures, "configured_from": origin},
        fix=fix("clock.ntp-unreachable", "ntp", "allow UDP port 123 to these servers, or configure a reachable one",
                kind="manual", files=sorted({f["source"].rsplit(":", 1)[0] for f in failures
                                             if f["source"].startswith("/")})),
    )]


def _unsynchronized(ts: TimeSync, kernel: KernelSync | None) -> list[Finding]:
    reasons: list[str] = []
    enabled = ts.enabled()
    if not enabled:
        configured = [d.name for d in ts.daemons if d.configured or d.installed]
        masked = [d.name for d in ts.daemons if d.masked]
        why = "no time sync daemon is enabled under the root"
        if configured:
            why += f" ({', '.join(configured)} installed or configured but not enabled"
            why += f"; masked: {', '.join(masked)})" if masked else ")"
        reasons.append(why)
    if kernel is not None and kernel.unsynchronized:
        reasons.append(f"the kernel reports the clock unsynchronised (adjtimex state {kernel.state}, "
                       f"STA_UNSYNC {'set' if kernel.status & _STA_UNSYNC else 'clear'}, "
                       f"maxerror {kernel.maxerror_us} µs)")
    if not reasons:
        return []
    daemon = _preferred(ts)
    if daemon is not None and not daemon.enabled:
        command = daemon.enable_command
    elif daemon is not None:
        command = daemon.step_command
    else:
        command = "timedatectl set-ntp true"
    return [finding(
        "clock.unsynchronized", "clock",
        "the clock is not kept in sync" if not enabled else "the kernel reports the clock unsynchronised",
        "; ".join(reasons).capitalize() + ". Without synchronisation the clock drifts until certificates "
        "look not yet valid or expired and registry tokens expire early or late.",
        evidence={"reasons": reasons, "enabled": [d.name for d in enabled],
                  "daemons": [d.to_dict() for d in ts.daemons],
                  "kernel": kernel.to_dict() if kernel else None},
        fix=fix("clock.unsynchronized", "clock", f"run: {command} (regtui shows this command; it never runs it)",
                kind="command", params={"command": command, "daemon": daemon.name if daemon else None}),
    )]


# -- the probe -----------------------------------------------------------------------------------

async def probe(ctx: ProbeContext) -> ProbeResult:
    """Ask the NTP servers, read the sync configuration and kernel state, and judge the clock."""
    ts = timesync.load(ctx.host)
    servers, origin = _servers(ctx, ts)
    timeout = max(0.2, min(ctx.timeouts.read, ctx.timeouts.connect))
    asked = list(await asyncio.gather(*(_ask(ctx, s, timeout) for s in servers)))
    kernel = kernel_sync_state() if ctx.host.live else None
    estimate = _ntp_estimate(asked)
    notes: list[str] = []
    if not servers:
        notes.append("no NTP server configured under the root; pass --ntp-server HOST[:PORT] to compare against one")
    if estimate and estimate["disagreeing"]:
        notes.append("NTP servers disagree: " + ", ".join(f"{d['server']} ({d['skew_seconds']:+.1f} s)"
                                                          for d in estimate["disagreeing"])
                     + " disagree with the majority and are not used for the estimate")
    if estimate and estimate["unsynchronized_servers"]:
        notes.append("servers reporting themselves unsynchronised (leap 3) are not used: "
                     + ", ".join(estimate["unsynchronized_servers"]))
    data: dict[str, Any] = {
        "local_time": ctx.host.now().astimezone(timezone.utc).isoformat(),
        "skew_seconds": round(estimate["skew_seconds"], 6) if estimate else None,
        "skew_source": estimate["source"] if estimate else None,
        "skew_kind": "ntp" if estimate else None,
        "skew_uncertainty_seconds": round(estimate["uncertainty_seconds"], 6) if estimate else None,
        "ntp": {"configured_from": origin, "servers": [_answer_dict(x, a) for x in asked for a in x.answers]},
        "sync": {**ts.to_dict(), "enabled": [d.name for d in ts.enabled()],
                 "kernel": kernel.to_dict() if kernel else None},
        "registry_dates": [],
        "notes": notes,
    }
    findings: list[Finding] = []
    findings += _unreachable(asked, origin)
    findings += _unsynchronized(ts, kernel)
    if estimate:
        skew = _skew_finding(estimate, ts)
        if skew:
            findings.append(skew)
    return ProbeResult(PANEL, data, findings)


def correlate(results: dict[str, ProbeResult], ctx: ProbeContext) -> list[Finding]:
    """Add the registry ``Date`` evidence; judge skew by it when no NTP server answered."""
    result = results.get(PANEL)
    if result is None or not isinstance(result.data, dict):
        return []
    data = result.data
    dates = _date_estimate(ctx.observations.get("registry_dates", []))
    data["registry_dates"] = _date_rows(ctx.observations.get("registry_dates", []))
    if dates is None:
        return []
    data["registry_date_skew_seconds"] = round(dates["skew_seconds"], 3)
    if data.get("skew_seconds") is not None:
        gap = abs(float(data["skew_seconds"]) - dates["skew_seconds"])
        if gap > SKEW_WARNING_SECONDS + DATE_UNCERTAINTY_SECONDS:
            data["notes"].append(f"registry Date headers put the skew at {dates['skew_seconds']:+.1f} s, NTP at "
                                 f"{float(data['skew_seconds']):+.1f} s: one of the references is itself wrong")
        return []
    data.update({"skew_seconds": round(dates["skew_seconds"], 6), "skew_source": dates["source"],
                 "skew_kind": "registry-date", "skew_uncertainty_seconds": dates["uncertainty_seconds"]})
    skew = _skew_finding(dates, timesync.load(ctx.host))
    return [skew] if skew else []


def _date_rows(entries: Any) -> list[dict[str, Any]]:
    """The Date observations as panel rows, each with its own offset (server minus local, like NTP's)."""
    rows = []
    for e in entries if isinstance(entries, (list, tuple)) else []:
        if not isinstance(e, dict):
            continue
        row = {k: (v if isinstance(v, (str, int, float)) or v is None else str(v))
               for k, v in e.items() if k in ("endpoint", "date", "local_time", "source")}
        one = _date_estimate([e])
        row["offset_seconds"] = round(-one["skew_seconds"], 3) if one else None
        rows.append(row)
    return rows[:100]
