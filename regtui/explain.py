"""Read a runtime's pull error text: which image, which endpoint, which phase, which Go error, which causes.

Pure: no I/O, no network, no textual. :func:`parse_pull_error` takes the text a user pastes (or a
log line) from containerd/CRI, kubelet events, dockerd (the ``docker`` CLI), containers/image
(skopeo, podman, CRI-O) and returns a :class:`ParsedError`; :func:`relate` says whether a verdict
of ``regtui check`` explains it (same endpoint host, and the same phase or cause).

The runtimes wrap one Go error in layers of context (``failed to pull and unpack image "X":
failed to resolve reference "X": failed to do request: Head "URL": dial tcp ...``); the innermost
Go error names the failure class, the layers name the image, the runtime and the endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from regtui import redact
from regtui.findings import CATALOGUE

__all__ = ["LikelyCause", "ParsedError", "Relation", "parse_pull_error", "relate", "endpoint_host", "MAX_TEXT", "RUNTIME_WORDS"]

#: Longer pasted texts are cut (a pod's whole event log is not one error).
MAX_TEXT = 64 * 1024
#: At most this many mirror attempts are read from one containers/image error.
MAX_MIRRORS = 16

PHASES = ("config", "dns", "connect", "proxy", "tls", "http", "auth", "manifest", "blob")


@dataclass(frozen=True)
class LikelyCause:
    """One possible cause: a finding code of the catalogue and why it fits this text."""

    code: str
    why: str

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"code": self.code, "why": self.why}


@dataclass(frozen=True)
class ParsedError:
    """What a pull error text says, field by field (``None`` where the text does not say)."""

    text: str
    """The text as read (redacted, unescaped, whitespace folded)."""
    failure: str
    """The failure class (``dns-nxdomain``, ``tls-unknown-authority``, ``rate-limited``..., ``unknown``)."""
    phase: str | None
    """Where it failed: ``config``, ``dns``, ``connect``, ``proxy``, ``tls``, ``http``, ``auth``, ``manifest``, ``blob``."""
    go_error: str | None
    """The innermost Go error, as printed (``x509: certificate signed by unknown authority``)."""
    go_class: str | None
    """The Go error type behind it (``x509.UnknownAuthorityError``, ``*net.DNSError``...)."""
    runtime: str | None
    """The runtime regtui checks for this text: ``containerd``, ``docker`` or ``crio``."""
    producer: str | None
    """The code that wrote the message: ``containerd``, ``moby``, ``containers/image``."""
    wrapper: str | None = None
    """What passed the message on: ``kubelet``, ``ctr``, ``crictl``."""
    image: str | None = None
    """The image reference, as the text names it."""
    url: str | None = None
    """The URL the failing request went to (query cut)."""
    method: str | None = None
    endpoint: str | None = None
    """The endpoint: ``scheme://host[:port]/v2`` for a registry, ``scheme://host[:port]`` for a token service."""
    host: str | None = None
    """``host[:port]`` the failure happened at (the endpoint's, else the dialled or looked-up host)."""
    details: dict[str, str] = field(default_factory=dict)
    """What else the text gives: ``proxy``, ``resolver``, ``address``, ``status``, ``expected``, ``actual``, times."""
    causes: tuple[LikelyCause, ...] = ()
    """The likely causes, most likely first."""
    summary: str = ""
    """What failed where, in plain words."""
    mirrors: tuple["ParsedError", ...] = ()
    """containers/image: the mirrors it tried first (``Mirrors also failed``), each parsed."""

    @property
    def codes(self) -> tuple[str, ...]:
        """The likely causes' codes, in order."""
        return tuple(c.code for c in self.causes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "failure": self.failure, "phase": self.phase, "go_error": self.go_error, "go_class": self.go_class,
            "runtime": self.runtime, "producer": self.producer, "wrapper": self.wrapper, "image": self.image,
            "url": self.url, "method": self.method, "endpoint": self.endpoint, "host": self.host,
            "details": dict(self.details), "causes": [c.to_dict() for c in self.causes], "summary": self.summary,
            "mirrors": [m.to_dict() for m in self.mirrors], "text": self.text,
        }


# -- normalising the text ------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _normalise(text: str) -> str:
    """One line: escapes from logs and JSON undone (``\\"`` and ``\\n``), ANSI and control characters gone."""
    s = text[:MAX_TEXT]
    s = _ANSI.sub("", s)
    for _ in range(3):  # kubelet -> journal -> kubectl quote the quotes again
        if '\\"' not in s and "\\n" not in s:
            break
        s = s.replace('\\\\"', '\\"').replace('\\"', '"').replace("\\n", " ").replace("\\t", " ")
    s = _CONTROL.sub(" ", s)
    return re.sub(r"\s+", " ", s).strip()


# -- who wrote it --------------------------------------------------------------------------------
_CONTAINERS_IMAGE = ("initializing source docker://", "Error parsing image name \"docker://", "pinging container registry", "reading manifest ",
                     "Mirrors also failed", "error pinging docker registry", "reading blob ", "Trying to pull ",
                     "copying system image", "writing blob:", "choosing image instance", "fetching blob:",
                     "short-name ", "short name mode", "is blocked in registries.conf", "Error reading manifest")
