"""Bitwise ops of ``keras.ops.numpy`` on integer and bool tensors (no gradient).

Float inputs raise ``TypeError``, as in Keras; the result has the inputs' common dtype.
"""

from __future__ import annotations

import numpy as np

from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops.numpy_dtypes import require_integer, result_dtype

__all__ = [
    "bitwise_and", "bitwise_invert", "bitwise_left_shift", "bitwise_not", "bitwise_or",
    "bitwise_right_shift", "bitwise_xor", "left_shift", "right_shift",
]


def _binary(name, fn, x, y, bools=True):
    require_integer(name, x=x, y=y)
    dt = result_dtype(x, y)
    if not bools and dt == np.bool_:
        raise TypeError(f"`{name}` requires integer inputs. Received: x.dtype=bool")
    a = np.asarray(_data(x)).astype(dt, copy=False)
    b = np.asarray(_data(y)).astype(dt, copy=False)
    return constant(fn(a, b))


def bitwise_and(x, y):
    """Bitwise AND of integers (logical AND of bools)."""
    return _binary("bitwise_and", np.bitwise_and, x, y)


def bitwise_or(x, y):
    """Bitwise OR of integers (logical OR of bools)."""
    return _binary("bitwise_or", np.bitwise_or, x, y)


def bitwise_xor(x, y):
    """Bitwise XOR of integers (logical XOR of bools)."""
    return _binary("bitwise_xor", np.bitwise_xor, x, y)


def bitwise_invert(x):
    """Bitwise NOT of integers (logical NOT of bools)."""
    require_integer("bitwise_invert", x=x)
    return constant(np.invert(_data(x)))


def bitwise_not(x):
    """Bitwise NOT (``bitwise_invert``)."""
    return bitwise_invert(x)


def bitwise_left_shift(x, y):
    """``x << y`` for integers."""
    return _binary("bitwise_left_shift", np.left_shift, x, y, bools=False)


def bitwise_right_shift(x, y):
    """``x >> y`` for integers (arithmetic shift for signed types)."""
    return _binary("bitwise_right_shift", np.right_shift, x, y, bools=False)


def left_shift(x, y):
    """``x << y`` (``bitwise_left_shift``)."""
    return bitwise_left_shift(x, y)


def right_shift(x, y):
    """``x >> y`` (``bitwise_right_shift``)."""
    return bitwise_right_shift(x, y)


export(globals(), __all__)
