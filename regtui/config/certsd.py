"""``certs.d/<host[:port]>/`` directories as dockerd and containers/image read them.

Rules (moby ``daemon/pkg/registry/registry.go loadTLSConfig``; containers/image
``pkg/tlsclientconfig SetupCertificates``; SEMANTICS §1.2, §3.4):

- the directory is named exactly ``host[:port]`` as written in the image reference; a missing
  directory is fine (system roots only);
- entries are read in name order; ``*.crt`` are CA certificates *appended to the system pool*
  (bytes without a PEM certificate are skipped silently by ``AppendCertsFromPEM``);
- ``*.cert`` is a client certificate and needs ``<same basename>.key`` next to it, and every
  ``*.key`` needs its ``.cert``; otherwise the lookup fails with the error quoted in evidence and
  the pull of that registry fails (dockerd stops at the first such entry);
- a file it cannot read (a dangling symbolic link, a directory named like a key, no permission) stops
  the lookup too, except a ``*.crt`` that does not exist, which containers/image skips with a warning;
- any other file name (``ca.pem``, ``ca.cer``, ``hosts.toml``...) is ignored by these readers.

:func:`misnamed_dirs` finds directories that were meant for a registry but will never be
looked up for it (``certs.d/myreg`` for ``myreg:5000/app``, ``certs.d/https:/myreg``...).
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field

from regtui.config._source import unreadable_finding
from regtui.findings import finding, fix
from regtui.host import FileText, Host
from regtui.model import Finding, SourceFile

__all__ = [
    "CertsDir",
    "read_certs_dir",
    "misnamed_dirs",
    "missing_key_error",
    "missing_cert_error",
    "HUB_DIR_ALIASES",
]

#: Names people give a Docker Hub certs directory; the runtimes look up only ``docker.io``.
HUB_DIR_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "hub.docker.com")
#: File extensions that hold certificates but that certs.d readers ignore.
_CERT_LIKE = (".pem", ".cer", ".der", ".ca", ".ca-bundle", ".crt.pem")
_PEM_CERT = "-----BEGIN CERTIFICATE-----"
_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_CONTAINERS_RUNTIMES = ("crio", "podman", "containers")
#: certs.d is re-read on every pull by dockerd and containers/image: a change needs no restart.
_RESTART = "none"


@dataclass
class CertsDir:
    """One ``certs.d/<host>`` directory as the runtime reads it."""

    path: str
    """Host path of the directory."""
    exists: bool = False
    ca_files: list[str] = field(default_factory=list)
    """``*.crt`` files (host paths), in the order read; appended to the system pool."""
    client_pairs: list[tuple[str, str]] = field(default_factory=list)
    """(``x.cert``, ``x.key``) pairs (host paths)."""
    ignored: list[str] = field(default_factory=list)
    """Files in the directory the runtime does not use (host paths)."""
    findings: list[Finding] = field(default_factory=list)
    source: SourceFile | None = None
    fatal: str = ""
    """The error the runtime stops at when it reads this directory (first in name order), or ``""``."""

    @property
    def usable(self) -> bool:
        """The runtime can build a TLS config from this directory."""
        return not self.fatal


def missing_key_error(runtime: str | None, key_name: str, cert_name: str) -> str:
    """The runtime's own message for a ``.cert`` without its ``.key``."""
    if runtime in _CONTAINERS_RUNTIMES:
        return (f"missing key {key_name} for client certificate {cert_name}. "
                "Note that CA certificates should use the extension .crt")
    return f"missing key {key_name} for client certificate {cert_name}. CA certificates must use the extension .crt"


def missing_cert_error(cert_name: str, key_name: str) -> str:
    """The runtime's own message for a ``.key`` without its ``.cert``."""
    return f"missing client certificate {cert_name} for key {key_name}"


def _who(runtime: str | None) -> str:
    return {"docker": "dockerd", "crio": "CRI-O", "podman": "podman"}.get(runtime or "", runtime or "the runtime")


