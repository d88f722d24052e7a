"""Proxy panel (live): each daemon's proxy decisions per endpoint, and whether those proxies work.

Views, per runtime:

- **configured**: ``RuntimeView.proxy_env`` (systemd ``Environment=``/``EnvironmentFile=`` and
  drop-ins, daemon.json ``proxies``, k3s ``.env`` and ``CONTAINERD_*_PROXY``), what the daemon
  will use after its next restart;
- **running**: when the root is this machine (or a proc root is given in
  ``options.extra["proc_root"]``) and the daemon runs, its ``/proc/<pid>/environ``
  (:mod:`regtui.net.procenv`), what it uses now. When the two differ: ``proxy.not-applied``.

Per endpoint (every route endpoint plus the token and redirect hosts in
``ctx.observations["extra_endpoints"]``), the decision by Go's rules with the NO_PROXY entry that
matched. Then, for every distinct proxy some decision uses, all at once and each bounded by the
timeouts:

- the proxy accepts TCP (``proxy.unreachable``: DNS, refused, timeout, or accepts and never answers);
- an ``https://`` proxy speaks TLS: Go speaks TLS *to* it, so a plain HTTP proxy there fails with
  "first record does not look like a TLS handshake" or a handshake timeout (``proxy.scheme-tls``,
  confirmed by a plain-HTTP request on a second connection; SEMANTICS §7 #8, §8);
- ``CONNECT host:port`` for each https endpoint (a proxied ``GET`` for http ones), with the
  credentials of the proxy URL: 403/407/5xx are ``proxy.connect-refused``, 407 noted as "wants
  credentials".

Proxy credentials are used on the wire only; every URL shown is redacted.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from regtui import redact
from regtui.checks.proxy import restart_for
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Endpoint, Finding, TLSInputs
from regtui.net import procenv
from regtui.net.http import build_ssl_context
from regtui.net.proxy import ProxyDecision, ProxyEnv, decide, from_environ
from regtui.net.resolver import ResolveError
from regtui.probecontext import ProbeContext, ProbeResult
from regtui.runtimes.view import RuntimeView

__all__ = ["probe", "running_daemons", "decisions", "compare_envs", "PROC_ROOT_OPTION"]

PANEL = "proxy"
#: ``CheckOptions.extra`` key naming a proc root to read daemon environments from (tests, or a
#: host's /proc mounted elsewhere); on a live root ``/proc`` is used.
PROC_ROOT_OPTION = "proc_root"
#: Bounds: targets asked per proxy, CONNECTs in flight, bytes of a proxy's answer headers.
MAX_TARGETS_PER_PROXY = 32
_CONCURRENCY = 32
_MAX_HEADER_BYTES = 64 * 1024
_MAX_ADDRESSES = 4
_SOURCE_PATH = re.compile(r"^(/[^\s:]+)")
_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)?\s+(\d{3})(?:\s+([^\r\n]*))?")
_DEFAULT_PORT = {"http": 80, "https": 443}
#: Statuses meaning "authenticate to the proxy": 407, and 401 which tinyproxy 1.11 sends for wrong credentials.
_AUTH_STATUSES = (401, 407)
_VARIABLES = (("HTTP_PROXY", "http_proxy"), ("HTTPS_PROXY", "https_proxy"), ("NO_PROXY", "no_proxy"))
#: The view name of the files' decisions when the running daemon's own environment is known too.
NEXT_RESTART = "next-restart"
_UNITS = {"docker": "docker", "containerd": "containerd", "crio": "crio", "k3s": "k3s"}


# -- views and decisions -------------------------------------------------------------------------

def _proc_root(ctx: ProbeContext) -> str | None:
    explicit = ctx.options.extra.get(PROC_ROOT_OPTION) if ctx.options.extra else None
    if explicit:
        return explicit
    return procenv.DEFAULT_PROC if ctx.host.live else None


def running_daemons(ctx: ProbeContext) -> dict[str, procenv.DaemonProcess]:
    """The running daemon of each runtime view, when processes are visible."""
    root = _proc_root(ctx)
    if root is None:
        return {}
    procs = procenv.list_processes(root)
    out = {}
    for view in ctx.views:
        proc = procenv.find_daemon(view.name, root, procs)
        if proc is not None:
            out[view.name] = proc
    return out


def _target(url: str) -> str:
    """``host:port`` a CONNECT would name for ``url`` (default port filled in)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or _DEFAULT_PORT.get(parts.scheme.lower(), 443)
    except ValueError:
        port = _DEFAULT_PORT.get(parts.scheme.lower(), 443)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _decision_dict(d: ProxyDecision) -> dict[str, Any]:
    return {"proxy": d.proxy, "reason": d.reason, "variable": d.variable, "no_proxy_match": d.no_proxy_match}


