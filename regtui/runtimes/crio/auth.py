"""The credential chain of containers/image (SEMANTICS §3.6, ``pkg/docker/config``): an explicit
file (CRI-O ``global_auth_file``, podman ``REGISTRY_AUTH_FILE``) *or* the chain
``${XDG_RUNTIME_DIR:-/run/containers/0}/containers/auth.json``,
``${XDG_CONFIG_HOME:-~/.config}/containers/auth.json``, ``$DOCKER_CONFIG/config.json`` or
``~/.docker/config.json``, ``~/.dockercfg``; namespaced keys, most specific first; ``http(s)://``
keys normalised to the host; Docker Hub aliases; registries.conf ``credential-helpers``."""

from __future__ import annotations

import base64
import binascii
import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from regtui import redact
from regtui.config._source import Parsed
from regtui.credentials import Credential
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.refs import DOCKER_HUB, HUB_API_HOST
from regtui.runtimes.crio.common import (
    AUTH_FILE_HELPER,
    RUNTIME,
    SYSTEM_REGISTRIES_CONF,
    go_quote,
    path_line,
    read_located_json,
)
from regtui.runtimes.crio.crioconf import CrioConf

__all__ = [
    "AuthFile",
    "AuthEntry",
    "AuthMatch",
    "AuthStore",
    "normalize_registry",
    "normalize_auth_key",
    "auth_chain",
    "load_auth",
    "unused_auth_files",
]

_HUB_ALIASES = (DOCKER_HUB, HUB_API_HOST)
_HUB_NORMALIZED = "index.docker.io"


@dataclass(frozen=True)
class AuthFile:
    """One file in the credential lookup chain."""

    path: str
    why: str
    """How it got into the chain (``REGISTRY_AUTH_FILE``, ``global_auth_file (crio.conf:12)``...)."""
    legacy: bool = False
    """``.dockercfg`` format: the top level is the ``auths`` map and keys are hosts only."""
    explicit: bool = False
    """Named explicitly: it replaces the whole chain."""


@dataclass(frozen=True)
class AuthEntry:
    """One ``auths`` entry; never printed with its secret."""

    key: str
    file: str
    line: int | None
    username: str = ""
    secret: str = field(default="", repr=False)
    kind: str = "basic"
    """``basic``, ``identitytoken``, ``empty`` (a credential-store marker) or ``malformed``."""
    problem: str = ""
    """For ``malformed``: why, without the secret."""
    fatal: bool = False
    """The runtime's lookup fails on this entry (bad base64) instead of skipping it."""

    def where(self) -> str:
        """``path:line (key)`` for reports."""
        return f"{path_line(self.file, self.line)} ({self.key})"


@dataclass
class _AuthContents:
    """One credentials file as read: entries, credHelpers, and whether lookups through it fail."""

    file: AuthFile
    status: str = "missing"
    """``ok``, ``missing`` or ``error`` (the lookup through this file fails)."""
    error: str = ""
    entries: dict[str, AuthEntry] = field(default_factory=dict)
    cred_helpers: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    creds_store: str = ""


@dataclass(frozen=True)
class AuthMatch:
    """What the runtime would use for one lookup key."""

    credential: Credential | None = None
    source: str | None = None
    """``path:line (key)`` or ``credential helper docker-credential-X (...)``; ``None`` for anonymous."""
    error: str = ""
    """Non-empty when the lookup itself fails: the runtime fails this endpoint before any request."""


def normalize_registry(registry: str) -> str:
    """``normalizeRegistry``: Docker Hub's names all mean ``index.docker.io``."""
    return _HUB_NORMALIZED if registry in _HUB_ALIASES else registry


def normalize_auth_key(key: str, legacy: bool = False) -> str:
    """``normalizeAuthFileKey``: strip ``http(s)://`` (and then the path), normalise Hub."""
    stripped = key.removeprefix("http://").removeprefix("https://")
    if legacy or stripped != key:
        stripped = stripped.split("/", 1)[0]
    return normalize_registry(stripped)


