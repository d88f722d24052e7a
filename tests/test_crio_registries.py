"""registries.conf as containers/image reads it: file precedence, drop-ins, validation, typos."""

from __future__ import annotations

from pathlib import Path

from regtui.runtimes.crio.records import find_registry, prefix_match
from regtui.runtimes.crio.registries import load_registries
from regtui.host import Host
from rootfs import line_of, write_tree

SYSTEM = "/etc/containers/registries.conf"
DROPINS = "/etc/containers/registries.conf.d"

# Fedora's shipped file, trimmed to its settings (the comments are the real ones, shortened).
FEDORA = """# For more information on this configuration file, see containers-registries.conf(5).
#
# NOTE: RISK OF USING UNQUALIFIED IMAGE NAMES
# We recommend always using fully qualified image names including the registry
# server (full dns name), namespace, image name, and tag
unqualified-search-registries = ["registry.fedoraproject.org", "registry.access.redhat.com", "docker.io"]

short-name-mode = "enforcing"
"""

SHORTNAMES = """[aliases]
  # centos
  "centos" = "quay.io/centos/centos"
  # fedora
  "fedora" = "registry.fedoraproject.org/fedora"
  "alpine" = "docker.io/library/alpine"
"""

HUB_MIRROR = """unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "mirror.gcr.io"

[[registry.mirror]]
location = "nexus.corp.example:8082/dockerhub"
"""


def _host(tmp_path: Path, files: dict[str, str | bytes]) -> Host:
    return Host.from_args(write_tree(tmp_path, files), {})


def _codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_system_file_then_dropins_in_name_order(tmp_path: Path) -> None:
    """Drop-ins apply after the system file in lexical order; the later search list wins."""
    conf = load_registries(_host(tmp_path, {
        SYSTEM: FEDORA,
        f"{DROPINS}/000-shortnames.conf": SHORTNAMES,
        f"{DROPINS}/99-ci.conf": 'unqualified-search-registries = ["quay.io", "docker.io"]\n',
        f"{DROPINS}/50-notes.txt": 'unqualified-search-registries = ["ignored.example"]\n',
    }))
    assert conf.files == [SYSTEM, f"{DROPINS}/000-shortnames.conf", f"{DROPINS}/99-ci.conf"]
    assert conf.search == ["quay.io", "docker.io"]
    assert conf.search_source == f"{DROPINS}/99-ci.conf:1"
    assert conf.short_name_mode == "enforcing"
    assert conf.aliases["fedora"].value == "registry.fedoraproject.org/fedora"
    assert conf.refused is None


def test_empty_search_list_in_dropin_clears_it(tmp_path: Path) -> None:
    """`unqualified-search-registries = []` in a drop-in clears the inherited list."""
    conf = load_registries(_host(tmp_path, {SYSTEM: FEDORA, f"{DROPINS}/01-none.conf": "unqualified-search-registries = []\n"}))
    assert conf.search == []


def test_aliases_merge_and_empty_value_erases(tmp_path: Path) -> None:
    """Aliases from drop-ins merge key by key; an empty value erases an earlier alias."""
    conf = load_registries(_host(tmp_path, {
        SYSTEM: FEDORA,
        f"{DROPINS}/000-shortnames.conf": SHORTNAMES,
        f"{DROPINS}/10-local.conf": '[aliases]\n"centos" = ""\n"ubi9" = "registry.access.redhat.com/ubi9"\n',
    }))
    assert conf.aliases["centos"].value is None
    assert conf.aliases["centos"].file == f"{DROPINS}/10-local.conf"
    assert conf.aliases["ubi9"].value == "registry.access.redhat.com/ubi9"
    assert conf.aliases["alpine"].value == "docker.io/library/alpine"


