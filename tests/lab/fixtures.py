"""Pytest fixtures wrapping the lab components (loaded by ``tests/conftest.py`` as a plugin).

Session-scoped fixtures are started once and shared (tests must not change them); factories
(function-scoped) start private instances for tests that mutate state or need a variant, and
stop them when the test ends, pass or fail. Every fixture first checks its prerequisites
through :mod:`lab.require` (skip locally, fail under ``REGTUI_REQUIRE_LAB=1``).

Session fixtures and what they yield:

- ``lab_pki`` -> :class:`lab.pki.LabPKI` (root + intermediate CA)
- ``lab_cert`` -> :class:`lab.pki.IssuedCert`, good leaf for 127.0.0.1, localhost, *.lab.test
- ``registry_tls_auth`` -> :class:`lab.registry.Registry`, HTTPS (leaf + intermediate) and
  htpasswd Basic auth (``registry.auth == LAB_CREDENTIALS``)
- ``registry_tls`` -> Registry, HTTPS without auth (also the mirror's upstream)
- ``registry_plain`` -> Registry, plain HTTP without auth
- ``registry_mirror`` -> Registry, plain HTTP pull-through cache of ``registry_tls``
- ``lab_image`` -> :class:`lab.images.OciImage` pushed as ``lab/app:latest`` to the three
  registries above (not to the mirror: it serves it from the upstream)
- ``tinyproxy`` / ``tinyproxy_auth`` / ``tinyproxy_deny`` -> :class:`lab.proxy.TinyProxy`
  (open; BasicAuth ``LAB_PROXY_CREDENTIALS`` -> 407 without; CONNECT only to 443 -> 403)
- ``chrony`` / ``chrony_ahead`` -> :class:`lab.ntp.Chrony` (true time; +600 s)
- ``dnsmasq`` -> :class:`lab.dns.Dnsmasq` (``*.lab.test`` -> 127.0.0.1, ``*.nx.test`` NXDOMAIN)
- ``containerd`` -> :class:`lab.containerd.Containerd`
- ``dockerd`` -> :class:`lab.dockerd.DockerDaemon` using ``containerd``, default daemon.json

Function-scoped:

- ``cert_factory(variant="good", **kwargs)`` -> IssuedCert in a fresh dir (see ``VARIANTS``)
- ``registry_factory(**Registry kwargs)`` -> started Registry
- ``image_factory(**build_oci_layout kwargs)`` -> OciImage (not pushed)
- ``dockerd_factory(**DockerDaemon kwargs)`` -> started DockerDaemon (containerd defaults to
  the session one)
- ``tinyproxy_factory(**TinyProxy kwargs)`` -> started TinyProxy (e.g. with a hosts file)
- ``hosts_file_factory({name: ip})`` -> Path of a hosts file for :mod:`lab.namespaces`
- ``tcp_black_hole`` -> :class:`lab.sockets.TcpBlackHole`; ``udp_black_hole`` ->
  :class:`lab.sockets.UdpBlackHole`; ``closed_port`` -> int
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .containerd import Containerd
from .dns import Dnsmasq
from .dockerd import DockerDaemon
from .images import OciImage, build_oci_layout, push
from .namespaces import write_hosts_file
from .ntp import Chrony
from .pki import VARIANTS, IssuedCert, LabPKI
from .procs import Component
from .proxy import TinyProxy
from .registry import Registry
from .require import (
    require_binary,
    require_libfaketime,
    require_module,
    require_root,
)
from .sockets import TcpBlackHole, UdpBlackHole
from .sockets import closed_port as _closed_port

#: Credentials of ``registry_tls_auth``.
LAB_CREDENTIALS = ("labuser", "lab-password")
#: Credentials of ``tinyproxy_auth``.
LAB_PROXY_CREDENTIALS = ("proxyuser", "proxy-password")
#: Repository and tag ``lab_image`` is pushed as.
LAB_REPO = "lab/app"
LAB_TAG = "latest"

_counter = itertools.count(1)


def _registry_binaries() -> None:
    """Prerequisites of any registry (htpasswd only matters with auth, but is cheap to check)."""
    require_binary("docker-registry")
    require_binary("htpasswd")


@contextlib.contextmanager
def _running(component: Component) -> Iterator[Any]:
    """Start a component and stop it afterwards, whatever the test did."""
    try:
        component.start()
        yield component
    finally:
        component.stop()


# -- PKI ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lab_pki() -> LabPKI:
    """The lab's root and intermediate CAs."""
    return LabPKI()


