"""Conversion, casting, comparisons and constructors (none of them differentiable but
``cast``; the others return Tensors that carry no gradient)."""

from __future__ import annotations

import numpy as np

from lamina.backend import primitives as _p
from lamina.backend.config import floatx, standardize_dtype
from lamina.backend.tensor import Tensor, Variable
from lamina.ops._common import data as _data
from lamina.ops._common import export, static_shape

__all__ = [
    "Tensor", "Variable", "arange", "cast", "convert_to_numpy", "convert_to_tensor",
    "equal", "eye", "full", "full_like", "greater", "greater_equal", "identity", "isfinite",
    "isinf", "isnan", "less", "less_equal", "linspace", "logical_and", "logical_not",
    "logical_or", "logical_xor", "not_equal", "one_hot", "ones", "ones_like", "shape",
    "stop_gradient", "zeros", "zeros_like",
]


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None) -> Tensor:
    """Return ``x`` as a Tensor; floats become ``floatx()`` unless ``dtype`` says otherwise.

    ``sparse`` and ``ragged`` are Keras's; Lamina's tensors are dense, so ``sparse=True``
    gives a dense tensor (as Keras's backends without sparse support do) and
    ``ragged=True`` raises ``ValueError``.
    """
    if ragged:
        raise ValueError("Lamina has no ragged tensors. Received: ragged=True")
    if isinstance(x, Tensor):
        if dtype is None or x.dtype == standardize_dtype(dtype):
            return x
        return cast(x, dtype)
    array = np.asarray(x)
    if dtype is not None:
        array = array.astype(standardize_dtype(dtype), copy=False)
    elif array.dtype == np.float64 or array.dtype == np.float16:
        array = array.astype(floatx(), copy=False)
    return Tensor(array)


def convert_to_numpy(x) -> np.ndarray:
    """Return the value of ``x`` as an ndarray."""
    return np.asarray(_data(x))


def shape(x) -> tuple:
    """The shape of ``x``; ``None`` for the unknown sizes of a symbolic tensor."""
    return static_shape(x)


def cast(x, dtype):
    dtype = standardize_dtype(dtype)
    if isinstance(x, Tensor) and x.dtype == dtype:
        return x
    return _p.Cast.apply(x, dtype)


# -- comparisons (no gradient) --------------------------------------------------------
def equal(x1, x2):
    return Tensor(np.equal(_data(x1), _data(x2)))


def not_equal(x1, x2):
    return Tensor(np.not_equal(_data(x1), _data(x2)))


def greater(x1, x2):
    return Tensor(np.greater(_data(x1), _data(x2)))


def greater_equal(x1, x2):
    return Tensor(np.greater_equal(_data(x1), _data(x2)))


def less(x1, x2):
    return Tensor(np.less(_data(x1), _data(x2)))


def less_equal(x1, x2):
    return Tensor(np.less_equal(_data(x1), _data(x2)))


def stop_gradient(variable):
    """The value of ``variable`` as a Tensor through which no gradient flows."""
    return Tensor(np.asarray(_data(variable)))


# -- logical and floating-point classes (no gradient) ------------------------------------
def logical_and(x1, x2):
    return Tensor(np.logical_and(_data(x1), _data(x2)))


def logical_or(x1, x2):
    return Tensor(np.logical_or(_data(x1), _data(x2)))


def logical_xor(x1, x2):
    return Tensor(np.logical_xor(_data(x1), _data(x2)))


def logical_not(x):
    return Tensor(np.logical_not(_data(x)))


def isnan(x):
    return Tensor(np.isnan(_data(x)))


def isinf(x):
    return Tensor(np.isinf(_data(x)))


def isfinite(x):
    return Tensor(np.isfinite(_data(x)))


# -- constructors (no gradient) --------------------------------------------------------
def zeros(shape, dtype=None):
    return Tensor(np.zeros(shape, dtype=standardize_dtype(dtype)))


def ones(shape, dtype=None):
    return Tensor(np.ones(shape, dtype=standardize_dtype(dtype)))


def zeros_like(x, dtype=None):
    return Tensor(np.zeros_like(_data(x), dtype=dtype))


def ones_like(x, dtype=None):
    return Tensor(np.ones_like(_data(x), dtype=dtype))


def full(shape, fill_value, dtype=None):
    return Tensor(np.full(shape, _data(fill_value), dtype=standardize_dtype(dtype)))


def full_like(x, fill_value, dtype=None):
    return Tensor(np.full_like(_data(x), _data(fill_value), dtype=dtype))


def eye(N, M=None, k=0, dtype=None):  # noqa: N803 - Keras's names
    return Tensor(np.eye(N, M, k, dtype=standardize_dtype(dtype)))


def identity(n, dtype=None):
    return eye(n, dtype=dtype)


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in ``[start, stop)``; int32 for integer arguments, as Keras."""
    if dtype is None:
        values = [v for v in (start, stop, step) if v is not None]
        floating = any(np.issubdtype(np.result_type(_data(v)), np.floating) for v in values)
        dtype = floatx() if floating else "int32"
    if stop is None:
        start, stop = 0, start
    return Tensor(np.arange(_data(start), _data(stop), 1 if step is None else _data(step),
                            dtype=standardize_dtype(dtype)))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """``num`` evenly spaced values from ``start`` to ``stop`` (``np.linspace``)."""
    out = np.linspace(_data(start), _data(stop), num, endpoint=endpoint, retstep=retstep,
                      dtype=standardize_dtype(dtype), axis=axis)
    if retstep:
        return Tensor(out[0]), Tensor(np.asarray(out[1], dtype=out[0].dtype))
    return Tensor(out)


def one_hot(x, num_classes, dtype=None):
    ids = np.asarray(_data(x)).astype(np.intp)
    out = np.zeros(ids.shape + (num_classes,), dtype=standardize_dtype(dtype))
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    return Tensor(out)


export(globals(), __all__)
