"""Datasets, checkpoints and final models under one root directory.

Layout (``settings.storage_root``)::

    datasets/<dataset id>.npz | .h5     content-addressed: id = "d_" + sha256(bytes)
    datasets/<dataset id>.json          metadata: format, arrays (shape, dtype), bytes
    jobs/<job id>/checkpoints/<name>    written by the worker only
    jobs/<job id>/model.keras           the final model, written by the worker only

Every id is checked against a strict regex before a path is built from it, so
no client string ever reaches the filesystem. Writes are atomic
(:mod:`lamina_service.diskio`: a temp file in the same directory, fsync,
``os.replace``, fsync of the directory); a full or failing disk loses nothing and
leaves no temp file (the upload answers 507 or 503).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat as stat_module
import zipfile
from collections.abc import AsyncIterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from lamina_service.config import Limits
from lamina_service.diskio import (  # noqa: F401 - atomic_path, fsync_dir: re-exported
    atomic_path,
    atomic_write_bytes,
    discard,
    fsync_dir,
    publish,
    storage_fault,
    temp_path,
)
from lamina_service.errors import InvalidInput, NotFound, PayloadTooLarge

DATASET_ID = re.compile(r"^d_[0-9a-f]{64}$")
JOB_ID = re.compile(r"^j_[0-9a-f]{24}$")
#: A job's final model, in its job directory.
MODEL_FILE = "model.keras"
ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: The one array of a weights upload (a model's weights flattened in order, float32,
#: shape (1, parameters)): what ``Client.fit`` sends for ``fit.initial_weights_id``.
WEIGHTS = "weights"
ARRAY_NAME = re.compile(r"^[xy](_[A-Za-z0-9][A-Za-z0-9_]{0,63})?$")
NUMERIC_KINDS = frozenset("fiub")
FORMATS = {"npz": b"PK\x03\x04", "h5": b"\x89HDF\r\n\x1a\n"}
#: HDF5 filters that ship with libhdf5/h5py: deflate, shuffle, fletcher32, szip,
#: nbit, scaleoffset, lzf.
BUILTIN_FILTERS = frozenset({1, 2, 3, 4, 5, 6, 32000})


@dataclass(frozen=True)
class DatasetInfo:
    """What the service knows about a stored dataset.

    Attributes:
        id: ``d_`` + sha256 of the uploaded bytes.
        format: ``npz`` or ``h5``.
        bytes: size of the file.
        arrays: array name -> ``{"shape": [...], "dtype": "float32"}``.
        samples: first dimension shared by every array.
    """

    id: str
    format: str
    bytes: int
    arrays: dict[str, dict[str, Any]]
    samples: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def check_id(value: str, pattern: re.Pattern[str], what: str) -> str:
    """Return ``value`` if it matches ``pattern``; else raise NotFound (never touch disk).

    Raises:
        NotFound: the id is malformed, so no such object can exist.
    """
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise NotFound(f"no such {what}: {value[:80]!r}", field=what)
    return value


def _check_array(name: str, shape: tuple[int, ...], dtype: np.dtype, max_bytes: int) -> None:
    field = f"dataset.{name}"
    if not ARRAY_NAME.fullmatch(name) and name != WEIGHTS:
        raise InvalidInput(
            f"array names must be 'x', 'y', 'x_<name>' or 'y_<name>' (or one {WEIGHTS!r} "
            f"array); received {name[:80]!r}", field=field,
        )
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise InvalidInput(
            f"array {name!r} must have a numeric dtype; received dtype={dtype}", field=field
        )
    if not shape:
        raise InvalidInput(f"array {name!r} must have a sample axis; received shape=()", field)
    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if size > max_bytes:
        raise InvalidInput(
            f"array {name!r} declares {size} bytes (shape={shape}, dtype={dtype}); "
            f"the limit max_array_bytes is {max_bytes}", field=field,
        )


def _finish(arrays: dict[str, tuple[tuple[int, ...], np.dtype]]) -> tuple[dict, int]:
    if WEIGHTS in arrays:
        shape, dtype = arrays[WEIGHTS]
        if len(arrays) != 1 or len(shape) != 2 or shape[0] != 1 or dtype != np.float32:
            raise InvalidInput(
                f"a weights upload is one float32 array {WEIGHTS!r} of shape (1, parameters); "
                f"received { {n: (list(s), str(d)) for n, (s, d) in sorted(arrays.items())} }",
                field="dataset")
        return {WEIGHTS: {"shape": list(shape), "dtype": str(dtype)}}, 1
    if not any(n.startswith("x") for n in arrays) or not any(n.startswith("y") for n in arrays):
        raise InvalidInput(
            f"a dataset needs x and y arrays; received {sorted(arrays)}", field="dataset"
        )
    samples = {shape[0] for shape, _ in arrays.values()}
    if len(samples) != 1:
        raise InvalidInput(
            f"every array must have the same number of samples; received "
            f"{ {n: s[0] for n, (s, _) in sorted(arrays.items())} }", field="dataset",
        )
    meta = {n: {"shape": list(s), "dtype": str(d)} for n, (s, d) in sorted(arrays.items())}
    return meta, samples.pop()


def inspect_npz(path: Path, max_array_bytes: int) -> tuple[dict, int]:
    """Validate an .npz from its headers alone (no array data is read).

    Raises:
        InvalidInput: not a zip of .npy members, pickled/object or non-numeric
            arrays, bad names, oversized or truncated arrays.
    """
    arrays: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise InvalidInput(
                        f"npz members must be .npy arrays; received {info.filename[:80]!r}",
                        field="dataset",
                    )
                name = info.filename[:-4]
                with archive.open(info) as member:
                    major, _ = np.lib.format.read_magic(member)
                    read = (np.lib.format.read_array_header_1_0 if major == 1
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(member)
                    header_len = member.tell()
                _check_array(name, shape, dtype, max_array_bytes)
                data_len = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if info.file_size < header_len + data_len:
                    raise InvalidInput(
                        f"array {name!r} is truncated: header declares {data_len} bytes",
                        field=f"dataset.{name}",
                    )
                arrays[name] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"not a valid .npz file: {exc}", field="dataset") from exc
    return _finish(arrays)


def _h5_datasets(handle: Any, max_array_bytes: int):
    import h5py

    for name in handle:
        link = handle.get(name, getlink=True)
        field = f"dataset.{name}"
        if isinstance(link, h5py.ExternalLink):
            raise InvalidInput(f"HDF5 external links are refused; {name!r} is one", field=field)
        if isinstance(link, h5py.SoftLink):
            raise InvalidInput(f"HDF5 soft links are refused; {name!r} is one", field=field)
        obj = handle[name]
        if not isinstance(obj, h5py.Dataset):
            raise InvalidInput(
                f"only numeric datasets at the file's root are accepted; {name!r} is a group",
                field=field,
            )
        if obj.is_virtual:
            raise InvalidInput(f"HDF5 virtual datasets are refused; {name!r} is one", field)
        if obj.external:
            raise InvalidInput(f"HDF5 external storage is refused; {name!r} uses it", field)
        plist = obj.id.get_create_plist()
        for index in range(plist.get_nfilters()):
            filter_id = plist.get_filter(index)[0]
            if filter_id not in BUILTIN_FILTERS:
                raise InvalidInput(
                    f"dataset {name!r} uses non-builtin HDF5 filter {filter_id}", field=field
                )
        _check_array(name, tuple(obj.shape or ()), obj.dtype, max_array_bytes)
        yield name, obj


def inspect_h5(path: Path, max_array_bytes: int) -> tuple[dict, int]:
    """Validate an HDF5 file without reading array data.

    Raises:
        InvalidInput: external/soft links, external or virtual storage, groups,
            custom filters, non-numeric or oversized datasets, unreadable file.
    """
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            arrays = {
                name: (tuple(obj.shape), obj.dtype)
                for name, obj in _h5_datasets(handle, max_array_bytes)
            }
    except InvalidInput:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"not a readable HDF5 file: {exc}", field="dataset") from exc
    return _finish(arrays)


class Storage:
    """Files of the service under ``root`` (see the module docstring).

    Args:
        root: storage directory (created if missing).
        max_upload_bytes: cap on one dataset upload.
        max_array_bytes: cap on the declared size of one array in a dataset.
        sandbox: when given (the API), uploads are parsed in a child process under
            these limits (:mod:`lamina_service.sandbox`); else in this process.
    """

    def __init__(self, root: str | Path, max_upload_bytes: int, max_array_bytes: int,
                 sandbox: Limits | None = None) -> None:
        self.root = Path(root).resolve()
        self.sandbox = sandbox
        self.max_upload_bytes = max_upload_bytes
        self.max_array_bytes = max_array_bytes
        self.datasets = self.root / "datasets"
        self.jobs = self.root / "jobs"
        self.datasets.mkdir(parents=True, exist_ok=True)
        self.jobs.mkdir(parents=True, exist_ok=True)

    async def ingest_dataset(
        self, chunks: AsyncIterable[bytes], fmt: str | None = None
    ) -> DatasetInfo:
        """Stream an upload to disk under the cap, validate it and store it by content.

        Args:
            chunks: the request body.
            fmt: ``npz`` or ``h5`` if the client said; checked against the bytes.

        Raises:
            PayloadTooLarge: more than ``max_upload_bytes`` arrived (nothing is kept).
            InvalidInput: unknown format or a dataset that fails validation.
            InsufficientStorage: the disk is full (507; nothing is kept).
            Unavailable: the disk failed (EIO: 503; nothing is kept).
        """
        from starlette.concurrency import run_in_threadpool

        tmp = temp_path(self.datasets / "upload")
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise PayloadTooLarge(
                            f"upload exceeds max_upload_bytes={self.max_upload_bytes}",
                            field="body",
                        )
                    digest.update(chunk)
                    out.write(chunk)
            return await run_in_threadpool(self._store, tmp, digest.hexdigest(), size, fmt)
        except OSError as exc:
            fault = storage_fault(exc, "the upload", self.root)
            if fault is None:
                raise
            raise fault from exc
        finally:
            discard(tmp)

    def _store(self, tmp: Path, digest: str, size: int, fmt: str | None) -> DatasetInfo:
        with open(tmp, "rb") as handle:
            magic = handle.read(8)
        sniffed = next((name for name, sig in FORMATS.items() if magic.startswith(sig)), None)
        if sniffed is None or (fmt is not None and fmt != sniffed):
            raise InvalidInput(
                f"the upload must be an .npz or HDF5 file (format={fmt!r}); its first bytes "
                f"are {magic[:8]!r}", field="format" if fmt else "body",
            )
        if self.sandbox is not None:
            from lamina_service.sandbox import inspect_sandboxed

            arrays, samples = inspect_sandboxed(tmp, sniffed, self.sandbox)
        else:
            inspect = inspect_npz if sniffed == "npz" else inspect_h5
            arrays, samples = inspect(tmp, self.max_array_bytes)
        info = DatasetInfo(id=f"d_{digest}", format=sniffed, bytes=size, arrays=arrays,
                           samples=samples)
        # Metadata first: a failure then leaves no data file (the finally removes tmp).
        atomic_write_bytes(self.datasets / f"{info.id}.json", json.dumps(info.to_dict()).encode())
        target = self.datasets / f"{info.id}.{sniffed}"
        if not target.exists():
            publish(tmp, target)
        return info

    def dataset_path(self, dataset_id: str) -> Path:
        """Path of a stored dataset file.

        Raises:
            NotFound: malformed id or no such dataset.
        """
        check_id(dataset_id, DATASET_ID, "dataset_id")
        for fmt in FORMATS:
            path = self.datasets / f"{dataset_id}.{fmt}"
            if path.is_file():
                return path
        raise NotFound(f"no such dataset: {dataset_id!r}", field="dataset_id")

    def load_dataset(self, dataset_id: str) -> dict[str, np.ndarray]:
        """Read a stored dataset (worker side) as ``{"x": ..., "y": ...}``.

        Raises:
            NotFound: no such dataset.
            InvalidInput: the file no longer passes validation.
        """
        path = self.dataset_path(dataset_id)
        if path.suffix == ".npz":
            inspect_npz(path, self.max_array_bytes)
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        import h5py

        with h5py.File(path, "r") as handle:
            return {name: obj[()] for name, obj in _h5_datasets(handle, self.max_array_bytes)}

    def job_dir(self, job_id: str) -> Path:
        """Directory of one job's artifacts (not created)."""
        return self.jobs / check_id(job_id, JOB_ID, "job_id")

    def checkpoint_dir(self, job_id: str) -> Path:
        """Directory the worker writes a job's checkpoints to (created)."""
        path = self.job_dir(job_id) / "checkpoints"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_path(self, job_id: str) -> Path:
        """Where the worker writes a job's final ``.keras`` file (parent created)."""
        path = self.job_dir(job_id) / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def final_model(self, job_id: str) -> Path:
        """The final model file of a job (for reading in this process; the API serves
        :meth:`open_final_model`).

        Raises:
            NotFound: no such job or the model was not written.
        """
        path = self.job_dir(job_id) / MODEL_FILE
        if not path.is_file() or path.is_symlink():
            raise _no_model(job_id)
        return path

    def open_final_model(self, job_id: str) -> BinaryIO:
        """The final model file of a job, open for reading.

        Raises:
            NotFound: no such job or the model was not written.
        """
        return _open_regular(self.job_dir(job_id) / MODEL_FILE, _no_model(job_id))

    def list_checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        """Regular files in a job's checkpoint directory, by name.

        The worker writes and prunes checkpoints while this lists them: a file removed
        between the directory read and its ``stat`` is left out, not an error.
        """
        folder = self.job_dir(job_id) / "checkpoints"
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for entry in entries:
            if not (entry.is_file(follow_symlinks=False) and ARTIFACT_NAME.fullmatch(entry.name)
                    and not entry.name.endswith(".tmp")):
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            out.append({"name": entry.name, "bytes": stat.st_size, "modified": stat.st_mtime})
        return out

    def open_checkpoint(self, job_id: str, name: str) -> BinaryIO:
        """One checkpoint, open for reading, after checking ``name``.

        Open, not a path: the worker prunes old checkpoints while the API serves them, and
        an open file outlives its unlinking, so a download that started completes.

        Raises:
            NotFound: malformed name, or no such checkpoint.
        """
        check_id(name, ARTIFACT_NAME, "name")
        return _open_regular(self.job_dir(job_id) / "checkpoints" / name,
                             NotFound(f"job {job_id!r} has no checkpoint {name!r}",
                                      field="name"))


def _no_model(job_id: str) -> NotFound:
    return NotFound(f"job {job_id!r} has no final model", field="job_id")


def _open_regular(path: Path, missing: NotFound) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, not through a symlink in its
    last component (``O_NOFOLLOW``); else ``missing`` is raised."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # absent, a symlink (ELOOP), a folder's missing parent
        raise missing from None
    if not stat_module.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise missing
    return os.fdopen(fd, "rb")

