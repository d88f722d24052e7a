"""Where the workbench's results come from: the engine live, or a recorded report.

A source runs in a thread worker and hands back plain data through callbacks; it never touches
a widget. :class:`LiveSource` drives the engine's stages (plan, probes, test pull, report) and
keeps the last plan and network results so one panel can be re-run and merged.
:class:`RecordedSource` replays a :class:`~regtui.report.Report` (snapshot tests, demos): no
file reads, no network.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

from regtui.model import PANELS
from regtui.options import CheckOptions
from regtui.report import Report

__all__ = ["Update", "PullLayer", "DataSource", "LiveSource", "RecordedSource", "Cancelled"]

#: Probe panels (the engine's ``PROBE_MODULES`` keys).
_PROBE_PANELS = ("mirrors", "certs", "proxy", "dns", "clock")


class Cancelled(Exception):
    """The run was superseded (a newer ``r``/``R`` or an image change)."""


@dataclass(frozen=True)
class PullLayer:
    """Live progress of one layer of the test pull."""

    digest: str
    done: int
    """Bytes received so far."""
    total: int | None
    """Layer size when known."""
    started: float
    """``time.monotonic()`` of the first progress for the layer."""
    updated: float
    """``time.monotonic()`` of the latest progress."""

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        dt = self.updated - self.started
        return self.done / dt if dt > 0 else 0.0


@dataclass(frozen=True)
class Update:
    """One step of a run: a fresh report and which panels are still running."""

    report: Report
    running: frozenset[str]
    """Panels whose results are still coming."""
    done: bool = False
    """The run is over."""
    cancelled: frozenset[str] = frozenset()
    """Panels whose probes were cancelled before they finished (esc, ``x``, quit)."""


Emit = Callable[[Update], None]
PullEmit = Callable[[dict[str, PullLayer]], None]


class DataSource(Protocol):
    """What the app needs from a source of results."""

    live: bool
    """Whether results come from this host (False: a recording)."""

    def run(self, options: CheckOptions, panels: frozenset[str] | None, emit: Emit, pull_emit: PullEmit,
            cancelled: Callable[[], bool]) -> None:
        """Produce results for ``panels`` (all when ``None``) for ``options``, blocking; emit as they come."""

    def cancel(self) -> None:
        """Stop the running probes and pull now (from any thread); the run ends with a ``cancelled`` update."""


@dataclass
class LiveSource:
    """The engine on this host (or ``--root``), probing for real unless ``options.offline``."""

    debug: bool = False
    live: bool = True
    host_factory: Callable[[CheckOptions], Any] | None = None
    """Builds the :class:`~regtui.host.Host` for the options (tests inject a fixed clock/environment)."""
    _plan: Any = None
    _plan_options: CheckOptions | None = None
    _net: Any = None
    _findings: dict[str, list[Any]] = field(default_factory=dict)
    """Live findings per probe panel (and ``pull``), so a re-run replaces only its own."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: Any = None
    _task: Any = None
    _cancel: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Cancel the network task of the running run (its sockets close as the task unwinds)."""
        self._cancel.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has just closed: the run is over anyway
                pass

    def _host(self, options: CheckOptions) -> Any:
        if self.host_factory is not None:
            return self.host_factory(options)
        from regtui.host import Host

        return Host.from_args(options.root)

    def run(self, options: CheckOptions, panels: frozenset[str] | None, emit: Emit, pull_emit: PullEmit,
            cancelled: Callable[[], bool]) -> None:
        """Plan, then probe and pull as asked, emitting a fresh report after each step."""
        from regtui import engine

        with self._lock:
            self._cancel.clear()
            everything = panels is None or self._plan is None or self._plan_options != options
            wanted = frozenset(PANELS) if everything else frozenset(panels or ()) | {"config"}
            if self._plan is None or self._plan_options != options:
                emit(_placeholder(options, wanted))
            else:
                emit(Update(self._report(), wanted))
            # Configuration is re-read on every run: it is cheap, and a fix or undo changes it.
            self._plan = engine.plan(options, self._host(options), debug=self.debug)
            self._plan_options = options
            if everything:
                self._net = None
                self._findings = {}
            if cancelled():
                raise Cancelled
            live = wanted - {"config"}
            if options.offline or not live:
                emit(Update(self._report(), frozenset(), done=True))
                return
            if self._net is None:
                self._net = engine.NetworkResults()
            running = set(live)
            emit(Update(self._report(), frozenset(running)))
            try:
                asyncio.run(self._cancellable(self._network(live, running, emit, pull_emit, cancelled)))
            except asyncio.CancelledError:
                emit(Update(self._report(), frozenset(), done=True, cancelled=frozenset(running)))
                return
            emit(Update(self._report(), frozenset(), done=True))

    async def _cancellable(self, work: Any) -> None:
        """Run ``work`` as a task :meth:`cancel` can reach from another thread."""
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        try:
            if self._cancel.is_set():
                work.close()
                raise asyncio.CancelledError
            await work
        finally:
            self._loop = self._task = None

    def _report(self) -> Report:
        from regtui import engine

        return engine.build_report(self._plan, self._net)

    async def _network(self, live: frozenset[str], running: set[str], emit: Emit, pull_emit: PullEmit,
                       cancelled: Callable[[], bool]) -> None:
        from regtui import engine
        from regtui.probes import run_probes

        plan, net = self._plan, self._net

        def arrived(panel: str, result: Any) -> None:
            _merge_probe(net, self._findings, panel, result)
            running.discard(panel)
            emit(Update(self._report(), frozenset(running)))

        ctx = engine.probe_context(plan, progress=arrived)
        await engine.resolve_routes(plan, ctx, debug=self.debug)
        probe_panels = tuple(p for p in _PROBE_PANELS if p in live)
        if probe_panels:
            results = await run_probes(ctx, panels=probe_panels, debug=self.debug)
            for panel, result in results.items():  # correlate() may have added findings
                _merge_probe(net, self._findings, panel, result)
            net.endpoint_status.update(ctx.observations.get("endpoint_status", {}))
            running.difference_update(probe_panels)
            emit(Update(self._report(), frozenset(running)))
        if cancelled():
            raise Cancelled
        if "pull" in live:
            await self._pull(ctx, net, pull_emit)
            running.discard("pull")

    async def _pull(self, ctx: Any, net: Any, pull_emit: PullEmit) -> None:
        from regtui import engine

        plan = self._plan
        net.pull = None
        self._findings["pull"] = []
        net.findings = [f for fs in self._findings.values() for f in fs]
        net.notes = [n for n in net.notes if "pull" not in n]
        runtime = engine.pull_runtime(plan)
        if plan.options.no_pull or not plan.refs or runtime is None:
            if not plan.options.no_pull and plan.refs and runtime is None:
                net.notes.append("no runtime to imitate: test pull skipped")
            return
        try:
            from regtui.registry.pull import test_pull
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("regtui.registry"):
                raise
            net.notes.append("the test pull is not built in this version")
            return
        tracker = PullTracker(pull_emit)
        try:
            net.pull, findings = await test_pull(ctx, plan.refs[0], runtime, concurrency=plan.options.concurrency,
                                                 progress=tracker)
            self._findings["pull"] = list(findings)
            net.findings = [f for fs in self._findings.values() for f in fs]
        except Exception as exc:  # a bug in the pull is reported, never a crash of the workbench
            net.errors.append(f"test pull: {type(exc).__name__}: {exc}")


def _merge_probe(net: Any, by_panel: dict[str, list[Any]], panel: str, result: Any) -> None:
    """Put one probe result into the network results, replacing the panel's previous one."""
    net.probes[panel] = {"data": result.data, "elapsed_ms": round(result.elapsed_ms, 1), "error": result.error}
    by_panel[panel] = list(result.findings)
    net.findings = [f for fs in by_panel.values() for f in fs]
    net.notes = [n for n in net.notes if not n.startswith(f"{panel} probe:")]
    if result.error:
        net.notes.append(f"{panel} probe: {result.error.splitlines()[0]}")


