"""The fix catalogue: which planner turns a finding into a plan (FINDINGS.md, "fix" column).

Each planner re-reads the files with regtui's own readers (never trusting redacted evidence)
and edits them format-preservingly. The catalogue, by finding code:

==================================  ==========================================================
code (where)                        fix
==================================  ==========================================================
config.unknown-key (daemon.json)    rename to the key dockerd meant (``proxies.*`` nested), or remove
config.ignored-key (daemon.json)    ``registry-mirror``/``insecure-registry``... moved to the plural
                                    key (lists merged); a flattened object un-nested; a Docker
                                    Hub insecure entry removed
config.ignored-key (config.toml)    2.x ``configs.*.tls`` migrated to hosts.toml; ``version = 2``
                                    added to a version-less file with v2 plugin names
config.ignored-key (hosts.toml)     look-alike key renamed (``insecure_skip_verify`` -> ``skip_verify``)
config.ignored-key (registries.*)   misspelled key renamed; crio.conf ``registries`` moved to a
                                    registries.conf.d drop-in; registries.yaml key renamed or
                                    duplicate endpoint removed
config.invalid-value                daemon.json value normalised (mirror scheme, insecure entry,
                                    type), missing ``--config-file`` created; registries.conf
                                    location without scheme (+ ``insecure``); hosts.toml bad
                                    capability dropped or ``[host]`` stub added; certs.d CA file
                                    renamed to ``.crt``; registries.yaml endpoint corrected
config.flag-conflict                drop-in resetting dockerd's ExecStart without the flag
config.mirrors-with-config-path,    legacy ``mirrors``/``configs.*.tls`` -> hosts.toml, ``auths``
config.legacy-registry-config       -> ``configs.*.auth``, ``config_path`` = one directory
config.hosts-dir-unused             ``config_path`` set (one directory); directory copied where
                                    the runtime reads it; insecure entry removed; OS CA (command)
config.hosts-dir-misnamed           directory renamed to the exact host[:port]; files lifted up
config.blocked                      ``blocked = true`` removed (after confirmation)
config.short-name-prompt            registries.conf.d drop-in with ``short-name-mode = "permissive"``
mirror.not-applied                  hosts.toml with the mirrors (Docker containerd store);
                                    ``config_path``; registries.conf ``prefix`` corrected
mirror.unreachable                  mirror removed where it is configured
mirror.slower-than-upstream         mirror moved after the faster endpoint
mirror.http-mismatch                scheme switched (insecure entry / hosts.toml server for an upstream)
tls.unknown-authority, self-signed, CA installed where the runtime reads it (fingerprint confirmed)
trust-differs, intercepted
auth.helper-missing                 ``credsStore``/``credHelpers``/``credential-helpers`` entry removed
auth.wrong-key                      credentials copied under the key the runtime looks up
proxy.https-missing                 HTTPS_PROXY = HTTP_PROXY in the daemon's drop-in / env file
proxy.bypass-missing                host appended to the daemon's NO_PROXY
proxy.scheme-tls                    ``https://`` proxy URL -> ``http://``
proxy.case-conflict                 lowercase variable made equal to the uppercase one
pull.low-concurrency                ``max-concurrent-downloads`` / containerd's (transfer or CRI) limit
config.permission, config.not-      commands shown with what they restart; run on confirmation
applied, proxy.not-applied,
clock.skew, clock.unsynchronized
==================================  ==========================================================

Anything else is ``manual``: the steps and the evidence, nothing written.

This module is the one registration list: it imports the planner modules (``_cat_*``), which
import only the planning context, the helpers and the editors, and the engine reads
:func:`planner_for`; so the engine sits above the planners and nothing imports back up.
"""

from __future__ import annotations

from typing import Callable

from regtui.fixes import _cat_certs as certs
from regtui.fixes import _cat_commands as commands
from regtui.fixes import _cat_containerd as containerd
from regtui.fixes import _cat_crio as crio
from regtui.fixes import _cat_docker as docker
from regtui.fixes import _cat_files as files
from regtui.fixes import _cat_k3s as k3s
from regtui.fixes import _cat_mirrors as mirrors
from regtui.fixes import _cat_proxy as proxy
from regtui.fixes._context import Planner
from regtui.fixes._validate import file_kind
from regtui.model import Finding

__all__ = ["planner_for", "COMMAND_CODES", "CA_CODES"]

#: Codes whose fix is a command.
COMMAND_CODES = ("config.permission", "config.not-applied", "proxy.not-applied", "clock.skew", "clock.unsynchronized")
#: Codes whose fix trusts a CA.
CA_CODES = ("tls.unknown-authority", "tls.self-signed", "tls.trust-differs", "tls.intercepted")