def _first_pem_line(text: str, pattern: str | re.Pattern[str]) -> int | None:
    for n, line in enumerate(text.splitlines(), 1):
        if (pattern in line) if isinstance(pattern, str) else pattern.search(line):
            return n
    return None


def _pair_finding(runtime: str | None, present: str, wanted: str, message: str,
                  rename_to: str | None) -> Finding:
    """``config.invalid-value`` for half a client pair; the fix renames or adds the other half."""
    if rename_to:
        summary = f"rename {posixpath.basename(present)} to {posixpath.basename(rename_to)} (it is a CA certificate)"
        params = {"action": "rename", "from": present, "to": rename_to}
    else:
        summary = f"add {posixpath.basename(wanted)} next to {posixpath.basename(present)}, or remove {posixpath.basename(present)}"
        params = {"action": "add-or-remove", "present": present, "missing": wanted}
    return finding(
        "config.invalid-value", present,
        f"{present}: {message}",
        f"{_who(runtime)} reads {posixpath.dirname(present)} for every pull from this registry and stops at "
        f"this file with \"{message}\": the pull fails before any request is sent. A CA certificate must "
        "be named *.crt; a client certificate *.cert needs its *.key with the same base name.",
        evidence={"file": present, "line": 1, "value": posixpath.basename(present), "error": message,
                  "directory": posixpath.dirname(present)},
        runtime=runtime,
        fix=fix("config.invalid-value", present, summary, files=[present], restart=_RESTART,
                params=params),
    )


def _looks_like_ca(text: str) -> bool:
    """A PEM certificate with no private key: a CA someone named ``.cert``."""
    return _PEM_CERT in text and not _PEM_KEY.search(text)


def _permission_denied(host: Host, dir_path: str) -> bool:
    """Listing ``dir_path`` fails with EACCES/EPERM (what ``os.IsPermission`` tests in Go)."""
    try:
        os.listdir(host.resolve(dir_path))
    except PermissionError:
        return True
    except OSError:
        return False
    return False