def _extra_urls(ctx: ProbeContext, runtime: str) -> list[tuple[str, str]]:
    """(url, role) of the extra endpoints (token realms, redirect hosts) that concern ``runtime``."""
    out = []
    for item in ctx.observations.get("extra_endpoints", []) or []:
        if isinstance(item, Endpoint):
            out.append((item.url, item.role or "redirect"))
        elif isinstance(item, dict):
            if item.get("runtime") not in (None, runtime):
                continue
            url = item.get("url") or (f"https://{item['host']}" if item.get("host") else "")
            if url:
                out.append((str(url), str(item.get("role") or "redirect")))
        elif isinstance(item, str) and item:
            out.append((item if "://" in item else f"https://{item}", "redirect"))
    return out


def _endpoints(ctx: ProbeContext, runtime: str) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for route in ctx.routes:
        if route.runtime != runtime:
            continue
        for ep in route.tried():
            if ep.url not in seen:
                seen.add(ep.url)
                out.append((ep.url, ep.role))
    for url, role in _extra_urls(ctx, runtime):
        if url not in seen:
            seen.add(url)
            out.append((url, role))
    return out


def decisions(env: ProxyEnv, endpoints: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Go's decision for each (url, role), as panel rows."""
    return [{"url": url, "role": role, "target": _target(url), **_decision_dict(decide(env, url))}
            for url, role in endpoints]


def _value_source(env: ProxyEnv, upper: str) -> str:
    lower = upper.lower()
    if env.variables.get(upper):
        return env.sources.get(upper, "")
    return env.sources.get(lower, "") or env.sources.get(upper, "")


def _value(env: ProxyEnv, upper: str) -> str:
    return {"HTTP_PROXY": env.http_proxy, "HTTPS_PROXY": env.https_proxy, "NO_PROXY": env.no_proxy}[upper]


def compare_envs(configured: ProxyEnv, running: ProxyEnv) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Differences between the files' view and the process's, per variable (values redacted).

    Variables set in daemon.json are not compared: dockerd applies them after start, so
    ``/proc/<pid>/environ`` never shows them. Returns (differences, variables skipped).
    """
    diffs: dict[str, dict[str, Any]] = {}
    skipped = []
    for upper, _ in _VARIABLES:
        source = _value_source(configured, upper)
        if "daemon.json" in source:
            skipped.append(upper)
            continue
        want, have = _value(configured, upper), _value(running, upper)
        if want != have:
            diffs[upper] = {"configured": redact.url(want) or "", "running": redact.url(have) or "",
                            "source": source or "(not set)"}
    return diffs, skipped


# -- talking to a proxy --------------------------------------------------------------------------

@dataclass
class _Use:
    """Who uses a proxy for what."""

    runtime: str
    view: str
    """``configured`` (the files; the process is not visible), ``next-restart`` (the files, when the
    running process is visible too) or ``running`` (the process's environment)."""
    endpoint: str
    variable: str | None
    source: str


@dataclass
class _ProxyPlan:
    """One distinct proxy URL and the targets that go through it."""

    url: str = field(repr=False)
    """With credentials: used on the wire only."""
    display: str
    scheme: str
    host: str
    port: int
    uses: list[_Use] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)
    """target host:port -> scheme of the endpoint (``https`` -> CONNECT, ``http`` -> proxied GET)."""

    @property
    def address(self) -> str:
        """``host:port`` of the proxy (never with credentials)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def auth_header(self) -> str | None:
        """``Proxy-Authorization`` value from the URL's userinfo, or ``None``."""
        parts = urlsplit(self.url)
        if parts.username is None:
            return None
        raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass
class _Answer:
    """The proxy's answer to one request (never holds credentials)."""

    target: str
    phase: str
    """Where it ended: ``dns``, ``connect``, ``tls``, ``answer`` (waiting for the reply) or ``done``."""
    status: int | None = None
    status_line: str = ""
    error: str = ""
    elapsed_ms: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"target": self.target, "phase": self.phase, "status": self.status, "status_line": self.status_line,
                "error": self.error, "elapsed_ms": round(self.elapsed_ms, 1)}


