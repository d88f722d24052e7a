"""``regtui pull REF``: plan the route as the runtime would, run the test pull, print it.

The JSON output is the whole report (schema ``regtui.report/1``) with ``pull`` filled in and the
pull's findings next to the configuration findings (after a failure, with those of the probe of the failing
phase, so the verdict names the cause `regtui check` names); the text output is the pull alone: endpoints
tried, what the reference resolved to, one line per blob with its phase timings, the findings.
Exit status: 0 when the pull succeeded and produced no error finding, 1 otherwise; 130 after
ctrl+c (SIGINT) and 143 after SIGTERM, which cancel the downloads and remove their partial files.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any, Iterator

from regtui.model import Finding, severity_rank
from regtui.options import CheckOptions
from regtui.refs import Reference
from regtui.units import human_bytes

__all__ = ["run_pull", "render_text"]


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_text(pull: dict[str, Any], findings: list[Finding]) -> str:
    """A terminal rendering of the pull object and its findings."""
    from regtui.report.sections import rate as mbps  # MB/s as the reports print it

    lines = [f"regtui pull {pull['image']} as {pull['runtime']} ({pull['flavor']}), platform {pull['platform']}"]
    lines.append("endpoints, in the runtime's order:")
    for ep in pull["endpoints"]:
        why = ep.get("error") or ep.get("reason") or (f"served {ep['served']}" if ep.get("served") else "")
        phase = f" [{ep['phase']}]" if ep.get("phase") else ""
        # The URL that answered: an in-place fallback to plain http keeps the https row but is served over http.
        url = ep.get("base_url") if ep["status"] == "ok" and ep.get("base_url") else ep["url"]
        lines.append(f"  {ep['status']:<8} {url:<44} {ep['role']:<8}{phase} {why}".rstrip())
    m = pull["manifest"]
    if m["digest"]:
        lines.append(f"digest:          {m['digest']} ({m['media_type']})")
        lines.append(f"platform digest: {m['platform_digest']} ({m['platform']})")
    blobs = ([pull["config"]] if pull.get("config") else []) + pull["layers"]
    wall = pull["wall_ms"]
    rate = f", {human_bytes(pull['bytes'] / (wall / 1000))}/s" if wall and pull["bytes"] else ""
    lines.append(f"{len(blobs)} blobs, {human_bytes(pull['bytes'])} in {wall:.0f} ms{rate}; "
                 f"concurrency {pull['concurrency']} ({pull['concurrency_source']})")
    if blobs:
        lines.append(f"  {'blob':<19} {'size':>9} {'start':>8} {'dns':>6} {'connect':>7} {'tls':>6} {'ttfb':>7} "
                     f"{'transfer':>8} {'total':>8} {'MB/s':>7} tries")
        for b in blobs:
            t = b["timings_ms"]
            bps = mbps(b["bytes_per_second"]) if b.get("bytes_per_second") else "-"
            state = "" if b["ok"] else f"  FAILED: {(b.get('error') or {}).get('message', '')}"
            lines.append(f"  {b['digest'][:19]} {human_bytes(b['size']):>9} {b['started_ms']:>8.1f} {_ms(t['dns']):>6} "
                         f"{_ms(t['connect']):>7} {_ms(t['tls']):>6} {_ms(t['ttfb']):>7} {_ms(t['transfer']):>8} "
                         f"{_ms(t['total']):>8} {bps:>7} {b['attempts']:>5}{state}")
    lines.append("result: " + ("ok" if pull["ok"] else f"FAILED. The runtime will report: {pull.get('runtime_error')}"))
    for entry in pull.get("extra_endpoints") or []:
        lines.append(f"also contacted: {entry['url']} ({entry['kind']} via {entry['via']}; proxy: "
                     f"{entry.get('proxy') or 'direct'}; authorization sent: {entry.get('authorization_sent')})")
    if findings:
        lines.append("findings:")
        for f in sorted(findings, key=lambda f: (severity_rank(f.severity), f.code)):
            lines.append(f"  {f.severity:<7} {f.code}: {f.title}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _cancel_on_sigterm(signals: list[str]) -> Iterator[None]:
    """While the pull runs, SIGTERM cancels it like ctrl+c does (so downloads clean up) instead of killing it."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_term() -> None:
        signals.append("SIGTERM")
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_term)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread: the default stays
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _pull(options: CheckOptions, ref: Reference, output_dir: str | None, debug: bool,
                signals: list[str], progress: Any = None) -> tuple[Any, Any, Any]:
    with _cancel_on_sigterm(signals):
        return await _pull_now(options, ref, output_dir, debug, progress)


