"""systemd units as the daemon sees them: unit file + drop-ins, Environment=, EnvironmentFile=,
and the effective ExecStart (for flag conflicts with daemon.json and for proxy variables).

Rules followed (systemd.unit(5), systemd.exec(5)):

- the unit file is the first found along the system search path, ``/etc`` first;
- drop-ins ``<unit>.d/*.conf`` from every search directory apply after it, ordered by file
  name; a drop-in in a higher-priority directory masks one of the same name below it;
- an empty ``Environment=`` or ``ExecStart=`` resets what came before;
- variables from ``EnvironmentFile=`` override ``Environment=``; a file prefixed ``-`` may be
  missing, any other missing file stops the unit from starting;
- ``%%`` is a literal ``%``; the unit-name specifiers ``%n``, ``%N``, ``%p``, ``%i`` are expanded
  (installers write ``EnvironmentFile=-/etc/default/%N``); a trailing backslash continues the line;
- in ExecStart, ``$NAME`` as a whole word becomes the variable's value split into words (quotes
  removed), ``${NAME}`` inside a word its value as is, ``$$`` a literal ``$``
  (systemd.service(5) "Command lines").
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field

from regtui.config._source import BadLines, parse_error, unreadable_finding
from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile

__all__ = ["UNIT_DIRS", "UnitConfig", "load_unit", "unit_paths", "env_file", "env_assignments", "parse_unit",
           "parse_environment_value", "expand_specifiers", "expand_argv"]

#: System unit search path, highest priority first.
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)


@dataclass
class UnitConfig:
    """One unit's effective settings that matter to regtui."""

    unit: str
    found: bool = False
    """A unit file or drop-in exists under the root."""
    files: list[SourceFile] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    """Effective environment from Environment= and EnvironmentFile=, systemd precedence."""
    env_sources: dict[str, str] = field(default_factory=dict)
    """Variable -> ``path:line`` where its effective value was set."""
    exec_start: list[str] = field(default_factory=list)
    """argv of the effective ExecStart, ``[]`` when none."""
    exec_start_source: str = ""
    findings: list[Finding] = field(default_factory=list)
    unit_file: str | None = None
    """Host path of the main unit file."""
    dropins: list[str] = field(default_factory=list)
    """Host paths of the drop-ins applied, in order."""


@dataclass
class _Directive:
    key: str
    value: str
    path: str
    line: int


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations; returns (first line number, text)."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf:
            start = n
            stripped = line.lstrip()
            if stripped.startswith(("#", ";")):
                continue
        if line.endswith("\\"):
            buf.append(line[:-1] + " ")
            continue
        buf.append(line)
        out.append((start, "".join(buf).strip()))
        buf = []
    if buf:
        out.append((start, "".join(buf).strip()))
    return out


_UNIT_WHAT = ("systemd logs each of these lines as invalid and ignores it (after a broken section header, "
              "the settings up to the next header).")


def parse_unit(text: str, path: str, runtime: str) -> tuple[list[_Directive], list[Finding]]:
    """Directives of the ``[Service]`` section; malformed lines are one finding for the file."""
    bad = BadLines(path, runtime, _UNIT_WHAT)
    return _unit_directives(text, bad), bad.findings()


def _unit_directives(text: str, bad: BadLines) -> list[_Directive]:
    """Directives of the ``[Service]`` section; malformed lines go to ``bad``."""
    directives: list[_Directive] = []
    section = ""
    for lineno, line in _logical_lines(text):
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                bad.add(lineno, "unterminated section header", line[:120])
                section = ""
                continue
            section = line[1:-1].strip()
            continue
        if "=" not in line:
            bad.add(lineno, "line is not KEY=VALUE; systemd ignores it", line[:120])
            continue
        key, value = line.split("=", 1)
        if section == "Service":
            directives.append(_Directive(key.strip(), value.strip(), bad.path, lineno))
    return directives


def expand_specifiers(value: str, unit: str) -> str:
    """Expand the unit-name specifiers systemd units use (``%n``, ``%N``, ``%p``, ``%i``, ``%%``)."""
    name = unit.rsplit(".", 1)[0]
    prefix, _, instance = name.partition("@")
    table = {"n": unit, "N": name, "p": prefix, "i": instance, "%": "%"}
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "%" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IN_WORD = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_argv(argv: list[str], env: dict[str, str], env_sources: dict[str, str] | None = None,
                default: str = "") -> list[tuple[str, str]]:
    """An ExecStart argv with the unit's variables expanded as systemd does, each word with its source.

    ``$NAME`` alone becomes zero or more words (an unset or invalid name: none); ``${NAME}`` inside a
    word is replaced as is (unset: empty); ``$$`` is ``$``; a braceless ``$NAME`` inside a word stays
    literal. A word's source is ``env_sources`` of the first variable in it, else ``default``.
    """
    sources = env_sources or {}
    out: list[tuple[str, str]] = []
    for word in argv:
        if word.startswith("$") and word[1:2] not in ("{", "$"):
            name = word[1:]
            value = env.get(name, "") if _ENV_NAME.fullmatch(name) else ""
            try:
                words = shlex.split(value)
            except ValueError:
                words = value.split()
            out += [(w, sources.get(name, default)) for w in words]
            continue
        names: list[str] = []

        def substitute(m: re.Match[str]) -> str:
            if m.group(1) is None:
                return "$"
            names.append(m.group(1))
            return env.get(m.group(1), "")

        expanded = _IN_WORD.sub(substitute, word)
        out.append((expanded, sources.get(names[0], default) if names else default))
    return out


