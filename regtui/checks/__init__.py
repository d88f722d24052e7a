"""Checks that span runtimes: they turn routes and daemon environments into findings.

Per-file findings come from the config readers; these modules add what needs the whole
picture (every route, every daemon's proxy view, the shell's environment).
"""