def read_certs_dir(host: Host, dir_path: str, runtime: str | None) -> CertsDir:
    """Read ``dir_path`` (a ``certs.d/<host>`` directory) the way dockerd/containers/image do."""
    cd = CertsDir(dir_path)
    names = host.listdir(dir_path)
    if names is None:
        file = host.read(dir_path)
        if file.status == "missing":
            cd.source = SourceFile(dir_path, runtime or "", "certs.d directory", "missing",
                                   "absent: system roots only")
            return cd
        cd.exists = True
        if (file.status == "not-a-file" and file.error == "a directory") or file.status == "unreadable":
            error = file.error if file.status == "unreadable" else "directory cannot be listed"
            if runtime in _CONTAINERS_RUNTIMES and _permission_denied(host, dir_path):
                # SetupCertificates skips a directory it may not list (os.IsPermission): system roots only.
                cd.findings.append(unreadable_finding(FileText(dir_path, "unreadable", error=error), runtime))
                cd.source = SourceFile(dir_path, runtime or "", "certs.d directory", "unreadable",
                                       f"{error}: skipped by containers/image")
                return cd
            cd.fatal = f"open {dir_path}: {error}"
            cd.findings.append(unreadable_finding(FileText(dir_path, "unreadable", error=error), runtime))
            cd.source = SourceFile(dir_path, runtime or "", "certs.d directory", "unreadable", error)
            return cd
        cd.fatal = f"readdirent {dir_path}: not a directory"
        cd.findings.append(finding(
            "config.invalid-value", dir_path,
            f"{dir_path} is a file, not a directory",
            f"{_who(runtime)} lists {dir_path} for every pull from this registry; because it is not a "
            "directory the listing fails and so does the pull.",
            evidence={"file": dir_path, "line": None, "value": posixpath.basename(dir_path), "error": cd.fatal},
            runtime=runtime,
            fix=fix("config.invalid-value", dir_path, f"replace {dir_path} with a directory holding ca.crt",
                    files=[dir_path], kind="manual", params={"action": "make-directory", "path": dir_path}),
        ))
        cd.source = SourceFile(dir_path, runtime or "", "certs.d directory", "parse-error", cd.fatal)
        return cd

    cd.exists = True
    present = set(names)
    for name in names:
        path = posixpath.join(dir_path, name)
        if name.endswith(".crt"):
            _read_ca(host, cd, path, runtime)
        elif name.endswith(".cert"):
            key = name[: -len(".cert")] + ".key"
            if key not in present:
                message = missing_key_error(runtime, key, name)
                text = host.read(path).text
                rename = posixpath.join(dir_path, name[: -len(".cert")] + ".crt") if _looks_like_ca(text) else None
                cd.findings.append(_pair_finding(runtime, path, posixpath.join(dir_path, key), message, rename))
                cd.fatal = cd.fatal or message
                continue
            _check_pair(host, cd, path, posixpath.join(dir_path, key), runtime)
        elif name.endswith(".key"):
            cert = name[: -len(".key")] + ".cert"
            if cert not in present:
                message = missing_cert_error(cert, name)
                cd.findings.append(_pair_finding(runtime, path, posixpath.join(dir_path, cert), message, None))
                cd.fatal = cd.fatal or message
        elif host.is_file(path):
            cd.ignored.append(path)
            if name.lower().endswith(_CERT_LIKE) or name.endswith((".CRT", ".Crt")):
                cd.findings.append(_ignored_cert_finding(runtime, path))
    values = {"ca_files": list(cd.ca_files), "client_pairs": [list(p) for p in cd.client_pairs]}
    if cd.ignored:
        values["ignored"] = list(cd.ignored)
    status = "parse-error" if cd.fatal else "ok"
    cd.source = SourceFile(dir_path, runtime or "", "certs.d directory", status, cd.fatal, values)
    return cd


def _read_ca(host: Host, cd: CertsDir, path: str, runtime: str | None) -> None:
    file = host.read(path)
    if file.status == "not-a-file":
        message = f"read {path}: is a directory"
        cd.fatal = cd.fatal or message
        cd.findings.append(finding(
            "config.invalid-value", path, f"{path} is a directory named like a CA file",
            f"{_who(runtime)} reads every *.crt in {cd.path}; reading this one fails, and so does the pull.",
            evidence={"file": path, "line": None, "value": posixpath.basename(path), "error": message},
            runtime=runtime,
            fix=fix("config.invalid-value", path, f"move the certificate out of {path}", files=[path],
                    kind="manual", params={"action": "remove", "path": path}),
        ))
        return
    if file.status == "missing":
        # A dangling link: dockerd fails; containers/image skips the file (os.IsNotExist).
        _unreadable_cert(host, cd, path, file, runtime, role="CA file", fatal=runtime not in _CONTAINERS_RUNTIMES)
        return
    if not file.ok:
        cd.fatal = cd.fatal or f"open {path}: {file.error}"
        cd.findings.append(unreadable_finding(file, runtime))
        return
    cd.ca_files.append(path)
    if _PEM_CERT not in file.text:
        cd.findings.append(finding(
            "config.invalid-value", path,
            f"{path} holds no PEM certificate: it is silently ignored",
            f"{_who(runtime)} appends the PEM certificates of every *.crt to the system pool and skips "
            "anything else without a word (a DER file, a key, an empty file). This CA is therefore not "
            "trusted, and pulls fail with 'x509: certificate signed by unknown authority'.",
            evidence={"file": path, "line": 1, "value": posixpath.basename(path),
                      "error": "no -----BEGIN CERTIFICATE----- block"},
            severity="warning",
            runtime=runtime,
            fix=fix("config.invalid-value", path, f"convert {posixpath.basename(path)} to PEM "
                    "(openssl x509 -inform der -in FILE -out FILE.crt)", files=[path], kind="command",
                    params={"action": "convert-pem", "path": path,
                            "command": f"openssl x509 -inform der -in {path} -out {path}"}),
        ))