def test_user_file_replaces_system_file_and_its_dropins(tmp_path: Path) -> None:
    """$HOME/.config/containers/registries.conf replaces the system file; system drop-ins are not read."""
    conf = load_registries(_host(tmp_path, {
        SYSTEM: HUB_MIRROR,
        f"{DROPINS}/10-quay.conf": '[[registry]]\nlocation = "quay.io"\nblocked = true\n',
        "/root/.config/containers/registries.conf": 'unqualified-search-registries = ["quay.io"]\n',
        "/root/.config/containers/registries.conf.d/10-mine.conf": '[[registry]]\nlocation = "ghcr.io"\ninsecure = true\n',
    }))
    assert conf.files == ["/root/.config/containers/registries.conf",
                          "/root/.config/containers/registries.conf.d/10-mine.conf"]
    assert sorted(conf.registries) == ["ghcr.io"]
    assert conf.search == ["quay.io"]
    assert "replaces /etc/containers/registries.conf" in conf.sources[0].detail


def test_home_comes_from_passwd(tmp_path: Path) -> None:
    """root's home is read from the root's /etc/passwd, not from the shell."""
    conf = load_registries(_host(tmp_path, {
        "/etc/passwd": "root:x:0:0:root:/var/roothome:/bin/bash\n",
        SYSTEM: HUB_MIRROR,
        "/var/roothome/.config/containers/registries.conf": 'unqualified-search-registries = ["quay.io"]\n',
    }))
    assert conf.files[0] == "/var/roothome/.config/containers/registries.conf"


def test_dropin_registry_replaces_entry_wholesale(tmp_path: Path) -> None:
    """A drop-in [[registry]] with the same prefix replaces the whole entry: its mirrors are gone."""
    dropin = '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\ninsecure = false\n'
    conf = load_registries(_host(tmp_path, {SYSTEM: HUB_MIRROR, f"{DROPINS}/50-hub.conf": dropin}))
    entry = conf.registries["docker.io"]
    assert entry.mirrors == ()
    assert entry.file == f"{DROPINS}/50-hub.conf"
    assert entry.replaced == (f"{SYSTEM}:3",)
    note = next(f for f in conf.findings if f.code == "config.ignored-key")
    assert note.severity == "info"
    assert note.evidence["line"] == line_of(dropin, "prefix")
    assert "2 mirror(s)" in note.evidence["lost"][0]


def test_first_duplicate_prefix_wins_within_one_file(tmp_path: Path) -> None:
    """Within one file the first [[registry]] of a prefix wins and the second is reported as ignored."""
    text = HUB_MIRROR + '\n[[registry]]\nprefix = "docker.io"\nlocation = "registry-1.docker.io"\n'
    conf = load_registries(_host(tmp_path, {SYSTEM: text}))
    assert conf.registries["docker.io"].location == "docker.io"
    dup = next(f for f in conf.findings if f.code == "config.ignored-key")
    assert dup.severity == "warning"
    assert dup.evidence["line"] == text.splitlines().index("[[registry]]", 5) + 1


def test_location_with_scheme_is_refused_pattern_23(tmp_path: Path) -> None:
    """Pattern 23: `location = "https://..."` gives containers/image's exact error and refuses the config."""
    text = ('[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\n'
            'location = "https://nexus.corp.example:8082"\n')
    conf = load_registries(_host(tmp_path, {SYSTEM: text}))
    err = next(f for f in conf.findings if f.code == "config.invalid-value")
    assert err.severity == "error"
    assert err.evidence["error"] == "invalid location 'https://nexus.corp.example:8082': URI schemes are not supported"
    assert err.evidence["line"] == line_of(text, "https://")
    assert err.evidence["value"] == "https://nexus.corp.example:8082"
    assert err.fix is not None and err.fix.params["new_value"] == "nexus.corp.example:8082"
    assert err.fix.restart == "reload crio"
    assert conf.refused is err


def test_http_location_fix_suggests_insecure(tmp_path: Path) -> None:
    """An http:// location's fix drops the scheme and sets insecure = true."""
    conf = load_registries(_host(tmp_path, {SYSTEM: '[[registry]]\nlocation = "http://registry.lan:5000"\n'}))
    err = conf.findings[0]
    assert err.fix.params["also_set"] == {"insecure": True}


