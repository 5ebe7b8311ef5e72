"""Quantizers and int8/int4/float8 helpers, as ``keras.quantizers`` (Keras 3.15.1).

Quantisation itself is not differentiable (rounding); only
:func:`~lamina.quantizers.fake_quant_with_min_max_vars` has a (straight-through)
gradient. Results are Lamina Tensors, computed in numpy.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend.config import epsilon as _epsilon
from lamina.quantizers import _arrays
from lamina.quantizers._arrays import as_tensor

# Keras evaluates backend.epsilon() once, at import, for these defaults.
_DEFAULT_EPSILON = _epsilon()


class Quantizer:
    """Base class of quantizers: ``__call__`` maps a tensor to its quantised form.

    Args:
        output_dtype: dtype of the quantised values.
    """

    def __init__(self, output_dtype="int8"):
        self.output_dtype = output_dtype

    def __call__(self, x):
        """The identity in the base class."""
        return x

    @classmethod
    def from_config(cls, config):
        """Build the quantizer from :meth:`get_config`'s dict."""
        return cls(**config)

    def get_config(self):
        """The constructor arguments.

        Raises:
            NotImplementedError: in the base class (as Keras).
        """
        raise NotImplementedError(f"{self} does not implement get_config()")


def _axis_tuple(axis, ndim):
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(int(a) % ndim for a in axes)


def abs_max_quantize(inputs, axis, value_range=(-127, 127), dtype="int8",
                     epsilon=_DEFAULT_EPSILON, to_numpy=False):
    """Symmetric quantisation scaled by the absolute maximum along ``axis``.

    ``scale = value_range[1] / (max|x| + epsilon)``; ``q = clip(round(x * scale))``.

    Args:
        inputs: the tensor to quantise.
        axis: axis or axes reduced for the maximum.
        value_range: ``(min, max)`` of the quantised values.
        dtype: dtype of the quantised values.
        epsilon: added to the maximum (no division by zero).
        to_numpy: compute in numpy to save memory (Lamina always does; kept for Keras).

    Returns:
        ``(quantized, scale)``; ``scale`` keeps the input's dtype and reduced axes.
    """
    x = _arrays.to_numpy(inputs)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    axes = _axis_tuple(axis, x.ndim)
    scale = np.divide(value_range[1], np.add(np.max(np.abs(x), axis=axes, keepdims=True),
                                             epsilon)).astype(x.dtype)
    outputs = np.clip(np.round(np.multiply(x, scale)), value_range[0], value_range[1])
    return as_tensor(outputs.astype(dtype)), as_tensor(scale)


def abs_max_quantize_grouped_with_zero_point(inputs, block_size, value_range=(-8, 7),
                                             dtype="int8", epsilon=_DEFAULT_EPSILON,
                                             to_numpy=False):
    """Asymmetric quantisation of a 2D ``(input_dim, output_dim)`` kernel in groups of
    ``block_size`` rows, each with its own scale and zero point.

    Args:
        inputs: ``(input_dim, output_dim)`` weights.
        block_size: rows per group (the last group is zero-padded).
        value_range: ``(qmin, qmax)``, e.g. ``(-8, 7)`` for int4.
        dtype: dtype of the quantised values.
        epsilon: added to each group's range.
        to_numpy: kept for Keras (Lamina always computes in numpy).

    Returns:
        ``(quantized (input_dim, output_dim), scale (n_groups, output_dim),
        zero_point (n_groups, output_dim) int8)``.

    Raises:
        ValueError: if ``inputs`` is not 2D or ``block_size`` is not positive.
    """
    x = _arrays.to_numpy(inputs)
    if x.ndim != 2:
        raise ValueError("abs_max_quantize_grouped_with_zero_point expects 2D weights "
                         f"(input_dim, output_dim). Received: inputs.shape={x.shape}")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size <= 0:
        raise ValueError(f"block_size must be a positive integer. Received: "
                         f"block_size={block_size!r}")
    input_dim, output_dim = x.shape
    n_groups = math.ceil(input_dim / block_size)
    qmin, qmax = value_range
    padded = np.zeros((n_groups * block_size, output_dim), x.dtype)
    padded[:input_dim] = x
    grouped = padded.reshape(n_groups, block_size, output_dim)
    min_val = grouped.min(axis=1, keepdims=True)
    max_val = grouped.max(axis=1, keepdims=True)
    scale = ((max_val - min_val) + x.dtype.type(epsilon)) / x.dtype.type(qmax - qmin)
    zero_point = np.clip(np.round(-min_val / scale) + qmin, qmin, qmax)
    outputs = np.clip(np.round(grouped / scale) + zero_point, qmin, qmax).astype(dtype)
    outputs = outputs.reshape(n_groups * block_size, output_dim)[:input_dim]
    return (as_tensor(outputs), as_tensor(np.squeeze(scale, 1).astype(x.dtype)),
            as_tensor(np.squeeze(zero_point, 1).astype("int8")))


