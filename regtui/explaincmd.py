"""``regtui explain [check options] TEXT``: from a pasted pull error to the verdict that explains it (or not).

It reads the error (:func:`regtui.explain.parse_pull_error`), says in plain words what failed
where and what usually causes it, then runs the check for the image the text names (or
``--image``) as the runtime whose wording it is (or ``--runtime``), and ends with the verdict,
its fix, and whether that verdict explains the pasted error: same endpoint host, and the same
phase or a cause the text names. A pasted error the current verdict does not explain is older
than the host's state, or came from another configuration.

Exit status as ``check``: 0 when the check finds no error, 1 otherwise, 2 for a usage or internal error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterable

from regtui.explain import RUNTIME_WORDS, ParsedError, Relation, parse_pull_error, relate
from regtui.model import fix_command, verdict_fix_command
from regtui.options import RUNTIMES, CheckOptions
from regtui.report.text import STATUS_MARK

__all__ = ["Explanation", "choose_runtime", "pick_verdict", "reading_lines", "verdict_lines", "run_explain",
           "render_text", "explanation_lines", "against_report", "normalised_image", "SCHEMA"]

SCHEMA = "regtui.explain/1"


@dataclass
class Explanation:
    """The reading, the check it ran, the verdict it picked and whether that verdict explains the text."""

    parsed: ParsedError
    runtime: str
    image: str | None
    report: Any = None
    verdict: dict[str, Any] | None = None
    relation: Relation | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON output (``regtui.explain/1``); ``report`` is the whole check's report."""
        return {
            "schema": SCHEMA, "parsed": self.parsed.to_dict(), "runtime": self.runtime, "image": self.image,
            "verdict": self.verdict, "explains": self.relation.to_dict() if self.relation else None,
            "notes": list(self.notes), "report": self.report.to_dict() if self.report is not None else None,
        }


def choose_runtime(parsed: ParsedError, wanted: str, detected: Iterable[str]) -> str:
    """The runtime to check: ``wanted`` unless ``auto``, else the one whose wording the text has.

    containerd's wording on a host where only k3s is detected is k3s's embedded containerd.
    """
    if wanted != "auto":
        return wanted
    found = set(detected)
    rt = parsed.runtime
    if rt == "containerd" and "containerd" not in found and "k3s" in found:
        return "k3s"
    return rt if rt in RUNTIMES else "auto"


def pick_verdict(verdicts: list[dict[str, Any]], runtime: str, image: str | None) -> dict[str, Any] | None:
    """The verdict for ``runtime`` and ``image`` (for ``auto``: the first failing one, else the first)."""
    mine = [v for v in verdicts if (runtime not in RUNTIMES or v.get("runtime") == runtime)
            and (image is None or v.get("image") == image)] or [
        v for v in verdicts if runtime not in RUNTIMES or v.get("runtime") == runtime]
    if not mine:
        return None
    return next((v for v in mine if v.get("status") in ("fails", "degraded")), mine[0])


def reading_lines(p: ParsedError) -> list[str]:
    """What the error says, one fact a line, then the likely causes in order."""
    who = RUNTIME_WORDS.get(p.runtime or "", "unknown (no runtime's wording recognised)")
    if p.producer and p.runtime == "docker" and p.producer == "containerd":
        who += ", containerd image store"
    if p.wrapper:
        who += f", passed on by {p.wrapper}"
    out = ["What the error says:", f"  runtime:   {who}", f"  image:     {p.image or '(not named)'}"]
    where = p.endpoint or p.host or "(not named)"
    if p.url and p.url.rstrip("/") != (p.endpoint or "").rstrip("/"):
        where += f"  ({p.method + ' ' if p.method else ''}{p.url})"
    out.append(f"  endpoint:  {where}")
    out.append(f"  phase:     {p.phase or '(unknown)'}  [{p.failure}]")
    if p.go_error or p.go_class:
        out.append(f"  Go error:  {p.go_error or '-'}" + (f"  ({p.go_class})" if p.go_class else ""))
    for key, value in p.details.items():
        out.append(f"  {key.replace('_', ' ')}: {value}")
    out.append(f"  In plain words: {p.summary}")
    for m in p.mirrors:
        out.append(f"  mirror tried first: {m.host or m.image or '?'}: {m.failure} ({m.phase}); "
                   f"likely {m.causes[0].code if m.causes else 'unknown'}")
    if p.causes:
        out.append("Likely causes, most likely first:")
        out += [f"  {i}. {c.code}: {c.why}" for i, c in enumerate(p.causes, 1)]
    else:
        out.append("No known failure in this text: the check below still shows what fails now.")
    return out


