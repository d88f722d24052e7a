"""``registries.yaml`` read the way k3s reads it (SEMANTICS §4).

k3s decodes the file with ``gopkg.in/yaml.v2`` into rancher/wharfie's ``Registry`` struct
(``pkg/registries``), and only when it starts: unknown keys are silently ignored, a value of the
wrong type (a string where ``endpoint`` wants a list, a quoted ``"true"`` for
``insecure_skip_verify``) stops k3s from starting, and a repeated top-level ``mirrors:`` or
``configs:`` block merges into one map. Secrets stay out of every finding.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from regtui import redact
from regtui.config._yaml import YAMLParsed, loads, read_yaml
from regtui.config.k3sservice import RUNTIME, yaml_kind
from regtui.config.yamlscan import YAMLError
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding

__all__ = [
    "AuthEntry",
    "TLSEntry",
    "ConfigEntry",
    "EndpointSpec",
    "MirrorEntry",
    "Registries",
    "read_registries",
]


@dataclass
class AuthEntry:
    """``configs.<host>.auth``; the secrets are never printed."""

    username: str = ""
    password: str = field(default="", repr=False)
    auth: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    line: int | None = None


@dataclass
class TLSEntry:
    """``configs.<host>.tls``."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False
    line: int | None = None
    lines: dict[str, int | None] = field(default_factory=dict)


@dataclass
class ConfigEntry:
    """``configs.<key>``."""

    key: str
    line: int | None
    auth: AuthEntry | None = None
    tls: TLSEntry | None = None


@dataclass(frozen=True)
class EndpointSpec:
    """One ``mirrors.<key>.endpoint`` item as written."""

    value: str
    line: int | None
    index: int


@dataclass
class MirrorEntry:
    """``mirrors.<key>``."""

    key: str
    line: int | None
    endpoints: list[EndpointSpec] = field(default_factory=list)
    rewrites: list[tuple[str, str, int | None]] = field(default_factory=list)
    """(pattern, replacement, line) in file order."""


@dataclass
class Registries:
    """``registries.yaml`` as wharfie decodes it."""

    path: str
    status: str = "missing"
    """``ok``, ``missing``, ``parse-error``, ``unreadable`` or ``invalid`` (k3s refuses the types)."""
    parsed: YAMLParsed | None = None
    mirrors: dict[str, MirrorEntry] = field(default_factory=dict)
    configs: dict[str, ConfigEntry] = field(default_factory=dict)
    fatal: str = ""
    """Why k3s will not start with this file (parse or type error), or ``""``."""
    findings: list[Finding] = field(default_factory=list)
    mtime: float | None = None

    def where(self, line: int | None) -> str:
        """``path:line``."""
        return f"{self.path}:{line}" if line else self.path


# -- registries.yaml decoding (yaml.v2 into wharfie's types) ----------------------------------------

_KNOWN = {
    "top": ("mirrors", "configs", "auths"),
    "mirror": ("endpoint", "rewrite"),
    "config": ("auth", "tls"),
    "auth": ("username", "password", "auth", "identity_token"),
    "tls": ("ca_file", "cert_file", "key_file", "insecure_skip_verify"),
}
_GO_TYPES = {"top": "registries.Registry", "mirror": "registries.Mirror", "config": "registries.RegistryConfig",
             "auth": "registries.AuthConfig", "tls": "registries.TLSConfig"}
_LOOKALIKES = {
    "endpoints": "endpoint", "mirror": "mirrors", "config": "configs", "rewrites": "rewrite",
    "identitytoken": "identity_token", "identityToken": "identity_token", "token": "identity_token",
    "ca": "ca_file", "cacert": "ca_file", "ca_cert": "ca_file", "cert": "cert_file", "key": "key_file",
    "insecure": "insecure_skip_verify", "skip_verify": "insecure_skip_verify", "insecureSkipVerify": "insecure_skip_verify",
    "insecure-skip-verify": "insecure_skip_verify", "user": "username", "pass": "password",
}
_SECRET_FIELDS = ("password", "auth", "identity_token")