class AbsMaxQuantizer(Quantizer):
    """Quantizer applying :func:`abs_max_quantize`.

    Args:
        axis: deprecated default axis (pass ``axis`` to ``__call__``); ``-1`` if unset.
        value_range: ``(min, max)`` of the quantised values.
        epsilon: added to the maximum.
        output_dtype: dtype of the quantised values.

    Raises:
        ValueError: for ``output_dtype="int8"`` with a range outside ``[-128, 127]``.
    """

    def __init__(self, axis=None, value_range=(-127, 127), epsilon=_DEFAULT_EPSILON,
                 output_dtype="int8"):
        Quantizer.__init__(self, output_dtype=output_dtype)
        if axis is not None:
            axis = (axis,) if isinstance(axis, int) else tuple(axis)
        self.axis = axis
        self.value_range = tuple(value_range)
        self.epsilon = epsilon
        if output_dtype == "int8" and (value_range[0] < -128 or value_range[1] > 127):
            raise ValueError("Quantizer with output_dtype='int8' requires value_range to be "
                             f"within the interval [-128, 127]. Received: "
                             f"value_range={value_range}")

    def __call__(self, x, axis=None, to_numpy=False):
        """Quantise ``x``; returns ``(quantized, scale)``."""
        axis = self.axis if axis is None else axis
        return abs_max_quantize(x, -1 if axis is None else axis, self.value_range,
                                self.output_dtype, self.epsilon, to_numpy)

    def get_config(self):
        """The constructor arguments (``axis`` only when set), as Keras writes them."""
        config = {"value_range": self.value_range, "epsilon": self.epsilon,
                  "output_dtype": self.output_dtype}
        if self.axis is not None:
            config["axis"] = self.axis
        return config


def compute_float8_scale(amax, scale, dtype_max, margin=0):
    """The next float8 scale from the running absolute maximum.

    ``1 / scale_new = dtype_max / amax / 2**margin`` where ``amax`` is positive and
    finite; elsewhere the previous scale is kept.

    Args:
        amax: the absolute maximum (history's max).
        scale: the current scale.
        dtype_max: the float8 dtype's largest finite value.
        margin: a power-of-two safety margin.

    Returns:
        The new scale.
    """
    amax, scale = _arrays.to_numpy(amax), _arrays.to_numpy(scale)
    dtype = np.result_type(amax.dtype, scale.dtype, np.float32)
    amax, inv = amax.astype(dtype), np.reciprocal(scale.astype(dtype))
    with np.errstate(divide="ignore", invalid="ignore"):
        sf = np.divide(np.divide(dtype.type(dtype_max), amax), dtype.type(2 ** margin))
    sf = np.where(amax > 0.0, sf, inv)
    sf = np.where(np.isfinite(amax), sf, inv)
    return as_tensor(np.reciprocal(sf).astype(dtype))


def compute_float8_amax_history(x, amax_history):
    """Roll the history left by one and put ``max|x|`` first.

    Args:
        x: the new tensor.
        amax_history: 1D history of absolute maxima.

    Returns:
        The updated history.
    """
    history = _arrays.to_numpy(amax_history)
    new = np.roll(history, -1)
    new[0] = np.max(np.abs(_arrays.to_numpy(x))).astype(history.dtype)
    return as_tensor(new)


# Float8 formats: (mantissa bits, smallest normal exponent, largest finite value).
_FLOAT8 = {"float8_e4m3fn": (3, -6, 448.0), "float8_e5m2": (2, -14, 57344.0),
           "float8_e4m3": (3, -6, 240.0), "float8_e4m3fnuz": (3, -7, 240.0),
           "float8_e5m2fnuz": (2, -15, 57344.0)}


def _round_to_float8(x: np.ndarray, mantissa: int, min_exp: int) -> np.ndarray:
    """Round to the nearest float8 value (ties to even), as a float64 array."""
    x = x.astype(np.float64)
    a = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        exp = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    step = np.exp2(np.maximum(exp, min_exp) - mantissa)
    return np.round(x / step) * step  # exact: step is a power of two


def quantize_and_dequantize(inputs, scale, quantized_dtype, compute_dtype):
    """Simulate float8 storage: ``dequant(cast(clip(x / scale)))``.

    Args:
        inputs: the tensor.
        scale: the float8 scale.
        quantized_dtype: ``"float8_e4m3fn"`` or ``"float8_e5m2"`` (also the ``fnuz``
            variants and ``"float8_e4m3"``).
        compute_dtype: dtype of the computation and of the result.

    Returns:
        ``inputs`` rounded to the float8 grid (times ``scale``), in ``compute_dtype``.

    Raises:
        ValueError: for another ``quantized_dtype``.
    """
    if quantized_dtype not in _FLOAT8:
        raise ValueError(f"quantized_dtype must be one of {sorted(_FLOAT8)}. "
                         f"Received: quantized_dtype={quantized_dtype!r}")
    mantissa, min_exp, dtype_max = _FLOAT8[quantized_dtype]
    dtype = np.dtype(compute_dtype)
    s = _arrays.to_numpy(scale).astype(dtype)
    x = np.clip(np.divide(_arrays.to_numpy(inputs).astype(dtype), s), -dtype_max, dtype_max)
    x = _round_to_float8(x, mantissa, min_exp).astype(dtype)
    return as_tensor(np.multiply(x, s))
