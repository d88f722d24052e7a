"""Command fixes: restart or reload a daemon, step the clock, enable time sync, chmod a credential
file, install a CA into the OS store. The exact command and what it restarts are shown; it runs
only on explicit confirmation (``chroot ROOT`` under another root), and never with a placeholder
left in it."""

from __future__ import annotations

import re

from regtui.fixes._context import Context
from regtui.fixes._helpers import require
from regtui.fixes._model import CommandStep

__all__ = ["command_fix"]

_PLACEHOLDER = re.compile(r"<[A-Za-z _-]+>")


def _effect(ctx: Context, command: str) -> str:
    code = ctx.finding.code
    restarts = re.findall(r"systemctl (?:restart|reload) ([\w@.-]+)", command)
    if restarts:
        return f"restarts {', '.join(restarts)}: running containers keep running only with live-restore; " \
               "pulls in progress fail"
    if code == "clock.skew":
        return "steps the system clock at once (logs and timers see the jump)"
    if code == "clock.unsynchronized":
        return "starts time synchronisation"
    if command.startswith("chmod"):
        return "changes the file's permissions"
    if "update-ca-certificates" in command:
        return "adds the CA to the OS trust store (every TLS client on the host trusts it)"
    return ctx.finding.fix.summary if ctx.finding.fix else "runs the command"


def command_fix(ctx: Context) -> None:
    """A fix whose ``params.command`` is the exact command to run."""
    command = str(ctx.params.get("command") or "").strip()
    require(command, "the finding gives no command")
    placeholder = _PLACEHOLDER.search(command)
    runnable = placeholder is None and not command.startswith(("ls ", "cat "))
    why = ""
    if placeholder:
        why = f"fill in {placeholder.group(0)} and run it yourself"
    elif not runnable:
        why = "it only shows information; run it yourself"
    ctx.kind = "command"
    ctx.commands.append(CommandStep(command, _effect(ctx, command), runnable, why))