class PullTracker:
    """Turns the pull's progress callback into throttled per-layer snapshots.

    Accepts ``progress(digest, done)``, ``progress(digest, done, total)`` or one object/dict
    with ``digest`` and ``done``/``bytes`` (and ``size``/``total``). At most ten snapshots a
    second reach the UI, so a fast pull cannot flood it.
    """

    def __init__(self, emit: PullEmit, interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self._emit = emit
        self._interval = interval
        self._clock = clock
        self._layers: dict[str, PullLayer] = {}
        self._last = float("-inf")

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        digest, done, total = _progress_args(args, kwargs)
        if not digest:
            return
        now = self._clock()
        prev = self._layers.get(digest)
        started = prev.started if prev else now
        total = total if total is not None else (prev.total if prev else None)
        self._layers[digest] = PullLayer(digest, int(done), total, started, now)
        finished = total is not None and done >= total
        if finished or now - self._last >= self._interval:
            self._last = now
            self._emit(dict(self._layers))


def _progress_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, int, int | None]:
    if args and not isinstance(args[0], str):
        obj = args[0]
        get = obj.get if isinstance(obj, dict) else (lambda k, d=None: getattr(obj, k, d))
        digest = get("digest", "")
        done = get("done", None)
        done = get("bytes", 0) if done is None else done
        total = get("total", None)
        total = get("size", None) if total is None else total
        return str(digest), int(done or 0), total
    vals = list(args)
    digest = kwargs.get("digest", vals[0] if vals else "")
    done = kwargs.get("done", kwargs.get("bytes", vals[1] if len(vals) > 1 else 0))
    total = kwargs.get("total", kwargs.get("size", vals[2] if len(vals) > 2 else None))
    return str(digest), int(done or 0), total


