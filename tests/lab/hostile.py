"""A hostile registry: an asyncio server on 127.0.0.1 and 127.0.0.2 that attacks the client's time and memory.

:mod:`lab.fakeregistry` misbehaves the way broken infrastructure does (drops, 503s, throttling);
this server misbehaves the way a malicious or badly wedged peer does: it drips a manifest or a
blob a byte at a time, sends bodies that never end, announces a ``Content-Length`` it never
delivers and holds the connection, loops redirects between its two addresses, serves an index
that points at itself, asks to come back in thirty years, sends challenges and tokens that are
garbage. Content (tags and blobs) comes from an OCI layout through :class:`FakeRegistry`.

One server runs one case (:data:`CASES`); the second listener (127.0.0.2) is the "other host"
for redirects and token realms. :func:`run_measured` runs a command in a subprocess and returns
its wall time and its own peak RSS (``wait4`` in a small launcher, so the caller's memory is not
counted), killing the whole process group at a cap.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fakeregistry import FakeRegistry
from .images import MEDIA_INDEX

__all__ = ["CASES", "HostileRegistry", "Measured", "run_measured", "regtui_argv", "hostile_root", "clean_env",
           "DRIP_RATE", "SLOW_RATE"]

#: Bytes per second of a drip: one byte per quarter second, so a client's per-read timeout (1 s in the
#: tests) never fires and only an overall deadline or a throughput rule can end it.
DRIP_RATE = 4.0
#: Bytes per second of the slow-but-moving blob (well above the client's stall floor of 64 KiB per window).
SLOW_RATE = 256 * 1024
_HOLD = 600.0  # longest a connection is held open without sending (bounded)
_HEADER_LIMIT = 64 * 1024
_CHUNK = 64 * 1024

#: case -> what the server does.
CASES: dict[str, str] = {
    "drip-manifest": "the manifest body one byte at a time (HEAD names no digest, so every client GETs it)",
    "drip-headers": "the manifest answer's status line and headers one byte at a time",
    "drip-ping": "the body of GET /v2/ one byte at a time",
    "drip-token": "a Bearer challenge whose token answer (on 127.0.0.2) comes one byte at a time",
    "drip-error": "a 404 for the manifest whose error body comes one byte at a time",
    "drip-blob": "the layer one byte at a time",
    "endless-manifest": "a manifest body without Content-Length that never ends",
    "endless-blob": "a layer body without Content-Length that never ends",
    "short-manifest": "Content-Length of the manifest, half the bytes, then the connection is held open",
    "short-blob": "Content-Length of the layer, half the bytes, then the connection is held open",
    "slow-big-blob": f"the layer at {SLOW_RATE // 1024} KiB/s: slow but moving (the pull must succeed)",
    "redirect-loop": "every manifest request 307-redirects to the other address, forever",
    "self-index": "the tag is an index whose entry for the platform is the index itself",
    "retry-after": "429 on the manifest with Retry-After of a billion seconds",
    "malformed-challenge": "401 with a WWW-Authenticate that does not parse",
    "garbage-token": "a Bearer challenge whose realm (on 127.0.0.2) answers random bytes",
    "huge-manifest": "a 5 MiB manifest with a correct Content-Length",
}


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    listener: int
    """0 for 127.0.0.1, 1 for 127.0.0.2."""


class HostileRegistry:
    """``with HostileRegistry("drip-blob", layout_dir) as reg: reg.url``: one case on two loopback addresses."""

    ADDRESSES = ("127.0.0.1", "127.0.0.2")

    def __init__(self, case: str, layout_dir: Path) -> None:
        """Serve ``layout_dir`` (its tags) with the misbehaviour ``case``."""
        if case not in CASES:
            raise ValueError(f"unknown case {case!r}")
        self.case = case
        self.content = FakeRegistry(layout_dir)  # tags and blobs only; never started
        self.ports: list[int] = []
        self.requests: list[_Request] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._self_index = self._make_self_index()

    # -- addresses -------------------------------------------------------------------------
    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT`` of the main listener."""
        return f"{self.ADDRESSES[0]}:{self.ports[0]}"

    @property
    def url(self) -> str:
        """Base URL of the main listener."""
        return f"http://{self.host_port}"

    def other_url(self, listener: int) -> str:
        """Base URL of the listener that is not ``listener``."""
        other = 1 - listener
        return f"http://{self.ADDRESSES[other]}:{self.ports[other]}"

    @property
    def layer(self) -> str:
        """Digest of the image's first layer (the one the blob cases attack)."""
        manifest = json.loads(self.content.read_blob(self._image_digest()) or b"{}")
        return manifest["layers"][0]["digest"]

    def _image_digest(self) -> str:
        digest = self.content.tags["latest"]
        data = json.loads(self.content.read_blob(digest) or b"{}")
        if data.get("mediaType") == MEDIA_INDEX:
            return data["manifests"][0]["digest"]
        return digest

    def _make_self_index(self) -> tuple[bytes, str]:
        """An index whose linux/amd64 entry names a digest for which this same index is served."""
        entry_digest = "sha256:" + hashlib.sha256(b"regtui hostile self-referencing index").hexdigest()
        body = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
            {"mediaType": MEDIA_INDEX, "digest": entry_digest, "size": 0,
             "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
        return body, entry_digest

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "HostileRegistry":
        """Listen on both addresses (free ports) in a daemon thread running its own event loop."""
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                for address in self.ADDRESSES:
                    index = len(self._servers)
                    server = loop.run_until_complete(asyncio.start_server(
                        lambda r, w, i=index: self._serve(r, w, i), address, 0, limit=_HEADER_LIMIT))
                    self._servers.append(server)
                    self.ports.append(server.sockets[0].getsockname()[1])
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failed.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name=f"hostile-{self.case}")
        self._thread.start()
        ready.wait(10)
        if failed:
            raise failed[0]
        return self

    def stop(self) -> None:
        """Close the listeners and every connection; stop the loop."""
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> "HostileRegistry":
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving it."""
        self.stop()

    # -- the connection --------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: int) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            for _ in range(1000):  # keep-alive, bounded
                try:
                    first = await asyncio.wait_for(reader.readexactly(1), _HOLD)
                    if first == b"\x16":  # a TLS ClientHello: a plain-HTTP server answers 400 at once
                        writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n400 Bad Request")
                        await writer.drain()
                        return
                    head = first + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HOLD)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    return
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                length = headers.get("content-length", "0")
                if length.isdigit() and int(length):
                    await reader.readexactly(min(int(length), _HEADER_LIMIT))
                request = _Request(parts[0], parts[1], headers, listener)
                self.requests.append(request)
                if not await self._answer(request, reader, writer):
                    return
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # the client hung up, or the server is stopping
        finally:
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    def _head(status: int, headers: dict[str, str]) -> bytes:
        reason = {200: "OK", 307: "Temporary Redirect", 401: "Unauthorized", 404: "Not Found",
                  429: "Too Many Requests"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}", "Docker-Distribution-API-Version: registry/2.0"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(self, writer: asyncio.StreamWriter, status: int, body: bytes = b"",
                    headers: dict[str, str] | None = None, method: str = "GET") -> bool:
        writer.write(self._head(status, {"Content-Length": str(len(body)), **(headers or {})}))
        if method != "HEAD":
            writer.write(body)
        await writer.drain()
        return True

    async def _drip(self, writer: asyncio.StreamWriter, data: bytes) -> bool:
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            await asyncio.sleep(1 / DRIP_RATE)
        return True

    async def _hold(self, reader: asyncio.StreamReader) -> bool:
        """Send nothing more until the client hangs up (at most :data:`_HOLD` seconds)."""
        try:
            await asyncio.wait_for(reader.read(1), _HOLD)
        except asyncio.TimeoutError:
            pass
        return False

    async def _endless(self, writer: asyncio.StreamWriter, content_type: str) -> bool:
        writer.write(self._head(200, {"Content-Type": content_type, "Connection": "close"}))
        chunk = os.urandom(_CHUNK)
        for _ in range(1 << 20):  # bounded: 64 GiB, far beyond any client cap
            writer.write(chunk)
            await writer.drain()
        return False

    async def _paced(self, writer: asyncio.StreamWriter, data: bytes, rate: float) -> bool:
        began, sent = time.monotonic(), 0
        step = max(1, int(rate) // 16)
        while sent < len(data):
            writer.write(data[sent:sent + step])
            sent += step
            await writer.drain()
            ahead = sent / rate - (time.monotonic() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
        return True

    async def _answer(self, req: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False closes the connection."""
        case, path = self.case, req.path.split("?", 1)[0]
        token_realm = f"{self.other_url(0)}/token"
        if path == "/token":
            if case == "drip-token":
                body = json.dumps({"token": "t" * 64, "expires_in": 300}).encode()
                writer.write(self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}))
                return await self._drip(writer, body)
            if case == "garbage-token":
                return await self._send(writer, 200, os.urandom(2048), {"Content-Type": "application/json"})
            return await self._send(writer, 404)
        if case in ("drip-token", "garbage-token") and req.headers.get("authorization", "") != "Bearer " + "t" * 64:
            return await self._send(writer, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {
                "WWW-Authenticate": f'Bearer realm="{token_realm}",service="hostile",scope="repository:lab/app:pull"'},
                method=req.method)
        if case == "malformed-challenge":
            challenge = 'Bearer realm="http://[::1,, ="=,\x7f scope'
            return await self._send(writer, 401, b"", {"WWW-Authenticate": challenge}, method=req.method)
        if path == "/v2/":
            if case == "drip-ping":
                body = b"{}" + b" " * 1024
                writer.write(self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}))
                return await self._drip(writer, body)
            return await self._send(writer, 200, b"{}", {"Content-Type": "application/json"}, req.method)
        if "/manifests/" in path:
            return await self._manifest(req, path.rsplit("/", 1)[-1], reader, writer)
        if "/blobs/" in path:
            return await self._blob(req, path.rsplit("/", 1)[-1], reader, writer)
        return await self._send(writer, 404, b"", method=req.method)

    async def _manifest(self, req: _Request, ref: str, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> bool:
        case = self.case
        if case == "redirect-loop":
            return await self._send(writer, 307, b"", {"Location": f"{self.other_url(req.listener)}{req.path}"},
                                    req.method)
        if case == "retry-after":
            return await self._send(writer, 429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
                                    {"Retry-After": "1000000000", "Content-Type": "application/json"}, req.method)
        if case == "drip-error":
            body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"' + b"x" * 512 + b'"}]}'
            writer.write(self._head(404, {"Content-Type": "application/json", "Content-Length": str(len(body))}))
            return await self._drip(writer, body) if req.method != "HEAD" else True
        if case == "drip-headers":
            return await self._drip(writer, self._head(200, {"Content-Length": "2"})) and False
        if case == "self-index":
            body, _ = self._self_index
            return await self._send(writer, 200, body, {"Content-Type": MEDIA_INDEX}, req.method)
        digest = self.content.tags.get(ref, ref)
        data = self.content.read_blob(digest)
        if data is None:
            return await self._send(writer, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', method=req.method)
        media = json.loads(data).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
        headers = {"Content-Type": media, "Content-Length": str(len(data))}
        if case == "endless-manifest" and req.method == "GET":
            return await self._endless(writer, media)
        if case == "huge-manifest":
            data += b" " * (5 * 1024 * 1024)
            headers["Content-Length"] = str(len(data))
        if case not in ("drip-manifest", "short-manifest"):
            headers["Docker-Content-Digest"] = digest
        writer.write(self._head(200, headers))
        if req.method == "HEAD":
            await writer.drain()
            return True
        if case == "drip-manifest":
            return await self._drip(writer, data)
        if case == "short-manifest":
            writer.write(data[: len(data) // 2])
            await writer.drain()
            return await self._hold(reader)
        writer.write(data)
        await writer.drain()
        return True

    async def _blob(self, req: _Request, digest: str, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> bool:
        data = self.content.read_blob(digest)
        if data is None:
            return await self._send(writer, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', method=req.method)
        attacked = digest == self.layer and req.method == "GET"
        case = self.case
        if attacked and case == "endless-blob":
            return await self._endless(writer, "application/octet-stream")
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                   "Content-Length": str(len(data))}
        writer.write(self._head(200, headers))
        if req.method == "HEAD":
            await writer.drain()
            return True
        if attacked and case == "drip-blob":
            return await self._drip(writer, data)
        if attacked and case == "short-blob":
            writer.write(data[: len(data) // 2])
            await writer.drain()
            return await self._hold(reader)
        if attacked and case == "slow-big-blob":
            return await self._paced(writer, data, SLOW_RATE)
        writer.write(data)
        await writer.drain()
        return True


# -- measuring a subprocess ----------------------------------------------------------------------------
# Runs argv in a child of this small launcher and writes wait4's rusage of that child: a process
# forked straight from a large parent would report the parent's memory high-water mark as its own.
_LAUNCHER = r"""
import json, os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.posix_spawn(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as fh:
    json.dump({"status": status, "maxrss_kib": usage.ru_maxrss}, fh)
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


@dataclass
class Measured:
    """One measured run."""

    returncode: int | None
    """``None`` when it was killed at the cap."""
    wall: float
    maxrss_mib: float
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        """It did not finish before the cap."""
        return self.returncode is None


def run_measured(argv: list[str], *, env: dict[str, str], cap: float) -> Measured:
    """Run ``argv``; its wall time and own peak RSS. Past ``cap`` seconds its process group is killed."""
    with tempfile.NamedTemporaryFile(prefix="rusage-", suffix=".json", delete=False) as fh:
        result_file = fh.name
    began = time.monotonic()
    # cwd "/": ``python3 -m`` puts the working directory first on sys.path, ahead of PYTHONPATH.
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, result_file, *argv], env=env, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=cap)
        returncode: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher's own session: it and the run it started
        out, err = proc.communicate()
        returncode = None
    wall = time.monotonic() - began
    try:
        maxrss = json.loads(Path(result_file).read_text() or "{}").get("maxrss_kib", 0) / 1024
    except (OSError, ValueError):
        maxrss = 0.0
    finally:
        os.unlink(result_file)
    return Measured(returncode, wall, maxrss, out.decode(errors="replace"), err.decode(errors="replace"))


# -- running regtui against a case ----------------------------------------------------------------------
def regtui_argv(command: str, root: Path, image: str, timeout: float) -> list[str]:
    """``python3 -m regtui pull|check`` of ``image`` for Docker under ``root``, JSON out."""
    base = [sys.executable, "-m", "regtui", command]
    if command == "pull":
        base.append(image)
    else:
        base += ["--image", image, "--ntp-server", "127.0.0.1:9"]  # never the public NTP pool
    return base + ["--root", str(root), "--runtime", "docker", "--docker-store", "classic", "--format", "json",
                   "--timeout", f"{timeout:g}"]


def hostile_root(root: Path, reg: HostileRegistry) -> str:
    """A Docker host that trusts ``reg`` as an insecure (plain HTTP) registry; returns the image reference."""
    from .pullroots import docker_root

    docker_root(root, {"insecure-registries": [reg.host_port, f"{reg.ADDRESSES[1]}:{reg.ports[1]}"]})
    return f"{reg.host_port}/lab/app:latest"


def clean_env(pythonpath: str) -> dict[str, str]:
    """The environment regtui runs in: this one without proxies, with ``PYTHONPATH`` set."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = pythonpath
    return env
