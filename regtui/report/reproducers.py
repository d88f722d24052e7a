"""Shell commands that reproduce, outside regtui, what a runtime does against one endpoint.

They go into reports (one set per failing endpoint) and the workbench's copy key. Each command
carries the endpoint's own inputs: its proxy, its CA files, its TLS verification, the runtime's
hosts directory. Secrets never appear: a proxy's credentials become ``USER:PASSWORD`` and
registry credentials ``--creds USER:PASSWORD`` placeholders the engineer fills in, so a command
pasted into a ticket is safe and still runs once the placeholders are replaced.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from regtui import redact

__all__ = ["Copyable", "PLACEHOLDER", "endpoint_reproducers", "finding_reproducers", "failing_endpoints", "hosts_dir"]

#: The manifest types a runtime accepts (containerd's resolver sends these and ``*/*``); asking for
#: fewer makes a registry answer 404 for an image stored as another type.
ACCEPT = ("application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
          "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, */*")

#: What stands for a secret in a reproducer command.
PLACEHOLDER = "USER:PASSWORD"


@dataclass(frozen=True)
class Copyable:
    """A command with a label (``curl registry:5000``) for lists and notifications."""

    label: str
    text: str


def _host_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
    except ValueError:  # an unbalanced IPv6 bracket
        return "", 443 if url.startswith("https://") else 80
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or (443 if parts.scheme == "https" else 80)


def _proxy_with_placeholder(proxy: str) -> str:
    """The proxy URL with its (already masked) credentials as the placeholder."""
    return re.sub(r"^([a-z0-9+.-]+://)[^/@]*@", lambda m: f"{m.group(1)}{PLACEHOLDER}@", proxy, flags=re.I)


def _tag(image: str) -> str:
    if "@" in image:
        return image.rsplit("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def endpoint_reproducers(ep: Mapping[str, Any], image: str = "", runtime: str = "",
                         hosts_dir: str = "") -> list[Copyable]:
    """curl, openssl s_client, skopeo, and the runtime's own pull (ctr, crictl, docker) for one endpoint."""
    # Every value taken from the report passes the redaction policy first; only then are masked
    # credentials turned into placeholders (a final redaction pass would mask the placeholders too).
    url = redact.text(str(ep.get("url", "")))
    if not url:
        return []
    host, port = _host_port(url)
    tls = redact.value(dict(ep.get("tls") or {}))
    proxy = _proxy_with_placeholder(redact.text(str(ep["proxy"]))) if ep.get("proxy") else ""
    image = redact.text(image)
    hosts_dir = redact.text(hosts_dir)
    creds = bool(ep.get("credentials"))
    https = url.startswith("https://")
    verify = bool(tls.get("verify", True))
    curl = ["curl", "-v", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}s\\n"]
    curl += ["--proxy", proxy] if proxy else ["--noproxy", "*"]
    if https and not verify:
        curl.append("-k")
    for ca in tls.get("ca_files") or []:
        curl += ["--cacert", str(ca)]
    client = list(tls.get("client_cert") or [])
    if len(client) == 2:
        curl += ["--cert", str(client[0]), "--key", str(client[1])]
    if creds:
        curl += ["-u", PLACEHOLDER]
    repo = str(ep.get("repository") or "")
    tag = _tag(image)
    target = f"{url.rstrip('/')}/{repo}/manifests/{tag}" if repo and tag else f"{url.rstrip('/')}/"
    if ep.get("query") and repo and tag:
        target += f"?{ep['query']}"
    curl += ["-H", f"Accept: {ACCEPT}", target]
    out = [Copyable(f"curl {host}", shlex.join(curl))]
    if https:
        s_client = ["openssl", "s_client", "-connect", f"{host}:{port}", "-servername", host, "-showcerts"]
        if proxy:
            phost, pport = _host_port(proxy)
            s_client += ["-proxy", f"{phost}:{pport}"]
            if PLACEHOLDER in proxy:
                s_client += ["-proxy_user", "USER", "-proxy_pass", "pass:PASSWORD"]
        for ca in tls.get("ca_files") or []:
            s_client += ["-CAfile", str(ca)]
        out.append(Copyable(f"openssl s_client {host}", shlex.join(s_client) + " </dev/null"))
    env = ["env", f"HTTPS_PROXY={proxy}", f"HTTP_PROXY={proxy}"] if proxy else []
    if repo:
        netloc = re.split(r"[/?#]", url.split("://", 1)[-1], maxsplit=1)[0].rsplit("@", 1)[-1]
        ref = f"{netloc}/{repo}" + (f"@{tag}" if tag.startswith("sha256:") else f":{tag or 'latest'}")
        skopeo = [*env, "skopeo", "inspect", "--raw"]
        if not https or not verify:
            skopeo.append("--tls-verify=false")
        else:
            # skopeo takes CAs (*.crt) and a client pair from one directory: the one holding the endpoint's files.
            dirs = {posixpath.dirname(str(f)) for f in [*(tls.get("ca_files") or []), *client]}
            if len(dirs) == 1:
                skopeo += ["--cert-dir", dirs.pop()]
        if creds:
            skopeo += ["--creds", PLACEHOLDER]
        out.append(Copyable(f"skopeo inspect {netloc}", shlex.join(skopeo + [f"docker://{ref}"])))
        image_ref = image or ref
        if runtime in ("containerd", "k3s"):
            ctr = [*env, "ctr", "images", "pull"]
            if hosts_dir:
                ctr += ["--hosts-dir", hosts_dir]
            if creds:
                ctr += ["--user", PLACEHOLDER]
            if not https:
                ctr.append("--plain-http")
            out.append(Copyable(f"ctr images pull {netloc}", shlex.join(ctr + [_qualified(image_ref)])))
        if runtime in ("containerd", "crio", "k3s"):
            crictl = ["crictl", "pull"] + (["--creds", PLACEHOLDER] if creds else [])
            out.append(Copyable(f"crictl pull {netloc}", shlex.join(crictl + [image_ref])))
        if runtime == "docker":
            out.append(Copyable(f"docker pull {netloc}", shlex.join(["docker", "pull", image_ref])))
    return out


