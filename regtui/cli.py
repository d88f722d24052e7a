"""Command-line front end: ``check``, ``explain``, ``pull``, ``fix``, ``undo``, ``report`` and ``tui``.

Exit status of ``check`` (and ``report``): 0 when no finding is an error and no verdict fails, 1 otherwise,
2 for a usage or internal error (one line on stderr; the traceback only with ``--debug``).
The headless commands never import textual.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import sys
from typing import Any, NoReturn, Sequence

from regtui import __version__, redact

__all__ = ["main", "run", "build_parser"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
_COMMANDS = ("check", "explain", "pull", "fix", "undo", "report", "tui")


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
    p.add_argument("--dns-server", metavar="IP[:PORT]",
                   help="resolve every name through this DNS server instead of the root's resolver "
                        "(resolv.conf and hosts file), for probes and the test pull; the DNS panel shows "
                        "the root's answer beside it for comparison only")
    p.add_argument("--ntp-server", action="append", default=[], metavar="HOST[:PORT]", help="NTP server to compare with")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="per-phase network timeout (default 5)")
    p.add_argument("--docker-store", default="auto", choices=("auto", "classic", "containerd"),
                   help="Docker image store to assume (default: detect)")
    p.add_argument("--containerd-version", metavar="X.Y[.Z]", help="installed containerd version (default: detect)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pull (default: this host's)")
    p.add_argument("--state-dir", metavar="DIR", help="where fixes keep backups (default ROOT/var/lib/regtui)")
    p.add_argument("--logs-since", type=float, default=24.0, metavar="HOURS",
                   help="read the pull errors the runtimes logged in the last HOURS hours (default 24, 0: do not read)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    if with_format:
        p.add_argument("--format", default="text", choices=("text", "json", "markdown", "html", "prometheus"))
        p.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (exposed for the workbench and tests).

    With ``only`` (a command), the other commands are listed but get no arguments: each argument
    costs a help formatter, and one run parses one command.
    """
    parser = argparse.ArgumentParser(
        prog="regtui",
        description="Why can't this host pull this image? Reads registry configuration the way each runtime "
                    "does, shows the route a pull takes, and explains every problem with evidence and a fix.",
    )
    parser.add_argument("--version", action="version", version=f"regtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("check", help="check configuration, probe endpoints and run a test pull; print a report")
    if only in (None, "check"):
        _add_check_options(p)

    p = sub.add_parser("report", help="write a report file (json, markdown, html, prometheus), or merge "
                                      "many hosts' JSON reports into one (--merge)")
    if only in (None, "report"):
        _add_check_options(p, with_format=False)
        p.add_argument("--format", required=True, choices=("json", "markdown", "html", "prometheus"))
        p.add_argument("--output", metavar="FILE", help="write to FILE (atomically; required unless --merge, which "
                                                         "prints to stdout without it)")
        p.add_argument("--merge", nargs="+", metavar="REPORT.json",
                       help="merge these JSON reports (one per host) into one markdown, html or json report; "
                            "no check runs")

    p = sub.add_parser("explain", help="read a pasted pull error (kubelet event, ctr, docker, podman/skopeo, CRI-O), "
                                       "then check that image and say whether the verdict explains it",
                       description="Reads the error a runtime printed (image, endpoint, phase, Go error), names the "
                                   "likely causes, runs the check for that image as that runtime (online unless "
                                   "--offline), and ends with the verdict, its fix, and whether the verdict explains "
                                   "the pasted error. Exit status as check.")
    if only in (None, "explain"):
        p.add_argument("text", metavar="TEXT", help="the error text, quoted; - reads it from stdin")
        _add_check_options(p, with_format=False)
        p.add_argument("--format", default="text", choices=("text", "json"))
        p.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")

    p = sub.add_parser("pull", help="instrumented test pull of one image")
    if only in (None, "pull"):
        p.add_argument("ref", metavar="REF")
        _add_check_options(p, with_format=False)
        p.add_argument("--concurrency", type=int, metavar="N",
                       help="parallel blob downloads (default: what the runtime's configuration allows)")
        p.add_argument("--format", default="text", choices=("text", "json"))
        p.add_argument("--output", metavar="DIR",
                       help="also write the pulled image as an OCI image layout in DIR. Blobs are written as "
                            "blobs/<alg>/<hex>.partial and renamed once their digest matches; a pull that is "
                            "interrupted (ctrl+c, SIGTERM) or fails removes its .partial files (they are not "
                            "resumed), keeps the verified blobs and writes no index.json (exit 130 on SIGINT, "
                            "143 on SIGTERM)")

    p = sub.add_parser("fix", help="preview (and with --apply, apply) suggested fixes")
    if only in (None, "fix"):
        _add_check_options(p, with_format=False)
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument("--list", action="store_true", help="list the fixes the findings suggest")
        g.add_argument("--code", metavar="CODE", help="every fix for findings with this code")
        g.add_argument("fix_id", nargs="?", metavar="FIX_ID",
                       help="one fix from --list, or the id of the finding it fixes (as in the report)")
        p.add_argument("--apply", action="store_true", help="back up, write, re-check (without it nothing is written)")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)")
        p.add_argument("--ca-file", metavar="FILE",
                       help="PEM file with the root CA to trust when the registry does not send its root "
                            "(tls.unknown-authority, tls.intercepted); it must have issued the chain the server "
                            "sends")

    p = sub.add_parser("undo", help="restore files changed by a fix")
    if only in (None, "undo"):
        p.add_argument("--root", default="/", help="filesystem root of the host")
        p.add_argument("--state-dir", metavar="DIR", help="where fixes keep backups (default ROOT/var/lib/regtui)")
        p.add_argument("--list", action="store_true", help="list the backups")
        p.add_argument("backup_id", nargs="?", metavar="BACKUP_ID",
                       help="the backup to restore (from --list); without it, the backups are listed")
        p.add_argument("--force", action="store_true", help="restore even if a file changed after the fix")
        p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")

    p = sub.add_parser("tui", help="the interactive workbench (default)")
    if only in (None, "tui"):
        _add_check_options(p, with_format=False)
        p.add_argument("--read-only", action="store_true",
                       help="show fixes and their previews, never apply or undo one")
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
    _validate_network_options(args)
    return CheckOptions(
        root=args.root, images=tuple(images), runtime=args.runtime, offline=args.offline, no_pull=args.no_pull,
        dns_server=args.dns_server, ntp_servers=tuple(args.ntp_server), timeout=args.timeout,
        docker_store=args.docker_store, containerd_version=args.containerd_version, platform=args.platform,
        concurrency=getattr(args, "concurrency", None), state_dir=args.state_dir,
        logs_since_hours=getattr(args, "logs_since", 24.0),
    )


