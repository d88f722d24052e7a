"""``registries.yaml`` checks that need no image reference: key shapes, TLS files, endpoint values
and rewrite patterns, and an external CRI that makes the file irrelevant (credentials: :mod:`.auth`)."""

from __future__ import annotations

import posixpath

from regtui import redact
from regtui.config.k3sservice import RUNTIME, split_where
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.runtimes.k3s.expected import WILDCARD, endpoint_finding, key_host, normalize_endpoint
from regtui.runtimes.k3s.rewrites import go_regexp_problem
from regtui.runtimes.k3s.state import K3sState

__all__ = ["key_shape_findings", "tls_file_findings", "endpoint_findings", "external_runtime_finding"]


def key_shape_findings(state: K3sState) -> list[Finding]:
    """mirrors/configs keys are registry host[:port] names; a scheme or path makes them name nothing."""
    reg = state.registries
    found: list[Finding] = []
    sections = [("mirrors", k, m.line) for k, m in reg.mirrors.items()] + [("configs", k, c.line) for k, c in reg.configs.items()]
    for section, key, line in sections:
        if key == WILDCARD or ("://" not in key and "/" not in key):
            continue
        host = key_host(key)
        effect = (f"k3s writes {posixpath.join(state.generated.certs_dir or 'certs.d', key)}, a directory containerd never "
                  f"looks up, so the mirror never applies to {host}" if section == "mirrors" else
                  f"containerd looks credentials and TLS up by the bare host ({host}), so these settings never apply")
        found.append(finding(
            "config.invalid-value", reg.path, f"{reg.where(line)}: {section} key {key!r} is a URL, not a registry host",
            f"registries.yaml keys are the registry's host[:port] exactly as image names use it; {effect}.",
            severity="warning",
            evidence={"file": reg.path, "line": line, "value": redact.url(key), "key": f"{section}.{key}"},
            fix=fix("config.invalid-value", reg.path, f"rename the key to {host!r}", files=[reg.path], restart=state.restart,
                    detail=f"{section}.{key}", params={"key": f"{section}.{redact.url(key)}", "new_key": f"{section}.{host}",
                                                       "line": line}),
            runtime=RUNTIME,
        ))
    return found


def tls_file_findings(state: K3sState) -> list[Finding]:
    """Each configs.<host>.tls file must exist: containerd reads them when it builds the hosts for a pull."""
    reg, host = state.registries, state.host
    found: list[Finding] = []
    for key, entry in reg.configs.items():
        tls = entry.tls
        if tls is None:
            continue
        pairs = (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file))
        for name, path in pairs:
            if not path:
                continue
            text = host.read(path, limit=1024 * 1024)
            why = ""
            if text.status == "missing":
                why = "no such file"
            elif not text.ok:
                why = f"cannot be read ({text.error})"
            elif name != "key_file" and "CERTIFICATE-----" not in text.text:
                why = "no PEM certificate in it"
            elif name == "key_file" and "PRIVATE KEY-----" not in text.text:
                why = "no PEM private key in it"
            if why:
                state.flagged_files.add(path)
                line = tls.lines.get(name)
                found.append(finding(
                    "config.invalid-value", reg.path, f"{reg.where(line)}: configs.\"{key}\".tls.{name} {path}: {why}",
                    f"k3s copies the path into hosts.toml; containerd reads the file for every pull that uses {key} and fails "
                    f"them all (`unable to read CA cert` / `failed to load X509 key pair`).",
                    evidence={"file": reg.path, "line": line, "value": path, "error": why, "key": f"configs.{key}.tls.{name}"},
                    fix=fix("config.invalid-value", reg.path, f"put a valid file at {path} or correct configs.\"{key}\".tls.{name}",
                            files=[reg.path], restart=state.restart, detail=f"{key}.{name}",
                            params={"key": f"configs.{key}.tls.{name}", "line": line, "path": path}),
                    runtime=RUNTIME,
                ))
        if bool(tls.cert_file) != bool(tls.key_file):
            have, missing = ("cert_file", "key_file") if tls.cert_file else ("key_file", "cert_file")
            line = tls.lines.get(have)
            found.append(finding(
                "config.invalid-value", reg.path, f"{reg.where(line)}: configs.\"{key}\".tls has {have} without {missing}",
                "k3s writes the pair into hosts.toml with an empty half; containerd then fails to load the client key pair and "
                f"every pull that uses {key} fails.",
                evidence={"file": reg.path, "line": line, "value": getattr(tls, have), "key": f"configs.{key}.tls.{missing}"},
                fix=fix("config.invalid-value", reg.path, f"add {missing} next to {have}", files=[reg.path],
                        restart=state.restart, detail=f"{key}.{missing}", params={"key": f"configs.{key}.tls.{missing}", "line": line}),
                runtime=RUNTIME,
            ))
    return found


def endpoint_findings(state: K3sState) -> list[Finding]:
    """Endpoint values k3s accepts but that do not do what they look like."""
    reg = state.registries
    found: list[Finding] = []
    for key, mirror in reg.mirrors.items():
        for spec in mirror.endpoints:
            try:
                norm = normalize_endpoint(spec.value)
            except ValueError:
                continue
            if norm.userinfo:
                found.append(endpoint_finding(
                    reg, spec, key, "credentials in the URL are dropped",
                    "containerd takes only scheme, host and path from a hosts.toml host; user:password in the URL is never "
                    f"sent. Put the credentials under configs.\"{norm.host}\".auth.", state.restart, severity="warning",
                    new_value=norm.url))
            if norm.override_path and "/v2" not in norm.path:
                found.append(endpoint_finding(
                    reg, spec, key, f"path {norm.path!r} is used verbatim (override_path), without /v2",
                    f"A path other than /v2 makes k3s set override_path: containerd requests "
                    f"{norm.url}/<repository>/manifests/<tag> with no /v2 in it. That is right for registries that serve the API "
                    f"under this exact path; most path-based proxies (Nexus, Artifactory) want {norm.url}/v2.",
                    state.restart, severity="info", new_value=f"{norm.url}/v2"))
    for pattern_owner, mirror in reg.mirrors.items():
        for pattern, _repl, line in mirror.rewrites:
            problem = go_regexp_problem(pattern)
            if problem:
                found.append(finding(
                    "config.invalid-value", reg.path, f"{reg.where(line)}: rewrite pattern {pattern!r} does not compile: {problem}",
                    f"k3s's containerd compiles rewrites with Go's RE2 and skips a pattern that fails (`Failed to compile "
                    f"rewrite`): images for {pattern_owner} are requested from the mirror under their original name.",
                    evidence={"file": reg.path, "line": line, "value": pattern, "error": problem,
                              "key": f"mirrors.{pattern_owner}.rewrite"},
                    fix=fix("config.invalid-value", reg.path, f"rewrite {pattern!r} in RE2 syntax", files=[reg.path],
                            restart=state.restart, detail=f"{pattern_owner}.rewrite",
                            params={"key": f"mirrors.{pattern_owner}.rewrite", "line": line, "value": pattern}),
                    runtime=RUNTIME,
                ))
    return found


def external_runtime_finding(state: K3sState) -> Finding:
    """k3s runs with ``container-runtime-endpoint``: registries.yaml does not configure pod pulls."""
    file, line = split_where(state.runtime_endpoint_source)
    return finding(
        "config.ignored-key", state.registries.path,
        f"{state.registries.path} does not configure pod image pulls: {state.flavour.name} uses {state.runtime_endpoint}",
        f"With container-runtime-endpoint set ({state.runtime_endpoint_source}) {state.flavour.name} runs no containerd of "
        "its own; kubelet pulls through that runtime, which reads its own registry configuration.",
        severity="info",
        evidence={"file": file, "line": line, "value": state.runtime_endpoint},
        fix=fix("config.ignored-key", state.registries.path, "configure the registries in the external runtime instead",
                kind="manual", detail="container-runtime-endpoint", params={"key": "container-runtime-endpoint"}),
        runtime=RUNTIME,
    )
