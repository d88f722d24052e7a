"""Registry credentials in ``registries.yaml`` (``configs.<host>.auth``) and the credentials the
embedded containerd sends (SEMANTICS §4).

containerd looks credentials up by the endpoint host that challenges: ``configs."docker.io".auth``
never applies to ``registry-1.docker.io`` (k3s#3937), ``configs."*"`` reaches no host, and a
registry's credentials are not sent to its mirrors.
"""

from __future__ import annotations

import base64
import binascii
from typing import Callable

from regtui import redact
from regtui.config.hoststoml import default_host
from regtui.config.k3sservice import RUNTIME
from regtui.credentials import Credential
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.runtimes.k3s.expected import HUB, WILDCARD, config_for_host, normalize_endpoint
from regtui.runtimes.k3s.registries import ConfigEntry
from regtui.runtimes.k3s.state import K3sState

__all__ = ["decode_auth", "auth_findings", "mirror_auth_findings", "credentials_lookup"]


def decode_auth(encoded: str) -> tuple[str, str] | None:
    """``auth``: base64 of ``user:password`` (``None`` when it is not)."""
    try:
        raw = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, secret = raw.partition(":")
    if not sep or not user:
        return None
    return user, secret.rstrip("\x00")


def _credential(entry: ConfigEntry, source: str) -> Credential | None:
    auth = entry.auth
    if auth is None:
        return None
    if auth.username:
        return Credential(auth.username, auth.password, source)
    if auth.identity_token:
        return Credential("", auth.identity_token, source, kind="identitytoken")
    if auth.auth:
        pair = decode_auth(auth.auth)
        return Credential(pair[0], pair[1], source) if pair else None
    return None


def auth_findings(state: K3sState) -> list[Finding]:
    """``auth`` blobs that do not decode, and credentials keyed where containerd never looks (docker.io, ``"*"``)."""
    reg = state.registries
    found: list[Finding] = []
    for key, entry in reg.configs.items():
        auth = entry.auth
        if auth is None:
            continue
        where = reg.where(auth.line)
        if auth.auth and not auth.username and decode_auth(auth.auth) is None:
            found.append(finding(
                "auth.malformed", reg.path, f"{where}: configs.\"{key}\".auth.auth is not base64 of user:password",
                "containerd decodes the `auth` value as base64 `user:password` and fails the pull's authorization when it "
                "cannot (`invalid auth configuration`).",
                evidence={"file": reg.path, "line": auth.line, "value": redact.MASK, "key": f"configs.{key}.auth.auth"},
                fix=fix("auth.malformed", reg.path, f"replace configs.\"{key}\".auth.auth with username and password",
                        kind="manual", files=[reg.path], detail=key, params={"key": f"configs.{key}.auth.auth", "line": auth.line}),
                runtime=RUNTIME,
            ))
        if key in (HUB, "index.docker.io") and "registry-1.docker.io" not in reg.configs:
            found.append(finding(
                "auth.wrong-key", reg.path, f"{where}: Docker Hub credentials under configs.\"{key}\" are never used",
                f"containerd looks credentials up by the host that answers with the 401 challenge, and Docker Hub's API host is "
                f"registry-1.docker.io; credentials keyed \"{key}\" are rendered into {state.generated.config_toml or 'config.toml'} "
                "but never sent, so Hub pulls stay anonymous and rate-limited (k3s#3937). TLS settings under this key do "
                "apply to registry-1.docker.io.",
                evidence={"file": reg.path, "line": auth.line, "value": f"configs.{key}.auth", "key": f"configs.{key}.auth"},
                fix=fix("auth.wrong-key", reg.path, "copy the credentials to configs.\"registry-1.docker.io\".auth",
                        files=[reg.path], restart=state.restart, detail=key,
                        params={"key": f"configs.{key}.auth", "new_key": "configs.registry-1.docker.io.auth", "line": auth.line}),
                runtime=RUNTIME,
            ))
        if key == WILDCARD:
            found.append(finding(
                "auth.wrong-key", reg.path, f"{where}: credentials under configs.\"*\" are not sent by containerd",
                "The \"*\" config key turns into the _default hosts.toml, which has no credentials; containerd looks credentials "
                "up by the exact endpoint host, so every registry and mirror that needs them must have its own configs entry.",
                evidence={"file": reg.path, "line": auth.line, "value": "configs.*.auth", "key": "configs.*.auth"},
                fix=fix("auth.wrong-key", reg.path, "repeat the credentials under each endpoint host", files=[reg.path],
                        restart=state.restart, detail="*", params={"key": "configs.*.auth", "new_key": "configs.<endpoint host>.auth",
                                                                  "line": auth.line}),
                runtime=RUNTIME,
            ))
    return found


def mirror_auth_findings(state: K3sState) -> list[Finding]:
    """Credentials for a registry are not sent to its mirrors: each mirror host needs its own configs entry."""
    reg = state.registries
    found: list[Finding] = []
    for key, mirror in reg.mirrors.items():
        entry = config_for_host(reg.configs, key)
        if entry is None or entry.auth is None or entry.key in (HUB, "index.docker.io"):
            continue  # Hub credentials keyed docker.io reach no host at all: auth_findings says so
        for spec in mirror.endpoints:
            try:
                norm = normalize_endpoint(spec.value)
            except ValueError:
                continue
            own = config_for_host(reg.configs, norm.registry)
            if norm.host in (key, default_host(key)) or (own is not None and own.auth is not None):
                continue
            found.append(finding(
                "auth.wrong-key", reg.path, f"{reg.where(spec.line)}: mirror {norm.host} gets no credentials",
                f"The credentials under configs.\"{entry.key}\" are sent only to {entry.key}; containerd looks them up by "
                f"the host that challenges, so requests to the mirror {norm.host} are anonymous. That is right for an "
                "open pull-through cache; a mirror that needs a login needs its own configs entry.",
                severity="info",
                evidence={"file": reg.path, "line": spec.line, "value": norm.host, "key": f"configs.{norm.host}.auth"},
                fix=fix("auth.wrong-key", reg.path, f"add configs.\"{norm.host}\".auth if the mirror needs a login",
                        files=[reg.path], restart=state.restart, detail=norm.host,
                        params={"key": f"configs.{entry.key}.auth", "new_key": f"configs.{norm.host}.auth", "line": spec.line}),
                runtime=RUNTIME,
            ))
    return found


def credentials_lookup(state: K3sState) -> Callable[[str], Credential | None]:
    """Credentials containerd sends to an endpoint host: what config.toml holds now, else registries.yaml."""
    cfg = state.generated.containerd

    def lookup(host: str) -> Credential | None:
        if cfg is not None and not state.stale:
            return cfg.credential(host)
        entry = state.registries.configs.get(host)
        if entry is None or entry.auth is None:
            return None
        return _credential(entry, f"{state.registries.where(entry.auth.line)} (configs.\"{host}\".auth)")

    return lookup
