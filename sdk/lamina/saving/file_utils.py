"""Atomic file writes: a temp file in the same folder, fsync, ``os.replace``, fsync the folder.

A reader therefore sees either the previous file or the complete new one, never a
partial file, even if the process is killed mid-write or the machine loses power.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(filepath, overwrite: bool = True):
    """Yield a temporary path next to ``filepath``; on success it replaces ``filepath``.

    Write the whole file to the yielded path (and close it). When the block exits
    normally the file is fsynced and renamed over ``filepath``; when it raises, the
    temporary file is removed and ``filepath`` is left untouched.

    Args:
        filepath: the destination.
        overwrite: if False, refuse to replace an existing file.

    Raises:
        FileExistsError: when ``overwrite`` is False and ``filepath`` exists.
    """
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"File {filepath!r} already exists and overwrite=False.")
    folder = os.path.dirname(os.path.abspath(filepath))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {filepath!r}: folder {folder!r} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(filepath) + ".", suffix=".tmp",
                               dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(folder)
