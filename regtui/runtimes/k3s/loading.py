"""Reading k3s/RKE2 in order (service settings, registries.yaml, the generated files, the embedded
containerd's environment) and handing the engine a :class:`~regtui.runtimes.view.RuntimeView`
whose planner is :func:`regtui.runtimes.k3s.routes.plan`."""

from __future__ import annotations

import functools
from typing import Any

from regtui import redact
from regtui.config.k3sservice import EMBEDDED_SOCKET, RUNTIME, detect, read_settings
from regtui.findings import dedupe
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.net.proxy import from_environ
from regtui.options import CheckOptions
from regtui.runtimes.k3s import routes
from regtui.runtimes.k3s.auth import auth_findings, credentials_lookup, mirror_auth_findings
from regtui.runtimes.k3s.expected import expected_hosts
from regtui.runtimes.k3s.findings import (
    endpoint_findings,
    external_runtime_finding,
    key_shape_findings,
    tls_file_findings,
)
from regtui.runtimes.k3s.generated import (
    comparison_findings,
    freshness_findings,
    generated_sources,
    read_generated,
    template_findings,
)
from regtui.runtimes.k3s.proxy import containerd_environment, proxy_findings
from regtui.runtimes.k3s.registries import read_registries
from regtui.runtimes.k3s.state import K3sState
from regtui.runtimes.k3s.versions import detect_version
from regtui.runtimes.view import RuntimeView

__all__ = ["load_state", "load"]


def load_state(host: Host, options: CheckOptions | None = None) -> tuple[K3sState, list[SourceFile], list[Finding]]:
    """Read every file k3s (or RKE2) reads for registries; the state the planner works from."""
    settings = read_settings(host, options, K3sState)
    state, sources, findings = settings.state, settings.sources, settings.findings
    assert isinstance(state, K3sState)
    env, env_src, files, config_paths = settings.env, settings.env_sources, settings.env_files, settings.config_paths
    detect_version(state, options)
    state.registries = read_registries(host, state.private_registry, state.restart)
    reg = state.registries
    findings += reg.findings
    if reg.status == "missing":
        sources.append(SourceFile(reg.path, RUNTIME, "registries.yaml", "missing",
                                  "no private registry configuration: every registry is pulled from directly"))
    elif reg.parsed is not None:
        sources.append(reg.parsed.source(RUNTIME, "registries.yaml", reg.fatal, values={
            "mirrors": {k: [redact.url(e.value) for e in m.endpoints] for k, m in reg.mirrors.items()},
            "rewrites": {k: {p: r for p, r, _ in m.rewrites} for k, m in reg.mirrors.items() if m.rewrites},
            "configs": {k: {"auth": "***" if c.auth else None,
                            "tls": {"ca_file": c.tls.ca_file, "cert_file": c.tls.cert_file, "key_file": c.tls.key_file,
                                    "insecure_skip_verify": c.tls.insecure_skip_verify} if c.tls else None}
                        for k, c in reg.configs.items()},
        }))
    state.expected, problems = expected_hosts(reg, state.no_default_endpoint, state.restart)
    findings += problems
    findings += (auth_findings(state) + mirror_auth_findings(state) + key_shape_findings(state)
                 + tls_file_findings(state) + endpoint_findings(state))

    state.generated = read_generated(state)
    gen = state.generated
    if gen.containerd is not None:
        findings += [f for f in gen.containerd.findings if f.code in ("config.parse-error", "config.permission")]
    findings += comparison_findings(state)
    findings += template_findings(state)
    sources += generated_sources(state)

    cenv, csrc = containerd_environment(env, env_src, state)
    state.proxy_env = from_environ(cenv, csrc, label=f"{state.flavour.name} containerd")
    findings += proxy_findings(env, env_src, state)
    config_mtimes = [(p, host.read(p).mtime) for p in config_paths if host.is_file(p)]
    findings += freshness_findings(state, files, config_mtimes, env_src)
    if state.external_runtime:
        findings.append(external_runtime_finding(state))
    return state, sources, findings


def _summary(state: K3sState) -> dict[str, Any]:
    gen = state.generated
    return {
        "flavour": state.flavour.name,
        "role": state.role,
        "unit": state.unit,
        "version": state.version_text or None,
        "version_source": state.version_source or None,
        "containerd_version": state.containerd_version_text or None,
        "containerd_version_source": state.containerd_version_source or None,
        "data_dir": state.data_dir,
        "data_dir_source": state.data_dir_source,
        "registries_yaml": state.registries.path,
        "registries_yaml_source": state.private_registry_source,
        "registries_yaml_status": state.registries.status,
        "disable_default_registry_endpoint": state.no_default_endpoint,
        "disable_default_registry_endpoint_source": state.no_default_source or "default (false)",
        "embedded_registry": state.embedded_registry,
        "container_runtime_endpoint": state.runtime_endpoint or EMBEDDED_SOCKET,
        "generated_config": gen.config_toml,
        "generated_mode": gen.mode,
        "generated_hosts_dirs": sorted(gen.dirs),
        "expected_hosts_dirs": sorted(state.expected),
        "differing": dict(state.differing),
        "stale": state.stale,
        "template": gen.template,
        "proxy": state.proxy_env.effective(),
    }


def load(host: Host, options: CheckOptions | None = None) -> RuntimeView:
    """k3s/RKE2's registry configuration as its embedded containerd uses it (the view is named ``k3s``)."""
    state, sources, findings = load_state(host, options)
    return RuntimeView(
        name=RUNTIME,
        detected_by=detect(host),
        sources=sources,
        findings=dedupe(findings),
        proxy_env=state.proxy_env,
        planner=functools.partial(routes.plan, state),
        credentials=credentials_lookup(state),
        summary=_summary(state),
    )