def _validate_network_options(args: argparse.Namespace) -> None:
    """Refuse malformed --dns-server, --ntp-server, --platform and --concurrency before any work."""
    if args.dns_server:
        from regtui.net.resolver import parse_server

        try:
            parse_server(args.dns_server)
        except ValueError:
            raise UsageError(f"--dns-server {args.dns_server!r}: expected IP or IP:PORT") from None
    for spec in args.ntp_server:
        from regtui.net.ntp import parse_server_spec

        try:
            parse_server_spec(spec)
        except ValueError:
            raise UsageError(f"--ntp-server {spec!r}: expected HOST or HOST:PORT") from None
    if args.platform:
        from regtui.registry.manifest import Platform

        try:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}", args.platform):
                raise ValueError("expected OS/ARCH[/VARIANT], e.g. linux/arm64/v8")
            Platform.parse(args.platform)
        except ValueError as exc:
            raise UsageError(f"--platform {args.platform!r}: {exc}") from None
    logs_since = getattr(args, "logs_since", 0.0)
    if not (0 <= logs_since <= 24 * 366):  # NaN fails too
        raise UsageError("--logs-since must be between 0 and 8784 hours")
    concurrency = getattr(args, "concurrency", None)
    if concurrency is not None and concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.containerd_version:
        from regtui.runtimes.containerd.versions import parse_version

        if parse_version(args.containerd_version) is None:
            raise UsageError(f"--containerd-version {args.containerd_version!r}: expected X.Y or X.Y.Z, e.g. 1.7")


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
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, output)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _cmd_merge(args: argparse.Namespace) -> int:
    """``report --merge``: many hosts' JSON reports as one; exit 1 when any host's check would exit 1."""
    from regtui.report import merge

    if args.format not in ("markdown", "html", "json"):
        raise UsageError(f"--merge writes markdown, html or json, not {args.format}")
    try:
        reports = [(path, merge.load(path)) for path in args.merge]
    except merge.MergeError as exc:
        raise UsageError(str(exc)) from None
    merged = merge.merge(reports)
    if args.format == "json":
        import json

        text = json.dumps(merged, indent=2) + "\n"
    else:
        text = merge.render_markdown(merged) if args.format == "markdown" else merge.render_html(merged)
    _write(text, args.output)
    if args.output:
        print(f"regtui: merged {len(reports)} report(s) into {args.output}", file=sys.stderr)
    return 1 if any(h["exit_code"] for h in merged["hosts"]) else 0


