"""Streamed, verified, resumable blob downloads.

Bytes go from the socket straight into the digest's hash (and, only when an OCI layout was
asked for, into a temporary file that is renamed once the digest matches); nothing is buffered
whole. A 2xx body is read through the lean path when the session can take it over
(:meth:`~regtui.registry.client.Session.take_body`: a worker thread decrypts it into one reusable
buffer that the hash and the file read from, so bodies use several cores and the event loop
stays free), else through httpx; requests, auth, redirects and every other answer stay on httpx.
A download:

- refuses a body longer than the descriptor's size as soon as it exceeds it (an endless body
  costs ``size + 1`` bytes, no more), and a ``Content-Length`` that disagrees with the size;
- retries transient failures (connection reset or closed, read timeout, 408/5xx) with
  exponential backoff, at most ``max_attempts`` times; after a mid-stream failure it asks for
  the rest with ``Range: bytes=N-`` and keeps hashing (a server that ignores the range and
  answers 200 is hashed again from the start);
- never retries what will not change: a digest mismatch, 401/403/404/429 (Docker's
  ``DoNotRetry`` list), TLS or DNS failures;
- reports its bytes so far through a progress callback (at most every 50 ms, and at the end);
- is never killed for being slow, only for stalling: fewer than :data:`STALL_BYTES` (64 KiB)
  in any window of ``--timeout`` seconds (the read timeout) is a ``stalled`` failure (a 1 byte/s
  drip ends after one window, a layer arriving at 100 KiB/s does not). An attempt that timed
  out or stalled is retried once (:data:`MAX_TIMED_OUT`), so a peer that stops sending costs
  about two read timeouts per blob, not one per allowed attempt.

Timings: every request of the download (first try, redirects, resumes) is traced; the phases are
summed and the time between requests (token fetches, backoff) counts as waiting (``ttfb``), so
``dns + connect + tls + ttfb + transfer == total`` for every blob.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Protocol
from urllib.parse import urlsplit

import httpcore
import httpx

from regtui.net.http import PhaseTimings
from regtui.net.pipe import TakenBody
from regtui.registry.client import Hop, Session, sum_timings
from regtui.registry.errors import Failure, RegistryError, classify_exception, display_url, status_failure
from regtui.registry.manifest import Descriptor, new_hasher

__all__ = ["BlobSink", "NullSink", "FileSink", "discard_partials", "BlobResult", "download_blob", "Progress",
           "is_transient", "BACKOFF_BASE", "BACKOFF_CAP", "STALL_BYTES", "MAX_TIMED_OUT"]

#: First backoff delay (seconds); doubled per attempt up to :data:`BACKOFF_CAP`.
BACKOFF_BASE = 0.2
BACKOFF_CAP = 2.0
#: A blob body must bring at least this many bytes per read-timeout window, or it has stalled
#: (64 KiB per 5 s by default: far below any usable link, far above a drip).
STALL_BYTES = 64 * 1024
#: Attempts of one blob that may end in a timeout or a stall before the download gives up.
MAX_TIMED_OUT = 2
_PROGRESS_INTERVAL = 0.05
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_TRANSIENT_KINDS = ("timeout", "reset", "closed", "error", "short-body", "stalled")
_TRANSIENT_STATUS = (408, 500, 502, 503, 504)

#: ``(digest, bytes so far, size)``
Progress = Callable[[str, int, int], None]


class BlobSink(Protocol):
    """Where verified bytes go."""

    def write(self, data: bytes | memoryview) -> None: ...
    def restart(self) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class NullSink:
    """Discards the bytes (the default: a test pull writes nothing)."""

    def write(self, data: bytes | memoryview) -> None:
        """Drop ``data``."""

    def restart(self) -> None:
        """Nothing to reset."""

    def commit(self) -> None:
        """Nothing to keep."""

    def abort(self) -> None:
        """Nothing to remove."""


class FileSink:
    """Writes into ``<dir>/blobs/<alg>/<hex>.partial`` and renames it when the digest matched.

    A partial file never outlives its download in a process that ends normally, is interrupted
    (SIGINT, SIGTERM: the task is cancelled) or fails: :meth:`abort` removes it, and
    :func:`discard_partials` removes any this process still has open (the pull command calls it
    on every way out). Only ``kill -9`` can leave one; the next pull of that blob into the same
    directory starts it over.
    """

    def __init__(self, layout_dir: Path, digest: str) -> None:
        algorithm, hexdigest = digest.split(":", 1)
        self.final = layout_dir / "blobs" / algorithm / hexdigest
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.final.with_name(hexdigest + ".partial")
        # Registered before the file exists, so a cancellation at any point finds it.
        self._fh: Any = None
        _OPEN_PARTIALS[self.partial] = self
        self._fh = open(self.partial, "wb")

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` (written before the call returns: a view's buffer may be reused after)."""
        self._fh.write(data)

    def restart(self) -> None:
        """Start the file over (the server ignored the Range request)."""
        self._fh.seek(0)
        self._fh.truncate()

    def commit(self) -> None:
        """Keep the verified file under its digest."""
        self._fh.close()
        os.replace(self.partial, self.final)
        _OPEN_PARTIALS.pop(self.partial, None)

    def abort(self) -> None:
        """Remove the partial file (safe to call more than once)."""
        if self._fh is not None:
            self._fh.close()
        if _OPEN_PARTIALS.pop(self.partial, None) is None:
            return  # committed or already removed
        try:
            os.unlink(self.partial)
        except OSError:
            pass


