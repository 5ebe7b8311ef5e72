"""Gathers by computed indices: ``take_along_axis``, ``slice``, sorting and ``top_k``.

Values are gathered with ``getitem``, so their gradient scatters back through the
``GetItem`` primitive; the indices themselves carry no gradient.
"""

from __future__ import annotations

import builtins

import numpy as np

from lamina.backend.tensor import Tensor
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.manipulation import getitem, reshape

__all__ = ["argsort", "nonzero", "slice", "sort", "take_along_axis", "top_k"]


def take_along_axis(x, indices, axis=None):
    """``np.take_along_axis``: pick ``indices`` along ``axis``, broadcasting the others."""
    indices = np.asarray(_data(indices)).astype(np.intp, copy=False)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ndim = len(shape(x))
    axis %= ndim
    index = tuple(
        indices if d == axis else np.arange(n).reshape([-1 if k == d else 1 for k in range(ndim)])
        for d, n in enumerate(shape(x)))
    return getitem(x, index)


def slice(inputs, start_indices, shape):  # noqa: A001 - Keras's names
    """The block of ``shape`` starting at ``start_indices`` (a size of -1: to the end)."""
    if len(start_indices) != len(shape):
        raise ValueError(
            "start_indices and shape must have the same length. Received: "
            f"start_indices={start_indices}, shape={shape}")
    index = tuple(builtins.slice(int(s), None if int(n) == -1 else int(s) + int(n))
                  for s, n in zip(start_indices, shape))
    return getitem(inputs, index)


def argsort(x, axis=-1):
    """Indices that sort ``x`` along ``axis`` (stable), int32 as Keras."""
    return Tensor(np.argsort(_data(x), axis=axis, kind="stable").astype(np.int32))


def sort(x, axis=-1):
    """``x`` sorted along ``axis``; the gradient follows each value to its place."""
    return take_along_axis(x, np.argsort(_data(x), axis=axis, kind="stable"), axis=axis)


def top_k(x, k, sorted=True):  # noqa: A002 - Keras's name
    """The ``k`` largest values along the last axis and their (int32) indices.

    Values come in descending order; among equal values the lower index comes first.
    The values are differentiable, the indices are not.
    """
    d = np.asarray(_data(x))
    order = np.argsort(-d if np.issubdtype(d.dtype, np.signedinteger) or
                       np.issubdtype(d.dtype, np.floating) else ~d, axis=-1, kind="stable")
    indices = order[..., :k]
    return take_along_axis(x, indices, axis=-1), Tensor(indices.astype(np.int32))


def nonzero(x):
    """The indices of the non-zero elements, one int Tensor per axis (no gradient)."""
    return tuple(Tensor(i) for i in np.nonzero(_data(x)))


export(globals(), __all__)
