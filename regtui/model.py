"""Results as data: the frozen records every check, planner, probe and front end exchanges.

Everything here is plain data with a ``to_dict`` that produces the JSON report contract
(schema ``regtui.report/1``, see the README). Nothing in this module does I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = [
    "SEVERITIES",
    "PANELS",
    "FixRef",
    "Finding",
    "SourceFile",
    "TLSInputs",
    "Endpoint",
    "Route",
    "RuntimeInfo",
    "Cause",
    "Verdict",
    "VERDICT_STATUSES",
    "severity_rank",
    "split_location",
    "fix_command",
    "verdict_fix_command",
]

#: Severities, most severe first.
SEVERITIES = ("error", "warning", "info")
#: Panels, in the order the workbench shows them.
PANELS = ("config", "mirrors", "certs", "proxy", "dns", "clock", "pull")


def severity_rank(severity: str) -> int:
    """Sort key: errors first, then warnings, then info."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def fix_command(fix_id: str, params: Mapping[str, Any] | None = None) -> str:
    """The command that previews a fix (``--apply`` applies it). A fix that installs a root the server
    does not send (``anchor_missing``) needs that root from the user, so its command asks for it."""
    return f"regtui fix {fix_id}" + (" --ca-file ROOT.pem" if (params or {}).get("anchor_missing") else "")


def verdict_fix_command(fix_id: str, findings: Iterable[Finding]) -> str:
    """:func:`fix_command` for the fix a verdict names, with the parameters of the finding that carries it."""
    return fix_command(fix_id, next((f.fix.params for f in findings if f.fix is not None and f.fix.id == fix_id), None))


def split_location(source: str) -> tuple[str, int | None]:
    """A ``path:line`` provenance -> (path, line); anything else -> (source, None)."""
    path, _, line = source.rpartition(":")
    if path and line.isdigit():
        return path, int(line)
    return source, None


@dataclass(frozen=True)
class FixRef:
    """The suggested fix attached to a finding (the fix engine plans and applies it)."""

    id: str
    """Stable id of this fix for this finding, e.g. ``config.ignored-key:etc-docker-daemon.json:3``."""
    summary: str
    """One line saying what the fix does."""
    kind: str
    """``edit`` (file change with diff, backup, undo), ``command`` (shown, run on confirmation) or ``manual``."""
    files: tuple[str, ...] = ()
    """Host paths the fix would change (absolute, as on the host, not re-rooted)."""
    restart: str = "none"
    """What must happen for the fix to take effect: ``none``, ``reload docker``, ``restart containerd``..."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Machine-readable inputs the fix planner needs (never secrets)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's ``fix`` object."""
        return {
            "id": self.id,
            "summary": self.summary,
            "kind": self.kind,
            "files": list(self.files),
            "restart": self.restart,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class Finding:
    """One problem, with the evidence that shows it and the fix that would remove it."""

    code: str
    """Stable public code from the catalogue (``regtui.findings``)."""
    severity: str
    """``error``, ``warning`` or ``info``."""
    panel: str
    """Panel the finding belongs to (one of ``PANELS``)."""
    subject: str
    """What it is about: a file path, ``host:port``, a layer digest."""
    title: str
    """One line for lists."""
    detail: str
    """A few sentences: what the runtime will do, and what the user will see."""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    """File and line, the offending value, the failing phase, the bytes seen. Secrets redacted."""
    fix: FixRef | None = None
    """The suggested fix, or ``None``."""
    runtime: str | None = None
    """The runtime the finding concerns, when it concerns one."""
    id: str = ""
    """Stable id within a report (``code@subject#runtime``), given by the engine; verdict chains name it."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's finding object."""
        return {
            "id": self.id or None,
            "code": self.code,
            "severity": self.severity,
            "panel": self.panel,
            "subject": self.subject,
            "title": self.title,
            "detail": self.detail,
            "runtime": self.runtime,
            "evidence": dict(self.evidence),
            "fix": self.fix.to_dict() if self.fix else None,
        }


@dataclass(frozen=True)
class SourceFile:
    """A configuration file (or directory) a runtime reads, and what became of reading it."""

    path: str
    """Host path (absolute, as on the host)."""
    runtime: str
    """``docker``, ``containerd``, ``crio``, ``k3s``, ``kubelet`` or ``shell``."""
    kind: str
    """What it is: ``daemon.json``, ``hosts.toml``, ``registries.conf``, ``systemd drop-in``..."""
    status: str
    """``ok``, ``missing``, ``parse-error``, ``unreadable`` or ``ignored``."""
    detail: str = ""
    """Why it is ignored, the parse error, or a note on its effect."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """Effective values read from it (secrets redacted), for the Config panel."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path,
            "runtime": self.runtime,
            "kind": self.kind,
            "status": self.status,
            "detail": self.detail,
            "values": dict(self.values),
        }


