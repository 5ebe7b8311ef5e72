"""Keras ops without a better home: ``erfc``, ``erfinv``, ``cdist``, ``in_top_k``,
``saturate_cast``, ``polar``, and the inspectors ``dtype`` and ``is_tensor``."""

from __future__ import annotations

import numpy as np

from lamina.backend import special as _s
from lamina.backend.config import standardize_dtype
from lamina.backend.keras_tensor import KerasTensor
from lamina.backend.tensor import Tensor
from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as shape
from lamina.ops.core import cast, convert_to_tensor
from lamina.ops.manipulation import expand_dims
from lamina.ops.math import clip, sqrt, square
from lamina.ops.reduction import sum as _sum

__all__ = [
    "cdist", "dtype", "erfc", "erfinv", "in_top_k", "is_tensor", "polar", "saturate_cast",
]


def _floating(x):
    x = convert_to_tensor(x)
    if np.issubdtype(x.data.dtype, np.floating):
        return x
    return cast(x, "float32")


def erfc(x):
    """The complementary error function ``1 - erf(x)``, accurate in the tail.

    Args:
        x: a Tensor (integers become float32).

    Returns:
        ``erfc(x)``, differentiable.
    """
    return _s.Erfc.apply(_floating(x))


def erfinv(x):
    """The inverse error function.

    Args:
        x: a Tensor with values in ``[-1, 1]`` (integers become float32).

    Returns:
        ``erfinv(x)``: ``±inf`` at ``±1``, NaN outside ``[-1, 1]``; differentiable.
    """
    return _s.Erfinv.apply(_floating(x))


def cdist(x, y):
    """Euclidean distances between rows.

    Args:
        x: ``(..., P, M)`` points.
        y: ``(..., R, M)`` points.

    Returns:
        ``(..., P, R)`` distances (differentiable away from zero distance).

    Raises:
        ValueError: for inputs of rank < 2 or different last sizes.
    """
    if len(shape(x)) < 2 or len(shape(y)) < 2:
        raise ValueError("`cdist` inputs must have rank >= 2. Received: "
                         f"x.shape={shape(x)}, y.shape={shape(y)}")
    if shape(x)[-1] != shape(y)[-1]:
        raise ValueError("Last dimension of inputs to `cdist` must match. Received: "
                         f"x.shape={shape(x)}, y.shape={shape(y)}")
    diff = expand_dims(x, -2) - expand_dims(y, -3)
    return sqrt(_sum(square(diff), axis=-1))


def in_top_k(targets, predictions, k):
    """Whether each target's prediction is among the ``k`` largest of its row, as a bool
    Tensor: its rank, one plus the number of strictly larger predictions, is at most
    ``k`` (so ties count as in; a NaN target prediction ranks last), as Keras's JAX
    backend.

    Args:
        targets: ``(batch_size,)`` class indices.
        predictions: ``(batch_size, num_classes)`` scores.
        k: how many of the top scores count.

    Returns:
        ``(batch_size,)`` bool Tensor (no gradient).
    """
    t = np.asarray(_data(targets)).astype(np.intp)
    p = np.asarray(_data(predictions))
    at_label = np.take_along_axis(p, t[:, None], axis=-1)
    at_label = np.where(np.isnan(at_label), -np.inf, at_label)
    rank = 1 + np.sum(p > at_label, axis=-1)
    return constant(rank <= k)


def _limits(name):
    if name == "bool":
        return 0, 1
    if "int" in name:
        info = np.iinfo(name)
    else:
        info = np.finfo(name)
    return info.min, info.max


def saturate_cast(x, dtype):
    """Cast to ``dtype`` after clipping to its range (no wrap-around on overflow).

    Integer targets are clipped exactly (``3e9`` saturates to ``2147483647`` in int32, as
    Keras's JAX backend gives); float targets are clipped differentiably, so infinities
    become the largest finite value.

    Args:
        x: a Tensor.
        dtype: the target dtype name.

    Returns:
        ``x`` clipped and cast to ``dtype``.
    """
    dtype = standardize_dtype(dtype)
    x = convert_to_tensor(x)
    out_min, out_max = _limits(dtype)
    if dtype == "bool" or "int" in dtype:
        # Not differentiable: clip exactly (in float64 or the integers), then cast; the
        # nudge keeps int64 bounds that float64 rounds up inside the range.
        value = x.data
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float64)
            high = np.float64(out_max)
            if int(high) > out_max:
                high = np.nextafter(high, 0)
            value = np.clip(value, np.float64(out_min), high)
        else:
            value = np.clip(value, max(out_min, _limits(value.dtype.name)[0]),
                            min(out_max, _limits(value.dtype.name)[1]))
        return constant(value.astype(dtype))
    in_min, in_max = _limits(x.data.dtype.name)
    low = np.asarray(max(in_min, out_min), dtype=x.data.dtype)
    high = np.asarray(min(in_max, out_max), dtype=x.data.dtype)
    return cast(clip(x, low, high), dtype)


def polar(abs_, angle):
    """The complex number with magnitude ``abs_`` and phase ``angle``.

    Args:
        abs_: magnitudes.
        angle: phases in radians.

    Returns:
        ``abs_ * (cos(angle) + i sin(angle))``, complex64 for float32 inputs (no
        gradient).
    """
    r = np.asarray(_data(convert_to_tensor(abs_)))
    a = np.asarray(_data(convert_to_tensor(angle)))
    out = r * np.cos(a) + 1j * (r * np.sin(a))
    return constant(out.astype(np.result_type(r.dtype, a.dtype, np.complex64)))


def dtype(x):
    """The standardized dtype name of ``x``.

    Args:
        x: a Tensor, KerasTensor or array-like.

    Returns:
        A string such as ``"float32"`` or ``"int32"``.
    """
    if isinstance(x, (Tensor, KerasTensor)):
        return standardize_dtype(x.dtype)
    return standardize_dtype(np.asarray(x).dtype)


def is_tensor(x):
    """Whether ``x`` is a Lamina tensor.

    Args:
        x: anything.

    Returns:
        True for a ``Tensor`` or ``Variable`` (not for ndarrays or KerasTensors).
    """
    return isinstance(x, Tensor)


export(globals(), [n for n in __all__ if n not in {"dtype", "is_tensor"}])
