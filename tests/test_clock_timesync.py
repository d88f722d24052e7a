"""The time-sync configuration reader: chrony, timesyncd, ntpd/ntpsec files and systemd enablement under a root."""

from __future__ import annotations

import os
from pathlib import Path

from regtui.config import timesync
from regtui.host import Host
from rootfs import write_tree

CHRONY_UNIT = "[Unit]\nDescription=chrony\n[Service]\nExecStart=/usr/sbin/chronyd\n[Install]\nWantedBy=multi-user.target\n"


def _link(root: Path, host_path: str, target: str) -> None:
    """Create a symlink at ``host_path`` under ``root`` pointing at ``target`` (as written)."""
    p = root / host_path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, p)


def test_chrony_sources_includes_confdir_sourcedir_and_port(tmp_path: Path) -> None:
    """server/pool/peer come from the main file, include globs, confdir and sourcedir, with port and line."""
    write_tree(tmp_path, {
        "/etc/chrony/chrony.conf": (
            "# comment\n"
            "pool 2.debian.pool.ntp.org iburst\n"
            "server 10.0.0.1 port 1123 iburst\n"
            "include /etc/chrony/extra/*.conf\n"
            "confdir /etc/chrony/conf.d /usr/share/chrony/conf.d\n"
            "sourcedir /run/chrony-dhcp /etc/chrony/sources.d\n"
        ),
        "/etc/chrony/extra/a.conf": "peer peer.example\n",
        "/etc/chrony/conf.d/10-local.conf": "server local.example\n",
        "/usr/share/chrony/conf.d/10-local.conf": "server hidden.example\n",
        "/usr/share/chrony/conf.d/20-vendor.conf": "server vendor.example\n",
        "/etc/chrony/sources.d/site.sources": "server site.example port 4123\nmakestep 1 3\n",
        "/etc/chrony/sources.d/ignored.txt": "server not-read.example\n",
    })
    ts = timesync.load(Host(root=tmp_path))
    chrony = ts.daemon("chrony")
    assert chrony is not None
    got = [(s.host, s.port, s.kind, s.source) for s in chrony.servers]
    assert got == [
        ("2.debian.pool.ntp.org", 123, "pool", "/etc/chrony/chrony.conf:2"),
        ("10.0.0.1", 1123, "server", "/etc/chrony/chrony.conf:3"),
        ("peer.example", 123, "peer", "/etc/chrony/extra/a.conf:1"),
        ("local.example", 123, "server", "/etc/chrony/conf.d/10-local.conf:1"),
        ("vendor.example", 123, "server", "/usr/share/chrony/conf.d/20-vendor.conf:1"),
        ("site.example", 4123, "server", "/etc/chrony/sources.d/site.sources:1"),
    ]
    assert chrony.servers[1].spec == "10.0.0.1:1123"
    assert chrony.configured and not chrony.enabled


def test_chrony_rhel_path_and_include_loop_is_bounded(tmp_path: Path) -> None:
    """/etc/chrony.conf is read when the Debian path is absent; a self-include ends instead of looping."""
    write_tree(tmp_path, {"/etc/chrony.conf": "server a.example\ninclude /etc/chrony.conf\n"})
    chrony = timesync.load(Host(root=tmp_path)).daemon("chrony")
    assert chrony is not None and [s.host for s in chrony.servers] == ["a.example"]
    assert any("loop" in n for n in chrony.notes)


def test_timesyncd_dropins_reset_and_fallback(tmp_path: Path) -> None:
    """NTP= accumulates across drop-ins by name, an empty NTP= resets, /etc masks /usr/lib of the same name."""
    write_tree(tmp_path, {
        "/etc/systemd/timesyncd.conf": "[Time]\nNTP=a.example b.example\nFallbackNTP=fb.example\n",
        "/usr/lib/systemd/timesyncd.conf.d/50-vendor.conf": "[Time]\nNTP=\nNTP=vendor.example\n",
        "/etc/systemd/timesyncd.conf.d/60-site.conf": "[Time]\nNTP=site.example:1123\n",
        "/usr/lib/systemd/timesyncd.conf.d/60-site.conf": "[Time]\nNTP=masked.example\n",
    })
    d = timesync.load(Host(root=tmp_path)).daemon("systemd-timesyncd")
    assert d is not None
    assert [(s.host, s.port, s.kind) for s in d.servers] == [("vendor.example", 123, "NTP"), ("site.example", 1123, "NTP")]
    assert d.servers[0].source == "/usr/lib/systemd/timesyncd.conf.d/50-vendor.conf:3"


