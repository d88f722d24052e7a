"""An httpcore network stream over one asyncio ``BufferedProtocol`` whose body can be taken over.

httpcore and h11 read the request's answer through :class:`PipeStream` as through any stream.
While response headers are expected, a read never returns bytes past the end of the header
block (found with h11's own rule: a blank line, ``\\n\\r?\\n``), so once httpcore hands out a
response, h11 holds none of its body. :meth:`PipeStream.take_body` then switches the protocol
to body mode: asyncio decrypts (or receives) straight into one reusable 256 KiB buffer and a
consumer callback sees each filled slice as a ``memoryview`` (a hash update and a file write,
no ``bytes`` object per read, no HTTP parser in between). The body ends at its
``Content-Length`` or, without one, when the peer closes. A taken-over connection is never
reused: closing the response closes it.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any, Callable, Iterable

import httpcore

__all__ = ["STREAM_BUFFER", "Pipe", "PipeStream", "open_pipe", "Consumer"]

#: Bytes buffered before the socket is no longer read (and the body mode's read size).
STREAM_BUFFER = 256 * 1024
#: End of a header block, as h11 finds it.
_BLANK_LINE = re.compile(rb"\n\r?\n")
_INFORMATIONAL = re.compile(rb"HTTP/\d\.\d[ \t]+1\d\d")
#: Past this many header bytes the block is left to h11's own limit and the body cannot be taken over.
_MAX_HEADER_BLOCK = 256 * 1024

#: Called with each received slice of a taken-over body; raising ends the body with that exception.
Consumer = Callable[[memoryview], None]


class Pipe(asyncio.BufferedProtocol):
    """The protocol: a read buffer for httpcore, or a body consumer after :meth:`PipeStream.take_body`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int = STREAM_BUFFER) -> None:
        self._loop = loop
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = self._end = 0
        self.transport: Any = None
        self._eof = False
        self._lost = False
        self._error: BaseException | None = None
        self._reader: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drainers: list[asyncio.Future[None]] = []
        # Header mode: the header block being read (its first bytes, its last two, its size).
        self._in_headers = False
        self._head = b""
        self._tail = b""
        self._seen = 0
        self.at_boundary = False
        """The last read ended exactly at the end of a final (non-1xx) header block."""
        # Body mode.
        self._consumer: Consumer | None = None
        self._remaining: int | None = None
        self._received = 0
        self._expected: int | None = None
        self._done: asyncio.Future[None] | None = None

    # -- protocol callbacks --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        """The whole buffer in body mode; the free end of it otherwise."""
        if self._consumer is not None:
            return self._view
        if self._end == len(self._buf):
            self._make_room()
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        """Hand the bytes to the body consumer, or keep them for the next read."""
        if self._consumer is not None:
            self._feed(self._view[:nbytes])
            return
        self._end += nbytes
        if self._end == len(self._buf) and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        """The peer finished sending: close the connection."""
        self._eof = True
        self._closed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake every waiter; a body still expecting bytes ends with an error."""
        self._eof = self._lost = True
        if exc is not None:
            self._error = exc
        self._closed()
        for fut in self._drainers:
            if not fut.done():
                fut.set_result(None)
        self._drainers.clear()

    def pause_writing(self) -> None:
        """The transport's write buffer is full."""
        self._writing_paused = True

    def resume_writing(self) -> None:
        """The transport can take more."""
        self._writing_paused = False
        for fut in self._drainers:
            if not fut.done():
                fut.set_result(None)
        self._drainers.clear()

    # -- stream mode ---------------------------------------------------------------------------
    def _make_room(self) -> None:
        """Move unread bytes to the front, or grow the buffer when it is all unread (reading is paused then)."""
        unread = self._end - self._start
        if self._start:
            self._view[:unread] = self._view[self._start:self._end]
        else:
            grown = bytearray(len(self._buf) * 2)
            grown[:unread] = self._view[:unread]
            self._buf, self._view = grown, memoryview(grown)
        self._start, self._end = 0, unread

    def _wake(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _closed(self) -> None:
        self._wake()
        if self._done is not None and not self._done.done():
            if self._error is not None:
                exc = httpcore.ReadError(str(self._error) or type(self._error).__name__)
                exc.__cause__ = self._error
                self._finish(exc)
            elif self._remaining:
                self._finish(httpcore.RemoteProtocolError(
                    "peer closed connection without sending complete message body: "
                    f"received {self._received} bytes, expected {self._expected}"))
            else:
                self._finish(None)

    def request_sent(self) -> None:
        """A request went out: the next bytes are a header block."""
        self._in_headers = True
        self._head = self._tail = b""
        self._seen = 0
        self.at_boundary = False

    async def read(self) -> bytes:
        """Buffered bytes (never past a header block's end); ``b""`` at EOF; the connection's error if it broke."""
        self.at_boundary = False
        while self._start == self._end:
            if self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            self._reader = self._loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        cut = self._header_cut() if self._in_headers else self._end
        data = bytes(self._view[self._start:cut])
        self._start = cut
        if self._start == self._end:
            self._start = self._end = 0
        if self._reading_paused and not self._lost:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

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

    async def drain(self) -> None:
        """Wait until the transport takes more writes."""
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if self._writing_paused:
            fut = self._loop.create_future()
            self._drainers.append(fut)
            await fut
            if self._lost:
                raise ConnectionResetError("Connection lost")

    # -- body mode -----------------------------------------------------------------------------
    def take_body(self, consumer: Consumer, length: int | None) -> asyncio.Future[None]:
        """Send the body (``length`` bytes, or up to EOF) to ``consumer``; the future ends with the body."""
        self._done = self._loop.create_future()
        self._consumer, self._remaining, self._expected = consumer, length, length
        self.at_boundary = False
        self._in_headers = False
        if length == 0:
            self._finish(None)
            return self._done
        if self._start < self._end:  # bytes that arrived with the headers
            first = self._view[self._start:self._end]
            self._start = self._end = 0
            self._feed(first)
        if self._eof and not self._done.done():
            self._closed()
        if self._reading_paused and not self._lost:
            self._reading_paused = False
            self.transport.resume_reading()
        return self._done

    def _feed(self, view: memoryview) -> None:
        if self._done is None or self._done.done():
            return  # after the body: nothing more is wanted from this connection
        if self._remaining is not None and len(view) > self._remaining:
            view = view[:self._remaining]
        try:
            assert self._consumer is not None
            self._consumer(view)
        except Exception as exc:  # the consumer refused the bytes (too many, disk full): the body ends here
            self._finish(exc)
            return
        self._received += len(view)
        if self._remaining is not None:
            self._remaining -= len(view)
            if self._remaining == 0:
                self._finish(None)

    def _finish(self, exc: BaseException | None) -> None:
        assert self._done is not None
        if self._done.done():  # cancelled by a reader that gave up (a stall, a cancelled task)
            pass
        elif exc is None:
            self._done.set_result(None)
        else:
            self._done.set_exception(exc)
        if not self._lost and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()


class PipeStream(httpcore.AsyncNetworkStream):
    """httpcore's view of a :class:`Pipe` (plain TCP, or TLS after :meth:`start_tls`)."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """What is buffered (any amount: h11 takes it all); httpcore's Read* exceptions on failure."""
        try:
            async with asyncio.timeout(timeout):
                return await self.pipe.read()
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("timed out reading") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer`` and wait until the transport took it."""
        if not buffer:
            return
        self.pipe.request_sent()
        try:
            self.pipe.transport.write(buffer)
            async with asyncio.timeout(timeout):
                await self.pipe.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("timed out writing") from exc
        except (OSError, ssl.SSLError, RuntimeError) as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Drop the connection at once (no TLS close_notify wait on a dead peer)."""
        self.pipe.transport.abort()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS in place; a handshake that outlives ``timeout`` is a ConnectTimeout."""
        loop = asyncio.get_running_loop()
        raw = self.pipe.transport
        try:
            async with asyncio.timeout(timeout):
                self.pipe.transport = await loop.start_tls(raw, self.pipe, ssl_context,
                                                           server_hostname=server_hostname)
        except TimeoutError as exc:
            raw.abort()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raw.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        """``ssl_object``, ``client_addr``, ``server_addr``, ``socket``, ``is_readable`` as httpcore asks."""
        transport = self.pipe.transport
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "is_readable":
            return (self.pipe._eof and self.pipe._start == self.pipe._end) or transport.is_closing()
        if info in ("ssl_object", "socket"):
            return transport.get_extra_info(info)
        return None

    def take_body(self, consumer: Consumer, length: int | None) -> asyncio.Future[None] | None:
        """Take the response body over (see the module docstring); ``None`` when the stream is not at a body's start."""
        if not self.pipe.at_boundary or self.pipe._done is not None:
            return None
        return self.pipe.take_body(consumer, length)


async def open_pipe(host: str, port: int, *, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> PipeStream:
    """A TCP connection to ``host:port`` (an address) as a :class:`PipeStream`."""
    loop = asyncio.get_running_loop()
    _, pipe = await loop.create_connection(lambda: Pipe(loop), host, port,
                                           local_addr=(local_address, 0) if local_address else None)
    sock = pipe.transport.get_extra_info("socket")
    for option in socket_options or ():
        sock.setsockopt(*option)
    return PipeStream(pipe)