def _os_error(exc: OSError) -> str:
    """The errno text as Go prints it (``connection refused``), not asyncio's wording."""
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def _printable(data: bytes, limit: int = 160) -> str:
    text = data[:limit].decode("latin-1")
    return "".join(c if c.isprintable() else "?" for c in text)


async def _open(ctx: ProbeContext, plan: _ProxyPlan, tls: ssl.SSLContext | None
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | _Answer:
    """A connection to the proxy (TLS when ``tls``), or the answer saying why not."""
    started = time.monotonic()
    try:
        lookup = await ctx.resolver.resolve(plan.host)
    except ResolveError as exc:
        # Go prints the lookup failure inside the dial error: "dial tcp: lookup NAME on SERVER: ..."
        return _Answer("", "dns", error=f"dial tcp: {exc}", elapsed_ms=(time.monotonic() - started) * 1000)
    deadline = started + ctx.timeouts.connect
    last = _Answer("", "connect", error="no address")
    for address in lookup.addresses[:_MAX_ADDRESSES]:
        remaining = max(0.05, deadline - time.monotonic())
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, plan.port), remaining)
        except asyncio.TimeoutError:
            return _Answer("", "connect", error=f"dial tcp {address}:{plan.port}: i/o timeout",
                           elapsed_ms=(time.monotonic() - started) * 1000)
        except OSError as exc:
            last = _Answer("", "connect", error=f"dial tcp {address}:{plan.port}: connect: {_os_error(exc)}",
                           elapsed_ms=(time.monotonic() - started) * 1000)
            continue
        if tls is None:
            return reader, writer
        try:
            await asyncio.wait_for(writer.start_tls(tls, server_hostname=plan.host), ctx.timeouts.connect)
        except asyncio.TimeoutError:
            writer.close()
            return _Answer("", "tls", error=f"TLS handshake with the proxy timed out after {ctx.timeouts.connect:g} s",
                           elapsed_ms=(time.monotonic() - started) * 1000)
        except (ssl.SSLError, OSError) as exc:
            writer.close()
            return _Answer("", "tls", error=f"TLS handshake with the proxy failed: {exc}",
                           elapsed_ms=(time.monotonic() - started) * 1000)
        return reader, writer
    return last


async def _read_head(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Response head (status line and headers), at most 64 KiB, within ``timeout``."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf and len(buf) < _MAX_HEADER_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise asyncio.TimeoutError
        chunk = await asyncio.wait_for(reader.read(4096), remaining)
        if not chunk:
            break
        buf += chunk
    return buf


def _request(plan: _ProxyPlan, target: str, scheme: str) -> bytes:
    lines = ([f"CONNECT {target} HTTP/1.1", f"Host: {target}"] if scheme == "https"
             else [f"GET http://{target}/v2/ HTTP/1.1", f"Host: {target}", "Connection: close"])
    lines.append("User-Agent: regtui")
    auth = plan.auth_header
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _ask(ctx: ProbeContext, plan: _ProxyPlan, target: str, scheme: str, tls: ssl.SSLContext | None,
               sem: asyncio.Semaphore) -> _Answer:
    """One CONNECT (or proxied GET) through the proxy; the tunnel is closed at once."""
    async with sem:
        started = time.monotonic()
        opened = await _open(ctx, plan, tls)
        if isinstance(opened, _Answer):
            opened.target = target
            return opened
        reader, writer = opened
        try:
            writer.write(_request(plan, target, scheme))
            await asyncio.wait_for(writer.drain(), ctx.timeouts.read)
            head = await _read_head(reader, ctx.timeouts.read)
        except asyncio.TimeoutError:
            return _Answer(target, "answer", error=f"the proxy accepted the connection but sent no answer within "
                           f"{ctx.timeouts.read:g} s", elapsed_ms=(time.monotonic() - started) * 1000)
        except (OSError, ssl.SSLError) as exc:
            return _Answer(target, "answer", error=f"connection closed by the proxy: {exc}",
                           elapsed_ms=(time.monotonic() - started) * 1000)
        finally:
            writer.close()
        elapsed = (time.monotonic() - started) * 1000
        m = _STATUS_LINE.match(head)
        if not head:
            return _Answer(target, "answer", error="the proxy closed the connection without an answer",
                           elapsed_ms=elapsed)
        if not m:
            return _Answer(target, "protocol", error=f"not an HTTP answer: the proxy answered {_printable(head, 60)!r}",
                           elapsed_ms=elapsed)
        if b"\r\n\r\n" not in head:
            what = (f"its headers do not end within {_MAX_HEADER_BYTES // 1024} KiB" if len(head) >= _MAX_HEADER_BYTES
                    else "it closed the connection in the middle of its headers")
            return _Answer(target, "protocol", int(m.group(1)), _printable(head.split(b"\r\n", 1)[0]),
                           f"malformed HTTP answer: {what}", elapsed)
        headers = {}
        for line in head.split(b"\r\n")[1:40]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.decode("latin-1").strip().lower()] = _printable(v.strip(), 200)
        return _Answer(target, "done", int(m.group(1)), _printable(head.split(b"\r\n", 1)[0]), "", elapsed, headers)


async def _sniff_plain(ctx: ProbeContext, plan: _ProxyPlan) -> _Answer:
    """Speak plain HTTP to an ``https://`` proxy: any HTTP status line proves the scheme is wrong.

    The request (``GET /`` naming the proxy itself) is one every proxy answers locally with an
    error page, so the check never makes the proxy resolve or contact anything.
    """
    started = time.monotonic()
    opened = await _open(ctx, plan, None)
    if isinstance(opened, _Answer):
        return opened
    reader, writer = opened
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {plan.address}\r\nConnection: close\r\n\r\n".encode())
        await asyncio.wait_for(writer.drain(), ctx.timeouts.read)
        head = await _read_head(reader, ctx.timeouts.read)
    except (asyncio.TimeoutError, OSError) as exc:
        return _Answer("", "answer", error=f"no plain HTTP answer: {exc or 'timeout'}",
                       elapsed_ms=(time.monotonic() - started) * 1000)
    finally:
        writer.close()
    m = _STATUS_LINE.match(head)
    return _Answer("", "done" if m else "answer", int(m.group(1)) if m else None,
                   _printable(head.split(b"\r\n", 1)[0]) if m else "", "" if m else "not an HTTP answer",
                   (time.monotonic() - started) * 1000)


def _proxy_refused(a: _Answer, scheme: str) -> bool:
    """The answer is the proxy refusing, not the registry answering through it."""
    if a.status is None:
        return False
    if scheme == "https":
        return not 200 <= a.status < 300
    if a.status == 407:
        return True
    from_registry = "docker-distribution-api-version" in a.headers or "www-authenticate" in a.headers
    return (a.status in (401, 403) or a.status >= 500) and not from_registry


@dataclass
class _Outcome:
    plan: _ProxyPlan
    tls: _Answer | None = None
    sniff: _Answer | None = None
    answers: list[_Answer] = field(default_factory=list)
    note: str = ""


async def _check(ctx: ProbeContext, plan: _ProxyPlan, sem: asyncio.Semaphore) -> _Outcome:
    out = _Outcome(plan)
    targets = list(plan.targets.items())[:MAX_TARGETS_PER_PROXY]
    if plan.scheme not in ("http", "https"):
        out.note = f"{plan.scheme}:// proxies are not probed"
        return out
    tls_ctx: ssl.SSLContext | None = None
    if plan.scheme == "https":
        tls_ctx, _ = build_ssl_context(ctx.host, TLSInputs())
        first = targets[0][0] if targets else "example.invalid:443"
        handshake, sniff = await asyncio.gather(_ask(ctx, plan, first, "https", tls_ctx, sem), _sniff_plain(ctx, plan))
        out.sniff = sniff
        if handshake.phase in ("dns", "connect", "tls"):
            out.tls = handshake
            return out
        out.answers.append(handshake)
        targets = targets[1:]
    out.answers += await asyncio.gather(*(_ask(ctx, plan, t, s, tls_ctx, sem) for t, s in targets))
    return out


# -- findings ------------------------------------------------------------------------------------

def _users(plan: _ProxyPlan) -> tuple[list[str], list[str], list[str]]:
    runtimes = sorted({u.runtime for u in plan.uses})
    views = sorted({u.view for u in plan.uses})
    sources = sorted({u.source for u in plan.uses if u.source})
    return runtimes, views, sources


def _when(views: list[str]) -> str:
    if views == [NEXT_RESTART]:
        return " (configured: the daemon uses it after its next restart)"
    if views == ["running"]:
        return " (the running daemon's environment; the files now say otherwise)"
    return ""


def _files(sources: list[str]) -> list[str]:
    """Host paths named by provenance strings (``/etc/x.conf:3``, ``/etc/docker/daemon.json:5 (...)``)."""
    out = set()
    for s in sources:
        m = _SOURCE_PATH.match(s)
        if m and not s.startswith("/proc/"):
            out.add(m.group(1))
    return sorted(out)


def _base_evidence(plan: _ProxyPlan, runtimes: list[str], views: list[str], sources: list[str]) -> dict[str, Any]:
    return {"proxy": plan.display, "address": plan.address, "runtimes": runtimes, "views": views,
            "sources": sources, "endpoints": sorted({u.endpoint for u in plan.uses})[:20]}


def _scheme_tls(o: _Outcome) -> list[Finding]:
    plan = o.plan
    if o.tls is None or o.sniff is None or o.sniff.status is None:
        return []
    runtimes, views, sources = _users(plan)
    go_error = ("proxyconnect tcp: tls: first record does not look like a TLS handshake" if "timed out" not in o.tls.error
                else "proxyconnect tcp: net/http: TLS handshake timeout")
    plain = plan.display.replace("https://", "http://", 1)
    variables = sorted({u.variable for u in plan.uses if u.variable})
    return [finding(
        "proxy.scheme-tls", plan.address,
        f"{', '.join(variables) or 'HTTPS_PROXY'}={plan.display} points at a plain HTTP proxy" + _when(views),
        f"The proxy URL says https://, so {', '.join(runtimes)} {'speaks' if len(runtimes) == 1 else 'speak'} TLS "
        f"to the proxy itself; {plan.address} "
        f"answers plain HTTP ({o.sniff.status_line!r}). The TLS handshake fails: {o.tls.error}. The runtime "
        f"reports \"{go_error}\" (dockerd may then fall back and report only \"connection reset by peer\"). "
        f"Use {plain}: the tunnel to the registry is still TLS end to end.",
        evidence={**_base_evidence(plan, runtimes, views, sources), "variables": variables,
                  "tls_error": o.tls.error, "plain_http_answer": o.sniff.status_line, "runtime_error": go_error},
        runtime=runtimes[0] if len(runtimes) == 1 else None,
        fix=fix("proxy.scheme-tls", plan.address, f"change the proxy URL to {plain}", files=_files(sources),
                restart=restart_for(runtimes[0]) if len(runtimes) == 1 else "restart the daemons",
                params={"variables": variables, "from": plan.display, "to": plain, "sources": sources,
                        "runtimes": runtimes}),
    )]


