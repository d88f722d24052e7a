"""Certificate cases on real servers: one ``docker-registry`` per case, an old-TLS server, a TLS-inspecting proxy.

- :data:`CASES`: the certificate defects the certs probe must name, each as :class:`CertCase`
  (issue options for :meth:`lab.pki.LabPKI.issue`, the lab name it is served under).
- :class:`CertLab`: issues every case from one :class:`~lab.pki.LabPKI` and starts one
  ``docker-registry`` per case, each on its own ``127.0.0.x`` address (started in parallel), so
  every case is reachable as ``<case>.lab.test:<port>`` through a hosts file.
- :class:`OldTlsServer`: ``openssl s_server`` offering only TLS 1.0, with a lab chain.
  docker-registry can only raise its minimum version (``http.tls.minimumtls``), never cap the
  maximum, so a server that *only* speaks an old protocol needs OpenSSL.
- :func:`issue_client_auth`: a leaf whose extended key usage is clientAuth only (a client
  certificate, or a server certificate Go refuses with "incompatible key usage").
- :class:`MutualTlsRegistry`: a ``docker-registry`` that requires a client certificate.
- :class:`TokenAuthRegistry`: a ``docker-registry`` with token auth whose challenge names a
  realm on another lab server (only the realm URL matters: no token is ever fetched).
- :class:`MitmProxy`: a small HTTP proxy that answers ``CONNECT host:port`` by terminating TLS
  with a certificate its *own* CA issues for ``host`` on the fly, and relays the decrypted
  bytes to the real server over a second TLS connection: what a TLS-inspecting corporate proxy
  does. It can also be an honest tunnel, and listen with TLS (an ``https://`` proxy, which
  tinyproxy cannot be). Runs an asyncio loop in a background thread; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .namespaces import write_hosts_file
from .pki import DEFAULT_SANS, IssuedCert, LabPKI, fingerprint_sha256
from .procs import Component, LabError, free_port, need_binary
from .registry import Registry

__all__ = ["CertCase", "CASES", "CertLab", "OldTlsServer", "MitmProxy", "TokenAuthRegistry", "MutualTlsRegistry",
           "LAB_DOMAIN", "long_validity", "issue_client_auth"]

#: Every case name lives under this zone (the lab leaves carry ``*.lab.test``).
LAB_DOMAIN = "lab.test"
#: First 127.0.0.x address used for case registries (distinct from the lab's 127.0.0.1-4).
FIRST_ADDRESS = 40


def long_validity() -> dict[str, dt.datetime]:
    """Issue options for a certificate valid a year from now (so no ``expires-soon`` noise)."""
    now = dt.datetime.now(dt.timezone.utc)
    return {"not_before": now - dt.timedelta(hours=1), "not_after": now + dt.timedelta(days=365)}


@dataclass(frozen=True)
class CertCase:
    """One certificate defect, served by its own registry."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for :meth:`LabPKI.issue` (validity is a year unless the case sets it)."""
    hostname: str = ""
    """The lab name clients use (``<name>.lab.test`` by default)."""

    @property
    def host(self) -> str:
        """The name clients connect to."""
        return self.hostname or f"{self.name}.{LAB_DOMAIN}"