def parse_environment_value(value: str) -> list[tuple[str, str]] | None:
    """Assignments in one ``Environment=`` value (quoted words, ``%%`` unescaped); ``None`` if malformed."""
    try:
        words = shlex.split(value.replace("%%", "%"), posix=True)
    except ValueError:
        return None
    out = []
    for word in words:
        if "=" not in word:
            continue
        k, v = word.split("=", 1)
        if k:
            out.append((k, v))
    return out


#: Variables of one environment file listed in its source record.
_MAX_SHOWN = 100


def env_assignments(text: str) -> list[tuple[int, str | None, str | None]]:
    """(line, key, value) of each line of a ``KEY=VALUE`` environment file, read as systemd reads it:
    continuations joined, ``export`` allowed, the value unquoted. ``key`` is ``None`` for a line that
    is not an assignment, ``value`` is ``None`` when the quotes are unbalanced."""
    out: list[tuple[int, str | None, str | None]] = []
    for lineno, line in _logical_lines(text):
        if not line:
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        if "=" not in line:
            out.append((lineno, None, None))
            continue
        key, raw = line.split("=", 1)
        raw = raw.strip()
        try:
            out.append((lineno, key.strip(), " ".join(shlex.split(raw, posix=True)) if raw else ""))
        except ValueError:
            out.append((lineno, key.strip(), None))
    return out


def env_file(host: Host, path: str, runtime: str) -> tuple[dict[str, str], dict[str, str], SourceFile, list[Finding]]:
    """Read a ``KEY=VALUE`` environment file (systemd EnvironmentFile=, k3s ``.env``)."""
    file = host.read(path)
    if file.status == "missing":
        return {}, {}, SourceFile(path, runtime, "environment file", "missing"), []
    if not file.ok:
        return {}, {}, SourceFile(path, runtime, "environment file", "unreadable", file.error), [
            unreadable_finding(file, runtime)]
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    findings: list[Finding] = []
    if file.decode_error:
        findings.append(parse_error(path, file.decode_error, None, None, runtime))
        return {}, {}, SourceFile(path, runtime, "environment file", "parse-error", file.decode_error), findings
    # Environment files hold secrets: bad lines are located, never quoted.
    bad = BadLines(path, runtime, "systemd ignores each of these lines.")
    for lineno, key, val in env_assignments(file.text):
        if key is None:
            bad.add(lineno, "line is not KEY=VALUE; it is ignored")
        elif val is None:
            bad.add(lineno, "unbalanced quotes")
        else:
            values[key] = val
            sources[key] = f"{path}:{lineno}"
    findings += bad.findings()
    status = "parse-error" if findings else "ok"
    # The Config panel lists the first variables only: a file of junk must not grow the report with it.
    shown = list(values.items())[:_MAX_SHOWN]
    redacted = {k: _redact_env(k, v) for k, v in shown}
    detail = f"{len(values)} variables, the first {_MAX_SHOWN} listed" if len(values) > _MAX_SHOWN else ""
    return values, sources, SourceFile(path, runtime, "environment file", status, detail, redacted), findings


def _redact_env(key: str, value: str) -> str:
    """One variable as listed: masked whole under a secret name (the one redaction policy), else its URLs masked."""
    from regtui import redact

    return redact.MASK if redact.secret_name(key) else redact.text(value)


def _find_unit_file(host: Host, unit: str) -> str | None:
    for d in UNIT_DIRS:
        p = posixpath.join(d, unit)
        if host.is_file(p):
            return p
    return None


def _dropins(host: Host, unit: str) -> list[str]:
    """Drop-in paths in application order (by file name), higher-priority dirs masking lower."""
    chosen: dict[str, str] = {}
    for d in UNIT_DIRS:
        for p in host.glob(posixpath.join(d, f"{unit}.d"), ".conf"):
            chosen.setdefault(posixpath.basename(p), p)
    return [chosen[name] for name in sorted(chosen)]


def unit_paths(host: Host, unit: str) -> list[str]:
    """The unit file and drop-ins systemd would read for ``unit`` (a drop-in counts without a unit file)."""
    main = _find_unit_file(host, unit)
    return ([main] if main else []) + _dropins(host, unit)


