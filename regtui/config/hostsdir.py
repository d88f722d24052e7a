"""containerd's hosts directories (``certs.d/<host>/hosts.toml``), looked up exactly as
containerd's ``ConfigureHosts`` and ``hostDirFromRoots`` do (``core/remotes/docker/config/hosts.go``,
``config_unix.go``). Parsing one ``hosts.toml`` is in :mod:`regtui.config.hoststoml`.

Used for the CRI (``config_path``), for dockerd's containerd image store (``/etc/docker/certs.d``)
and for k3s (its generated ``certs.d``). The rules (SEMANTICS §2.3):

- Directory lookup per root, first existing wins: ``host_port_`` (only when the namespace has a
  port), ``host:port``, ``_default``. Roots are tried in order and each root's ``_default`` is
  tried before the next root, so ``root1/_default`` beats ``root2/<host>``.
- An absent or zero-byte ``hosts.toml`` means cert-file mode: ``*.crt`` are CAs, ``*.cert`` client
  certificates with an optional same-name ``*.key``; so does a ``hosts.toml`` that does not decode.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from regtui.config._source import Parsed, read_toml
from regtui.config.hoststoml import (
    DECODE_FALLBACK,
    K3S_HEADER,
    ROOT_FIELDS,
    HostEntry,
    HostRules,
    HostSpec,
    HostsProblem,
    default_entry,
    document_problems,
    host_entry,
    host_rules,
    ignored_key_findings,
    locate_parse_error,
    problem_finding,
    root_only_warning,
    split_host_port,
    table_order,
)
from regtui.findings import finding, fix
from regtui.host import FileText, Host
from regtui.model import Finding, SourceFile

__all__ = [
    "HostsResolution",
    "resolve_hosts",
    "read_hosts_dir",
    "dir_namespace",
    "host_paths",
    "host_directory",
    "misnamed_dirs",
    "existing_host_dirs",
]

_DEFAULT_DIR = "_default"


@dataclass
class HostsResolution:
    """What containerd resolves for one namespace (registry host) over a list of roots."""

    namespace: str
    entries: list[HostEntry] = field(default_factory=list)
    dir: str | None = None
    """The hosts directory used (host path), or ``None`` when none exists."""
    mode: str = "default"
    """``hosts.toml``, ``cert-files`` (no or empty hosts.toml, or one that failed) or ``default``."""
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    generated_by_k3s: bool = False
    """The hosts.toml starts with k3s's generated-file header."""
    hosts_file: str | None = None
    """Host path of the hosts.toml read (present or not)."""
    fell_back: bool = False
    """A hosts.toml exists but containerd discards it and uses cert-file mode."""
    candidates: list[str] = field(default_factory=list)
    """Directories looked for, in containerd's order, up to the one found."""
    fatal: str = ""
    """Why containerd fails every pull from this namespace (unreadable CA or client file), or ``""``."""

    @property
    def specific(self) -> bool:
        """A namespace-specific dir (not ``_default``) was found."""
        return self.dir is not None and posixpath.basename(self.dir) != _DEFAULT_DIR


# -- naming ---------------------------------------------------------------------------------------

def host_directory(host: str) -> str:
    """containerd's ``hostDirectory``: ``myreg:5000`` becomes ``myreg_5000_`` (last colon only)."""
    idx = host.rfind(":")
    if idx > 0:
        return f"{host[:idx]}_{host[idx + 1:]}_"
    return host


def host_paths(root: str, namespace: str) -> list[str]:
    """Directories containerd checks under one root, in order (``config_unix.go hostPaths``)."""
    paths: list[str] = []
    converted = host_directory(namespace)
    if converted != namespace:
        paths.append(posixpath.join(root, converted))
    paths += [posixpath.join(root, namespace), posixpath.join(root, _DEFAULT_DIR)]
    return paths


# -- the resolution -------------------------------------------------------------------------------

def resolve_hosts(host: Host, roots: list[str], namespace: str, runtime: str, *,
                  containerd_version: tuple[int, ...] | None = None, default_tls: bool = False,
                  accept_rewrite: bool = False) -> HostsResolution:
    """What containerd (``ConfigureHosts`` + ``hostDirFromRoots``) resolves for ``namespace``.

    ``roots`` are host paths in order (CRI ``config_path`` split on ``:``, or one dir for
    dockerd/ctr). ``containerd_version`` selects version-specific parsing (before 2.0 a hosts.toml
    without any ``[host]`` table is rejected); ``default_tls`` is true when the caller configures
    TLS for every host (dockerd does), which turns on the HTTPS-first fallback for ``http://``
    hosts. ``accept_rewrite`` allows k3s's ``rewrite`` tables (its patched containerd reads them).
    """
    candidates: list[str] = []
    found: str | None = None
    for root in roots:
        if not root:
            continue
        for candidate in host_paths(root, namespace):
            candidates.append(candidate)
            if host.exists(candidate):
                found = candidate
                break
        if found:
            break
    if found is None:
        res = HostsResolution(namespace=namespace, candidates=candidates)
        res.entries = [default_entry(namespace, HostSpec("", {}, "", None), "", host_rules(containerd_version, default_tls),
                                      f"default (no hosts dir for {namespace})")]
        return res
    res = read_hosts_dir(host, found, namespace, runtime, containerd_version=containerd_version,
                         default_tls=default_tls, accept_rewrite=accept_rewrite)
    res.candidates = candidates
    return res


