"""Atomic file writes: write a temporary file beside the target, then ``os.replace`` it.

An interrupted write (exception, Ctrl-C, crash, full disk) never leaves a half-written file at
``path``: either the old content stays or the complete new content appears. Every geomvision
writer goes through :func:`atomic_write`::

    with atomic_write(path, "wb") as f:      # or "w" for text (UTF-8, "\\n" line ends)
        f.write(data)

The temporary file lives in the same folder (``os.replace`` is only atomic within one file
system), is named ``.<name>.<pid>.<random>.tmp`` and is removed when the body raises. The new
file gets the permissions of the file it replaces, or the usual ``0o666 & ~umask`` for a new
file (not the ``0o600`` of a bare temporary file).

A process killed mid-write (SIGKILL, power loss) leaves its temporary file behind; the ``<pid>``
in the name tells :func:`remove_stale_temp_files` whether its writer is still running, so that
long-lived folders (the feature cache) can be cleaned of them without touching a write in progress.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "pid_is_alive", "remove_stale_temp_files"]

# when this module was imported: a temporary file without a writer pid in its name (written by an
# older geomvision) that was last modified before this counts as abandoned
_IMPORT_TIME = time.time()


def _current_umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide and racy with threads)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); best effort, a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = "utf-8", newline: str | None = "\n"
) -> Iterator[IO]:
    """Context manager yielding a file object whose content replaces ``path`` on success.

    ``mode`` is ``"wb"`` (binary) or ``"w"`` (text; ``encoding`` and ``newline`` apply, by
    default UTF-8 with ``"\\n"`` line ends on every platform). The parent folder must exist.
    On an exception inside the ``with`` block the temporary file is deleted, ``path`` is left
    untouched and the exception propagates.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' (text) or 'wb' (binary), got {mode!r}")
    target = Path(os.fspath(path))
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"path: folder {str(folder)!r} does not exist; create it first (os.makedirs)")
    if target.is_dir():
        raise ValueError(f"path: {str(target)!r} is a folder, expected a file path")
    try:
        perms = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        perms = 0o666 & ~_current_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        if mode == "wb":
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        os.unlink(tmp_name)
        raise
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, perms)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically with ``"\\n"`` line ends (see :func:`atomic_write`)."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)


def pid_is_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this machine (POSIX ``kill(pid, 0)``). Where that
    cannot be asked (not POSIX) every process counts as alive, so nothing of it is removed."""
    if pid <= 0:
        return False
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except (OverflowError, OSError):
        return False
    return True


def _temp_writer_pid(name: str) -> int | None:
    """The writer pid of a temporary file named ``.<name>.<pid>.<random>.tmp``, else None."""
    parts = name[: -len(".tmp")].rsplit(".", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None


def remove_stale_temp_files(folder: str | os.PathLike) -> int:
    """Remove the temporary files of :func:`atomic_write` under ``folder`` (recursively) whose
    writer is gone: its pid no longer runs, or (names without a pid, from an older geomvision)
    it was last modified before this process imported geomvision. Writes in progress, in this
    process or another, are left alone; a pid of another machine sharing the folder counts as gone.
    Returns how many files were removed; unreadable or vanishing files are skipped."""
    removed = 0
    for path in Path(folder).rglob(".*.tmp"):
        pid = _temp_writer_pid(path.name)
        try:
            if pid is not None:
                stale = pid != os.getpid() and not pid_is_alive(pid)
            else:
                stale = path.stat().st_mtime < _IMPORT_TIME
            if stale and path.is_file() and not path.is_symlink():
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed
