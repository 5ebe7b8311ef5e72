"""Reductions over axes (Keras accepts an int, a tuple or a list of axes)."""

from __future__ import annotations

import numpy as np

from lamina.backend import numeric as _n
from lamina.backend import primitives as _p
from lamina.backend.tensor import Tensor
from lamina.ops._common import axis_arg as _axis
from lamina.ops._common import count as _count
from lamina.ops._common import data as _data
from lamina.ops._common import export, static_shape
from lamina.ops._common import float_dtype as _float_dtype
from lamina.ops.core import cast
from lamina.ops.manipulation import broadcast_to, getitem, reshape, squeeze, transpose
from lamina.ops.math import add, divide, exp, log, multiply, negative, sqrt, square, subtract

__all__ = [
    "all", "amax", "amin", "any", "argmax", "argmin", "average", "count_nonzero", "cumprod",
    "cumsum", "logsumexp", "max", "mean", "min", "norm", "prod", "std", "sum", "var",
]


def _int_accumulator(dtype) -> np.dtype:
    """Keras's dtype for integer sums and products: at least 32 bits, else unchanged."""
    if dtype == np.bool_ or dtype in (np.int8, np.int16):
        return np.dtype("int32")
    return np.dtype("uint32") if dtype in (np.uint8, np.uint16) else np.dtype(dtype)


def _integer(x) -> bool:
    kind = np.asarray(_data(x)).dtype.kind
    return kind in "biu"


def sum(x, axis=None, keepdims=False):  # noqa: A001
    if _integer(x):  # no gradient; numpy would widen int32 to int64
        d = np.asarray(_data(x))
        return Tensor(np.asarray(np.sum(d, axis=_axis(axis), keepdims=keepdims,
                                        dtype=_int_accumulator(d.dtype))))
    return _p.Sum.apply(x, axis=_axis(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    axis = _axis(axis)
    return divide(sum(x, axis=axis, keepdims=keepdims),
                  np.asarray(_count(x, axis), dtype=_float_dtype(x)))


def max(x, axis=None, keepdims=False, initial=None):  # noqa: A001
    """Largest value over ``axis``; with ``initial``, at least ``initial`` (and ``initial``
    for an empty reduction)."""
    axis = _axis(axis)
    if initial is not None and _count(x, axis) == 0:
        d = np.asarray(_data(x))
        return Tensor(np.max(d, axis=axis, keepdims=keepdims, initial=initial))
    out = _p.Max.apply(x, axis=axis, keepdims=keepdims)
    if initial is None:
        return out
    return _p.Maximum.apply(out, np.asarray(initial, dtype=out.dtype))


def min(x, axis=None, keepdims=False, initial=None):  # noqa: A001
    """Smallest value over ``axis``; with ``initial``, at most ``initial``."""
    if np.asarray(_data(x)).dtype == np.bool_:  # no negation of bools (nor gradient)
        return Tensor(np.asarray(np.min(_data(x), axis=_axis(axis), keepdims=keepdims,
                                        **({} if initial is None else {"initial": initial}))))
    neg_initial = None if initial is None else -np.asarray(initial)
    return negative(max(negative(x), axis=axis, keepdims=keepdims, initial=neg_initial))


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


def argmax(x, axis=None, keepdims=False):
    """Index (int32) of the largest value along ``axis`` (of the flattened ``x`` if None)."""
    return Tensor(np.argmax(_data(x), axis=axis, keepdims=keepdims).astype(np.int32))


def argmin(x, axis=None, keepdims=False):
    """Index (int32) of the smallest value along ``axis`` (of the flattened ``x`` if None)."""
    return Tensor(np.argmin(_data(x), axis=axis, keepdims=keepdims).astype(np.int32))


amax = max
amin = min


def average(x, axis=None, weights=None):
    """Weighted mean over ``axis``; 1-D ``weights`` may match ``x.shape[axis]`` only."""
    if weights is None:
        return mean(x, axis=axis)
    x_shape, w_shape = static_shape(x), static_shape(weights)
    if axis is not None and len(w_shape) == 1 and len(x_shape) > 1:
        weights = reshape(weights, [-1 if d == axis % len(x_shape) else 1
                                    for d in range(len(x_shape))])
    weights = broadcast_to(weights, np.broadcast_shapes(x_shape, static_shape(weights)))
    return divide(sum(multiply(x, weights), axis=axis), sum(weights, axis=axis))


def _scan_input(x, axis, dtype):
    current = np.asarray(_data(x)).dtype
    x = cast(x, dtype or ("int32" if current == np.bool_ else current))
    return (reshape(x, (-1,)), 0) if axis is None else (x, axis % len(static_shape(x)))


def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along ``axis`` (of the flattened ``x`` when None)."""
    x, axis = _scan_input(x, axis, dtype)
    if _integer(x):
        return Tensor(np.cumsum(x.data, axis=axis, dtype=x.data.dtype))
    return _n.CumSum.apply(x, axis=axis)


def cumprod(x, axis=None, dtype=None):
    """Cumulative product along ``axis`` (of the flattened ``x`` when None)."""
    x, axis = _scan_input(x, axis, dtype)
    if _integer(x):
        return Tensor(np.cumprod(x.data, axis=axis, dtype=x.data.dtype))
    return _n.CumProd.apply(x, axis=axis)


def prod(x, axis=None, keepdims=False, dtype=None):
    """Product over ``axis``: the last cumulative product (exact gradient with zeros)."""
    if dtype is not None:
        x = cast(x, dtype)
    if _integer(x):
        d = np.asarray(_data(x))
        return Tensor(np.asarray(np.prod(d, axis=_axis(axis), keepdims=keepdims,
                                         dtype=_int_accumulator(d.dtype))))
    s = static_shape(x)
    axes = tuple(range(len(s))) if axis is None else tuple(
        a % len(s) for a in ((axis,) if isinstance(axis, int) else axis))
    if _count(x, axes) == 0:
        return Tensor(np.prod(_data(x), axis=axes, keepdims=keepdims))
    kept = [d for d in range(len(s)) if d not in axes]
    rows = reshape(transpose(x, kept + list(axes)), tuple(s[d] for d in kept) + (-1,))
    out = getitem(_n.CumProd.apply(rows, axis=-1), (Ellipsis, -1))
    if keepdims:
        out = reshape(out, tuple(1 if d in axes else s[d] for d in range(len(s))))
    return out


# -- no gradient --------------------------------------------------------------------------
def any(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return Tensor(np.any(_data(x), axis=_axis(axis), keepdims=keepdims))


def all(x, axis=None, keepdims=False):  # noqa: A001 - Keras's name
    return Tensor(np.all(_data(x), axis=_axis(axis), keepdims=keepdims))


def count_nonzero(x, axis=None):
    return Tensor(np.asarray(np.count_nonzero(_data(x), axis=_axis(axis)), dtype=np.int32))


export(globals(), __all__)