@dataclass(frozen=True)
class TLSInputs:
    """How a runtime will set up TLS for one endpoint."""

    verify: bool = True
    """Whether the server certificate is verified."""
    verify_reason: str = ""
    """Why verification is off (or the trust source when on), in words."""
    ca_files: tuple[str, ...] = ()
    """Extra CA files (host paths) trusted for this endpoint."""
    client_cert: tuple[tuple[str, str], ...] = ()
    """Client certificate/key pairs (host paths)."""
    system_roots: bool = True
    """Whether the system trust store is used as well."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the contract's ``tls`` object)."""
        return {
            "verify": self.verify,
            "verify_reason": self.verify_reason,
            "ca_files": list(self.ca_files),
            "client_cert": [list(pair) for pair in self.client_cert],
            "system_roots": self.system_roots,
        }


@dataclass(frozen=True)
class Endpoint:
    """One place a runtime would try for an image, in the runtime's order."""

    url: str
    """API root as the runtime builds it, e.g. ``https://mirror.example:5000/v2``."""
    host: str
    """``host[:port]`` as the runtime connects to it."""
    role: str
    """``mirror``, ``upstream`` or ``p2p``."""
    source: str
    """Provenance: ``path:line`` of the setting, or ``default (...)``."""
    repository: str
    """Repository path requested on this endpoint (after rewrites)."""
    capabilities: tuple[str, ...] = ("pull", "resolve")
    tls: TLSInputs = field(default_factory=TLSInputs)
    proxy: str | None = None
    """Proxy URL the daemon would use (credentials redacted), or ``None`` for direct."""
    proxy_reason: str = ""
    """Why: the variable used, or the NO_PROXY entry that matched."""
    credentials: str | None = None
    """Where credentials for this endpoint come from (``path:line (key)``); never the secret."""
    status: str = "untested"
    """``ok``, ``failed``, ``skipped`` or ``untested``."""
    reason: str = ""
    """Why it is skipped or failed."""
    http_fallback: bool = False
    """The runtime falls back to plain HTTP on this host when TLS fails."""
    query: str = ""
    """Query string the runtime adds (containerd's ``ns=`` for mirrors)."""

    def identity(self) -> tuple[Any, ...]:
        """What makes two endpoints the same for a probe: URL, repository and query, TLS inputs, proxy, credentials.

        Two entries with one URL but other TLS inputs (containerd's ``server`` without ``ca`` next
        to a ``[host]`` table with it) are two endpoints: a result of one says nothing of the other.
        """
        t = self.tls
        return (self.url, self.repository, self.query, self.http_fallback, t.verify, t.ca_files, t.client_cert,
                t.system_roots, self.proxy, self.credentials)

    @property
    def key(self) -> str:
        """Stable, printable identity key (a digest of :meth:`identity`; the proxy and credential source it
        covers are already redacted, and the digest hides them anyway)."""
        return "ep-" + hashlib.sha256(repr(self.identity()).encode()).hexdigest()[:12]

    def label(self) -> str:
        """The endpoint in words for a finding: URL, where it is configured, and the trust it is verified with."""
        t = self.tls
        if not self.url.startswith("https://"):
            trust = "plain HTTP"
        elif not t.verify:
            trust = "certificate not verified"
        else:
            trust = ", ".join(([] if not t.system_roots else ["system roots"]) + list(t.ca_files)) or "no trust anchors"
            if t.client_cert:
                trust += ", client certificate"
        extra = "".join(f", {x}" for x in (f"proxy {self.proxy}" if self.proxy else "",
                                           f"credentials {self.credentials}" if self.credentials else "") if x)
        return f"{self.url} ({self.source}; {trust}{extra})"

    def manifest_url(self, reference: str) -> str:
        """URL of the manifest request for ``reference`` (tag or digest) on this endpoint."""
        url = f"{self.url.rstrip('/')}/{self.repository}/manifests/{reference}"
        return f"{url}?{self.query}" if self.query else url

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's endpoint object."""
        return {
            "url": self.url,
            "key": self.key,
            "host": self.host,
            "role": self.role,
            "source": self.source,
            "repository": self.repository,
            "capabilities": list(self.capabilities),
            "tls": self.tls.to_dict(),
            "proxy": self.proxy,
            "proxy_reason": self.proxy_reason,
            "credentials": self.credentials,
            "status": self.status,
            "reason": self.reason,
            "http_fallback": self.http_fallback,
            "query": self.query,
        }


