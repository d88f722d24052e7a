"""Everything CRI-O (or podman/skopeo as root) reads for pulls, read once into :class:`CrioConfig`.

The view is what CRI-O sees (its unit environment, ``global_auth_file``) when CRI-O is on the
host, and what podman/skopeo run as root in this shell see otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.net.proxy import PROXY_VARS, ProxyEnv, from_environ
from regtui.runtimes.crio.auth import AuthStore, load_auth, unused_auth_files
from regtui.runtimes.crio.common import RUNTIME
from regtui.runtimes.crio.crioconf import CrioConf, load_crio_conf, unit_environment
from regtui.runtimes.crio.records import RegistriesConf
from regtui.runtimes.crio.registries import load_registries, registries_paths

__all__ = ["CrioConfig", "load_config"]


@dataclass
class CrioConfig:
    """Everything the CRI-O/podman route planner needs, read once."""

    host: Host
    home: str
    perspective: str
    """``crio`` (the CRI-O daemon's view) or ``podman`` (podman/skopeo as root in this shell)."""
    registries: RegistriesConf
    auth: AuthStore
    crio: CrioConf
    proxy_env: ProxyEnv


def _client_env(host: Host, client_env: Mapping[str, str] | None) -> dict[str, str]:
    """The podman/skopeo environment: given, else this process's when the host is live."""
    if client_env is not None:
        return dict(client_env)
    return dict(host.environ) if host.live else {}


def _client_inputs(crio_present: bool, crio: CrioConf, daemon_env: dict[str, str], env_sources: dict[str, str],
                   shell: dict[str, str]) -> tuple[dict[str, str], str, str, ProxyEnv]:
    """Whose environment, explicit auth file and proxy apply: CRI-O's when it is here, else the shell's."""
    if crio_present:
        why = f"global_auth_file ({crio.global_auth_file_source})" if crio.global_auth_file else ""
        return daemon_env, crio.global_auth_file, why, from_environ(daemon_env, env_sources, "crio")
    explicit = shell.get("REGISTRY_AUTH_FILE", "")
    why = "REGISTRY_AUTH_FILE (replaces the chain)" if explicit else ""
    proxy_env = from_environ(shell, {k: "environment" for k in PROXY_VARS if k in shell}, "podman")
    return shell, explicit, why, proxy_env


def load_config(host: Host, *, client_env: Mapping[str, str] | None = None) -> tuple[CrioConfig, list[SourceFile], list[Finding]]:
    """Read every file CRI-O (or podman/skopeo as root) reads for pulls.

    ``client_env`` is the environment podman/skopeo run with (this process's environment when
    the host is live, else empty); CRI-O's own comes from crio.service.
    """
    home = host.home()
    shell = _client_env(host, client_env)
    unit, unit_there = unit_environment(host)
    daemon_env, env_sources = dict(unit.environment), dict(unit.env_sources)
    sources, findings = list(unit.files), list(unit.findings)
    # crio.service's environment file alone is CRI-O's: its proxy is the daemon's, not this shell's.
    crio_present = bool(host.which("crio") or host.is_dir("/etc/crio") or unit_there)

    crio = load_crio_conf(host, unit, daemon_env) if crio_present else CrioConf()
    registries = load_registries(host, home, None if crio_present else shell)
    env, explicit, why, proxy_env = _client_inputs(crio_present, crio, daemon_env, env_sources, shell)
    auth = load_auth(host, home, env, registries.credential_helpers, explicit=explicit, explicit_why=why,
                     helpers_source=registries.credential_helpers_source)
    sources += crio.sources + registries.sources + auth.sources
    findings += crio.findings + registries.findings + auth.findings
    if crio_present:
        sources += _podman_override_note(host, home, shell)
        findings += unused_auth_files(host, home, auth, crio)
    cfg = CrioConfig(host, home, "crio" if crio_present else "podman", registries, auth, crio, proxy_env)
    return cfg, sources, findings


def _podman_override_note(host: Host, home: str, shell: Mapping[str, str]) -> list[SourceFile]:
    """podman/skopeo in this shell read another registries.conf than CRI-O: show it."""
    main, explicit, _, why = registries_paths(host, home, shell)
    if not explicit:
        return []
    return [SourceFile(main, RUNTIME, "registries.conf", "ignored",
                       f"{why}: podman/skopeo in this shell read this file instead; CRI-O does not")]