def _go_read_error(path: str, file: FileText) -> str:
    """What Go's ``os.ReadFile`` says for a file :meth:`Host.read` could not read."""
    if file.status == "missing":
        return f"open {path}: no such file or directory"
    if file.status == "not-a-file" and file.error == "a directory":
        return f"read {path}: is a directory"
    return f"open {path}: {(file.error or 'input/output error').lower()}"


def _link_target(host: Host, path: str) -> str | None:
    """The target of ``path`` when it is a symbolic link (as written), else ``None``."""
    return host.readlink(path)


def _unreadable_cert(host: Host, cd: CertsDir, path: str, file: FileText, runtime: str | None, *,
                     role: str, fatal: bool) -> None:
    """``tls.cert-file-unreadable`` for a certs.d file the runtime cannot read (dangling link, directory, EACCES).

    dockerd (moby ``registry.loadTLSConfig``) stops at any such file; containers/image
    (``tlsclientconfig.SetupCertificates``) stops at a client certificate or key and skips a ``*.crt``
    that does not exist (a dangling link) with a warning in its log.
    """
    message = _go_read_error(path, file)
    link = _link_target(host, path)
    what = "is a symbolic link to a missing file" if file.status == "missing" and link else (
        "does not exist" if file.status == "missing" else
        "is a directory" if file.status == "not-a-file" and file.error == "a directory" else
        f"cannot be read ({file.error})")
    if fatal:
        cd.fatal = cd.fatal or message
        impact = (f"{_who(runtime)} reads {cd.path} for every pull from this registry and stops at this file "
                  f"with \"{message}\": every pull from it fails before any request is sent.")
    else:
        impact = (f"containers/image skips a {role} that does not exist (\"error reading certificate\" in its log) "
                  "and goes on without it: its CA is not trusted. dockerd, reading the same directory, fails the pull.")
    evidence: dict[str, object] = {"file": path, "line": None, "value": posixpath.basename(path), "error": message,
                                   "directory": cd.path, "host": posixpath.basename(cd.path), "role": role}
    if link is not None:
        evidence["symlink_target"] = link
    cd.findings.append(finding(
        "tls.cert-file-unreadable", path,
        f"{path} {what}: " + (f"no pull can use {posixpath.basename(cd.path)}" if fatal else "it is skipped"),
        impact + " Point the link at the real file, or remove the entry (and its partner) if it is not needed.",
        evidence=evidence,
        severity="error" if fatal else "warning",
        runtime=runtime,
        fix=fix("tls.cert-file-unreadable", path, f"restore {posixpath.basename(path)} or remove it",
                files=[path], kind="manual", restart=_RESTART, params={"action": "restore-or-remove", "path": path}),
    ))


def _check_pair(host: Host, cd: CertsDir, cert: str, key: str, runtime: str | None) -> None:
    """``tls.LoadX509KeyPair`` reads the .cert, then the .key, and needs a certificate and a key block in them."""
    cert_file, key_file = host.read(cert), host.read(key)
    for path, file, role in ((cert, cert_file, "client certificate"), (key, key_file, "client key")):
        if file.status in ("missing", "not-a-file", "unreadable"):
            _unreadable_cert(host, cd, path, file, runtime, role=role, fatal=True)
            return
    problem = ""
    where = cert
    if cert_file.ok and _PEM_CERT not in cert_file.text:
        problem = "tls: failed to find any PEM data in certificate input"
    elif key_file.ok and not _PEM_KEY.search(key_file.text):
        problem, where = "tls: failed to find any PEM data in key input", key
    if not problem:
        cd.client_pairs.append((cert, key))
        return
    cd.fatal = cd.fatal or problem
    cd.findings.append(finding(
        "config.invalid-value", where,
        f"{where}: {problem}",
        f"{_who(runtime)} loads {posixpath.basename(cert)} and {posixpath.basename(key)} as a client "
        "certificate pair for every pull from this registry; loading fails, and so does the pull.",
        evidence={"file": where, "line": 1, "value": posixpath.basename(where), "error": problem},
        runtime=runtime,
        fix=fix("config.invalid-value", where, f"replace {posixpath.basename(where)} with the PEM file",
                files=[where], kind="manual", params={"action": "replace", "path": where}),
    ))


