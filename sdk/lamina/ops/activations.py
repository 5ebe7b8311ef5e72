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
    maximum,
    minimum,
    multiply,
    negative,
    power,
    subtract,
    tanh,
    where,
)

__all__ = [
    "elu", "gelu", "hard_sigmoid", "hard_silu", "leaky_relu", "log_sigmoid", "log_softmax",
    "mish", "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "softsign",
    "swish",
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


def mish(x):
    return multiply(x, tanh(softplus(x)))


def softmax(x, axis=-1):
    out = _nn.Softmax.apply(x, axis=axis)
    out._keras_logits = _logits(x)
    return out


def log_softmax(x, axis=-1):
    return _nn.LogSoftmax.apply(x, axis=axis)


export(globals(), __all__)