def _lookup_order(key: str, registry: str, legacy: bool) -> Iterator[str]:
    """``authKeyLookupOrder``: the repository, each parent namespace, then the registry."""
    if legacy:
        yield registry
        return
    while True:
        yield key
        if "/" not in key:
            return
        key = key.rsplit("/", 1)[0]


def auth_chain(host: Host, home: str, env: Mapping[str, str], explicit: str = "", explicit_why: str = "") -> list[AuthFile]:
    """``getAuthFilePaths`` for uid 0: an explicit file alone, or the default chain."""
    if explicit:
        return [AuthFile(explicit, explicit_why or "explicit auth file", explicit=True)]
    chain: list[AuthFile] = []
    runtime_dir = env.get("XDG_RUNTIME_DIR", "")
    if runtime_dir:
        if host.exists(runtime_dir):
            chain.append(AuthFile(posixpath.join(runtime_dir, "containers/auth.json"),
                                  "${XDG_RUNTIME_DIR}/containers/auth.json"))
    else:
        chain.append(AuthFile("/run/containers/0/auth.json", "/run/containers/$UID/auth.json (XDG_RUNTIME_DIR unset)"))
    config_home = env.get("XDG_CONFIG_HOME") or posixpath.join(home, ".config")
    chain.append(AuthFile(posixpath.join(config_home, "containers/auth.json"),
                          "${XDG_CONFIG_HOME:-~/.config}/containers/auth.json"))
    if env.get("DOCKER_CONFIG"):
        chain.append(AuthFile(posixpath.join(env["DOCKER_CONFIG"], "config.json"), "$DOCKER_CONFIG/config.json"))
    else:
        chain.append(AuthFile(posixpath.join(home, ".docker/config.json"), "~/.docker/config.json"))
    chain.append(AuthFile(posixpath.join(home, ".dockercfg"), "~/.dockercfg (legacy format)", legacy=True))
    return chain


def _field(obj: Mapping[str, Any], name: str) -> tuple[str | None, Any]:
    """Go's encoding/json field match: exact name first, then case-insensitive."""
    if name in obj:
        return name, obj[name]
    for k, v in obj.items():
        if k.lower() == name.lower():
            return k, v
    return None, None


def _decode_auth(value: str) -> tuple[str, str, str, bool]:
    """``decodeDockerAuth``: (user, password, problem, fatal); a problem means the entry is not used."""
    try:
        decoded = base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return "", "", "the auth value is not valid base64", True
    text = decoded.decode("utf-8", errors="replace")
    if ":" not in text:
        if decoded:
            return "", "", "the decoded auth value has no ':' between user and password", False
        return "", "", "", False
    user, _, password = text.partition(":")
    return user, password.strip("\x00"), "", False


def _auth_entry(key: str, raw: Any, file: str, line: int | None) -> AuthEntry | str:
    """One ``auths`` value, or a type error message."""
    if not isinstance(raw, dict):
        return f"json: cannot unmarshal {_json_type(raw)} into Go value of type config.dockerAuthConfig"
    _, auth = _field(raw, "auth")
    _, token = _field(raw, "identitytoken")
    if auth is not None and not isinstance(auth, str):
        return f"json: cannot unmarshal {_json_type(auth)} into Go struct field dockerAuthConfig.auths.auth of type string"
    if token is not None and not isinstance(token, str):
        return (f"json: cannot unmarshal {_json_type(token)} into Go struct field "
                "dockerAuthConfig.auths.identitytoken of type string")
    if not auth:
        return AuthEntry(key, file, line, kind="empty")
    user, password, problem, fatal = _decode_auth(auth)
    if problem:
        return AuthEntry(key, file, line, kind="malformed", problem=problem, fatal=fatal)
    if not user and not password:
        return AuthEntry(key, file, line, kind="empty")
    if token:
        return AuthEntry(key, file, line, user, token, kind="identitytoken")
    return AuthEntry(key, file, line, user, password)