@pytest.fixture(scope="session")
def lab_cert(lab_pki: LabPKI, tmp_path_factory: pytest.TempPathFactory) -> IssuedCert:
    """A good server certificate (chain: leaf + intermediate) for the default lab names."""
    return lab_pki.issue(tmp_path_factory.mktemp("pki-good"))


@pytest.fixture
def cert_factory(lab_pki: LabPKI, tmp_path: Path) -> Callable[..., IssuedCert]:
    """Issue certificates: ``cert_factory("expired")`` or ``cert_factory(sans=[...], ...)``."""

    def issue(variant: str = "good", **kwargs: Any) -> IssuedCert:
        options = {**VARIANTS[variant], **kwargs}
        return lab_pki.issue(tmp_path / f"pki-{variant}-{next(_counter)}", **options)

    return issue


# -- registries and images ------------------------------------------------------------------
@pytest.fixture(scope="session")
def registry_tls_auth(lab_cert: IssuedCert, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """HTTPS registry (leaf + intermediate chain) with htpasswd Basic auth."""
    _registry_binaries()
    reg = Registry(tmp_path_factory.mktemp("registry-tls-auth"), tls=lab_cert, auth=LAB_CREDENTIALS)
    with _running(reg):
        yield reg


@pytest.fixture(scope="session")
def registry_tls(lab_cert: IssuedCert, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """HTTPS registry without auth."""
    _registry_binaries()
    with _running(Registry(tmp_path_factory.mktemp("registry-tls"), tls=lab_cert)) as reg:
        yield reg


@pytest.fixture(scope="session")
def registry_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Plain-HTTP registry without auth."""
    _registry_binaries()
    with _running(Registry(tmp_path_factory.mktemp("registry-plain"))) as reg:
        yield reg


@pytest.fixture(scope="session")
def registry_mirror(
    registry_tls: Registry, lab_image: OciImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """Plain-HTTP pull-through cache of ``registry_tls`` (trusting the lab CA for it).

    Depends on ``lab_image`` only so the upstream already holds the image when the mirror starts.
    """
    mirror = Registry(
        tmp_path_factory.mktemp("registry-mirror"),
        upstream=registry_tls.url,
        upstream_ca=registry_tls.ca_file,
    )
    with _running(mirror) as reg:
        yield reg


@pytest.fixture(scope="session")
def lab_image(
    registry_tls_auth: Registry,
    registry_tls: Registry,
    registry_plain: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> OciImage:
    """A tiny two-layer image pushed as ``lab/app:latest`` to the session registries."""
    require_binary("skopeo")
    image = build_oci_layout(tmp_path_factory.mktemp("image") / "layout", tag=LAB_TAG, layers=2, seed=1)
    for reg in (registry_tls_auth, registry_tls, registry_plain):
        push(image, reg, LAB_REPO)
    return image


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """Start private registries for one test: ``registry_factory(tls=cert, auth=(u, p))``."""
    _registry_binaries()
    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> Registry:
            reg = Registry(tmp_path / f"registry-{next(_counter)}", **kwargs)
            return stack.enter_context(_running(reg))

        yield make


@pytest.fixture
def image_factory(tmp_path: Path) -> Callable[..., OciImage]:
    """Build OCI layouts for one test: ``image_factory(layers=3, seed=7, platforms=[...])``."""
    require_binary("skopeo")

    def make(**kwargs: Any) -> OciImage:
        return build_oci_layout(tmp_path / f"image-{next(_counter)}", **kwargs)

    return make


# -- proxy, NTP, DNS, sockets ---------------------------------------------------------------
@pytest.fixture(scope="session")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyProxy]:
    """An open tinyproxy: CONNECT allowed to any port, no auth."""
    require_binary("tinyproxy")
    with _running(TinyProxy(tmp_path_factory.mktemp("tinyproxy"))) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def tinyproxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyProxy]:
    """tinyproxy requiring Basic auth (``LAB_PROXY_CREDENTIALS``): 407 without it."""
    require_binary("tinyproxy")
    proxy = TinyProxy(tmp_path_factory.mktemp("tinyproxy-auth"), auth=LAB_PROXY_CREDENTIALS)
    with _running(proxy):
        yield proxy


@pytest.fixture(scope="session")
def tinyproxy_deny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyProxy]:
    """tinyproxy allowing CONNECT only to port 443: 403 for lab ports."""
    require_binary("tinyproxy")
    with _running(TinyProxy(tmp_path_factory.mktemp("tinyproxy-deny"), deny_connect=True)) as proxy:
        yield proxy


@pytest.fixture
def tinyproxy_factory(tmp_path: Path) -> Iterator[Callable[..., TinyProxy]]:
    """Start private proxies for one test: ``tinyproxy_factory(hosts_file=..., auth=...)``."""
    require_binary("tinyproxy")
    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> TinyProxy:
            proxy = TinyProxy(tmp_path / f"tinyproxy-{next(_counter)}", **kwargs)
            return stack.enter_context(_running(proxy))

        yield make


@pytest.fixture(scope="session")
def chrony(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chrony]:
    """chronyd serving this machine's time over NTP on a high port."""
    require_binary("chronyd")
    with _running(Chrony(tmp_path_factory.mktemp("chrony"))) as server:
        yield server


@pytest.fixture(scope="session")
def chrony_ahead(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chrony]:
    """chronyd under libfaketime serving a clock 600 s ahead."""
    require_binary("chronyd")
    require_libfaketime()
    with _running(Chrony(tmp_path_factory.mktemp("chrony-ahead"), offset=600)) as server:
        yield server


@pytest.fixture(scope="session")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dnsmasq]:
    """dnsmasq: ``*.lab.test`` -> 127.0.0.1, ``*.nx.test`` -> NXDOMAIN, nothing forwarded."""
    require_binary("dnsmasq")
    require_module("dns")
    with _running(Dnsmasq(tmp_path_factory.mktemp("dnsmasq"))) as server:
        yield server


@pytest.fixture
def tcp_black_hole() -> Iterator[TcpBlackHole]:
    """A TCP port that accepts connections into its backlog and never answers."""
    with TcpBlackHole() as hole:
        yield hole


@pytest.fixture
def udp_black_hole() -> Iterator[UdpBlackHole]:
    """A UDP port that never answers."""
    with UdpBlackHole() as hole:
        yield hole


@pytest.fixture
def closed_port() -> int:
    """A loopback TCP port with nothing listening (connections are refused)."""
    return _closed_port()


@pytest.fixture
def hosts_file_factory(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Write hosts files for :mod:`lab.namespaces`: ``hosts_file_factory({"a.lab.test": "127.0.0.2"})``."""
    require_root("a private mount namespace (unshare -m)")
    require_binary("unshare")

    def make(names: dict[str, str]) -> Path:
        return write_hosts_file(tmp_path / f"hosts-{next(_counter)}", names)

    return make


# -- runtimes -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    """A private containerd (isolated content per namespace; ``ctr_pull`` uses fresh ones)."""
    require_root("containerd")
    require_binary("containerd")
    require_binary("ctr")
    with _running(Containerd(tmp_path_factory.mktemp("containerd"))) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def dockerd(containerd: Containerd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A private dockerd on the lab containerd, with the lab's default daemon.json."""
    _dockerd_prerequisites()
    with _running(DockerDaemon(tmp_path_factory.mktemp("dockerd"), containerd=containerd)) as daemon:
        yield daemon


@pytest.fixture
def dockerd_factory(containerd: Containerd, tmp_path: Path) -> Iterator[Callable[..., DockerDaemon]]:
    """Start private dockerd instances for one test: ``dockerd_factory(daemon_json={...})``."""
    _dockerd_prerequisites()
    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> DockerDaemon:
            kwargs.setdefault("containerd", containerd)
            daemon = DockerDaemon(tmp_path / f"dockerd-{next(_counter)}", **kwargs)
            return stack.enter_context(_running(daemon))

        yield make


def _dockerd_prerequisites() -> None:
    """dockerd runs as root in a mount namespace and needs runc and the Docker CLI."""
    require_root("dockerd")
    for name in ("dockerd", "docker", "runc", "unshare"):
        require_binary(name)