def _ignored_cert_finding(runtime: str | None, path: str) -> Finding:
    base = posixpath.basename(path)
    stem = base.rsplit(".", 1)[0] if "." in base else base
    target = posixpath.join(posixpath.dirname(path), stem + ".crt")
    return finding(
        "config.invalid-value", path,
        f"{path} is ignored: CA files in certs.d must end in .crt",
        f"{_who(runtime)} reads only *.crt (CA), *.cert and *.key (client pair) from "
        f"{posixpath.dirname(path)}; {base} is never loaded, so the registry's certificate is checked "
        "against the system roots only.",
        evidence={"file": path, "line": None, "value": base},
        severity="warning",
        runtime=runtime,
        fix=fix("config.invalid-value", path, f"rename {base} to {posixpath.basename(target)}",
                files=[path], params={"action": "rename", "from": path, "to": target}),
    )


# -- misnamed directories ---------------------------------------------------------------------

_SCHEME_DIR = re.compile(r"^(https?):?$", re.IGNORECASE)
_CONTAINERD_PORT_DIR = re.compile(r"^(?P<host>.+)_(?P<port>\d+)_$")


def _split_port(name: str) -> tuple[str, str]:
    """``host``, ``port`` of ``host[:port]`` (IPv6 in brackets kept whole)."""
    if name.startswith("["):
        end = name.find("]")
        if end != -1:
            rest = name[end + 1:]
            return name[: end + 1], rest[1:] if rest.startswith(":") else ""
    if name.count(":") == 1:
        h, p = name.split(":")
        return h, p
    return name, ""


def _bare_host(name: str) -> str:
    """Host part of a directory name, lowercased, without scheme, port, ``_port_`` or trailing dot."""
    n = name.strip().lower()
    for prefix in ("https:", "http:"):
        if n.startswith(prefix):
            n = n[len(prefix):].lstrip("/")
    m = _CONTAINERD_PORT_DIR.match(n)
    if m:
        n = m.group("host")
    n, _ = _split_port(n)
    return n.rstrip(".")


def _hub_aliases(registry_host: str) -> tuple[str, ...]:
    return HUB_DIR_ALIASES if registry_host == "docker.io" else ()


def _misnamed(base_dir: str, found: str, registry_host: str, runtime: str | None, why: str) -> Finding:
    target = posixpath.join(base_dir, registry_host)
    return finding(
        "config.hosts-dir-misnamed", found,
        f"{found} is never read for {registry_host}: the directory must be named {registry_host}",
        f"{_who(runtime)} looks up exactly {target} for images named {registry_host}/... ({why}). "
        f"Certificates in {found} are not used, so TLS to {registry_host} is checked against the system "
        "roots only (x509: certificate signed by unknown authority), and a client certificate is not sent.",
        evidence={"file": found, "line": None, "value": posixpath.basename(found), "expected": target,
                  "registry": registry_host},
        runtime=runtime,
        fix=fix("config.hosts-dir-misnamed", found, f"rename {found} to {target}", files=[found, target],
                restart=_RESTART, params={"action": "rename", "from": found, "to": target}),
    )


