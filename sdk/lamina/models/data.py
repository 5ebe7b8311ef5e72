"""Array data for ``fit``/``evaluate``/``predict``: checks, splits, batches, weights."""

from __future__ import annotations

import math

import numpy as np

from lamina.backend.tensor import Tensor
from lamina.layers.symbolic import flatten, map_structure
from lamina.utils.batch_packing import (  # noqa: F401 - used by the training loop
    pack_x_y_sample_weight,
    unpack_x_y_sample_weight,
)


def _to_array(x):
    if isinstance(x, Tensor):
        return x.data
    if x is None:
        return None
    array = np.asarray(x)
    if array.dtype == object or array.dtype.kind == "S":
        strings = _as_strings(array)
        if strings is None:
            raise ValueError(
                "Data must be numeric or string arrays. Received an array of Python "
                f"objects (dtype=object) with shape {array.shape}.")
        return strings
    return array


def _as_strings(array):
    """A ``str`` array for an array of str/bytes (bytes decoded as UTF-8, as a string
    ``tf.Tensor`` holds them); None when any element is something else."""
    flat = array.ravel().tolist()
    if not flat or not all(isinstance(e, (str, bytes)) for e in flat):
        return None
    decoded = [e.decode("utf-8") if isinstance(e, bytes) else e for e in flat]
    return np.array(decoded, dtype=str).reshape(array.shape)


def standardize(x):
    """Convert every leaf to an ndarray; ``None`` stays ``None``."""
    return map_structure(_to_array, x) if x is not None else None


def num_samples(*structures) -> int:
    """The shared first dimension of every array; a clear error when they differ."""
    sizes = {}
    for name, structure in zip(("x", "y", "sample_weight"), structures):
        for array in flatten(structure):
            if array is None:
                continue
            if array.ndim == 0:
                raise ValueError(f"Expected arrays with a batch dimension for `{name}`, "
                                 f"received a scalar: {array!r}")
            sizes.setdefault(name, []).append(array.shape[0])
    distinct = {n for v in sizes.values() for n in v}
    if len(distinct) > 1:
        detail = "\n".join(f"'{k}' sizes: {', '.join(map(str, v))}" for k, v in sizes.items())
        raise ValueError(f"Data cardinality is ambiguous. Make sure all arrays contain the "
                         f"same number of samples.\n{detail}")
    if not distinct:
        raise ValueError("No data was provided: `x` is empty or None.")
    return distinct.pop()


def check_finite(structure, name: str) -> None:
    """Refuse NaN or infinite values in floating data, naming where they are."""
    for i, array in enumerate(flatten(structure)):
        if array is None or array.dtype.kind not in "fc":
            continue
        # A finite sum proves every element finite (a NaN or an infinity makes the sum
        # NaN or infinite) without a boolean array of the data's size (47 MB for MNIST);
        # NaN/inf (or an overflowing sum) look element by element. Summed in the data's
        # own precision (float16 in float32): a float64 accumulator made numpy convert
        # every float32 on the way, 28 against 7.4 ms for MNIST, in every fit call.
        wide = np.result_type(array.dtype, np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            total = array.sum(dtype=wide)
        if np.isfinite(total):
            continue
        if not np.isfinite(array).all():
            bad = np.argwhere(~np.isfinite(array))[0]
            raise ValueError(
                f"`{name}` contains NaN or infinite values (array {i}, first at index "
                f"{tuple(int(b) for b in bad)}: {array[tuple(bad)]!r}). Clean the data "
                "before training.")


def take(structure, index):
    """Rows ``index`` (an int array or a slice) of every array."""
    if isinstance(index, np.ndarray) and index.dtype.kind in "iu":
        # ndarray.take copies whole rows of a multi-axis array faster than fancy indexing
        # (10 against 15 us for a batch of 128 MNIST images); 1-D arrays index faster.
        def rows(a):
            if a is None:
                return None
            return a.take(index, axis=0) if type(a) is np.ndarray and a.ndim > 1 else a[index]

        return rows(structure) if type(structure) is np.ndarray else map_structure(rows, structure)
    return map_structure(lambda a: None if a is None else a[index], structure)


def train_validation_split(arrays, validation_split: float):
    """Split off the **last** ``validation_split`` fraction, before any shuffling."""
    if not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1. "
                         f"Received: validation_split={validation_split!r}")
    n = num_samples(*arrays)
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"Training data contains {n} samples, which is not sufficient to split it into a "
            f"validation and training set as specified by `validation_split={validation_split}`."
            " Either provide more data, or a different value for the `validation_split` "
            "argument.")
    train = tuple(take(a, slice(0, split_at)) for a in arrays)
    val = tuple(take(a, slice(split_at, None)) for a in arrays)
    return train, val


def class_weight_to_sample_weight(y, class_weight: dict) -> np.ndarray:
    """Per-sample weights from ``{class_index: weight}`` (missing classes weigh 1)."""
    try:
        mapping = {int(k): float(v) for k, v in class_weight.items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`class_weight` keys must be class indices (ints). "
                         f"Received: class_weight={class_weight!r}") from exc
    ys = flatten(y)
    if len(ys) != 1:
        raise ValueError("`class_weight` is only supported for models with a single output.")
    y = ys[0]
    if y.ndim >= 2 and y.shape[-1] > 1:
        ids = np.argmax(y, axis=-1)
    else:
        ids = y.reshape(y.shape[0], -1)[:, 0] if y.ndim >= 2 else y
    ids = np.round(ids).astype(np.int64)
    lookup = np.ones(max(int(ids.max(initial=0)), max(mapping, default=0)) + 1, dtype=np.float32)
    for k, v in mapping.items():
        if k >= 0:
            lookup[k] = v
    return lookup[ids]


def unpack(data):
    """``(x, y, sample_weight)`` from a tuple of 1 to 3 entries."""
    if isinstance(data, tuple):
        if len(data) == 1:
            return data[0], None, None
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return data
    if isinstance(data, list) and len(data) in (2, 3):
        return tuple(data) + (None,) * (3 - len(data))
    raise ValueError(
        "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight). "
        f"Received: {type(data).__name__} of length "
        f"{len(data) if hasattr(data, '__len__') else '?'}")


class BatchIterator:
    """Indices of each batch of an epoch: in order, shuffled, or shuffled by batch."""

    def __init__(self, n: int, batch_size: int, shuffle=False, rng=None, steps=None):
        self.n, self.batch_size, self.shuffle, self.rng = n, batch_size, shuffle, rng
        self.num_batches = math.ceil(n / batch_size)
        if steps is not None:
            self.num_batches = min(self.num_batches, int(steps))

    def epoch(self):
        if self.shuffle == "batch":
            order = np.arange(self.n)
            starts = np.arange(0, self.n, self.batch_size)
            for s in self.rng.permutation(len(starts))[: self.num_batches]:
                yield order[starts[s]: starts[s] + self.batch_size]
            return
        if self.shuffle:
            order = self.rng.permutation(self.n)
            for b in range(self.num_batches):
                yield order[b * self.batch_size: (b + 1) * self.batch_size]
            return
        for b in range(self.num_batches):
            yield slice(b * self.batch_size, min((b + 1) * self.batch_size, self.n))