async def _pull_now(options: CheckOptions, ref: Reference, output_dir: str | None, debug: bool,
                    progress: Any = None) -> tuple[Any, Any, Any]:
    from regtui.engine import NetworkResults, plan, probe_context, pull_runtime, resolve_routes
    from regtui.registry.pull import test_pull

    p = plan(options, refs=[ref], debug=debug)
    net = NetworkResults()
    runtime = pull_runtime(p) or (options.runtime if options.runtime not in ("auto", "all") else None)
    if runtime is None:
        net.notes.append("no runtime detected under this root: use --runtime docker|containerd|crio|k3s")
        return p, net, runtime
    ctx = probe_context(p)
    await resolve_routes(p, ctx, debug=debug)
    net.notes.append("regtui pull runs the test pull (and, when it fails, the probes of the failing phase); "
                     "`regtui check` also probes every endpoint")
    if progress is not None:
        progress.phase(f"pulling {ref} as {runtime}")
    net.pull, pull_findings = await test_pull(ctx, ref, runtime, concurrency=options.concurrency, output_dir=output_dir,
                                              progress=progress.layer if progress is not None else None)
    net.findings += pull_findings
    await _explain_failure(ctx, net, debug)
    return p, net, runtime


#: The probe panel that names the cause of a test pull failing in each phase (as `regtui check` runs it).
_PANEL_OF_PHASE = {"dns": "dns", "proxy": "proxy", "tls": "certs"}


async def _explain_failure(ctx: Any, net: Any, debug: bool) -> None:
    """After a failed pull, the probes of the phases it failed in: the verdict then names the cause `regtui check`
    names (the dead proxy, the untrusted CA...) instead of the bare symptom, with the same fix."""
    pull = net.pull or {}
    if pull.get("ok"):
        return
    panels = tuple(sorted({_PANEL_OF_PHASE[ep["phase"]] for ep in pull.get("endpoints", [])
                           if ep.get("status") == "failed" and ep.get("phase") in _PANEL_OF_PHASE}))
    if not panels:
        return
    from regtui.probes import run_probes  # only after a failure: a good pull loads no probe

    results = await run_probes(ctx, panels=panels, debug=debug)
    for panel, result in results.items():
        net.add_probe(panel, result)


def run_pull(options: CheckOptions, ref: Reference, *, fmt: str = "text", output_dir: str | None = None,
             debug: bool = False, out: Any = None, err: Any = None, progress: Any = None) -> int:
    """Run ``regtui pull``; writes to ``out``/``err`` (stdout/stderr by default) and returns the exit status.

    ``progress`` (a :class:`regtui.progress.Progress`, only on a terminal) shows the phase and layer bytes.
    """
    import sys

    from regtui.engine import build_report
    from regtui.report import render

    from regtui.registry.blobs import discard_partials

    out = out or sys.stdout
    err = err or sys.stderr
    signals: list[str] = []
    try:
        with progress or contextlib.nullcontext():
            p, net, runtime = asyncio.run(_pull(options, ref, output_dir, debug, signals, progress))
    except (KeyboardInterrupt, asyncio.CancelledError):
        discard_partials()
        name = signals[0] if signals else "SIGINT"
        where = (f"; no partial download is left in {output_dir} (and no index.json: the layout is incomplete)"
                 if output_dir else "")
        print(f"regtui: pull interrupted ({name}): downloads cancelled{where}", file=err)
        return 143 if name == "SIGTERM" else 130
    finally:
        discard_partials()  # an internal error, too, leaves no partial file behind
    if net.pull is None:
        for note in net.notes:
            print(f"regtui: {note}", file=err)
        return 2
    report = build_report(p, net)
    if fmt == "json":
        out.write(render(report, "json"))
    else:
        out.write(render_text(report.to_dict()["pull"], report.findings))  # as reconciled, like the JSON
    out.flush()
    for e in report.errors:
        print(f"regtui: internal error: {e.splitlines()[0]}", file=err)
    failed = not net.pull["ok"] or any(f.severity == "error" for f in net.findings)
    return 1 if failed else 0
