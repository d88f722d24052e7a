"""JSON writer (schema ``regtui.report/1``; the schema itself is ``schema.json`` beside this file)."""

from __future__ import annotations

import json

from regtui.report import Report

__all__ = ["render"]


def render(report: Report) -> str:
    """The report as indented JSON with a trailing newline."""
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"
