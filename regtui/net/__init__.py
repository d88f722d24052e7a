"""Network layer: resolver, HTTP client, proxy rules, TLS and NTP probes.

:mod:`regtui.net.proxy` is pure (Go's proxy rules) and used offline by the route planner.
"""
