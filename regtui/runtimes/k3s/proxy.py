"""The embedded containerd's proxy environment (SEMANTICS §4).

The embedded containerd inherits k3s's environment, then every ``CONTAINERD_<VAR>`` replaces
``<VAR>`` (``CONTAINERD_HTTPS_PROXY`` wins over ``HTTPS_PROXY``); on servers k3s first appends
``.svc``, ``.<cluster-domain>`` and the cluster and service CIDRs to ``NO_PROXY``.
"""

from __future__ import annotations

from regtui import redact
from regtui.config.k3sservice import RUNTIME, split_where
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.runtimes.k3s.state import K3sState

__all__ = ["CONTAINERD_PREFIX", "containerd_environment", "proxy_findings"]

#: k3s hands ``CONTAINERD_<VAR>`` to its containerd as ``<VAR>``.
CONTAINERD_PREFIX = "CONTAINERD_"


def containerd_environment(env: dict[str, str], sources: dict[str, str], state: K3sState) -> tuple[dict[str, str], dict[str, str]]:
    """The environment k3s hands its containerd: ``CONTAINERD_<VAR>`` replaces ``<VAR>``; on servers
    NO_PROXY first gets ``.svc``, ``.<cluster-domain>`` and the cluster and service CIDRs."""
    out = {k: v for k, v in env.items() if not k.startswith(CONTAINERD_PREFIX)}
    src = {k: sources.get(k, "environment") for k in out}
    if state.role == "server":
        entries = [e for e in out.get("NO_PROXY", "").split(",") + out.get("no_proxy", "").split(",") if e]
        entries += [".svc", f".{state.cluster_domain}", state.cluster_cidr, state.service_cidr]
        out.pop("no_proxy", None)
        src.pop("no_proxy", None)
        out["NO_PROXY"] = ",".join(entries)
        src["NO_PROXY"] = (f"{sources.get('NO_PROXY') or sources.get('no_proxy') or 'environment'} + {state.flavour.name} server "
                           f"(.svc, .{state.cluster_domain}, {state.cluster_cidr}, {state.service_cidr})")
    for key, value in env.items():
        if key.startswith(CONTAINERD_PREFIX) and key != "CONTAINERD_LOG_LEVEL":
            out[key[len(CONTAINERD_PREFIX):]] = value
            src[key[len(CONTAINERD_PREFIX):]] = f"{sources.get(key, 'environment')} ({key})"
    return out, src


def proxy_findings(env: dict[str, str], sources: dict[str, str], state: K3sState) -> list[Finding]:
    """``CONTAINERD_https_proxy`` (lowercase) loses to an uppercase ``HTTPS_PROXY`` in the same process."""
    found: list[Finding] = []
    for lower in ("http_proxy", "https_proxy", "no_proxy"):
        prefixed = CONTAINERD_PREFIX + lower
        upper = lower.upper()
        if prefixed not in env or upper not in env or env[upper] == env[prefixed]:
            continue
        if CONTAINERD_PREFIX + upper in env:
            continue
        where = sources.get(prefixed, "environment")
        file, line = split_where(where)
        found.append(finding(
            "proxy.case-conflict", file, f"{prefixed} is overridden by {upper} in the embedded containerd",
            f"k3s passes {prefixed} to its containerd as {lower}; the inherited {upper} is still set and Go takes the "
            f"uppercase variable, so containerd uses {redact.url(env[upper])} ({sources.get(upper, 'environment')}).",
            evidence={"file": file, "line": line, "value": redact.url(env[prefixed]), "variable": prefixed,
                      "winner": upper, "winner_source": sources.get(upper, "environment")},
            fix=fix("proxy.case-conflict", file, f"rename {prefixed} to {CONTAINERD_PREFIX + upper}", files=[file],
                    restart=state.restart, detail=prefixed,
                    params={"key": prefixed, "new_key": CONTAINERD_PREFIX + upper, "line": line}),
            runtime=RUNTIME,
        ))
    return found
