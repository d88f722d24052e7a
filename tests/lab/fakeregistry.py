"""A deliberately misbehaving registry for the pull and mirrors tests, in a thread of the test process.

The real ``docker-registry`` cannot be told to be slow, to drop a connection half-way through a
layer, to redirect blobs to a CDN, to announce a rate limit, or to lie about digests. This server
serves an OCI image layout (from :mod:`lab.images`) with the distribution API and does exactly
those things on request. It is used only where a real registry cannot show the behaviour.

Faults (all off by default), see :class:`Faults`:

- ``delay``: seconds before every answer (a slow mirror); ``throttle``: bytes/s per blob digest;
- ``drop_once``: blob digests whose first GET is cut off after half the bytes (then ``Range``
  requests are honoured, so a client can resume); ``fail_first``: digest -> number of 503s first;
- ``redirect_to``: base URL blobs are redirected to with 307 (``?sig=...`` appended, as pre-signed
  CDN URLs do); ``basic_auth``: ``(user, password)`` required on every ``/v2`` request;
- ``ratelimit``: ``(limit, remaining)`` sent as ``ratelimit-*`` headers; ``status_429``: manifest
  requests answer 429; ``wrong_digest_header``: ``Docker-Content-Digest`` names another digest;
- ``huge_manifest``: manifests are 5 MiB; ``endless_blobs``: blob bodies never end;
  ``garbage``: the answer to a manifest request is not HTTP at all; ``ignore_range``: Range is ignored;
- ``no_digest_header``; ``head_405``: HEAD on manifests answers 405;
- ``chunked_blobs``: blob bodies are sent with ``Transfer-Encoding: chunked`` (no Content-Length).

Every request is recorded in :attr:`FakeRegistry.requests` (method, path, headers) so tests can
assert, e.g., that a CDN never received ``Authorization``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .pki import IssuedCert
from .procs import LOOPBACK

__all__ = ["Faults", "FakeRegistry", "Recorded"]

_CHUNK = 64 * 1024


@dataclass
class Faults:
    """What the fake registry does wrong (see the module docstring)."""

    delay: float = 0.0
    throttle: dict[str, float] = field(default_factory=dict)
    drop_once: set[str] = field(default_factory=set)
    fail_first: dict[str, int] = field(default_factory=dict)
    redirect_to: str | None = None
    basic_auth: tuple[str, str] | None = None
    ratelimit: tuple[int, int] | None = None
    status_429: bool = False
    wrong_digest_header: bool = False
    no_digest_header: bool = False
    huge_manifest: bool = False
    endless_blobs: bool = False
    garbage: bool = False
    ignore_range: bool = False
    head_405: bool = False
    chunked_blobs: bool = False


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (resets, aborted TLS) are part of the tests: stay quiet about them."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
    owner: "FakeRegistry"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: requests are recorded, not logged."""

    # -- helpers ---------------------------------------------------------------------------
    @property
    def reg(self) -> "FakeRegistry":
        return self.server.owner

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self._common_headers()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _common_headers(self) -> None:
        f = self.reg.faults
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if f.ratelimit:
            self.send_header("ratelimit-limit", f"{f.ratelimit[0]};w=21600")
            self.send_header("ratelimit-remaining", f"{f.ratelimit[1]};w=21600")
            self.send_header("docker-ratelimit-source", "127.0.0.1")

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _authorized(self) -> bool:
        creds = self.reg.faults.basic_auth
        if creds is None:
            return True
        want = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        if self.headers.get("Authorization") == want:
            return True
        self._error(401, "UNAUTHORIZED", "authentication required",
                    {"WWW-Authenticate": 'Basic realm="regtui-fake"'})
        return False

    # -- routing ---------------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        """Manifests and blobs, without body."""
        self._route()

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        """The distribution API."""
        self._route()

    def _route(self) -> None:
        self.reg.requests.append(Recorded(self.command, self.path, {k: v for k, v in self.headers.items()}))
        faults = self.reg.faults
        if faults.delay:
            time.sleep(faults.delay)
        path = self.path.split("?", 1)[0]
        if not path.startswith("/v2/"):
            self._error(404, "NOT_FOUND", "not found")
            return
        if self.reg.cdn and "/blobs/" in path:
            self._blob(path.rsplit("/", 1)[-1])  # a CDN serves without auth
            return
        if not self._authorized():
            return
        if path == "/v2/":
            self._send(200, b"{}", {"Content-Type": "application/json"})
            return
        repo, kind, ref = self._split(path)
        if repo is None:
            self._error(404, "NAME_UNKNOWN", "repository name not known to registry")
        elif kind == "manifests":
            self._manifest(ref)
        else:
            self._blob(ref)

    @staticmethod
    def _split(path: str) -> tuple[str | None, str, str]:
        rest = path[len("/v2/"):]
        for kind in ("/manifests/", "/blobs/"):
            if kind in rest:
                repo, ref = rest.rsplit(kind, 1)
                return repo, kind.strip("/"), ref
        return None, "", ""

    def _manifest(self, ref: str) -> None:
        f, reg = self.reg.faults, self.reg
        if f.garbage:
            self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\nthis is not HTTP\r\n\r\n")
            self.close_connection = True
            return
        if f.status_429:
            self._error(429, "TOOMANYREQUESTS", "You have reached your pull rate limit.", {"Retry-After": "60"})
            return
        if f.head_405 and self.command == "HEAD":
            self._send(405, b"", {})
            return
        digest = reg.tags.get(ref, ref)
        data = reg.read_blob(digest)
        if data is None:
            self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            return
        media = json.loads(data).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
        if f.huge_manifest:
            data = data + b" " * (5 * 1024 * 1024)
        headers = {"Content-Type": media}
        if not f.no_digest_header:
            headers["Docker-Content-Digest"] = ("sha256:" + "0" * 64) if f.wrong_digest_header else digest
        self._send(200, data, headers)

    def _blob(self, digest: str) -> None:
        f, reg = self.reg.faults, self.reg
        if f.redirect_to and not reg.cdn:
            repo = self.path.split("/blobs/")[0][len("/v2/"):]
            location = f"{f.redirect_to}/v2/{repo}/blobs/{digest}?sig=cdn-signature-SECRET&expires=9"
            self._send(307, b"", {"Location": location})
            return
        remaining = reg.failures_left(digest)
        if remaining:
            self._error(503, "UNAVAILABLE", "try again")
            return
        data = reg.read_blob(digest)
        if data is None:
            self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not f.ignore_range:
            start = int(rng[len("bytes="):].split("-", 1)[0] or 0)
        if f.endless_blobs:
            self._endless()
            return
        body = data[start:]
        if f.chunked_blobs:
            self._chunked(body, digest, start, len(data))
            return
        self.send_response(206 if start else 200)
        self._common_headers()
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Docker-Content-Digest", digest)
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = len(body) // 2 if reg.drop_now(digest) and not start else None
        self._stream(body, cut, f.throttle.get(digest))

    def _stream(self, body: bytes, cut: int | None, rate: float | None) -> None:
        sent = 0
        limit = cut if cut is not None else len(body)
        began = time.monotonic()
        try:
            while sent < limit:
                chunk = body[sent:min(limit, sent + _CHUNK)]
                self.wfile.write(chunk)
                sent += len(chunk)
                if rate:
                    ahead = sent / rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)
            if cut is not None:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
        except OSError:
            self.close_connection = True

    def _chunked(self, body: bytes, digest: str, start: int, total: int) -> None:
        self.send_response(206 if start else 200)
        self._common_headers()
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Docker-Content-Digest", digest)
        self.send_header("Transfer-Encoding", "chunked")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        self.end_headers()
        if self.command == "HEAD":
            return
        for i in range(0, len(body), _CHUNK):
            piece = body[i:i + _CHUNK]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _endless(self) -> None:
        self.send_response(200)
        self._common_headers()
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = os.urandom(_CHUNK)
        try:
            for _ in range(1 << 20):  # bounded: at most 64 GiB, far beyond any client cap
                self.wfile.write(chunk)
        except OSError:
            pass


