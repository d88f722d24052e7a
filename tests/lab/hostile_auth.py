"""A registry that hands its clients to another host which asks for credentials, for the credential-leak tests.

Two threaded HTTP servers on loopback:

- :class:`AuthRegistry` (127.0.0.1): serves an OCI layout with the distribution API and requires
  ``Authorization: Basic user:password`` on every ``/v2`` request; once a request carries them,
  the kinds listed in ``redirect`` (``manifests``, ``blobs``) are answered ``307`` to the trap;
- :class:`Trap` (127.0.0.2): records every request with all its headers and answers ``401`` with a
  ``Basic`` or a ``Bearer`` challenge whose realm is its own ``/token`` (which answers ``401`` too).
  Only its own credentials (``own``), when set, are accepted: then it serves the same layout.

The tests look for the registry's password (and its base64 forms) in :attr:`Trap.received`.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["Received", "AuthRegistry", "Trap", "leaked_forms"]

#: The second loopback address: another host as far as credentials are concerned.
TRAP_ADDRESS = "127.0.0.2"


@dataclass(frozen=True)
class Received:
    """One request as the server read it."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def text(self) -> str:
        """Request line, every header and the body, as one string to search."""
        lines = [f"{self.method} {self.path}"] + [f"{k}: {v}" for k, v in self.headers]
        return "\n".join(lines) + "\n" + self.body.decode("latin-1")


def leaked_forms(secret: str, user: str) -> list[str]:
    """The password, and its base64/base64url alone or in ``user:password``, at each of the 3 alignments."""
    forms = {secret}
    for whole in (f"{user}:{secret}".encode(), secret.encode()):
        for offset in range(3):
            chunk = whole[offset:]
            # Whole 3-byte groups only: their encoding does not depend on the bytes around them.
            chunk = chunk[: len(chunk) - len(chunk) % 3]
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                forms.add(encode(chunk).decode())
    return sorted(f for f in forms if len(f) >= 8)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Any = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-answer is not an error worth printing."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet."""

    @property
    def owner(self) -> Any:
        return self.server.owner  # type: ignore[attr-defined]

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)) if length > 0 else b""
        with self.owner.lock:
            self.owner.received.append(Received(self.command, self.path, tuple(self.headers.items()), body))

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def unauthorized(self, challenge: str) -> None:
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
        self.send(401, body, {"Content-Type": "application/json", "WWW-Authenticate": challenge})

    def serve_content(self, path: str) -> None:
        """Manifests (by tag or digest) and blobs of the layout."""
        rest = path[len("/v2/"):]
        for kind in ("/manifests/", "/blobs/"):
            if kind in rest:
                ref = rest.rsplit(kind, 1)[1]
                digest = self.owner.tags.get(ref, ref)
                data = self.owner.read_blob(digest)
                if data is None:
                    self.send(404, b'{"errors":[{"code":"NOT_FOUND","message":"unknown"}]}',
                              {"Content-Type": "application/json"})
                    return
                media = "application/octet-stream"
                if kind == "/manifests/":
                    media = json.loads(data).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
                self.send(200, data, {"Content-Type": media, "Docker-Content-Digest": digest})
                return
        self.send(200, b"{}", {"Content-Type": "application/json"})

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        """As GET, without body."""
        self._record()
        self.owner.answer(self)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        """The distribution API."""
        self._record()
        self.owner.answer(self)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        """Token requests (OAuth form posts)."""
        self._record()
        self.owner.answer(self)


class _Base:
    """Layout reading, recording and the server thread."""

    def __init__(self, layout_dir: Path, host: str) -> None:
        self.layout_dir = Path(layout_dir)
        self.host = host
        self.tags: dict[str, str] = {}
        index = json.loads((self.layout_dir / "index.json").read_text())
        for m in index["manifests"]:
            self.tags[m.get("annotations", {}).get("org.opencontainers.image.ref.name", "latest")] = m["digest"]
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.port = 0
        self._server: _Server | None = None

    def read_blob(self, digest: str) -> bytes | None:
        """The bytes of ``digest`` in the layout, or None."""
        if ":" not in digest or "/" in digest:
            return None
        algo, hexa = digest.split(":", 1)
        path = self.layout_dir / "blobs" / algo / hexa
        return path.read_bytes() if path.is_file() else None

    @property
    def host_port(self) -> str:
        """``HOST:PORT``."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL (plain HTTP)."""
        return f"http://{self.host_port}"

    def answer(self, handler: _Handler) -> None:
        raise NotImplementedError

    def start(self) -> "_Base":
        """Listen on a free port and serve in a daemon thread."""
        server = _Server((self.host, 0), _Handler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Trap(_Base):
    """The other host: records everything and asks for credentials (``scheme`` ``basic`` or ``bearer``)."""

    def __init__(self, layout_dir: Path, *, scheme: str = "basic", own: tuple[str, str] | None = None,
                 host: str = TRAP_ADDRESS) -> None:
        super().__init__(layout_dir, host)
        self.scheme = scheme
        self.own = own

    def _own_basic(self) -> str | None:
        return "Basic " + base64.b64encode(f"{self.own[0]}:{self.own[1]}".encode()).decode() if self.own else None

    def answer(self, handler: _Handler) -> None:
        """401 unless the trap's own credentials (Basic) or its token (Bearer) come with the request."""
        auth = handler.headers.get("Authorization")
        path = handler.path.split("?", 1)[0]
        if path == "/token":
            if self.own and auth == self._own_basic():
                handler.send(200, json.dumps({"token": "trap-own-token", "expires_in": 300}).encode(),
                             {"Content-Type": "application/json"})
            else:
                handler.unauthorized('Basic realm="trap-token"')
            return
        if self.own and auth in (self._own_basic(), "Bearer trap-own-token"):
            handler.serve_content(path)
            return
        if self.scheme == "bearer":
            handler.unauthorized(f'Bearer realm="{self.url}/token",service="trap"')
        else:
            handler.unauthorized('Basic realm="trap"')

    def leaks(self, secret: str, user: str) -> list[str]:
        """Every recorded request (as text) that contains a form of ``user:secret``."""
        forms = leaked_forms(secret, user)
        with self.lock:
            texts = [r.text() for r in self.received]
        return [t for t in texts if any(f in t for f in forms)]


class AuthRegistry(_Base):
    """The registry: Basic ``credentials`` on every ``/v2`` request, then ``redirect`` kinds go to ``target``."""

    def __init__(self, layout_dir: Path, credentials: tuple[str, str], *, target: str = "",
                 redirect: tuple[str, ...] = ("blobs",), host: str = "127.0.0.1") -> None:
        super().__init__(layout_dir, host)
        self.credentials = credentials
        self.target = target
        self.redirect = redirect

    def answer(self, handler: _Handler) -> None:
        """401 Basic without the credentials; 307 to the target for the redirected kinds; content otherwise."""
        want = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        if handler.headers.get("Authorization") != want:
            handler.unauthorized('Basic realm="registry"')
            return
        path = handler.path.split("?", 1)[0]
        if any(f"/{kind}/" in path for kind in self.redirect) and self.target:
            handler.send(307, b"", {"Location": self.target + handler.path})
            return
        handler.serve_content(path)