def _cmd_check(args: argparse.Namespace) -> int:
    from regtui.engine import run_check
    from regtui.report import render

    options = _options(args)
    refs = _refs(options.images)
    progress = _progress(args.format)
    with progress or contextlib.nullcontext():
        report = run_check(options, refs=refs, debug=args.debug, progress=progress)
    _write(render(report, args.format), args.output)  # a textfile for node_exporter too: same dir, then rename
    if args.output:
        c = report.counts()
        print(f"regtui: wrote {args.format} report to {args.output} "
              f"({c['error']} error(s), {c['warning']} warning(s), {c['info']} info)", file=sys.stderr)
    if report.errors:
        for err in report.errors:
            print(f"regtui: internal error: {err.splitlines()[0]}", file=sys.stderr)
        return EXIT_USAGE
    return report.exit_code


def _progress(fmt: str) -> Any:
    """Progress on stderr when it is a terminal (the raw stream: the progress draws with escape codes)."""
    from regtui.progress import for_stream

    stream = sys.stderr._stream if isinstance(sys.stderr, _TerminalSafe) else sys.stderr
    return for_stream(stream, fmt)


def _cmd_fix(args: argparse.Namespace) -> int:
    """``regtui fix``: list, preview, and with ``--apply`` apply the suggested fixes (exit 0 done or
    nothing to do, 1 a fix was refused or did not remove its finding, 2 usage)."""
    import asyncio

    from regtui import engine, fixes
    from regtui.findings import CATALOGUE

    options = _options(args)
    if args.code and args.code not in CATALOGUE:
        raise UsageError(f"--code {args.code}: not a finding code (the codes are listed in regtui/findings.py)")
    if args.apply and not args.yes and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("--apply without a terminal to confirm on needs --yes (run without --apply to preview)")
    supplied_ca = _read_ca_file(args.ca_file) if args.ca_file else None
    p = engine.plan(options, refs=_refs(options.images), debug=args.debug)
    net = None
    if not options.offline:
        net = asyncio.run(engine.network(p, engine.probe_context(p), debug=args.debug))
    report = engine.build_report(p, net)
    for err in report.errors:
        print(f"regtui: internal error: {err.splitlines()[0]}", file=sys.stderr)
    fixable = [f for f in report.sorted_findings() if f.fix]
    if args.list:
        for f in fixable:
            assert f.fix is not None
            restart = f" then {f.fix.restart}" if f.fix.restart != "none" else ""
            print(f"{f.fix.id}\n    {f.severity} {f.code}: {f.title}\n    {f.fix.kind}: {f.fix.summary}{restart}")
        if not fixable:
            print("no suggested fixes for the current findings")
        return EXIT_OK
    if args.code:
        selected = [f for f in fixable if f.code == args.code]
        if not selected:
            print(f"no finding with code {args.code} has a fix here: nothing to do")
            return EXIT_OK
    else:
        # A finding id (as the report's verdict chains and independent_findings name it) selects its fix too.
        selected = [f for f in fixable if f.fix and args.fix_id in (f.fix.id, f.id)]
        if not selected:
            if any(f.id == args.fix_id for f in report.findings):
                raise UsageError(f"finding {args.fix_id!r} has no fix regtui can plan: see its text in `regtui check`")
            raise UsageError(f"no fix {args.fix_id!r} among the current findings (see regtui fix --list)")
    status = EXIT_OK
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    for finding in selected:
        plan = fixes.plan(finding, p.host, options=options, probes=report.probes, supplied_ca=supplied_ca)
        sys.stdout.write(fixes.render(plan))
        if not args.apply:
            print()
            continue
        if plan.empty and plan.kind != "manual" and not plan.blocked:
            print("nothing to do\n")
            continue
        if not plan.can_apply:
            print(f"regtui: {plan.fix_id} not applied: {plan.blocked or 'this fix is done by hand (see above)'}\n")
            status = EXIT_FINDINGS
            continue
        if not args.yes:
            if not interactive:
                print(f"regtui: {plan.fix_id} not applied: no terminal to confirm on; rerun with --yes to apply "
                      "what is shown above", file=sys.stderr)
                status = EXIT_FINDINGS
                continue
            if not _confirm(plan):
                print("not applied\n")
                status = EXIT_FINDINGS
                continue
        result = fixes.apply(plan, options, host=p.host, probes=report.probes)
        for check in result.checks:
            print(f"check: {check.name}: {check.status}{' (' + check.detail + ')' if check.detail else ''}")
        for out in result.outputs:
            print(f"$ {out['command']}: exit {out['returncode']}" + (f"\n{out['output']}" if out["output"] else ""))
        print(("regtui: " if not result.ok else "") + result.message + "\n")
        if not result.ok:
            status = EXIT_FINDINGS
        elif result.restart_command and interactive and not args.yes:
            if _ask(f"run `{result.restart_command}` now ({result.restart})? [y/N] "):
                out = fixes.run_command(result.restart_command, p.host)
                print(f"exit {out['returncode']}" + (f": {out['output']}" if out["output"] else ""))
    return status


