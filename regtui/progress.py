"""Progress of a headless ``check`` or ``pull`` on stderr, for a person at a terminal.

A few lines redrawn in place, four times a second: the phase and the time spent in it, the
probes still waiting (with the endpoints they wait on), then one line per layer of the test
pull with its bytes, as ``docker pull`` shows. Only on a terminal: on a pipe, in a log, or
with ``--format json`` nothing is written (see :func:`for_stream`). The block is erased when
the work ends, so the report that follows is the only output left on screen.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, TextIO

from regtui.units import human_bytes

__all__ = ["Progress", "for_stream"]

_PROBES = ("mirrors", "certs", "proxy", "dns", "clock")
_MAX_LAYERS = 8
_SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def for_stream(stream: Any, fmt: str = "text") -> "Progress | None":
    """A progress display on ``stream`` when it is a terminal and the output is for a person."""
    if fmt == "json":
        return None
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):  # closed or not a real file
        return None
    return Progress(stream)


class Progress:
    """Phases, waiting probes and endpoints, per-layer bytes; thread-safe, redrawn by a daemon thread."""

    def __init__(self, stream: TextIO, interval: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._phase = "reading configuration"
        self._since = clock()
        self._waiting: list[str] = []
        self._endpoints: list[str] = []
        self._layers: dict[str, tuple[int, int | None]] = {}
        self._drawn = 0
        self._frame = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the work reports --------------------------------------------------------------

    def phase(self, words: str) -> None:
        """A new phase (``planning``, ``probing``, ``pulling REF``)."""
        with self._lock:
            self._phase = words
            self._since = self.clock()

    def planned(self, plan: Any) -> None:
        """The plan is ready: the probes start, on the route endpoints it lists."""
        urls = [ep.url for route in getattr(plan, "routes", []) for ep in route.endpoints]
        with self._lock:
            self._endpoints = list(dict.fromkeys(urls))
            self._waiting = list(_PROBES)
        self.phase("probing")

    def probe_done(self, panel: str, result: Any = None) -> None:
        """One probe panel came back (the engine's ``probe_context(progress=...)`` callback)."""
        with self._lock:
            if panel in self._waiting:
                self._waiting.remove(panel)
            done = not self._waiting
        if done:
            self.phase("test pull")

    def layer(self, digest: str, done: int, total: int | None = None) -> None:
        """Bytes of one layer so far (the test pull's ``progress`` callback)."""
        with self._lock:
            self._layers[str(digest)] = (int(done), total)

    # -- drawing -----------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """The block as it would be drawn now (plain text)."""
        with self._lock:
            spin = _SPIN[self._frame % len(_SPIN)]
            head = f"{spin} regtui: {self._phase} {self.clock() - self._since:.1f}s"
            if self._waiting and self._phase == "probing":
                head += f"; waiting for {', '.join(self._waiting)}"
            out = [head]
            if self._waiting and self._endpoints:
                shown = self._endpoints[:4]
                more = f" (+{len(self._endpoints) - 4})" if len(self._endpoints) > 4 else ""
                out.append(f"  endpoints: {', '.join(shown)}{more}")
            layers = list(self._layers.items())
            for digest, (done, total) in layers[:_MAX_LAYERS]:
                short = digest.split(":", 1)[-1][:12]
                if total and done >= total:
                    out.append(f"  {short}: pull complete {human_bytes(total)}")
                else:
                    out.append(f"  {short}: downloading {human_bytes(done)}" + (f" / {human_bytes(total)}" if total else ""))
            if len(layers) > _MAX_LAYERS:
                out.append(f"  … and {len(layers) - _MAX_LAYERS} more layers")
        return out

    def draw(self) -> None:
        """Redraw the block in place (cursor up over the previous one, clear, write)."""
        lines = self.lines()
        self._frame += 1
        width = 200
        text = "".join(f"\r\x1b[2K{line[:width]}\n" for line in lines)
        up = f"\x1b[{self._drawn}A" if self._drawn else ""
        try:
            self.stream.write(up + "\x1b[J" + text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: stop drawing, keep working
            self._stop.set()
        self._drawn = len(lines)

    def clear(self) -> None:
        """Erase the block."""
        if self._drawn:
            try:
                self.stream.write(f"\x1b[{self._drawn}A\r\x1b[J")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._drawn = 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.draw()

    def __enter__(self) -> "Progress":
        self._thread = threading.Thread(target=self._run, name="regtui-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.clear()
