"""What to do when the lab cannot run here: skip locally, fail in CI.

Every fixture checks its prerequisites through these helpers. A missing binary, missing root or
missing library makes the test *skip* on a developer's machine, but *fail* when
``REGTUI_REQUIRE_LAB=1`` (set by ``.ci/run``), so CI can never go green by skipping the lab.
"""

from __future__ import annotations

import importlib.util
import os
from typing import NoReturn

import pytest

from .ntp import find_libfaketime
from .procs import find_binary

__all__ = [
    "lab_required",
    "lab_unavailable",
    "require_binary",
    "require_root",
    "require_libfaketime",
    "require_module",
]

#: Environment variable that turns every missing lab prerequisite into a failure.
REQUIRE_ENV = "REGTUI_REQUIRE_LAB"


def lab_required() -> bool:
    """True when the lab is mandatory (``REGTUI_REQUIRE_LAB=1``)."""
    return os.environ.get(REQUIRE_ENV, "") == "1"


def lab_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when the lab is mandatory."""
    if lab_required():
        pytest.fail(f"lab prerequisite missing ({REQUIRE_ENV}=1): {reason}", pytrace=False)
    pytest.skip(f"lab prerequisite missing: {reason}")


def require_binary(name: str) -> str:
    """Return the path of ``name`` (Debian dirs searched first), or skip/fail."""
    path = find_binary(name)
    if path is None:
        lab_unavailable(f"binary {name!r} not found")
    return path


def require_root(why: str) -> None:
    """Skip/fail unless running as root (dockerd, ``unshare -m``)."""
    if os.geteuid() != 0:
        lab_unavailable(f"root needed for {why}")


def require_libfaketime() -> str:
    """Return the path of libfaketime.so.1, or skip/fail."""
    path = find_libfaketime()
    if path is None:
        lab_unavailable("libfaketime.so.1 not found (Debian package faketime)")
    return path


def require_module(name: str) -> None:
    """Skip/fail unless Python module ``name`` is importable."""
    if importlib.util.find_spec(name) is None:
        lab_unavailable(f"Python module {name!r} not installed")
