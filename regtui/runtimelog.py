"""What the runtime said: the recent pull errors the runtimes logged on the host, tied to the verdicts.

Under the root, regtui reads the systemd journal (``journalctl --directory`` on ``/var/log/journal``
and ``/run/log/journal``, units docker, containerd, crio, k3s, k3s-agent and kubelet, bounded by
time, count and a timeout) and the plain log files runtimes write (k3s's embedded containerd log,
``/var/log/containerd.log``, ``/var/log/docker.log``, ``/var/log/crio.log``, only their last bytes).
It picks out the lines that report a failed pull, parses each error with the shared parser of
runtime error texts, and says for each whether a verdict explains it: the same runtime, endpoint and
phase as the verdict's cause (``explained``), an endpoint that serves the pull now
(``not-reproduced``), or neither (``unexplained``: a finding of its own, ``pull.logged-error``).

A missing journal, a missing ``journalctl`` or an unreadable log is a note, never an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from regtui import redact
from regtui.findings import finding
from regtui.host import Host
from regtui.model import Finding, Verdict

__all__ = ["LoggedError", "RuntimeSaid", "read", "k3s_log", "pull_error", "assess", "UNITS", "LOG_FILES", "JOURNAL_DIRS",
           "DEFAULT_HOURS", "MAX_JOURNAL_ENTRIES", "TAIL_BYTES"]

#: systemd unit -> the runtime whose words it carries (kubelet's pulls go through its CRI runtime).
UNITS = {"docker.service": "docker", "containerd.service": "containerd", "crio.service": "crio",
         "k3s.service": "k3s", "k3s-agent.service": "k3s", "kubelet.service": "kubelet"}
#: Plain log files runtimes write, and whose words they carry.
LOG_FILES = {"/var/lib/rancher/k3s/agent/containerd/containerd.log": "k3s", "/var/log/containerd.log": "containerd",
             "/var/log/docker.log": "docker", "/var/log/crio.log": "crio"}
#: Where journald keeps the persistent and the volatile journal.
JOURNAL_DIRS = ("/var/log/journal", "/run/log/journal")
#: How far back errors count as recent, by default.
DEFAULT_HOURS = 24.0
#: Journal entries read per directory (the newest ones in the window).
MAX_JOURNAL_ENTRIES = 5000
#: Bytes read from the end of each plain log file.
TAIL_BYTES = 512 * 1024
#: Seconds one journalctl run may take.
JOURNALCTL_TIMEOUT = 10.0
#: Distinct logged errors kept (the newest first).
MAX_ERRORS = 50
_MAX_TEXT = 2000
#: Characters of one log message looked at (journald's own line limit is 48 KiB).
_MAX_MESSAGE = 256 * 1024
#: journalctl --grep pattern (lower case: matched case-insensitively) every pull-failure line matches.
_GREP = "pull|images/create"
_MAX_OUTPUT = 32 * 1024 * 1024


@dataclass
class LoggedError:
    """One distinct pull error a runtime logged (repeats are counted, not listed)."""

    runtime: str
    """The runtime that logged it (``kubelet`` when kubelet did and its runtime is not known)."""
    source: str
    """``journal <dir> (<unit>)`` or the log file's host path."""
    error: str
    """The error text as the runtime wrote it (redacted, shortened)."""
    image: str = ""
    via: str = ""
    """``kubelet`` when kubelet logged it for its runtime (the CRI error it got back)."""
    first: str = ""
    """RFC 3339 time of the first occurrence in the window (empty when the line has none)."""
    last: str = ""
    count: int = 1
    parsed: Any = None
    """What the shared parser read from the error (:class:`regtui.explain.ParsedError`), ``None`` if it could not."""
    status: str = "unexplained"
    """``explained``, ``not-reproduced`` or ``unexplained``."""
    reason: str = ""
    """Why, in one sentence."""
    verdict: str | None = None
    """``runtime image`` of the verdict it was held against."""
    finding: str | None = None
    """Id of the ``pull.logged-error`` finding when it is unexplained."""

    @property
    def endpoint(self) -> str:
        """``host[:port]`` of the registry endpoint the error names ("" when it names none)."""
        return str(getattr(self.parsed, "host", None) or "")

    @property
    def phase(self) -> str:
        """Where the pull failed, in the diagnosis' words (``proxy``, ``tls``, ``dns``...)."""
        return str(getattr(self.parsed, "phase", None) or "")

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's ``runtime_said.errors`` entry."""
        return {"runtime": self.runtime, "via": self.via or None, "source": self.source, "image": self.image or None,
                "endpoint": self.endpoint or None, "phase": self.phase or None,
                "failure": getattr(self.parsed, "failure", None) or None,
                "go_class": getattr(self.parsed, "go_class", None) or None,
                "go_error": getattr(self.parsed, "go_error", None) or None, "error": self.error,
                "first": self.first or None, "last": self.last or None, "count": self.count,
                "status": self.status, "reason": self.reason, "verdict": self.verdict, "finding": self.finding}


