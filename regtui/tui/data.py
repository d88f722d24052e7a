"""Pure helpers over the redacted report dict (``Report.to_dict()``): what the panels show.

Nothing here imports textual, so every rule the workbench applies (which findings a panel
lists, how a filter matches, which reproducer command an item gets) is testable as data.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from regtui import redact
from regtui.model import PANELS, severity_rank
from regtui.report.reproducers import Copyable, endpoint_reproducers, finding_reproducers
from regtui.report.sections import ms
from regtui.units import human_bytes

__all__ = [
    "PANEL_TITLES",
    "TAB_TITLES",
    "PROBE_PANELS",
    "NOT_BUILT",
    "Copyable",
    "finding_key",
    "panel_findings",
    "filter_findings",
    "counts",
    "first_value",
    "probe",
    "probe_state",
    "finding_text",
    "endpoint_reproducers",
    "finding_reproducers",
    "fmt_ms",
    "short_digest",
    "human_bytes",
    "fold_diff",
    "human_value",
    "human_key",
]

#: Panel titles in workbench order (number key = index + 1).
PANEL_TITLES: dict[str, str] = {
    "config": "Config",
    "mirrors": "Mirrors",
    "certs": "Certificates",
    "proxy": "Proxy",
    "dns": "DNS",
    "clock": "Clock",
    "pull": "Pull",
}
assert tuple(PANEL_TITLES) == PANELS

#: Shorter titles for the tabs, so eight tabs with their badges fit 80 columns.
TAB_TITLES: dict[str, str] = {**PANEL_TITLES, "certs": "Certs"}

#: Panels whose content comes from a network probe, and the report key that holds it.
PROBE_PANELS: dict[str, str] = {"mirrors": "mirrors", "certs": "tls", "proxy": "proxy", "dns": "dns", "clock": "clock"}

#: What the engine says when a probe module is missing.
NOT_BUILT = "not built in this version"


def finding_key(f: Mapping[str, Any]) -> tuple[str, str, str]:
    """Identity of a finding across re-checks (code, subject, runtime)."""
    return (f.get("code", ""), f.get("subject", ""), f.get("runtime") or "")


def _sort_key(f: Mapping[str, Any]) -> tuple[Any, ...]:
    panel = f.get("panel", "")
    return (severity_rank(f.get("severity", "")), PANELS.index(panel) if panel in PANELS else 99,
            f.get("code", ""), f.get("subject", ""))


def panel_findings(data: Mapping[str, Any], panel: str | None) -> list[dict[str, Any]]:
    """Findings of ``panel`` (every panel when ``None``), errors first."""
    found = [f for f in data.get("findings", []) if panel is None or f.get("panel") == panel]
    return sorted(found, key=_sort_key)


def filter_findings(findings: Iterable[Mapping[str, Any]], query: str) -> list[dict[str, Any]]:
    """Findings whose code, severity, subject, title or runtime contain every word of ``query``."""
    words = query.lower().split()
    out = []
    for f in findings:
        hay = " ".join(str(f.get(k) or "") for k in ("code", "severity", "subject", "title", "runtime", "panel")).lower()
        if all(w in hay for w in words):
            out.append(dict(f))
    return out


def counts(findings: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Findings per severity."""
    c = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        c[f.get("severity", "info")] = c.get(f.get("severity", "info"), 0) + 1
    return c


def probe(data: Mapping[str, Any], panel: str) -> Any:
    """The probe's data for ``panel`` (``None`` when the probe has not run or failed)."""
    key = PROBE_PANELS.get(panel)
    if key is None:
        return None
    entry = _panel_entry(data, key)
    if isinstance(entry, dict) and "data" in entry and set(entry) <= {"data", "elapsed_ms", "error"}:
        return entry.get("data")
    return entry or None


def _panel_entry(data: Mapping[str, Any], key: str) -> Any:
    """A probe panel's whole result: ``probes.panels[panel]`` (older reports: ``probes[key]``)."""
    probes = data.get("probes", {}) or {}
    panel = {"tls": "certs"}.get(key, key)
    if isinstance(probes.get("panels"), dict) and panel in probes["panels"]:
        return probes["panels"][panel]
    entry = probes.get(key)
    if key == "proxy":
        entry = (entry or {}).get("live")
    return entry


def probe_state(data: Mapping[str, Any], panel: str, running: bool) -> tuple[str, str]:
    """(state, words) of a panel's live evidence: ``running``, ``done``, ``offline``, ``not-built``, ``error``, ``none``."""
    if panel == "config":
        return ("running", "reading configuration") if running else ("done", "")
    if running:
        return "running", "probing" if panel != "pull" else "pulling"
    if data.get("mode") != "network":
        return "offline", "offline: configuration only, nothing probed (run without --offline)"
    if panel == "pull":
        if data.get("pull"):
            return "done", ""
        note = next((n for n in data.get("notes", []) if "pull" in n), "")
        if NOT_BUILT in note:
            return "not-built", f"the test pull is {NOT_BUILT}"
        return "none", note or "no test pull (--no-pull, no image, or no runtime to imitate)"
    key = PROBE_PANELS[panel]
    entry = _panel_entry(data, key)
    if not isinstance(entry, dict):
        return "none", "no live results"
    err = entry.get("error")
    if err == NOT_BUILT:
        return "not-built", f"live {PANEL_TITLES[panel]} probe: {NOT_BUILT}"
    if err:
        return "error", f"probe failed (a bug in regtui): {str(err).splitlines()[0]}"
    return "done", ""