_SIMPLE: dict[str, Planner] = {
    "config.unknown-key": docker.unknown_key,
    "config.flag-conflict": docker.flag_conflict,
    "config.mirrors-with-config-path": containerd.migrate_legacy,
    "config.legacy-registry-config": containerd.migrate_legacy,
    "config.blocked": crio.unblock,
    "config.short-name-prompt": crio.short_name_dropin,
    "mirror.unreachable": mirrors.remove_mirror,
    "mirror.slower-than-upstream": mirrors.reorder_mirror,
    "mirror.http-mismatch": mirrors.switch_scheme,
    "auth.helper-missing": docker.helper_missing,
    "proxy.https-missing": proxy.https_missing,
    "proxy.case-conflict": proxy.case_conflict,
    "proxy.bypass-missing": proxy.bypass_missing,
    "proxy.scheme-tls": proxy.scheme_tls,
    "pull.low-concurrency": mirrors.raise_concurrency,
}


def _path(finding: Finding) -> str:
    fx = finding.fix
    p = fx.params if fx else {}
    return str(p.get("file") or finding.subject.split("#", 1)[0])


def _ignored_key(finding: Finding) -> Planner | None:
    p = finding.fix.params if finding.fix else {}
    path = _path(finding)
    kind = file_kind(path)
    if kind == "daemon.json" or (path.endswith(".json") and finding.runtime == "docker"):
        return docker.ignored_key
    if kind == "containerd-config":
        if p.get("action") == "insert-top":
            return containerd.insert_version
        if "hosts_toml_path" in p:
            return containerd.migrate_legacy
        return None
    if kind == "hosts.toml":
        return containerd.hosts_ignored_key
    if kind == "yaml":
        return k3s.endpoint_fix if p.get("action") == "remove" else k3s.rename_key
    if finding.runtime == "crio" and ("new_key" in p or "drop_in" in p) and p.get("new_key") != "credHelpers":
        return crio.ignored_key
    return None


def _invalid_value(finding: Finding) -> Planner | None:
    p = finding.fix.params if finding.fix else {}
    path = _path(finding)
    kind = file_kind(path)
    if p.get("action") == "rename":
        return files.rename_file
    if kind in ("daemon.json", "json") and finding.runtime == "docker":
        return docker.invalid_value
    if kind == "hosts.toml":
        return containerd.hosts_invalid_value
    if kind == "yaml" and "index" in p:
        return k3s.endpoint_fix
    if finding.runtime == "crio" and "new_value" in p:
        return crio.invalid_value
    return None


def _hosts_dir_unused(finding: Finding) -> Planner | None:
    p = finding.fix.params if finding.fix else {}
    if "command" in p:
        return commands.command_fix
    if p.get("action") in ("copy", "copy-contents"):
        return files.copy_contents
    if p.get("remove") is not None:
        return lambda ctx: docker.remove_insecure(ctx, "/etc/docker/daemon.json", str(p.get("key")), str(p["remove"]))
    if p.get("key") == "config_path":
        return containerd.set_config_path
    return None


def _misnamed(finding: Finding) -> Planner | None:
    action = (finding.fix.params if finding.fix else {}).get("action")
    return {"rename": files.rename_dir, "move-contents": files.move_contents}.get(str(action))


def _not_applied(finding: Finding) -> Planner | None:
    p = finding.fix.params if finding.fix else {}
    if p.get("action") in ("write-hosts-toml", "add-hosts"):
        return docker.hosts_toml_for_mirrors
    if p.get("key") == "config_path":
        return containerd.set_config_path
    if p.get("key") == "prefix" and "new_value" in p:
        return crio.set_prefix
    return None


def _wrong_key(finding: Finding) -> Planner | None:
    p = finding.fix.params if finding.fix else {}
    if "section" in p:
        return docker.cli_wrong_key
    if "from_host" in p:
        return containerd.wrong_key
    if "keys" in p and "to" in p:
        return crio.copy_auth_entries
    if file_kind(_path(finding)) == "yaml":
        return k3s.wrong_key
    return None


_BY_FINDING: dict[str, Callable[[Finding], Planner | None]] = {
    "config.ignored-key": _ignored_key,
    "config.invalid-value": _invalid_value,
    "config.hosts-dir-unused": _hosts_dir_unused,
    "config.hosts-dir-misnamed": _misnamed,
    "mirror.not-applied": _not_applied,
    "auth.wrong-key": _wrong_key,
}


def planner_for(finding: Finding) -> Planner | None:
    """The planner for ``finding``'s fix, or ``None`` when the fix is manual."""
    fx = finding.fix
    if fx is None or fx.kind == "manual":
        return None
    if finding.code in COMMAND_CODES or (fx.kind == "command" and "command" in fx.params):
        return commands.command_fix
    if finding.code in CA_CODES:
        return certs.install_ca if "ca_pem_fingerprint" in fx.params else None
    if finding.code in _BY_FINDING:
        return _BY_FINDING[finding.code](finding)
    return _SIMPLE.get(finding.code)
