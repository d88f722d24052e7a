"""dockerd's command line: the options of the effective ExecStart (with systemd's variable
expansion and pflag's shorthands), and the directives set both as a flag and in daemon.json, which
stop dockerd (SEMANTICS §1.1; moby ``findConfigurationConflicts``, moby#43051)."""

from __future__ import annotations

from regtui.config import systemd
from regtui.findings import finding, fix
from regtui.model import Finding
from regtui.runtimes.docker.keys import BOOLS, FLAG_ONLY_KEYS
from regtui.runtimes.docker.model import RUNTIME, UNIT, DaemonConfig, Flag, shown

__all__ = ["parse_exec_start", "conflicts"]

#: Command-line shorthands of dockerd.
_SHORTHANDS = {"H": "host", "D": "debug", "p": "pidfile", "l": "log-level", "G": "group", "s": "storage-driver",
               "b": "bridge", "v": "version", "r": "restart", "g": "graph"}
#: Flags that take no value (``--flag`` or ``--flag=false``).
_BOOL_FLAGS = BOOLS | {"validate", "version", "help", "restart"}
#: Flags whose conflict name is their named option (``--insecure-registry`` conflicts with ``insecure-registries``).
_NAMED_OPTION = {k: v for k, v in FLAG_ONLY_KEYS.items()
                 if v and not v.startswith("proxies.") and k not in ("cluster-store-opt",)}
_NAMED_OPTION.update({"dns": "dns", "host-gateway-ip": "host-gateway-ips"})
#: Named options dockerd merges from flag and file instead of calling a conflict.
_SKIP_DUPLICATES = {"runtimes"}


def parse_exec_start(argv: list[str], source: str, env: dict[str, str] | None = None,
                     env_sources: dict[str, str] | None = None) -> list[Flag]:
    """dockerd's options from an ExecStart argv (``argv[0]`` is the binary)."""
    words = systemd.expand_argv(argv[1:], env or {}, env_sources or {}, default=source)
    flags: list[Flag] = []
    i = 0
    while i < len(words):
        word, src = words[i]
        i += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        written, _, inline = word.partition("=")
        has_inline = "=" in word
        if written.startswith("--"):
            name = written[2:]
        else:
            # pflag shorthands: "-Dl debug" is -D then -l debug; "-Hfd://" is -H fd://.
            letters = written[1:]
            while len(letters) > 1 and _SHORTHANDS.get(letters[0]) in _BOOL_FLAGS:
                flags.append(Flag(_SHORTHANDS[letters[0]], "true", "-" + letters[0], src))
                letters = letters[1:]
            written = "-" + letters[0] if letters else written
            name = _SHORTHANDS.get(letters[:1], letters)
            if not has_inline and len(letters) > 1:
                inline, has_inline = letters[1:], True
        if name in _BOOL_FLAGS:
            flags.append(Flag(name, inline if has_inline else "true", written, src))
            continue
        if has_inline:
            value = inline
        elif i < len(words):
            value = words[i][0]
            i += 1
        else:
            value = ""
        flags.append(Flag(name, value, written, src))
    return flags


# -- flag conflicts ----------------------------------------------------------------------------

def conflicts(cfg: DaemonConfig) -> None:
    """Directives both in daemon.json and on the ExecStart command line (moby#43051)."""
    if not cfg.flags or not cfg.flat:
        return
    reverse_short = {v: k for k, v in _SHORTHANDS.items()}
    seen: set[str] = set()
    for flag in cfg.flags:
        named = _NAMED_OPTION.get(flag.name)
        names = [named] if named else [flag.name, reverse_short.get(flag.name, "")]
        for name in names:
            if not name or name in _SKIP_DUPLICATES or name not in cfg.flat or name in seen:
                continue
            seen.add(name)
            same = [f for f in cfg.flags if (_NAMED_OPTION.get(f.name) or f.name) == (named or flag.name)]
            flag_value = [f.value for f in same] if named else flag.value
            message = ("the following directives are specified both as a flag and in the configuration file: "
                       f"{name}: (from flag: {shown(name, flag_value)}, from file: {shown(name, cfg.flat[name])})")
            cfg.fatal.append(message)
            cfg.findings.append(_conflict_finding(cfg, name, same, message))
            break


def _conflict_finding(cfg: DaemonConfig, name: str, flags: list[Flag], message: str) -> Finding:
    assert cfg.parsed is not None and cfg.unit is not None
    unit = cfg.unit
    exec_file = unit.exec_start_source.rsplit(":", 1)[0]
    dropin = exec_file if "/etc/systemd/system/" in exec_file and exec_file.endswith(".conf") else \
        f"/etc/systemd/system/{UNIT}.d/override.conf"
    kept = _argv_without(unit.exec_start, flags)
    written = " ".join(f"{f.written} {f.value}" if f.name not in _BOOL_FLAGS else f.written for f in flags)
    from_env = flags[0].source != unit.exec_start_source
    target = flags[0].source.rsplit(":", 1)[0] if from_env else dropin
    where_flag = f"from {target}" if from_env else f"from dockerd's ExecStart in {dropin}"
    return finding(
        "config.flag-conflict", cfg.path,
        f"{cfg.where(name)}: {name!r} is set both in {cfg.path} and on dockerd's command line ({written})",
        f"dockerd refuses to start when one directive comes from the file and from a flag: '{message}'. "
        f"The flag comes from {', '.join(sorted({f.source for f in flags}))}. Keep the file's value and drop the "
        "flag from the ExecStart with a drop-in (a packaged unit file is overwritten by upgrades).",
        evidence=cfg.parsed.evidence(*cfg.flat_lines.get(name, (name,)), key=name, value=shown(name, cfg.flat[name]),
                                     flag=written, flag_source=flags[0].source, error=message),
        runtime=RUNTIME,
        fix=fix("config.flag-conflict", cfg.path, f"remove {written} {where_flag}, keep {name!r} in {cfg.path}",
                files=[target], restart="restart docker", detail=name,
                params={"key": name, "flag": flags[0].written, "flag_values": [f.value for f in flags],
                        "flag_source": flags[0].source, "exec_start_source": unit.exec_start_source,
                        "dropin": None if from_env else dropin, "exec_start": None if from_env else kept,
                        "daemon_reload": not from_env}),
    )


def _argv_without(argv: list[str], flags: list[Flag]) -> list[str]:
    """ExecStart argv with the given flags (and their values) removed."""
    drop_names = {f.name for f in flags}
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word.startswith("-") and word not in ("-", "--"):
            written = word.split("=", 1)[0]
            name = written[2:] if written.startswith("--") else _SHORTHANDS.get(written[1:2], written[1:])
            if name in drop_names:
                short_inline = not written.startswith("--") and len(written) > 2
                skip = "=" not in word and name not in _BOOL_FLAGS and not short_inline
                continue
        out.append(word)
    return out
