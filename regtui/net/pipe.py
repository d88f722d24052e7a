"""An httpcore network stream on a plain socket whose response body can be taken over by a thread.

httpcore and h11 talk through :class:`PipeStream` as through any stream: the socket (plain, or an
``ssl.SSLSocket`` after :meth:`PipeStream.start_tls`) is non-blocking and driven by the event
loop's selector. While response headers are expected, a read never returns bytes past the end of
the header block (found with h11's own rule: a blank line, ``\\n\\r?\\n``), so once httpcore hands
out a response, h11 holds none of its body.

:meth:`PipeStream.take_body` then hands the connection to a worker thread for the body: the
thread reads the socket (blocking, with a short timeout to look at its stop flag) straight into one reusable buffer (``SSLSocket``
decrypts in place: no copy through a memory BIO) and gives each filled slice to a consumer as a
``memoryview`` (a hash update and a file write). Reading, decrypting, hashing and writing all
release the GIL, so several bodies use several cores while the event loop stays free. The body
ends at its ``Content-Length`` or, without one, when the peer closes. A taken-over connection is
never reused: closing the response closes it. Stopping a body (a stall, a cancelled task) shuts
the socket down, which wakes the thread at once.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import select
import socket
import ssl
import threading
import time
from typing import Any, Callable, Generator, Iterable

import httpcore

__all__ = ["STREAM_BUFFER", "BODY_BUFFER", "PipeStream", "TakenBody", "open_pipe", "Consumer"]

#: Bytes one read on the event loop may buffer (headers, and bodies httpx reads).
STREAM_BUFFER = 256 * 1024
#: Bytes a body thread gathers before it hands them to the consumer.
BODY_BUFFER = 256 * 1024
#: How long a body thread waits on a silent socket before it looks at its stop flag again.
_POLL = 0.5
#: Bytes received this long ago go to the consumer even if the buffer is not full (a slow body).
_FLUSH = 0.05
#: End of a header block, as h11 finds it.
_BLANK_LINE = re.compile(rb"\n\r?\n")
_INFORMATIONAL = re.compile(rb"HTTP/\d\.\d[ \t]+1\d\d")
#: Past this many header bytes the block is left to h11's own limit and the body cannot be taken over.
_MAX_HEADER_BLOCK = 256 * 1024
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)
#: ``tcpi_state`` of a TCP socket the peer reset (``TCP_CLOSE``); a FIN leaves it in ``TCP_CLOSE_WAIT``.
_TCP_CLOSE = 7


def _raise_if_reset(sock: socket.socket) -> None:
    """An end of data on a TLS socket that is really a reset raises ``ConnectionResetError``.

    OpenSSL reports a reset as a plain end of stream, so the kernel's TCP state tells the two
    apart: the runtimes (Go) say "connection reset by peer", and so must the pull.
    """
    if not isinstance(sock, ssl.SSLSocket):
        return  # a plain socket raises the reset itself
    try:
        state = socket.socket.getsockopt(sock, socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    except (OSError, AttributeError, IndexError):
        return
    if state == _TCP_CLOSE:
        raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))

#: Called (in the body's thread) with each received slice of a taken-over body; raising ends the body.
Consumer = Callable[[memoryview], None]


class _Stopped(Exception):
    """The body was stopped from the event loop."""


class PipeStream(httpcore.AsyncNetworkStream):
    """httpcore's view of one non-blocking socket (plain TCP, or TLS after :meth:`start_tls`)."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self._loop = loop
        self._fd = sock.fileno()
        self._buf = bytearray(STREAM_BUFFER)
        self._view = memoryview(self._buf)
        self._start = self._end = 0
        self._eof = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._waiting_for = ""
        # Header mode: the header block being read (its first bytes, its last two, its size).
        self._in_headers = False
        self._head = b""
        self._tail = b""
        self._seen = 0
        self.at_boundary = False
        """The last read ended exactly at the end of a final (non-1xx) header block."""
        self._body: TakenBody | None = None

    # -- waiting on the selector ---------------------------------------------------------------
    async def _wait(self, readable: bool) -> None:
        """Until the socket is readable (or writable); the socket's error if it is closed meanwhile."""
        if self._closed:
            raise ConnectionResetError("connection closed")
        fut = self._loop.create_future()
        self._waiter, self._waiting_for = fut, "r" if readable else "w"
        add, remove = ((self._loop.add_reader, self._loop.remove_reader) if readable
                       else (self._loop.add_writer, self._loop.remove_writer))
        add(self._fd, _wake, fut)
        try:
            await fut
        finally:
            if not self._closed:
                remove(self._fd)
            self._waiter, self._waiting_for = None, ""

    def _unregister(self) -> None:
        """Drop a pending selector registration and fail its waiter (before the socket is closed)."""
        waiter, kind = self._waiter, self._waiting_for
        if waiter is None:
            return
        (self._loop.remove_reader if kind == "r" else self._loop.remove_writer)(self._fd)
        if not waiter.done():
            waiter.set_exception(ConnectionResetError("connection closed"))

    # -- httpcore's stream interface -----------------------------------------------------------
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Buffered bytes (never past a header block's end); ``b""`` at EOF; httpcore's Read* on failure."""
        self.at_boundary = False
        if self._start == self._end:
            if self._eof:
                return b""
            try:
                async with asyncio.timeout(timeout):
                    await self._fill()
            except TimeoutError as exc:
                raise httpcore.ReadTimeout("timed out reading") from exc
            except (OSError, ssl.SSLError) as exc:
                raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc
            if self._start == self._end:
                return b""
        cut = self._header_cut() if self._in_headers else self._end
        data = bytes(self._view[self._start:cut])
        self._start = cut
        if self._start == self._end:
            self._start = self._end = 0
        return data

    async def _fill(self) -> None:
        """Receive into the (empty) buffer: wait for the first bytes, then take whatever else is ready."""
        self._start = self._end = 0
        view, size = self._view, len(self._buf)
        while True:
            try:
                n = self.sock.recv_into(view[self._end:])
            except _WOULD_BLOCK:
                if self._end:
                    return
                await self._wait(True)
                continue
            except ssl.SSLWantWriteError:
                await self._wait(False)
                continue
            if n == 0:
                _raise_if_reset(self.sock)
                self._eof = True
                return
            self._end += n
            if self._end == size:
                return

    def _header_cut(self) -> int:
        """Where the bytes handed out must stop: at the end of the header block, if it is in the buffer."""
        chunk = bytes(self._view[self._start:self._end])
        tail = self._tail
        match = _BLANK_LINE.search(tail + chunk)
        if match is None:
            self._head = (self._head + chunk[:16])[:16]
            self._tail = (tail + chunk)[-2:]
            self._seen += len(chunk)
            if self._seen > _MAX_HEADER_BLOCK:
                self._in_headers = False  # h11 refuses it; no takeover of what follows
            return self._end
        stop = match.end() - len(tail)
        head = (self._head + chunk[:16])[:16]
        self._head = self._tail = b""
        self._seen = 0
        if not _INFORMATIONAL.match(head):  # a 1xx block is followed by the real one
            self._in_headers = False
            self.at_boundary = True
        return self._start + stop

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer`` whole; a request going out means the next bytes are a header block."""
        if not buffer:
            return
        self._in_headers = True
        self._head = self._tail = b""
        self._seen = 0
        self.at_boundary = False
        view = memoryview(buffer)
        try:
            async with asyncio.timeout(timeout):
                while view:
                    try:
                        n = self.sock.send(view)
                    except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                        await self._wait(False)
                        continue
                    except ssl.SSLWantReadError:
                        await self._wait(True)
                        continue
                    view = view[n:]
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("timed out writing") from exc
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Close the socket at once (no TLS close_notify wait on a dead peer); a running body is stopped first."""
        body = self._body
        if body is not None and body.running:
            body.stop_soon(close=True)  # the thread closes the socket when it lets go of it
            return
        self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._unregister()
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS in place; a handshake that outlives ``timeout`` is a ConnectTimeout."""
        try:
            if self._start != self._end:
                raise ssl.SSLError("bytes arrived before the TLS handshake")
            tls = ssl_context.wrap_socket(self.sock, server_hostname=server_hostname, do_handshake_on_connect=False)
            self.sock = tls
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        await self._wait(True)
                    except ssl.SSLWantWriteError:
                        await self._wait(False)
        except TimeoutError as exc:
            self._close()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from exc
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        self.at_boundary = False
        return self

    def get_extra_info(self, info: str) -> Any:
        """``ssl_object``, ``client_addr``, ``server_addr``, ``socket``, ``is_readable`` as httpcore asks."""
        sock = self.sock
        try:
            if info == "client_addr":
                return sock.getsockname()
            if info == "server_addr":
                return sock.getpeername()
        except OSError:
            return None
        if info == "socket":
            return sock
        if info == "ssl_object":
            return sock if isinstance(sock, ssl.SSLSocket) else None
        if info == "is_readable":
            return self._readable_now()
        return None

    def _readable_now(self) -> bool:
        """Whether an idle connection has something to read (data, EOF or an error: not reusable)."""
        if self._closed or self._eof or self._start < self._end or self._body is not None:
            return True
        sock = self.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        try:  # poll, not select: a descriptor may be above 1024
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    # -- the body, in a thread -----------------------------------------------------------------
    def take_body(self, consumer: Consumer, length: int | None, *, idle_limit: float = 60.0) -> TakenBody | None:
        """Hand the response body to a thread (see the module docstring); ``None`` when the stream is not at a body's start.

        ``idle_limit``: a body that brings no byte at all for this long ends with a read timeout,
        so a thread never outlives a silent peer (the caller's stall rule usually stops it first).
        """
        if not self.at_boundary or self._body is not None or self._closed:
            return None
        first = bytes(self._view[self._start:self._end])  # bytes that arrived with the headers
        body = TakenBody(self, consumer, length, first, idle_limit)
        self._body = body
        try:
            body.start()
        except RuntimeError:  # no thread to be had (a host at its process limit): httpx reads the body
            self._body = None
            return None
        self.at_boundary = False
        self._in_headers = False
        self._start = self._end = 0
        return body


class TakenBody:
    """A response body read by its own thread; await it (or :attr:`done`) for its end."""

    def __init__(self, stream: PipeStream, consumer: Consumer, length: int | None, first: bytes,
                 idle_limit: float) -> None:
        self._stream = stream
        self._consumer = consumer
        self._length = length
        self._first = first
        self._idle_limit = idle_limit
        self._loop = stream._loop
        self._lock = threading.Lock()
        self._stop = False
        self._close_after = False
        self.running = True
        self.received = 0
        """Bytes taken off the connection so far (updated by the thread as they arrive)."""
        self.consuming = False
        """The consumer is running (a slow disk write is not a silent server)."""
        self.done: asyncio.Future[None] = self._loop.create_future()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="regtui-body", daemon=True)

    def start(self) -> None:
        """Start the thread (``RuntimeError`` when none can be started)."""
        self._thread.start()

    def __await__(self) -> Generator[Any, None, None]:
        return self.done.__await__()

    def stop_soon(self, close: bool = False) -> None:
        """Ask the thread to stop now (it wakes at once); ``close`` closes the socket when it lets go."""
        with self._lock:
            if not self.running:
                if close:
                    self._stream._close()
                return
            self._stop = True
            self._close_after = self._close_after or close
        try:  # the socket layer's shutdown (not TLS's): a blocked read returns at once
            socket.socket.shutdown(self._stream.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    async def stop(self) -> None:
        """Stop the body and wait until its thread no longer touches the socket or the consumer.

        The socket is shut down at once, so only a consumer call (a file write on a slow disk)
        can keep the thread: that is waited for, or the next attempt would hash and write the
        same bytes beside it."""
        self.stop_soon()
        while not self._ended.is_set():
            try:
                await asyncio.to_thread(self._ended.wait, _POLL * 4)
            except RuntimeError:  # no thread for the wait: wait here, briefly each time
                self._ended.wait(_POLL)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self._pump()
        except _Stopped:
            error = asyncio.CancelledError()
        except TimeoutError as exc:
            error = httpcore.ReadTimeout(f"no body bytes for {self._idle_limit:g} s")
            error.__cause__ = exc
        except (OSError, ssl.SSLError) as exc:
            error = httpcore.ReadError(str(exc) or type(exc).__name__)
            error.__cause__ = exc
        except BaseException as exc:  # the consumer refused the bytes (too many, disk full)
            error = exc
        finally:
            if self._stop:
                error = asyncio.CancelledError()  # nobody waits for a stopped body's own end
            with self._lock:
                self.running = False
                close = self._close_after
            if close:
                self._stream._closed = True
                try:
                    self._stream.sock.close()
                except OSError:
                    pass
            self._ended.set()
        try:
            self._loop.call_soon_threadsafe(self._settle, error)
        except RuntimeError:  # the loop is gone: nobody waits for this body any more
            pass

    def _settle(self, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            self.done.cancel()
        else:
            self.done.set_exception(error)

    def _pump(self) -> None:
        sock, remaining = self._stream.sock, self._length
        if self._first:
            first = memoryview(self._first)
            if remaining is not None:
                first = first[:remaining]
                remaining -= len(first)
            self.received += len(first)
            self._consume(first)
            if remaining == 0:
                return
        sock.settimeout(_POLL)
        self._receive(sock, remaining)

    def _consume(self, view: memoryview) -> None:
        self.consuming = True
        try:
            self._consumer(view)
        finally:
            self.consuming = False

    def _receive(self, sock: socket.socket, remaining: int | None) -> None:
        """Receive until the body's end into one buffer, handing each filling of it to the consumer."""
        view = memoryview(bytearray(BODY_BUFFER))
        idle = 0.0
        while remaining is None or remaining > 0:
            want = BODY_BUFFER if remaining is None else min(BODY_BUFFER, remaining)
            filled = 0
            eof = False
            flush_at = time.monotonic() + _FLUSH
            while filled < want:
                if self._stop:
                    raise _Stopped
                if filled and time.monotonic() >= flush_at:
                    break  # a slow body reaches the consumer (hash, file, progress) in pieces
                try:
                    n = sock.recv_into(view[filled:want])
                except TimeoutError:
                    if self._stop:
                        raise _Stopped from None
                    if filled:
                        break  # hand over what came before the pause
                    idle += _POLL
                    if idle >= self._idle_limit:
                        raise
                    continue
                if n == 0:
                    if remaining is not None and filled < remaining and not self._stop:
                        _raise_if_reset(sock)
                    eof = True
                    break
                idle = 0.0
                filled += n
                self.received += n
            if self._stop:
                raise _Stopped
            if filled:
                self._consume(view[:filled])
                if remaining is not None:
                    remaining -= filled
            if eof:
                break
        if remaining:
            raise httpcore.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                f"received {self._length - remaining} bytes, expected {self._length}")


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def open_pipe(host: str, port: int, *, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> PipeStream:
    """A TCP connection to ``host:port`` (an address, else resolved by the loop) as a :class:`PipeStream`."""
    loop = asyncio.get_running_loop()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if local_address:
                sock.bind((local_address, 0))
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return PipeStream(sock, loop)
    raise last or OSError(f"cannot connect to {host}:{port}")
