"""Atomic file writes, their temp files, and disk faults: the one definition.

Every file the service and the worker write under the storage root (dataset
uploads and their metadata, checkpoints and their checksums, final models) goes
through :func:`atomic_path`: a temp file next to the target, fsync, ``os.replace``,
fsync of the directory. Whatever fails (the writer, ENOSPC, EIO, a fencing check
inside the block), the temp file is removed and the target is untouched, so nothing
half-written is ever visible under a final name.

Fenced writers (the worker's checkpoints and final model) pass ``before_replace``
(their lease check): the temp file is then published with ``os.link(tmp, path)``,
which fails with EEXIST instead of replacing a file of that name, and the temp name
is removed. Only when the name is taken is ``before_replace()`` called and, if it
returns, the file replaced; a check made after the name was found taken refuses a
writer whose job has a new owner, so a writer that paused between its last check and
its publish cannot replace the file the new owner wrote meanwhile. File systems
without hard links (some FUSE and overlay setups: ``link`` raises EPERM, ENOTSUP,
EXDEV, ENOSYS or EMLINK) fall back to ``os.replace`` after the same check when the
name exists; there a paused writer can still replace a file written meanwhile (one
INFO line per file system says so). A writer killed between its link and the removal
of its temp name leaves a second name of the published file: the sweep below removes
that name, the file stays under its final one.

Temp names carry their writer: ``.<name>-<pid>-<host>.<token>.tmp[<suffix>]``
(``host``: 8 hex digits of the hostname's sha1; an upload's is ``.upload-...``).
The SDK's own atomic save (``model.save``) nests its temp inside ours
(``.<our temp>.<8 chars>.tmp``): the sweep reads the writer from the inner name.
A writer killed with SIGKILL leaves its temp file behind; :func:`sweep_temps`
removes those at start-up of the API and the worker: files of a dead process on
this host (or of a process that started after the file was last written: a reused
pid), and files of other hosts or of older naming schemes once they are older than
``max_age``. A live writer's file is never removed.

Disk faults reach clients as :func:`storage_fault` errors: ENOSPC/EDQUOT is
:class:`InsufficientStorage` (HTTP 507), EIO and other device errors are
:class:`~lamina_service.errors.Unavailable` (503).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lamina_service.errors import ServiceError, Unavailable

log = logging.getLogger("lamina_service.storage")

#: Temp files younger than this are kept when their writer cannot be checked
#: (another host, an older naming scheme).
DEFAULT_MAX_AGE = 3600.0
HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
TEMP_NAME = re.compile(
    r"^\..+-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})\.[0-9a-f]{12}\.tmp(\.[A-Za-z0-9]+)?$")
#: The SDK's ``tempfile.mkstemp`` temp of a file named ``inner``.
SDK_TEMP_NAME = re.compile(r"^\.(?P<inner>.+)\.[a-z0-9_]{8}\.tmp$")
#: Names written before temp files carried their writer (age rule only).
LEGACY_TEMP_NAME = re.compile(r"^\.(upload-[0-9a-f]{16}|.+\.[0-9a-f]{12})\.tmp$"
                              r"|^\.model-\d+-\d+\.keras$")
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DEVICE_ERRNOS = frozenset({errno.EIO, errno.EROFS, errno.ENXIO, errno.ENODEV})
#: ``link()`` errors of file systems without hard links: publish by rename instead.
NO_LINK_ERRNOS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                            errno.ENOSYS, errno.EMLINK})
_told_no_links: set[int] = set()  # st_dev of file systems already logged


class InsufficientStorage(ServiceError):
    """The storage is full (ENOSPC or quota): nothing was stored (507)."""

    status_code = 507
    code = "insufficient_storage"


def storage_fault(exc: OSError, what: str, root: str | Path | None = None) -> ServiceError | None:
    """The client-facing error for a disk fault, or None when ``exc`` is not one.

    Args:
        exc: the error of a read or write under the storage root.
        what: what was being written (``"the upload"``), for the message.
        root: the storage root, to report its free bytes.

    Returns:
        :class:`InsufficientStorage` for ENOSPC/EDQUOT, :class:`Unavailable` for EIO
        and other device errors, None for anything else. Messages never hold paths.
    """
    code = getattr(exc, "errno", None)
    if code in FULL_ERRNOS or code in DEVICE_ERRNOS:
        log.warning("storage fault while writing %s: %s", what, exc)
    if code in FULL_ERRNOS:
        free = ""
        if root is not None:
            with contextlib.suppress(OSError):
                usage = shutil.disk_usage(root)
                free = f" ({usage.free} of {usage.total} bytes free)"
        return InsufficientStorage(
            f"{what} was not stored: {os.strerror(code)} on the service's storage{free}; "
            "nothing was kept, retry once space is freed", field="storage")
    if code in DEVICE_ERRNOS:
        return Unavailable(f"{what} was not stored: {os.strerror(code)} on the service's "
                           "storage; nothing was kept, retry later", field="storage")
    return None


def temp_path(path: Path, suffix: str = "") -> Path:
    """A fresh temp name next to ``path`` that names its writer (see the module docstring)."""
    path = Path(path)
    return path.parent / (f".{path.name}-{os.getpid()}-{HOST_TAG}."
                          f"{secrets.token_hex(6)}.tmp{suffix}")


def fsync_file(path: Path) -> None:
    """fsync a file's data (through a fresh descriptor)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a crash."""
    fsync_file(path)