#: Partial files this process is writing, by path (removed by commit or abort).
_OPEN_PARTIALS: dict[Path, FileSink] = {}


def discard_partials() -> list[Path]:
    """Remove every partial file this process still has open (after a cancellation or an error); returns them."""
    left = list(_OPEN_PARTIALS.values())
    for sink in left:
        sink.abort()
    return [sink.partial for sink in left]


@dataclass
class BlobResult:
    """The outcome of downloading one blob."""

    descriptor: Descriptor
    endpoint: str
    ok: bool = False
    attempts: int = 0
    resumed: bool = False
    received: int = 0
    """Bytes received over all attempts (more than the size when parts were fetched twice)."""
    started: float = 0.0
    ended: float = 0.0
    timings: PhaseTimings = field(default_factory=lambda: PhaseTimings(None, None, None, 0.0, 0.0, 0.0))
    failure: Failure | None = None
    retries: list[dict[str, Any]] = field(default_factory=list)
    """One entry per failed attempt: phase, kind, message, bytes so far."""
    waited_ms: float = 0.0
    """Backoff time between attempts (counted in ``ttfb``)."""
    hops: int = 0
    tried: list[dict[str, Any]] = field(default_factory=list)
    """Earlier endpoints that failed for this blob (containerd tries hosts in order per blob)."""
    body_reader: str | None = None
    """How the last body of this blob was read: ``lean`` or ``httpx`` (``None``: no 2xx body)."""


def is_transient(failure: Failure) -> bool:
    """Worth retrying on the same endpoint: connection trouble mid-way or a 408/5xx."""
    if failure.status is not None:
        return failure.status in _TRANSIENT_STATUS
    return failure.phase in ("http", "blob", "connect") and failure.kind in _TRANSIENT_KINDS


