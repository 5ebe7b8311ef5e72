"""Elementwise arithmetic and functions, differentiable through the primitives.

Dtypes follow Keras: integer inputs of float functions give ``floatx()``, and an integer
operand meets a float one in the float's dtype (numpy would widen both to float64).
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend import numeric as _n
from lamina.backend import primitives as _p
from lamina.backend.config import floatx
from lamina.backend.tensor import Tensor
from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops.numpy_dtypes import keras_binary, keras_float

__all__ = [
    "abs", "add", "ceil", "clip", "cos", "divide", "erf", "exp", "expm1", "floor",
    "floor_divide", "log", "log10", "log1p", "log2", "maximum", "minimum", "mod", "multiply",
    "negative", "power", "reciprocal", "round", "rsqrt", "select", "sign", "sin", "sqrt",
    "square", "subtract", "tanh", "true_divide", "where",
]


def add(x1, x2):
    return _p.Add.apply(*keras_binary(x1, x2))


def subtract(x1, x2):
    return _p.Subtract.apply(*keras_binary(x1, x2))


def multiply(x1, x2):
    return _p.Multiply.apply(*keras_binary(x1, x2))


def divide(x1, x2):
    x1, x2 = keras_binary(x1, x2)
    # True division of integers gives floatx(), as in Keras (numpy: float64).
    return _p.Divide.apply(keras_float(x1), keras_float(x2))


true_divide = divide


def power(x1, x2):
    return _p.Power.apply(*keras_binary(x1, x2))


def maximum(x1, x2):
    return _p.Maximum.apply(*keras_binary(x1, x2))


def minimum(x1, x2):
    return _p.Minimum.apply(*keras_binary(x1, x2))


def negative(x):
    return _p.Negative.apply(x)


def exp(x):
    return _p.Exp.apply(keras_float(x))


def log(x):
    return _p.Log.apply(keras_float(x))


def log1p(x):
    return _p.Log1p.apply(keras_float(x))


def sqrt(x):
    return _p.Sqrt.apply(keras_float(x))


def square(x):
    return multiply(x, x)


def abs(x):  # noqa: A001 - Keras's name
    return _p.Abs.apply(x)


def sign(x):
    return Tensor(np.sign(_data(x)))


def tanh(x):
    return _p.Tanh.apply(keras_float(x))


def sin(x):
    return _p.Sin.apply(keras_float(x))


def cos(x):
    return _p.Cos.apply(keras_float(x))


def erf(x):
    return _p.Erf.apply(keras_float(x))


def clip(x, x_min, x_max):
    return _p.Clip.apply(x, x_min, x_max)


def where(condition, x1=None, x2=None):
    """``x1`` where ``condition`` holds, else ``x2``; with neither, the indices where
    ``condition`` holds (one int Tensor per axis, as ``nonzero``)."""
    if x1 is None and x2 is None:
        return tuple(Tensor(i.astype(np.int32)) for i in np.nonzero(_data(condition)))
    if x1 is None or x2 is None:
        raise ValueError("where takes both x1 and x2, or neither. Received: "
                         f"x1={'None' if x1 is None else 'a tensor'}, "
                         f"x2={'None' if x2 is None else 'a tensor'}")
    return _p.Where.apply(_data(condition), *keras_binary(x1, x2))


def expm1(x):
    """``exp(x) - 1``, accurate for small ``x``."""
    return _n.Expm1.apply(keras_float(x))


def log2(x):
    return divide(log(x), np.asarray(math.log(2.0), dtype=_float_of(x)))


def log10(x):
    return divide(log(x), np.asarray(math.log(10.0), dtype=_float_of(x)))


def reciprocal(x):
    return divide(np.asarray(1, dtype=_float_of(x)), x)


def rsqrt(x):
    """``1 / sqrt(x)``."""
    return reciprocal(sqrt(x))


def _float_of(x):
    dt = np.result_type(_data(x))
    return dt if np.issubdtype(dt, np.floating) else np.dtype(floatx())


# -- rounding (no gradient: zero almost everywhere) ----------------------------------------
def _rounded(fn, x):
    d = np.asarray(_data(x))
    # As Keras: integer inputs give floatx results.
    return constant(fn(d if np.issubdtype(d.dtype, np.floating) else d.astype(floatx())))


def floor(x):
    return _rounded(np.floor, x)


def ceil(x):
    return _rounded(np.ceil, x)


def round(x, decimals=0):  # noqa: A001 - Keras's name
    """Round half to even, to ``decimals`` places (``np.round``)."""
    return constant(np.round(_data(x), decimals))


def floor_divide(x1, x2):
    x1, x2 = keras_binary(x1, x2)
    return constant(np.floor_divide(_data(x1), _data(x2)))


def mod(x1, x2):
    """``x1 - x2 * floor(x1 / x2)`` (the sign of ``x2``), differentiable in both."""
    return subtract(x1, multiply(x2, floor_divide(x1, x2)))


def select(condlist, choicelist, default=0):
    """Per element, the choice of the first true condition, else ``default``."""
    if len(condlist) != len(choicelist):
        raise ValueError(
            "condlist and choicelist must have the same length. Received: "
            f"len(condlist)={len(condlist)}, len(choicelist)={len(choicelist)}")
    out = default
    for cond, choice in zip(reversed(condlist), reversed(choicelist)):
        out = where(cond, choice, out)
    return out if isinstance(out, Tensor) else Tensor(np.asarray(out))


export(globals(), __all__)
