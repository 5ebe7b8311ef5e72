"""``fake_quant_with_min_max_vars``: quantise-dequantise with a straight-through gradient.

The forward pass matches TensorFlow's ``fake_quant_with_min_max_vars`` (the range is
nudged so that zero is exactly representable). The gradient is Keras's: the upstream
gradient passes to ``inputs`` inside ``[nudged_min, nudged_max]``; what falls at or
below ``nudged_min`` goes to ``min_vals`` and at or above ``nudged_max`` to
``max_vals`` (summed over every axis but ``axis``).
"""

from __future__ import annotations

import numpy as np

from lamina.quantizers._arrays import to_numpy


def _adjust_and_nudge(min_range, max_range, num_bits, narrow_range):
    dtype = np.result_type(min_range.dtype, np.float32)
    min_range, max_range = min_range.astype(dtype), max_range.astype(dtype)
    quant_max = (1 << num_bits) - 1
    quant_min = 1 if narrow_range else 0
    diff = max_range - min_range
    scale = diff / dtype.type(quant_max - quant_min)
    inv_scale = dtype.type(quant_max - quant_min) / diff
    zero_point = np.clip(quant_min - min_range / scale, quant_min, quant_max)
    nudged_zero = np.round(zero_point)
    nudged_min = (quant_min - nudged_zero) * scale
    nudged_max = (quant_max - nudged_zero) * scale
    return nudged_min, nudged_max, scale, inv_scale


def fake_quant_with_min_max_vars(inputs, min_vals, max_vals, num_bits=8, narrow_range=False,
                                 axis=None):
    """Fake-quantise ``inputs`` to ``num_bits`` levels within ``[min_vals, max_vals]``.

    Args:
        inputs: the tensor (float).
        min_vals: minimum of the range: a scalar, or per-channel values that broadcast
            against ``inputs`` (shape ``(channels,)`` for the last axis).
        max_vals: maximum of the range, like ``min_vals``.
        num_bits: bits of the quantisation (2 to 16).
        narrow_range: use ``[1, 2**num_bits - 1]`` instead of ``[0, 2**num_bits - 1]``.
        axis: the channel axis of per-channel ranges (``None`` for a scalar range).

    Returns:
        The fake-quantised tensor, of ``inputs``' dtype; differentiable with respect to
        ``inputs``, ``min_vals`` and ``max_vals`` (straight-through estimator).

    Raises:
        ValueError: for ``num_bits`` outside ``[2, 16]`` or an ``axis`` out of range.
    """
    from lamina import ops

    num_bits = int(num_bits)
    if not 2 <= num_bits <= 16:
        raise ValueError(f"num_bits must be between 2 and 16. Received: num_bits={num_bits}")
    ndim = len(getattr(inputs, "shape", np.shape(inputs)))
    if axis is not None:
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis {axis} is out of bounds for an input of rank {ndim}. "
                             f"Received: axis={axis}")
        axis = axis % ndim
    inputs, min_vals, max_vals = (ops.convert_to_tensor(v) if not hasattr(v, "shape")
                                  or isinstance(v, np.ndarray) else v
                                  for v in (inputs, min_vals, max_vals))

    @ops.custom_gradient
    def fake_quant(x, min_val, max_val):
        xs, mn, mx = to_numpy(x), to_numpy(min_val), to_numpy(max_val)
        nudged_min, nudged_max, scale, inv_scale = _adjust_and_nudge(mn, mx, num_bits,
                                                                      narrow_range)
        quant_zero = np.floor(-nudged_min * inv_scale + 0.5)
        shifted = np.clip(xs.astype(nudged_min.dtype), nudged_min, nudged_max) - nudged_min
        result = (np.floor(shifted * inv_scale - quant_zero + 0.5) * scale).astype(xs.dtype)
        inside = (xs >= nudged_min) & (xs <= nudged_max)
        below, above = xs <= nudged_min, xs >= nudged_max
        reduce_axes = tuple(i for i in range(xs.ndim) if i != axis)

        def grad(upstream):
            g = to_numpy(upstream)
            dx = np.where(inside, g, 0.0).astype(xs.dtype)
            dmin = np.where(below, g, 0.0).sum(axis=reduce_axes if axis is not None else None)
            dmax = np.where(above, g, 0.0).sum(axis=reduce_axes if axis is not None else None)
            return (dx, np.reshape(dmin, mn.shape).astype(mn.dtype),
                    np.reshape(dmax, mx.shape).astype(mx.dtype))

        return ops.convert_to_tensor(result), grad

    return fake_quant(inputs, min_vals, max_vals)
