"""A real ``docker-registry`` with Bearer token auth, and the token server it trusts.

Docker Hub, GHCR, Harbor and Quay all use the token flow (distribution ``docs/spec/auth/token.md``):
the registry answers ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``,
the client gets a JWT from the realm and retries. :class:`TokenServer` is that realm, in a thread
of the test process: it signs RS256 JWTs whose ``x5c`` header carries its certificate, which the
registry trusts through ``auth.token.rootcertbundle``. It grants:

- anonymous ``GET``: ``pull`` on every repository when ``anonymous_pull`` (public images), else 401;
- ``GET`` with Basic credentials of a known user: the requested actions (push and pull);
- ``POST`` ``grant_type=refresh_token`` with a known identity token (``refresh_tokens``), and
  ``grant_type=password``; ``post_status=404`` makes every POST answer 404 (a token server
  without the OAuth endpoint, like GCR's, so clients fall back to GET).

Every token request is recorded (method, grant type, whether Basic was sent; never the secret).
:class:`TokenRegistry` is :class:`lab.registry.Registry` with ``auth: token`` instead of htpasswd.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .pki import IssuedCert
from .procs import LOOPBACK
from .registry import Registry

__all__ = ["TokenServer", "TokenRegistry", "TokenRequest", "SERVICE", "ISSUER"]

SERVICE = "regtui-lab-registry"
ISSUER = "regtui-lab-token-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenRequest:
    """One request to the token server (no secrets)."""

    method: str
    grant_type: str | None
    basic: bool
    scopes: tuple[str, ...]
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (resets, aborted TLS) are part of the tests: stay quiet about them."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
    owner: "TokenServer"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet."""

    def _reply(self, status: int, data: dict[str, Any], record: TokenRequest) -> None:
        self.server.owner.requests.append(record)
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _basic_user(self) -> tuple[str | None, bool]:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None, True
        owner = self.server.owner
        if owner.users.get(user) == password and password:
            return user, True
        if not user and password in owner.refresh_tokens:  # identity token sent as Basic (containerd's GET fallback)
            return owner.refresh_tokens[password], True
        return None, True

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        """``GET /token?service=..&scope=..`` (anonymous or Basic)."""
        query = parse_qs(urlsplit(self.path).query)
        scopes = tuple(s for value in query.get("scope", []) for s in value.split(" ") if s)
        user, sent_basic = self._basic_user()
        owner = self.server.owner
        if sent_basic and user is None:
            self._reply(401, {"details": "invalid credentials"}, TokenRequest("GET", None, True, scopes, 401))
            return
        if user is None and not owner.anonymous_pull:
            self._reply(401, {"details": "authentication required"}, TokenRequest("GET", None, False, scopes, 401))
            return
        self._reply(200, owner.issue(user, scopes), TokenRequest("GET", None, sent_basic, scopes, 200))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        """``POST /token`` form (``grant_type=refresh_token|password``)."""
        owner = self.server.owner
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        form = parse_qs(self.rfile.read(length).decode())
        grant = (form.get("grant_type") or [None])[0]
        scopes = tuple(s for value in form.get("scope", []) for s in value.split(" ") if s)
        if owner.post_status is not None:
            self._reply(owner.post_status, {"details": "not here"}, TokenRequest("POST", grant, False, scopes, owner.post_status))
            return
        user = None
        if grant == "refresh_token":
            user = owner.refresh_tokens.get((form.get("refresh_token") or [""])[0])
        elif grant == "password":
            name, password = (form.get("username") or [""])[0], (form.get("password") or [""])[0]
            user = name if owner.users.get(name) == password and password else None
        if user is None:
            self._reply(401, {"details": "invalid grant"}, TokenRequest("POST", grant, False, scopes, 401))
            return
        token = owner.issue(user, scopes)
        token["refresh_token"] = next((t for t, u in owner.refresh_tokens.items() if u == user), "")
        self._reply(200, token, TokenRequest("POST", grant, False, scopes, 200))


class TokenServer:
    """The token realm: signs JWTs the :class:`TokenRegistry` accepts."""

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None, refresh_tokens: dict[str, str] | None = None,
                 anonymous_pull: bool = False, post_status: int | None = None, tls: IssuedCert | None = None,
                 host: str = LOOPBACK) -> None:
        """``users``: name -> password; ``refresh_tokens``: identity token -> user name."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = dict(users or {})
        self.refresh_tokens = dict(refresh_tokens or {})
        self.anonymous_pull = anonymous_pull
        self.post_status = post_status
        self.tls = tls
        self.host = host
        self.requests: list[TokenRequest] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = dt.datetime.now(dt.timezone.utc)
        self._cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                      .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                      .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                      .sign(self._key, hashes.SHA256()))
        self.bundle = self.workdir / "token-signer.crt"
        self.bundle.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._server: _Server | None = None
        self.port = 0

    @property
    def realm(self) -> str:
        """The realm URL the registry advertises."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/token"

    def issue(self, user: str | None, scopes: tuple[str, ...]) -> dict[str, Any]:
        """A token granting ``scopes`` (anonymous: pull only)."""
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            actions = [a for a in parts[-1].split(",") if a]
            if user is None:
                actions = [a for a in actions if a == "pull"]
            access.append({"type": "repository", "name": ":".join(parts[1:-1]), "actions": actions})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = f"{signing_input}.{_b64(signature)}"
        return {"token": token, "access_token": token, "expires_in": 300,
                "issued_at": dt.datetime.now(dt.timezone.utc).isoformat()}

    def start(self) -> "TokenServer":
        """Serve in a daemon thread on a free port."""
        server = _Server((self.host, 0), _Handler)
        server.owner = self
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls.chain_file), str(self.tls.key_file))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class TokenRegistry(Registry):
    """``docker-registry`` with ``auth: token`` pointing at a :class:`TokenServer`."""

    def __init__(self, workdir: Path, token_server: TokenServer, **kwargs: Any) -> None:
        """Same arguments as :class:`Registry` (without ``auth``), plus the started token server."""
        super().__init__(workdir, **kwargs)
        self.token_server = token_server

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Write the registry config with token auth."""
        argv, env = super()._prepare()
        config = json.loads(self.config_path.read_text())
        config["auth"] = {"token": {"realm": self.token_server.realm, "service": SERVICE, "issuer": ISSUER,
                                    "rootcertbundle": str(self.token_server.bundle)}}
        self.config_path.write_text(json.dumps(config, indent=2))
        return argv, env

    def _ready(self) -> bool:
        """Ready when ``/v2/`` answers 401 with a Bearer challenge."""
        try:
            result = self.request("/v2/", timeout=1.0, authenticate=False, verify=False)
        except OSError:
            return False
        return result.status == 401
