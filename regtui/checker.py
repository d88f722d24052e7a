"""The check, as the fix engine runs it again (predicted re-check, re-check after a fix).

The fix engine sits below the engine that runs the check, so it cannot import it: the engine
registers its functions here when it is imported (:func:`register`), and the fix engine asks
for them with :func:`current`. Every front end imports the engine before it plans a fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from regtui.host import Host
from regtui.model import Finding
from regtui.options import CheckOptions

__all__ = ["Checker", "register", "current"]


@dataclass(frozen=True)
class Checker:
    """The engine's functions the fix engine needs."""

    plan: Callable[[CheckOptions, Host], Any]
    """The offline check of a host (its result has ``findings``)."""
    load_runtimes: Callable[[Host, CheckOptions, list[str]], list[Any]]
    """The runtime views of a host (errors appended to the list)."""
    network_findings: Callable[[Any, str], list[Finding] | None]
    """One panel's probe (``"pull"``: the test pull) run again on an offline check's plan; ``None`` when unavailable."""


_current: Checker | None = None


def register(checker: Checker) -> None:
    """Make ``checker`` the one the fix engine uses."""
    global _current
    _current = checker


def current() -> Checker:
    """The registered checker (raises when the engine was never imported: the caller reports the check as failed)."""
    if _current is None:
        raise RuntimeError("no check is registered (regtui.engine is not loaded)")
    return _current