class _Abort(Exception):
    """Internal: stop this attempt with a failure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


async def download_blob(session: Session, desc: Descriptor, *, max_attempts: int = 3, sink: BlobSink | None = None,
                        progress: Progress | None = None, backoff_base: float = BACKOFF_BASE) -> BlobResult:
    """Download and verify ``desc`` from ``session``'s endpoint (see the module docstring)."""
    sink = sink or NullSink()
    url = session.url("blobs", desc.digest)
    result = BlobResult(desc, session.base_url, started=time.monotonic())
    hasher = new_hasher(desc.digest)
    offset = 0
    hops: list[Hop] = []
    last_report = 0.0

    def report(force: bool = False) -> None:
        nonlocal last_report
        now = time.monotonic()
        if progress is not None and (force or now - last_report >= _PROGRESS_INTERVAL):
            last_report = now
            progress(desc.digest, offset, desc.size)

    def keep(chunk: bytes | memoryview) -> None:
        """Hash and keep one piece of the body; refuse it past the declared size (safe in a body's thread)."""
        nonlocal offset
        if offset + len(chunk) > desc.size:
            result.received += len(chunk)
            raise _Abort(_mismatch(url, desc, f"the server sent more than the {desc.size} bytes the "
                                   "manifest declares", offset + len(chunk)))
        hasher.update(chunk)
        sink.write(chunk)
        offset += len(chunk)
        result.received += len(chunk)

    def take(chunk: bytes | memoryview) -> None:
        """:func:`keep`, then the progress report (on the event loop)."""
        keep(chunk)
        report()

    while result.attempts < max(1, max_attempts):
        result.attempts += 1
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        failure: Failure | None = None
        try:
            exchange = await session.request("GET", url, headers=headers, stream=True)
        except RegistryError as err:
            hops += getattr(err, "hops", [])
            failure = _as_blob_failure(err.failure)
        else:
            hops += exchange.hops
            response = exchange.response
            try:
                status = response.status_code
                if status == 206 and offset and _range_start(response) == offset:
                    result.resumed = True
                elif status == 206:
                    raise _Abort(Failure("blob", "bad-range", "the server answered a range that was not asked for "
                                         f"({response.headers.get('content-range', 'no Content-Range')[:60]})",
                                         "unexpected content range", url=display_url(url), status=206,
                                         transport_ok=True))
                elif status == 200:
                    if offset:  # the server ignored Range: hash again from the first byte
                        hasher, offset = new_hasher(desc.digest), 0
                        sink.restart()
                    length = response.headers.get("content-length")
                    if length and length.isdigit() and int(length) != desc.size:
                        raise _Abort(Failure("blob", "size-mismatch", f"the server announces {length} bytes for a "
                                             f"blob of {desc.size} bytes", f"unexpected content length {length}",
                                             url=display_url(url), transport_ok=True,
                                             details={"content_length": int(length), "size": desc.size}))
                else:
                    raise _Abort(_as_blob_failure(status_failure(response.status_code, url, exchange.body, phase="blob",
                                                                 headers=response.headers)))
                taken = session.take_body(response, keep, desc.size - offset)
                result.body_reader = "httpx" if taken is None else "lean"
                if taken is not None:
                    await _settle(taken, session.timeouts.read, url, lambda: offset, report)
                else:
                    async for chunk in _moving(response, session.timeouts.read, url, lambda: offset):
                        take(chunk)
                if offset < desc.size:
                    raise _Abort(Failure("blob", "short-body", f"the body ended after {offset} of {desc.size} bytes",
                                         "unexpected EOF", url=display_url(url), transport_ok=True))
            except _Abort as abort:
                failure = abort.failure
            except (httpx.HTTPError, httpcore.ReadError, httpcore.RemoteProtocolError, httpcore.TimeoutException) as exc:
                failure = _as_blob_failure(classify_exception(exc, url, events=exchange.recorder.events,
                                                              peer=exchange.recorder.peer))
            finally:
                exchange.finish()
                await response.aclose()
        if failure is None:
            if f"{desc.digest.split(':', 1)[0]}:{hasher.hexdigest()}" == desc.digest:
                result.ok = True
                sink.commit()
                break
            failure = _mismatch(url, desc, "the content does not hash to the digest the manifest names", offset)
        result.retries.append({"attempt": result.attempts, "phase": failure.phase, "kind": failure.kind,
                               "message": failure.message, "bytes_so_far": offset, "status": failure.status})
        result.failure = failure
        timed_out = sum(1 for r in result.retries if r["kind"] in ("timeout", "stalled"))
        if not is_transient(failure) or result.attempts >= max_attempts or timed_out >= MAX_TIMED_OUT:
            break
        delay = min(BACKOFF_CAP, backoff_base * (2 ** (result.attempts - 1)))
        result.waited_ms += delay * 1000
        await asyncio.sleep(delay)
    if result.ok:
        result.failure = None
    else:
        sink.abort()
    report(force=True)
    result.ended = time.monotonic()
    result.hops = len(hops)
    result.timings = sum_timings(hops, result.started, result.ended)
    return result