def _json_type(value: Any) -> str:
    """Go's name for a JSON value's type in unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    return {str: "string", int: "number", float: "number", list: "array", dict: "object", type(None): "null"}.get(
        type(value), "value")


def _read_auth_file(host: Host, af: AuthFile) -> tuple[_AuthContents, Parsed]:
    """``authPath.parse`` with Go's decoding rules (case-insensitive fields, typed values)."""
    what = ("containers/image fails every credential lookup that reaches this file, so pulls that find no "
            "credentials in an earlier file fail too, public images included (\"reading JSON file\").")
    parsed = read_located_json(host, af.path, what)
    contents = _AuthContents(af)
    if parsed.status == "missing":
        return contents, parsed
    if not parsed.ok:
        contents.status, contents.error = "error", parsed.error or parsed.status
        return contents, parsed
    contents.status = "ok"
    data = parsed.data if parsed.data is not None else {}  # JSON null decodes to an empty file in Go
    if af.legacy:
        auths, auths_key = data, None
    else:
        if not isinstance(data, dict):
            contents.status = "error"
            contents.error = f"json: cannot unmarshal {_json_type(data)} into Go value of type config.dockerConfigFile"
            return contents, parsed
        auths_key, auths = _field(data, "auths")
        helpers_key, helpers = _field(data, "credHelpers")
        _, store = _field(data, "credsStore")
        if isinstance(store, str):
            contents.creds_store = store
        if helpers is not None:
            if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
                contents.status = "error"
                contents.error = "json: cannot unmarshal credHelpers into Go struct field of type map[string]string"
                return contents, parsed
            contents.cred_helpers = {k: (v, parsed.line(helpers_key, k)) for k, v in helpers.items()}
    if auths is None:
        return contents, parsed
    if not isinstance(auths, dict):
        contents.status = "error"
        contents.error = (f"json: cannot unmarshal {_json_type(auths)} into Go struct field dockerConfigFile.auths "
                          "of type map[string]config.dockerAuthConfig")
        return contents, parsed
    for key, raw in auths.items():
        line = parsed.line(auths_key, key) if auths_key else parsed.line(key)
        entry = _auth_entry(key, raw, af.path, line)
        if isinstance(entry, str):
            contents.status, contents.error = "error", entry
            contents.entries = {}
            return contents, parsed
        contents.entries[key] = entry
    return contents, parsed


@dataclass
class AuthStore:
    """The credential sources containers/image consults, in order, with a lookup like its own."""

    chain: list[AuthFile] = field(default_factory=list)
    contents: list[_AuthContents] = field(default_factory=list)
    helpers: list[str] = field(default_factory=lambda: [AUTH_FILE_HELPER])
    """registries.conf ``credential-helpers``, in order."""
    helper_paths: dict[str, str | None] = field(default_factory=dict)
    """``docker-credential-<name>`` -> host path on PATH, or ``None`` when absent."""
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def lookup(self, key: str) -> AuthMatch:
        """Credentials for ``key`` (a registry host or a repository name such as ``quay.io/ns/img``)."""
        registry = key.split("/", 1)[0]
        errors: list[str] = []
        pending: list[str] = []
        for helper in self.helpers:
            if helper != AUTH_FILE_HELPER:
                binary = f"docker-credential-{helper}"
                if self.helper_paths.get(binary) is None:
                    errors.append(f"exec: \"{binary}\": executable file not found in $PATH")
                else:
                    pending.append(binary)
                continue
            match = self._from_files(key, registry)
            if match.error:
                errors.append(match.error)
                continue
            if match.source:
                return _with_pending(match, pending, registry)
        if pending:
            return AuthMatch(None, f"credential helper {pending[0]} (not queried offline)")
        if errors:
            return AuthMatch(error="errors looking up credentials: " + "; ".join(errors))
        return AuthMatch()

    def _from_files(self, key: str, registry: str) -> AuthMatch:
        """The ``containers-auth.json`` helper: the chain files in order."""
        for contents in self.contents:
            if contents.status == "missing":
                continue
            if contents.status == "error":
                return AuthMatch(error=f"reading JSON file {go_quote(contents.file.path)}: {contents.error}")
            match = _find_in_file(contents, key, registry, self.helper_paths)
            if match is not None:
                if match.error or match.source:
                    return match
                continue
        return AuthMatch()