def _qualified(image: str) -> str:
    """``ctr`` takes only fully qualified references (``docker.io/library/alpine:3``)."""
    first = image.split("/", 1)[0]
    if "/" not in image or ("." not in first and ":" not in first and first != "localhost"):
        image = f"docker.io/{image if '/' in image else 'library/' + image}"
    last = image.rsplit("/", 1)[-1]
    return image if ("@" in image or ":" in last) else f"{image}:latest"


def hosts_dir(data: Mapping[str, Any], runtime: str) -> str:
    """The hosts directory ``ctr --hosts-dir`` is given for ``runtime`` (its configured ``config_path``), or ``""``."""
    config = (data.get("runtime_config") or {}).get(runtime) or {}
    value = config.get("config_path") or config.get("hosts_dir") or ""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return str(value).split(":", 1)[0] if value else ""


def failing_endpoints(data: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(runtime, image, endpoint)`` for every endpoint a route marks failed, each identity once."""
    seen: set[tuple[Any, ...]] = set()
    out: list[tuple[str, str, dict[str, Any]]] = []
    for route in data.get("routes") or []:
        for ep in route.get("endpoints") or []:
            if ep.get("status") != "failed":
                continue
            tls = ep.get("tls") or {}
            key = (route.get("runtime"), ep.get("url"), tuple(tls.get("ca_files") or ()), tls.get("verify"),
                   ep.get("proxy"), bool(ep.get("credentials")))
            if key not in seen:
                seen.add(key)
                out.append((str(route.get("runtime") or ""), str(route.get("image") or ""), ep))
    return out


def _endpoint_for(data: Mapping[str, Any], f: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str, str]:
    ev = f.get("evidence") or {}
    want_url = ev.get("endpoint") or ev.get("url") or next(iter(ev.get("endpoints") or []), None)
    subject = str(f.get("subject", ""))
    for route in data.get("routes", []):
        if f.get("runtime") and route.get("runtime") != f.get("runtime"):
            continue
        for ep in route.get("endpoints", []):
            if (want_url and ep.get("url") == want_url) or ep.get("host") == subject:
                return ep, str(route.get("image", "")), str(route.get("runtime", ""))
    return None, "", ""


def finding_reproducers(data: Mapping[str, Any], f: Mapping[str, Any]) -> list[Copyable]:
    """Reproducer commands for a finding: the endpoint's commands, or a panel-specific one first."""
    ep, image, runtime = _endpoint_for(data, f)
    out = endpoint_reproducers(ep, image, runtime, hosts_dir(data, runtime)) if ep else []
    ev = f.get("evidence") or {}
    panel = f.get("panel")
    if panel == "dns":
        name = str(ev.get("host") or ev.get("name") or f.get("subject", "")).rsplit(":", 1)[0]
        server = ev.get("server")
        cmd = ["dig"] + ([f"@{str(server).rsplit(':', 1)[0]}"] if server else []) + [name]
        out.insert(0, Copyable(f"dig {name}", redact.text(shlex.join(cmd))))
    elif panel == "clock":
        server = str(ev.get("server") or "pool.ntp.org")
        out.insert(0, Copyable(f"query {server}", redact.text(shlex.join(["chronyc", "-n", "sources", "-v"]) + " ; "
                               + shlex.join(["ntpdate", "-q", server.rsplit(":", 1)[0]]))))
    elif panel == "config" and ev.get("file"):
        line = ev.get("line")
        cmd = ["sed", "-n", f"{max(1, int(line) - 3)},{int(line) + 3}p", str(ev["file"])] if isinstance(line, int) \
            else ["cat", str(ev["file"])]
        out.insert(0, Copyable(f"show {ev['file']}", redact.text(shlex.join(cmd))))
    return out
