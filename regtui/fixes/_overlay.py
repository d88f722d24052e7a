"""A host that shows planned files as if they were written: regtui's own readers and the whole
offline check run against a plan before anything touches the disk (validation and the
predicted re-check)."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import Mapping

from regtui.host import FileText, Host, MAX_CONFIG_BYTES, decode_config_bytes

__all__ = ["OverlayHost", "overlay"]


@dataclass(frozen=True)
class OverlayHost(Host):
    """``Host`` whose files at some real paths have other contents (``None``: deleted)."""

    files: Mapping[str, bytes | None] = field(default_factory=dict)
    """Real path (under the root) -> planned bytes."""
    gone_dirs: frozenset[str] = frozenset()
    """Real paths of directories the plan removes."""

    def _real(self, host_path: str) -> str | None:
        try:
            return str(self.resolve(host_path))
        except OSError:
            return None

    def _children(self, real_dir: str) -> set[str]:
        prefix = real_dir.rstrip("/") + "/"
        return {p[len(prefix):].split("/", 1)[0] for p, data in self.files.items()
                if p.startswith(prefix) and data is not None}

    def read(self, host_path: str, limit: int = MAX_CONFIG_BYTES) -> FileText:
        """The planned bytes for a planned file, else the file on disk."""
        real = self._real(host_path)
        if real is None or real not in self.files:
            return super().read(host_path, limit)
        data = self.files[real]
        if data is None:
            return FileText(host_path, "missing")
        try:
            st = os.stat(real)
            meta = dict(mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid, mtime=st.st_mtime)
        except OSError:
            meta = dict(mode=0o644, uid=os.geteuid(), gid=os.getegid(), mtime=None)
        text, error = decode_config_bytes(data)
        return FileText(host_path, "ok", text=text, data=data, decode_error=error, **meta)

    def exists(self, host_path: str) -> bool:
        """Planned files exist, deleted ones do not."""
        real = self._real(host_path)
        if real is not None:
            if real in self.files:
                return self.files[real] is not None
            if self._children(real):
                return True
            if real in self.gone_dirs:
                return False
        return super().exists(host_path)

    def is_file(self, host_path: str) -> bool:
        """Planned files are regular files."""
        real = self._real(host_path)
        if real is not None and real in self.files:
            return self.files[real] is not None
        return super().is_file(host_path)

    def is_dir(self, host_path: str) -> bool:
        """Directories holding planned files exist; removed ones do not."""
        real = self._real(host_path)
        if real is not None:
            if self._children(real):
                return True
            if real in self.gone_dirs:
                return False
        return super().is_dir(host_path)

    def listdir(self, host_dir: str) -> list[str] | None:
        """Entries on disk, plus planned files, minus deleted ones."""
        real = self._real(host_dir)
        if real is None:
            return super().listdir(host_dir)
        if real in self.gone_dirs and not self._children(real):
            return None
        prefix = real.rstrip("/") + "/"
        names = {n for n in super().listdir(host_dir) or [] if prefix + n not in self.gone_dirs}
        for path, data in self.files.items():
            if posixpath.dirname(path) == real.rstrip("/") and data is None:
                names.discard(path[len(prefix):])
        names |= self._children(real)
        if not names and not super().is_dir(host_dir):
            return None
        return sorted(names)


def overlay(host: Host, changes: Mapping[str, bytes | None], remove_dirs: tuple[str, ...] = ()) -> OverlayHost:
    """``host`` with the planned changes (host path -> bytes or ``None``) visible."""
    files: dict[str, bytes | None] = {}
    for path, data in changes.items():
        files[str(host.resolve(path))] = data
    gone = frozenset(str(host.resolve(d)) for d in remove_dirs)
    return OverlayHost(root=host.root, environ=host.environ, clock=host.clock, resolver=host.resolver,
                       files=files, gone_dirs=gone)
