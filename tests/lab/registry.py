"""A real Docker distribution registry (``docker-registry serve``) on loopback.

Variants, combinable: TLS (a served chain + key from :mod:`lab.pki`), htpasswd Basic auth
(bcrypt, made with ``htpasswd -Bbn``), pull-through cache (``proxy.remoteurl``; the upstream's CA
is trusted through ``SSL_CERT_FILE``, the only way Debian's 2.8 build takes it, and the upstream
must not require auth because 2.8 does not send credentials to a Basic upstream), plain HTTP.
A pull-through cache pings its upstream while starting and panics (exits) when the upstream is
unreachable or untrusted, so start the upstream first; the start-up error quotes the panic.

Also a tiny stdlib HTTP client (:meth:`Registry.request`) for smoke tests and helpers, and
:meth:`Registry.corrupt_blob`, which rewrites a stored blob with other bytes of the same length
so the registry serves content that no longer matches its digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .namespaces import wrap_in_mount_namespace
from .pki import IssuedCert
from .procs import LOOPBACK, Component, LabError, free_port, need_binary, run

__all__ = ["Registry", "HttpResult", "http_request", "MANIFEST_ACCEPT"]

#: Accept header that makes a registry return any manifest or index type.
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


@dataclass(frozen=True)
class HttpResult:
    """Status, headers (lower-cased names) and body of one HTTP exchange."""

    status: int
    headers: dict[str, str]
    body: bytes


def http_request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    ca_file: Path | None = None,
    verify: bool = True,
    timeout: float = 10.0,
) -> HttpResult:
    """One HTTP(S) request with the standard library, never using environment proxies.

    Non-2xx answers are returned, not raised; connection and TLS errors raise the underlying
    ``OSError`` subclass (e.g. ``ssl.SSLCertVerificationError``, ``ConnectionRefusedError``).
    """
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return HttpResult(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return HttpResult(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())
    except urllib.error.URLError as err:
        # Re-raise the underlying error (ssl.SSLCertVerificationError, ConnectionRefusedError,
        # TimeoutError, ...) so callers can match on what actually went wrong.
        if isinstance(err.reason, BaseException):
            raise err.reason from None
        raise


class Registry(Component):
    """``docker-registry serve`` with its storage, config and log in its own directory."""

    name = "registry"
    start_timeout = 20.0

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        tls: IssuedCert | None = None,
        auth: tuple[str, str] | None = None,
        upstream: str | None = None,
        upstream_ca: Path | None = None,
        hosts_file: Path | None = None,
    ) -> None:
        """Configure (not start) a registry.

        - ``host``/``port``: where to listen (any 127.0.0.x; a free port when omitted).
        - ``tls``: serve HTTPS with ``tls.chain_file``/``tls.key_file``; plain HTTP when None.
        - ``auth``: ``(user, password)`` for htpasswd Basic auth.
        - ``upstream``: URL of the registry to mirror (pull-through cache).
        - ``upstream_ca``: PEM bundle trusted for the upstream (given as ``SSL_CERT_FILE``).
        - ``hosts_file``: run inside a mount namespace with this file as /etc/hosts, so an
          ``upstream`` can be named e.g. ``https://registry.lab.test:PORT``.
        """
        super().__init__(workdir)
        self.host = host
        self.port = port or free_port(host)
        self.tls = tls
        self.auth = auth
        self.upstream = upstream
        self.upstream_ca = upstream_ca
        self.hosts_file = hosts_file
        self.storage = self.workdir / "storage"
        self.config_path = self.workdir / "config.yml"

    # -- addresses ------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.tls else "http"

    @property
    def host_port(self) -> str:
        """``HOST:PORT`` as used in image references."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:41234``."""
        return f"{self.scheme}://{self.host_port}"

    @property
    def ca_file(self) -> Path | None:
        """The CA bundle clients must trust (None for plain HTTP)."""
        return self.tls.ca_file if self.tls else None

    @property
    def username(self) -> str | None:
        """Basic auth user, if auth is on."""
        return self.auth[0] if self.auth else None

    @property
    def password(self) -> str | None:
        """Basic auth password, if auth is on."""
        return self.auth[1] if self.auth else None

    @property
    def creds(self) -> str | None:
        """``user:password`` for skopeo's ``--creds``, if auth is on."""
        return f"{self.auth[0]}:{self.auth[1]}" if self.auth else None

    # -- lifecycle ------------------------------------------------------------------------
    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Write config.yml (JSON is valid YAML) and, with auth, the htpasswd file."""
        self.storage.mkdir(parents=True, exist_ok=True)
        http: dict[str, object] = {
            "addr": self.host_port,
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls:
            http["tls"] = {
                "certificate": str(self.tls.chain_file),
                "key": str(self.tls.key_file),
            }
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "info", "fields": {"service": "registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": http,
        }
        if self.auth:
            htpasswd = self.workdir / "htpasswd"
            user, password = self.auth
            result = run(
                [need_binary("htpasswd"), "-Bbn", user, password], timeout=20
            )
            if result.returncode != 0:
                raise LabError(f"htpasswd failed: {result.stderr}")
            htpasswd.write_text(result.stdout.strip() + "\n")
            config["auth"] = {"htpasswd": {"realm": "regtui-lab", "path": str(htpasswd)}}
        if self.upstream:
            config["proxy"] = {"remoteurl": self.upstream}
        self.config_path.write_text(json.dumps(config, indent=2))

        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(self.workdir)}
        if self.upstream_ca:
            env["SSL_CERT_FILE"] = str(self.upstream_ca)
        argv = [need_binary("docker-registry"), "serve", str(self.config_path)]
        return wrap_in_mount_namespace(argv, hosts_file=self.hosts_file), env

    def _ready(self) -> bool:
        """Ready when ``/v2/`` answers 200, or 401 with auth on.

        The certificate is not verified here: registries serving broken certificates (expired,
        wrong name, ...) must start too; trust is what the tests examine afterwards.
        """
        try:
            result = self.request("/v2/", timeout=1.0, authenticate=False, verify=False)
        except OSError:
            return False
        return result.status in ((200, 401) if self.auth else (200,))

    # -- client helpers -------------------------------------------------------------------
    def auth_header(self) -> dict[str, str]:
        """The Basic ``Authorization`` header for this registry's credentials (empty if none)."""
        if not self.auth:
            return {}
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        authenticate: bool = True,
        verify: bool = True,
        timeout: float = 10.0,
    ) -> HttpResult:
        """Request ``path`` (e.g. ``/v2/``) on this registry, trusting its CA (``verify``)."""
        all_headers = dict(self.auth_header() if authenticate else {})
        all_headers.update(headers or {})
        return http_request(
            self.url + path, method=method, headers=all_headers, ca_file=self.ca_file,
            verify=verify, timeout=timeout,
        )

    def manifest(self, repo: str, reference: str, *, timeout: float = 15.0) -> HttpResult:
        """GET a manifest (any type) by tag or digest."""
        return self.request(
            f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT},
            timeout=timeout,
        )

    def manifest_digest(self, repo: str, reference: str, *, timeout: float = 15.0) -> str:
        """The ``Docker-Content-Digest`` of a manifest; LabError unless the answer is 200."""
        result = self.manifest(repo, reference, timeout=timeout)
        if result.status != 200:
            raise LabError(f"manifest {repo}:{reference} -> HTTP {result.status}: {result.body[:300]!r}")
        digest = result.headers.get("docker-content-digest")
        return digest or "sha256:" + hashlib.sha256(result.body).hexdigest()

    def blob(self, repo: str, digest: str, *, timeout: float = 15.0) -> HttpResult:
        """GET a blob by digest (the filesystem driver serves it directly, no redirect)."""
        return self.request(f"/v2/{repo}/blobs/{digest}", timeout=timeout)

    # -- storage manipulation -------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        algo, hexdigest = digest.split(":", 1)
        return (
            self.storage / "docker" / "registry" / "v2" / "blobs" / algo / hexdigest[:2]
            / hexdigest / "data"
        )

    def corrupt_blob(self, digest: str) -> Path:
        """Overwrite a stored blob with different bytes of the same length; return its path.

        Every byte is inverted, so the length (and Content-Length) stays right while the
        content no longer hashes to ``digest``.
        """
        path = self.blob_path(digest)
        if not path.is_file():
            raise LabError(f"blob {digest} is not stored at {path}")
        data = path.read_bytes()
        path.write_bytes(bytes(b ^ 0xFF for b in data))
        return path

    def skopeo_tls_args(self, prefix: str = "") -> list[str]:
        """skopeo flags to reach this registry: ``--{prefix}cert-dir``/``--{prefix}tls-verify``."""
        if self.tls:
            return [f"--{prefix}cert-dir", str(self.tls.ca_dir), f"--{prefix}tls-verify=true"]
        return [f"--{prefix}tls-verify=false"]