def _unreachable(o: _Outcome) -> list[Finding]:
    plan = o.plan
    failed = [o.tls] if o.tls is not None else o.answers
    if not failed or any(a.phase == "done" for a in failed):
        return []
    if o.tls is not None and o.sniff is not None and o.sniff.status is not None:
        return []  # a plain HTTP proxy behind https://: proxy.scheme-tls says it better
    first = failed[0]
    runtimes, views, sources = _users(plan)
    what = {"dns": "its name does not resolve", "connect": "it does not accept connections",
            "tls": "the TLS handshake with it fails", "answer": "it accepts connections but never answers",
            "protocol": "it does not answer in HTTP"}
    go_error = f"proxyconnect tcp: {first.error}" if first.phase in ("dns", "connect") else first.error
    return [finding(
        "proxy.unreachable", plan.address, f"proxy {plan.display} is unreachable: {what.get(first.phase, first.phase)}"
        + _when(views),
        f"Every request {', '.join(runtimes)} sends through {plan.display} fails ({first.error}). The runtime "
        f"reports \"{go_error}\"; dockerd may fall back to plain http and report only \"connection reset by peer\", "
        "never naming the proxy.",
        evidence={**_base_evidence(plan, runtimes, views, sources), "phase": first.phase, "error": first.error,
                  "elapsed_ms": round(first.elapsed_ms, 1), "runtime_error": go_error},
        runtime=runtimes[0] if len(runtimes) == 1 else None,
        fix=fix("proxy.unreachable", plan.address, f"start the proxy at {plan.address}, or correct the proxy URL "
                "where it is set", kind="manual", files=_files(sources),
                params={"sources": sources, "runtimes": runtimes}),
    )]


def _refused(o: _Outcome) -> list[Finding]:
    plan = o.plan
    groups: dict[int, list[_Answer]] = {}
    for a in o.answers:
        if a.phase == "done" and _proxy_refused(a, plan.targets.get(a.target, "https")):
            groups.setdefault(a.status or 0, []).append(a)
    out = []
    runtimes, views, sources = _users(plan)
    has_credentials = plan.auth_header is not None
    for status, answers in sorted(groups.items()):
        targets = sorted(a.target for a in answers)
        if status in _AUTH_STATUSES:
            why = (f"rejects the credentials in the proxy URL ({status})" if has_credentials
                   else f"wants credentials ({status} Proxy Authentication Required) and none are configured")
        elif status == 403:
            why = "forbids the tunnel (403): its access rules do not allow these hosts or ports"
        else:
            why = f"answers {status}: it could not reach or resolve the target"
        reason = answers[0].status_line.split(" ", 2)[2] if answers[0].status_line.count(" ") >= 2 else str(status)
        out.append(finding(
            "proxy.connect-refused", plan.address,
            f"proxy {plan.display} refuses CONNECT to {', '.join(targets[:3])}{'...' if len(targets) > 3 else ''}: "
            f"{'wants credentials' if status in _AUTH_STATUSES and not has_credentials else status}" + _when(views),
            f"{plan.display} {why}. {', '.join(runtimes)} cannot reach {', '.join(targets)} through it; the runtime "
            f"reports \"{reason}\".",
            evidence={**_base_evidence(plan, runtimes, views, sources), "status": status,
                      "status_line": answers[0].status_line, "targets": targets,
                      "wants_credentials": status in _AUTH_STATUSES, "credentials_sent": has_credentials},
            runtime=runtimes[0] if len(runtimes) == 1 else None,
            fix=fix("proxy.connect-refused", plan.address,
                    "give the proxy URL credentials (http://user:password@proxy:port)" if status in _AUTH_STATUSES else
                    "ask the proxy's administrator to allow CONNECT to these hosts and ports, or add them to NO_PROXY",
                    kind="manual", detail=str(status), files=_files(sources),
                    params={"status": status, "targets": targets, "runtimes": runtimes}),
        ))
    return out


