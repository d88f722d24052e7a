"""The Docker CLI's ``config.json``: which credentials ``docker pull`` sends, as docker/cli picks them.

Rules (docker/cli ``cli/config/config.go``, ``configfile/file.go``, ``credentials/*``; SEMANTICS §1.6):

- the directory is ``$DOCKER_CONFIG`` (a directory), else ``~/.docker`` of the *current* user
  (``sudo docker`` reads ``/root/.docker``); regtui uses ``$DOCKER_CONFIG`` only on the live
  system, and root's home under another ``--root``;
- ``auths`` maps a server address to ``{auth, username, password, identitytoken, registrytoken}``;
  ``auth`` is base64 (StdEncoding) of ``user:password``, split at the first ``:``, user non-empty;
  one bad ``auth`` makes the CLI print ``WARNING: Error parsing config file`` for the whole file;
- the lookup key is ``https://index.docker.io/v1/`` for Docker Hub (``docker.io``/``index.docker.io``)
  and ``host[:port]`` otherwise; the exact key is tried first, then every key reduced by
  ``ConvertToHostname`` (scheme and path stripped); so Hub credentials under ``docker.io`` or
  ``registry-1.docker.io`` are never found for Hub images;
- ``credHelpers[key]`` wins over ``credsStore``, which wins over ``auths``; a helper is the binary
  ``docker-credential-<name>`` on PATH; with no auth configured at all the CLI picks ``pass`` (if
  ``pass`` is installed) or ``secretservice``, when that helper binary exists;
- ``DOCKER_AUTH_CONFIG`` (environment, JSON with ``auths``) overlays the store, exact keys only.

regtui never runs a credential helper: a helper-backed lookup returns ``None`` and says which
helper the CLI would call.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import stat as stat_mod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from regtui import redact
from regtui.config._source import Parsed, parse_error, read_json, value_kind
from regtui.credentials import Credential
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.runtimes.docker.detection import cli_dir, config_files

__all__ = [
    "HUB_AUTH_KEY",
    "HUB_HOSTS",
    "AuthEntry",
    "CliConfig",
    "load_cli_config",
    "config_files",
    "auth_config_key",
    "convert_to_hostname",
    "decode_auth",
]

#: The key the Docker CLI stores and looks up Docker Hub credentials under.
HUB_AUTH_KEY = "https://index.docker.io/v1/"
#: Host names that mean Docker Hub to a person writing config.json.
HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "hub.docker.com")
_RUNTIME = "docker"
_KIND = "docker CLI config.json"
_HELPER_PREFIX = "docker-credential-"
_SECRET_FIELDS = ("auth", "password", "identitytoken", "registrytoken")


def auth_config_key(registry_host: str) -> str:
    """docker/cli ``getAuthConfigKey``: the key credentials for ``registry_host`` are looked up under."""
    return HUB_AUTH_KEY if registry_host in ("docker.io", "index.docker.io") else registry_host


def convert_to_hostname(key: str) -> str:
    """docker/cli ``ConvertToHostname``: strip scheme and path from a legacy ``auths`` key."""
    stripped = key
    if "://" in stripped:
        try:
            parts = urlsplit(stripped)
            hostname = parts.hostname or ""
            if hostname:
                return f"{hostname}:{parts.port}" if parts.port else hostname
        except ValueError:
            pass
    for prefix in ("http://", "https://"):
        if stripped.startswith(prefix):
            stripped = stripped[len(prefix):]
    return stripped.split("/", 1)[0]


def decode_auth(value: str) -> tuple[str, str] | str:
    """``(user, password)`` from an ``auth`` blob, or the CLI's error text (never the secret)."""
    if not isinstance(value, str):
        return f"auth is a {value_kind(value)}, not a string"
    cleaned = value.replace("\r", "").replace("\n", "")
    try:
        decoded = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return "illegal base64 data (not base64 StdEncoding of user:password)"
    text = decoded.decode("utf-8", errors="replace")
    user, sep, password = text.partition(":")
    if not sep or not user:
        return "Invalid auth configuration file (decoded value is not user:password)"
    return user, password.strip("\x00")