def _near_miss_reason(name: str, registry_host: str) -> str | None:
    """Why ``name`` looks meant for ``registry_host`` but is not its exact name; ``None`` if unrelated."""
    if name == registry_host:
        return None
    if name in _hub_aliases(registry_host):
        return "Docker Hub's directory is docker.io, whatever host serves the API"
    if _bare_host(name) != _bare_host(registry_host):
        return None
    want_host, want_port = _split_port(registry_host)
    low = name.lower()
    if low.startswith(("https:", "http:")):
        return "the directory name must not contain a scheme"
    if _CONTAINERD_PORT_DIR.match(name):
        return "the host_port_ form is containerd's hosts.toml convention, not this runtime's"
    got_host, got_port = _split_port(name)
    if got_port != want_port:
        if not want_port:
            return f"the image name has no port, the directory says :{got_port}"
        if not got_port:
            return f"the image name has port {want_port}; the directory must say :{want_port} too"
        return f"the image name has port {want_port}, the directory :{got_port}"
    if got_host.rstrip(".") != got_host:
        return "the directory name has a trailing dot"
    return "the directory name differs in letter case"


def misnamed_dirs(host: Host, base_dir: str, registry_host: str, *, runtime: str | None = None,
                  accepted: tuple[str, ...] = ()) -> list[Finding]:
    """``config.hosts-dir-misnamed`` for directories under ``base_dir`` meant for ``registry_host``.

    ``accepted`` names other directory names the runtime does look up for this registry (containerd's
    ``host_port_`` form, ``_default``); when one of them or the exact name exists, a near miss is a
    directory for another registry (``myreg`` next to ``myreg:5000``), not a mistake.
    Also found: ``base_dir/https:/<host>`` (what ``mkdir -p certs.d/https://host`` creates) and
    certificates one level too deep (``certs.d/<host>/<path>/ca.crt``).
    """
    names = host.listdir(base_dir)
    if not names:
        return []
    out: list[Finding] = []
    wanted = {registry_host, *accepted}
    exact_exists = any(n in wanted and host.is_dir(posixpath.join(base_dir, n)) for n in names)
    for name in names:
        path = posixpath.join(base_dir, name)
        if not host.is_dir(path):
            continue
        if _SCHEME_DIR.match(name):
            for sub in host.listdir(path) or []:
                subpath = posixpath.join(path, sub)
                if host.is_dir(subpath) and _bare_host(sub) == _bare_host(registry_host) and not exact_exists:
                    out.append(_misnamed(base_dir, subpath, registry_host, runtime,
                                         "the directory name must not contain a scheme; "
                                         f"'mkdir -p {base_dir}/{name}//{sub}' created {subpath}"))
            continue
        if name in wanted:
            out += _nested_certs(host, base_dir, path, registry_host, runtime)
            continue
        if exact_exists:
            continue
        reason = _near_miss_reason(name, registry_host)
        if reason:
            out.append(_misnamed(base_dir, path, registry_host, runtime, reason))
    return out


def _has_cert_files(host: Host, path: str) -> bool:
    return any(n.endswith((".crt", ".cert", ".key", ".pem")) or n == "hosts.toml" for n in host.listdir(path) or [])


def _nested_certs(host: Host, base_dir: str, path: str, registry_host: str, runtime: str | None) -> list[Finding]:
    """Certificates in a subdirectory of the right directory (``mkdir -p certs.d/host:5000/v2``)."""
    if _has_cert_files(host, path):
        return []
    out = []
    for sub in host.listdir(path) or []:
        subpath = posixpath.join(path, sub)
        if host.is_dir(subpath) and _has_cert_files(host, subpath):
            out.append(finding(
                "config.hosts-dir-misnamed", subpath,
                f"{subpath} is never read: certificates must sit directly in {path}",
                f"{_who(runtime)} reads only the files directly inside {path}; the runtime does not descend "
                f"into {sub}/, so its certificates are not used for {registry_host}.",
                evidence={"file": subpath, "line": None, "value": sub, "expected": path, "registry": registry_host},
                runtime=runtime,
                fix=fix("config.hosts-dir-misnamed", subpath, f"move the files of {subpath} up into {path}",
                        files=[subpath, path], params={"action": "move-contents", "from": subpath, "to": path}),
            ))
    return out