@dataclass
class RuntimeSaid:
    """The logs read and the pull errors found in them."""

    since: str = ""
    """RFC 3339 start of the window."""
    sources: list[dict[str, Any]] = field(default_factory=list)
    """Per journal directory and log file: ``{source, status, entries, detail}``."""
    errors: list[LoggedError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What could not be read and why."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's ``runtime_said`` object."""
        return {"since": self.since or None, "sources": [dict(s) for s in self.sources],
                "errors": [e.to_dict() for e in self.errors], "notes": list(self.notes)}


# -- recognising a pull error in one log message -------------------------------------------------
# A key starts where no key character precedes it, so a long word is scanned once (no quadratic backtracking).
_LOGFMT = re.compile(r'(?<![\w.\-])([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+\S+:\d+\]\s+")
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"',
               "'": "'"}


def _unquote(value: str) -> str:
    """A Go ``%q`` / logfmt value without its quotes and escapes."""
    if len(value) < 2 or not value.startswith('"') or not value.endswith('"'):
        return value
    body, out, i = value[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 == len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        width = {"x": 2, "u": 4, "U": 8}.get(nxt)
        if width and re.fullmatch(r"[0-9a-fA-F]{%d}" % width, body[i + 2:i + 2 + width]):
            code = int(body[i + 2:i + 2 + width], 16)
            out.append(chr(code) if code <= 0x10FFFF else "\ufffd")
            i += 2 + width
        else:
            out.append(_GO_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
    return "".join(out)


def _fields(text: str) -> tuple[str, dict[str, str]]:
    """The free message and the ``key=value`` fields of a logrus or klog line."""
    head = _KLOG.match(text)
    if head:  # klog structured: `E1204 10:00:00.1 123 file.go:12] "message" key="value" ...`
        rest = text[head.end():]
        m = re.match(r'"(?:[^"\\]|\\.)*"', rest)
        if m:
            return _unquote(m.group(0)), {k: _unquote(v) for k, v in _LOGFMT.findall(rest[m.end():])}
        return rest, {}
    fields = {k: _unquote(v) for k, v in _LOGFMT.findall(text)}
    if "msg" in fields:
        return fields["msg"], fields
    # logrus' text formatter on a terminal: `ERRO[2024-01-01T00:00:00Z] message  key=value`
    m = re.match(r"[A-Z]{4}\[[^\]]*\]\s+", text)
    if not m:
        return text, fields
    msg = text[m.end():]
    tail = re.search(r"\s{2,}[A-Za-z_][\w.\-]*=", msg)
    return (msg[:tail.start()] if tail else msg).rstrip(), fields


def _quoted_image(text: str) -> str:
    m = re.search(r'"([^"\s]+)"', text)
    return m.group(1) if m else ""


def pull_error(message: str) -> tuple[str, str] | None:
    """``(error text, image)`` when ``message`` is a runtime's report of a failed pull, else ``None``.

    The formats are the runtimes' own: containerd's CRI ``PullImage "<ref>" failed`` with
    ``error=``, kubelet's ``PullImage from image service failed`` / ``Failed to pull image``
    with ``err=`` and ``image=`` (before 1.20: ``PullImage "<ref>" from image service failed: <err>``), dockerd's ``Handler for POST .../images/create returned error:``
    and ``Not continuing with pull after error:``, CRI-O's ``Error pulling image <ref>: <err>``.
    """
    if not message or ("ull" not in message and "images/create" not in message):
        return None
    msg, fields = _fields(message.strip())
    if re.match(r'PullImage ".*" failed$', msg):
        err = fields.get("error") or fields.get("err") or ""
        return (err, _quoted_image(msg)) if err else None
    if msg in ("PullImage from image service failed", "Failed to pull image"):
        err = fields.get("err") or fields.get("error") or ""
        return (err, fields.get("image", "")) if err else None
    m = re.match(r'(?:Failed to pull image|PullImage) "([^"]+)"(?: from image service failed)?: (.+)$', msg, re.S)
    if m:  # kubelet's event text, and its unstructured klog lines before 1.20
        return m.group(2), m.group(1)
    m = re.match(r"Handler for POST \S*/images/create\S* returned error: (.+)$", msg, re.S)
    if m:
        return m.group(1), ""
    m = re.match(r"Not continuing with pull after error: (.+)$", msg, re.S)
    if m:
        return m.group(1), ""
    m = re.match(r"[Ee]rror pulling image (\S+?): (.+)$", msg, re.S)
    if m:
        return m.group(2), m.group(1)
    return None


def _line_time(fields_text: str) -> datetime | None:
    """The ``time="..."`` of a logrus line, when it has one that parses."""
    m = re.search(r'\btime="?([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:]{8})(\.[0-9]+)?([^"\s]*)"?', fields_text)
    if not m:
        return None
    frac = (m.group(2) or "")[:7]
    zone = (m.group(3) or "").strip() or "+00:00"
    zone = "+00:00" if zone in ("Z", "UTC") else zone
    try:
        t = datetime.fromisoformat(f"{m.group(1).replace(' ', 'T')}{frac}{zone}")
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _iso(t: datetime | None) -> str:
    return t.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z") if t else ""


# -- reading ----------------------------------------------------------------------------------------
@dataclass
class _Raw:
    runtime: str
    source: str
    message: str
    time: datetime | None


def _message(entry: Mapping[str, Any]) -> str:
    value = entry.get("MESSAGE")
    if isinstance(value, list):  # journalctl gives non-UTF-8 fields as byte arrays
        try:
            return bytes(int(b) & 0xFF for b in value[:_MAX_MESSAGE]).decode("utf-8", errors="replace")
        except (TypeError, ValueError):
            return ""
    return value[:_MAX_MESSAGE] if isinstance(value, str) else ""


@dataclass
class _Ran:
    returncode: int
    stdout: bytes
    stderr: bytes
    stopped: str = ""
    """Why the run was cut short (too slow, too much output), or ``""``."""


def _run(args: list[str], env: dict[str, str], timeout: float) -> _Ran:
    """Run journalctl, keeping at most ``_MAX_OUTPUT`` bytes of its output and ``timeout`` seconds of its time."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        data = proc.stdout.read(_MAX_OUTPUT + 1)
        too_much = len(data) > _MAX_OUTPUT
        if too_much:
            proc.kill()
        err = proc.stderr.read(64 * 1024)
        rc = proc.wait()
    finally:
        timer.cancel()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if too_much:
        # The last line may be cut: only whole lines are kept.
        return _Ran(rc, data[:_MAX_OUTPUT].rpartition(b"\n")[0], err, f"gave more than {_MAX_OUTPUT // 2**20} MiB")
    if rc == -9:
        return _Ran(rc, data.rpartition(b"\n")[0], err, f"took more than {timeout:g} s")
    return _Ran(rc, data, err)


def _journal(host: Host, directory: str, since: datetime, limit: int, timeout: float,
             out: RuntimeSaid) -> list[_Raw]:
    """The unit entries of one journal directory in the window, through journalctl."""
    try:
        real = host.resolve(directory)
    except OSError as exc:
        out.sources.append({"source": f"journal {directory}", "status": "unreadable", "entries": 0,
                            "detail": exc.strerror or str(exc)})
        return []
    if not real.exists():
        out.sources.append({"source": f"journal {directory}", "status": "missing", "entries": 0, "detail": ""})
        return []
    if not real.is_dir():
        out.sources.append({"source": f"journal {directory}", "status": "unreadable", "entries": 0,
                            "detail": "not a directory"})
        out.notes.append(f"the journal {directory} is not a directory: not read")
        return []
    binary = shutil.which("journalctl")
    if binary is None:
        out.sources.append({"source": f"journal {directory}", "status": "not-read", "entries": 0,
                            "detail": "journalctl not found"})
        out.notes.append(f"journalctl is not installed here: the journal {directory} was not read")
        return []
    args = [binary, "--directory", str(real), "--output", "json", "--all", "--no-pager", "--quiet", "--utc",
            "--since", f"@{int(since.timestamp())}", "--lines", str(limit)]
    for unit in UNITS:
        args += ["--unit", unit]
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "SYSTEMD_COLORS": "0"}
    try:
        # journalctl filters on the words every pull-failure line has, so the count bound keeps pull lines,
        # not the busiest unit's chatter; a journalctl built without PCRE2 refuses --grep and reads unfiltered.
        proc = _run([*args, "--grep", _GREP], env, timeout)
        if proc.returncode != 0 and not proc.stdout.strip() and not proc.stopped:
            proc = _run(args, env, timeout)
    except OSError as exc:
        out.sources.append({"source": f"journal {directory}", "status": "unreadable", "entries": 0,
                            "detail": exc.strerror or str(exc)})
        out.notes.append(f"journalctl could not run on {directory}: {exc.strerror or exc}")
        return []
    stderr = proc.stderr.decode("utf-8", errors="replace").strip()
    if proc.stopped:
        out.notes.append(f"reading the journal {directory} {proc.stopped}: stopped there")
    rows: list[_Raw] = []
    for line in proc.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        unit = str(entry.get("_SYSTEMD_UNIT") or entry.get("UNIT") or "")
        runtime = UNITS.get(unit) or UNITS.get(f"{entry.get('SYSLOG_IDENTIFIER')}.service") or ""
        try:
            t = datetime.fromtimestamp(int(str(entry.get("__REALTIME_TIMESTAMP"))) / 1e6, timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            t = None
        if t is not None and t < since:  # --since seeks; an entry written out of time order may follow
            continue
        rows.append(_Raw(runtime or "unknown", f"journal {directory} ({unit or 'unknown unit'})", _message(entry), t))
    if not rows and proc.returncode == 0 and not stderr and _unreadable_files(binary, real, timeout):
        stderr = "journal files are present but journalctl read no entry from them (corrupt, or not journal files)"
    if (proc.returncode != 0 and not proc.stopped) or (not rows and stderr):
        detail = (stderr.splitlines() or [f"journalctl exited {proc.returncode}"])[-1][:300]
        out.sources.append({"source": f"journal {directory}", "status": "unreadable", "entries": len(rows),
                            "detail": detail})
        out.notes.append(f"the journal {directory} could not be read whole: {detail}")
    else:
        out.sources.append({"source": f"journal {directory}", "status": "read", "entries": len(rows),
                            "detail": stderr.splitlines()[-1][:300] if stderr else ""})
    return rows


def _unreadable_files(binary: str, real: Any, timeout: float) -> bool:
    """The directory holds ``*.journal`` files yet journalctl reads no entry at all from them."""
    found = False
    try:  # journald's layout: <dir>/<machine-id>/*.journal (one level; symlinks not followed)
        with os.scandir(real) as top:
            for _, entry in zip(range(1000), top):
                if entry.is_dir(follow_symlinks=False):
                    with os.scandir(entry.path) as inner:
                        found = any(e.name.endswith((".journal", ".journal~")) for _, e in zip(range(1000), inner))
                else:
                    found = entry.name.endswith((".journal", ".journal~"))
                if found:
                    break
    except OSError:
        return False
    if not found:
        return False
    try:
        proc = subprocess.run([binary, "--directory", str(real), "--output", "json", "--no-pager", "--quiet",
                               "--lines", "1"], capture_output=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired):
        return True
    return not proc.stdout.strip()


def _tail(host: Host, path: str, runtime: str, since: datetime, tail: int, out: RuntimeSaid) -> list[_Raw]:
    """The last ``tail`` bytes of one plain log file, as lines in the window (lines without a time are kept)."""
    try:
        real = host.resolve(path)
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return []
    except OSError as exc:
        out.sources.append({"source": path, "status": "unreadable", "entries": 0, "detail": exc.strerror or str(exc)})
        out.notes.append(f"the log {path} is unreadable: {exc.strerror or exc}")
        return []
    try:
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not (st.st_mode & 0o170000) == 0o100000:
                out.sources.append({"source": path, "status": "unreadable", "entries": 0, "detail": "not a regular file"})
                return []
            start = max(0, st.st_size - tail)
            fh.seek(start)
            data = fh.read(tail)
    except OSError as exc:
        out.sources.append({"source": path, "status": "unreadable", "entries": 0, "detail": exc.strerror or str(exc)})
        out.notes.append(f"the log {path} is unreadable: {exc.strerror or exc}")
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line was cut by the tail
    rows = []
    for line in lines:
        t = _line_time(line)
        if t is None or t >= since:
            rows.append(_Raw(runtime, path, line, t))
    out.sources.append({"source": path, "status": "read", "entries": len(rows),
                        "detail": f"last {len(data)} of {st.st_size} bytes" if start else ""})
    return rows


def k3s_log(data_dir: str) -> str:
    """Where k3s's embedded containerd writes its log under ``data_dir``."""
    return f"{data_dir.rstrip('/') or ''}/agent/containerd/containerd.log"


def _parse(text: str) -> Any:
    """The shared parser of runtime error texts (:mod:`regtui.explain`)."""
    from regtui.explain import parse_pull_error

    return parse_pull_error(text)


def read(host: Host, *, hours: float = DEFAULT_HOURS, kubelet_runtime: str | None = None,
         limit: int = MAX_JOURNAL_ENTRIES, tail: int = TAIL_BYTES, timeout: float = JOURNALCTL_TIMEOUT,
         log_files: Mapping[str, str] | None = None) -> RuntimeSaid:
    """The pull errors logged under the root in the last ``hours`` hours, distinct, newest first.

    ``log_files`` adds plain logs (host path -> runtime) to :data:`LOG_FILES`: k3s's under a ``data-dir``
    other than the default.
    """
    since = host.now().astimezone(timezone.utc) - timedelta(hours=max(0.0, hours))
    out = RuntimeSaid(since=_iso(since))
    raws: list[_Raw] = []
    for directory in JOURNAL_DIRS:
        raws += _journal(host, directory, since, limit, timeout, out)
    if not any(s["status"] != "missing" for s in out.sources):
        out.notes.append("no systemd journal under this root (" + ", ".join(JOURNAL_DIRS) + ")")
    for path, runtime in {**LOG_FILES, **(log_files or {})}.items():
        raws += _tail(host, path, runtime, since, tail, out)
    seen: dict[tuple[str, str], LoggedError] = {}
    parsed_of: dict[str, Any] = {}  # a runtime logs the same error again at every retry: read it once
    for raw in raws:
        found = pull_error(raw.message)
        if found is None:
            continue
        text, image = found
        text = redact.text(text.strip())[:_MAX_TEXT]
        runtime, via = raw.runtime, ""
        if text not in parsed_of:
            try:
                parsed_of[text] = _parse(text)
            except Exception:  # a parser bug must not hide the other errors or the verdicts
                parsed_of[text] = None
        parsed = parsed_of[text]
        if runtime == "kubelet":
            runtime = kubelet_runtime or getattr(parsed, "runtime", None) or "kubelet"
            via = "kubelet" if runtime != "kubelet" else ""
        key = (runtime, text)
        when = raw.time or _line_time(raw.message)
        item = seen.get(key)
        if item is None:
            seen[key] = LoggedError(runtime, raw.source, text, via=via, image=image or getattr(parsed, "image", None) or "",
                                    first=_iso(when), last=_iso(when), parsed=parsed)
        else:
            item.count += 1
            if when is not None:
                item.first = min(filter(None, (item.first, _iso(when))))
                item.last = max(item.last, _iso(when))
    errors = sorted(seen.values(), key=lambda e: e.last, reverse=True)
    out.errors = errors[:MAX_ERRORS]
    if len(errors) > MAX_ERRORS:
        out.notes.append(f"{len(errors) - MAX_ERRORS} older distinct pull errors not listed")
    return out


# -- holding each against the verdicts --------------------------------------------------------------
def _verdicts_for(e: LoggedError, verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts that may explain ``e``: its runtime's, the one for its image first."""
    mine = [v for v in verdicts if v.runtime == e.runtime or e.runtime in ("kubelet", "unknown")]
    if e.image:
        from regtui.refs import ReferenceError, parse

        try:
            wanted = str(parse(e.image))
        except ReferenceError:
            wanted = e.image
        same = [v for v in mine if v.image == wanted]
        return same + [v for v in mine if v not in same]
    return mine


def _serves_now(e: LoggedError, v: Verdict, routes: list[Any]) -> bool:
    """The endpoint the error names serves ``v``'s pull now (the verdict's, or an endpoint the probes found ok)."""
    from regtui.explain import endpoint_host

    host = endpoint_host(e.endpoint)
    if not host:
        return False
    if v.status in ("ok", "degraded") and v.endpoint and endpoint_host(v.endpoint) == host:
        return True
    return any(ep.status == "ok" and endpoint_host(ep.url) == host
               for r in routes if r.runtime == v.runtime and r.image == v.image for ep in r.endpoints)


def assess(said: RuntimeSaid, verdicts: Iterable[Verdict], routes: Iterable[Any] = ()) -> list[Finding]:
    """Mark each logged error against the verdicts; a ``pull.logged-error`` finding for each unexplained one.

    A verdict explains an error when the shared rule (:func:`regtui.explain.relate`) says so: the
    same endpoint host and phase (or a cause the text names). An error at an endpoint that serves
    the pull now is ``not-reproduced``; any other is ``unexplained`` and becomes a finding.
    """
    if not said.errors:
        return []  # nothing logged: the shared parser's module (the explainer) is not even loaded
    from regtui.explain import relate

    verdicts, routes = list(verdicts), list(routes)
    findings: list[Finding] = []
    for e in said.errors:
        candidates = _verdicts_for(e, verdicts)
        e.status, e.reason, e.verdict, e.finding = "unexplained", "", None, None  # assessed anew per report
        relations = [(v, relate(e.parsed, v.to_dict())) for v in candidates] if e.parsed is not None else []
        hit = next(((v, r) for v, r in relations if r.explains), None)
        if hit:
            e.status, e.verdict, e.reason = "explained", f"{hit[0].runtime} {hit[0].image}", hit[1].reason
            continue
        now = next((v for v in candidates if _serves_now(e, v, routes)), None)
        if now is not None:
            e.status, e.verdict = "not-reproduced", f"{now.runtime} {now.image}"
            e.reason = f"{e.endpoint} serves the pull now: the logged error did not happen again"
            continue
        if e.parsed is None:
            e.reason = "the error text could not be read"
        elif not candidates:
            e.reason = (f"no image was checked for {e.runtime}" if e.runtime not in ("kubelet", "unknown")
                        else "no checked runtime matches it")
        else:
            e.verdict = f"{relations[0][0].runtime} {relations[0][0].image}"
            e.reason = relations[0][1].reason
        subject = e.endpoint or e.image or e.runtime
        what = f"{e.image} " if e.image else ""
        who = f"{e.runtime} (through kubelet)" if e.via else e.runtime
        phase = e.phase or "unknown"
        findings.append(finding(
            "pull.logged-error", subject,
            f"{who} logged a pull error no verdict explains ({subject}, {phase})",
            f"{who} logged {e.count} time(s), last {e.last or 'at an unknown time'}, that pulling {what}failed"
            f"{' at ' + e.endpoint if e.endpoint else ''} ({phase}): "
            f"{(getattr(e.parsed, 'go_error', None) or e.error)[:300]}. {e.reason[:1].upper() + e.reason[1:]}. "
            "Check that image on this host (`regtui check --image REF`), or look for what changed since.",
            evidence={"runtime_error": e.error, "endpoint": e.endpoint or None, "phase": e.phase or None,
                      "source": e.source, "count": e.count, "last": e.last or None, "image": e.image or None},
            runtime=e.runtime if e.runtime not in ("kubelet", "unknown") else None))
    return findings


def link_findings(said: RuntimeSaid, findings: list[Finding]) -> None:
    """Name in each unexplained error the id of its finding (ids are given after :func:`assess`)."""
    ids = {(f.evidence.get("runtime_error"), f.evidence.get("source")): f.id
           for f in findings if f.code == "pull.logged-error"}
    for e in said.errors:
        if e.status == "unexplained":
            e.finding = ids.get((e.error, e.source))