def _placeholder(options: CheckOptions, running: frozenset[str]) -> Update:
    """Before the first plan: an empty report naming what is being read."""
    report = Report(generated_at="", root=options.root, hostname="", images=list(options.images),
                    mode="offline" if options.offline else "network")
    return Update(report, running)


@dataclass
class RecordedSource:
    """A recorded report replayed as if probed: for snapshot tests and demos.

    ``report_for(options)`` returns the report to show (so an image change can be simulated);
    ``pull_frames`` are per-layer progress snapshots replayed before the final report.
    """

    report_for: Callable[[CheckOptions], Report]
    pull_frames: list[dict[str, PullLayer]] = field(default_factory=list)
    live: bool = False
    runs: list[tuple[CheckOptions, frozenset[str] | None]] = field(default_factory=list)
    """Every run asked for, for tests."""
    gate: threading.Event | None = None
    """When set, each run waits for it before finishing (tests observe the running state)."""
    cancels: int = 0
    """How many times :meth:`cancel` was called."""
    _cancel: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Stop waiting on the gate; the run ends cancelled."""
        self.cancels += 1
        self._cancel.set()

    @classmethod
    def of(cls, report: Report, **kwargs: Any) -> "RecordedSource":
        """A source that always shows ``report`` (with the images the options name, if any)."""

        def report_for(options: CheckOptions) -> Report:
            if options.images and list(options.images) != report.images:
                return replace(report, images=list(options.images))
            return report

        return cls(report_for, **kwargs)

    def run(self, options: CheckOptions, panels: frozenset[str] | None, emit: Emit, pull_emit: PullEmit,
            cancelled: Callable[[], bool]) -> None:
        """Emit the recorded report (after replaying pull frames when the pull panel runs)."""
        self.runs.append((options, panels))
        self._cancel.clear()
        wanted = frozenset(PANELS) if panels is None else panels
        report = self.report_for(options)
        emit(Update(report, wanted))
        if self.gate is not None:
            deadline = time.monotonic() + 10
            while not self.gate.is_set() and not self._cancel.is_set() and time.monotonic() < deadline:
                self.gate.wait(0.01)
        if self._cancel.is_set():
            emit(Update(report, frozenset(), done=True, cancelled=wanted - {"config"}))
            return
        if cancelled():
            raise Cancelled
        if "pull" in wanted:
            for frame in self.pull_frames:
                pull_emit(frame)
        emit(Update(self.report_for(options), frozenset(), done=True))