_CONTAINERD = ("failed to pull and unpack image", "failed to resolve reference", "failed to do request",
               "httpReadSeeker", "failed commit on ref", "unexpected status from ", "failed to copy:", "ctr: ",
               "failed to fetch anonymous token", "failed to fetch oauth token", "failed to authorize",
               "failed to resolve image", "no match for platform in manifest")
_MOBY = ("Error response from daemon", "error pulling image configuration", "docker: ", "manifest for ",
         "pull access denied for ", "filesystem layer verification failed", "no matching manifest for",
         "Error while pulling image", "unable to ping registry endpoint")
_KUBELET = ("Failed to pull image", "ErrImagePull", "ImagePullBackOff", "Back-off pulling image", "rpc error: code =",
            "PullImage from image service failed", "pulling image:")


def _producer(s: str) -> tuple[str | None, str | None, str | None]:
    """(runtime, producer, wrapper) from the message's shape."""
    wrapper = None
    if any(k in s for k in _KUBELET):
        wrapper = "crictl" if "level=fatal" in s and "pulling image:" in s else "kubelet"
    if s.startswith("ctr: ") or " ctr: " in s:
        wrapper = "ctr"
    cimage = any(k in s for k in _CONTAINERS_IMAGE)
    ctrd = any(k in s for k in _CONTAINERD)
    moby = any(k in s for k in _MOBY)
    if moby and ("Error response from daemon" in s or not (cimage or ctrd)):
        # dockerd with the containerd image store words errors as containerd does, behind its own prefix.
        return "docker", "containerd" if ctrd else "moby", wrapper
    if cimage:
        return "crio", "containers/image", wrapper
    if ctrd:
        return "containerd", "containerd", wrapper
    return None, None, wrapper


# -- which image ---------------------------------------------------------------------------------
_REF = r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*"
_IMAGE_PATTERNS = (
    re.compile(rf'failed to pull and unpack image "({_REF})"'),
    re.compile(rf'failed to resolve reference "({_REF})"'),
    re.compile(rf"initializing source docker://({_REF}?):? "),
    re.compile(rf'Error parsing image name "docker://({_REF})"'),
    re.compile(rf'Failed to pull image "({_REF})"'),
    re.compile(rf'failed to pull image "({_REF})"'),
    re.compile(rf"manifest for ({_REF}) not found"),
    re.compile(rf"pull access denied for ({_REF}),"),
    re.compile(rf'Back-off pulling image "({_REF})"'),
    re.compile(rf'failed to pull "({_REF})"'),
    re.compile(rf"Trying to pull ({_REF}?)\.\.\."),
    re.compile(rf'PullImage "({_REF})"'),
    re.compile(rf'image="({_REF})"'),
)
_READING_MANIFEST = re.compile(rf"reading manifest ({_REF}) in ({_REF})")


def _image(s: str) -> str | None:
    for pattern in _IMAGE_PATTERNS:
        m = pattern.search(s)
        if m:
            return m.group(1).rstrip(":.")
    m = _READING_MANIFEST.search(s)
    if m:
        ref, repo = m.group(1), m.group(2).rstrip(":.")
        return f"{repo}@{ref}" if ref.startswith("sha256:") else f"{repo}:{ref}"
    return None


# -- which endpoint ------------------------------------------------------------------------------
_URL = re.compile(r'(?:(?P<method>\b(?:Get|Head|Post|Put|GET|HEAD|POST|PUT))\s+(?:request to\s+)?)?"?'
                  r'(?P<url>https?://[^\s"\',\]]+)')
_PING_HOST = re.compile(r"pinging (?:container|docker) registry ([A-Za-z0-9.\-\[\]:]+?):? ")
_DIAL = re.compile(r"dial tcp (\[[0-9a-fA-F:.]+\]:\d+|[A-Za-z0-9.\-]+:\d+)")
_READ_TCP = re.compile(r"(?:read|write) tcp \S+->(\[[0-9a-fA-F:.]+\]:\d+|[0-9.]+:\d+): ")
_LOOKUP = re.compile(r"lookup ([A-Za-z0-9.\-_]+)(?: on ([0-9a-fA-F.:\[\]]+))?:")


def _url_parts(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port] without the default port, path) of ``url``."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return "", "", ""
    if ":" in host:
        host = f"[{host}]"
    default = {"https": 443, "http": 80}.get(parts.scheme)
    netloc = host if port is None or port == default else f"{host}:{port}"
    return parts.scheme, netloc, parts.path


def endpoint_host(value: str | None) -> str | None:
    """``host[:port]`` (default ports dropped, lowercase) of a URL or of a bare ``host[:port]``."""
    if not value:
        return None
    raw = value if "://" in value else f"https://{value}"
    return _url_parts(raw)[1] or None


def _name_of(host_port: str) -> str:
    """The host name of ``host[:port]`` (an IPv6 literal keeps its brackets)."""
    if host_port.startswith("["):
        return host_port.split("]", 1)[0] + "]"
    return host_port.rsplit(":", 1)[0] if host_port.count(":") == 1 else host_port