#: A CA file larger than this is not a certificate bundle anyone meant to give.
_MAX_CA_FILE = 1024 * 1024


def _read_ca_file(path: str) -> bytes:
    """The bytes of ``--ca-file`` (a file on this machine, not under ``--root``), or a usage error."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_CA_FILE + 1)
    except OSError as exc:
        raise UsageError(f"--ca-file {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_CA_FILE:
        raise UsageError(f"--ca-file {path}: larger than {_MAX_CA_FILE} bytes; not a CA certificate")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise UsageError(f"--ca-file {path}: no PEM certificate in it")
    return data


def _ask(prompt: str) -> bool:
    try:
        return input(prompt).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _confirm(plan) -> bool:  # type: ignore[no-untyped-def]
    """Ask before applying; a fix with something to check (a CA fingerprint) wants the word yes."""
    if plan.confirm:
        print(f"Before you agree: {plan.confirm}")
        try:
            return input("Type yes to apply: ").strip().lower() == "yes"
        except EOFError:
            return False
    what = "run these commands" if plan.kind == "command" else f"write {len(plan.changes)} file(s)"
    return _ask(f"Apply {plan.fix_id} ({what}, with a backup)? [y/N] ")


def _cmd_undo(args: argparse.Namespace) -> int:
    """``regtui undo``: list backups, or restore one byte for byte (refused if a file changed since, unless --force).

    Both first recover fixes a killed process left half done (and say what they found)."""
    from regtui import fixes
    from regtui.host import Host

    if not os.path.isdir(args.root):
        raise UsageError(f"--root {args.root}: not a directory")
    host = Host.from_args(args.root)
    for note in fixes.recover(host, args.state_dir):  # fixes a killed process left half done
        print(f"recovered: {note}")
    backups = fixes.list_backups(host, args.state_dir)
    if args.list or not args.backup_id:
        if not backups:
            print("no backups")
        for b in backups:
            print(f"{b.id}  [{b.status}]  {b.created_at}\n    {b.code}: {b.summary}\n    {', '.join(b.files)}"
                  + (f"\n    note: {b.note}" if b.status in ("interrupted", "applied") and b.note else ""))
        return EXIT_OK
    if args.backup_id not in {b.id for b in backups}:
        raise UsageError(f"no backup {args.backup_id!r} (see regtui undo --list)")
    result = fixes.undo(args.backup_id, host=host, state_dir=args.state_dir, force=args.force)
    print(("" if result.ok else "regtui: ") + result.message, file=sys.stdout if result.ok else sys.stderr)
    for path in result.restored:
        print(f"    {path}")
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _cmd_pull(args: argparse.Namespace) -> int:
    """``regtui pull REF``: the instrumented test pull (exit 0 pulled, 1 failed or an error finding, 2 usage)."""
    from regtui.pullcmd import run_pull

    options = _options(args)
    (ref,) = _refs([args.ref])
    if args.output:
        try:  # an unusable DIR is a usage error before any download, not an internal one after
            os.makedirs(args.output, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--output {args.output}: cannot create the directory: {exc.strerror or exc}") from None
    return run_pull(options, ref, fmt=args.format, output_dir=args.output, debug=args.debug,
                    progress=_progress(args.format))


#: A pasted error longer than this is cut (an event log, not one error).
_MAX_EXPLAIN_TEXT = 256 * 1024


def _cmd_explain(args: argparse.Namespace) -> int:
    """``regtui explain TEXT``: the reading of a pull error, the check for its image, and whether they agree."""
    import io

    from regtui.explaincmd import run_explain

    if args.text == "-":
        text = sys.stdin.read(_MAX_EXPLAIN_TEXT)
    else:
        text = args.text
    if not text.strip():
        raise UsageError("explain: the error text is empty (paste it quoted, or - to read stdin)")
    if len(args.image) > 1:
        raise UsageError("explain: one --image at most (the image the error is about)")
    options = _options(args)
    _refs(options.images)
    out = io.StringIO() if args.output else None
    status = run_explain(options, text, fmt=args.format, debug=args.debug, out=out,
                         progress=_progress(args.format))
    if out is not None:
        _write(out.getvalue(), args.output)
    return status


def _cmd_tui(args: argparse.Namespace) -> int:
    """The workbench; textual is imported only here, so the headless commands never pay for it."""
    options = _options(args)
    _refs(options.images)
    from regtui.tui.app import run

    return run(options, read_only=args.read_only, debug=args.debug)


def _not_built(what: str) -> int:
    print(f"regtui: {what} is not built yet in this version; `regtui check` works "
          "(configuration checks, routes and offline findings).", file=sys.stderr)
    return EXIT_USAGE


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Control characters (ESC, CR, NUL...) from config files shown as ``\\xNN``, never replayed to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _TerminalSafe:
    """A text stream that writes everything through :func:`terminal_safe`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(terminal_safe(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def unknown_command(word: str) -> str:
    """The message for ``regtui WORD`` when WORD is not a command: the closest one and the list."""
    import difflib

    close = difflib.get_close_matches(word, _COMMANDS, n=1, cutoff=0.5)
    hint = f"; did you mean `regtui {close[0]}`?" if close else ""
    return (f"regtui: unknown command {terminal_safe(repr(word))}{hint}\n"
            f"commands: {', '.join(_COMMANDS)} (see regtui --help; no command starts the workbench)")


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``regtui`` console script and ``python -m regtui``: :func:`main`, then exit with its status.

    Before the interpreter tears down, every object the run made is frozen out of the cyclic
    collector's reach: the teardown frees them all anyway, and its collections over tens of
    thousands of live objects took about 25 ms, more than a small pull's own work. Only here, never
    in :func:`main`, which a test or another program may call many times in one process.
    """
    code = main(argv)
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``regtui`` command line and return its exit status (the console script is :func:`run`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in _COMMANDS:
        # The workbench takes no positional argument, so a bare word is a mistyped command.
        print(unknown_command(argv[0]), file=sys.stderr)
        return EXIT_USAGE
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["tui", *argv]
    # argv[0] is a command here unless it asks for the top-level help or version.
    parser = build_parser(only=argv[0] if argv[0] in _COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command == "report" and not args.merge and not args.output:
        parser.error("report: the following arguments are required: --output (or --merge)")
    if args.command == "tui":
        return _dispatch(args)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _TerminalSafe(sys.stdout), _TerminalSafe(sys.stderr)
    try:
        with _without_trio():
            return _dispatch(args)
    finally:
        sys.stdout, sys.stderr = saved


@contextlib.contextmanager
def _without_trio() -> Any:
    """Hide trio from the import system while a headless command runs.

    The headless commands run on asyncio, but httpcore imports trio (with its dependencies, a
    good part of a small pull's start-up) whenever it is installed; with ``sys.modules["trio"]``
    set to None that import fails and httpcore falls back to asyncio alone. A process that had
    already imported trio keeps it."""
    if "trio" in sys.modules:
        yield
        return
    sys.modules["trio"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("trio", ...) is None:
            del sys.modules["trio"]


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; usage and internal errors become one line on stderr."""
    try:
        if args.command == "report" and args.merge:
            return _cmd_merge(args)
        if args.command in ("check", "report"):
            return _cmd_check(args)
        if args.command == "fix":
            return _cmd_fix(args)
        if args.command == "pull":
            return _cmd_pull(args)
        if args.command == "explain":
            return _cmd_explain(args)
        if args.command == "undo":
            return _cmd_undo(args)
        return _cmd_tui(args)
    except UsageError as exc:
        print(f"regtui: {redact.text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # An exception's text or traceback may quote a config line or URL: both pass the redaction policy.
        debug = getattr(args, "debug", False)
        if debug:
            import traceback

            print(redact.text(traceback.format_exc()), file=sys.stderr, end="")
        hint = "" if debug else " (run with --debug for details)"
        print(f"regtui: internal error: {type(exc).__name__}: {redact.text(str(exc))}{hint}", file=sys.stderr)
        return EXIT_USAGE