def test_validation_messages_are_the_runtime_ones(tmp_path: Path) -> None:
    """Each postProcessRegistries rule gives containers/image's own message at the right line."""
    cases = {
        '[[registry]]\ninsecure = true\n': ("invalid condition: both location and prefix are unset", 1),
        '[[registry]]\nprefix = "registry.corp"\n':
            ("invalid condition: location is unset and prefix is not in the format: *.example.com", 2),
        '[[registry]]\nprefix = "*.corp.example/team"\nlocation = "mirror.corp.example"\n':
            ('Wildcarded prefix should be in the format: *.example.com. Current prefix "*.corp.example/team" is '
             'incorrectly formatted', 2),
        '[[registry]]\nlocation = "quay.io"\npull-from-mirror = "digest-only"\n':
            ('pull-from-mirror must not be set for a non-mirror registry "quay.io"', 3),
        ('[[registry]]\nlocation = "quay.io"\nmirror-by-digest-only = true\n[[registry.mirror]]\n'
         'location = "m.corp.example"\npull-from-mirror = "tag-only"\n'):
            ('cannot set mirror usage mirror-by-digest-only for the registry ("quay.io") and pull-from-mirror for '
             'per-mirror ("m.corp.example") at the same time', 6),
        '[[registry]]\nlocation = "quay.io"\n[[registry.mirror]]\nlocation = "m.corp.example"\npull-from-mirror = "digests"\n':
            ('unsupported pull-from-mirror value "digests" for mirror "m.corp.example"', 5),
        '[[registry]]\nlocation = "quay.io"\n[[registry.mirror]]\ninsecure = true\n':
            ("invalid condition: mirror location is unset", 3),
        '[[registry]]\nlocation = "reg.lan"\ninsecure = true\n[[registry]]\nprefix = "reg.lan/team"\nlocation = "reg.lan"\n':
            ("registry 'reg.lan' is defined multiple times with conflicting 'insecure' setting", 4),
        'unqualified-search-registries = ["quay.io/team"]\n':
            ('Invalid unqualified-search-registries entry "quay.io/team"', 1),
        'short-name-mode = "strict"\n': ('invalid short-name mode: "strict"', 1),
        '[aliases]\n"library/alpine:3" = "docker.io/library/alpine"\n':
            ('validating short-name aliases: invalid short name "library/alpine:3": must not contain tag', 2),
        '[aliases]\n"alpine" = "alpine"\n':
            ('validating short-name aliases: invalid alias "alpine": must contain registry and repository', 2),
    }
    for i, (text, (message, line)) in enumerate(cases.items()):
        conf = load_registries(_host(tmp_path / str(i), {SYSTEM: text}))
        errors = [f for f in conf.findings if f.code == "config.invalid-value"]
        assert errors, text
        assert errors[0].evidence["error"] == message, text
        assert errors[0].evidence["line"] == line, text
        assert conf.refused is errors[0]


def test_v1_and_v2_mixed_is_refused(tmp_path: Path) -> None:
    """A v1 [registries.search] table next to v2 keys: `mixing sysregistry v1/v2 is not supported`."""
    text = '[registries.search]\nregistries = ["docker.io"]\n\n[[registry]]\nlocation = "quay.io"\n'
    conf = load_registries(_host(tmp_path, {SYSTEM: text}))
    err = conf.findings[0]
    assert err.code == "config.invalid-value"
    assert err.evidence["error"] == "mixing sysregistry v1/v2 is not supported"
    assert err.evidence["line"] == 1


def test_v1_file_is_converted_but_v1_dropin_refused(tmp_path: Path) -> None:
    """A v1 main file converts (block list -> blocked entries); a v1 drop-in is an error."""
    v1 = ('[registries.search]\nregistries = ["registry.access.redhat.com", "docker.io"]\n\n'
          '[registries.insecure]\nregistries = ["registry.lan:5000"]\n\n[registries.block]\nregistries = ["docker.io"]\n')
    conf = load_registries(_host(tmp_path / "a", {SYSTEM: v1}))
    assert conf.refused is None
    assert conf.registries["docker.io"].blocked and conf.registries["registry.lan:5000"].insecure
    assert conf.search == ["registry.access.redhat.com", "docker.io"]
    conf = load_registries(_host(tmp_path / "b", {SYSTEM: FEDORA, f"{DROPINS}/01-old.conf": v1}))
    assert conf.refused is not None
    assert conf.refused.evidence["error"] == "registry must be in v2 format but is in v1"
    assert conf.refused.evidence["file"] == f"{DROPINS}/01-old.conf"