def read_hosts_dir(host: Host, directory: str, namespace: str, runtime: str, *,
                   containerd_version: tuple[int, ...] | None = None, default_tls: bool = False,
                   accept_rewrite: bool = False) -> HostsResolution:
    """``loadHostDir`` + ``ConfigureHosts`` for one known directory (see :func:`resolve_hosts`)."""
    res = HostsResolution(namespace=namespace, dir=directory, candidates=[directory])
    if not host.is_dir(directory):
        res.findings.append(_not_a_dir(directory, runtime))
        res.fatal = f"{directory} is not a directory"
        res.entries = [default_entry(namespace, HostSpec("", {}, "", None), "", host_rules(containerd_version, default_tls),
                                      f"default ({directory} is not a directory)")]
        return res
    res.hosts_file = posixpath.join(directory, "hosts.toml")
    _load_dir(host, res, runtime, containerd_version, host_rules(containerd_version, default_tls), accept_rewrite)
    return res


def dir_namespace(name: str) -> str:
    """The namespace a hosts dir name serves (``myreg_5000_`` is ``myreg:5000``); ``_default`` stays."""
    m = re.match(r"^(.*)_(\d+)_$", name)
    return f"{m.group(1)}:{m.group(2)}" if m else name


def _not_a_dir(path: str, runtime: str) -> Finding:
    return finding(
        "config.invalid-value", path, f"{path} exists but is not a directory",
        "containerd picks this path as the hosts directory, then fails to read hosts.toml inside it, so every "
        "pull from this registry fails.",
        evidence={"file": path, "line": 1, "value": path},
        fix=fix("config.invalid-value", path, f"remove {path} or replace it with a directory", files=[path],
                params={"path": path, "action": "remove-or-mkdir"}),
        runtime=runtime,
    )


def _load_dir(host: Host, res: HostsResolution, runtime: str, version: tuple[int, ...] | None,
              rules: HostRules, accept_rewrite: bool) -> None:
    assert res.dir is not None and res.hosts_file is not None
    path = res.hosts_file
    file = host.read(path)
    if file.status == "missing" or (file.ok and len(file.data) == 0):
        detail = "absent" if file.status == "missing" else "empty (zero bytes)"
        res.sources.append(SourceFile(path, runtime, "hosts.toml", "missing" if file.status == "missing" else "ok",
                                      f"hosts.toml {detail}: cert-file mode"))
        _cert_files(host, res, runtime, rules, f"default (cert files in {res.dir})")
        return
    if not file.ok and file.status != "missing":
        parsed = read_toml(host, path, runtime)
        res.findings += parsed.findings
        res.sources.append(SourceFile(path, runtime, "hosts.toml", "unreadable", file.error))
        res.fatal = f"{path} cannot be read ({file.error})"
        res.entries = [default_entry(res.namespace, HostSpec("", {}, "", None), res.dir, rules,
                                      f"default ({path} unreadable)")]
        res.mode = "default"
        return
    res.generated_by_k3s = file.text.lstrip("\ufeff").startswith(K3S_HEADER)
    parsed = locate_parse_error(read_toml(host, path, runtime, what=DECODE_FALLBACK), runtime, DECODE_FALLBACK)
    if not parsed.ok:
        res.findings += parsed.findings
        res.fell_back = True
        res.sources.append(parsed.source(runtime, "hosts.toml",
                                         f"does not parse; containerd uses cert files from {res.dir}"))
        _cert_files(host, res, runtime, rules, f"default (cert files in {res.dir}: {path} failed to decode)")
        return
    data = parsed.data if isinstance(parsed.data, dict) else {}
    problems = document_problems(data, version)
    if version is not None and version < (2, 0) and "host" not in data:
        problems.append(HostsProblem((), "invalid `host` tree: containerd before 2.0 needs a [host.\"...\"] table"))
    if problems:
        res.findings += [problem_finding(parsed, p, runtime) for p in problems]
        res.fell_back = True
        res.sources.append(parsed.source(runtime, "hosts.toml",
                                         f"rejected by containerd ({problems[0].message}); cert files used"))
        _cert_files(host, res, runtime, rules, f"default (cert files in {res.dir}: {path} rejected)")
        return
    res.findings += ignored_key_findings(parsed, data, runtime, accept_rewrite or res.generated_by_k3s)
    if version is None and "host" not in data and any(k in data for k in ROOT_FIELDS):
        res.findings.append(root_only_warning(parsed, runtime))
    res.mode = "hosts.toml"
    _hosts_file_entries(host, res, parsed, data, runtime, rules)

