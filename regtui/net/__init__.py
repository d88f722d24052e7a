"""Network layer: resolver, HTTP client, proxy rules, TLS and NTP probes.

:mod:`regtui.net.proxy` is pure (Go's proxy rules) and used offline by the route planner.
"""

import sys

# httpx imports its own command-line module (click, rich, pygments) when it is imported.
# regtui never uses it: keeping it out saves about 75 ms per run and keeps rich out of the core.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]