def _registry_host(image: str | None) -> str | None:
    """The host a pull of ``image`` starts at (Docker Hub's registry for ``docker.io``)."""
    if not image:
        return None
    from regtui.refs import ReferenceError, parse

    try:
        ref = parse(image)
    except ReferenceError:
        return None
    return "registry-1.docker.io" if ref.domain == "docker.io" else endpoint_host(ref.domain)


def _endpoint(s: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(url, method, endpoint, host) of the failing request: the last URL the text names."""
    # A URL names the failing request when a method or "status code" precedes it or it is a registry path;
    # others are advice ("https://www.docker.com/increase-rate-limit").
    found = [m for m in _URL.finditer(s)
             if m.group("method") or "/v2" in m.group("url") or re.search(r"(?:status code|request to) $", s[:m.start()])]
    if not found:
        return None, None, None, None
    m = found[-1]
    url = m.group("url").rstrip(":.);")
    scheme, host, path = _url_parts(url)
    if not host:
        return None, None, None, None
    url = f"{scheme}://{host}{path}"
    endpoint = f"{scheme}://{host}/v2" if path.startswith("/v2") else f"{scheme}://{host}"
    method = m.group("method")
    return url, (method.upper() if method else None), endpoint, host


# -- which failure -------------------------------------------------------------------------------
def _c(code: str, why: str) -> LikelyCause:
    assert code in CATALOGUE, code  # a typo here would name a cause no check can confirm
    return LikelyCause(code, why)


@dataclass(frozen=True)
class _Class:
    failure: str
    phase: str
    go_class: str
    causes: tuple[LikelyCause, ...]
    go_error: str | None = None
    details: dict[str, str] = field(default_factory=dict)


_STATUS_TEXTS = ("Proxy Authentication Required", "Forbidden", "Bad Gateway", "Service Unavailable",
                 "Gateway Timeout", "Internal Server Error", "Bad Request", "Method Not Allowed", "Not Found")
_PROXY_STATUS = re.compile(r'"https://[^"\s]+": (' + "|".join(_STATUS_TEXTS) + r")\s*$")
#: Go's x509 prints both times in RFC 3339; a log line's closing quote may follow the second one.
_RFC3339 = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
_TIME_AFTER = re.compile(rf"current time {_RFC3339} is (after|before) {_RFC3339}")
_VALID_FOR = re.compile(r"x509: certificate is valid for (.+?), not ([^\s:,)]+)")
_DIGESTS = re.compile(r"unexpected commit digest (sha256:[0-9a-f]+), expected (sha256:[0-9a-f]+)")
_CI_DIGESTS = re.compile(r"Digest did not match, expected (sha256:[0-9a-f]+), got (sha256:[0-9a-f]+)")
_STATUS = re.compile(r"\b(4\d\d|5\d\d) (?:[A-Z][A-Za-z\-]+(?: [A-Z][A-Za-z\-]+)*)")


def _tail(s: str, marker: str) -> str:
    """The text from the last ``marker`` on (the innermost error)."""
    i = s.rfind(marker)
    return s[i:] if i >= 0 else s


def _classify(s: str, url: str | None) -> _Class:
    """The failure class of the (mirror-free) text ``s``."""
    low = s.lower()
    path = _url_parts(url)[2] if url else ""
    token = bool(url) and ("/token" in path or "/oauth" in path or "/jwt" in path or "/auth" in path)

    # configuration refused before any request
    if "did not resolve to an alias and no unqualified-search registries are defined" in s or (
            "short-name" in s and "did not resolve" in s):
        return _Class("short-name-unresolved", "config", "containers/image short-name resolution",
                      (_c("config.short-name-unresolved", "the image is named without a registry and nothing says where to look"),))
    if "short name mode is enforcing" in low or "ambiguous list" in low:
        return _Class("short-name-ambiguous", "config", "containers/image short-name resolution",
                      (_c("config.short-name-prompt", "several search registries, enforcing mode and no TTY to ask on"),))
    if "is blocked in registries.conf" in s or ("registry" in low and "is blocked" in low):
        return _Class("blocked", "config", "containers/image registry blocked",
                      (_c("config.blocked", "registries.conf blocks this registry"),))

    # the proxy
    if "proxyconnect tcp" in s:
        inner = _tail(s, "proxyconnect tcp")
        addr = _DIAL.search(inner)
        details = {"proxy": addr.group(1)} if addr else {}
        if "lookup " in inner:
            lk = _LOOKUP.search(inner)
            if lk:
                details["proxy"] = lk.group(1)
            return _Class("proxy-unresolved", "proxy", "*net.OpError (proxyconnect) wrapping *net.DNSError",
                          (_c("proxy.unreachable", "the proxy's name does not resolve"),
                           _c("dns.nxdomain", "the resolver does not know the proxy's name")), inner, details)
        if "first record does not look like a TLS handshake" in inner or "server gave HTTP response" in inner:
            return _Class("proxy-scheme-tls", "proxy", "*net.OpError (proxyconnect) wrapping tls.RecordHeaderError",
                          (_c("proxy.scheme-tls", "HTTPS_PROXY says https:// but the proxy speaks plain HTTP"),),
                          inner, details)
        if "connection refused" in inner:
            return _Class("proxy-refused-connection", "proxy", "*net.OpError (proxyconnect) wrapping syscall.ECONNREFUSED",
                          (_c("proxy.unreachable", "nothing listens at the proxy's address"),
                           _c("proxy.not-applied", "the proxy setting the daemon runs with is not the one configured")),
                          inner, details)
        return _Class("proxy-unreachable", "proxy", "*net.OpError (proxyconnect)",
                      (_c("proxy.unreachable", "the proxy does not answer"),
                       _c("proxy.not-applied", "the proxy setting the daemon runs with is not the one configured")),
                      inner, details)
    pm = _PROXY_STATUS.search(s)
    if pm and "unexpected status" not in s:
        status = pm.group(1)
        why = ("the proxy wants credentials (407)" if status.startswith("Proxy Auth")
               else f"the proxy answers the CONNECT tunnel with {status}")
        return _Class("proxy-refused-tunnel", "proxy", "net/http CONNECT status", (
            _c("proxy.connect-refused", why),
            _c("proxy.bypass-missing", "the registry should not go through the proxy at all")), status, {"status": status})

    # name resolution
    lk = _LOOKUP.search(s)
    if lk and ("dial tcp" in s or "dial udp" in s or "lookup" in s):
        inner = _tail(s, "lookup ")
        details = {"name": lk.group(1)}
        if lk.group(2):
            details["resolver"] = lk.group(2)
        if "no such host" in inner or "Name or service not known" in inner or "No address associated" in inner:
            return _Class("dns-nxdomain", "dns", "*net.DNSError (IsNotFound)",
                          (_c("dns.nxdomain", f"the resolver says {lk.group(1)} does not exist"),
                           _c("dns.mismatch", "another resolver may know the name (split DNS)")), inner, details)
        if "server misbehaving" in inner:
            return _Class("dns-servfail", "dns", "*net.DNSError (server misbehaving: SERVFAIL or REFUSED)",
                          (_c("dns.timeout", "the resolver fails the query instead of answering it"),
                           _c("dns.nxdomain", "the name may not exist upstream")), inner, details)
        return _Class("dns-timeout", "dns", "*net.DNSError (IsTimeout)",
                      (_c("dns.timeout", "the resolver does not answer"),
                       _c("dns.slow", "the resolver answers too slowly")), inner, details)

    # TLS
    if "x509: " in s or "tls: " in s or "TLS handshake" in s:
        inner = _tail(s, "tls: failed to verify certificate: ") if "tls: failed to verify" in s else _tail(s, "x509: ")
        if "certificate signed by unknown authority" in s:
            return _Class("tls-unknown-authority", "tls", "x509.UnknownAuthorityError", (
                _c("tls.unknown-authority", "the runtime does not trust the CA that issued the registry's certificate"),
                _c("tls.self-signed", "the registry presents a self-signed certificate"),
                _c("tls.incomplete-chain", "the registry does not send its intermediate certificate"),
                _c("tls.intercepted", "a proxy inspecting TLS presents its own certificate")), inner)
        if "certificate has expired or is not yet valid" in s:
            tm = _TIME_AFTER.search(s)
            details = {"current_time": tm.group(1), "bound": tm.group(3)} if tm else {}
            if tm and tm.group(2) == "before":
                return _Class("tls-not-yet-valid", "tls", "x509.CertificateInvalidError (Expired: before NotBefore)", (
                    _c("clock.skew", "this host's clock is behind: a new certificate looks not yet valid"),
                    _c("tls.not-yet-valid", "the certificate's notBefore is in the future")), inner, details)
            if tm:
                return _Class("tls-expired", "tls", "x509.CertificateInvalidError (Expired: after NotAfter)", (
                    _c("tls.expired", "a certificate in the chain is past its notAfter"),
                    _c("clock.skew", "this host's clock may be ahead")), inner, details)
            return _Class("tls-expired", "tls", "x509.CertificateInvalidError (Expired)", (
                _c("tls.expired", "a certificate in the chain is past its notAfter"),
                _c("tls.not-yet-valid", "or not valid yet"),
                _c("clock.skew", "this host's clock may be wrong")), inner)
        if "relies on legacy Common Name field" in s:
            return _Class("tls-cn-only", "tls", "x509.HostnameError (legacy Common Name)",
                          (_c("tls.cn-only", "the certificate has no subjectAltName; Go ignores the CN"),), inner)
        if ("certificate is valid for" in s or "certificate is not valid for any names" in s
                or "because it doesn't contain any IP SANs" in s):
            vf = _VALID_FOR.search(s)
            details = {"valid_for": vf.group(1), "wanted": vf.group(2)} if vf else {}
            return _Class("tls-hostname-mismatch", "tls", "x509.HostnameError", (
                _c("tls.hostname-mismatch", "the certificate does not name the host the runtime connects to"),
                _c("tls.intercepted", "a proxy inspecting TLS presents another certificate")), inner, details)
        if "insecure algorithm" in s:
            return _Class("tls-weak-signature", "tls", "x509.InsecureAlgorithmError",
                          (_c("tls.weak-signature", "the chain is signed with SHA-1 or weaker"),), inner)
        if "x509: " in s:
            return _Class("tls-rejected", "tls", "x509.CertificateInvalidError",
                          (_c("tls.rejected", "Go refuses the chain (key usage, constraints or signature)"),), inner)
        if "server selected unsupported protocol version" in s or "protocol version not supported" in s:
            return _Class("tls-old-protocol", "tls", "tls alert (protocol version)",
                          (_c("tls.old-protocol", "the server offers only TLS versions Go refuses"),),
                          _tail(s, "tls: "))
        if "first record does not look like a TLS handshake" in s:
            return _Class("http-to-https", "tls", "tls.RecordHeaderError", (
                _c("mirror.http-mismatch", "the endpoint speaks plain HTTP but is used as HTTPS"),), _tail(s, "tls: "))
        if "TLS handshake timeout" in s:
            return _Class("tls-timeout", "tls", "net/http.tlsHandshakeTimeoutError", (
                _c("pull.failed", "the endpoint accepts TCP but does not finish the TLS handshake"),
                _c("proxy.bypass-missing", "the network wants this traffic to go through a proxy"),
                _c("proxy.https-missing", "no HTTPS proxy is set for the runtime")), "net/http: TLS handshake timeout")
        if "remote error: tls: " in s:
            return _Class("tls-alert", "tls", "tls.alert (remote error)", (
                _c("tls.rejected", "the server aborts the handshake"),
                _c("tls.old-protocol", "the server and Go share no TLS version or cipher")), _tail(s, "remote error: tls: "))
    if "server gave HTTP response to HTTPS client" in s:
        return _Class("http-to-https", "tls", "net/http (HTTP response to HTTPS client)", (
            _c("mirror.http-mismatch", "the endpoint speaks plain HTTP but is used as HTTPS"),),
            "http: server gave HTTP response to HTTPS client")
    if "Client sent an HTTP request to an HTTPS server" in s or (
            url and url.startswith("http://") and "connection reset by peer" in s):
        return _Class("https-to-http", "http", "net/http 400 (HTTP request to an HTTPS server)", (
            _c("mirror.http-mismatch", "the endpoint speaks HTTPS but is used as plain HTTP"),),
            _tail(s, "read: ") if "connection reset" in s else "Client sent an HTTP request to an HTTPS server")

    # TCP connect
    dial = _DIAL.search(s)
    addr = {"address": dial.group(1)} if dial else {}
    if "connection refused" in s:
        return _Class("connect-refused", "connect", "*net.OpError (dial) wrapping syscall.ECONNREFUSED", (
            _c("pull.failed", "nothing listens at the endpoint's address and port"),
            _c("mirror.unreachable", "a mirror that is down"),
            _c("proxy.https-missing", "the network wants this traffic to go through a proxy")),
            _tail(s, "dial tcp") if dial else "connection refused", addr)
    if "no route to host" in s or "network is unreachable" in s:
        return _Class("connect-unreachable", "connect", "*net.OpError (dial) wrapping syscall.EHOSTUNREACH", (
            _c("pull.failed", "no route to the endpoint's address"),
            _c("proxy.https-missing", "the network wants this traffic to go through a proxy")),
            _tail(s, "dial tcp") if dial else None, addr)
    if dial and ("i/o timeout" in s or "connection timed out" in s):
        return _Class("connect-timeout", "connect", "*net.OpError (dial) timeout", (
            _c("pull.failed", "the endpoint's address does not answer (a firewall drops the packets)"),
            _c("proxy.https-missing", "the network wants this traffic to go through a proxy"),
            _c("proxy.bypass-missing", "or a proxy is set that this endpoint should bypass"),
            _c("mirror.unreachable", "a mirror that is down")), _tail(s, "dial tcp"), addr)

    # the registry's answers
    if "toomanyrequests" in low or "429 too many requests" in low or "pull rate limit" in low or "rate exceeded" in low:
        phase = "blob" if "/blobs/" in (path or "") else ("auth" if token else "manifest")
        return _Class("rate-limited", phase, "errcode.Error (TOOMANYREQUESTS) / HTTP 429", (
            _c("auth.rate-limited", "the registry's pull rate limit is used up"),
            _c("auth.missing", "anonymous pulls get the lowest limit: log in"),
            _c("mirror.fallback-upstream", "a mirror would take the load off the upstream")),
            _tail(s, "toomanyrequests") if "toomanyrequests" in low else None)
    if ("no matching manifest for" in s or "no match for platform in manifest" in s
            or "no image found in image index for architecture" in s or "no image found in manifest list" in s):
        return _Class("platform-missing", "manifest", "platform match (not found)",
                      (_c("pull.platform-missing", "the image has no build for this host's platform"),),
                      _tail(s, "no match") if "no match for" in s else None)
    dg = _DIGESTS.search(s) or _CI_DIGESTS.search(s)
    if dg or "digest mismatch" in low or "digest did not match" in low or "verification failed for digest" in s:
        details = {"actual": dg.group(1), "expected": dg.group(2)} if dg and _DIGESTS.search(s) else (
            {"expected": dg.group(1), "actual": dg.group(2)} if dg else {})
        phase = "manifest" if ("manifest verification" in s or 'ref "manifest-' in s or 'ref "index-' in s) else "blob"
        return _Class("digest-mismatch", phase, "errdefs.ErrFailedPrecondition (digest mismatch)", (
            _c("pull.digest-mismatch", "the bytes served do not match the digest that names them"),
            _c("tls.intercepted", "a proxy rewrites the content"),
            _c("mirror.stale", "a mirror serves other content under the same name")), None, details)

    status = _STATUS.search(s)
    code = status.group(1) if status else None
    if ("no basic auth credentials" in s or "authentication required" in low or "unauthorized" in low
            or code == "401" or "incorrect username or password" in low):
        rejected = "incorrect username or password" in low or "invalid username/password" in low
        phase = "auth"
        if "no basic auth credentials" in s or ("authentication required" in low and not rejected):
            causes = (_c("auth.missing", "the registry wants credentials and none apply to it"),
                      _c("auth.wrong-key", "credentials are stored under a key the runtime does not look up"),
                      _c("auth.helper-missing", "the credential helper is not installed"))
            failure = "auth-missing"
        elif rejected:
            causes = (_c("auth.rejected", "the registry refuses the credentials"),)
            failure = "auth-rejected"
        else:
            causes = (_c("auth.missing", "the registry wants credentials and none apply to it"),
                      _c("auth.rejected", "the credentials sent are refused"),
                      _c("auth.wrong-key", "credentials are stored under a key the runtime does not look up"))
            failure = "auth-unauthorized"
        return _Class(failure, phase, "errcode.Error (UNAUTHORIZED) / HTTP 401", causes,
                      None, {"status": "401"} if code == "401" else {})
    if ("pull access denied" in s or "requested access to the resource is denied" in s or "insufficient_scope" in s
            or "denied:" in low or code == "403"):
        return _Class("auth-denied", "auth", "errcode.Error (DENIED) / HTTP 403", (
            _c("auth.rejected", "the credentials that apply may not pull this repository"),
            _c("auth.missing", "no credentials apply, and the registry hides private repositories"),
            _c("pull.manifest-unknown", "or the repository does not exist (registries answer the same)")),
            None, {"status": "403"} if code == "403" else {})
    if ("manifest unknown" in low or re.search(r": not found\b", s) or "name unknown" in low
            or re.search(r"manifest for \S+ not found", s) or code == "404" or "repository name not known" in s):
        return _Class("not-found", "manifest", "errcode.Error (MANIFEST_UNKNOWN) / errdefs.ErrNotFound", (
            _c("pull.manifest-unknown", "the tag or digest does not exist at the registry"),
            _c("mirror.missing-image", "a mirror that does not hold the image"),
            _c("mirror.not-applied", "the mirror meant for this image is not used for it")),
            None, {"status": "404"} if code == "404" else {})

    # the connection broke or timed out after it was made
    if ("Client.Timeout exceeded" in s or "request canceled while waiting for connection" in s
            or "context deadline exceeded" in s or "i/o timeout" in s or "DeadlineExceeded" in s):
        return _Class("timeout", "connect" if "waiting for connection" in s else "http", "net/http timeout", (
            _c("pull.failed", "the endpoint does not answer in time"),
            _c("proxy.https-missing", "the network wants this traffic to go through a proxy"),
            _c("proxy.bypass-missing", "or a proxy is set that this endpoint should bypass")))
    if re.search(r"(?:: |\b)(?:unexpected )?EOF\b", s) or "connection reset by peer" in s:
        reset = "connection reset by peer" in s
        return _Class("reset" if reset else "eof", "auth" if token else "http",
                      "syscall.ECONNRESET" if reset else "io.EOF", (
            _c("tls.intercepted", "a middlebox cuts the connection (TLS inspection, firewall)"),
            _c("proxy.https-missing", "the network wants this traffic to go through a proxy"),
            _c("pull.failed", "the endpoint closes the connection")),
            "read: connection reset by peer" if reset else "EOF")
    if code and code.startswith("5"):
        return _Class("server-error", "manifest" if "/manifests/" in (path or "") else "http", f"HTTP {code}", (
            _c("pull.failed", f"the registry answers {code}"),
            _c("mirror.unreachable", "a mirror that fails")), None, {"status": code})
    return _Class("unknown", "http" if url else "config", "unknown", ())


# -- the summary ---------------------------------------------------------------------------------
_WORDS = {
    "dns-nxdomain": "the name does not resolve",
    "dns-timeout": "the resolver did not answer",
    "dns-servfail": "the resolver failed the query",
    "connect-refused": "the connection was refused",
    "connect-timeout": "the connection timed out",
    "connect-unreachable": "there is no route to the address",
    "proxy-unreachable": "the proxy did not answer",
    "proxy-refused-connection": "the proxy refused the connection",
    "proxy-unresolved": "the proxy's name does not resolve",
    "proxy-scheme-tls": "TLS was spoken to a plain-HTTP proxy",
    "proxy-refused-tunnel": "the proxy refused the tunnel",
    "tls-unknown-authority": "the certificate is signed by an authority the runtime does not trust",
    "tls-expired": "the certificate has expired",
    "tls-not-yet-valid": "the certificate is not valid yet",
    "tls-hostname-mismatch": "the certificate is not valid for this name",
    "tls-cn-only": "the certificate has no subjectAltName",
    "tls-weak-signature": "the certificate is signed with a weak algorithm",
    "tls-rejected": "Go rejected the certificate",
    "tls-old-protocol": "the server offers only old TLS versions",
    "tls-alert": "the server aborted the TLS handshake",
    "tls-timeout": "the TLS handshake timed out",
    "http-to-https": "the server answered HTTPS with plain HTTP",
    "https-to-http": "the server speaks HTTPS but was asked in plain HTTP",
    "rate-limited": "the registry's rate limit was hit",
    "platform-missing": "the image has no build for this platform",
    "digest-mismatch": "the content did not match its digest",
    "auth-missing": "the registry wants credentials and got none",
    "auth-rejected": "the registry refused the credentials",
    "auth-unauthorized": "the registry answered 401 Unauthorized",
    "auth-denied": "the registry denied access",
    "not-found": "the tag or digest does not exist there",
    "timeout": "the request timed out",
    "eof": "the connection was closed mid-request",
    "reset": "the connection was reset",
    "server-error": "the registry answered with a server error",
    "short-name-unresolved": "the short name resolves to no registry",
    "short-name-ambiguous": "the short name is ambiguous",
    "blocked": "the registry is blocked by configuration",
    "unknown": "the text names no failure regtui knows",
}
_PHASE_WORDS = {"config": "before any request (configuration)", "dns": "DNS lookup", "connect": "TCP connect",
                "proxy": "proxy", "tls": "TLS handshake", "http": "HTTP request", "auth": "authentication",
                "manifest": "manifest request", "blob": "layer download"}
#: Each runtime as explain names it, in its summary and in its ``reading`` lines alike.
RUNTIME_WORDS = {"containerd": "containerd", "docker": "dockerd", "crio": "CRI-O/podman (containers/image)",
                 "k3s": "k3s (embedded containerd)"}


def _summary(p: ParsedError) -> str:
    who = RUNTIME_WORDS.get(p.runtime or "", "the runtime")
    if p.wrapper == "kubelet":
        who = f"{who}, as the kubelet reports it,"
    image = p.image or "the image"
    where = f" from {p.host}" if p.host else ""
    what = _WORDS.get(p.failure, p.failure)
    extra = ""
    if p.details.get("proxy"):
        extra = f" (proxy {p.details['proxy']})"
    elif p.details.get("resolver"):
        extra = f" (resolver {p.details['resolver']})"
    elif p.details.get("current_time"):
        extra = f" (this host's time {p.details['current_time']}, the certificate's bound {p.details['bound']})"
    phase = f"; it failed in the {_PHASE_WORDS[p.phase]}" if p.phase in _PHASE_WORDS and p.failure != "unknown" else ""
    return f"{who} could not pull {image}{where}: {what}{extra}{phase}."


# -- containers/image mirrors --------------------------------------------------------------------
def _split_mirrors(s: str) -> tuple[str, list[str]]:
    """The text without its ``(Mirrors also failed: [...])`` block, and the block's ``ref: error`` entries."""
    i = s.find("(Mirrors also failed: ")
    if i < 0:
        return s, []
    j = i + len("(Mirrors also failed: ")
    depth, entries, start, k = 0, [], None, j
    while k < len(s):
        ch = s[k]
        if ch == "[":
            if depth == 0:
                start = k + 1
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0 and start is not None:
                entries.append(s[start:k])
                start = None
        elif ch == ")" and depth == 0:
            break
        k += 1
    rest = s[:i] + s[k + 1:].lstrip(": ")
    return rest, entries[:MAX_MIRRORS]


# -- the entry point -----------------------------------------------------------------------------
#: A URL's query string: pre-signed blob URLs carry their credentials there (``X-Amz-Signature``, ``sig``).
_QUERY = re.compile(r"(https?://[^\s\"'?]+)\?[^\s\"']*")


def parse_pull_error(text: str) -> ParsedError:
    """Everything a pull error text says (see :class:`ParsedError`); never raises on any text."""
    s = _QUERY.sub(lambda m: f"{m.group(1)}?{redact.MASK}", redact.text(_normalise(text if isinstance(text, str) else str(text))))
    main, mirror_texts = _split_mirrors(s)
    runtime, producer, wrapper = _producer(s)
    mirrors = tuple(_parse_one(m, runtime, producer, wrapper, _mirror_image(m)) for m in mirror_texts)
    primary_image = _image(main) or _image(s)
    return _parse_one(main, runtime, producer, wrapper, primary_image, text=s, mirrors=mirrors)


def _mirror_image(entry: str) -> str | None:
    head = entry.split(": ", 1)[0].strip()
    return head if re.fullmatch(_REF, head) else _image(entry)


def _parse_one(s: str, runtime: str | None, producer: str | None, wrapper: str | None, image: str | None, *,
               text: str | None = None, mirrors: tuple[ParsedError, ...] = ()) -> ParsedError:
    url, method, endpoint, host = _endpoint(s)
    cls = _classify(s, url)
    details = dict(cls.details)
    if host is None:
        ping = _PING_HOST.search(s)
        if ping:
            host = endpoint_host(ping.group(1))
            endpoint = f"https://{host}/v2" if host else None
    if host is None and cls.phase in ("manifest", "auth", "blob", "tls", "http"):
        host = _registry_host(image)
        endpoint = f"https://{host}/v2" if host else None
    if host is None and details.get("name"):
        host = details["name"]
    if host is None and details.get("address"):
        host = details["address"]
    causes = cls.causes
    peer = _READ_TCP.search(s)
    if host is None and peer:
        host = endpoint_host(peer.group(1))
    if cls.failure == "reset" and producer == "moby":
        # dockerd retries an insecure (or loopback) registry over plain HTTP once HTTPS fails; a TLS port
        # resets that retry, so the text shows the retry and hides why HTTPS failed.
        causes = (_c("pull.failed", "dockerd's plain-HTTP retry of an insecure or loopback registry was reset by "
                                    "its TLS port: the HTTPS attempt failed first (credentials, trust or the tag; "
                                    "the check finds which)"), *causes)
    parsed = ParsedError(
        text=text if text is not None else s, failure=cls.failure, phase=cls.phase, go_error=cls.go_error,
        go_class=cls.go_class, runtime=runtime, producer=producer, wrapper=wrapper, image=image, url=url,
        method=method, endpoint=endpoint, host=host, details=details, causes=causes, mirrors=mirrors)
    return _with_summary(parsed)


def _with_summary(p: ParsedError) -> ParsedError:
    from dataclasses import replace

    return replace(p, summary=_summary(p))


# -- relating a verdict to the text --------------------------------------------------------------
@dataclass(frozen=True)
class Relation:
    """Whether a verdict explains a pasted error, and why (or why not)."""

    explains: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"explains": self.explains, "reason": self.reason}