def _hosts_file_entries(host: Host, res: HostsResolution, parsed: Parsed, data: dict[str, Any], runtime: str,
                        rules: HostRules) -> None:
    assert res.dir is not None
    hosts = data.get("host") if isinstance(data.get("host"), dict) else {}
    specs = [HostSpec(name, hosts.get(name, {}), f"{parsed.path}:{line}", line)
             for name, line in table_order(parsed.file.text)]
    server = data.get("server", "")
    root_source = parsed.where("server") if server else f"default (no server in {parsed.path})"
    specs.append(HostSpec(server, data, root_source, parsed.line("server") if server else None))
    entries: list[HostEntry] = []
    for spec in specs[:-1]:
        entries.append(host_entry(res.namespace, spec, res.dir, rules, default_upstream=False))
    root = specs[-1]
    if root.server:
        entries.append(host_entry(res.namespace, root, res.dir, rules, default_upstream=True))
    else:
        entries.append(default_entry(res.namespace, root, res.dir, rules, root.source))
    res.entries = entries
    res.findings += _file_checks(host, res, parsed, specs, runtime)
    res.findings += _unused_cert_files(host, res, parsed, runtime)
    res.sources.append(parsed.source(runtime, "hosts.toml", values={
        "server": server or None,
        "hosts": [e.url for e in entries[:-1]],
        "default": entries[-1].url if res.namespace != _DEFAULT_DIR else "(each registry's own upstream)",
        "generated_by_k3s": res.generated_by_k3s,
    }))

def _cert_files(host: Host, res: HostsResolution, runtime: str, rules: HostRules, source: str) -> None:
    """``loadCertFiles``: ``*.crt`` CAs and ``*.cert`` (+ ``*.key``) client pairs for the default host."""
    assert res.dir is not None
    names = host.listdir(res.dir) or []
    cas = tuple(p for p in (posixpath.join(res.dir, n) for n in names if n.endswith(".crt")) if host.is_file(p))
    pairs = []
    for n in names:
        if n.endswith(".cert") and host.is_file(posixpath.join(res.dir, n)):
            key = posixpath.join(res.dir, n[:-5] + ".key")
            pairs.append((posixpath.join(res.dir, n), key if host.exists(key) else ""))
    res.mode = "cert-files"
    res.entries = [default_entry(res.namespace, HostSpec("", {}, "", None), res.dir, rules, source,
                                  ca_files=cas or None, client_pairs=tuple(pairs))]
    res.sources.append(SourceFile(res.dir, runtime, "certs dir", "ok", "cert-file mode",
                                  {"ca": list(cas), "client": [list(p) for p in pairs]}))
    for f in _tls_file_findings(host, res, cas, tuple(pairs), None, runtime):
        res.findings.append(f)


def _unused_cert_files(host: Host, res: HostsResolution, parsed: Parsed, runtime: str) -> list[Finding]:
    """``*.crt`` files next to a hosts.toml that no ``ca`` names: in hosts.toml mode containerd ignores them."""
    assert res.dir is not None
    named = {ca for e in res.entries for ca in e.ca_files}
    unused = [p for p in host.glob(res.dir, ".crt") if p not in named]
    if not unused:
        return []
    names = [posixpath.basename(p) for p in unused]
    return [finding(
        "config.ignored-key", parsed.path, f"{', '.join(names)} in {res.dir} not used: hosts.toml names no such ca",
        "With a hosts.toml in the directory, containerd reads only the CA and client files the file names; "
        "*.crt/*.cert files next to it are loaded only in cert-file mode (no hosts.toml).",
        evidence={"file": parsed.path, "line": parsed.line("server") or 1, "value": unused},
        # Which [host] needs the file is the user's call: the fix is steps, as `regtui fix` plans it.
        fix=fix("config.ignored-key", parsed.path, f"add ca = \"{names[0]}\" to the host that needs it",
                kind="manual", files=[parsed.path], detail="ca",
                params={"key": "ca", "new_key": "ca", "value": names if len(names) > 1 else names[0]}),
        runtime=runtime,
    )]


