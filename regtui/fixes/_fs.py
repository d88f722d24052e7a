"""Writing under the root, and nowhere else.

Every write goes through :func:`target`: the host path is resolved chroot-style with
:meth:`Host.resolve` (so a symbolic link is followed the way the runtime under that root would
follow it, never out of the root), then checked again on disk: every directory between the root
and the file must be a real directory (no symbolic link, whatever it points to) and the real path
must still be under the root. Files are written to a temporary file in the same directory,
fsynced, and renamed over the original (then the directory is fsynced), with the original's mode
and owner. Nothing here reads the wall clock or the environment.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import secrets
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path

from regtui.fixes._model import UnsafePath
from regtui.host import Host

__all__ = ["Target", "target", "current_bytes", "current_or_none", "restore_file", "remove_file", "make_dirs", "missing_dirs",
           "remove_dir", "write_temp", "temp_name", "is_temp_of", "remove_stray_temps", "discard_temp", "fsync_dir",
           "MAX_FILE_BYTES"]

#: Files larger than this are not backed up or edited (no registry config is this big).
MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A host path made safe to write."""

    host_path: str
    real: Path
    """The file under the root (its parent directories need not exist yet)."""


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def target(host: Host, host_path: str) -> Target:
    """Resolve ``host_path`` for writing; raise :class:`UnsafePath` if it could land outside the root."""
    if not host_path.startswith("/"):
        raise UnsafePath(f"{host_path}: not an absolute host path")
    try:
        real = host.resolve(host_path)
    except OSError as exc:
        raise UnsafePath(f"{host_path}: cannot be resolved under {host.root} ({exc.strerror or exc})") from None
    root = Path(host.root)
    try:
        rel = real.relative_to(root)
    except ValueError:
        raise UnsafePath(f"{host_path} resolves to {real}, outside the root {root}") from None
    if not rel.parts:
        raise UnsafePath(f"{host_path} is the root itself")
    _check_components(root, rel, host_path)
    parent, name = posixpath.split(posixpath.normpath(host_path))
    try:
        lexical = host.resolve(parent) / name
    except OSError:
        lexical = real
    if lexical != real and os.path.islink(lexical) and not os.path.lexists(real):
        raise UnsafePath(f"{host_path}: {lexical} is a symbolic link to a missing file; not followed for writing")
    return Target(host_path, real)


def _check_components(root: Path, rel: Path, host_path: str) -> None:
    """Every existing component below the root is a real directory (the last may be a file), inside the root."""
    real_root = os.path.realpath(root)
    current = root
    parts = rel.parts
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            break
        except OSError as exc:
            raise UnsafePath(f"{host_path}: {current}: {exc.strerror}") from None
        if stat_mod.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{host_path}: {current} is a symbolic link; regtui does not write through links")
        last = i == len(parts) - 1
        if not last and not stat_mod.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{host_path}: {current} is not a directory")
        if last and not (stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISDIR(st.st_mode)):
            raise UnsafePath(f"{host_path}: {current} is not a regular file")
    existing = current if current.exists() else current.parent
    while not existing.exists():
        existing = existing.parent
    if not _under(os.path.realpath(existing), real_root):
        raise UnsafePath(f"{host_path}: {existing} is outside the root {real_root}")