def finding_text(f: Mapping[str, Any]) -> str:
    """A finding as plain text for the clipboard or a ticket (already redacted)."""
    lines = [f"[{f.get('severity')}] {f.get('code')}: {f.get('title')}", f"subject: {f.get('subject')}"]
    if f.get("runtime"):
        lines.append(f"runtime: {f['runtime']}")
    if f.get("detail"):
        lines.append(str(f["detail"]))
    ev = f.get("evidence") or {}
    if ev:
        lines.append("evidence:")
        lines += [f"  {k}: {v}" for k, v in ev.items()]
    fx = f.get("fix")
    if fx:
        restart = f" (then {fx['restart']})" if fx.get("restart") not in (None, "", "none") else ""
        lines.append(f"fix ({fx.get('kind')}): {fx.get('summary')}{restart}")
    return redact.text("\n".join(lines))


def first_value(d: Mapping[str, Any], keys: Iterable[str]) -> Any:
    """The value of the first of ``keys`` that ``d`` has and that is not empty (``None`` otherwise)."""
    for k in keys:
        if d.get(k) not in (None, ""):
            return d[k]
    return None


def fmt_ms(v: Any) -> str:
    """Milliseconds for a table cell, with the unit (the reports' rule)."""
    return ms(v, " ms")


def short_digest(d: Any, n: int = 12) -> str:
    """``sha256:0123456789ab`` from a full digest."""
    s = str(d or "")
    algo, _, hexpart = s.partition(":")
    return f"{algo}:{hexpart[:n]}" if hexpart else s[:n + 7]


_BEGIN, _END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def _cert_summary(pem: str) -> str:
    """``subject …, sha256 …`` of one PEM certificate (or a word when it does not parse)."""
    from regtui.net.tls.certs import fingerprint, name_text, parse_pem_bundle

    try:
        certs, _ = parse_pem_bundle(pem)
    except Exception:  # a damaged body is still folded, never shown as base64
        certs = []
    if not certs:
        return "certificate (unreadable)"
    return f"certificate {name_text(certs[0].subject)}, sha256 {fingerprint(certs[0])}"


def _fold_certificates(lines: list[str]) -> list[str]:
    """Each PEM block of a diff (``+``/``-``/`` `` prefixed) as one line: its subject and fingerprint."""
    out: list[str] = []
    block: list[str] | None = None
    for line in lines:
        body = line[1:] if line[:1] in "+- " else line
        if block is None and body.strip() == _BEGIN and not line.startswith(("+++", "---")):
            block = [line]
            continue
        if block is not None:
            block.append(line)
            if body.strip() == _END:
                pem = "\n".join(b[1:] if b[:1] in "+- " else b for b in block) + "\n"
                out.append(f"{block[0][:1]}[{_cert_summary(pem)}, {len(block)} lines folded]")
                block = None
            continue
        out.append(line)
    return out + (block or [])


def fold_diff(diff: str) -> str:
    """A unified diff for a person: files without certificates first, each PEM body folded to one line.

    A certificate fix writes a CA file (dozens of base64 lines) and changes a config file; the
    config change is what one reads first, and a certificate is known by subject and fingerprint.
    """
    files: list[list[str]] = []
    for line in diff.splitlines():
        if line.startswith("--- ") or not files:
            files.append([])
        files[-1].append(line)
    has_pem = [any(_BEGIN in line for line in f) for f in files]
    ordered = [f for f, pem in zip(files, has_pem) if not pem] + [f for f, pem in zip(files, has_pem) if pem]
    return "\n".join(line for f in ordered for line in _fold_certificates(f)) + ("\n" if diff.endswith("\n") else "")


def human_key(key: Any) -> str:
    """A config key as words where it is a program name (``version_assumed`` -> ``version assumed``).

    Keys that are file syntax (``registry-mirrors``, ``HTTPS_PROXY``, ``config_path`` in a file's
    values) are shown as written; only lower-case snake_case summary keys are turned into words.
    """
    k = str(key)
    return k.replace("_", " ") if re.fullmatch(r"[a-z]+(_[a-z]+)+", k) else k


def human_value(value: Any) -> str:
    """A value as a person writes it: yes/no, "not set", comma lists without repeats, ``k=v`` pairs."""
    if value is None or value == "" or value == [] or value == {}:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(dict.fromkeys(human_value(v) for v in value))
    if isinstance(value, dict):
        return ", ".join(f"{human_key(k)}={human_value(v)}" for k, v in value.items())
    return str(value)