#: Phases a verdict may give for the same failure as the text (a 401 on a manifest request is ``auth`` or ``http``).
_SAME_PHASE = {"auth": {"auth", "http", "manifest"}, "manifest": {"manifest", "http"}, "http": {"http", "manifest", "auth"},
               "blob": {"blob"}, "tls": {"tls"}, "dns": {"dns"}, "connect": {"connect"}, "proxy": {"proxy"},
               "config": {"config"}}


def relate(parsed: ParsedError, verdict: Mapping[str, Any] | None) -> Relation:
    """Whether ``verdict`` (the JSON contract's verdict object) explains ``parsed``.

    It does when the pull fails (or costs time) now, at the same endpoint host, in the same
    phase or with a cause the text names; otherwise the text is old or about another endpoint.
    """
    if not verdict:
        return Relation(False, "no verdict for this runtime and image")
    status = verdict.get("status")
    if status == "ok":
        return Relation(False, "the pull works now: the pasted error is older than the current state, or came "
                               "from another host or configuration")
    if status == "unknown":
        return Relation(False, "the check could not decide (offline or --no-pull); run it online to compare")
    cause = verdict.get("cause") or {}
    code, phase = cause.get("code"), cause.get("phase")
    vhost = endpoint_host(cause.get("endpoint"))
    hosts = {h for h in (parsed.host, endpoint_host(parsed.endpoint)) if h}
    if parsed.phase == "auth" and parsed.url and "/v2" not in parsed.url:
        hosts.add(_registry_host(parsed.image) or "")  # a token service's failure is the registry's pull failing
    same_host = vhost is None and phase == "config" or (vhost is not None and vhost in hosts)
    if not same_host and vhost is not None and parsed.phase == "dns":
        # A lookup names the host without its port ("lookup NAME on SERVER"): the name is the endpoint.
        same_host = _name_of(vhost) in {_name_of(h) for h in hosts}
    same_phase = phase is not None and parsed.phase is not None and phase in _SAME_PHASE.get(parsed.phase, {parsed.phase})
    named = code in parsed.codes
    where = f"{vhost or 'the configuration'}, {phase or 'unknown phase'}"
    if not hosts and (same_phase or named):
        return Relation(True, f"the verdict's cause {code} ({where}) is the failure the text describes")
    if same_host and (same_phase or named):
        return Relation(True, f"the verdict fails at the same endpoint ({where}) with {code}"
                              + ("" if named else ", which the text's wording does not name first"))
    if same_host:
        return Relation(False, f"the verdict fails at the same endpoint but in another way ({code}, {phase}) than "
                               f"the text ({parsed.failure}, {parsed.phase}): the pasted error may be older")
    return Relation(False, f"the verdict's cause is at {where}, not at {', '.join(sorted(hosts))} where the text "
                           "failed: that endpoint may work now, or the text came from another configuration")