def _with_pending(match: AuthMatch, pending: list[str], registry: str) -> AuthMatch:
    """An earlier external helper may hold credentials too: say so, it would win."""
    if not pending:
        return match
    return AuthMatch(match.credential, f"{pending[0]} if it holds credentials for {registry}, else {match.source}")


def _find_in_file(contents: _AuthContents, key: str, registry: str,
                  helper_paths: Mapping[str, str | None]) -> AuthMatch | None:
    """``findCredentialsInFile``; ``None`` when the file has nothing for ``key``."""
    af = contents.file
    if registry in contents.cred_helpers:
        helper, line = contents.cred_helpers[registry]
        binary = f"docker-credential-{helper}"
        where = path_line(af.path, line)
        if helper_paths.get(binary) is None:
            return AuthMatch(error=f"exec: \"{binary}\": executable file not found in $PATH ({where})")
        return AuthMatch(None, f"credential helper {binary} ({where} credHelpers[{registry}])")
    entry = next((contents.entries[k] for k in _lookup_order(key, registry, af.legacy) if k in contents.entries), None)
    if entry is None:
        wanted = normalize_registry(registry)
        entry = next((e for k, e in contents.entries.items() if normalize_auth_key(k, af.legacy) == wanted), None)
    if entry is None:
        return None
    if entry.kind == "malformed":
        if entry.fatal:
            return AuthMatch(error=f"{entry.where()}: {entry.problem}")
        return AuthMatch()
    if entry.kind == "empty":
        return AuthMatch()
    return AuthMatch(Credential(entry.username, entry.secret, entry.where(), entry.kind), entry.where())


def _auth_kind(af: AuthFile) -> str:
    """What kind of credentials file this chain entry is."""
    if af.legacy:
        return ".dockercfg"
    return "docker config.json" if af.path.endswith("config.json") else "auth.json"


def _auth_findings(host: Host, contents: _AuthContents, parsed: Parsed,
                   helper_paths: dict[str, str | None]) -> list[Finding]:
    """Offline findings for one credentials file: parse, shape, malformed entries, helpers, mode."""
    af = contents.file
    out: list[Finding] = list(parsed.findings)
    if contents.status == "error" and parsed.ok:
        out.append(finding(
            "config.invalid-value", af.path, f"{af.path}: {contents.error}",
            "containers/image cannot decode this credentials file; every lookup that reaches it fails "
            "(\"reading JSON file\"), so pulls fail even for public images unless an earlier file answers.",
            evidence={"file": af.path, "line": None, "value": contents.error},
            runtime=RUNTIME,
            fix=fix("config.invalid-value", af.path, f"correct the structure of {af.path}", kind="manual",
                    params={"file": af.path}),
        ))
    for entry in contents.entries.values():
        if entry.kind == "malformed":
            out.append(_malformed(entry))
    for registry, (helper, line) in contents.cred_helpers.items():
        binary = f"docker-credential-{helper}"
        helper_paths.setdefault(binary, host.which(binary))
        if helper_paths[binary] is None:
            out.append(_helper_missing(af.path, line, binary, f"credHelpers[{registry}]",
                                       f"credential lookups for {registry} fail, so every pull from it fails",
                                       {"file": af.path, "line": line, "key": "credHelpers", "registry": registry,
                                        "remove": registry}))
    if contents.creds_store and any(e.kind == "empty" for e in contents.entries.values()):
        out.append(_creds_store_ignored(af, parsed, contents))
    file = parsed.file
    if file.ok and file.mode is not None and file.mode & 0o044:
        out.append(finding(
            "config.permission", af.path, f"{af.path} is readable by other users (mode {file.mode:04o})",
            "The file holds registry credentials; anyone who can read it can pull (and often push) as you.",
            evidence={"file": af.path, "line": None, "value": f"{file.mode:04o}"},
            runtime=RUNTIME,
            fix=fix("config.permission", af.path, f"chmod 600 {af.path}", kind="command",
                    params={"command": f"chmod 600 {af.path}", "mode": "0600"}),
        ))
    return out