def publish(tmp: Path, path: Path,
            before_replace: Callable[[], None] | None = None) -> None:
    """Move a finished temp file into place durably: fsync it, publish, fsync the folder.

    Args:
        tmp: the finished temp file (next to ``path``).
        path: the final name.
        before_replace: None: ``os.replace`` (a file of that name is replaced).
            Given: ``path`` is created with ``os.link`` and never replaced unless it
            is taken and ``before_replace()`` (a fencing check) returns; whatever it
            raises propagates and ``path`` is untouched (see the module docstring).
    """
    fsync_file(tmp)
    if before_replace is None:
        os.replace(tmp, path)
    else:
        _publish_new(Path(tmp), Path(path), before_replace)
    fsync_dir(Path(path).parent)


def _publish_new(tmp: Path, path: Path, before_replace: Callable[[], None]) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        before_replace()
        os.replace(tmp, path)
        return
    except OSError as exc:
        if exc.errno not in NO_LINK_ERRNOS:
            raise
        _tell_no_links(tmp, exc)
        if os.path.lexists(path):
            before_replace()
        os.replace(tmp, path)
        return
    os.unlink(tmp)  # the file stays under its final name


def _tell_no_links(tmp: Path, exc: OSError) -> None:
    with contextlib.suppress(OSError):
        device = os.stat(tmp).st_dev
        if device not in _told_no_links:
            _told_no_links.add(device)
            log.info("no hard links under %s (%s): publishing by rename; a paused fenced "
                     "writer can replace a file of the same name there", tmp.parent,
                     os.strerror(exc.errno))


def discard(path: Path) -> None:
    """Remove a temp file; a failure is logged, never raised over the original error."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove temp file %s: %s", path, exc)


def _renamed(exc: OSError, path: Path) -> OSError:
    """``exc`` with a plain message naming the target (not the temp, not a C blob)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, os.strerror(exc.errno), path.name)


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = "",
                before_replace: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield a temp path next to ``path``; when the block succeeds, move it into place.

    Use for every write under the storage root (h5py, zipfile and ``.keras`` writers
    need a file name). On any error the temp file is removed, ``path`` is untouched
    and an ``OSError`` (ENOSPC, EIO, ...) is re-raised with the target's name and the
    plain ``strerror`` (h5py's carry a C error dump).

    Args:
        path: the final name.
        suffix: appended to the temp name (``.keras``: Keras checks the extension).
        before_replace: a fenced writer's check: the file is published without
            replacing a file of that name unless this returns (see :func:`publish`).
    """
    path = Path(path)
    tmp = temp_path(path, suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        publish(tmp, path, before_replace)
    except OSError as exc:
        renamed = _renamed(exc, path)
        if renamed is exc:
            raise
        raise renamed from exc
    finally:
        discard(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp, fsync, rename, fsync dir)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _process_start(pid: int) -> float | None:
    """Wall-clock start time of ``pid`` from /proc (None when unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime"))
        return boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def writer_alive(pid: int, modified: float) -> bool:
    """True when process ``pid`` (this host) may still be writing a file last modified then.

    A pid that exists but started after the file was last written is a reused pid:
    the file's writer is gone.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = _process_start(pid)
    # btime is in whole seconds: allow the rounding before calling the file older.
    return started is None or modified >= started - 2.0


def _is_leftover(name: str, modified: float, now: float, max_age: float) -> bool | None:
    """True: remove; False: keep (a live writer or too young to judge); None: not a temp."""
    match = TEMP_NAME.fullmatch(name)
    if match is None and (nested := SDK_TEMP_NAME.fullmatch(name)) is not None:
        match = TEMP_NAME.fullmatch(nested["inner"])
    if match is not None:
        if match["host"] == HOST_TAG:
            return not writer_alive(int(match["pid"]), modified)
        return now - modified > max_age
    if LEGACY_TEMP_NAME.fullmatch(name) or SDK_TEMP_NAME.fullmatch(name):
        return now - modified > max_age
    return None


def sweep_temps(root: str | Path, max_age: float = DEFAULT_MAX_AGE) -> int:
    """Remove temp files left under ``root`` by killed writers; returns how many.

    Logs how many were removed and how many were kept (live writers, or too young
    to judge). Errors are logged, never raised: a sweep never stops a start-up.

    Args:
        root: the storage root (``datasets/`` and ``jobs/<id>/...`` are walked).
        max_age: seconds after which a temp file whose writer cannot be checked
            (another host, an older naming scheme) counts as left over.
    """
    root = Path(root)
    removed = kept = freed = 0
    now = time.time()
    if not root.is_dir():
        return 0
    for folder, _, files in os.walk(root, onerror=lambda e: log.warning("sweep: %s", e)):
        for name in files:
            if not name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                stat = path.lstat()
                verdict = _is_leftover(name, stat.st_mtime, now, max_age)
                if verdict is None:
                    continue
                if not verdict:
                    kept += 1
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # its writer finished (renamed or removed it) meanwhile
            except OSError as exc:
                log.warning("sweep: could not remove %s: %s", path, exc)
                continue
            removed += 1
            freed += stat.st_size
    log.info("swept %d leftover temp file(s) (%d bytes) of dead writers under %s; "
             "kept %d of live or recent writers", removed, freed, root, kept)
    return removed