async def _settle(taken: TakenBody, window: float, url: str, so_far: Callable[[], int],
                  report: Callable[[], None]) -> None:
    """Wait for a body read by its thread, reporting progress; ``_Abort`` (``stalled``) when a
    ``window`` brings under :data:`STALL_BYTES`. The thread is stopped, and has let go of the
    hash and the file, before this returns or raises."""
    loop = asyncio.get_running_loop()
    done = taken.done
    window_end, base = loop.time() + window, 0
    try:
        while not done.done():
            now = loop.time()
            got = taken.received - base
            if got >= STALL_BYTES or taken.consuming:  # a slow disk is not a stalled server
                window_end, base = now + window, taken.received
            elif now >= window_end and taken.running:  # a body that just ended is not a stall
                raise _stalled(url, window, got, so_far())
            await asyncio.wait((done,), timeout=min(window_end - now, _PROGRESS_INTERVAL))
            report()
        if done.cancelled():  # the stream was closed under the thread, not this task cancelled
            raise httpcore.ReadError("the connection was closed while the body was read")
        done.result()
    finally:
        if not done.done() or taken.running:
            await taken.stop()


def _stalled(url: str, window: float, got: int, so_far: int) -> _Abort:
    host = urlsplit(url).netloc
    return _Abort(Failure("blob", "stalled", f"{host} sent {got} bytes in {window:g} s (fewer than "
                          f"{STALL_BYTES // 1024} KiB): the blob download stalled after {so_far} bytes "
                          "(blob phase)", "context deadline exceeded", url=display_url(url), status=None,
                          timed_out=True, details={"endpoint": host, "phase": "blob",
                                                   "bytes_received": so_far, "window_s": window,
                                                   "window_bytes": got, "min_bytes": STALL_BYTES}))


async def _moving(response: httpx.Response, window: float, url: str,
                  so_far: Callable[[], int]) -> AsyncIterator[bytes]:
    """The raw body of ``response``; ``_Abort`` (``stalled``) when a ``window`` brings under :data:`STALL_BYTES`."""
    loop = asyncio.get_running_loop()
    chunks = response.aiter_raw().__aiter__()
    window_end, got = loop.time() + window, 0
    while True:
        try:
            async with asyncio.timeout_at(window_end):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _stalled(url, window, got, so_far()) from None
        got += len(chunk)
        if got >= STALL_BYTES:
            window_end, got = loop.time() + window, 0
        yield chunk


def _range_start(response: httpx.Response) -> int | None:
    m = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    return int(m.group(1)) if m else None


def _as_blob_failure(failure: Failure) -> Failure:
    """The same failure seen while fetching a blob (HTTP statuses are blob errors)."""
    if failure.phase in ("http", "manifest") and failure.status is not None:
        return Failure("blob", failure.kind, failure.message, failure.go_error, url=failure.url, status=failure.status,
                       error_code=failure.error_code, transport_ok=True, details=dict(failure.details))
    return failure


def _mismatch(url: str, desc: Descriptor, why: str, seen: int) -> Failure:
    return Failure("blob", "digest-mismatch", why,
                   f"failed commit on ref \"layer-{desc.digest}\": unexpected commit digest: expected {desc.digest}",
                   url=display_url(url), transport_ok=True, details={"expected": desc.digest, "bytes": seen})