def _days(n: int) -> dict[str, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    return {"not_before": now - dt.timedelta(hours=1), "not_after": now + dt.timedelta(days=n)}


#: The cases, by name. Names resolve to their registry through the hosts file :class:`CertLab` writes.
CASES: dict[str, CertCase] = {c.name: c for c in (
    CertCase("good"),
    CertCase("no-intermediate", {"chain": "leaf-only"}),
    CertCase("with-root", {"chain": "with-root"}),
    CertCase("expired", {"expired": True}),
    CertCase("not-yet-valid", {"not_yet_valid": True}),
    CertCase("wrong-host", {"sans": ("wrong.lab.invalid",), "common_name": "wrong.lab.invalid"}),
    CertCase("self-signed", {"self_signed": True}),
    CertCase("cn-only", {"san": False, "common_name": f"cn-only.{LAB_DOMAIN}"}),
    CertCase("sha1", {"sha1": True}),
    CertCase("rsa1024", {"key": "rsa1024"}),
    CertCase("expires-soon", _days(10)),
    CertCase("expires-later", _days(45)),
    CertCase("client-auth-only", {"client_auth_only": True}),
)}


def issue_client_auth(pki: LabPKI, out_dir: Path, *, sans: tuple[str, ...] = DEFAULT_SANS,
                      common_name: str = "regtui lab client") -> IssuedCert:
    """A leaf signed by the lab intermediate whose extended key usage is clientAuth only.

    ``chain_file`` holds the leaf and the intermediate (what a server or a client presents).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for n in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            names.append(x509.DNSName(n))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(pki.intermediate.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(pki.intermediate.key, hashes.SHA256())
    )
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file, chain_file = out_dir / "client.crt", out_dir / "client.key", out_dir / "client-chain.crt"
    cert_file.write_bytes(pem)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    chain_file.write_bytes(pem + pki.intermediate.pem)
    ca_file = pki.write_ca(out_dir / "ca")
    return IssuedCert(cert_file=cert_file, key_file=key_file, chain_file=chain_file, ca_file=ca_file,
                      ca_dir=ca_file.parent, leaf_sha256=fingerprint_sha256(leaf), ca_sha256=pki.root.sha256,
                      chain_sha256=(fingerprint_sha256(leaf), pki.intermediate.sha256), sans=tuple(sans),
                      not_before=now - dt.timedelta(hours=1), not_after=now + dt.timedelta(days=365), leaf=leaf)


def _options(case: CertCase) -> dict[str, Any]:
    """Issue options: a year's validity unless the case sets its own window."""
    if any(k in case.options for k in ("expired", "not_yet_valid", "not_after")):
        return dict(case.options)
    return {**long_validity(), **case.options}


class CertLab:
    """Every case's certificate issued and served by its own ``docker-registry``."""

    def __init__(self, workdir: Path, pki: LabPKI | None = None, cases: list[str] | None = None) -> None:
        """Configure (not start): ``cases`` defaults to all of :data:`CASES`."""
        self.workdir = Path(workdir)
        self.pki = pki or LabPKI()
        self.cases = [CASES[n] for n in (cases or list(CASES))]
        self.certs: dict[str, IssuedCert] = {}
        self.registries: dict[str, Registry] = {}

    def start(self) -> Self:
        """Issue the certificates and start the registries in parallel (LabError if one fails)."""
        for i, case in enumerate(self.cases):
            out = self.workdir / "pki" / case.name
            if case.options.get("client_auth_only"):
                self.certs[case.name] = issue_client_auth(self.pki, out, common_name=case.host)
            else:
                self.certs[case.name] = self.pki.issue(out, **_options(case))
            address = f"127.0.0.{FIRST_ADDRESS + i}"
            self.registries[case.name] = Registry(self.workdir / "registry" / case.name, host=address,
                                                  tls=self.certs[case.name])
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.registries) or 1) as pool:
            futures = [pool.submit(r.start) for r in self.registries.values()]
            errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            self.stop()
            raise LabError(f"cert lab registries failed: {errors[0]}")
        return self

    def stop(self) -> None:
        """Stop every registry."""
        for r in self.registries.values():
            with contextlib.suppress(Exception):
                r.stop()

    def __enter__(self) -> Self:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving it."""
        self.stop()

    def host(self, name: str) -> str:
        """The lab name of a case (``expired.lab.test``)."""
        return CASES[name].host

    def hostport(self, name: str) -> str:
        """``<case>.lab.test:<port>`` as image references name it."""
        return f"{self.host(name)}:{self.registries[name].port}"

    def names(self) -> dict[str, str]:
        """Lab name -> address, for a hosts file."""
        return {self.host(n): r.host for n, r in self.registries.items()}

    def hosts_file(self, path: Path, extra: dict[str, str] | None = None) -> Path:
        """Write a hosts file with every case name (plus ``extra``)."""
        return write_hosts_file(path, {**self.names(), **(extra or {})})


class MutualTlsRegistry(Registry):
    """A registry that requires a client certificate issued under ``client_ca`` (``http.tls.clientcas``)."""

    def __init__(self, workdir: Path, *, client_ca: Path, **kwargs: Any) -> None:
        """``client_ca``: PEM of the CA client certificates must chain to."""
        super().__init__(workdir, **kwargs)
        self.client_ca = client_ca

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Add ``clientcas`` to the TLS section the base class writes."""
        argv, env = super()._prepare()
        config = json.loads(self.config_path.read_text())
        config["http"]["tls"]["clientcas"] = [str(self.client_ca)]
        self.config_path.write_text(json.dumps(config, indent=2))
        return argv, env

    def _ready(self) -> bool:
        """Ready when the port accepts TCP (an anonymous request is refused by design)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False


class TokenAuthRegistry(Registry):
    """A registry answering ``401 WWW-Authenticate: Bearer realm="<realm>"`` (token auth)."""

    def __init__(self, workdir: Path, *, realm: str, bundle: Path, **kwargs: Any) -> None:
        """``realm``: the token server URL to announce; ``bundle``: any PEM certificate (the registry
        insists on a root bundle for token verification)."""
        super().__init__(workdir, **kwargs)
        self.realm = realm
        self.bundle = bundle

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Add the token auth section to the config the base class writes."""
        argv, env = super()._prepare()
        config = json.loads(self.config_path.read_text())
        config["auth"] = {"token": {"realm": self.realm, "service": "regtui-lab", "issuer": "regtui-lab",
                                    "rootcertbundle": str(self.bundle)}}
        self.config_path.write_text(json.dumps(config, indent=2))
        return argv, env

    def _ready(self) -> bool:
        """Ready when ``/v2/`` answers 401 (the challenge)."""
        try:
            return self.request("/v2/", timeout=1.0, authenticate=False, verify=False).status == 401
        except OSError:
            return False


