"""From ``registries.yaml`` to the hosts.toml files k3s will write (k3s ``pkg/agent/containerd/
config.go``, ``getHostConfigs``; SEMANTICS §4).

- endpoints are normalised by ``normalizeEndpointAddress``: no scheme means https, except
  localhost/loopback on a port other than 443 (http); a path of ``""``, ``/`` or ``/v2`` becomes
  ``/v2``, any other path is kept verbatim with ``override_path = true``; ``docker.io`` becomes
  ``registry-1.docker.io``; duplicates are dropped; a last endpoint equal to the default is folded
  into it; ``"*"`` becomes the ``_default`` dir;
- the default endpoint is the ``server`` line, tried last without rewrites, and left out with
  ``disable-default-registry-endpoint``;
- TLS for an endpoint comes from ``configs[<endpoint host>]`` with the docker.io alias
  (``configForHost``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from regtui import redact
from regtui.config.hoststoml import default_host, is_localhost
from regtui.config.k3sservice import RUNTIME
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.runtimes.k3s.registries import ConfigEntry, EndpointSpec, Registries

__all__ = [
    "HUB",
    "DEFAULT_DIR",
    "WILDCARD",
    "NormalizedEndpoint",
    "ExpectedEndpoint",
    "ExpectedHost",
    "normalize_endpoint",
    "config_for_host",
    "endpoint_finding",
    "expected_hosts",
    "key_host",
]

HUB = "docker.io"
#: The hosts dir k3s writes for the ``"*"`` registries.yaml key.
DEFAULT_DIR = "_default"
WILDCARD = "*"


@dataclass(frozen=True)
class NormalizedEndpoint:
    """``normalizeEndpointAddress``: what k3s writes into hosts.toml for one endpoint."""

    registry: str
    """The host used for ``configs`` lookups (``registry-1.docker.io`` maps back to ``docker.io``)."""
    scheme: str
    host: str
    path: str
    override_path: bool
    userinfo: bool = False
    """The endpoint carried ``user:pass@``: containerd drops it."""

    @property
    def url(self) -> str:
        """``scheme://host/path`` (the hosts.toml table name)."""
        return f"{self.scheme}://{self.host}{self.path}"


@dataclass
class ExpectedEndpoint:
    """One endpoint k3s will write for a registry."""

    norm: NormalizedEndpoint | None
    """``None`` for the ``"*"`` default (``server = ""``: the registry's own upstream)."""
    config: ConfigEntry | None
    source: str
    rewrites: list[tuple[str, str, int | None]] = field(default_factory=list)
    value: str = ""
    """The endpoint as written in registries.yaml (the key, for a default made from a registry key)."""
    explicit: bool = False
    """Listed under ``endpoint`` (a default endpoint is explicit when the last endpoint was folded into it)."""


@dataclass
class ExpectedHost:
    """One ``certs.d/<name>/hosts.toml`` k3s will generate."""

    name: str
    key: str
    default: ExpectedEndpoint | None
    endpoints: list[ExpectedEndpoint] = field(default_factory=list)


