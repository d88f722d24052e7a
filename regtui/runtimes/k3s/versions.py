"""Which k3s/RKE2 and embedded containerd release runs here, and the known bugs of those releases
that change the route (k3s#7007 rewrites on the default endpoint, k3s#11857 ``_default`` fallback)."""

from __future__ import annotations

import posixpath
import re

from regtui.options import CheckOptions
from regtui.runtimes.containerd.versions import parse_version
from regtui.runtimes.k3s.state import K3sState

__all__ = ["parse_k3s_version", "detect_version", "rewrites_default_endpoint", "wildcard_fallback_broken"]

_K3S_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def parse_k3s_version(text: str) -> tuple[int, int, int] | None:
    """``v1.31.6+k3s1`` or ``v1.31.6-rke2r1`` -> (1, 31, 6)."""
    m = _K3S_VERSION.search(text or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def detect_version(state: K3sState, options: CheckOptions | None) -> None:
    """Set the k3s/RKE2 and containerd versions of ``state`` from the options, the RKE2 data dir or containerd.log."""
    host = state.host
    given = (options.extra.get("k3s_version") if options else None) or ""
    if given and parse_k3s_version(given):
        state.version, state.version_text, state.version_source = parse_k3s_version(given), given, "options"
    elif state.flavour.name == "rke2":
        # RKE2 unpacks into <data-dir>/data/<version>-<hash>/ and points <data-dir>/bin at it.
        try:
            real = host.resolve(posixpath.join(state.data_dir, "bin"))
        except OSError:
            real = None
        name = real.parent.name if real is not None and real.name == "bin" else ""
        if not parse_k3s_version(name):
            names = [n for n in host.listdir(posixpath.join(state.data_dir, "data")) or [] if parse_k3s_version(n)]
            name = names[-1] if len(names) == 1 else ""
        if parse_k3s_version(name):
            state.version = parse_k3s_version(name)
            state.version_text = name.rsplit("-", 1)[0] if name.count("-") >= 2 else name
            state.version_source = posixpath.join(state.data_dir, "data", name)
    if options is not None and options.containerd_version and parse_version(options.containerd_version):
        state.containerd_version = parse_version(options.containerd_version)
        state.containerd_version_text, state.containerd_version_source = options.containerd_version, "options"
        return
    log = posixpath.join(state.data_dir, "agent", "containerd", "containerd.log")
    text = host.read(log, limit=256 * 1024)
    if text.ok:
        m = re.search(r'msg="starting containerd".*?version=(v?[0-9][^\s"]*)', text.text)
        if m and parse_version(m.group(1)):
            state.containerd_version = parse_version(m.group(1))
            state.containerd_version_text = m.group(1)
            state.containerd_version_source = log


#: First release of each minor line that writes hosts.toml and skips rewrites on the default endpoint (k3s PR #8973).
_HOSTS_TOML_RELEASES = {26: 13, 27: 10, 28: 6, 29: 1}
#: k3s/RKE2 releases whose containerd 2.0 does not fall back from a ``_default`` mirror (k3s#11857).
_WILDCARD_20_BROKEN = {(1, 31, 6), (1, 32, 2)}


def rewrites_default_endpoint(state: K3sState) -> tuple[bool, str]:
    """Whether this k3s applies rewrites to the default endpoint too (older k3s, k3s#7007), and how that is known."""
    if state.generated.mode == "legacy":
        return True, f"{state.generated.config_toml} carries the mirrors itself (no config_path): k3s before the 2024 hosts.toml releases"
    v = state.version
    if v is None:
        return False, ""
    first = _HOSTS_TOML_RELEASES.get(v[1])
    old = v[:2] < (1, 26) or (first is not None and v[1] <= 29 and v[2] < first)
    return old, f"{state.flavour.name} {state.version_text} ({state.version_source})" if old else ""


def wildcard_fallback_broken(state: K3sState) -> tuple[bool, str]:
    """Whether this release's containerd 2.0 ignores the default endpoint of a ``_default`` mirror (k3s#11857)."""
    if state.version is not None and state.version in _WILDCARD_20_BROKEN:
        return True, f"{state.flavour.name} {state.version_text} ({state.version_source})"
    cv = state.containerd_version
    if state.version is None and cv is not None and (2, 0, 0) <= cv < (2, 0, 4) and "k3s" in state.containerd_version_text:
        return True, f"embedded containerd {state.containerd_version_text} ({state.containerd_version_source})"
    return False, ""