def _malformed(entry: AuthEntry) -> Finding:
    """``auth.malformed`` for one entry; the secret never appears."""
    impact = ("the lookup fails, so every pull that reaches this entry fails" if entry.fatal else
              "containers/image skips the entry with a warning and continues with the next file")
    return finding(
        "auth.malformed", entry.file,
        f"{path_line(entry.file, entry.line)}: the auth value for {entry.key!r} is not base64 of user:password",
        f"{entry.problem}; {impact}.",
        evidence={"file": entry.file, "line": entry.line, "key": entry.key, "value": redact.MASK,
                  "problem": entry.problem},
        runtime=RUNTIME,
        fix=fix("auth.malformed", entry.file, f"log in again to {entry.key} (podman login) to rewrite the entry",
                kind="manual", detail=entry.key, params={"file": entry.file, "line": entry.line, "key": entry.key}),
    )


def _helper_missing(path: str, line: int | None, binary: str, key: str, impact: str,
                    params: Mapping[str, Any]) -> Finding:
    """``auth.helper-missing`` for a credential helper binary not on PATH."""
    return finding(
        "auth.helper-missing", path,
        f"{path_line(path, line)}: {key} names {binary}, which is not on PATH",
        f"containers/image runs {binary} for credentials; it is missing, so {impact} "
        f"(\"exec: {binary}: executable file not found in $PATH\").",
        evidence={"file": path, "line": line, "key": key, "value": binary},
        runtime=RUNTIME,
        fix=fix("auth.helper-missing", path, f"remove {key} or install {binary}", files=[path], restart="none",
                detail=key, params=dict(params)),
    )


def _creds_store_ignored(af: AuthFile, parsed: Parsed, contents: _AuthContents) -> Finding:
    """Docker's ``credsStore`` is not read by containers/image."""
    key, _ = _field(parsed.data, "credsStore")
    line = parsed.line(key) if key else None
    stored = [k for k, e in contents.entries.items() if e.kind == "empty"]
    return finding(
        "config.ignored-key", af.path,
        f"{path_line(af.path, line)}: credsStore {contents.creds_store!r} is ignored by podman, skopeo and CRI-O",
        "containers/image reads only auths and credHelpers from Docker's config.json; the credentials "
        f"docker login stored in docker-credential-{contents.creds_store} for {', '.join(stored)} are never used.",
        evidence={"file": af.path, "line": line, "key": "credsStore", "value": contents.creds_store,
                  "registries": stored},
        runtime=RUNTIME,
        fix=fix("config.ignored-key", af.path, f"add credHelpers entries for {', '.join(stored)}", files=[af.path],
                restart="none", detail="credsStore",
                params={"file": af.path, "key": "credsStore", "new_key": "credHelpers",
                        "helper": contents.creds_store, "registries": stored}),
    )


