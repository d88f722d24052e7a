"""Every way a registry exchange can fail, as one :class:`Failure` record, and the runtime's words for it.

A failure has a *phase* (where it happened: ``dns``, ``connect``, ``proxy``, ``tls``, ``http``,
``auth``, ``manifest``, ``blob``), a *kind* (what happened: ``nxdomain``, ``timeout``,
``refused``, ``reset``, ``unknown-authority``, ``http-to-https``, ``status``,
``digest-mismatch``...), regtui's own message, and ``go_error``: the error text a Go runtime
prints for the same failure, so the evidence can quote what the user saw ("dockerd will report:
connection reset by peer", SEMANTICS §8).

:func:`classify_exception` maps an httpx/httpcore/ssl/OS exception (its whole cause chain) to a
failure; :func:`status_failure` does the same for an HTTP error status with the registry's JSON
error body; :func:`runtime_error` puts a failure into the sentence each runtime prints.
No secrets are ever put into a failure: URLs are passed through :func:`regtui.redact.url` and
query strings (pre-signed URLs carry credentials there) are cut.
"""

from __future__ import annotations

import errno
import json
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from regtui import redact
from regtui.model import Endpoint
from regtui.net.resolver import ResolveError

__all__ = [
    "Failure",
    "RegistryError",
    "classify_exception",
    "status_failure",
    "registry_error_code",
    "runtime_error",
    "planned_failure",
    "display_url",
    "HTTP_TO_HTTPS",
    "HTTPS_TO_HTTP",
]

#: Go's message when a plain-HTTP server answers a TLS ClientHello.
HTTP_TO_HTTPS = "http: server gave HTTP response to HTTPS client"
#: What Go's TLS server answers to a plain-HTTP request (the reverse mismatch).
HTTPS_TO_HTTP = "Client sent an HTTP request to an HTTPS server"

# OpenSSL reasons meaning "the peer did not answer with TLS" (usually plain HTTP).
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST",
                    "UNKNOWN_PROTOCOL")
# X509 verify codes (OpenSSL) -> (kind, Go text).
_VERIFY = {
    2: ("unknown-authority", "x509: certificate signed by unknown authority"),
    18: ("self-signed", "x509: certificate signed by unknown authority"),
    19: ("unknown-authority", "x509: certificate signed by unknown authority"),
    20: ("unknown-authority", "x509: certificate signed by unknown authority"),
    21: ("unknown-authority", "x509: certificate signed by unknown authority"),
    9: ("not-yet-valid", "x509: certificate has expired or is not yet valid"),
    10: ("expired", "x509: certificate has expired or is not yet valid"),
    62: ("hostname-mismatch", "x509: certificate is not valid for this name"),
}
_BODY_EXCERPT = 300


@dataclass(frozen=True)
class Failure:
    """Why one exchange with an endpoint failed."""

    phase: str
    """``dns``, ``connect``, ``proxy``, ``tls``, ``http``, ``auth``, ``manifest`` or ``blob``."""
    kind: str
    """What happened, e.g. ``timeout``, ``refused``, ``status``, ``http-to-https``, ``digest-mismatch``."""
    message: str
    """regtui's one-line description."""
    go_error: str = ""
    """The error as a Go runtime words it (``dial tcp 127.0.0.1:5000: connect: connection refused``)."""
    url: str = ""
    """The URL that failed (redacted, no query)."""
    status: int | None = None
    """HTTP status, when the server answered."""
    error_code: str | None = None
    """The registry's error code (``MANIFEST_UNKNOWN``, ``UNAUTHORIZED``, ``DENIED``...)."""
    transport_ok: bool = False
    """The endpoint spoke HTTP (Docker then skips plain-HTTP fallback for the host)."""
    timed_out: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    """Extra evidence (Retry-After, body excerpt, bytes seen)."""

    @property
    def registry_error(self) -> bool:
        """The registry answered with an error status (a Docker *errcode*), not a transport failure."""
        return self.status is not None and self.status >= 400

    def to_dict(self) -> dict[str, Any]:
        """JSON form (redacted)."""
        return redact.value({
            "phase": self.phase, "kind": self.kind, "message": self.message, "go_error": self.go_error,
            "url": self.url, "status": self.status, "error_code": self.error_code,
            "timed_out": self.timed_out, **({"details": dict(self.details)} if self.details else {}),
        })