def _file_checks(host: Host, res: HostsResolution, parsed: Parsed, specs: list[HostSpec], runtime: str) -> list[Finding]:
    found: list[Finding] = []
    for spec, entry in zip(specs, res.entries):
        key = ("host", spec.server) if spec is not specs[-1] else ()
        found += _tls_file_findings(host, res, entry.ca_files, entry.client_pairs, (parsed, key), runtime)
    return found


def _tls_file_findings(host: Host, res: HostsResolution, cas: tuple[str, ...], pairs: tuple[tuple[str, str], ...],
                       where: tuple[Parsed, tuple[Any, ...]] | None, runtime: str) -> list[Finding]:
    """containerd reads every CA and client file when it builds the hosts; one bad file fails every pull."""
    found: list[Finding] = []

    def bad(kind: str, path: str, why: str, marker_key: str) -> None:
        """Record one unusable TLS file and make the resolution fatal."""
        if where is not None:
            parsed, key = where
            ev = parsed.evidence(*(key + (marker_key,)), value=path, error=why)
            subject = parsed.path
        else:
            ev = {"file": path, "line": 1, "value": path, "error": why}
            subject = path
        res.fatal = res.fatal or f"{kind} {path}: {why}"
        found.append(finding(
            "config.invalid-value", subject, f"{kind} {path}: {why}",
            f"containerd loads this file when it sets up the hosts for {res.namespace}; the error "
            f"(`{'unable to read CA cert' if kind == 'CA file' else 'failed to load X509 key pair'}`) fails every "
            f"pull from {res.namespace}, mirrors included.",
            evidence=ev,
            fix=fix("config.invalid-value", subject, f"provide a valid {kind} at {path} or remove the reference",
                    kind="manual", files=[subject], detail=path, params={"path": path, "kind": kind, "line": ev.get("line")}),
            runtime=runtime,
        ))

    for ca in cas:
        text = host.read(ca, limit=1024 * 1024)
        if not text.ok:
            bad("CA file", ca, _unread(text), "ca")
        elif "-----BEGIN CERTIFICATE-----" not in text.text:
            bad("CA file", ca, "no PEM certificate in it", "ca")
    for cert, key in pairs:
        ctext = host.read(cert, limit=1024 * 1024)
        if not ctext.ok:
            bad("client certificate", cert, _unread(ctext), "client")
            continue
        if "CERTIFICATE-----" not in ctext.text:
            bad("client certificate", cert, "no PEM certificate in it", "client")
            continue
        if key:
            ktext = host.read(key, limit=1024 * 1024)
            if not ktext.ok:
                bad("client key", key, _unread(ktext), "client")
            elif "PRIVATE KEY-----" not in ktext.text:
                bad("client key", key, "no PEM private key in it", "client")
        elif "PRIVATE KEY-----" not in ctext.text:
            bad("client certificate", cert, "no key file and no private key inside the certificate file", "client")
    return found


def _unread(file: FileText) -> str:
    return "no such file" if file.status == "missing" else f"cannot be read ({file.error})"


# -- helpers for the planners ---------------------------------------------------------------------

def existing_host_dirs(host: Host, roots: list[str]) -> list[str]:
    """Host paths of every directory under the roots (the hosts dirs someone configured)."""
    dirs: list[str] = []
    for root in roots:
        for name in host.listdir(root) or []:
            path = posixpath.join(root, name)
            if host.is_dir(path):
                dirs.append(path)
    return dirs


def _canonical(name: str) -> str:
    """A dir name reduced to what people mean: lowercase, and ``host_port`` or ``host_port_`` as ``host:port``."""
    s = name.lower().strip()
    m = re.match(r"^(.*)_(\d+)_?$", s)
    return f"{m.group(1)}:{m.group(2)}" if m else s


def misnamed_dirs(host: Host, roots: list[str], namespace: str) -> list[str]:
    """Dirs that look meant for ``namespace`` but that containerd will not pick for it.

    Catches a missing or extra ``:port`` (``certs.d/myreg`` for ``myreg:5000/app``), a different case,
    a scheme in the name, and ``host_port`` without the trailing underscore.
    """
    wanted = set()
    for root in roots:
        wanted.update(posixpath.basename(p) for p in host_paths(root, namespace))
    ns = namespace.lower()
    ns_name, ns_port = split_host_port(ns)
    hits: list[str] = []
    for root in roots:
        for name in host.listdir(root) or []:
            path = posixpath.join(root, name)
            if name in wanted or name == _DEFAULT_DIR or not host.is_dir(path):
                continue
            canon = _canonical(name)
            c_name, c_port = split_host_port(canon)
            same = canon == ns or (c_name == ns_name and (c_port == "" or ns_port == "" or c_port == ns_port))
            if same:
                hits.append(path)
    return hits