@dataclass
class AuthEntry:
    """One usable ``auths`` entry (secret kept for a later pull client, never printed)."""

    key: str
    source: str
    """``path:line (auths."key")`` or ``DOCKER_AUTH_CONFIG (auths."key")``."""
    username: str = ""
    secret: str = field(default="", repr=False)
    kind: str = "basic"

    def credential(self) -> Credential | None:
        """The entry as a :class:`Credential`, ``None`` when it carries nothing."""
        if not self.secret and not self.username:
            return None
        return Credential(self.username, self.secret, self.source, self.kind)


@dataclass
class CliConfig:
    """``config.json`` as the Docker CLI reads it, and the findings about it."""

    dir: str
    dir_source: str
    """Why this directory: ``$DOCKER_CONFIG`` or the home of root."""
    path: str
    exists: bool = False
    auths: dict[str, AuthEntry] = field(default_factory=dict)
    auth_keys: dict[str, int | None] = field(default_factory=dict)
    """Every ``auths`` key with its line, usable or not."""
    creds_store: str = ""
    creds_store_source: str = ""
    cred_helpers: dict[str, str] = field(default_factory=dict)
    cred_helper_sources: dict[str, str] = field(default_factory=dict)
    env_auths: dict[str, AuthEntry] = field(default_factory=dict)
    default_store: str = ""
    """Helper the CLI detects on its own when the file configures no auth (``pass``, ``secretservice``)."""
    sources: list[SourceFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    broken_auth: bool = False
    """An ``auth`` value failed to decode: the CLI's credentials from this file are unreliable."""

    def helper_for(self, registry_host: str) -> tuple[str, str] | None:
        """``(helper binary, where it is configured)`` the CLI calls for ``registry_host``, or ``None``."""
        key = auth_config_key(registry_host)
        if key in self.cred_helpers:
            return _HELPER_PREFIX + self.cred_helpers[key], self.cred_helper_sources[key]
        if self.creds_store:
            return _HELPER_PREFIX + self.creds_store, self.creds_store_source
        if self.default_store:
            return _HELPER_PREFIX + self.default_store, "detected by the CLI (no auth configured in the file)"
        return None

    def _file_entry(self, key: str) -> AuthEntry | None:
        if key in self.auths:
            return self.auths[key]
        for candidate, entry in self.auths.items():
            if convert_to_hostname(candidate) == key:
                return entry
        return None

    def credential_for(self, registry_host: str) -> Credential | None:
        """Credentials ``docker pull`` sends for ``registry_host``; ``None`` when none or a helper holds them."""
        key = auth_config_key(registry_host)
        if key in self.env_auths:
            return self.env_auths[key].credential()
        if self.helper_for(registry_host):
            return None
        entry = self._file_entry(key)
        return entry.credential() if entry else None

    def credential_source(self, registry_host: str) -> str | None:
        """Where the credentials for ``registry_host`` come from, in words (never the secret)."""
        key = auth_config_key(registry_host)
        if key in self.env_auths and self.env_auths[key].credential():
            return self.env_auths[key].source
        helper = self.helper_for(registry_host)
        if helper:
            return f"credential helper {helper[0]} ({helper[1]}); regtui does not run it"
        entry = self._file_entry(key)
        if entry and entry.credential():
            if self.broken_auth:
                return f"{entry.source}; unreliable: another auth entry is malformed (Error parsing config file)"
            return entry.source
        return None


def _field(data: dict[str, Any], name: str) -> tuple[str | None, Any]:
    """Go's encoding/json field match: exact name first, then case-insensitive."""
    if name in data:
        return name, data[name]
    for k, v in data.items():
        if isinstance(k, str) and k.lower() == name.lower():
            return k, v
    return None, None


def load_cli_config(host: Host) -> CliConfig:
    """Read the Docker CLI configuration of the user who runs ``docker pull`` (root)."""
    directory, why = cli_dir(host)
    path = posixpath.join(directory, "config.json")
    cfg = CliConfig(dir=directory, dir_source=why, path=path)
    parsed = read_json(host, path, _RUNTIME, secret=True,
                       what="The Docker CLI prints 'WARNING: Error parsing config file' and runs with defaults: "
                            "no credentials from this file are sent.")
    cfg.findings += parsed.findings
    cfg.exists = parsed.status != "missing"
    if parsed.ok:
        if isinstance(parsed.data, dict):
            _read_document(host, cfg, parsed)
        else:
            cfg.findings.append(_invalid(parsed, (), parsed.data, "the document is not a JSON object"))
        _check_permission(cfg, parsed)
    _read_env_auths(host, cfg)
    if not (cfg.creds_store or cfg.cred_helpers or cfg.auth_keys):
        cfg.default_store = _detect_default_store(host)
    cfg.sources.append(parsed.source(_RUNTIME, _KIND, detail=_source_detail(cfg, parsed), values=_values(cfg)))
    return cfg


def _source_detail(cfg: CliConfig, parsed: Parsed) -> str:
    if parsed.status == "missing":
        return f"absent ({cfg.dir_source}): docker pull sends no credentials unless a helper is detected"
    return parsed.error or cfg.dir_source


def _values(cfg: CliConfig) -> dict[str, Any]:
    values: dict[str, Any] = {"auths": sorted(cfg.auth_keys)}
    if cfg.creds_store:
        values["credsStore"] = cfg.creds_store
    if cfg.cred_helpers:
        values["credHelpers"] = dict(cfg.cred_helpers)
    if cfg.default_store:
        values["detected credential store"] = cfg.default_store
    if cfg.env_auths:
        values["DOCKER_AUTH_CONFIG"] = sorted(cfg.env_auths)
    return values


def _invalid(parsed: Parsed, key: tuple[Any, ...], value: Any, message: str) -> Finding:
    where = parsed.where(*key)
    name = ".".join(str(k) for k in key) or "(document)"
    return finding(
        "config.invalid-value", parsed.path,
        f"{where}: {name}: {message}",
        "The Docker CLI decodes config.json with Go's encoding/json; a value of the wrong type makes it "
        "print 'WARNING: Error parsing config file' and leaves the credentials undecoded, so docker pull "
        "goes anonymous.",
        evidence=parsed.evidence(*key, key=name, value=_shown(key, value)),
        runtime=_RUNTIME,
        fix=fix("config.invalid-value", parsed.path, f"correct {name} at {where}", files=[parsed.path],
                detail=name, params={"key": list(key), "expected": message}),
    )


def _shown(key: tuple[Any, ...], value: Any) -> Any:
    """A wrong-typed value for evidence: its kind for containers, masked anywhere under ``auths``
    (an entry written as a bare string is usually the auth blob itself)."""
    if isinstance(value, (dict, list)):
        return value_kind(value)
    if key and str(key[0]).lower() == "auths":
        return redact.MASK
    return redact.value(value, str(key[-1]) if key else None)


def _read_document(host: Host, cfg: CliConfig, parsed: Parsed) -> None:
    data: dict[str, Any] = parsed.data
    auths_key, auths = _field(data, "auths")
    if auths_key is not None:
        if isinstance(auths, dict):
            for key, entry in auths.items():
                _read_auth(cfg, parsed, (auths_key, key), key, entry, f"{parsed.path}:{parsed.line(auths_key, key)}")
        elif auths is not None:
            cfg.findings.append(_invalid(parsed, (auths_key,), auths, "must be an object of registry -> credentials"))
    store_key, store = _field(data, "credsStore")
    if store_key is not None:
        if isinstance(store, str):
            cfg.creds_store = store
            cfg.creds_store_source = f"credsStore at {parsed.where(store_key)}"
            _check_helper(host, cfg, parsed, (store_key,), store, "credsStore")
        elif store is not None:
            cfg.findings.append(_invalid(parsed, (store_key,), store, "must be a string (helper name)"))
    helpers_key, helpers = _field(data, "credHelpers")
    if helpers_key is not None:
        if isinstance(helpers, dict):
            for reg, helper in helpers.items():
                if not isinstance(helper, str):
                    cfg.findings.append(_invalid(parsed, (helpers_key, reg), helper, "must be a string (helper name)"))
                    continue
                cfg.cred_helpers[reg] = helper
                cfg.cred_helper_sources[reg] = f"credHelpers.{reg} at {parsed.where(helpers_key, reg)}"
                _check_helper(host, cfg, parsed, (helpers_key, reg), helper, f"credHelpers[{reg!r}]")
                _check_key(cfg, parsed, (helpers_key, reg), reg, "credHelpers")
        elif helpers is not None:
            cfg.findings.append(_invalid(parsed, (helpers_key,), helpers, "must be an object of registry -> helper"))


def _read_auth(cfg: CliConfig, parsed: Parsed | None, keypath: tuple[Any, ...], key: str, entry: Any,
               where: str) -> None:
    """One ``auths`` entry: decode it, record it, and flag keys that are never looked up."""
    if parsed is not None:
        cfg.auth_keys[key] = parsed.line(*keypath)
    if not isinstance(entry, dict):
        if parsed is not None:
            cfg.findings.append(_invalid(parsed, keypath, entry, "must be an object with auth / identitytoken"))
        return
    for name in ("auth", "username", "password", "identitytoken", "registrytoken"):
        _, v = _field(entry, name)
        if v is not None and not isinstance(v, str):
            if parsed is not None:
                cfg.findings.append(_invalid(parsed, keypath + (name,), v, "must be a string"))
            return
    _, auth = _field(entry, "auth")
    _, username = _field(entry, "username")
    _, password = _field(entry, "password")
    _, identity = _field(entry, "identitytoken")
    _, registry_token = _field(entry, "registrytoken")
    username, password = username or "", password or ""
    source = f"{where} (auths.{json.dumps(key)})"
    if auth:
        decoded = decode_auth(auth)
        if isinstance(decoded, str):
            cfg.findings.append(_malformed(parsed, keypath, key, decoded, where))
            cfg.broken_auth = cfg.broken_auth or parsed is not None
            return
        username, password = decoded
    if identity:
        result = AuthEntry(key, source, username, identity, "identitytoken")
    elif registry_token:
        result = AuthEntry(key, source, username, registry_token, "registrytoken")
    else:
        result = AuthEntry(key, source, username, password, "basic")
    if parsed is None:
        cfg.env_auths[key] = result
        return
    cfg.auths[key] = result
    _check_key(cfg, parsed, keypath, key, "auths")


def _malformed(parsed: Parsed | None, keypath: tuple[Any, ...], key: str, error: str, where: str) -> Finding:
    path = parsed.path if parsed else "DOCKER_AUTH_CONFIG"
    line = parsed.line(*keypath, "auth") if parsed else None
    where = f"{path}:{line}" if line else where  # the auth value's line, as in the evidence
    return finding(
        "auth.malformed", f"{path}#{key}",
        f"{where}: the auth value for {key} is not base64 of user:password",
        f"The Docker CLI decodes every auths entry when it loads {path}; this one fails ({error}), so it "
        "prints 'WARNING: Error parsing config file' and stops decoding (in random map order): credentials "
        "of other registries in the file may not be sent either, and pulls of private images fail with "
        "'pull access denied' or 'unauthorized'.",
        evidence={"file": path, "line": line, "key": key, "value": redact.MASK, "error": error},
        runtime=_RUNTIME,
        fix=fix("auth.malformed", f"{path}#{key}", f"log in again: docker login {_login_target(key)}",
                files=[path] if parsed else [], kind="manual",
                params={"key": key, "command": f"docker login {_login_target(key)}"}),
    )


def _login_target(key: str) -> str:
    host = convert_to_hostname(key)
    return "" if key == HUB_AUTH_KEY or host in HUB_HOSTS else host


def _check_key(cfg: CliConfig, parsed: Parsed, keypath: tuple[Any, ...], key: str, section: str) -> None:
    """``auth.wrong-key`` for a Docker Hub entry stored under a key the CLI never looks up."""
    host = convert_to_hostname(key)
    if key == HUB_AUTH_KEY or host not in HUB_HOSTS:
        return
    section_data = parsed.data.get(keypath[0])
    has_right_key = isinstance(section_data, dict) and HUB_AUTH_KEY in section_data
    only_for = (" It is used only for images named registry-1.docker.io/..., which are not Hub images "
                "for mirrors and most tools.") if key == "registry-1.docker.io" else ""
    cfg.findings.append(finding(
        "auth.wrong-key", f"{parsed.path}#{key}",
        f"{parsed.where(*keypath)}: Docker Hub {section} stored under {key!r}; docker pull looks up {HUB_AUTH_KEY!r}",
        f"For Docker Hub images (docker.io/..., library images) the Docker CLI looks up {section} under "
        f"exactly {HUB_AUTH_KEY}. The entry {key!r} is never used for them, so Hub pulls go "
        f"{'with the other entry' if has_right_key else 'anonymous (rate limited, private images denied)'}.{only_for}",
        evidence=parsed.evidence(*keypath, key=key, expected=HUB_AUTH_KEY, section=section),
        severity="info" if has_right_key else None,
        runtime=_RUNTIME,
        fix=fix("auth.wrong-key", f"{parsed.path}#{key}", f"move {section}[{key!r}] to {section}[{HUB_AUTH_KEY!r}]",
                files=[parsed.path], detail=section,
                params={"section": section, "key": key, "new_key": HUB_AUTH_KEY, "keep_old": key == "registry-1.docker.io"}),
    ))


def _check_helper(host: Host, cfg: CliConfig, parsed: Parsed, keypath: tuple[Any, ...], helper: str, what: str) -> None:
    """``auth.helper-missing`` when ``docker-credential-<helper>`` is not on PATH."""
    if not helper:
        return
    binary = _HELPER_PREFIX + helper
    if host.which(binary):
        return
    cfg.findings.append(finding(
        "auth.helper-missing", f"{parsed.path}#{what}",
        f"{parsed.where(*keypath)}: {what} names {binary}, which is not installed",
        f"The Docker CLI runs {binary} to get and store credentials; it is not on PATH. docker pull goes on "
        "without credentials: public images still pull, a registry that needs a login answers 'no basic auth "
        f"credentials' or 'unauthorized', and docker login fails with 'error storing credentials - err: exec: "
        f"\"{binary}\": executable file not found in $PATH'. This is typical of a config.json copied from "
        "Docker Desktop.",
        evidence=parsed.evidence(*keypath, key=what, value=helper, binary=binary, path_searched=host.path_dirs()),
        runtime=_RUNTIME,
        fix=fix("auth.helper-missing", f"{parsed.path}#{what}", f"remove {what} from {parsed.path} "
                f"(or install {binary})", files=[parsed.path], detail=what,
                params={"key": list(keypath), "action": "remove", "binary": binary}),
    ))


def _has_secret(cfg: CliConfig, parsed: Parsed) -> bool:
    auths = parsed.data.get("auths") if isinstance(parsed.data, dict) else None
    if not isinstance(auths, dict):
        return False
    return any(isinstance(e, dict) and any(e.get(f) for f in _SECRET_FIELDS) for e in auths.values())


def _check_permission(cfg: CliConfig, parsed: Parsed) -> None:
    """Credentials readable by group or others: ``config.permission`` with ``chmod 600``."""
    mode = parsed.file.mode
    if mode is None or not mode & (stat_mod.S_IRWXG | stat_mod.S_IRWXO) or not _has_secret(cfg, parsed):
        return
    command = f"chmod 600 {parsed.path}"
    cfg.findings.append(finding(
        "config.permission", parsed.path,
        f"{parsed.path} holds registry credentials and is readable by {'others' if mode & stat_mod.S_IROTH else 'its group'} "
        f"(mode {mode:04o})",
        "The auth values in this file are base64, not encryption: anyone who can read it has the registry "
        "passwords. docker login writes it with mode 0600.",
        evidence={"file": parsed.path, "line": None, "value": f"{mode:04o}", "expected": "0600"},
        runtime=_RUNTIME,
        fix=fix("config.permission", parsed.path, command, files=[parsed.path], kind="command",
                params={"command": command, "mode": "0600"}),
    ))


def _read_env_auths(host: Host, cfg: CliConfig) -> None:
    """``DOCKER_AUTH_CONFIG`` from the shell (live system only): exact keys overlay the store."""
    raw = host.environ.get("DOCKER_AUTH_CONFIG", "") if host.live else ""
    if not raw:
        return
    what = "The CLI ignores DOCKER_AUTH_CONFIG when it does not parse and uses config.json alone."
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        cfg.findings.append(parse_error("DOCKER_AUTH_CONFIG", exc.msg, exc.lineno, exc.colno, _RUNTIME, what=what))
        return
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        cfg.findings.append(parse_error("DOCKER_AUTH_CONFIG", "no \"auths\" object", 1, 1, _RUNTIME, what=what))
        return
    for key, entry in auths.items():
        _read_auth(cfg, None, ("auths", key), key, entry, "DOCKER_AUTH_CONFIG")
    cfg.sources.append(SourceFile("DOCKER_AUTH_CONFIG", _RUNTIME, "environment variable", "ok",
                                  "credentials overlay from the shell's environment",
                                  {"auths": sorted(auths)}))


def _detect_default_store(host: Host) -> str:
    """docker/cli ``DetectDefaultStore`` on Linux: ``pass`` if installed, else ``secretservice``, if its helper exists."""
    store = "pass" if host.which("pass") else "secretservice"
    return store if host.which(_HELPER_PREFIX + store) else ""
