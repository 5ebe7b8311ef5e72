"""Segment reductions and scatters with Keras's names.

Everything is composed on :class:`lamina.backend.primitives.ScatterAdd` (whose VJP is a
gather): sums scatter-add directly; max/min/prod lay each segment out as a row of a dense
``(num_segments, longest, ...)`` block (padded with the reduction's identity) and reduce
it with the differentiable ``max``/``min``/``prod``.
"""

from __future__ import annotations

import builtins

import numpy as np

from lamina.backend import primitives as _p
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import convert_to_tensor
from lamina.ops.manipulation import getitem, reshape
from lamina.ops.math import add, maximum, minimum, multiply, where
from lamina.ops.reduction import max as _max
from lamina.ops.reduction import min as _min
from lamina.ops.reduction import prod as _prod

__all__ = [
    "scatter", "scatter_update", "segment_max", "segment_min", "segment_prod",
    "segment_sum", "slice_update",
]


def _ids(segment_ids, num_segments):
    ids = np.asarray(_data(segment_ids)).astype(np.int64).reshape(-1)
    if num_segments is None:
        num_segments = int(ids.max()) + 1 if ids.size else 0
    # Negative ids (Keras's -1 padding) and ids past num_segments are dropped.
    keep = np.nonzero((ids >= 0) & (ids < num_segments))[0]
    return ids, keep, int(num_segments)


def segment_sum(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Sum of the rows of ``data`` in each segment.

    Args:
        data: ``(N, ...)`` values.
        segment_ids: ``(N,)`` segment of each row; negative ids are ignored.
        num_segments: number of segments (default: the largest id plus one).
        sorted: whether ids are sorted (a hint; the result is the same).

    Returns:
        ``(num_segments, ...)``; empty segments are 0.
    """
    data = convert_to_tensor(data)
    ids, keep, n = _ids(segment_ids, num_segments)
    rows = getitem(data, keep)
    return _p.ScatterAdd.apply(rows, (ids[keep],), (n,) + tuple(shape(data)[1:]))


def _dense(data, segment_ids, num_segments, fill):
    """Each segment's rows as one row of ``(n, longest, ...)``, padded with ``fill``."""
    data = convert_to_tensor(data)
    ids, keep, n = _ids(segment_ids, num_segments)
    ids = ids[keep]
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.empty_like(ids)
    pos[order] = np.arange(ids.size) - starts[ids[order]]
    longest = builtins.max(int(counts.max(initial=0)), 1)
    rest = tuple(shape(data)[1:])
    block = _p.ScatterAdd.apply(getitem(data, keep), (ids, pos), (n, longest) + rest)
    filled = np.zeros((n, longest), dtype=bool)
    filled[ids, pos] = True
    filled = filled.reshape((n, longest) + (1,) * len(rest))
    return where(filled, block, np.asarray(fill, dtype=data.data.dtype))


def segment_max(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Maximum of the rows of ``data`` in each segment; empty segments are ``-inf``.

    Arguments as :func:`segment_sum`.
    """
    return _max(_dense(data, segment_ids, num_segments, -np.inf), axis=1)


def segment_min(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Minimum of the rows of ``data`` in each segment; empty segments are ``inf``.

    Arguments as :func:`segment_sum`.
    """
    return _min(_dense(data, segment_ids, num_segments, np.inf), axis=1)


def segment_prod(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Product of the rows of ``data`` in each segment; empty segments are 1.

    Arguments as :func:`segment_sum`.
    """
    return _prod(_dense(data, segment_ids, num_segments, 1), axis=1)


def _index_tuple(indices, rank):
    idx = np.asarray(_data(indices)).astype(np.intp)
    if idx.ndim == 0 or idx.shape[-1] > rank:
        raise ValueError(f"`indices` must end with an axis of at most rank {rank} "
                         f"entries. Received: indices.shape={idx.shape}")
    flat = idx.reshape(-1, idx.shape[-1])
    return flat, tuple(flat.T)


def scatter(indices, values, shape):  # noqa: A002 - Keras's name
    """Zeros of ``shape`` with ``values`` added at ``indices`` (duplicates summed).

    Args:
        indices: ``(..., k)`` integer coordinates into the first ``k`` axes.
        values: ``(..., *shape[k:])`` values, one per coordinate.
        shape: the output shape.

    Returns:
        A Tensor of ``shape`` and ``values``'s dtype.
    """
    values = convert_to_tensor(values)
    shape_ = tuple(int(s) for s in shape)
    flat, index = _index_tuple(indices, len(shape_))
    rows = reshape(values, (flat.shape[0],) + shape_[flat.shape[1]:])
    return _p.ScatterAdd.apply(rows, index, shape_)


def scatter_update(inputs, indices, updates, reduction=None):
    """``inputs`` with ``updates`` written at ``indices``.

    Args:
        inputs: the Tensor to update (not modified; a new Tensor is returned).
        indices: ``(N, k)`` coordinates into the first ``k`` axes.
        updates: ``(N, *inputs.shape[k:])`` values.
        reduction: ``None`` (replace; the last of duplicate indices wins), ``"add"``,
            ``"max"``, ``"min"`` or ``"mul"``.

    Returns:
        The updated Tensor.
    """
    inputs = convert_to_tensor(inputs)
    full = tuple(shape(inputs))
    flat, index = _index_tuple(indices, len(full))
    k = flat.shape[1]
    rows = reshape(convert_to_tensor(updates, inputs.dtype), (flat.shape[0],) + full[k:])
    if reduction is None:
        cells = np.ravel_multi_index(index, full[:k])
        last = {c: i for i, c in enumerate(cells)}
        chosen = np.array(sorted(last.values()), dtype=np.intp)
        kept = tuple(a[chosen] for a in index)
        written = _p.ScatterAdd.apply(getitem(rows, chosen), kept, full)
        mask = np.zeros(full[:k], dtype=bool)
        mask[kept] = True
        return where(mask.reshape(full[:k] + (1,) * (len(full) - k)), written, inputs)
    if reduction == "add":
        return add(inputs, _p.ScatterAdd.apply(rows, index, full))
    reducers = {"max": (segment_max, maximum), "min": (segment_min, minimum),
                "mul": (segment_prod, multiply)}
    if reduction not in reducers:
        raise ValueError(f"Unsupported reduction: {reduction}")
    segment_fn, combine = reducers[reduction]
    cells = np.ravel_multi_index(index, full[:k])
    per_cell = segment_fn(rows, cells, num_segments=int(np.prod(full[:k])))
    return combine(inputs, reshape(per_cell, full))


def slice_update(inputs, start_indices, updates):
    """``inputs`` with the block starting at ``start_indices`` replaced by ``updates``.

    Returns:
        A new Tensor; gradients reach ``updates`` and the untouched part of ``inputs``.
    """
    inputs = convert_to_tensor(inputs)
    updates = convert_to_tensor(updates, inputs.dtype)
    starts = [int(np.asarray(_data(s))) for s in start_indices]
    if len(starts) != len(shape(inputs)):
        raise ValueError("`start_indices` must have one entry per axis of `inputs`. "
                         f"Received: start_indices={start_indices}, "
                         f"inputs.shape={shape(inputs)}")
    region = tuple(builtins.slice(s, s + n) for s, n in zip(starts, shape(updates)))
    written = _p.ScatterAdd.apply(updates, region, tuple(shape(inputs)))
    mask = np.zeros(tuple(shape(inputs)), dtype=bool)
    mask[region] = True
    return where(mask, written, inputs)


export(globals(), __all__)
