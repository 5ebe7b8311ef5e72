"""Statistics of ``keras.ops.numpy``: quantiles, NaN-ignoring reductions, ``ptp``,
``trapezoid`` and ``corrcoef``.

Quantiles sort (a gather, so the gradient follows each value to its rank) and
interpolate between two order statistics; the ``nan*`` reductions replace NaN by the
reduction's neutral element with ``where``. Integer inputs of mean-like statistics give
``floatx()``, as in Keras.
"""

from __future__ import annotations

import numpy as np

from lamina.ops._common import axis_arg as _axis
from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as shape
from lamina.ops.indexing import take_along_axis
from lamina.ops.linalg import matmul
from lamina.ops.manipulation import getitem, moveaxis, reshape, transpose
from lamina.ops.math import add, clip, divide, multiply, sqrt, subtract, where
from lamina.ops.numpy_dtypes import as_dtype, dtype_of, float_result_dtype
from lamina.ops.reduction import (
    argmax,
    argmin,
    cumprod,
    cumsum,
    max,
    mean,
    min,
    prod,
    sum,
)

__all__ = [
    "corrcoef", "median", "nanargmax", "nanargmin", "nancumprod", "nancumsum", "nanmax",
    "nanmean", "nanmedian", "nanmin", "nanpercentile", "nanprod", "nanquantile", "nanstd",
    "nansum", "nanvar", "percentile", "ptp", "quantile", "trapezoid",
]

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _axes(x, axis):
    ndim = len(shape(x))
    if axis is None:
        return tuple(range(ndim))
    axis = _axis(axis)
    return tuple(sorted(a % ndim for a in ((axis,) if isinstance(axis, int) else axis)))


def _float(x):
    return as_dtype(x, float_result_dtype(x))


# -- quantiles -------------------------------------------------------------------------
def _quantile(x, q, axis, method, keepdims, ignore_nan):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}. Received: method={method!r}")
    q_arr = np.asarray(_data(q), dtype=np.float64)
    if np.any((q_arr < 0) | (q_arr > 1)) or np.any(np.isnan(q_arr)):
        raise ValueError(f"Quantiles must be in the range [0, 1]. Received: q={q!r}")
    x = _float(x)
    s = shape(x)
    axes = _axes(x, axis)
    kept = [d for d in range(len(s)) if d not in axes]
    rows = reshape(transpose(x, kept + list(axes)), tuple(s[d] for d in kept) + (-1,))
    values = np.asarray(_data(rows))
    # np.sort puts NaN last: the first ``valid`` entries of each row are the numbers.
    order = np.argsort(values, axis=-1, kind="stable")
    ordered = take_along_axis(rows, order, axis=-1)
    nan_rows = np.isnan(values)
    valid = (values.shape[-1] - nan_rows.sum(-1) if ignore_nan
             else np.full(values.shape[:-1], values.shape[-1]))[..., None]
    position = q_arr.reshape(-1) * np.maximum(valid - 1, 0)
    lo = np.floor(position).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(valid - 1, 0))
    frac = (position - lo).astype(dtype_of(x))
    if method == "nearest":
        lo = hi = np.round(position).astype(np.intp)
    elif method == "lower":
        hi = lo
    elif method == "higher":
        lo = hi = np.ceil(position).astype(np.intp)
    elif method == "midpoint":
        hi = np.ceil(position).astype(np.intp)
    v_lo = take_along_axis(ordered, lo, axis=-1)
    v_hi = take_along_axis(ordered, hi, axis=-1)
    if method == "linear":
        out = add(v_lo, multiply(subtract(v_hi, v_lo), frac))
    elif method == "midpoint":
        out = multiply(add(v_lo, v_hi), np.asarray(0.5, dtype=dtype_of(x)))
    else:
        out = v_lo
    undefined = (valid == 0) if ignore_nan else nan_rows.any(-1, keepdims=True)
    out = where(undefined, np.asarray(np.nan, dtype_of(x)), out)
    out = moveaxis(out, -1, 0)  # (q, kept...)
    if keepdims:
        out = reshape(out, (-1,) + tuple(1 if d in axes else s[d] for d in range(len(s))))
    return reshape(out, q_arr.shape + tuple(shape(out)[1:]))


def quantile(x, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th quantiles of ``x`` over ``axis`` (``np.quantile``); NaN propagates.

    Args:
        x: input tensor.
        q: a quantile or 1-D sequence of quantiles in [0, 1]; their axis comes first.
        axis: axis or axes to reduce; None for all.
        method: "linear", "lower", "higher", "midpoint" or "nearest".
        keepdims: keep the reduced axes with size 1.

    Returns:
        The quantiles, float (integer inputs give ``floatx()``).

    Raises:
        ValueError: for ``q`` outside [0, 1] or an unknown ``method``.
    """
    return _quantile(x, q, axis, method, keepdims, False)


def nanquantile(x, q, axis=None, method="linear", keepdims=False):
    """:func:`quantile` ignoring NaN (NaN where a slice holds nothing else)."""
    return _quantile(x, q, axis, method, keepdims, True)


def _percent(q):
    q_arr = np.asarray(_data(q), dtype=np.float64)
    if np.any((q_arr < 0) | (q_arr > 100)):
        raise ValueError(f"Percentiles must be in the range [0, 100]. Received: q={q!r}")
    return q_arr / 100.0


def percentile(x, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th percentiles (``q`` in [0, 100]); see :func:`quantile`."""
    return quantile(x, _percent(q), axis, method, keepdims)


def nanpercentile(x, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th percentiles ignoring NaN; see :func:`nanquantile`."""
    return nanquantile(x, _percent(q), axis, method, keepdims)


def median(x, axis=None, keepdims=False):
    """The median over ``axis`` (the mean of the two middle values for even counts)."""
    return quantile(x, 0.5, axis=axis, keepdims=keepdims)


def nanmedian(x, axis=None, keepdims=False):
    """The median over ``axis``, ignoring NaN."""
    return nanquantile(x, 0.5, axis=axis, keepdims=keepdims)


# -- NaN-ignoring reductions -------------------------------------------------------------
def _nan_mask(x):
    return np.isnan(np.asarray(_data(x)))


def _fill_nan(x, value):
    mask = _nan_mask(x)
    if not mask.any():
        return x
    return where(mask, np.asarray(value, dtype=dtype_of(x)), x)


def nansum(x, axis=None, keepdims=False):
    """Sum over ``axis`` treating NaN as 0."""
    return sum(_fill_nan(x, 0), axis=axis, keepdims=keepdims)


def nanprod(x, axis=None, keepdims=False):
    """Product over ``axis`` treating NaN as 1."""
    return prod(_fill_nan(x, 1), axis=axis, keepdims=keepdims)


def nancumsum(x, axis=None, dtype=None):
    """Cumulative sum treating NaN as 0."""
    return cumsum(_fill_nan(x, 0), axis=axis, dtype=dtype)


def nancumprod(x, axis=None, dtype=None):
    """Cumulative product treating NaN as 1."""
    return cumprod(_fill_nan(x, 1), axis=axis, dtype=dtype)


def _valid_count(x, axis, keepdims):
    counts = np.sum(~_nan_mask(x), axis=_axis(axis), keepdims=keepdims)
    return np.asarray(counts, dtype=dtype_of(x))


def nanmean(x, axis=None, keepdims=False):
    """Mean over ``axis`` of the non-NaN entries (NaN where there are none)."""
    x = _float(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return divide(nansum(x, axis=axis, keepdims=keepdims),
                      _valid_count(x, axis, keepdims))


def nanvar(x, axis=None, keepdims=False):
    """Variance over ``axis`` of the non-NaN entries."""
    x = _float(x)
    # Centre the NaN-filled values and zero the NaN entries, so that no NaN reaches the
    # backward pass (a NaN times a zero cotangent would poison the whole reduction).
    centered = subtract(_fill_nan(x, 0), nanmean(x, axis=axis, keepdims=True))
    centered = where(_nan_mask(x), np.asarray(0, dtype=dtype_of(x)), centered)
    with np.errstate(invalid="ignore", divide="ignore"):
        return divide(sum(multiply(centered, centered), axis=axis, keepdims=keepdims),
                      _valid_count(x, axis, keepdims))


def nanstd(x, axis=None, keepdims=False):
    """Standard deviation over ``axis`` of the non-NaN entries."""
    return sqrt(nanvar(x, axis=axis, keepdims=keepdims))


def _nan_extreme(reduce, fill, x, axis, keepdims):
    mask = _nan_mask(x)
    if not mask.any():
        return reduce(x, axis=axis, keepdims=keepdims)
    out = reduce(_fill_nan(x, fill), axis=axis, keepdims=keepdims)
    all_nan = np.all(mask, axis=_axis(axis), keepdims=keepdims)
    return where(all_nan, np.asarray(np.nan, dtype=dtype_of(x)), out)


def nanmax(x, axis=None, keepdims=False):
    """Largest non-NaN value over ``axis`` (NaN where a slice is all NaN)."""
    return _nan_extreme(max, -np.inf, x, axis, keepdims)


def nanmin(x, axis=None, keepdims=False):
    """Smallest non-NaN value over ``axis`` (NaN where a slice is all NaN)."""
    return _nan_extreme(min, np.inf, x, axis, keepdims)


def _nan_arg(arg, fill, x, axis, keepdims):
    mask = _nan_mask(x)
    out = np.asarray(_data(arg(_fill_nan(x, fill), axis=axis, keepdims=keepdims)))
    # As Keras: -1 where a slice holds only NaN.
    all_nan = np.all(mask, axis=axis, keepdims=keepdims)
    return constant(np.where(all_nan, -1, out).astype(np.int32))


def nanargmax(x, axis=None, keepdims=False):
    """Index (int32) of the largest non-NaN value; -1 where a slice is all NaN."""
    return _nan_arg(argmax, -np.inf, x, axis, keepdims)


def nanargmin(x, axis=None, keepdims=False):
    """Index (int32) of the smallest non-NaN value; -1 where a slice is all NaN."""
    return _nan_arg(argmin, np.inf, x, axis, keepdims)


# -- others ------------------------------------------------------------------------------
def ptp(x, axis=None, keepdims=False):
    """Range (maximum minus minimum) over ``axis``."""
    return subtract(max(x, axis=axis, keepdims=keepdims), min(x, axis=axis, keepdims=keepdims))


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """Integral of ``y`` along ``axis`` by the trapezoid rule, at sample points ``x`` (or
    spacing ``dx``)."""
    y = _float(y)
    n = shape(y)[axis]
    ndim = len(shape(y))

    def part(lo, hi, t, t_ndim):
        index = [slice(None)] * t_ndim
        index[axis % t_ndim if t_ndim == ndim else 0] = slice(lo, hi)
        return getitem(t, tuple(index))

    heights = add(part(1, n, y, ndim), part(0, n - 1, y, ndim))
    if x is None:
        widths = np.asarray(dx, dtype=dtype_of(y))
    else:
        x = as_dtype(x, dtype_of(y))
        x_ndim = len(shape(x))
        widths = subtract(part(1, None, x, x_ndim), part(0, -1, x, x_ndim))
        if x_ndim == 1 and ndim > 1:
            view = [1] * ndim
            view[axis] = -1
            widths = reshape(widths, view)
    half = np.asarray(0.5, dtype=dtype_of(y))
    return multiply(sum(multiply(heights, widths), axis=axis), half)


def corrcoef(x):
    """Pearson correlation coefficients of the rows of ``x`` (variables by observations)."""
    x = _float(x)
    one_d = len(shape(x)) == 1
    if one_d:
        x = reshape(x, (1, -1))
    centered = subtract(x, mean(x, axis=1, keepdims=True))
    cov = matmul(centered, transpose(centered))
    std = sqrt(getitem(cov, (np.arange(shape(cov)[0]), np.arange(shape(cov)[0]))))
    out = divide(divide(cov, reshape(std, (-1, 1))), reshape(std, (1, -1)))
    out = clip(out, -1.0, 1.0)
    return reshape(out, ()) if one_d else out


export(globals(), __all__)
