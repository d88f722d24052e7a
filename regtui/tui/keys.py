"""Every key of the workbench in one table: the help screen is generated from it, so it cannot drift."""

from __future__ import annotations

__all__ = ["MAIN_KEYS", "FIX_KEYS"]

#: (keys, what they do) on the main screen.
MAIN_KEYS: tuple[tuple[str, str], ...] = (
    ("v", "verdict per runtime and image: cause chain, fix (f), what was not tested"),
    ("1-7", "panels: 1 Config, 2 Mirrors, 3 Certificates, 4 Proxy, 5 DNS, 6 Clock, 7 Pull"),
    ("0", "all findings, every panel, errors first"),
    ("tab / shift+tab", "move between the panel's content and its findings"),
    ("↑ ↓ pgup pgdn", "move in a list or tree (enter/space folds a tree node)"),
    ("enter / f", "guided fix for the highlighted finding of the panel on screen (evidence, preview)"),
    ("enter (on an endpoint)", "Mirrors: the endpoint's detail: timings, TLS, proxy, predicted error, commands"),
    ("r", "re-run the current panel's checks"),
    ("R", "re-run everything (plan, probes, test pull)"),
    ("i", "change the image reference (re-plans routes, re-probes)"),
    ("/", "filter findings (words match code, severity, subject, title)"),
    ("c", "copy the selected item: finding, or the reproducer (curl, openssl, skopeo, dig)"),
    ("e", "export the report (JSON, Markdown, HTML, Prometheus) to a file"),
    ("u", "undo the last applied fix"),
    ("ctrl+p", "command palette: fix, export, copy reproducer, panels"),
    ("? / f1", "this help"),
    ("x / esc", "cancel the running probes and test pull (esc first closes a dialog or clears the filter)"),
    ("q / ctrl+c", "quit (cancels what runs first)"),
)

#: Keys inside the guided-fix dialog.
FIX_KEYS: tuple[tuple[str, str], ...] = (
    ("a", "apply the fix (asks for y to confirm; hidden with --read-only)"),
    ("y / n", "confirm / cancel the apply"),
    ("u", "undo the last applied fix"),
    ("c", "copy the preview (diff, command or steps)"),
    ("esc", "close the dialog"),
)
