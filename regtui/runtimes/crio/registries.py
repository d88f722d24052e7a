"""Which registries.conf files containers/image reads and how they merge (SEMANTICS §3.1):
``$HOME/.config/containers/registries.conf`` *replaces* ``/etc/containers/registries.conf`` when it
exists (then only the user's drop-in dir is read); otherwise the system file, then
``/etc/containers/registries.conf.d/*.conf``, then the user's drop-ins. ``CONTAINERS_REGISTRIES_CONF``
/ ``REGISTRIES_CONFIG_PATH`` (podman/skopeo only) name the main file instead. A drop-in's
``[[registry]]`` replaces one with the same prefix wholesale; ``unqualified-search-registries`` and
``credential-helpers`` are replaced when present (``[]`` clears); aliases merge and ``""`` erases
one. Any invalid file makes the runtime refuse the whole configuration."""

from __future__ import annotations

import posixpath
from typing import Any, Mapping

from regtui.findings import finding, fix
from regtui.host import Host
from regtui.model import Finding, SourceFile
from regtui.runtimes.crio.common import (
    AUTH_FILE_HELPER,
    RELOAD,
    RUNTIME,
    SYSTEM_REGISTRIES_CONF,
    SYSTEM_REGISTRIES_DIR,
    path_line,
)
from regtui.runtimes.crio.conffile import REFUSED, FileConf
from regtui.runtimes.crio.records import RegistriesConf, RegistryEntry
from regtui.runtimes.crio.detection import USER_REGISTRIES_CONF, USER_REGISTRIES_DIR
from regtui.runtimes.crio.shortnames import SHORT_NAME_ALIASES, apply_aliases_cache, short_name_prompt
from regtui.runtimes.crio.validation import load_registries_file

__all__ = ["registries_paths", "load_registries"]


def registries_paths(host: Host, home: str, env: Mapping[str, str] | None = None) -> tuple[str, bool, list[str], str]:
    """``newConfigWrapperWithHomeDir``: (main file, main is explicit, drop-in dirs, why).

    ``env`` is the podman/skopeo process environment (``CONTAINERS_REGISTRIES_CONF``,
    ``REGISTRIES_CONFIG_PATH``); CRI-O does not read those variables, so pass ``None`` for it.
    """
    env = env or {}
    user_file = posixpath.join(home, USER_REGISTRIES_CONF)
    user_dir = posixpath.join(home, USER_REGISTRIES_DIR)
    for var in ("CONTAINERS_REGISTRIES_CONF", "REGISTRIES_CONFIG_PATH"):
        if var in env:  # set, even empty, it ends the search (an empty value means the default)
            if env[var]:
                return env[var], True, [SYSTEM_REGISTRIES_DIR, user_dir], f"{var}={env[var]}"
            break
    if host.exists(user_file):
        return user_file, False, [user_dir], f"{user_file} exists, so it replaces {SYSTEM_REGISTRIES_CONF}"
    return SYSTEM_REGISTRIES_CONF, False, [SYSTEM_REGISTRIES_DIR, user_dir], "system file"


def _dropin_files(host: Host, dirs: list[str], out: RegistriesConf) -> list[str]:
    """``*.conf`` files of each drop-in dir in lexical order, one dir after the other."""
    files: list[str] = []
    for d in dirs:
        if not host.is_dir(d):
            continue  # absent, or a plain file: WalkDir finds no *.conf in it
        names = host.listdir(d)
        if names is None:
            file = host.read(d)
            out.findings.append(finding(
                "config.permission", d, f"{d} exists but cannot be listed",
                f"containers/image fails with \"reading registries.conf.d\": {REFUSED}",
                evidence={"file": d, "line": None, "value": file.error or file.status},
                runtime=RUNTIME,
                fix=fix("config.permission", d, f"inspect permissions: ls -ld {d}", kind="command",
                        params={"command": f"ls -ld {d}"}),
            ))
            out.refused = out.refused or out.findings[-1]
            continue
        files += [posixpath.join(d, n) for n in names if n.endswith(".conf") and not host.is_dir(posixpath.join(d, n))]
    return files


def _replacement_finding(old: RegistryEntry, new: RegistryEntry) -> Finding | None:
    """A drop-in entry replaced ``old`` wholesale: say which of its settings are gone."""
    lost = []
    if old.mirrors and not new.mirrors:
        lost.append(f"{len(old.mirrors)} mirror(s) ({', '.join(m.location for m in old.mirrors)})")
    for attr, label in (("insecure", "insecure = true"), ("blocked", "blocked = true"),
                        ("mirror_by_digest_only", "mirror-by-digest-only = true")):
        if getattr(old, attr) and not getattr(new, attr):
            lost.append(label)
    if old.location != new.location:
        lost.append(f"location = {old.location!r}")
    if not lost:
        return None
    line = new.line("prefix") or new.line()
    return finding(
        "config.ignored-key", new.file,
        f"{path_line(new.file, line)}: [[registry]] {new.prefix!r} replaces the one in {old.where()} wholesale",
        f"Drop-ins replace an entry with the same prefix as a whole; nothing is merged, so "
        f"{'; '.join(lost)} from {old.where()} no longer apply.",
        severity="info",
        evidence={"file": new.file, "line": line, "key": "prefix", "value": new.prefix, "replaced": old.where(),
                  "lost": lost},
        runtime=RUNTIME,
        fix=fix("config.ignored-key", new.file, f"repeat the settings you still want in {new.file}",
                files=[new.file], restart=RELOAD, detail=f"prefix:{line}",
                params={"file": new.file, "line": line, "prefix": new.prefix, "copy_from": old.where(), "lost": lost}),
    )