def _changed_after_start(host: Host, env: ProxyEnv, variables: list[str], started_at: float | None
                         ) -> dict[str, dict[str, Any]]:
    """daemon.json-set variables whose file changed after the daemon started (their value cannot be
    read from the process, so the file's modification time is the evidence)."""
    if started_at is None:
        return {}
    out = {}
    for upper in variables:
        source = _value_source(env, upper)
        m = _SOURCE_PATH.match(source)
        if not m:
            continue
        mtime = host.read(m.group(1)).mtime
        if mtime is not None and mtime > started_at + 1:
            out[upper] = {"configured": redact.url(_value(env, upper)) or "", "running": "(unknown: set from "
                          "daemon.json at start)", "source": source, "file_modified": mtime, "daemon_started": started_at}
    return out


def _not_applied(host: Host, view: RuntimeView, proc: procenv.DaemonProcess) -> list[Finding]:
    running = proc.proxy_env()
    if running is None:
        return []
    diffs, skipped = compare_envs(view.proxy_env, running)
    diffs.update(_changed_after_start(host, view.proxy_env, skipped, proc.started_at))
    if not diffs:
        return []
    unit = _UNITS.get(view.name, view.name)
    if view.name == "k3s" and "agent" in " ".join(proc.argv + (proc.comm,)):
        unit = "k3s-agent"
    command = f"systemctl daemon-reload && systemctl restart {unit}"
    files = _files([d["source"] for d in diffs.values()])
    return [finding(
        "proxy.not-applied", view.name,
        f"{view.name} runs with other proxy settings than its configuration ({', '.join(diffs)})",
        f"The running {proc.comm} (pid {proc.pid}) was started with a different environment than the files now "
        "give it (or daemon.json changed after it started); Go reads proxy variables once, at start, so the "
        "change takes effect only after a restart. Until then the daemon keeps its old proxy behaviour.",
        evidence={"runtime": view.name, "pid": proc.pid, "process": proc.comm, "environ": proc.path,
                  "differences": diffs, "started_at": proc.started_at, "note": proc.note},
        runtime=view.name,
        fix=fix("proxy.not-applied", view.name, f"restart {unit}: {command}", kind="command", files=files,
                restart=restart_for(view.name), params={"command": command, "runtime": view.name, "unit": unit}),
    )]


# -- the probe -----------------------------------------------------------------------------------