#: ``env_sources``-style location of an EnvironmentFile= assumed from the packaged unit.
_PACKAGED = "packaged unit"


def load_unit(host: Host, unit: str, runtime: str, packaged_env_files: tuple[str, ...] = ()) -> UnitConfig:
    """Read ``unit`` (e.g. ``docker.service``) with its drop-ins and environment files.

    ``packaged_env_files`` are the optional ``EnvironmentFile=`` lines of the unit a package ships:
    with no unit file under the root they are read as that unit would, before any drop-in's.
    """
    cfg = UnitConfig(unit)
    paths: list[tuple[str, str]] = []
    main = _find_unit_file(host, unit)
    if main:
        cfg.unit_file = main
        paths.append((main, "systemd unit"))
    cfg.dropins = _dropins(host, unit)
    paths += [(p, "systemd drop-in") for p in cfg.dropins]
    cfg.found = bool(paths)

    directives: list[_Directive] = []
    bad_lines: dict[str, BadLines] = {}
    for path, kind in paths:
        file = host.read(path)
        if not file.ok:
            cfg.files.append(SourceFile(path, runtime, kind, "unreadable", file.error))
            cfg.findings.append(unreadable_finding(file, runtime))
            continue
        bad = bad_lines[path] = BadLines(path, runtime, _UNIT_WHAT)
        directives += _unit_directives(file.text, bad)
        cfg.files.append(SourceFile(path, runtime, kind, "ok"))

    env: dict[str, str] = {}
    env_src: dict[str, str] = {}
    env_files: list[tuple[str, bool, str]] = [] if main else [(p, True, _PACKAGED) for p in packaged_env_files]
    for d in directives:
        where = f"{d.path}:{d.line}"
        if d.key == "EnvironmentFile":
            d.value = expand_specifiers(d.value, unit)
        elif d.key in ("Environment", "ExecStart"):
            # their parsers unescape %% later, so a literal % from the expansion is escaped again
            d.value = expand_specifiers(d.value, unit).replace("%", "%%")
        if d.key == "Environment":
            if not d.value:
                env.clear()
                env_src.clear()
                continue
            pairs = parse_environment_value(d.value)
            if pairs is None:
                bad_lines[d.path].add(d.line, "unbalanced quotes in Environment=; systemd ignores the assignment")
                continue
            for k, v in pairs:
                env[k] = v
                env_src[k] = where
        elif d.key == "EnvironmentFile":
            if not d.value:
                env_files.clear()
                continue
            for item in d.value.split():
                optional = item.startswith("-")
                env_files.append((item.lstrip("-"), optional, where))
        elif d.key == "ExecStart":
            if not d.value:
                cfg.exec_start = []
                cfg.exec_start_source = ""
                continue
            try:
                argv = shlex.split(d.value.replace("%%", "%"), posix=True)
            except ValueError:
                bad_lines[d.path].add(d.line, "unbalanced quotes in ExecStart=")
                continue
            if argv:
                argv[0] = argv[0].lstrip("-@:+!")
            cfg.exec_start = argv
            cfg.exec_start_source = where

    # One finding per unit file or drop-in, however many of its lines are bad.
    for i, source in enumerate(cfg.files):
        problems = bad_lines[source.path].findings() if source.path in bad_lines else []
        if problems:
            cfg.findings += problems
            cfg.files[i] = SourceFile(source.path, runtime, source.kind, "parse-error", problems[0].title)

    # EnvironmentFile= values override Environment= (systemd.exec(5)), files in order.
    for path, optional, where in env_files:
        values, sources, source, problems = env_file(host, path, runtime)
        if where == _PACKAGED:
            if source.status == "missing":
                continue
            source = SourceFile(source.path, source.runtime, source.kind, source.status,
                                f"assumed: the packaged {unit} reads it (no unit file under the root)", source.values)
        elif source.status == "missing":
            if not optional:
                cfg.findings.append(finding(
                    "config.invalid-value", path,
                    f"{where}: EnvironmentFile={path} does not exist; {unit} will not start",
                    "systemd refuses to start a unit whose EnvironmentFile= is missing unless it is "
                    "prefixed with '-'.",
                    evidence={"file": where.rsplit(':', 1)[0], "line": int(where.rsplit(':', 1)[1]),
                              "value": path},
                    runtime=runtime,
                    fix=fix("config.invalid-value", path, f"create {path} or prefix the directive with '-'",
                            kind="manual"),
                ))
            source = SourceFile(path, runtime, "environment file", "missing",
                                "optional (-), absent" if optional else "required, absent: the unit fails")
        cfg.files.append(source)
        cfg.findings += problems
        env.update(values)
        env_src.update(sources)
    cfg.environment = env
    cfg.env_sources = env_src
    return cfg