class OldTlsServer(Component):
    """``openssl s_server`` that speaks only TLS 1.0 (security level 0), serving a lab chain."""

    name = "old-tls"
    start_timeout = 15.0

    def __init__(self, workdir: Path, cert: IssuedCert, *, host: str = "127.0.0.1", port: int | None = None,
                 protocol: str = "-tls1") -> None:
        """``protocol`` is the s_server flag that pins the version (``-tls1``, ``-tls1_1``)."""
        super().__init__(workdir)
        self.cert = cert
        self.host = host
        self.port = port or free_port(host)
        self.protocol = protocol

    @property
    def hostport(self) -> str:
        """``HOST:PORT``."""
        return f"{self.host}:{self.port}"

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Write the intermediates alone (``-cert_chain``) and build the command."""
        chain = x509.load_pem_x509_certificates(self.cert.chain_file.read_bytes())
        rest = self.workdir / "intermediates.pem"
        rest.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[1:]))
        argv = [need_binary("openssl"), "s_server", "-accept", self.hostport, "-cert", str(self.cert.cert_file),
                "-key", str(self.cert.key_file), self.protocol, "-cipher", "DEFAULT:@SECLEVEL=0", "-www", "-quiet"]
        if chain[1:]:
            argv[argv.index("-key"):argv.index("-key")] = ["-cert_chain", str(rest)]
        return argv, None

    def _ready(self) -> bool:
        """Ready when the port accepts TCP."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False


class MitmProxy:
    """A TLS-inspecting HTTP proxy: CONNECT is answered with a certificate from its own CA."""

    def __init__(self, workdir: Path, names: dict[str, str], *, host: str = "127.0.0.1", port: int = 0,
                 ca_name: str = "regtui lab inspecting proxy", timeout: float = 20.0, inspect: bool = True,
                 listen_tls: IssuedCert | None = None) -> None:
        """``names`` maps the lab names it may be asked to CONNECT to onto their addresses.

        ``inspect=False`` makes it an honest tunnel (bytes relayed untouched); ``listen_tls`` makes
        clients speak TLS *to the proxy* with that certificate (an ``https://`` proxy).
        """
        self.workdir = Path(workdir)
        self.names = dict(names)
        self.host = host
        self.port = port
        self.timeout = timeout
        self.inspect = inspect
        self.listen_tls = listen_tls
        self.ca = LabPKI(ca_name)
        self.connects: list[str] = []
        """Every CONNECT target asked for, in order."""
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (``https://`` when it listens with TLS)."""
        return f"{'https' if self.listen_tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_sha256(self) -> str:
        """SHA-256 of the proxy's root CA (what a client must trust)."""
        return self.ca.root.sha256

    @property
    def intermediate_sha256(self) -> str:
        """SHA-256 of the proxy's intermediate, which signs the forged leaves and is sent with them."""
        return self.ca.intermediate.sha256

    def start(self) -> Self:
        """Bind and serve in a background thread."""
        started = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            listen: ssl.SSLContext | None = None
            if self.listen_tls is not None:
                listen = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                listen.load_cert_chain(str(self.listen_tls.chain_file), str(self.listen_tls.key_file))
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, ssl=listen))
            self.port = self._server.sockets[0].getsockname()[1]
            started.set()
            self._loop.run_forever()
            # Connections still relaying were cancelled by stop(): let them finish before the loop closes.
            pending = asyncio.all_tasks(self._loop)
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="mitm-proxy", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise LabError("MITM proxy did not start")
        return self

    def stop(self) -> None:
        """Close the listener and stop the loop."""
        if self._loop is None:
            return
        loop, server = self._loop, self._server

        def shutdown() -> None:
            if server is not None:
                server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.call_soon(loop.stop)

        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> Self:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving it."""
        self.stop()

    def _context_for(self, name: str) -> ssl.SSLContext:
        """A server context with a leaf for ``name`` signed by the proxy's CA (made once per name)."""
        if name not in self._contexts:
            # Signed by the proxy's intermediate and sent with it, as inspecting proxies do; the
            # proxy's root is what clients are expected to have installed.
            issued = self.ca.issue(self.workdir / f"forged-{len(self._contexts)}", sans=(name,),
                                   not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1),
                                   not_after=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(issued.chain_file), str(issued.key_file))
            self._contexts[name] = ctx
        return self._contexts[name]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(self._serve(reader, writer), self.timeout)
        except (asyncio.TimeoutError, OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        words = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(words) < 2 or words[0] != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        target = words[1]
        self.connects.append(target)
        name, _, port = target.rpartition(":")
        address = self.names.get(name)
        if address is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        if not self.inspect:
            up_reader, up_writer = await asyncio.open_connection(address, int(port))
        else:
            await writer.start_tls(self._context_for(name))
            upstream_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            upstream_tls.check_hostname = False
            upstream_tls.verify_mode = ssl.CERT_NONE
            up_reader, up_writer = await asyncio.open_connection(address, int(port), ssl=upstream_tls,
                                                                 server_hostname=name)
        try:
            await asyncio.gather(_relay(reader, up_writer), _relay(up_reader, writer))
        finally:
            up_writer.close()


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until EOF."""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