def test_timesyncd_uses_fallback_when_ntp_empty(tmp_path: Path) -> None:
    """With no NTP= servers the FallbackNTP= list is used, and the panel says so."""
    write_tree(tmp_path, {"/etc/systemd/timesyncd.conf": "[Time]\n#NTP=\nFallbackNTP=fb1.example fb2.example\n"})
    d = timesync.load(Host(root=tmp_path)).daemon("systemd-timesyncd")
    assert d is not None and [s.host for s in d.servers] == ["fb1.example", "fb2.example"]
    assert any("FallbackNTP" in n for n in d.notes)


def test_ntpsec_skips_refclocks_and_follows_includefile(tmp_path: Path) -> None:
    """ntp.conf reference clocks (127.127.x.y) are not servers; includefile is followed."""
    write_tree(tmp_path, {
        "/etc/ntpsec/ntp.conf": "server 127.127.1.0\npool 0.pool.ntp.org iburst\nincludefile /etc/ntpsec/site.conf\n",
        "/etc/ntpsec/site.conf": "server ntp.site.example\n",
    })
    d = timesync.load(Host(root=tmp_path)).daemon("ntpsec")
    assert d is not None and [(s.host, s.kind) for s in d.servers] == [("0.pool.ntp.org", "pool"), ("ntp.site.example", "server")]


def test_enabled_by_wants_symlink_and_alias(tmp_path: Path) -> None:
    """A multi-user.target.wants symlink to an installed unit makes chrony enabled; its servers are the ones in use."""
    write_tree(tmp_path, {"/lib/systemd/system/chrony.service": CHRONY_UNIT,
                          "/etc/chrony/chrony.conf": "server 10.1.1.1\n",
                          "/etc/systemd/timesyncd.conf": "[Time]\nNTP=not.used.example\n"})
    _link(tmp_path, "/etc/systemd/system/multi-user.target.wants/chrony.service", "/lib/systemd/system/chrony.service")
    ts = timesync.load(Host(root=tmp_path))
    chrony = ts.daemon("chrony")
    assert chrony is not None and chrony.installed and chrony.enabled and chrony.unit == "chrony.service"
    assert "/etc/systemd/system/multi-user.target.wants/chrony.service" in chrony.evidence
    assert [s.host for s in ts.servers()] == ["10.1.1.1"]
    assert chrony.step_command == "chronyc makestep"


def test_masked_and_dangling_units_are_not_enabled(tmp_path: Path) -> None:
    """A unit masked to /dev/null is not enabled; a wants symlink to an uninstalled unit is noted, not counted."""
    write_tree(tmp_path, {"/lib/systemd/system/chrony.service": CHRONY_UNIT, "/etc/chrony/chrony.conf": "server x\n"})
    _link(tmp_path, "/etc/systemd/system/multi-user.target.wants/chrony.service", "/lib/systemd/system/chrony.service")
    _link(tmp_path, "/etc/systemd/system/chrony.service", "/dev/null")
    _link(tmp_path, "/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service",
          "/lib/systemd/system/systemd-timesyncd.service")
    ts = timesync.load(Host(root=tmp_path))
    chrony = ts.daemon("chrony")
    assert chrony is not None and chrony.masked and not chrony.enabled
    assert chrony.enable_command.startswith("systemctl unmask chrony.service")
    assert ts.daemon("systemd-timesyncd") is None or not ts.daemon("systemd-timesyncd").enabled
    assert ts.enabled() == []


def test_openrc_runlevel_counts_as_enabled(tmp_path: Path) -> None:
    """On an OpenRC host, /etc/runlevels/default/chronyd enables chrony."""
    write_tree(tmp_path, {"/etc/chrony/chrony.conf": "server x.example\n", "/etc/init.d/chronyd": "#!/sbin/openrc-run\n"})
    _link(tmp_path, "/etc/runlevels/default/chronyd", "/etc/init.d/chronyd")
    chrony = timesync.load(Host(root=tmp_path)).daemon("chrony")
    assert chrony is not None and chrony.enabled


def test_empty_root_has_no_daemons(tmp_path: Path) -> None:
    """An empty root has no sync daemon and no servers."""
    ts = timesync.load(Host(root=tmp_path))
    assert ts.daemons == [] and ts.servers() == []