def test_typos_are_ignored_keys_with_suggestion(tmp_path: Path) -> None:
    """Unknown keys are dropped silently by the runtime: reported with the nearest known key."""
    text = ('[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\nmirror-by-digest = true\n\n'
            '[[registry.mirrors]]\nlocation = "mirror.corp.example/quay"\n')
    conf = load_registries(_host(tmp_path, {SYSTEM: text}))
    typos = {f.evidence["key"]: f for f in conf.findings if f.code == "config.ignored-key"}
    assert set(typos) == {"registry.mirror-by-digest", "registry.mirrors"}
    assert typos["registry.mirror-by-digest"].fix.params["new_key"] == "mirror-by-digest-only"
    assert typos["registry.mirror-by-digest"].evidence["line"] == 4
    assert typos["registry.mirrors"].fix.params["new_key"] == "mirror"
    assert typos["registry.mirrors"].evidence["line"] == 6
    assert conf.registries["quay.io"].mirrors == ()
    assert conf.refused is None


def test_key_case_is_ignored_like_burntsushi(tmp_path: Path) -> None:
    """BurntSushi/toml matches keys case-insensitively: `Location` is not a typo."""
    conf = load_registries(_host(tmp_path, {SYSTEM: '[[registry]]\nPrefix = "quay.io"\nLocation = "mirror.corp.example/quay"\n'}))
    assert "config.ignored-key" not in _codes(conf.findings)
    assert conf.registries["quay.io"].location == "mirror.corp.example/quay"
    assert conf.registries["quay.io"].line("location") == 3


def test_wrong_type_is_refused_with_line(tmp_path: Path) -> None:
    """`insecure = "true"` (a string) fails decoding: invalid value at its line, config refused."""
    text = '[[registry]]\nlocation = "registry.lan:5000"\ninsecure = "true"\n'
    conf = load_registries(_host(tmp_path, {SYSTEM: text}))
    err = conf.refused
    assert err is not None and err.code == "config.invalid-value"
    assert err.evidence["line"] == 3
    assert "TOML value has type string; destination has type bool" in err.evidence["error"]
    text = 'unqualified-search-registries = "docker.io"\n[registry]\nlocation = "quay.io"\n'
    conf = load_registries(_host(tmp_path / "b", {SYSTEM: text}))
    assert [f.evidence["line"] for f in conf.findings if f.code == "config.invalid-value"] == [1, 2]


def test_garbage_toml_is_parse_error_with_line(tmp_path: Path) -> None:
    """A half-edited file (unclosed string) is a parse error at its line and refuses the config."""
    text = HUB_MIRROR.replace('location = "mirror.gcr.io"', 'location = "mirror.gcr.io')
    conf = load_registries(_host(tmp_path, {SYSTEM: text}))
    err = conf.findings[0]
    assert err.code == "config.parse-error"
    assert err.evidence["line"] == line_of(text, '"mirror.gcr.io')
    assert conf.refused is err
    assert conf.sources[0].status == "parse-error"


def test_garbage_bytes_are_parse_error_with_line(tmp_path: Path) -> None:
    """Invalid UTF-8 in a drop-in is a parse error located at the bad byte's line."""
    data = b'unqualified-search-registries = ["docker.io"]\n# caf\xe9\n'
    conf = load_registries(_host(tmp_path, {SYSTEM: FEDORA, f"{DROPINS}/10-bad.conf": data}))
    err = next(f for f in conf.findings if f.code == "config.parse-error")
    assert err.evidence["file"] == f"{DROPINS}/10-bad.conf"
    assert err.evidence["line"] == 2
    assert conf.refused is err