def load_auth(host: Host, home: str, env: Mapping[str, str], helpers: list[str], *, explicit: str = "",
              explicit_why: str = "", helpers_source: str = "") -> AuthStore:
    """Read the credential chain and check registries.conf ``credential-helpers``."""
    store = AuthStore(chain=auth_chain(host, home, env, explicit, explicit_why), helpers=list(helpers))
    runtime_dir = env.get("XDG_RUNTIME_DIR", "")
    if not explicit and runtime_dir and not host.exists(runtime_dir):
        store.sources.append(SourceFile(posixpath.join(runtime_dir, "containers/auth.json"), RUNTIME, "auth.json",
                                        "ignored", f"XDG_RUNTIME_DIR {runtime_dir} does not exist; skipped with a warning"))
    for af in store.chain:
        contents, parsed = _read_auth_file(host, af)
        store.contents.append(contents)
        store.findings += _auth_findings(host, contents, parsed, store.helper_paths)
        if contents.status == "missing" and af.explicit:
            store.findings.append(_explicit_auth_missing(af))
        status = {"ok": "ok", "missing": "missing"}.get(contents.status, "parse-error" if parsed.status != "unreadable"
                                                                          else "unreadable")
        values = {"auths": list(contents.entries), "credHelpers": {k: v for k, (v, _) in contents.cred_helpers.items()}}
        store.sources.append(SourceFile(af.path, RUNTIME, _auth_kind(af), status,
                                        contents.error or af.why, values if contents.status == "ok" else {}))
    for helper in helpers:
        if helper == AUTH_FILE_HELPER:
            continue
        binary = f"docker-credential-{helper}"
        store.helper_paths.setdefault(binary, host.which(binary))
        if store.helper_paths[binary] is None:
            path, _, line = helpers_source.rpartition(":")
            line_no = int(line) if line.isdigit() else None
            path = path if line_no else (helpers_source or SYSTEM_REGISTRIES_CONF)
            store.findings.append(_helper_missing(
                path, line_no, binary, "credential-helpers",
                "lookups fail unless another helper finds credentials, and then every pull fails, public images included",
                {"file": path, "line": line_no, "key": "credential-helpers", "remove": helper}))
    return store


def _explicit_auth_missing(af: AuthFile) -> Finding:
    """An explicit auth file that does not exist: no credentials at all (no error)."""
    return finding(
        "config.invalid-value", af.path, f"{af.why.split(' (')[0]} names {af.path}, which does not exist",
        "An explicit auth file replaces the whole lookup chain; as it is missing, no credentials are sent "
        "(a missing file is not an error, so pulls of private images fail with \"unauthorized\").",
        severity="warning",
        evidence={"file": af.path, "line": None, "key": af.why, "value": af.path},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", af.path, f"create {af.path} (podman login --authfile {af.path}) or fix the setting",
                kind="manual", params={"value": af.path, "setting": af.why}),
    )


def unused_auth_files(host: Host, home: str, auth: AuthStore, conf: CrioConf) -> list[Finding]:
    """Credentials stored where CRI-O never looks (``podman login`` in a login shell, or a chain file
    next to ``global_auth_file``): ``auth.wrong-key``."""
    in_chain = {af.path for af in auth.chain}
    candidates = [AuthFile("/run/user/0/containers/auth.json", "podman login with XDG_RUNTIME_DIR=/run/user/0")]
    candidates += auth_chain(host, home, {}) if conf.global_auth_file else []
    out: list[Finding] = []
    for af in candidates:
        if af.path in in_chain:
            continue
        contents, _ = _read_auth_file(host, af)
        keys = [k for k, e in contents.entries.items() if e.kind in ("basic", "identitytoken")]
        if not keys:
            continue
        used = auth.chain[0].path if conf.global_auth_file else ", ".join(sorted(in_chain))
        why = (f"global_auth_file ({conf.global_auth_file_source}) replaces the whole chain" if conf.global_auth_file
               else "CRI-O runs without XDG_RUNTIME_DIR and reads /run/containers/0/auth.json")
        out.append(finding(
            "auth.wrong-key", af.path,
            f"{af.path} holds credentials for {', '.join(keys)} that CRI-O never reads",
            f"{why}; the entries in {af.path} ({af.why}) are not sent, so CRI-O pulls of private images from "
            f"{', '.join(keys)} fail with \"unauthorized\" while podman in a shell works.",
            evidence={"file": af.path, "line": None, "key": "auths", "value": keys, "read_instead": used},
            runtime=RUNTIME,
            fix=fix("auth.wrong-key", af.path, f"copy the entries for {', '.join(keys)} into {auth.chain[0].path}",
                    files=[auth.chain[0].path], restart="none",
                    params={"from": af.path, "to": auth.chain[0].path, "keys": keys}),
        ))
    return out