@dataclass(frozen=True)
class Route:
    """The ordered endpoints one runtime would try for one image reference."""

    runtime: str
    """``docker``, ``containerd``, ``crio`` or ``k3s``."""
    image: str
    """The normalised reference."""
    endpoints: tuple[Endpoint, ...]
    mode: str = ""
    """Which resolver path was assumed (``docker classic store``, ``containerd transfer service``...)."""
    assumed: str = ""
    """How the mode was decided (detected from what, or overridden)."""
    notes: tuple[str, ...] = ()
    """Facts about the route worth reading before the table."""

    def tried(self) -> tuple[Endpoint, ...]:
        """Endpoints the runtime will actually try, in order."""
        return tuple(e for e in self.endpoints if e.status != "skipped")

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's route object."""
        return {
            "runtime": self.runtime,
            "image": self.image,
            "mode": self.mode,
            "assumed": self.assumed,
            "notes": list(self.notes),
            "endpoints": [e.to_dict() for e in self.endpoints],
        }


@dataclass(frozen=True)
class RuntimeInfo:
    """A runtime found on the host, how it was found, and the files it reads."""

    name: str
    detected_by: tuple[str, ...]
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's runtime object."""
        return {"name": self.name, "detected_by": list(self.detected_by), "files": list(self.files)}


#: Verdict statuses, worst first.
VERDICT_STATUSES = ("fails", "degraded", "unknown", "ok")


@dataclass(frozen=True)
class Cause:
    """The one finding that explains a verdict, and where the runtime meets it."""

    code: str
    """The cause finding's code."""
    finding: str
    """The cause finding's id."""
    endpoint: str | None = None
    """The endpoint URL the runtime reports the failure for (or the costly one), ``None`` for configuration."""
    phase: str | None = None
    """Where it fails: ``config``, ``dns``, ``connect``, ``proxy``, ``tls``, ``http``, ``auth``, ``manifest``, ``blob``."""
    endpoint_key: str | None = None
    """``Endpoint.key`` of that endpoint (one URL can be several endpoints with other TLS inputs)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's ``cause`` object."""
        return {"code": self.code, "finding": self.finding, "endpoint": self.endpoint, "phase": self.phase,
                "endpoint_key": self.endpoint_key}


@dataclass(frozen=True)
class Verdict:
    """The answer for one (runtime, image): does the pull work, and if not, why and what to change."""

    runtime: str
    image: str
    status: str
    """``ok``, ``degraded``, ``fails`` or ``unknown`` (see ``VERDICT_STATUSES``)."""
    summary: str
    """One plain sentence."""
    cause: Cause | None = None
    chain: tuple[str, ...] = ()
    """Finding ids from the symptom the user sees to the cause (and the setting behind it)."""
    fix: str | None = None
    """Id of the fix that removes the cause, when one can be planned."""
    manual: str | None = None
    """What to do by hand when no fix can be applied."""
    untested: tuple[str, ...] = ()
    """What this verdict did not test (offline, --no-pull, the test pull ran as another runtime)."""
    endpoint: str | None = None
    """The endpoint that serves (or would serve) the pull, when one does."""
    endpoint_key: str | None = None
    """``Endpoint.key`` of that endpoint."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's verdict object."""
        return {
            "runtime": self.runtime,
            "image": self.image,
            "status": self.status,
            "summary": self.summary,
            "cause": self.cause.to_dict() if self.cause else None,
            "chain": list(self.chain),
            "fix": self.fix,
            "manual": self.manual,
            "untested": list(self.untested),
            "endpoint": self.endpoint,
            "endpoint_key": self.endpoint_key,
        }