def normalize_endpoint(value: str) -> NormalizedEndpoint:
    """k3s's ``normalizeEndpointAddress``; raises ``ValueError`` where Go's ``url.Parse`` fails."""
    text = value if "://" in value else "//" + value
    if any(c in value for c in " \t\n\x7f") or any(ord(c) < 0x20 for c in value):
        raise ValueError(f"invalid character in URL {value!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        # urllib quotes the part it could not read, which may be a piece of the password.
        why = "invalid port or host after the user:password part" if "@" in value else str(exc)
        raise ValueError(f"parse {value!r}: {why}") from None
    netloc = parts.netloc
    userinfo = "@" in netloc
    hostport = netloc.rpartition("@")[2]
    if not hostport:
        raise ValueError(f"{value!r} has no host")
    scheme = parts.scheme.lower()
    if scheme and scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme {scheme!r} in {value!r}")
    if not scheme:
        scheme = "http" if is_localhost(hostport) and port is not None and port != 443 else "https"
    registry = hostport
    hostport = default_host(hostport)
    if hostport == "registry-1.docker.io":
        registry = HUB
    path = unquote(parts.path)
    if path in ("", "/", "/v2"):
        return NormalizedEndpoint(registry, scheme, hostport, "/v2", False, userinfo)
    return NormalizedEndpoint(registry, scheme, hostport, path, True, userinfo)


def config_for_host(configs: dict[str, ConfigEntry], host: str) -> ConfigEntry | None:
    """``configForHost``: the docker.io alias first (``registry-1.docker.io``), then the host itself."""
    alias = default_host(host)
    if alias != host and alias in configs:
        return configs[alias]
    return configs.get(host)


def _has_config(ep: ExpectedEndpoint | None) -> bool:
    """``endpointHasConfig``."""
    if ep is None:
        return False
    return bool((ep.norm is not None and ep.norm.override_path) or (ep.config and (ep.config.auth or ep.config.tls))
                or ep.rewrites)


def endpoint_finding(reg: Registries, spec: EndpointSpec, key: str, message: str, detail: str, restart: str,
                     severity: str | None = None, new_value: str | None = None) -> Finding:
    """``config.invalid-value`` for one ``mirrors.<key>.endpoint`` item (its URL redacted)."""
    shown = redact.url(spec.value)
    return finding(
        "config.invalid-value", reg.path, f"{reg.where(spec.line)}: endpoint {shown!r} for {key}: {message}",
        detail, severity=severity,
        evidence={"file": reg.path, "line": spec.line, "value": shown, "key": f"mirrors.{key}.endpoint.{spec.index}"},
        fix=fix("config.invalid-value", reg.path, f"correct endpoint {shown}" + (f" to {new_value}" if new_value else ""),
                files=[reg.path], restart=restart, detail=f"{key}#{spec.index}",
                params={"key": f"mirrors.{key}.endpoint", "index": spec.index, "line": spec.line, "value": shown,
                        "new_value": new_value}),
        runtime=RUNTIME,
    )


def expected_hosts(reg: Registries, no_default: bool, restart: str = "restart k3s") -> tuple[dict[str, ExpectedHost], list[Finding]]:
    """``getHostConfigs`` without the embedded registry: the hosts.toml k3s writes, by dir name."""
    findings: list[Finding] = []
    hosts: dict[str, ExpectedHost] = {}

    def default_for(key: str, config: ConfigEntry | None) -> ExpectedHost | None:
        try:
            norm = None if key == WILDCARD else normalize_endpoint(key)
        except ValueError:
            return None
        source = reg.where(config.line if config else (reg.mirrors[key].line if key in reg.mirrors else None))
        return ExpectedHost(DEFAULT_DIR if key == WILDCARD else key, key, ExpectedEndpoint(norm, config, source, value=key))

    for key, config in reg.configs.items():
        made = default_for(key, config)
        if made is not None:
            hosts[made.name] = made
    for key, mirror in reg.mirrors.items():
        current = hosts.get(key)  # looked up under the raw key: a "*" config does not carry over (k3s does the same)
        if current is None:
            current = default_for(key, config_for_host(reg.configs, key))
            if current is None:
                continue
            if no_default:
                current.default = None
            elif key == WILDCARD:
                current.default = ExpectedEndpoint(None, None, reg.where(mirror.line), value="")
        seen: set[str] = set()
        for spec in mirror.endpoints:
            try:
                norm = normalize_endpoint(spec.value)
            except ValueError as exc:
                findings.append(endpoint_finding(
                    reg, spec, key, str(exc), f"k3s logs `Ignoring invalid endpoint URL {spec.index}={spec.value}` and skips it.",
                    restart, severity="warning"))
                continue
            if norm.url in seen:
                findings.append(finding(
                    "config.ignored-key", reg.path, f"{reg.where(spec.line)}: endpoint {redact.url(spec.value)!r} repeats an earlier one for {key}",
                    f"k3s logs `Skipping duplicate endpoint URL {spec.index}={redact.url(spec.value)}`: the entry normalises to "
                    f"{norm.url}, which is already listed.",
                    evidence={"file": reg.path, "line": spec.line, "value": redact.url(spec.value), "normalized": norm.url},
                    fix=fix("config.ignored-key", reg.path, f"remove the duplicate endpoint {redact.url(spec.value)}", files=[reg.path],
                            restart=restart, detail=f"{key}#{spec.index}",
                            params={"key": f"mirrors.{key}.endpoint", "index": spec.index, "line": spec.line, "action": "remove"}),
                    runtime=RUNTIME, severity="info"))
                continue
            seen.add(norm.url)
            ep = ExpectedEndpoint(norm, config_for_host(reg.configs, norm.registry), reg.where(spec.line),
                                  list(mirror.rewrites), spec.value, explicit=True)
            last = spec.index + 1 == len(mirror.endpoints)
            if last and current.default is not None and current.default.norm is not None and current.default.norm.url == norm.url:
                current.default = ep
            else:
                current.endpoints.append(ep)
        hosts[DEFAULT_DIR if key == WILDCARD else key] = current
    for name in [n for n, h in hosts.items() if not h.endpoints and not _has_config(h.default)]:
        del hosts[name]
    return hosts, findings


def key_host(key: str) -> str:
    """``https://reg.example:5000/v2`` -> ``reg.example:5000``: what a registries.yaml key should have been."""
    rest = key.split("://", 1)[-1]
    return rest.split("/", 1)[0].rpartition("@")[2]
