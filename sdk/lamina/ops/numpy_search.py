"""Counting, binning and searching ops of ``keras.ops.numpy``.

Indices and counts are int32, as Keras's. They carry no gradient; the values that
``unique`` returns and the weights that ``bincount`` sums do.
"""

from __future__ import annotations

import numpy as np

from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as shape
from lamina.ops.manipulation import reshape, take
from lamina.ops.math import multiply, where
from lamina.ops.numpy_dtypes import as_dtype, dtype_of, float_result_dtype
from lamina.ops.reduction import sum

__all__ = [
    "argpartition", "bincount", "digitize", "histogram", "isin", "searchsorted", "unique",
]


def _int32(a):
    return constant(np.asarray(a).astype(np.int32))


def argpartition(x, kth, axis=-1):
    """Indices (int32) that partition ``x`` along ``axis`` around its ``kth`` element: the
    ``kth`` index is in sorted position, smaller values before it, larger after."""
    return _int32(np.argpartition(_data(x), kth, axis=axis))


def bincount(x, weights=None, minlength=0, sparse=False):
    """Count (or sum ``weights`` of) each non-negative integer in ``x``.

    Args:
        x: 1-D integer tensor, or 2-D to count each row.
        weights: optional tensor shaped like ``x``; its sums are differentiable.
        minlength: smallest length of the output's last axis.
        sparse: not supported (Lamina has no sparse tensors).

    Returns:
        int32 counts, or sums in ``weights``' dtype, with ``max(x) + 1`` (at least
        ``minlength``) bins on the last axis.

    Raises:
        ValueError: for negative values, ``sparse=True`` or an input of rank > 2.
    """
    if sparse:
        raise ValueError("bincount has no sparse output in Lamina. Received: sparse=True")
    ids = np.asarray(_data(x))
    if ids.ndim not in (1, 2) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError("bincount takes a 1-D or 2-D integer tensor. Received: "
                         f"x.shape={ids.shape}, x.dtype={ids.dtype}")
    if ids.size and ids.min() < 0:
        raise ValueError(f"bincount counts non-negative integers. Received: min(x)={ids.min()}")
    length = int(np.max([minlength, (ids.max() + 1) if ids.size else 0]))
    hits = ids[..., None] == np.arange(length)  # (..., n, length)
    if weights is None:
        return _int32(hits.sum(axis=-2))
    weights = as_dtype(weights, dtype_of(weights))
    mask = hits.astype(dtype_of(weights))
    return sum(multiply(reshape(weights, shape(weights) + (1,)), mask), axis=-2)


def digitize(x, bins):
    """Index (int32) of the bin of each value: ``bins[i-1] <= x < bins[i]`` for increasing
    ``bins``."""
    return _int32(np.digitize(_data(x), np.asarray(_data(bins))))


def searchsorted(sorted_sequence, values, side="left"):
    """Indices (int32) where ``values`` go in the 1-D ``sorted_sequence`` to keep it sorted.

    Raises:
        ValueError: if ``side`` is not "left" or "right", or the sequence is not 1-D.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right'. Received: side={side!r}")
    seq = np.asarray(_data(sorted_sequence))
    if seq.ndim != 1:
        raise ValueError("searchsorted takes a 1-D sorted_sequence. Received: "
                         f"sorted_sequence.shape={seq.shape}")
    return _int32(np.searchsorted(seq, _data(values), side=side))


def histogram(x, bins=10, range=None):  # noqa: A002 - Keras's name
    """Counts (int32) of ``x`` in ``bins`` equal bins over ``range`` (default: the
    data's), and the ``bins + 1`` edges (float).

    Raises:
        ValueError: for a non-positive ``bins`` or a ``range`` with min > max.
    """
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer. Received: bins={bins!r}")
    if range is not None and range[0] > range[1]:
        raise ValueError(f"range must be (min, max) with min <= max. Received: range={range}")
    values = np.asarray(_data(x))
    counts, edges = np.histogram(values, bins=bins, range=range)
    return _int32(counts), constant(edges.astype(float_result_dtype(x)))


def isin(x1, x2, assume_unique=False, invert=False):
    """True where an element of ``x1`` occurs in ``x2`` (False with ``invert``)."""
    return constant(np.isin(_data(x1), _data(x2), assume_unique=assume_unique,
                            invert=invert))


def unique(x, sorted=True, return_index=False, return_inverse=False,  # noqa: A002
           return_counts=False, axis=None, size=None, fill_value=None):
    """The distinct values (or slices along ``axis``) of ``x``, in ascending order.

    Args:
        x: input tensor.
        sorted: Keras's flag; the values always come sorted, which satisfies it.
        return_index: also return the (int32) index of each value's first occurrence.
        return_inverse: also return, for each element of ``x``, the index of its value
            (shaped like ``x``, or like ``x.shape[axis]`` with ``axis``).
        return_counts: also return how often each value occurs.
        axis: find distinct slices along this axis; None flattens ``x``.
        size: pad (with ``fill_value``) or truncate the results to this length.
        fill_value: the value that pads the unique values (default: the smallest one);
            indices and counts are padded with 0.

    Returns:
        The unique values (differentiable, gathered from ``x``) alone, or a tuple of
        them and the requested extras in the order index, inverse, counts.
    """
    d = np.asarray(_data(x))
    _, index, inverse, counts = np.unique(d, return_index=True, return_inverse=True,
                                          return_counts=True, axis=axis)
    values = take(x, index, axis=axis)
    inverse = inverse.reshape(d.shape if axis is None else (d.shape[axis],))
    if size is not None:
        values, index, counts = _resize(values, index, counts, size, fill_value, axis)
    extras = [_int32(a) for a, wanted in ((index, return_index), (inverse, return_inverse),
                                          (counts, return_counts)) if wanted]
    return (values, *extras) if extras else values


def _resize(values, index, counts, size, fill_value, axis):
    n = len(index)
    ax = 0 if axis is None else axis
    if size <= n:
        return take(values, np.arange(size), axis=ax), index[:size], counts[:size]
    keep = take(values, np.concatenate([np.arange(n), np.zeros(size - n, np.intp)]), axis=ax)
    if fill_value is not None:
        pad_rows = np.arange(size) >= n
        view = [1] * len(shape(keep))
        view[ax] = size
        keep = where(pad_rows.reshape(view),
                     np.asarray(fill_value, dtype=dtype_of(values)), keep)
    pad = np.zeros(size - n, dtype=index.dtype)
    return keep, np.concatenate([index, pad]), np.concatenate([counts, pad])


export(globals(), __all__)
