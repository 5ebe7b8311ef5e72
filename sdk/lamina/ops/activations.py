"""Activation functions with Keras's names and formulas, composed from primitives
(``softmax``/``log_softmax`` are fused primitives of ``backend/nn.py``)."""

from __future__ import annotations

import math

import numpy as np

from lamina.backend import nn as _nn
from lamina.backend import primitives as _p
from lamina.backend.tensor import Tensor
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops.math import (
    abs,
    add,
    clip,
    divide,
    erf,
    exp,
    expm1,
    maximum,
    minimum,
    multiply,
    negative,
    power,
    sqrt,
    square,
    subtract,
    tanh,
    where,
)

__all__ = [
    "celu", "elu", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu",
    "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus",
    "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh_shrink", "threshold",
]


def _logits(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def relu(x):
    return _p.Relu.apply(x)


def relu6(x):
    return clip(x, 0.0, 6.0)


def sigmoid(x):
    out = _p.Sigmoid.apply(x)
    # As with softmax: binary cross-entropy recovers the logits for a stable fused loss.
    out._keras_logits = _logits(x)
    return out


def softplus(x):
    return _p.Softplus.apply(x)


def softsign(x):
    return divide(x, add(abs(x), 1.0))


def silu(x):
    return multiply(x, sigmoid(x))


swish = silu


def log_sigmoid(x):
    return negative(softplus(negative(x)))


def leaky_relu(x, negative_slope=0.2):
    return maximum(x, multiply(x, negative_slope)) if negative_slope <= 1 else where(
        _data(x) > 0, x, multiply(x, negative_slope))


def elu(x, alpha=1.0):
    d = _data(x)
    return where(d > 0, x, multiply(subtract(exp(minimum(x, 0.0)), 1.0), alpha))


def selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return multiply(elu(x, alpha), scale)


def gelu(x, approximate=True):
    if approximate:
        inner = multiply(add(x, multiply(power(x, 3.0), 0.044715)), math.sqrt(2 / math.pi))
        return multiply(multiply(x, 0.5), add(tanh(inner), 1.0))
    return multiply(multiply(x, 0.5), add(erf(multiply(x, 1 / math.sqrt(2))), 1.0))


def hard_sigmoid(x):
    return clip(add(divide(x, 6.0), 0.5), 0.0, 1.0)


def hard_silu(x):
    return multiply(x, hard_sigmoid(x))


hard_swish = hard_silu


def celu(x, alpha=1.0):
    """``x`` for ``x > 0``, else ``alpha * expm1(x / alpha)`` (continuously differentiable)."""
    return where(_data(x) > 0, x, multiply(expm1(divide(minimum(x, 0.0), alpha)), alpha))


def glu(x, axis=-1):
    """Gated linear unit: the first half of ``axis`` times the sigmoid of the second half.

    Raises:
        ValueError: when the size of ``axis`` is odd.
    """
    from lamina.ops.manipulation import split

    n = np.shape(_data(x))[axis]
    if n % 2:
        raise ValueError("axis size must be divisible by 2. "
                         f"Received: x.shape={np.shape(_data(x))} with axis={axis}")
    a, b = split(x, 2, axis=axis)
    return multiply(a, sigmoid(b))


def hard_tanh(x):
    """``clip(x, -1, 1)``."""
    return clip(x, -1.0, 1.0)


def hard_shrink(x, threshold=0.5):
    """``x`` where ``|x| > threshold``, else 0."""
    return where(np.abs(_data(x)) > threshold, x, 0.0)


def soft_shrink(x, threshold=0.5):
    """``x`` moved ``threshold`` towards 0, and 0 inside ``[-threshold, threshold]``."""
    d = _data(x)
    return where(d > threshold, subtract(x, threshold),
                 where(d < -threshold, add(x, threshold), 0.0))


def tanh_shrink(x):
    """``x - tanh(x)``."""
    return subtract(x, tanh(x))


def threshold(x, threshold, default_value):
    """``x`` where ``x > threshold``, else ``default_value``."""
    return where(_data(x) > threshold, x, default_value)


def sparse_plus(x):
    """0 for ``x <= -1``, ``x`` for ``x >= 1``, ``(x + 1)**2 / 4`` between."""
    d = _data(x)
    return where(d <= -1.0, 0.0, where(d >= 1.0, x, multiply(square(add(x, 1.0)), 0.25)))


def sparse_sigmoid(x):
    """0 for ``x <= -1``, 1 for ``x >= 1``, ``(x + 1) / 2`` between."""
    d = _data(x)
    return where(d <= -1.0, 0.0, where(d >= 1.0, 1.0, multiply(add(x, 1.0), 0.5)))


def squareplus(x, b=4):
    """``(x + sqrt(x**2 + b)) / 2``, a smooth ReLU."""
    return multiply(add(x, sqrt(add(square(x), float(b)))), 0.5)


def sparsemax(x, axis=-1):
    """Euclidean projection of ``x`` onto the simplex along ``axis`` (Martins & Astudillo).

    The threshold ``tau`` is computed from the sorted values and enters the graph as a
    function of the entries in the support, so the gradient is sparsemax's Jacobian.
    """
    from lamina.ops.reduction import sum as _sum

    d = np.asarray(_data(x))
    srt = -np.sort(-d, axis=axis)
    shape = [1] * d.ndim
    shape[axis] = -1
    r = np.arange(1, d.shape[axis] + 1, dtype=d.dtype).reshape(shape)
    support_sorted = srt - (np.cumsum(srt, axis=axis) - 1) / r > 0
    k = np.sum(support_sorted, axis=axis, keepdims=True)
    # The support is the k largest entries: those >= the k-th largest value.
    kth = np.take_along_axis(srt, k - 1, axis=axis)
    support = d >= kth
    tau = divide(subtract(_sum(where(support, x, 0.0), axis=axis, keepdims=True), 1.0),
                 k.astype(d.dtype))
    return maximum(subtract(x, tau), 0.0)


def mish(x):
    return multiply(x, tanh(softplus(x)))


def softmax(x, axis=-1):
    out = _nn.Softmax.apply(x, axis=axis)
    out._keras_logits = _logits(x)
    return out


def log_softmax(x, axis=-1):
    return _nn.LogSoftmax.apply(x, axis=axis)


export(globals(), __all__)
