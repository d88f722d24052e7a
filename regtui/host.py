"""The host under diagnosis: a filesystem root, an environment, a clock and a resolver.

Every reader and check takes a :class:`Host` instead of touching ``/etc``, ``os.environ`` or
the wall clock, which is what makes ``--root /host`` (a ``kubectl debug node/...`` pod) and
deterministic tests possible. Paths inside configs are *host paths*: absolute as the host sees
them. :meth:`Host.resolve` maps one to the real file under the root the way ``chroot`` would,
symlinks included, and never lets a path escape the root.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat as stat_mod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["FileText", "Host", "MAX_CONFIG_BYTES", "DEFAULT_PATH"]

#: Config files larger than this are not read (a finding says so): no config is this big.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: PATH used to find binaries under a root that is not the live system.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_SYMLINKS = 40


@dataclass(frozen=True)
class FileText:
    """The outcome of reading one host file."""

    path: str
    """Host path (what the user and the runtime call it)."""
    status: str
    """``ok``, ``missing``, ``unreadable``, ``too-large`` or ``not-a-file``."""
    text: str = ""
    """Decoded text (BOM removed); undecodable bytes are replaced, see ``decode_error``."""
    data: bytes = b""
    """Raw bytes, exactly as on disk."""
    error: str = ""
    """Why it could not be read."""
    decode_error: str = ""
    """Set when the bytes are not valid text in any encoding the runtime accepts."""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    mtime: float | None = None

    @property
    def ok(self) -> bool:
        """The file was read."""
        return self.status == "ok"


@dataclass(frozen=True)
class Host:
    """Filesystem root, environment, clock and resolver of the host being diagnosed."""

    root: Path = Path("/")
    environ: Mapping[str, str] = field(default_factory=dict)
    """The environment regtui was started with (the shell's view; daemons have their own)."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    """Returns the current time, timezone-aware."""
    resolver: Any = None
    """Name resolver used by network probes (``regtui.net.resolver``); ``None`` offline."""

    @classmethod
    def from_args(cls, root: str | os.PathLike[str] = "/", environ: Mapping[str, str] | None = None,
                  resolver: Any = None) -> "Host":
        """A host for ``root`` with this process's environment unless one is given."""
        return cls(root=Path(os.path.abspath(root)), environ=dict(os.environ if environ is None else environ),
                   resolver=resolver)

    @property
    def live(self) -> bool:
        """The root is this machine's own ``/`` (so /proc, running daemons and PATH are real)."""
        try:
            return self.root.resolve() == Path("/")
        except OSError:
            return False

    # -- paths -------------------------------------------------------------------------------

    def resolve(self, host_path: str) -> Path:
        """Real path of ``host_path`` under the root, following symlinks as if chrooted.

        ``..`` and absolute symlink targets are interpreted inside the root, so the result is
        always under the root. A path with a NUL byte (a ``\u0000`` escape in a config) names
        no file: it raises ``OSError`` like any unreadable path instead of ``ValueError``.
        """
        return self.root.joinpath(*self._walk(host_path))

    def _under_root(self, host_path: str) -> str:
        """:meth:`resolve` as a string, for this class's own file operations."""
        return posixpath.join(str(self.root), *self._walk(host_path))

    def _walk(self, host_path: str) -> list[str]:
        # Names under the root of ``host_path``'s real path. Plain strings, not Path objects: a
        # check runs this a few hundred times, once per component.
        if "\x00" in str(host_path):
            raise OSError(errno.EINVAL, "embedded null byte", str(host_path))
        root = str(self.root)
        parts = [p for p in posixpath.normpath("/" + str(host_path)).split("/") if p]
        resolved: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            if name == ".":
                continue
            candidate = posixpath.join(root, *resolved, name)
            if os.path.islink(candidate):  # False on any error, as an unreadable entry is no link
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many symbolic links", str(host_path))
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            resolved.append(name)
        return resolved

    def join(self, host_dir: str, *names: str) -> str:
        """Join host path components (result is a host path)."""
        return posixpath.join(host_dir, *names)

    def exists(self, host_path: str) -> bool:
        """The path exists under the root."""
        try:
            return os.path.exists(self._under_root(host_path))
        except OSError:
            return False

    def is_dir(self, host_path: str) -> bool:
        """The path is a directory under the root."""
        try:
            return os.path.isdir(self._under_root(host_path))
        except OSError:
            return False

    def readlink(self, host_path: str) -> str | None:
        """The target of ``host_path`` as written when it is a symbolic link, else ``None``.

        The directories above it resolve under the root (a linked ``/etc/docker`` leads to the root's
        target, never to this machine's); the last name itself is not followed."""
        parent, name = posixpath.split(posixpath.normpath("/" + str(host_path)))
        if not name:
            return None
        try:
            return os.readlink(posixpath.join(self._under_root(parent), name))
        except (OSError, ValueError):
            return None

    def is_file(self, host_path: str) -> bool:
        """The path is a regular file under the root."""
        try:
            return os.path.isfile(self._under_root(host_path))
        except OSError:
            return False

    def listdir(self, host_dir: str) -> list[str] | None:
        """Sorted entry names of a directory, or ``None`` when it is absent or unreadable."""
        try:
            return sorted(os.listdir(self._under_root(host_dir)))
        except OSError:
            return None

    def glob(self, host_dir: str, suffix: str = "") -> list[str]:
        """Host paths of the regular files in ``host_dir`` whose names end with ``suffix``, sorted."""
        names = self.listdir(host_dir) or []
        return [posixpath.join(host_dir, n) for n in names
                if n.endswith(suffix) and self.is_file(posixpath.join(host_dir, n))]

    # -- reading -----------------------------------------------------------------------------

    def read(self, host_path: str, limit: int = MAX_CONFIG_BYTES) -> FileText:
        """Read a host file: ``missing`` when absent, ``unreadable`` on permission and I/O errors.

        FIFOs, devices and directories are not opened for reading (``not-a-file``), and no more
        than ``limit`` bytes are read, so a hostile path can neither hang nor exhaust memory.
        """
        try:
            real = self._under_root(host_path)
        except OSError as exc:
            return FileText(host_path, "unreadable", error=exc.strerror or str(exc))
        try:
            st = os.stat(real)
        except FileNotFoundError:
            return FileText(host_path, "missing")
        except NotADirectoryError:
            return FileText(host_path, "missing")
        except OSError as exc:
            return FileText(host_path, "unreadable", error=exc.strerror or str(exc))
        meta = dict(mode=stat_mod.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, mtime=st.st_mtime)
        if not stat_mod.S_ISREG(st.st_mode):
            kind = "a directory" if stat_mod.S_ISDIR(st.st_mode) else "not a regular file"
            return FileText(host_path, "not-a-file", error=kind, **meta)
        if st.st_size > limit:
            return FileText(host_path, "too-large", error=f"{st.st_size} bytes, more than {limit}", **meta)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            return FileText(host_path, "unreadable", error=exc.strerror or str(exc), **meta)
        if len(data) > limit:
            return FileText(host_path, "too-large", error=f"more than {limit} bytes", **meta)
        text, decode_error = decode_config_bytes(data)
        return FileText(host_path, "ok", text=text, data=data, decode_error=decode_error, **meta)

    # -- the system around the files ---------------------------------------------------------

    def path_dirs(self) -> list[str]:
        """Directories searched for binaries: this process's PATH when live, else the default PATH."""
        path = self.environ.get("PATH") if self.live else None
        return [d for d in (path or DEFAULT_PATH).split(":") if d]

    def which(self, name: str, dirs: list[str] | None = None) -> str | None:
        """Host path of executable ``name`` on the root's PATH, or ``None``."""
        for d in dirs or self.path_dirs():
            candidate = posixpath.join(d, name)
            try:
                real = self._under_root(candidate)
            except OSError:
                continue
            if os.path.isfile(real) and os.access(real, os.X_OK):  # isfile: False on any error, as is_file
                return candidate
        return None

    def home(self, user: str = "root") -> str:
        """Home directory of ``user`` from the root's /etc/passwd (``/root`` for root if absent)."""
        passwd = self.read("/etc/passwd")
        if passwd.ok:
            for line in passwd.text.splitlines():
                fields = line.split(":")
                if len(fields) >= 6 and fields[0] == user:
                    return fields[5] or "/"
        return "/root" if user == "root" else f"/home/{user}"

    def now(self) -> datetime:
        """Current time from the host's clock."""
        return self.clock()


def decode_config_bytes(data: bytes) -> tuple[str, str]:
    """Decode config bytes as the Go runtimes accept them: UTF-8 with or without BOM, UTF-16 with BOM.

    Returns ``(text, error)``; on invalid bytes the text has replacement characters and
    ``error`` says where the first bad byte is.
    """
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        try:
            return data.decode("utf-16"), ""
        except UnicodeDecodeError as exc:
            return data.decode("utf-16", errors="replace"), f"invalid UTF-16 at byte {exc.start}"
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", errors="replace"), f"invalid UTF-8 at byte {exc.start}"
