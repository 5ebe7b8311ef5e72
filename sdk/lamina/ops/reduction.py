"""Reductions over axes (Keras accepts an int, a tuple or a list of axes)."""

from __future__ import annotations

import numpy as np

from lamina.backend import primitives as _p
from lamina.backend.tensor import Tensor
from lamina.ops._common import axis_arg as _axis
from lamina.ops._common import count as _count
from lamina.ops._common import data as _data
from lamina.ops._common import export, static_shape
from lamina.ops._common import float_dtype as _float_dtype
from lamina.ops.manipulation import squeeze
from lamina.ops.math import add, divide, exp, log, negative, sqrt, square, subtract

__all__ = [
    "argmax", "argmin", "logsumexp", "max", "mean", "min", "norm", "std", "sum", "var",
]


def sum(x, axis=None, keepdims=False):  # noqa: A001
    return _p.Sum.apply(x, axis=_axis(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    axis = _axis(axis)
    return divide(sum(x, axis=axis, keepdims=keepdims),
                  np.asarray(_count(x, axis), dtype=_float_dtype(x)))


def max(x, axis=None, keepdims=False):  # noqa: A001
    return _p.Max.apply(x, axis=_axis(axis), keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return negative(max(negative(x), axis=axis, keepdims=keepdims))


def var(x, axis=None, keepdims=False):
    centered = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centered), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def logsumexp(x, axis=None, keepdims=False):
    axis = _axis(axis)
    shift = np.max(_data(x), axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)
    out = add(log(sum(exp(subtract(x, shift)), axis=axis, keepdims=True)), shift)
    if keepdims:
        return out
    return squeeze(out, axis=axis if axis is not None else tuple(range(len(static_shape(x)))))


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    if ord not in (None, 2, "euclidean", "fro"):
        raise ValueError(f"norm supports the euclidean norm only. Received: ord={ord!r}")
    return sqrt(sum(square(x), axis=axis, keepdims=keepdims))


def argmax(x, axis=-1):
    return Tensor(np.argmax(_data(x), axis=axis))


def argmin(x, axis=-1):
    return Tensor(np.argmin(_data(x), axis=axis))


export(globals(), __all__)