class RegistryError(Exception):
    """Raised inside the registry client; carries the :class:`Failure`."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def display_url(url: str) -> str:
    """``url`` without credentials or query (pre-signed URLs carry their secret there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact.text(url)
    return redact.url(urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))) or ""


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes/contexts and exceptions held in ``args`` (httpcore wraps that way)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 16:
        e = todo.pop(0)
        if e in seen:
            continue
        seen.append(e)
        nested = list(getattr(e, "exceptions", ()) or ())  # ExceptionGroup (anyio: "All connection attempts failed")
        for nxt in (e.__cause__, e.__context__, *[a for a in e.args if isinstance(a, BaseException)], *nested):
            if nxt is not None and nxt not in seen:
                todo.append(nxt)
    return seen


def _first(chain: list[BaseException], kind: type) -> Any:
    return next((e for e in chain if isinstance(e, kind)), None)


def _hostport(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _tls_started(events: list[tuple[str, float]] | None) -> bool:
    names = [n for n, _ in events or ()]
    return "connection.connect_tcp.complete" in names and "connection.start_tls.started" in names


def _proxy_word(proxy: str | None) -> str:
    return "the proxy " if proxy else ""


def classify_exception(exc: BaseException, url: str, *, events: list[tuple[str, float]] | None = None,
                       peer: str | None = None, proxy: str | None = None) -> Failure:
    """A :class:`Failure` for an exception raised while talking to ``url``.

    ``events`` are the request's httpcore trace events (they tell a TLS handshake timeout from a
    TCP connect timeout); ``peer`` the address connected to; ``proxy`` the (redacted) proxy used.
    """
    chain = _chain(exc)
    shown = display_url(url)
    target = peer or _hostport(url)
    if proxy:  # a connection through a proxy fails at the proxy: name it, never the registry
        target = _hostport(proxy)
    base = {"url": shown}
    resolve = _first(chain, ResolveError)
    if resolve is not None:
        go = f"dial tcp: {resolve}"
        if proxy:
            return Failure("proxy", resolve.kind, f"the proxy's name does not resolve: {resolve}", f"proxyconnect tcp: {go}",
                           **base)
        return Failure("dns", resolve.kind, f"{urlsplit(url).hostname} does not resolve ({resolve.kind})", go,
                       timed_out=resolve.kind == "timeout", **base)
    if isinstance(exc, (httpx.ConnectTimeout, httpcore.ConnectTimeout)) or _first(chain, httpcore.ConnectTimeout):
        if _tls_started(events):
            return Failure("tls", "timeout", "the TLS handshake did not finish before the timeout",
                           "net/http: TLS handshake timeout", timed_out=True, **base)
        phase = "proxy" if proxy else "connect"
        return Failure(phase, "timeout", f"no TCP connection to {_proxy_word(proxy)}{target} before the timeout",
                       f"{'proxyconnect tcp: ' if proxy else ''}dial tcp {target}: i/o timeout", timed_out=True,
                       details={"proxy": proxy} if proxy else {}, **base)
    verify = _first(chain, ssl.SSLCertVerificationError)
    if verify is not None:
        code = getattr(verify, "verify_code", None)
        kind, go = _VERIFY.get(code, ("verify-failed", f"x509: {getattr(verify, 'verify_message', '') or verify}"))
        message = getattr(verify, "verify_message", "") or str(verify)
        return Failure("tls", kind, f"certificate verification failed: {message}", f"tls: failed to verify certificate: {go}",
                       details={"verify_code": code, "verify_message": message}, **base)
    sslerr = next((e for e in chain if isinstance(e, ssl.SSLError)
                   and not isinstance(e, (ssl.SSLWantReadError, ssl.SSLWantWriteError))), None)
    if sslerr is not None:
        reason = str(getattr(sslerr, "reason", "") or "")
        if reason.upper() in _NOT_TLS_REASONS or "wrong version number" in str(sslerr).lower():
            return Failure("tls", "http-to-https", "the server did not answer the TLS handshake with TLS "
                           "(it speaks plain HTTP)", HTTP_TO_HTTPS, details={"ssl_reason": reason}, **base)
        return Failure("tls", "handshake-failed", f"TLS handshake failed: {sslerr}", f"remote error: tls: {reason.lower() or 'handshake failure'}",
                       details={"ssl_reason": reason}, **base)
    if isinstance(exc, httpx.ProxyError) or _first(chain, httpcore.ProxyError) is not None:
        text = str(exc)
        return Failure("proxy", "connect-refused", f"the proxy refused the tunnel: {text}",
                       f"proxyconnect tcp: {text}", details={"proxy": proxy}, **base)
    oserr = next((e for e in chain if isinstance(e, OSError) and e.errno is not None), _first(chain, OSError))
    refused = any(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED
                  for e in chain) or "connection refused" in str(exc).lower()
    if isinstance(exc, (httpx.ConnectError, httpcore.ConnectError)) or _first(chain, httpcore.ConnectError):
        phase = "proxy" if proxy else "connect"
        via = {"details": {"proxy": proxy}} if proxy else {}
        if refused:
            go = f"dial tcp {target}: connect: connection refused"
            return Failure(phase, "refused", f"{_proxy_word(proxy)}{target} refused the connection",
                           f"proxyconnect tcp: {go}" if proxy else go, **via, **base)
        if _tls_started(events):
            return Failure("tls", "handshake-failed", f"the TLS handshake failed: {exc or type(exc).__name__}",
                           "remote error: tls: handshake failure", **base)
        text = str(exc) or type(exc).__name__
        return Failure(phase, "error", f"no connection to {_proxy_word(proxy)}{target}: {text}",
                       f"{'proxyconnect tcp: ' if proxy else ''}dial tcp {target}: {text}", **via, **base)
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpcore.ReadTimeout, httpcore.WriteTimeout)):
        return Failure("http", "timeout", "the server accepted the connection but did not answer before the timeout",
                       "net/http: timeout awaiting response headers", timed_out=True, **base)
    if isinstance(exc, httpx.PoolTimeout):
        return Failure("http", "timeout", "no free connection before the timeout", "context deadline exceeded",
                       timed_out=True, **base)
    reset = (oserr is not None and oserr.errno in (errno.ECONNRESET, errno.EPIPE)) or "reset" in str(exc).lower()
    if reset:
        return Failure("http", "reset", "the server reset the connection", "read: connection reset by peer", **base)
    if isinstance(exc, (httpx.RemoteProtocolError, httpcore.RemoteProtocolError)):
        text = str(exc)
        if "illegal status line" in text.lower() or "invalid" in text.lower():
            return Failure("http", "not-http", f"the server's answer is not HTTP ({text})",
                           "net/http: HTTP/1.x transport connection broken: malformed HTTP response", **base)
        return Failure("http", "closed", f"the server closed the connection: {text}", "EOF", **base)
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpcore.ReadError, httpcore.WriteError, httpx.NetworkError)):
        return Failure("http", "error", f"network error: {exc or type(exc).__name__}", str(exc) or "EOF", **base)
    if isinstance(exc, httpx.InvalidURL) or isinstance(exc, httpx.UnsupportedProtocol):
        return Failure("http", "bad-url", f"invalid URL: {exc}", str(exc), **base)
    return Failure("http", "error", f"{type(exc).__name__}: {exc}", str(exc), **base)


