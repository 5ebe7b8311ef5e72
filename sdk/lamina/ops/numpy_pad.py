"""``ops.pad``'s modes (``np.pad``'s), each differentiable.

``constant`` and ``empty`` are the ``Pad`` primitive; ``edge``, ``reflect``,
``symmetric`` and ``wrap`` gather ``x`` at the source index of every output element
(``np.pad`` of an index range), so the gradient scatters back through ``GetItem``;
``maximum``, ``minimum``, ``mean``, ``median`` and ``linear_ramp`` pad one axis at a time
with a statistic of what is already padded, as ``np.pad`` does.
"""

from __future__ import annotations

import numpy as np

from lamina.backend import primitives as _p
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as shape

__all__: list = []

_GATHERED = ("edge", "reflect", "symmetric", "wrap")
_STATISTICS = ("maximum", "minimum", "mean", "median")
MODES = ("constant", "empty", *_GATHERED, *_STATISTICS, "linear_ramp")


def _widths(pad_width, ndim):
    widths = np.asarray(_data(pad_width))
    if not np.issubdtype(widths.dtype, np.integer) or np.any(widths < 0):
        raise ValueError("pad_width must hold non-negative integers. Received: "
                         f"pad_width={pad_width!r}")
    try:
        return [(int(lo), int(hi)) for lo, hi in np.broadcast_to(widths, (ndim, 2))]
    except ValueError:
        raise ValueError(f"pad_width must broadcast to ({ndim}, 2) for a rank-{ndim} input. "
                         f"Received: pad_width={pad_width!r}") from None


def pad_modes(x, pad_width, mode="constant", constant_values=None):
    """``np.pad(x, pad_width, mode, constant_values=...)`` as a differentiable op."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
    if constant_values is not None and mode != "constant":
        raise ValueError("Argument `constant_values` can only be provided when "
                         f"`mode == 'constant'`. Received: mode={mode}")
    widths = _widths(pad_width, len(shape(x)))
    if mode in ("constant", "empty"):
        value = 0 if constant_values is None else _data(constant_values)
        return _p.Pad.apply(x, tuple(widths), constant_values=value)
    if mode in _GATHERED:
        index = [np.pad(np.arange(n), w, mode=mode) for n, w in zip(shape(x), widths)]
        return _p.GetItem.apply(x, np.ix_(*index))
    out = x
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            out = _pad_axis(out, axis, lo, hi, mode)
    return out


def _pad_axis(x, axis, lo, hi, mode):
    # Imported here: the reductions import ``manipulation``, which imports this module.
    from lamina.ops import numpy_stats, reduction
    from lamina.ops.math import multiply
    from lamina.ops.numpy_dtypes import as_dtype, dtype_of

    dt = dtype_of(x)
    n = shape(x)[axis]

    def ramp(edge, k, width):
        # linear_ramp's end value is 0: ``k / width`` of the way from it to the edge.
        view = [1] * len(shape(x))
        view[axis] = len(k)
        if not np.issubdtype(dt, np.inexact):  # integers truncate, as np.pad's
            return as_dtype(np.asarray(_data(edge)) * (k / width).reshape(view), dt)
        return multiply(edge, (k / width).astype(dt).reshape(view))

    def take(start):
        index = [slice(None)] * len(shape(x))
        index[axis] = slice(start, start + 1)
        return _p.GetItem.apply(x, tuple(index))

    if mode == "linear_ramp":
        left = ramp(take(0), np.arange(lo), max(lo, 1))
        right = ramp(take(n - 1), np.arange(hi)[::-1], max(hi, 1))
    else:
        stat = {"maximum": reduction.max, "minimum": reduction.min, "mean": reduction.mean,
                "median": numpy_stats.median}[mode](x, axis=axis, keepdims=True)
        if not np.issubdtype(dt, np.inexact):
            stat = np.round(np.asarray(_data(stat)))
        stat = as_dtype(stat, dt)
        sizes = list(shape(x))
        sizes[axis] = lo
        left = _p.BroadcastTo.apply(stat, tuple(sizes))
        sizes[axis] = hi
        right = _p.BroadcastTo.apply(stat, tuple(sizes))
    return _p.Concatenate.apply(left, x, right, axis=axis)