def verdict_lines(v: dict[str, Any] | None, relation: Relation | None, command: str = "") -> list[str]:
    """The verdict, its cause and fix (``command``: the fix's command, when it needs more than its id),
    and whether it explains the pasted error."""
    if v is None:
        return ["No verdict: the check had no route for this runtime and image."]
    out = [f"{STATUS_MARK.get(v['status'], v['status'])} {v['summary']}"]
    cause = v.get("cause")
    if cause:
        out.append(f"  cause: {cause['code']} at {cause.get('endpoint') or 'the configuration'}"
                   f" ({cause.get('phase') or '-'})")
    if v.get("fix"):
        out.append(f"  fix: {command or fix_command(v['fix'])} --apply")
    elif v.get("manual"):
        out.append(f"  by hand: {v['manual']}")
    if v.get("untested"):
        out.append("  not tested: " + "; ".join(v["untested"]))
    if relation is not None:
        out.append(("Explains the pasted error: yes: " if relation.explains else "Explains the pasted error: no: ")
                   + relation.reason)
    return out


def explanation_lines(e: Explanation, mode: str = "") -> list[str]:
    """The reading, then (when a check was compared) the verdict and whether it explains the text, then notes."""
    lines = reading_lines(e.parsed)
    if e.relation is not None:
        lines.append("")
        lines.append(f"What regtui finds now ({e.runtime}, {e.image or 'no image'}{', ' + mode if mode else ''}):")
        lines += [f"  {line}" for line in verdict_lines(e.verdict, e.relation, _fix_command(e))]
    return lines + [f"note: {note}" for note in e.notes]


def _fix_command(e: Explanation) -> str:
    """The command of the fix the picked verdict names, with what it needs (as the finding's own)."""
    fid = (e.verdict or {}).get("fix")
    return verdict_fix_command(fid, e.report.findings) if fid and e.report is not None else ""


def render_text(e: Explanation) -> str:
    """The terminal output."""
    mode = "offline" if e.report is not None and getattr(e.report, "mode", "") == "offline" else ""
    return "\n".join(explanation_lines(e, mode)) + "\n"


def normalised_image(image: str | None) -> str | None:
    """``image`` as the check names it (``nginx`` -> ``docker.io/library/nginx:latest``), ``None`` if invalid."""
    from regtui.refs import ReferenceError, parse

    if not image:
        return None
    try:
        return str(parse(image))
    except ReferenceError:
        return None


def against_report(parsed: ParsedError, data: dict[str, Any], wanted: str = "auto") -> Explanation:
    """Compare a reading with a check already run (the workbench's report dict) instead of running one."""
    image = normalised_image(parsed.image)
    detected = [str(r.get("name")) for r in data.get("runtimes") or [] if r.get("name")]
    runtime = choose_runtime(parsed, wanted, detected)
    e = Explanation(parsed, runtime, image)
    checked = list(data.get("images") or [])
    if image is None:
        e.notes = ("the text names no image: the verdicts below are for the image being checked",)
        image = checked[0] if checked else None
        e.image = image
    elif image not in checked:
        e.notes = (f"this check is for {', '.join(checked) or 'no image'}, not {image}: check that image to compare",)
        return e
    e.verdict = pick_verdict(data.get("verdicts") or [], runtime, image)
    e.relation = relate(parsed, e.verdict)
    return e


def _detected(options: CheckOptions) -> list[str]:
    from regtui.engine import select_runtimes
    from regtui.host import Host

    return list(select_runtimes(Host.from_args(options.root), "auto", []))


def run_explain(options: CheckOptions, text: str, *, fmt: str = "text", debug: bool = False, out: Any = None,
                err: Any = None, progress: Any = None) -> int:
    """Run ``regtui explain``; ``options.images`` (from ``--image``) overrides the text's image."""
    import contextlib
    import sys

    from regtui.refs import ReferenceError, parse

    out = out or sys.stdout
    err = err or sys.stderr
    parsed = parse_pull_error(text)
    notes: list[str] = []
    image = options.images[0] if options.images else parsed.image
    ref = None
    if image:
        try:
            ref = parse(image)
        except ReferenceError as exc:
            notes.append(f"the image {image!r} is not a valid reference ({exc}): give --image")
    runtime = choose_runtime(parsed, options.runtime, _detected(options) if options.runtime == "auto" else ())
    e = Explanation(parsed, runtime, str(ref) if ref else None)
    if ref is None:
        if not notes:
            notes.append("the text names no image: give --image REF to run the check for it")
        e.notes = tuple(notes)
        _emit(e, fmt, out)
        print(f"regtui: {notes[0]}", file=err)
        return 2
    from regtui.engine import run_check

    check = replace(options, images=(str(ref),), runtime=runtime)
    with progress or contextlib.nullcontext():
        report = run_check(check, debug=debug, refs=[ref], progress=progress)
    data = report.to_dict()
    e.report = report
    e.verdict = pick_verdict(data.get("verdicts") or [], runtime, str(ref))
    e.relation = relate(parsed, e.verdict)
    if runtime == "auto":
        notes.append("the text's wording names no runtime: the check ran for the runtimes detected; "
                     "give --runtime to choose")
    e.notes = tuple(notes)
    _emit(e, fmt, out)
    for error in report.errors:
        print(f"regtui: internal error: {error.splitlines()[0]}", file=err)
    return 2 if report.errors else report.exit_code


def _emit(e: Explanation, fmt: str, out: Any) -> None:
    if fmt == "json":
        out.write(json.dumps(e.to_dict(), indent=2) + "\n")
    else:
        out.write(render_text(e))
    out.flush()
