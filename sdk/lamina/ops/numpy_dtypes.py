"""Keras's dtype promotion for the numpy-namespace ops (not public).

numpy promotes ``int32 + float32`` to float64; Keras gives float32, and integer inputs
of float functions (``arccos``, ``median``...) give ``floatx()``. Python numbers are
"weak": they take the dtype of the tensors they meet.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.config import floatx
from lamina.backend.tensor import Tensor
from lamina.ops._common import data
from lamina.ops.core import cast, convert_to_tensor

__all__: list = []


def _is_python_number(x) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def dtype_of(x) -> np.dtype:
    """The dtype ``x`` becomes as a tensor (Python floats: ``floatx()``)."""
    if isinstance(x, float):
        return np.dtype(floatx())
    if isinstance(x, bool):
        return np.dtype(bool)
    if isinstance(x, int):
        return np.dtype("int32")
    return np.asarray(data(x)).dtype


def result_dtype(*xs) -> np.dtype:
    """The dtype Keras gives a binary (or n-ary) op on ``xs``."""
    strong = [dtype_of(x) for x in xs if not _is_python_number(x)]
    weak = [x for x in xs if _is_python_number(x)]
    floats = [d for d in strong if np.issubdtype(d, np.inexact)]
    if floats:
        return np.result_type(*floats)
    if any(isinstance(w, float) for w in weak):
        return np.dtype(floatx())
    ints = [d for d in strong if d != np.bool_]
    if ints:
        return np.result_type(*ints)
    # Only bools (tensors or Python bools) are left; a Python int makes them int32.
    python_int = any(isinstance(w, int) and not isinstance(w, bool) for w in weak)
    return np.dtype("int32") if python_int else np.dtype(bool)


def float_result_dtype(*xs) -> np.dtype:
    """Like :func:`result_dtype`, with integers and bools made ``floatx()``."""
    dt = result_dtype(*xs)
    return dt if np.issubdtype(dt, np.inexact) else np.dtype(floatx())


def as_dtype(x, dtype):
    """``x`` as a Tensor of ``dtype`` (a differentiable cast when the dtype changes)."""
    if _is_python_number(x) or not hasattr(x, "dtype"):
        return convert_to_tensor(np.asarray(data(x)), dtype=np.dtype(dtype).name)
    return cast(x, np.dtype(dtype).name)


def promote(*xs):
    """``xs`` cast to their common Keras dtype."""
    dt = result_dtype(*xs)
    return tuple(as_dtype(x, dt) for x in xs)


def promote_float(*xs):
    """``xs`` cast to their common floating dtype (integers become ``floatx()``)."""
    dt = float_result_dtype(*xs)
    return tuple(as_dtype(x, dt) for x in xs)


def require_integer(name: str, **arrays) -> None:
    """Raise TypeError unless every array is of an integer (or bool) dtype."""
    for arg, x in arrays.items():
        dt = dtype_of(x)
        if not (np.issubdtype(dt, np.integer) or dt == np.bool_):
            raise TypeError(f"`{name}` requires integer or bool inputs. Received: "
                            f"{arg}.dtype={dt.name}")


def keras_binary(x1, x2):
    """``(x1, x2)`` with an integer or bool operand cast to the other's float dtype.

    numpy promotes ``int32`` with ``float32`` to float64 (and an integer array with a
    Python float to float64); Keras keeps the float dtype. Operands of one dtype, and
    float operands of any widths, pass through untouched: this runs on every
    elementwise op, so the common case costs two attribute reads.
    """
    a = x1.data if isinstance(x1, Tensor) else x1
    b = x2.data if isinstance(x2, Tensor) else x2
    ta, tb = getattr(a, "dtype", None), getattr(b, "dtype", None)
    if ta is not None and ta == tb:
        return x1, x2
    if ta is None and tb is None:
        return x1, x2
    if ta is None or tb is None:
        typed, other = (tb, a) if ta is None else (ta, b)
        if typed.kind in "biu" and isinstance(other, float):
            cast_to = np.dtype(floatx())
            return ((x1, as_dtype(x2, cast_to)) if ta is None else (as_dtype(x1, cast_to), x2))
        return x1, x2
    if ta.kind in "biu" and tb.kind in "fc":
        return as_dtype(x1, tb), x2
    if tb.kind in "biu" and ta.kind in "fc":
        return x1, as_dtype(x2, ta)
    return x1, x2


def keras_float(x):
    """``x``, with integer and bool data cast to ``floatx()`` (float functions' inputs)."""
    d = x.data if isinstance(x, Tensor) else x
    kind = getattr(d, "dtype", None)
    if kind is not None and kind.kind in "fc":
        return x
    if kind is None and isinstance(d, float):
        return x
    return as_dtype(x, float_result_dtype(x))