def _add_use(plans: dict[str, _ProxyPlan], d: ProxyDecision, env: ProxyEnv, runtime: str, view: str,
             url: str) -> None:
    if not d.url:
        return
    parts = urlsplit(d.url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORT.get(scheme, 1080)
    except ValueError:
        return
    plan = plans.setdefault(d.url, _ProxyPlan(d.url, redact.url(d.url) or "", scheme, parts.hostname or "", port))
    source = _value_source(env, d.variable or "HTTPS_PROXY")
    plan.uses.append(_Use(runtime, view, url, d.variable, source))
    plan.targets.setdefault(_target(url), urlsplit(url).scheme.lower() or "https")


def _outcome_dict(o: _Outcome) -> dict[str, Any]:
    runtimes, views, sources = _users(o.plan)
    ok = bool(o.answers) and all(a.phase == "done" and not _proxy_refused(a, o.plan.targets.get(a.target, "https"))
                                 for a in o.answers)
    return {"proxy": o.plan.display, "address": o.plan.address, "scheme": o.plan.scheme, "runtimes": runtimes,
            "views": views, "sources": sources, "credentials": o.plan.auth_header is not None,
            "tls": o.tls.to_dict() if o.tls else None, "plain_http_probe": o.sniff.to_dict() if o.sniff else None,
            "connects": [a.to_dict() for a in o.answers], "ok": ok, "note": o.note or ("" if ok else _summary(o))}


def _summary(o: _Outcome) -> str:
    """One line saying how the proxy failed, for lists."""
    if o.tls is not None:
        plain = o.sniff is not None and o.sniff.status is not None
        return "plain HTTP proxy behind https://" if plain else f"{o.tls.phase}: {o.tls.error}"
    bad = [a for a in o.answers if a.phase != "done" or _proxy_refused(a, o.plan.targets.get(a.target, "https"))]
    if not bad:
        return ""
    a = bad[0]
    return f"CONNECT {a.target}: {a.status_line}" if a.phase == "done" else f"{a.phase}: {a.error}"


async def probe(ctx: ProbeContext) -> ProbeResult:
    """Decide per endpoint with each daemon's environment, then test every proxy in use, concurrently."""
    processes = running_daemons(ctx)
    plans: dict[str, _ProxyPlan] = {}
    runtimes: dict[str, Any] = {}
    findings: list[Finding] = []
    for view in ctx.views:
        endpoints = _endpoints(ctx, view.name)
        proc = processes.get(view.name)
        running_env = proc.proxy_env() if proc else None
        row: dict[str, Any] = {
            "configured": {"effective": view.proxy_env.effective(), "sources": dict(view.proxy_env.sources)},
            "running": None,
            "endpoints": [],
        }
        if proc is not None:
            diffs, skipped = compare_envs(view.proxy_env, running_env) if running_env else ({}, [])
            row["running"] = {"pid": proc.pid, "process": proc.comm, "environ": proc.path,
                              "effective": running_env.effective() if running_env else None,
                              "error": proc.error, "note": proc.note, "other_pids": list(proc.others),
                              "differences": diffs, "not_compared": skipped}
            findings += _not_applied(ctx.host, view, proc)
        for url, role in endpoints:
            d = decide(view.proxy_env, url)
            _add_use(plans, d, view.proxy_env, view.name, NEXT_RESTART if running_env is not None else "configured",
                     url)
            entry = {"url": url, "role": role, "target": _target(url), "configured": _decision_dict(d), "running": None}
            if running_env is not None:
                rd = decide(running_env, url)
                _add_use(plans, rd, running_env, view.name, "running", url)
                entry["running"] = _decision_dict(rd)
            row["endpoints"].append(entry)
        runtimes[view.name] = row
    shell = from_environ(dict(ctx.host.environ), label="shell")
    all_urls = list(dict.fromkeys(u for v in ctx.views for u in _endpoints(ctx, v.name)))
    sem = asyncio.Semaphore(_CONCURRENCY)
    outcomes = await asyncio.gather(*(_check(ctx, p, sem) for p in plans.values()))
    for o in outcomes:
        findings += _scheme_tls(o) + _unreachable(o) + _refused(o)
    data = {
        "shell": {"effective": shell.effective(), "endpoints": decisions(shell, all_urls)},
        "runtimes": runtimes,
        "proxies": [_outcome_dict(o) for o in outcomes],
        "processes_visible": _proc_root(ctx) is not None,
    }
    return ProbeResult(PANEL, redact.value(data), findings)