def current_bytes(t: Target) -> tuple[bytes | None, os.stat_result | None]:
    """The file's bytes and stat now (``None, None`` when absent); never follows a final symlink."""
    try:
        fd = os.open(t.real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{t.host_path}: {t.real} is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat_mod.S_ISREG(st.st_mode):
            raise UnsafePath(f"{t.host_path}: {t.real} is not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise UnsafePath(f"{t.host_path}: larger than {MAX_FILE_BYTES} bytes; not edited")
        return fh.read(MAX_FILE_BYTES + 1), st


def current_or_none(host: Host, host_path: str) -> bytes | None:
    """The bytes of the file at ``host_path``; None when absent, unreadable or unsafe."""
    try:
        return current_bytes(target(host, host_path))[0]
    except (OSError, UnsafePath):
        return None


def missing_dirs(host: Host, host_dir: str) -> list[str]:
    """The directories of ``host_dir`` that :func:`make_dirs` would create, outermost first."""
    parts = [p for p in host_dir.split("/") if p]
    for i in range(1, len(parts) + 1):
        path = "/" + "/".join(parts[:i])
        if not os.path.lexists(target(host, path).real):
            return ["/" + "/".join(parts[:j]) for j in range(i, len(parts) + 1)]
    return []


def make_dirs(host: Host, host_dir: str, mode: int = 0o755) -> list[str]:
    """Create the missing directories of ``host_dir`` under the root; returns the host paths created, outermost first."""
    created: list[str] = []
    parts = [p for p in host_dir.split("/") if p]
    for i in range(1, len(parts) + 1):
        path = "/" + "/".join(parts[:i])
        t = target(host, path)
        try:
            st = os.lstat(t.real)
        except FileNotFoundError:
            lexical = host.resolve("/" + "/".join(parts[:i - 1])) / parts[i - 1]
            if os.path.islink(lexical):
                raise UnsafePath(f"{path}: {lexical} is a symbolic link to a missing directory; not followed") from None
            os.mkdir(t.real, mode)
            created.append(path)
            fsync_dir(t.real.parent)
            continue
        if not stat_mod.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{path}: exists and is not a directory")
    return created


def remove_dir(host: Host, host_dir: str) -> bool:
    """Remove an empty directory under the root; ``False`` when it is not empty or absent."""
    t = target(host, host_dir)
    try:
        os.rmdir(t.real)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    fsync_dir(t.real.parent)
    return True


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(t: Target) -> str:
    """A fresh name for a temporary file next to ``t``: ``.<name>.regtui-<8 hex digits>``."""
    return f".{t.real.name}.regtui-{secrets.token_hex(4)}"


def is_temp_of(entry: str, filename: str) -> bool:
    """``entry`` has the name :func:`temp_name` gives temporary files of ``filename`` (and no other)."""
    return re.fullmatch(re.escape(f".{filename}.regtui-") + r"[0-9a-f]{8}", entry) is not None


def remove_stray_temps(host: Host, host_path: str) -> list[str]:
    """Delete regtui's temporary files next to ``host_path`` (left by a process that was killed); their host paths.

    Only regular files named as :func:`temp_name` names them are touched, and only while the
    caller holds the state lock, so no running regtui is writing them.
    """
    parent, name = posixpath.split(posixpath.normpath(host_path))
    try:
        directory = target(host, parent).real
        entries = os.listdir(directory)
    except (UnsafePath, OSError):
        return []
    removed = []
    for entry in sorted(entries):
        if not is_temp_of(entry, name):
            continue
        try:
            if not stat_mod.S_ISREG(os.lstat(directory / entry).st_mode):
                continue
            os.unlink(directory / entry)
        except OSError:
            continue
        removed.append(posixpath.join(parent, entry))
    if removed:
        fsync_dir(directory)
    return removed


def write_temp(t: Target, data: bytes, *, mode: int, uid: int | None, gid: int | None,
               name: str | None = None) -> Path:
    """Write ``data`` to a new temporary file next to ``t`` (mode and owner set, fsynced); returns its path.

    ``name`` (from :func:`temp_name`) lets the caller record the name before the file exists; a
    failed write removes the file again.
    """
    parent = t.real.parent
    name = name or temp_name(t)
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if uid is not None and gid is not None:
                try:
                    os.fchown(fd, uid, gid)
                except PermissionError:
                    pass  # not root: the file keeps our own owner, as any editor would leave it
            os.fchmod(fd, mode)
            os.fsync(fd)
        except BaseException:  # a full disk, an I/O error: no half-written temporary file stays
            os.close(fd)
            try:
                os.unlink(name, dir_fd=dfd)
            except OSError:
                pass
            raise
        else:
            os.close(fd)
    finally:
        os.close(dfd)
    return parent / name


def discard_temp(temp: Path) -> None:
    """Remove a temporary file that will not be committed."""
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass


def restore_file(host: Host, host_path: str, data: bytes, *, mode: int, uid: int | None, gid: int | None) -> Target:
    """Atomically write ``data`` with exactly this mode and owner (undo)."""
    t = target(host, host_path)
    temp = write_temp(t, data, mode=mode, uid=uid, gid=gid)
    try:
        target(host, host_path)
        os.replace(temp, t.real)
    except BaseException:
        discard_temp(temp)
        raise
    fsync_dir(t.real.parent)
    return t


def remove_file(host: Host, host_path: str) -> bool:
    """Delete a file under the root (never a directory, never through a link); ``False`` if absent."""
    t = target(host, host_path)
    try:
        st = os.lstat(t.real)
    except FileNotFoundError:
        return False
    if not stat_mod.S_ISREG(st.st_mode):
        raise UnsafePath(f"{host_path}: {t.real} is not a regular file")
    os.unlink(t.real)
    fsync_dir(t.real.parent)
    return True
