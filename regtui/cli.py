"""Command-line front end: ``check``, ``pull``, ``fix``, ``undo``, ``report`` and ``tui``.

Exit status of ``check`` (and ``report``): 0 when no finding is an error, 1 when one is,
2 for a usage or internal error (one line on stderr; the traceback only with ``--debug``).
The headless commands never import textual.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from regtui import __version__

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
_COMMANDS = ("check", "pull", "fix", "undo", "report", "tui")


class UsageError(Exception):
    """A problem with what the user asked for (exit status 2)."""


def _add_check_options(p: argparse.ArgumentParser, with_format: bool = True) -> None:
    p.add_argument("--root", default="/", help="filesystem root of the host (e.g. /host in a kubectl debug pod)")
    p.add_argument("--image", action="append", default=[], metavar="REF",
                   help="image reference to plan and probe (repeatable)")
    p.add_argument("--runtime", default="auto", choices=("auto", "docker", "containerd", "crio", "k3s", "all"),
                   help="runtime(s) to check (default: the ones detected under the root)")
    p.add_argument("--no-pull", action="store_true", help="probe endpoints but do not run the test pull")
    p.add_argument("--offline", action="store_true", help="no network at all: configuration checks only")
    p.add_argument("--dns-server", metavar="IP[:PORT]", help="also resolve through this DNS server")
    p.add_argument("--ntp-server", action="append", default=[], metavar="HOST[:PORT]", help="NTP server to compare with")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="per-phase network timeout (default 5)")
    p.add_argument("--docker-store", default="auto", choices=("auto", "classic", "containerd"),
                   help="Docker image store to assume (default: detect)")
    p.add_argument("--containerd-version", metavar="X.Y[.Z]", help="installed containerd version (default: detect)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pull (default: this host's)")
    p.add_argument("--state-dir", metavar="DIR", help="where fixes keep backups (default ROOT/var/lib/regtui)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    if with_format:
        p.add_argument("--format", default="text", choices=("text", "json", "markdown", "html"))
        p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the workbench and tests)."""
    parser = argparse.ArgumentParser(
        prog="regtui",
        description="Why can't this host pull this image? Reads registry configuration the way each runtime "
                    "does, shows the route a pull takes, and explains every problem with evidence and a fix.",
    )
    parser.add_argument("--version", action="version", version=f"regtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("check", help="check configuration (and, when built, endpoints and a test pull)")
    _add_check_options(p)

    p = sub.add_parser("report", help="write a report file (json, markdown, html)")
    _add_check_options(p, with_format=False)
    p.add_argument("--format", required=True, choices=("json", "markdown", "html"))
    p.add_argument("--output", required=True, metavar="FILE")

    p = sub.add_parser("pull", help="instrumented test pull of one image")
    p.add_argument("ref", metavar="REF")
    _add_check_options(p, with_format=False)
    p.add_argument("--concurrency", type=int, metavar="N")
    p.add_argument("--format", default="text", choices=("text", "json"))

    p = sub.add_parser("fix", help="preview (and with --apply, apply) suggested fixes")
    _add_check_options(p, with_format=False)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--list", action="store_true", help="list the fixes the findings suggest")
    g.add_argument("--code", metavar="CODE", help="every fix for findings with this code")
    g.add_argument("fix_id", nargs="?", metavar="FIX_ID", help="one fix from --list")
    p.add_argument("--apply", action="store_true")
    p.add_argument("--yes", action="store_true")

    p = sub.add_parser("undo", help="restore files changed by a fix")
    p.add_argument("--root", default="/")
    p.add_argument("--state-dir", metavar="DIR")
    p.add_argument("--list", action="store_true")
    p.add_argument("backup_id", nargs="?", metavar="BACKUP_ID")
    p.add_argument("--force", action="store_true")
    p.add_argument("--debug", action="store_true")

    p = sub.add_parser("tui", help="the interactive workbench (default)")
    _add_check_options(p, with_format=False)
    p.add_argument("--read-only", action="store_true")
    return parser


def _options(args: argparse.Namespace):
    from regtui.options import CheckOptions

    images = list(getattr(args, "image", []) or [])
    if getattr(args, "ref", None):
        images.insert(0, args.ref)
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if not os.path.isdir(args.root):
        raise UsageError(f"--root {args.root}: not a directory")
    return CheckOptions(
        root=args.root, images=tuple(images), runtime=args.runtime, offline=args.offline, no_pull=args.no_pull,
        dns_server=args.dns_server, ntp_servers=tuple(args.ntp_server), timeout=args.timeout,
        docker_store=args.docker_store, containerd_version=args.containerd_version, platform=args.platform,
        concurrency=getattr(args, "concurrency", None), state_dir=args.state_dir,
    )


def _refs(images: Sequence[str]):
    from regtui.refs import ReferenceError, parse

    refs = []
    for image in images:
        try:
            refs.append(parse(image))
        except ReferenceError as exc:
            raise UsageError(f"{image}: {exc}") from None
    return refs


def _write(text: str, output: str | None) -> None:
    if output:
        tmp = f"{output}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, output)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _cmd_check(args: argparse.Namespace) -> int:
    from regtui.engine import run_check
    from regtui.report import render

    options = _options(args)
    report = run_check(options, refs=_refs(options.images), debug=args.debug)
    _write(render(report, args.format), args.output)
    if args.output:
        c = report.counts()
        print(f"regtui: wrote {args.format} report to {args.output} "
              f"({c['error']} error(s), {c['warning']} warning(s), {c['info']} info)", file=sys.stderr)
    if report.errors:
        for err in report.errors:
            print(f"regtui: internal error: {err.splitlines()[0]}", file=sys.stderr)
        return EXIT_USAGE
    return report.exit_code


def _cmd_fix(args: argparse.Namespace) -> int:
    from regtui.engine import run_check

    options = _options(args)
    report = run_check(options, refs=_refs(options.images), debug=args.debug)
    fixes = [f for f in report.sorted_findings() if f.fix]
    if args.code:
        fixes = [f for f in fixes if f.code == args.code]
    elif args.fix_id:
        fixes = [f for f in fixes if f.fix and f.fix.id == args.fix_id]
        if not fixes:
            raise UsageError(f"no fix {args.fix_id!r} among the current findings (see regtui fix --list)")
    for f in fixes:
        assert f.fix is not None
        restart = f" then {f.fix.restart}" if f.fix.restart != "none" else ""
        print(f"{f.fix.id}\n    {f.severity} {f.code}: {f.title}\n    {f.fix.kind}: {f.fix.summary}{restart}")
    if not fixes:
        print("no suggested fixes for the current findings")
    if args.list:
        return EXIT_OK
    print("\nregtui: previewing and applying fixes (diff, backup, atomic write, re-check, undo) is not built yet "
          "in this version; the list above is what the findings suggest.", file=sys.stderr)
    return EXIT_USAGE


def _not_built(what: str) -> int:
    print(f"regtui: {what} is not built yet in this version; `regtui check` works "
          "(configuration checks, routes and offline findings).", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``regtui`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["tui", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in ("check", "report"):
            return _cmd_check(args)
        if args.command == "fix":
            return _cmd_fix(args)
        if args.command == "pull":
            _refs([args.ref])
            return _not_built("the instrumented test pull (regtui pull)")
        if args.command == "undo":
            return _not_built("undo of applied fixes (regtui undo)")
        return _not_built("the workbench (regtui tui)")
    except UsageError as exc:
        print(f"regtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        print(f"regtui: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return EXIT_USAGE