def test_short_name_prompt_pattern_21(tmp_path: Path) -> None:
    """Pattern 21: enforcing with several search registries is a warning pointing at short-name-mode."""
    conf = load_registries(_host(tmp_path, {SYSTEM: FEDORA}))
    warn = next(f for f in conf.findings if f.code == "config.short-name-prompt")
    assert warn.severity == "warning"
    assert warn.evidence["line"] == line_of(FEDORA, "short-name-mode")
    assert warn.fix.params["value"] == "permissive"
    assert warn.fix.files[0].startswith(DROPINS)
    conf = load_registries(_host(tmp_path / "b", {SYSTEM: FEDORA, f"{DROPINS}/99-ci.conf": 'short-name-mode = "permissive"\n'}))
    assert "config.short-name-prompt" not in _codes(conf.findings)


def test_env_override_is_read_for_podman(tmp_path: Path) -> None:
    """CONTAINERS_REGISTRIES_CONF names the main file; drop-ins still apply; a missing one is an error."""
    host = _host(tmp_path, {SYSTEM: FEDORA, "/srv/ci/registries.conf": HUB_MIRROR,
                            f"{DROPINS}/10-x.conf": 'short-name-mode = "disabled"\n'})
    conf = load_registries(host, env={"CONTAINERS_REGISTRIES_CONF": "/srv/ci/registries.conf"})
    assert conf.files == ["/srv/ci/registries.conf", f"{DROPINS}/10-x.conf"]
    assert "docker.io" in conf.registries
    conf = load_registries(host, env={"REGISTRIES_CONFIG_PATH": "/srv/ci/missing.conf"})
    assert conf.refused is not None and conf.refused.evidence["key"] == "REGISTRIES_CONFIG_PATH"


def test_missing_everything_is_fine(tmp_path: Path) -> None:
    """No registries.conf at all: built-in defaults, no error."""
    conf = load_registries(_host(tmp_path, {"/etc/hostname": "node1\n"}))
    assert conf.refused is None and conf.registries == {} and conf.search == []
    assert conf.sources[0].status == "missing"


def test_prefix_match_rules() -> None:
    """Prefixes match at /, :, @ or the end; wildcards match subdomains, never the apex."""
    assert prefix_match("quay.io/team-a/app", "quay.io/team-a") == len("quay.io/team-a")
    assert prefix_match("quay.io/team-ab/app", "quay.io/team-a") == -1
    assert prefix_match("example.com:5000/app", "example.com") == len("example.com")
    assert prefix_match("a.b.corp.example/app:1", "*.corp.example") == len("a.b.corp.example")
    assert prefix_match("corp.example/app", "*.corp.example") == -1
    assert prefix_match("evil.example/x.corp.example/app", "*.corp.example") == -1


def test_longest_prefix_wins(tmp_path: Path) -> None:
    """FindRegistry picks the longest matching prefix, whatever the file order."""
    text = ('[[registry]]\nprefix = "quay.io/team-a"\nlocation = "mirror.corp.example/team-a"\n\n'
            '[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\n')
    conf = load_registries(_host(tmp_path, {SYSTEM: text}))
    assert find_registry(conf.registries, "quay.io/team-a/app").prefix == "quay.io/team-a"
    assert find_registry(conf.registries, "quay.io/team-b/app").prefix == "quay.io"
    assert find_registry(conf.registries, "ghcr.io/x/y") is None


def test_dropin_dir_oddities_are_skipped(tmp_path: Path) -> None:
    """A directory named *.conf inside registries.conf.d, or a registries.conf.d that is a file, is skipped."""
    conf = load_registries(_host(tmp_path / "a", {SYSTEM: FEDORA, f"{DROPINS}/sub.conf/": ""}))
    assert conf.files == [SYSTEM] and conf.refused is None
    conf = load_registries(_host(tmp_path / "b", {SYSTEM: FEDORA, DROPINS: "not a directory\n"}))
    assert conf.files == [SYSTEM] and conf.refused is None