def _merge(out: RegistriesConf, conf: FileConf) -> None:
    """``updateWithConfigurationFrom``: a later file's settings override the merged ones."""
    for entry in conf.registries:
        old = out.registries.get(entry.prefix)
        if old is not None:
            entry = RegistryEntry(**{**entry.__dict__, "replaced": old.replaced + (old.where(),)})
            note = _replacement_finding(old, entry)
            if note:
                out.findings.append(note)
        out.registries[entry.prefix] = entry
    if conf.search is not None:
        out.search = conf.search
        out.search_source = path_line(conf.path, conf.search_line)
    if conf.short_name_mode:
        out.short_name_mode = conf.short_name_mode
        out.short_name_mode_source = path_line(conf.path, conf.short_name_mode_line)
    if conf.credential_helpers is not None:
        out.credential_helpers = conf.credential_helpers or [AUTH_FILE_HELPER]
        out.credential_helpers_source = path_line(conf.path, conf.credential_helpers_line)
    out.aliases.update(conf.aliases)


def _file_values(conf: FileConf) -> dict[str, Any]:
    """Effective values of one file for the Config panel."""
    values: dict[str, Any] = {}
    if conf.registries:
        values["registry"] = {e.prefix: {"location": e.location, "mirrors": [m.location for m in e.mirrors],
                                         "insecure": e.insecure, "blocked": e.blocked} for e in conf.registries}
    if conf.search is not None:
        values["unqualified-search-registries"] = conf.search
    if conf.short_name_mode:
        values["short-name-mode"] = conf.short_name_mode
    if conf.credential_helpers is not None:
        values["credential-helpers"] = conf.credential_helpers
    if conf.aliases:
        values["aliases"] = {a.name: a.value for a in conf.aliases.values()}
    return values


def _record(out: RegistriesConf, conf: FileConf, kind: str, detail: str) -> None:
    """Add one file's SourceFile and findings; the first rejecting error refuses the configuration."""
    parsed = conf.parsed
    out.findings += parsed.findings + conf.errors + conf.warnings
    status = parsed.status if parsed.status != "ok" else ("parse-error" if conf.errors else "ok")
    problem = conf.errors[0].title if conf.errors else parsed.error
    out.sources.append(SourceFile(conf.path, RUNTIME, kind, status, problem or detail, _file_values(conf)))
    if out.refused is None and parsed.status in ("parse-error", "unreadable"):
        out.refused = parsed.findings[0] if parsed.findings else None
    if out.refused is None and conf.errors:
        out.refused = conf.errors[0]


def _missing_explicit(out: RegistriesConf, path: str, why: str) -> None:
    """An env-named registries.conf that does not exist: podman/skopeo refuse every pull."""
    variable = why.split("=", 1)[0]
    out.findings.append(finding(
        "config.invalid-value", path, f"{variable} names {path}, which does not exist",
        f"With {variable} set, podman/skopeo require the file: every pull fails with "
        "\"loading registries configuration\".",
        evidence={"file": path, "line": None, "key": variable, "value": path},
        runtime=RUNTIME,
        fix=fix("config.invalid-value", path, f"create {path} or unset {variable}", kind="manual",
                params={"variable": variable, "value": path}),
    ))
    out.refused = out.refused or out.findings[-1]


def _load_aliases_cache(host: Host, out: RegistriesConf) -> None:
    """``short-name-aliases.conf`` is read after every registries.conf file (its meaning: :mod:`.shortnames`)."""
    apply_aliases_cache(out, load_registries_file(host, SHORT_NAME_ALIASES, drop_in=True))


def load_registries(host: Host, home: str | None = None, env: Mapping[str, str] | None = None) -> RegistriesConf:
    """Read registries.conf and its drop-ins the way containers/image merges them."""
    home = home or host.home()
    out = RegistriesConf()
    main, explicit, dirs, why = registries_paths(host, home, env)
    main_conf = load_registries_file(host, main, drop_in=False)
    if main_conf.parsed.status == "missing":
        out.sources.append(SourceFile(main, RUNTIME, "registries.conf", "missing",
                                      f"{why}; absent, so built-in defaults apply"))
        if explicit:
            _missing_explicit(out, main, why)
    else:
        out.files.append(main)
        _record(out, main_conf, "registries.conf", why)
        _merge(out, main_conf)
    for path in _dropin_files(host, dirs, out):
        conf = load_registries_file(host, path, drop_in=True)
        if conf.parsed.status == "missing":
            continue
        out.files.append(path)
        _record(out, conf, "registries.conf drop-in", "drop-in: overrides earlier files")
        _merge(out, conf)
    _load_aliases_cache(host, out)
    out.findings += short_name_prompt(out)
    return out
