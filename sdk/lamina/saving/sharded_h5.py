"""Sharded ``.weights.json`` + ``<base>_NNNNN.weights.h5`` files, as Keras 3 writes them.

Layout (Keras's ``ShardedH5IOStore`` in ``keras/src/saving/saving_lib.py``):

* ``<base>.weights.json`` holds ``{"metadata": {"total_size": bytes}, "weight_map":
  {"/<path>/vars": "<base>_00000.weights.h5", ...}}`` (a list of file names when one
  object's variables span shards), written with ``indent=4``;
* each shard is a ``.weights.h5`` file in the usual layout holding some of the
  variables; ``<base>`` is the json's stem with every ``.weights`` removed;
* ``max_shard_size`` is in GB (``* 1024**3`` bytes). Variables are written in walk
  order; a new shard starts when adding a variable would take the current shard past
  the limit, and a single variable larger than the limit is an error.

Loading goes through the index only: each file name must be a plain name in the
index's folder, each shard is opened read-only and every dataset passes
:func:`lamina.saving.h5_store.safe_read` (links, storage, dtype, size caps) before it
is copied into an in-memory file that :func:`lamina.saving.h5_store.load_state` reads.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import numbers
import os
import pathlib
import tempfile
import warnings
from typing import TYPE_CHECKING

import numpy as np

from lamina.saving import h5_store, limits, object_store
from lamina.saving.file_utils import atomic_path

if TYPE_CHECKING:  # imported where used: h5py costs ~12 MB at `import lamina`
    import h5py

_BITS = {"b": 1}  # Keras counts a bool as one bit (dtype_utils.DTYPE_TO_SIZE)
_MAX_SHARDS = 100_000


def check_max_shard_size(max_shard_size) -> float:
    """The limit in bytes for ``max_shard_size`` given in GB.

    Raises:
        ValueError: unless it is a positive, finite real number.
    """
    if (isinstance(max_shard_size, bool) or not isinstance(max_shard_size, numbers.Real)
            or not math.isfinite(max_shard_size) or max_shard_size <= 0):
        raise ValueError("`max_shard_size` must be a positive number of gigabytes (int or "
                         f"float). Received: max_shard_size={max_shard_size!r}")
    return float(max_shard_size) * 1024**3


def index_path(filepath) -> pathlib.Path:
    """The ``.json`` index path for ``filepath`` (``x.weights.h5`` becomes ``x.weights.json``)."""
    path = pathlib.Path(filepath)
    if path.suffix != ".json":
        new_path = path.with_suffix(".json")
        warnings.warn(f"Saving sharded weights requires `*.json` as the extension. The "
                      f"original path: {path} will be renamed to {new_path}.", stacklevel=3)
        path = new_path
    return path


def shard_name(index_file: pathlib.Path, number: int) -> str:
    """The file name of shard ``number`` next to ``index_file``."""
    return f"{index_file.stem.replace('.weights', '')}_{number:05}.weights.h5"


def _value_bytes(value: np.ndarray) -> float:
    bits = _BITS.get(value.dtype.kind, value.dtype.itemsize * 8)
    return math.prod(value.shape) * bits / 8


class _ShardWriter:
    """Write-side store: ``make(path, name)`` then ``store[key] = value``, shard by shard."""

    def __init__(self, index_file: pathlib.Path, limit: float, folder: str):
        self.index_file = index_file
        self.limit = limit
        self.folder = folder  # temporary files live here until every shard is written
        self.files: list[tuple[str, str]] = []  # (shard name, temporary path)
        self.weight_map: dict = {}
        self.total = 0.0
        self.current = 0.0
        self.h5 = None
        self.path = ""
        self.group = None
        self._new_shard()

    def _new_shard(self) -> None:
        import h5py
        if self.h5 is not None:
            self.h5.close()
        name = shard_name(self.index_file, len(self.files))
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.folder)
        os.close(fd)
        self.files.append((name, tmp))
        self.h5 = h5py.File(tmp, "w")
        self.group = None

    def make(self, path: str, name: str):
        self.path = path
        self.group = self.h5.create_group(f"{path}/vars" if path else "vars")
        self.group.attrs["name"] = name
        return self

    def __setitem__(self, key: str, value) -> None:
        value = np.asarray(value)
        size = _value_bytes(value)
        self.total += size
        where = f"{self.path}/vars/{key}" if self.path else f"vars/{key}"
        if size > self.limit:
            raise ValueError(
                f"The size of {where} is {size / 1024**3:.6g} GB, which exceeds the maximum "
                f"shard size {self.limit / 1024**3:.6g} GB. Increase `max_shard_size` to "
                "accommodate it.")
        self.current += size
        if self.current > self.limit:
            self._new_shard()
            self.current = size
        if self.group is None:  # the object's group continues in the new shard
            self.group = self.h5.create_group(f"{self.path}/vars" if self.path else "vars")
        self.group.create_dataset(key, data=value)
        shard = self.files[-1][0]
        # As Keras: a name for the first variable, a list from the second one on.
        entry = self.weight_map.get(self.group.name)
        if entry is None:
            self.weight_map[self.group.name] = shard
        else:
            entry = entry if isinstance(entry, list) else [entry]
            self.weight_map[self.group.name] = entry + ([] if shard in entry else [shard])

    def close(self) -> None:
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None


def save_sharded(model, filepath, max_shard_size, overwrite: bool = True,
                 include_optimizer: bool = True) -> None:
    """Write ``model``'s weights as a ``.weights.json`` index plus ``.weights.h5`` shards.

    Every shard is written under a temporary name; then the old index is removed, the
    shards renamed and the new index renamed last, so a reader finds either a complete
    set or no index, never an index naming missing, partial or mixed shards.

    Args:
        model: the built model.
        filepath: ``*.weights.json`` (``*.weights.h5`` is renamed, with a warning).
        max_shard_size: largest shard in GB (int or float).
        overwrite: replace existing files (otherwise ``FileExistsError``).
        include_optimizer: also save the optimizer's variables.

    Raises:
        ValueError: for a bad ``max_shard_size`` or a variable larger than it.
    """
    limit = check_max_shard_size(max_shard_size)
    index_file = index_path(filepath)
    if not overwrite and index_file.exists():
        raise FileExistsError(f"File {str(index_file)!r} already exists and overwrite=False.")
    folder = os.path.dirname(os.path.abspath(index_file))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {str(index_file)!r}: folder {folder!r} "
                                "does not exist.")
    writer = _ShardWriter(index_file, limit, folder)
    try:
        for path, obj in h5_store.walk(model, include_optimizer):
            store = writer.make(path, str(getattr(obj, "name", "")))
            if object_store.has_own_store(obj):
                obj.save_own_variables(store)
                continue
            for i, variable in enumerate(h5_store.own_variables(obj)):
                store[str(i)] = np.asarray(variable.data)
        writer.close()
        config = {"metadata": {"total_size": writer.total}, "weight_map": writer.weight_map}
        # Shard names are fixed, so an old index could name half-replaced shards: remove
        # it before the first rename (a crash then leaves no index, never a mixed set).
        stale = _indexed_shards(index_file)
        with contextlib.suppress(FileNotFoundError):
            os.remove(index_file)
        for name, tmp in writer.files:
            with atomic_path(os.path.join(folder, name)) as target:
                os.replace(tmp, target)
        with atomic_path(index_file) as target:
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(config, indent=4))
        for name in stale - {name for name, _ in writer.files}:  # a smaller set than before
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))
    finally:
        writer.close()
        for _, tmp in writer.files:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)


def _indexed_shards(index_file: pathlib.Path) -> set:
    """The shard names an existing (valid) index lists; empty if none."""
    try:
        _, weight_map = read_index(index_file)
    except (OSError, ValueError):
        return set()
    return {name for names in weight_map.values() for name in names}


def read_index(filepath) -> tuple[pathlib.Path, dict]:
    """Read and validate a ``.weights.json`` index.

    Returns:
        ``(index path, weight_map)`` where every value is a list of plain file names.

    Raises:
        ValueError: for an oversized or invalid index, or file names that leave the
            index's folder.
    """
    path = pathlib.Path(filepath)
    if path.suffix != ".json":
        raise ValueError("Loading sharded weights requires a `*.weights.json` index. "
                         f"Received: filepath={filepath}")
    if path.stat().st_size > limits.MAX_CONFIG_BYTES:
        raise ValueError(f"Refusing {str(path)!r}: the index is larger than "
                         f"{limits.MAX_CONFIG_BYTES} bytes.")
    try:
        config = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not a valid sharded weights index: {exc}") from exc
    weight_map = config.get("weight_map") if isinstance(config, dict) else None
    if not isinstance(weight_map, dict):
        raise ValueError(f"{str(path)!r} is not a valid sharded weights index: it needs an "
                         "object with a 'weight_map' object.")
    checked = {}
    for key, names in weight_map.items():
        names = names if isinstance(names, list) else [names]
        for name in names:
            if (not isinstance(name, str) or not name.endswith(".weights.h5") or "/" in name
                    or "\\" in name or name in (".", "..") or os.path.basename(name) != name):
                raise ValueError(f"Refusing shard {name!r} for {key!r} in {str(path)!r}: "
                                 "shards must be plain `.weights.h5` names in the index's "
                                 "folder.")
        checked[key] = names
    if len({n for names in checked.values() for n in names}) > _MAX_SHARDS:
        raise ValueError(f"Refusing {str(path)!r}: more than {_MAX_SHARDS} shards.")
    return path, checked


def merged_weights(filepath) -> h5py.File:
    """An in-memory HDF5 file holding every shard's variables at their paths.

    Returns:
        An open ``h5py.File`` over an in-memory buffer; the caller closes it.

    Raises:
        ValueError: for invalid indexes, missing or corrupt shards, hostile content.
    """
    import h5py
    path, weight_map = read_index(filepath)
    merged = h5py.File(io.BytesIO(), "w")
    opened: dict = {}
    try:
        for key, names in weight_map.items():
            target = merged.require_group(key)
            for name in names:
                if name not in opened:
                    shard = path.with_name(name)
                    if not shard.is_file():
                        raise ValueError(f"Shard {name!r} listed in {str(path)!r} is missing.")
                    opened[name] = h5_store.open_h5(str(shard), f"shard {name!r}")
                group = h5_store.safe_group(opened[name], key)
                if group is None:
                    raise ValueError(f"Shard {name!r} has no group {key!r}, which "
                                     f"{str(path)!r} says it holds.")
                for dataset in group:
                    if dataset not in target:
                        target.create_dataset(dataset, data=h5_store.safe_read(group, dataset))
    except BaseException:
        merged.close()
        raise
    finally:
        for handle in opened.values():
            handle.close()
    return merged


def load_sharded(model, filepath, skip_mismatch: bool = False) -> None:
    """Load a sharded ``.weights.json`` set into a built model (optimizer too, if compiled)."""
    with merged_weights(filepath) as h5file:
        h5_store.load_state(model, h5file, skip_mismatch=skip_mismatch)
