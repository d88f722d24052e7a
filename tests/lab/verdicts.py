"""Running the whole check against lab roots and reading its verdicts (shared by the verdict lab tests).

:func:`check` runs ``regtui check`` as the JSON format does and validates the report against the
schema; :func:`verdict` picks one runtime's verdict; :func:`apply_fix` runs
``regtui fix <id> --apply --yes`` on the same root, as a user would after reading the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from regtui import engine
from regtui.cli import main
from regtui.host import Host
from regtui.options import CheckOptions
from regtui.report import Report

from .fixtures import LAB_REPO, LAB_TAG
from .pullroots import LAB_CONTAINERD_VERSION
from .registry import Registry

__all__ = ["SCHEMA", "HOSTS", "lab_name", "lab_image_ref", "cli_args", "check", "verdict", "finding_by_id",
           "apply_fix"]

SCHEMA = json.loads((Path(__file__).parent.parent.parent / "regtui/report/schema.json").read_text())
#: The lab registry name, mapped in each root's hosts file (the lab certificate covers *.lab.test).
HOSTS = {"registry.lab.test": "127.0.0.1"}


def lab_name(registry: Registry) -> str:
    """The registry as a lab name (the lab certificate covers *.lab.test; the root's hosts file maps it)."""
    return f"registry.lab.test:{registry.port}"


def lab_image_ref(registry: Registry, tag: str = LAB_TAG) -> str:
    """The lab image's reference at ``registry`` under its lab name."""
    return f"{lab_name(registry)}/{LAB_REPO}:{tag}"


def cli_args(root: Path, image: str, runtime: str, timeout: str = "2") -> list[str]:
    """The command-line options :func:`check` uses, for ``regtui check`` and ``regtui fix``."""
    return ["--root", str(root), "--image", image, "--runtime", runtime, "--timeout", timeout,
            "--containerd-version", LAB_CONTAINERD_VERSION, "--docker-store", "classic"]


def check(root: Path, image: str, runtime: str = "auto", timeout: float = 2.0,
          **kwargs: Any) -> tuple[Report, dict[str, Any]]:
    """The whole check as `regtui check --format json` runs it; the JSON is validated against the schema."""
    import jsonschema

    options = CheckOptions(root=str(root), images=(image,), runtime=runtime, timeout=timeout,
                           containerd_version=LAB_CONTAINERD_VERSION, docker_store="classic", **kwargs)
    report = engine.run_check(options, Host(root=root, environ={}))
    assert not report.errors, report.errors
    data = report.to_dict()
    jsonschema.validate(json.loads(json.dumps(data)), SCHEMA)
    return report, data


def verdict(data: dict[str, Any], runtime: str) -> dict[str, Any]:
    """The verdict of ``runtime`` (one image per check here)."""
    (v,) = [v for v in data["verdicts"] if v["runtime"] == runtime]
    return v


def finding_by_id(data: dict[str, Any], fid: str) -> dict[str, Any]:
    """The finding with id ``fid``."""
    (f,) = [f for f in data["findings"] if f["id"] == fid]
    return f


def apply_fix(root: Path, fix_id: str, image: str, runtime: str, *extra: str) -> int:
    """``regtui fix <id> --apply --yes`` on ``root`` (no test pull while planning); the exit status."""
    return main(["fix", fix_id, *cli_args(root, image, runtime), *extra, "--no-pull", "--apply", "--yes"])
