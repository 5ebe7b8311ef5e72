"""Elementwise arithmetic and functions, differentiable through the primitives."""

from __future__ import annotations

import numpy as np

from lamina.backend import primitives as _p
from lamina.backend.tensor import Tensor
from lamina.ops._common import data as _data
from lamina.ops._common import export

__all__ = [
    "abs", "add", "clip", "cos", "divide", "erf", "exp", "log", "log1p", "maximum",
    "minimum", "multiply", "negative", "power", "sign", "sin", "sqrt", "square", "subtract",
    "tanh", "true_divide", "where",
]


def add(x1, x2):
    return _p.Add.apply(x1, x2)


def subtract(x1, x2):
    return _p.Subtract.apply(x1, x2)


def multiply(x1, x2):
    return _p.Multiply.apply(x1, x2)


def divide(x1, x2):
    return _p.Divide.apply(x1, x2)


true_divide = divide


def power(x1, x2):
    return _p.Power.apply(x1, x2)


def maximum(x1, x2):
    return _p.Maximum.apply(x1, x2)


def minimum(x1, x2):
    return _p.Minimum.apply(x1, x2)


def negative(x):
    return _p.Negative.apply(x)


def exp(x):
    return _p.Exp.apply(x)


def log(x):
    return _p.Log.apply(x)


def log1p(x):
    return _p.Log1p.apply(x)


def sqrt(x):
    return _p.Sqrt.apply(x)


def square(x):
    return multiply(x, x)


def abs(x):  # noqa: A001 - Keras's name
    return _p.Abs.apply(x)


def sign(x):
    return Tensor(np.sign(_data(x)))


def tanh(x):
    return _p.Tanh.apply(x)


def sin(x):
    return _p.Sin.apply(x)


def cos(x):
    return _p.Cos.apply(x)


def erf(x):
    return _p.Erf.apply(x)


def clip(x, x_min, x_max):
    return _p.Clip.apply(x, x_min, x_max)


def where(condition, x1, x2):
    return _p.Where.apply(_data(condition), x1, x2)


export(globals(), __all__)
