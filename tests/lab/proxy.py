"""tinyproxy on loopback: an HTTP proxy with CONNECT, optionally requiring auth or denying CONNECT.

tinyproxy's ``ConnectPort`` semantics (tinyproxy.conf(5), 1.11): with *no* ``ConnectPort`` line
every port may be CONNECTed to; once any ``ConnectPort`` line exists only the listed ports are
allowed (``ConnectPort 0`` forbids CONNECT altogether). So the normal proxy lists none (lab
registries sit on random high ports), and the deny variant lists only 443, which makes CONNECT
to a lab port answer ``403 Access violation``. ``BasicAuth`` makes unauthenticated requests
answer ``407 Proxy Authentication Required``.

Also :func:`connect_via_proxy`, a raw CONNECT client returning the proxy's status line.
"""

from __future__ import annotations

import base64
import socket
from pathlib import Path

from .namespaces import wrap_in_mount_namespace
from .procs import LOOPBACK, Component, free_port, need_binary

__all__ = ["TinyProxy", "connect_via_proxy"]


class TinyProxy(Component):
    """``tinyproxy -d -c CONF`` in the foreground, with its own config, log and pid file."""

    name = "tinyproxy"
    start_timeout = 15.0

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        auth: tuple[str, str] | None = None,
        deny_connect: bool = False,
        hosts_file: Path | None = None,
    ) -> None:
        """Configure (not start) a proxy.

        - ``auth``: ``(user, password)`` required through ``BasicAuth`` (else 407).
        - ``deny_connect``: allow CONNECT only to port 443, so lab ports get 403.
        - ``hosts_file``: run with this file as /etc/hosts, so CONNECT to a lab name (e.g.
          ``registry.lab.test:PORT``) resolves; needed because Go clients never proxy
          requests to ``localhost`` or loopback IPs, so proxied lab pulls must use names.
        """
        super().__init__(workdir)
        self.host = host
        self.port = port or free_port(host)
        self.auth = auth
        self.deny_connect = deny_connect
        self.hosts_file = hosts_file
        self.config_path = self.workdir / "tinyproxy.conf"
        # tinyproxy's own log (LogFile); stdout/stderr go to the component log as usual.
        self.access_log = self.workdir / "access.log"

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (with credentials embedded when auth is on)."""
        if self.auth:
            return f"http://{self.auth[0]}:{self.auth[1]}@{self.host}:{self.port}"
        return f"http://{self.host}:{self.port}"

    @property
    def url_without_auth(self) -> str:
        """``http://HOST:PORT`` without credentials."""
        return f"http://{self.host}:{self.port}"

    def _prepare(self) -> tuple[list[str], dict[str, str] | None]:
        """Write tinyproxy.conf."""
        lines = [
            f"Port {self.port}",
            f"Listen {self.host}",
            "Timeout 30",
            "MaxClients 64",
            # Allow is matched against the client's address; every lab client is on loopback.
            "Allow 127.0.0.0/8",
            f'LogFile "{self.access_log}"',
            "LogLevel Info",
            f'PidFile "{self.workdir / "tinyproxy.pid"}"',
            "DisableViaHeader Yes",
        ]
        if self.auth:
            lines.append(f"BasicAuth {self.auth[0]} {self.auth[1]}")
        if self.deny_connect:
            lines.append("ConnectPort 443")
        self.config_path.write_text("\n".join(lines) + "\n")
        self.access_log.touch()
        argv = [need_binary("tinyproxy"), "-d", "-c", str(self.config_path)]
        return wrap_in_mount_namespace(argv, hosts_file=self.hosts_file), None

    def _ready(self) -> bool:
        """Ready when the port accepts TCP."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def proxy_log(self) -> str:
        """tinyproxy's LogFile content."""
        try:
            return self.access_log.read_text(errors="replace")
        except OSError:
            return ""


def connect_via_proxy(
    proxy_host: str,
    proxy_port: int,
    target: str,
    *,
    auth: tuple[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, str, socket.socket | None]:
    """Send ``CONNECT target`` to a proxy; return (status, status line, open tunnel or None).

    The tunnel socket is returned only on a 2xx answer; the caller closes it.
    """
    sock = socket.create_connection((proxy_host, proxy_port), timeout=timeout)
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request += f"Proxy-Authorization: Basic {token}\r\n"
    sock.sendall((request + "\r\n").encode())
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        sock.close()
        raise
    status_line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split()
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    if 200 <= status < 300:
        return status, status_line, sock
    sock.close()
    return status, status_line, None