def registry_error_code(body: bytes) -> tuple[str | None, str]:
    """``(code, message)`` from a registry's JSON error body (``{"errors":[{"code":..}]}``), tolerant of garbage."""
    try:
        data = json.loads(body[:65536].decode("utf-8", "replace"))
        first = data["errors"][0]
        code = str(first.get("code") or "") or None
        return code, str(first.get("message") or "")[:200]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return None, ""


_REASON = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


def status_failure(status: int, url: str, body: bytes = b"", *, phase: str = "http",
                   headers: httpx.Headers | None = None) -> Failure:
    """A failure for an HTTP error answer, with the registry's error code when its body has one."""
    code, message = registry_error_code(body)
    reason = _REASON.get(status, "")
    details: dict[str, Any] = {}
    if headers is not None and headers.get("retry-after"):
        details["retry_after"] = headers.get("retry-after")[:40]
    if code:
        go = f"{code.replace('_', ' ').lower()}: {message}" if code != "TOOMANYREQUESTS" else f"toomanyrequests: {message}"
    elif status == 400 and (HTTPS_TO_HTTP.encode() in body or b"plain HTTP request was sent to HTTPS port" in body
                            or (headers is not None and len(headers) == 0)):
        # Go's TLS server answers plain HTTP with a bare "400 Bad Request" without a single header.
        return Failure(phase, "https-to-http", "the server speaks TLS but was asked in plain HTTP",
                       "read: connection reset by peer", url=display_url(url), status=status, transport_ok=False)
    else:
        go = f"unexpected status code {status} {reason}".strip()
        excerpt = redact.text(body[:_BODY_EXCERPT].decode("utf-8", "replace")).strip()
        if excerpt:
            details["body"] = excerpt
    kind = {401: "unauthorized", 403: "denied", 404: "not-found", 429: "rate-limited"}.get(status, "status")
    return Failure(phase, kind, f"HTTP {status} {reason}".strip() + (f" ({code}: {message})" if code else ""), go,
                   url=display_url(url), status=status, error_code=code, transport_ok=True, details=details)


