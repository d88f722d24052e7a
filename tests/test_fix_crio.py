"""Fix catalogue, CRI-O/podman: registries.conf values, typos, prefixes, blocked, short names, auth files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from regtui import fixes
from test_fix_kit import make_root, roundtrip

CONF = "/etc/containers/registries.conf"
DROPINS = "/etc/containers/registries.conf.d"


def test_location_scheme_removed_and_plain_http_marked_insecure(tmp_path: Path) -> None:
    """location = "http://reg:5000" (rejected) becomes "reg:5000" with insecure = true; comments survive."""
    text = ('# our registries\nunqualified-search-registries = ["docker.io"]\n\n[[registry]]\n'
            'prefix = "reg.example:5000"\nlocation = "http://reg.example:5000"  # the lab registry\n')
    root = make_root(tmp_path, {CONF: text})
    r = roundtrip(root, "config.invalid-value", runtime="crio")
    new = r.texts[CONF]
    assert new.startswith("# our registries\n") and '"reg.example:5000"  # the lab registry' in new
    assert tomllib.loads(new)["registry"][0] == {"prefix": "reg.example:5000", "location": "reg.example:5000",
                                                 "insecure": True}
    assert r.plan.restart == "reload crio" and r.plan.restart_command == "systemctl reload crio"


def test_mirror_location_scheme_removed(tmp_path: Path) -> None:
    """A [[registry.mirror]] location with https:// loses the scheme (no insecure for https)."""
    text = ('[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n[[registry.mirror]]\n'
            'location = "https://mirror.example.com"\n')
    root = make_root(tmp_path, {CONF: text})
    r = roundtrip(root, "config.invalid-value", runtime="crio")
    assert r.texts[CONF] == text.replace("https://mirror.example.com", "mirror.example.com")


def test_misspelled_key_renamed(tmp_path: Path) -> None:
    """'insecur = true' (silently ignored) is renamed to 'insecure'."""
    text = '[[registry]]\nprefix = "reg.example"\nlocation = "reg.example"\ninsecur = true\n'
    root = make_root(tmp_path, {CONF: text})
    r = roundtrip(root, "config.ignored-key", runtime="crio")
    assert r.texts[CONF] == text.replace("insecur =", "insecure =")


def test_prefix_for_hub_official_image_corrected(tmp_path: Path) -> None:
    """prefix = "docker.io/alpine" never matches docker.io/library/alpine: corrected."""
    text = ('[[registry]]\nprefix = "docker.io/alpine"\nlocation = "docker.io/library/alpine"\n\n'
            '[[registry.mirror]]\nlocation = "mirror.example.com/library/alpine"\n')
    root = make_root(tmp_path, {CONF: text})
    r = roundtrip(root, "mirror.not-applied", runtime="crio", images=("docker.io/library/alpine:3.19",))
    assert 'prefix = "docker.io/library/alpine"' in r.texts[CONF]


def test_blocked_registry_unblocked_after_confirmation(tmp_path: Path) -> None:
    """blocked = true is removed; the plan asks for confirmation because blocking may be deliberate."""
    text = '[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\nblocked = true\n'
    root = make_root(tmp_path, {CONF: text})
    r = roundtrip(root, "config.blocked", runtime="crio", images=("quay.io/app/x:1",))
    assert r.texts[CONF] == '[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\n'
    assert "on purpose" in r.plan.confirm


def test_short_name_mode_dropin_created(tmp_path: Path) -> None:
    """enforcing + several search registries: a drop-in sets permissive; undo deletes it."""
    text = 'unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]\nshort-name-mode = "enforcing"\n'
    root = make_root(tmp_path, {CONF: text})
    r = roundtrip(root, "config.short-name-prompt", runtime="crio")
    (path,) = r.plan.files
    assert path.startswith(DROPINS) and r.texts[path] == 'short-name-mode = "permissive"\n'


def test_credential_helpers_entry_removed_from_registries_conf(tmp_path: Path) -> None:
    """credential-helpers naming a helper that is not installed loses that entry."""
    text = 'credential-helpers = ["containers-auth.json", "ecr-login"]\n'
    root = make_root(tmp_path, {CONF: text})
    r = roundtrip(root, "auth.helper-missing", runtime="crio", match=lambda f: "ecr-login" in f.title)
    assert r.texts[CONF] == 'credential-helpers = ["containers-auth.json"]\n'


def test_credentials_copied_into_the_auth_file_crio_reads(tmp_path: Path) -> None:
    """Credentials from `podman login` (/run/user/0/...) are copied to the auth.json CRI-O reads (created 0600)."""
    secret = "dXNlcjpjcmlvLXNlY3JldA=="
    auth = json.dumps({"auths": {"reg.example": {"auth": secret}}}, indent=2) + "\n"
    root = make_root(tmp_path, {CONF: 'unqualified-search-registries = ["docker.io"]\n', "/etc/crio/": "",
                                "/run/user/0/containers/auth.json": auth},
                     {"/run/user/0/containers/auth.json": 0o600})
    # The reader still lists the podman file's keys after the copy (it does not compare with the file CRI-O
    # reads), so the re-check honestly reports the finding as still there.
    r = roundtrip(root, "auth.wrong-key", runtime="crio", expect_gone=False)
    (path,) = r.plan.files
    assert json.loads(r.texts[path]) == {"auths": {"reg.example": {"auth": secret}}}
    assert r.after[path][2] == 0o600
    assert secret not in fixes.render(r.plan)


def test_shadowed_certs_copied_into_the_dir_containers_image_reads(tmp_path: Path) -> None:
    """containers/image reads only the first existing certs dir: the shadowed one's CA is copied into it."""
    from test_fix_kit import ca_pem

    pem = ca_pem()
    root = make_root(tmp_path, {CONF: "", "/etc/containers/certs.d/reg.example:5000/README": "ours\n",
                                "/etc/docker/certs.d/reg.example:5000/ca.crt": pem})
    # The reader keeps naming the shadowed dir (it has certificates) even once they are copied.
    r = roundtrip(root, "config.hosts-dir-unused", runtime="crio", images=("reg.example:5000/app:1",), expect_gone=False)
    assert r.plan.files == ("/etc/containers/certs.d/reg.example:5000/ca.crt",)
    assert r.texts["/etc/containers/certs.d/reg.example:5000/ca.crt"].encode() == pem