class FakeRegistry:
    """The misbehaving registry: ``with FakeRegistry(layout_dir, faults=Faults(delay=0.3)) as reg: reg.url``."""

    def __init__(self, layout_dir: Path | None = None, *, faults: Faults | None = None, tls: IssuedCert | None = None,
                 host: str = LOOPBACK, cdn: bool = False, tags: dict[str, str] | None = None,
                 client_ca: Path | None = None) -> None:
        """Serve the blobs of ``layout_dir`` (its ``index.json`` tags); ``cdn=True`` serves blobs to anyone, no redirects.

        ``client_ca``: with ``tls``, refuse any client that does not present a certificate this CA issued."""
        self.layout_dir = Path(layout_dir) if layout_dir else None
        self.faults = faults or Faults()
        self.tls = tls
        self.client_ca = client_ca
        self.host = host
        self.cdn = cdn
        self.tags: dict[str, str] = dict(tags or {})
        if self.layout_dir is not None and not self.tags:
            index = json.loads((self.layout_dir / "index.json").read_text())
            for m in index["manifests"]:
                tag = m.get("annotations", {}).get("org.opencontainers.image.ref.name", "latest")
                self.tags[tag] = m["digest"]
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._dropped: set[str] = set()
        self._fail_counts: dict[str, int] = dict(self.faults.fail_first)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- content ---------------------------------------------------------------------------
    def read_blob(self, digest: str) -> bytes | None:
        """The bytes of ``digest`` from the layout, or None."""
        if self.layout_dir is None or ":" not in digest or "/" in digest:
            return None
        path = self.layout_dir / "blobs" / digest.split(":", 1)[0] / digest.split(":", 1)[1]
        return path.read_bytes() if path.is_file() else None

    def drop_now(self, digest: str) -> bool:
        """True the first time ``digest`` (a ``drop_once`` blob) is served."""
        with self._lock:
            if digest in self.faults.drop_once and digest not in self._dropped:
                self._dropped.add(digest)
                return True
        return False

    def failures_left(self, digest: str) -> bool:
        """Consume one of ``digest``'s ``fail_first`` answers; True while some are left."""
        with self._lock:
            left = self._fail_counts.get(digest, 0)
            if left:
                self._fail_counts[digest] = left - 1
                return True
        return False

    # -- addresses -------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        """``https`` with TLS."""
        return "https" if self.tls else "http"

    @property
    def host_port(self) -> str:
        """``HOST:PORT``."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"{self.scheme}://{self.host_port}"

    def requests_to(self, fragment: str) -> list[Recorded]:
        """Recorded requests whose path contains ``fragment``."""
        return [r for r in self.requests if fragment in r.path]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FakeRegistry":
        """Listen on a free port and serve in a daemon thread."""
        server = _Server((self.host, 0), _Handler)
        server.owner = self
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls.chain_file), str(self.tls.key_file))
            if self.client_ca is not None:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(str(self.client_ca))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeRegistry":
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving it."""
        self.stop()