def planned_failure(ep: Endpoint) -> Failure:
    """The failure of an endpoint the route planner already marked ``failed`` (the runtime stops before any request)."""
    inner = ep.reason.split(" before any request: ", 1)[-1]
    if inner.endswith(")") and " (/" in inner:  # the directory named after the error is regtui's, not Go's
        inner = inner[: inner.rindex(" (/")]
    return Failure("config", "setup", ep.reason, inner, url=ep.url)


#: Phases of the first request to an endpoint: containerd resolves with HEAD, so its error names ``Head``.
_REQUEST_PHASES = ("dns", "connect", "tls", "proxy", "http")


def runtime_error(flavor: str, failure: Failure, reference: str, method: str = "GET", query: str = "") -> str:
    """The line the runtime prints for ``failure`` (approximate wording, real error text).

    ``query`` is the endpoint's own query (containerd's ``ns=`` for a mirror), which containerd prints in the URL.
    """
    url = failure.url
    inner = failure.go_error or failure.message
    if failure.phase == "config":  # the runtime stopped before any request (certs.d, credential lookup)
        return f"Error response from daemon: {inner}" if flavor == "docker" else inner
    if flavor == "docker":
        if failure.status is not None and failure.error_code:
            if failure.status == 404:
                return f"Error response from daemon: manifest for {reference} not found: {inner}"
            return f"Error response from daemon: {inner}"
        if failure.kind == "https-to-http":
            return f'Error response from daemon: Get "{url}": read: connection reset by peer'
        return f'Error response from daemon: Get "{url}": {inner}'
    if flavor == "containerd":
        if failure.status == 404:
            return f"failed to resolve reference \"{reference}\": {reference}: not found"
        if failure.details.get("status_only"):  # containerd's "pulling from host ... failed with status code"
            return f"failed to resolve reference \"{reference}\": {inner}"
        if failure.status in (401, 403):
            return (f"failed to resolve reference \"{reference}\": pull access denied, repository does not exist "
                    "or may require authorization: " + inner)
        if failure.kind == "digest-mismatch" and (failure.phase == "blob" or failure.details.get("unserved")):
            return inner  # a fetch after resolution: the content error itself, no resolve wrapper
        if url and "/manifests/" in url and failure.phase in _REQUEST_PHASES:
            method, url = "HEAD", f"{url}?{query}" if query and "?" not in url else url
        return f"failed to resolve reference \"{reference}\": failed to do request: {method.title()} \"{url}\": {inner}"
    if failure.status is not None and failure.status >= 400:
        name, tag = _split_reference(reference)
        return f"reading manifest {tag} in {name}: {inner}"
    host = urlsplit(url).netloc if url else ""
    return f'pinging container registry {host}: Get "{url}": {inner}'


def _split_reference(reference: str) -> tuple[str, str]:
    """``host/repo:tag`` or ``host/repo@digest`` -> (name, tag or digest)."""
    if "@" in reference:
        name, _, digest = reference.partition("@")
        return name, digest
    name, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:  # the colon was the registry's port: no tag
        return reference, "latest"
    return name, tag
