"""Fake host roots holding real runtime configs that point at lab registries, planned by regtui's planners.

The pull and mirrors tests describe a setup once (registry names, mirrors, CA files) and get:

- a root with ``/etc/resolv.conf`` (``nameserver 127.0.0.1``: the resolver never falls back to
  this machine's resolver, which points off-host) and ``/etc/hosts`` mapping lab names;
- the runtime's own config: containerd ``config.toml`` + ``certs.d/<host>/hosts.toml`` (CA paths
  relative to the hosts dir, so ``ctr --hosts-dir`` can read the same directory), CRI-O's
  ``registries.conf`` (+ ``/etc/containers/certs.d``), or Docker's ``daemon.json`` + ``certs.d`` +
  root's ``~/.docker/config.json``;
- :func:`plan_context`: the route from regtui's real planner (``engine.plan``) and the probe context
  the engine would build (``engine.probe_context``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .containerd import toml_string

__all__ = ["write_root", "containerd_root", "crio_root", "docker_root", "plan_context", "LAB_CONTAINERD_VERSION"]

#: The containerd version plans assume (the lab's containerd is 1.6.x; hosts.toml rules are the same).
LAB_CONTAINERD_VERSION = "1.6.20"


def write_root(root: Path, files: Mapping[str, str | bytes] | None = None, hosts: Mapping[str, str] | None = None) -> Path:
    """resolv.conf, hosts (``name -> ip``) and ``files`` (host path -> content) under ``root``."""
    lines = ["127.0.0.1 localhost"] + [f"{ip} {name}" for name, ip in (hosts or {}).items()]
    content: dict[str, str | bytes] = {"/etc/resolv.conf": "nameserver 127.0.0.1\n",
                                       "/etc/hosts": "\n".join(lines) + "\n", **(files or {})}
    for host_path, data in content.items():
        target = root / host_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data)
    return root


def _host_table(url: str, entry: Mapping[str, Any]) -> list[str]:
    table = f"host.{toml_string(url)}"
    caps = entry.get("capabilities", ("pull", "resolve"))
    lines = ["", f"[{table}]", "  capabilities = [" + ", ".join(map(toml_string, caps)) + "]"]
    if entry.get("ca"):
        lines.append(f"  ca = {toml_string(str(entry['ca']))}")
    if "skip_verify" in entry:
        lines.append(f"  skip_verify = {'true' if entry['skip_verify'] else 'false'}")
    if entry.get("client"):
        cert, key = entry["client"]
        lines.append(f"  client = [[{toml_string(str(cert))}, {toml_string(str(key))}]]")
    return lines


def containerd_root(root: Path, registry_host: str, *, server: str, server_ca: Path | None = None,
                    mirrors: Sequence[Mapping[str, Any]] = (), hosts: Mapping[str, str] | None = None,
                    max_concurrent_downloads: int | None = None, auths: Mapping[str, tuple[str, str]] | None = None,
                    server_client: tuple[Path, Path] | None = None) -> Path:
    """containerd 1.6/1.7 config (``config_path``) and ``certs.d/<registry_host>/hosts.toml``.

    Without mirrors the server is also listed as a ``[host]`` (1.6/1.7 need one), so it appears
    twice in the route, as containerd tries it.

    ``mirrors``: ``{"url": ..., "ca": Path?, "skip_verify": bool?, "capabilities": [...]?}`` in order;
    CA files are copied next to hosts.toml and named relatively. ``auths``: ``configs.<host>.auth``.
    ``server_client``: a client certificate and key for the server (copied next to hosts.toml).
    Returns the hosts dir (for ``ctr --hosts-dir``).
    """
    hosts_dir = root / "etc/containerd/certs.d"
    directory = hosts_dir / registry_host
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"server = {toml_string(server)}"]
    if server_ca is not None:
        (directory / "server-ca.crt").write_bytes(Path(server_ca).read_bytes())
        lines.append('ca = "server-ca.crt"')
    server_entry: dict[str, Any] = {"ca": "server-ca.crt"} if server_ca is not None else {}
    if server_client is not None:
        (directory / "client.cert").write_bytes(Path(server_client[0]).read_bytes())
        (directory / "client.key").write_bytes(Path(server_client[1]).read_bytes())
        lines.append('client = [["client.cert", "client.key"]]')
        server_entry["client"] = ("client.cert", "client.key")
    for i, entry in enumerate(mirrors):
        entry = dict(entry)
        if entry.get("ca"):
            name = f"mirror-{i}-ca.crt"
            (directory / name).write_bytes(Path(entry["ca"]).read_bytes())
            entry["ca"] = name
        lines += _host_table(str(entry["url"]), entry)
    if not mirrors:
        # containerd 1.6/1.7 reject a hosts.toml without any [host] table ("invalid host tree"):
        # name the server itself, as k3s's generated files do.
        lines += _host_table(server, server_entry)
    (directory / "hosts.toml").write_text("\n".join(lines) + "\n")
    cri = '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
    if max_concurrent_downloads is not None:
        cri = f'[plugins."io.containerd.grpc.v1.cri"]\n  max_concurrent_downloads = {max_concurrent_downloads}\n' + cri
    for host, (user, password) in (auths or {}).items():
        cri += (f'[plugins."io.containerd.grpc.v1.cri".registry.configs.{toml_string(host)}.auth]\n'
                f"  username = {toml_string(user)}\n  password = {toml_string(password)}\n")
    write_root(root, {"/etc/containerd/config.toml": "version = 2\n" + cri}, hosts)
    return hosts_dir


def crio_root(root: Path, location: str, *, mirrors: Sequence[Mapping[str, Any]] = (), cas: Mapping[str, Path] | None = None,
              insecure: bool = False, hosts: Mapping[str, str] | None = None,
              auths: Mapping[str, tuple[str, str]] | None = None) -> Path:
    """``/etc/containers/registries.conf`` with one ``[[registry]]`` and its mirrors; CAs in ``/etc/containers/certs.d``.

    ``mirrors``: ``{"location": "host:port", "insecure": bool}``; ``cas``: host:port -> CA file;
    ``auths``: host -> (user, password) in the root-user auth file (``/run/containers/0/auth.json``).
    Returns the registries.conf path (for ``skopeo --registries-conf``).
    """
    lines = ["[[registry]]", f"location = {toml_string(location)}"]
    if insecure:
        lines.append("insecure = true")
    for m in mirrors:
        lines += ["", "[[registry.mirror]]", f"location = {toml_string(str(m['location']))}"]
        if m.get("insecure"):
            lines.append("insecure = true")
    files: dict[str, str | bytes] = {"/etc/containers/registries.conf": "\n".join(lines) + "\n"}
    for host_port, ca in (cas or {}).items():
        files[f"/etc/containers/certs.d/{host_port}/ca.crt"] = Path(ca).read_bytes()
    if auths:
        entries = {h: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for h, (u, p) in auths.items()}
        files["/run/containers/0/auth.json"] = json.dumps({"auths": entries})
    write_root(root, files, hosts)
    return root / "etc/containers/registries.conf"


def docker_root(root: Path, daemon_json: Mapping[str, Any] | None = None, *, cas: Mapping[str, Path] | None = None,
                auths: Mapping[str, tuple[str, str]] | None = None, hosts: Mapping[str, str] | None = None) -> Path:
    """``/etc/docker/daemon.json``, ``/etc/docker/certs.d/<host:port>/ca.crt`` and ``/root/.docker/config.json``."""
    files: dict[str, str | bytes] = {"/etc/docker/daemon.json": json.dumps(dict(daemon_json or {}), indent=2)}
    for host_port, ca in (cas or {}).items():
        files[f"/etc/docker/certs.d/{host_port}/ca.crt"] = Path(ca).read_bytes()
    if auths:
        entries = {h: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for h, (u, p) in auths.items()}
        files["/root/.docker/config.json"] = json.dumps({"auths": entries})
    return write_root(root, files, hosts)


def plan_context(root: Path, runtime: str, image: str, *, timeout: float = 2.0, concurrency: int | None = None,
                 platform: str | None = None, docker_store: str = "classic", dns_server: str | None = None) -> tuple[Any, Any]:
    """``(ctx, plan)``: regtui's real plan of ``image`` for ``runtime`` under ``root`` and the engine's probe context.

    ``dns_server`` (``127.0.0.1:PORT``, the lab dnsmasq) replaces the root's nameserver.
    """
    from regtui.engine import plan, probe_context
    from regtui.host import Host
    from regtui.options import CheckOptions

    options = CheckOptions(root=str(root), images=(image,), runtime=runtime, timeout=timeout, concurrency=concurrency,
                           platform=platform, docker_store=docker_store, containerd_version=LAB_CONTAINERD_VERSION,
                           dns_server=dns_server)
    p = plan(options, Host(root=root, environ={}))
    assert not p.errors, p.errors
    ctx = probe_context(p)
    assert all(ip.startswith("127.") for ip, _ in ctx.resolver.config.nameservers), "tests stay on loopback"
    return ctx, p
