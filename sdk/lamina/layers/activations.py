"""Activation layers with parameters: ReLU, LeakyReLU, PReLU, ELU, Softmax."""

from __future__ import annotations

import warnings

import numpy as np

from lamina import constraints, initializers, ops, regularizers
from lamina.layers.layer import Layer


def _non_negative(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or value < 0:
        raise ValueError(
            f"{name} of a ReLU layer cannot be a negative value. Received: {name}={value!r}")
    return float(value)


class _Elementwise(Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class ReLU(_Elementwise):
    """Rectified linear unit with a cap, a leak and a threshold.

    ``f(x) = max_value`` for ``x >= max_value``, ``x`` for ``threshold <= x < max_value``,
    ``negative_slope * (x - threshold)`` otherwise.

    Args:
        max_value: float >= 0 or None (no cap).
        negative_slope: float >= 0, the slope below the threshold.
        threshold: float >= 0, where the linear part starts.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _non_negative("max_value", max_value, allow_none=True)
        self.negative_slope = _non_negative("negative_slope", negative_slope)
        self.threshold = _non_negative("threshold", threshold)

    def call(self, inputs):
        if self.max_value is None and self.negative_slope == 0 and self.threshold == 0:
            return ops.relu(inputs)
        x = inputs.data
        below = ops.multiply(ops.subtract(inputs, self.threshold), self.negative_slope)
        out = ops.where(x >= self.threshold, inputs, below)
        if self.max_value is not None:
            out = ops.where(x >= self.max_value,
                            np.asarray(self.max_value, dtype=x.dtype), out)
        return out

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Args:
        negative_slope: float >= 0 (``0.3``). The Keras 2 name ``alpha`` is accepted
            with a deprecation warning.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.",
                          stacklevel=2)
        super().__init__(**kwargs)
        if negative_slope is None or isinstance(negative_slope, bool) or not isinstance(
                negative_slope, (int, float)) or negative_slope < 0:
            raise ValueError(
                "The negative_slope value of a Leaky ReLU layer cannot be None or negative "
                f"value. Expected a float. Received: negative_slope={negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return ops.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class PReLU(Layer):
    """Leaky ReLU with a learned slope: ``relu(x) - alpha * relu(-x)``.

    Args:
        alpha_initializer: initializer of ``alpha`` (``"Zeros"``).
        alpha_regularizer: optional regularizer of ``alpha``.
        alpha_constraint: optional constraint of ``alpha``.
        shared_axes: axes (counted with the batch axis as 0) along which one slope is
            shared, e.g. ``[1, 2]`` for one slope per channel of an image.

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Weights: ``alpha`` of shape ``input_shape[1:]`` with the shared axes set to 1.
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif isinstance(shared_axes, (int, np.integer)):
            self.shared_axes = [int(shared_axes)]
        else:
            self.shared_axes = [int(a) for a in shared_axes]
        self.supports_masking = True

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            if not 1 <= a < len(input_shape):
                raise ValueError(
                    f"`shared_axes` of PReLU '{self.name}' must be in [1, {len(input_shape)}). "
                    f"Received: shared_axes={self.shared_axes}")
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(
                f"PReLU '{self.name}' needs known sizes on the non-shared axes. Received: "
                f"input_shape={tuple(input_shape)}")
        self.alpha = self.add_weight(
            name="alpha", shape=tuple(shape), initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)
        self.built = True

    def call(self, inputs):
        return ops.subtract(ops.relu(inputs),
                            ops.multiply(self.alpha, ops.relu(ops.negative(inputs))))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer)
            if self.alpha_regularizer else None,
            "alpha_constraint": constraints.serialize(self.alpha_constraint)
            if self.alpha_constraint else None,
            "shared_axes": self.shared_axes,
        }


class ELU(_Elementwise):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: float, the negative saturation value is ``-alpha``.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return ops.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


def _large_negative(dtype):
    # Large enough to zero a probability, small enough not to overflow float16.
    return -3e4 if np.dtype(dtype) == np.float16 else -1e9


class Softmax(_Elementwise):
    """Softmax over ``axis``; positions where ``mask`` is False get (almost) zero weight.

    As in Keras, ``(1 - mask) * -1e9`` is added to the inputs before the softmax.

    Args:
        axis: int or tuple of ints, the normalized axes.

    Call arguments:
        inputs: a tensor.
        mask: optional boolean mask broadcastable to the inputs (True: keep).

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)

    def call(self, inputs, mask=None):
        if mask is not None:
            keep = np.asarray(getattr(mask, "data", mask)).astype(inputs.data.dtype)
            inputs = ops.add(inputs, (1.0 - keep) * _large_negative(inputs.data.dtype))
        if isinstance(self.axis, list):
            return ops.exp(ops.subtract(inputs, ops.logsumexp(inputs, axis=tuple(self.axis),
                                                              keepdims=True)))
        return ops.softmax(inputs, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
