"""Trust pools: the runtime's pool exactly as Go builds it.

The system bundle *under the root* (Go's search order, ``SSL_CERT_FILE`` from the daemon's
environment first), plus the endpoint's extra CA files; PEM blocks that do not parse are skipped
as ``AppendCertsFromPEM`` does. :class:`CertPool` indexes certificates by subject, as chain
building looks parents up by issuer name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from cryptography import x509

from regtui.host import Host
from regtui.model import TLSInputs
from regtui.net.http import system_bundle
from regtui.net.tls.certs import fingerprint, parse_pem_bundle, subject_der


class CertPool:
    """Certificates indexed by subject, like Go's ``x509.CertPool`` (lookups are by issuer name).

    A pool may sit on a ``base`` pool (the system bundle, indexed once per check) and add
    its own certificates (an endpoint's CA files) without copying the base.
    """

    def __init__(self, certs: Iterable[x509.Certificate] = (), base: "CertPool | None" = None) -> None:
        self.base = base
        self.own: list[x509.Certificate] = []
        self._by_subject: dict[bytes, list[x509.Certificate]] = {}
        self._fps: set[str] = set()
        for c in certs:
            self.add(c)

    def add(self, cert: x509.Certificate) -> None:
        """Add ``cert`` unless the same certificate is already in."""
        if self.contains(cert):
            return
        self._fps.add(fingerprint(cert))
        self.own.append(cert)
        self._by_subject.setdefault(subject_der(cert), []).append(cert)

    def contains(self, cert: x509.Certificate) -> bool:
        """The exact certificate is in the pool."""
        return fingerprint(cert) in self._fps or (self.base is not None and self.base.contains(cert))

    def with_subject(self, name_der: bytes) -> list[x509.Certificate]:
        """Certificates whose subject encodes to ``name_der``."""
        mine = self._by_subject.get(name_der, [])
        return (self.base.with_subject(name_der) + mine) if self.base is not None else mine

    @property
    def certs(self) -> list[x509.Certificate]:
        """Every certificate, the base's first."""
        return (self.base.certs if self.base is not None else []) + self.own

    def __len__(self) -> int:
        return len(self.own) + (len(self.base) if self.base is not None else 0)

    def __iter__(self) -> Any:
        return iter(self.certs)


def as_pool(certs: "CertPool | Iterable[x509.Certificate]") -> CertPool:
    return certs if isinstance(certs, CertPool) else CertPool(certs)


@dataclass
class TrustStore:
    """The certificate pool one runtime verifies one endpoint with."""

    anchors: list[x509.Certificate] = field(default_factory=list, repr=False)
    system_bundle: str | None = None
    """Host path of the system bundle used (``None``: none found, or system roots off)."""
    system_count: int = 0
    ca_files: list[str] = field(default_factory=list)
    """Extra CA files that contributed at least one certificate."""
    problems: list[str] = field(default_factory=list)
    """Files that could not be used, in words."""
    system_pool: CertPool | None = field(default=None, repr=False, compare=False)
    """The system bundle's pool, shared by every store of one check."""
    _pool: tuple[int, CertPool] | None = field(default=None, repr=False, compare=False)

    @property
    def pool(self) -> CertPool:
        """The anchors as an indexed pool (rebuilt if anchors were added since)."""
        if self._pool is None or self._pool[0] != len(self.anchors):
            base = self.system_pool
            extra = self.anchors[self.system_count:] if base is not None else self.anchors
            self._pool = (len(self.anchors), CertPool(extra, base=base))
        return self._pool[1]

    def contains(self, cert: x509.Certificate) -> bool:
        """The exact certificate is in the pool."""
        return self.pool.contains(cert)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (no certificate bodies)."""
        return {"system_bundle": self.system_bundle, "system_certificates": self.system_count,
                "ca_files": list(self.ca_files), "anchors": len(self.anchors), "problems": list(self.problems)}


def _read_bundle(host: Host, path: str, cache: dict[Any, Any],
                 limit: int = 32 * 1024 * 1024) -> tuple[list[x509.Certificate], str | None]:
    """Certificates in a host file (cached per path), or an error in words."""
    if path in cache:
        return cache[path]
    f = host.read(path, limit=limit)
    if not f.ok:
        result: tuple[list[x509.Certificate], str | None] = ([], f"{path}: {f.status} {f.error}".strip())
    else:
        certs, skipped = parse_pem_bundle(f.data)
        if not certs:
            result = ([], f"{path}: no PEM certificate in it")
        else:
            result = (certs, f"{path}: {skipped} block(s) skipped (not a certificate)" if skipped else None)
    cache[path] = result
    return result


def load_trust(host: Host, tls: TLSInputs, daemon_env: dict[str, str] | None = None,
               cache: dict[Any, Any] | None = None) -> TrustStore:
    """The runtime's pool for one endpoint: system bundle under the root (when used), plus CA files."""
    cache = {} if cache is None else cache
    store = TrustStore()
    if tls.system_roots:
        bundle = system_bundle(host, daemon_env)
        if bundle:
            certs, problem = _read_bundle(host, bundle, cache)
            store.anchors += certs
            store.system_bundle, store.system_count = bundle, len(certs)
            store.system_pool = cache.setdefault(("pool", bundle), CertPool(certs))
            if problem:
                store.problems.append(problem)
        else:
            store.problems.append("no system trust bundle under the root (Go looks in /etc/ssl/certs/ca-certificates.crt, "
                                  "/etc/pki/tls/certs/ca-bundle.crt, ...)")
    for path in tls.ca_files:
        certs, problem = _read_bundle(host, path, cache)
        if certs:
            store.anchors += certs
            store.ca_files.append(path)
        if problem:
            store.problems.append(problem)
    return store


#: Directories where CA files wait on a host without being read by any runtime: the OS's staging directories
#: (read only by update-ca-certificates / update-ca-trust) and the per-registry certs.d directories of each runtime
#: (a file there may be ignored: no hosts.toml names it, or its suffix is not one the runtime loads).
IDLE_CA_DIRS = ("/usr/local/share/ca-certificates", "/etc/pki/ca-trust/source/anchors",
                "/etc/containerd/certs.d", "/etc/docker/certs.d", "/etc/containers/certs.d")
_IDLE_CA_SUFFIXES = (".crt", ".pem")
_IDLE_CA_MAX_FILES = 256
#: An idle CA file larger than this is not one certificate someone staged: it is not read.
_IDLE_CA_MAX_BYTES = 1024 * 1024


def idle_ca_files(host: Host) -> list[str]:
    """CA files present under the root in :data:`IDLE_CA_DIRS` (and one directory level below), bounded."""
    found: list[str] = []
    for top in IDLE_CA_DIRS:
        names = sorted(host.listdir(top) or [])
        for name in names:
            path = f"{top}/{name}"
            paths = [f"{path}/{n}" for n in sorted(host.listdir(path) or [])] if host.is_dir(path) else [path]
            for q in paths:
                if q.endswith(_IDLE_CA_SUFFIXES) and host.is_file(q):
                    found.append(q)
                    if len(found) >= _IDLE_CA_MAX_FILES:
                        return found
    return found


def known_from(stores: Iterable[TrustStore], host: Host | None = None, cache: dict[Any, Any] | None = None) -> CertPool:
    """Every distinct certificate from several trust stores (other runtimes' CA files), as one pool; with
    ``host``, also the CA files waiting there that no runtime reads (:func:`idle_ca_files`).

    System bundles are left out: a runtime that uses system roots has them in its own store, and
    one that does not should not be offered the whole bundle.
    """
    pool = CertPool()
    for s in stores:
        for c in s.anchors[s.system_count:]:
            pool.add(c)
    if host is not None:
        cache = {} if cache is None else cache
        for path in idle_ca_files(host):
            for c in _read_bundle(host, path, cache, limit=_IDLE_CA_MAX_BYTES)[0]:
                pool.add(c)
    return pool