class _Decoder:
    """Decodes the YAML data the way ``yaml.Unmarshal`` fills wharfie's structs."""

    def __init__(self, reg: Registries, state_restart: str) -> None:
        assert reg.parsed is not None
        self.reg = reg
        self.parsed = reg.parsed
        self.doc = reg.parsed.doc
        self.restart = state_restart

    def line(self, key: tuple[Any, ...]) -> int | None:
        return self.parsed.line(*key)

    def text(self, key: tuple[Any, ...], value: Any) -> str:
        """Go's string for a scalar: its source text when YAML resolved it to a non-string."""
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        if self.doc is not None and key in self.doc.raw:
            return self.doc.raw[key]
        return str(value).lower() if isinstance(value, bool) else str(value)

    def key_text(self, path: tuple[Any, ...], key: Any) -> str:
        if isinstance(key, str):
            return key
        if self.doc is not None and path + (key,) in self.doc.key_raw:
            return self.doc.key_raw[path + (key,)]
        return "" if key is None else str(key)

    def type_error(self, key: tuple[Any, ...], value: Any, go_type: str, secret: bool = False) -> None:
        """A value yaml.v2 cannot store: Unmarshal fails and k3s does not start."""
        line = self.line(key) or 1
        shown = redact.MASK if secret else (self.text(key, value) if not isinstance(value, (list, dict)) else None)
        message = f"cannot unmarshal {yaml_kind(value)}{f' `{shown}`' if shown is not None else ''} into {go_type}"
        dotted = ".".join(str(k) for k in key)
        self.reg.fatal = self.reg.fatal or f"{self.reg.where(line)}: {message}"
        self.reg.findings.append(finding(
            "config.invalid-value", self.reg.path, f"{self.reg.where(line)}: {dotted}: {message}",
            f"k3s decodes registries.yaml with yaml.v2 and stops at start-up with `yaml: unmarshal errors: line {line}: "
            f"{message}`; no node with this file runs k3s until it is fixed.",
            evidence={"file": self.reg.path, "line": line, "value": redact.MASK if secret else redact.value(value),
                      "key": dotted, "error": message},
            fix=fix("config.invalid-value", self.reg.path, f"write {dotted} as {_go_type_words(go_type)}",
                    files=[self.reg.path], restart=self.restart, detail=dotted,
                    params={"key": dotted, "line": line, "want": go_type}),
            runtime=RUNTIME,
        ))

    def string(self, key: tuple[Any, ...], value: Any, secret: bool = False) -> str:
        if isinstance(value, (list, dict)):
            self.type_error(key, value, "string", secret)
            return ""
        return self.text(key, value)

    def boolean(self, key: tuple[Any, ...], value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        self.type_error(key, value, "bool")
        return False

    def struct(self, key: tuple[Any, ...], value: Any, kind: str) -> dict[str, Any] | None:
        """The known fields of a mapping; unknown keys become ``config.ignored-key``."""
        if value is None:
            return None
        if not isinstance(value, dict):
            self.type_error(key, value, _GO_TYPES[kind])
            return None
        known = _KNOWN[kind]
        out: dict[str, Any] = {}
        for raw_key, item in value.items():
            name = self.key_text(key, raw_key)
            if name in known:
                out[name] = (raw_key, item)
            else:
                self.unknown(key + (raw_key,), name, known, item)
        return out

    def unknown(self, key: tuple[Any, ...], name: str, known: tuple[str, ...], value: Any) -> None:
        line = self.line(key)
        meant = _LOOKALIKES.get(name) or next(iter(difflib.get_close_matches(name, known, 1, 0.75)), "")
        if meant not in known:
            meant = ""
        secret = _kind_of(key) == "auth" or any(w in name.lower() for w in ("pass", "auth", "token", "secret", "key"))
        parent = ".".join(str(k) for k in key[:-1]) or "(top level)"
        self.reg.findings.append(finding(
            "config.ignored-key", self.reg.path, f"{self.reg.where(line)}: {name!r} is not a registries.yaml key; k3s ignores it",
            f"yaml.v2 drops keys that wharfie's {_GO_TYPES.get(_kind_of(key), 'struct')} does not define, without a word, "
            f"so nothing under {name!r} in {parent} applies. {('Did you mean ' + repr(meant) + '?') if meant else ''}".strip(),
            evidence={"file": self.reg.path, "line": line, "key": ".".join(str(k) for k in key),
                      "value": redact.MASK if secret else redact.value(value if not isinstance(value, dict) else "{...}")},
            fix=fix("config.ignored-key", self.reg.path, f"rename {name!r} to {meant!r}" if meant else f"remove {name!r}",
                    files=[self.reg.path], restart=self.restart, detail=".".join(str(k) for k in key),
                    params={"key": ".".join(str(k) for k in key), "new_key": meant or None, "line": line}),
            runtime=RUNTIME,
        ))

    def decode(self) -> None:
        data = self.parsed.data
        top = self.struct((), data, "top")
        if top is None:
            return
        if "mirrors" in top:
            raw_key, mirrors = top["mirrors"]
            self.mirrors((raw_key,), mirrors)
        if "configs" in top:
            raw_key, configs = top["configs"]
            self.configs((raw_key,), configs)
        if "auths" in top:
            raw_key, _ = top["auths"]
            line = self.line((raw_key,))
            self.reg.findings.append(finding(
                "config.ignored-key", self.reg.path, f"{self.reg.where(line)}: k3s does not use the deprecated 'auths' section",
                "wharfie decodes `auths` but k3s never renders it into containerd's configuration; credentials belong in "
                "configs.\"<endpoint host>\".auth.",
                evidence={"file": self.reg.path, "line": line, "key": "auths", "value": "{...}"},
                fix=fix("config.ignored-key", self.reg.path, "move each entry to configs.\"<host>\".auth", files=[self.reg.path],
                        restart=self.restart, detail="auths", params={"key": "auths", "new_key": "configs.<host>.auth", "line": line}),
                runtime=RUNTIME,
            ))

    def mirrors(self, key: tuple[Any, ...], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.type_error(key, value, "map[string]registries.Mirror")
            return
        for raw_name, item in value.items():
            name = self.key_text(key, raw_name)
            mkey = key + (raw_name,)
            entry = MirrorEntry(name, self.line(mkey))
            fields = self.struct(mkey, item, "mirror") or {}
            if "endpoint" in fields:
                raw_key, endpoints = fields["endpoint"]
                ekey = mkey + (raw_key,)
                if endpoints is not None and not isinstance(endpoints, list):
                    self.type_error(ekey, endpoints, "[]string")
                elif endpoints:
                    for i, ep in enumerate(endpoints):
                        entry.endpoints.append(EndpointSpec(self.string(ekey + (i,), ep), self.line(ekey + (i,)), i))
            if "rewrite" in fields:
                raw_key, rewrites = fields["rewrite"]
                rkey = mkey + (raw_key,)
                if rewrites is not None and not isinstance(rewrites, dict):
                    self.type_error(rkey, rewrites, "map[string]string")
                elif rewrites:
                    for pattern, repl in rewrites.items():
                        entry.rewrites.append((self.key_text(rkey, pattern), self.string(rkey + (pattern,), repl),
                                               self.line(rkey + (pattern,))))
            self.reg.mirrors[name] = entry

    def configs(self, key: tuple[Any, ...], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            self.type_error(key, value, "map[string]registries.RegistryConfig")
            return
        for raw_name, item in value.items():
            name = self.key_text(key, raw_name)
            ckey = key + (raw_name,)
            entry = ConfigEntry(name, self.line(ckey))
            fields = self.struct(ckey, item, "config") or {}
            if "auth" in fields:
                raw_key, auth = fields["auth"]
                akey = ckey + (raw_key,)
                afields = self.struct(akey, auth, "auth")
                if afields is not None:
                    entry.auth = AuthEntry(line=self.line(akey))
                    for fname, (fkey, fval) in afields.items():
                        setattr(entry.auth, fname, self.string(akey + (fkey,), fval, secret=fname in _SECRET_FIELDS))
            if "tls" in fields:
                raw_key, tls = fields["tls"]
                tkey = ckey + (raw_key,)
                tfields = self.struct(tkey, tls, "tls")
                if tfields is not None:
                    entry.tls = TLSEntry(line=self.line(tkey))
                    for fname, (fkey, fval) in tfields.items():
                        entry.tls.lines[fname] = self.line(tkey + (fkey,))
                        if fname == "insecure_skip_verify":
                            entry.tls.insecure_skip_verify = self.boolean(tkey + (fkey,), fval)
                        else:
                            setattr(entry.tls, fname, self.string(tkey + (fkey,), fval))
            self.reg.configs[name] = entry


def _kind_of(key: tuple[Any, ...]) -> str:
    depth = len(key)
    if depth == 1:
        return "top"
    section = key[0]
    if section == "mirrors":
        return "mirror"
    if depth == 3:
        return "config"
    return "auth" if key[2] == "auth" else "tls"


def _go_type_words(go_type: str) -> str:
    return {"[]string": "a list of strings (- item per line)", "bool": "true or false (unquoted)", "string": "a string",
            "map[string]string": "a mapping of pattern: replacement"}.get(go_type, "a mapping")


def _duplicate_findings(reg: Registries, restart: str) -> None:
    doc = reg.parsed.doc if reg.parsed else None
    if doc is None:
        return
    for dup in doc.duplicates:
        dotted = ".".join(str(k) for k in dup.path)
        merged = len(dup.path) == 1 and dup.path[0] in ("mirrors", "configs")
        reg.findings.append(finding(
            "config.ignored-key", reg.path, f"{reg.where(dup.line)}: {dotted} is given twice (first at line {dup.first_line})",
            ("yaml.v2 merges the entries of both blocks into one map; where both name the same registry the later one "
             "replaces the earlier entirely." if merged else
             f"yaml.v2 keeps only the later value; everything under line {dup.first_line} is ignored."),
            evidence={"file": reg.path, "line": dup.line, "first_line": dup.first_line, "key": dotted, "value": dotted},
            fix=fix("config.ignored-key", reg.path, f"merge the two {dotted} blocks into one", files=[reg.path],
                    restart=restart, detail=f"{dotted}@{dup.line}",
                    params={"key": dotted, "line": dup.line, "first_line": dup.first_line, "action": "merge-duplicate"}),
            runtime=RUNTIME, severity="info" if merged else None,
        ))


def _merge_duplicate_sections(reg: Registries) -> None:
    """yaml.v2 decodes a repeated top-level ``mirrors:``/``configs:`` into the same map (entries merge)."""
    parsed = reg.parsed
    if parsed is None or parsed.doc is None or not isinstance(parsed.data, dict):
        return
    for dup in parsed.doc.duplicates:
        if len(dup.path) == 1 and dup.path[0] in ("mirrors", "configs"):
            earlier = _earlier_block(parsed, dup.path[0], dup.first_line, dup.line)
            later = parsed.data.get(dup.path[0])
            if isinstance(earlier, dict) and isinstance(later, dict):
                merged = dict(earlier)
                merged.update(later)
                parsed.data[dup.path[0]] = merged


def _earlier_block(parsed: YAMLParsed, section: str, first: int, second: int) -> Any:
    """The value of the first of two ``section:`` blocks, re-read from the lines between them."""
    lines = parsed.file.text.splitlines()
    text = "\n".join(lines[first - 1:second - 1])
    try:
        doc = loads(text)
    except YAMLError:
        return None
    if parsed.doc is not None and isinstance(doc.data, dict):
        for k, v in doc.lines.items():
            parsed.doc.lines.setdefault(k, v + first - 1)
            parsed.lines.setdefault(k, v + first - 1)
    return doc.data.get(section) if isinstance(doc.data, dict) else None


def read_registries(host: Host, path: str, restart: str = "restart k3s") -> Registries:
    """Read and decode ``registries.yaml`` (secrets stay out of every finding)."""
    reg = Registries(path)
    parsed = read_yaml(host, path, RUNTIME, secret=True,
                       what="k3s fails to start (`failed to ... private registry configuration`): yaml.v2 rejects the file.")
    reg.parsed = parsed
    reg.mtime = parsed.file.mtime
    reg.findings += parsed.findings
    reg.status = parsed.status
    if parsed.status == "parse-error":
        err = parsed.findings[0].evidence if parsed.findings else {}
        reg.fatal = f"{path}:{err.get('line') or 1}: {parsed.error}"
    if not parsed.ok:
        return reg
    _merge_duplicate_sections(reg)
    _Decoder(reg, restart).decode()
    _duplicate_findings(reg, restart)
    if reg.fatal:
        reg.status = "invalid"
    return reg
