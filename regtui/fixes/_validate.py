"""Validation of a change before it is renamed into place, and the command runner.

Two kinds of check:

- **re-parse** (while planning, pure): every changed file must parse with the reader regtui uses
  for it (JSON, TOML, regtui's YAML subset, systemd unit syntax, environment files, PEM
  certificates). The whole offline check is also run on the planned files (see ``_engine``).
- **the runtime's own validator** (while applying, on the temporary file next to the target):
  ``containerd -c FILE config dump`` for containerd's config.toml, ``dockerd --validate
  --config-file FILE`` for daemon.json when dockerd has that flag (Engine 23 and later; detected
  from ``dockerd --help``, otherwise "validator unavailable"). Validators run only where their
  binary belongs to the system being fixed: under a live root, the root's own binary; under
  another root, only a binary the caller names (tests name the lab's containerd).

Commands go through a :data:`Runner` so tests can use a fake one; nothing here runs a command
that the caller did not pass in.
"""

from __future__ import annotations

import json
import posixpath
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from regtui import redact
from regtui.fixes._model import Check

__all__ = ["RunResult", "Runner", "subprocess_runner", "reparse", "validator_for", "run_validator",
           "file_kind"]

VALIDATOR_TIMEOUT = 20.0


@dataclass(frozen=True)
class RunResult:
    """What a command returned."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


Runner = Callable[[Sequence[str], float], RunResult]
"""``runner(argv, timeout)``: runs one command; raises ``OSError`` when it cannot be started."""


def subprocess_runner(argv: Sequence[str], timeout: float) -> RunResult:
    """Run ``argv`` (no shell unless argv says so) with a timeout; a timeout is exit status 124."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return RunResult(124, str(exc.stdout or ""), f"timed out after {timeout:g} s")
    return RunResult(out.returncode, out.stdout, out.stderr)


def file_kind(path: str) -> str:
    """What a host path is, for choosing its parser and validator."""
    base = posixpath.basename(path)
    if base.endswith(".json"):
        return "daemon.json" if base == "daemon.json" else "json"
    if base == "hosts.toml":
        return "hosts.toml"
    if base == "config.toml" and "/containerd/" in path:
        return "containerd-config"
    if base.endswith(".toml") or (base.endswith(".conf") and "/containers/" in path) or base == "registries.conf":
        return "toml"
    if base.endswith((".yaml", ".yml")):
        return "yaml"
    if "/systemd/" in path and (base.endswith((".conf", ".service"))):
        return "unit"
    if base.endswith((".env", "environment")) or "/default/" in path or "/sysconfig/" in path:
        return "env"
    if base.endswith((".crt", ".pem", ".cert")):
        return "pem"
    return "other"


def reparse(path: str, data: bytes | None) -> Check | None:
    """Parse a planned file the way regtui reads it; ``None`` for deletions and files of no known format."""
    if data is None:
        return None
    from regtui.host import decode_config_bytes

    text, decode_error = decode_config_bytes(data)
    name = f"re-parse {path}"
    if decode_error:
        return Check(name, "failed", decode_error)
    kind = file_kind(path)
    try:
        if kind in ("json", "daemon.json"):
            if text.strip():
                json.loads(text)
        elif kind in ("toml", "hosts.toml", "containerd-config"):
            tomllib.loads(text)
        elif kind == "yaml":
            from regtui.config import _yaml

            _yaml.loads(text)
        elif kind == "unit":
            from regtui.config import systemd

            _, problems = systemd.parse_unit(text, path, "regtui")
            if problems:
                return Check(name, "failed", problems[0].title)
        elif kind == "env":
            from regtui.fixes._dropin import EnvFile

            EnvFile(text, path).values()
        elif kind == "pem":
            from cryptography import x509

            if "CERTIFICATE-----" in text:
                x509.load_pem_x509_certificates(data)
        else:
            return None
    except Exception as exc:  # every parser has its own error type; all mean "does not parse"
        return Check(name, "failed", f"{type(exc).__name__}: {exc}")
    return Check(name, "ok", {"json": "valid JSON", "daemon.json": "valid JSON", "toml": "valid TOML",
                              "hosts.toml": "valid TOML", "containerd-config": "valid TOML", "yaml": "valid YAML",
                              "unit": "valid unit syntax", "env": "valid KEY=VALUE lines",
                              "pem": "valid PEM"}[kind])


def validator_for(path: str, daemon_json: str = "/etc/docker/daemon.json") -> str | None:
    """``containerd`` or ``dockerd`` when that runtime has a validator for this file."""
    kind = file_kind(path)
    if kind == "containerd-config":
        return "containerd"
    if kind == "daemon.json" or path == daemon_json:
        return "dockerd"
    return None


def run_validator(which: str, temp: Path, binary: str | None, runner: Runner, why_missing: str = "") -> Check:
    """Run the runtime's validator on ``temp`` (a fully written temporary file)."""
    if which == "containerd":
        name = "containerd config dump"
        if not binary:
            return Check(name, "unavailable", why_missing or "containerd is not installed")
        try:
            res = runner([binary, "-c", str(temp), "config", "dump"], VALIDATOR_TIMEOUT)
        except OSError as exc:
            return Check(name, "unavailable", f"cannot run {binary}: {exc}")
        if res.returncode == 0:
            return Check(name, "ok", f"{binary} -c <new file> config dump accepted it")
        return Check(name, "failed", _last_line(res) or f"exit status {res.returncode}")
    name = "dockerd --validate"
    if not binary:
        return Check(name, "unavailable", why_missing or "dockerd is not installed")
    try:
        helptext = runner([binary, "--help"], VALIDATOR_TIMEOUT)
    except OSError as exc:
        return Check(name, "unavailable", f"cannot run {binary}: {exc}")
    if "--validate" not in helptext.stdout + helptext.stderr:
        return Check(name, "unavailable",
                     f"validator unavailable: {binary} has no --validate flag (Docker Engine 23 and later)")
    res = runner([binary, "--validate", "--config-file", str(temp)], VALIDATOR_TIMEOUT)
    if res.returncode == 0:
        return Check(name, "ok", redact.text((res.stderr or res.stdout).strip()) or "configuration OK")
    return Check(name, "failed", _last_line(res) or f"exit status {res.returncode}")


def _last_line(res: RunResult) -> str:
    """The validator's last words, redacted (a validator may quote the offending value, credentials and all)."""
    lines = [line for line in (res.stderr + "\n" + res.stdout).splitlines() if line.strip()]
    return redact.text(lines[-1].strip()) if lines else ""


def validator_binary(which: str, host_live: bool, which_on_host: Callable[[str], str | None],
                     explicit: Mapping[str, str] | None) -> tuple[str | None, str]:
    """(binary to run, why none) for a validator: the caller's, or the live root's own."""
    if explicit and explicit.get(which):
        return explicit[which], ""
    if not host_live:
        return None, (f"{which} validator not run: the root is not this machine's, and its binaries are not "
                      "executed (pass a validator binary to run one)")
    found = which_on_host(which)
    return found, "" if found else f"{which} is not installed on this host"
