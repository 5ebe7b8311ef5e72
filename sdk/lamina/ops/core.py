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
    "Tensor", "Variable", "cast", "convert_to_numpy", "convert_to_tensor", "equal",
    "greater", "greater_equal", "less", "less_equal", "not_equal", "one_hot", "ones",
    "ones_like", "shape", "zeros", "zeros_like",
]


def convert_to_tensor(x, dtype=None) -> Tensor:
    """Return ``x`` as a Tensor; floats become ``floatx()`` unless ``dtype`` says otherwise."""
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


# -- constructors (no gradient) --------------------------------------------------------
def zeros(shape_, dtype=None):
    return Tensor(np.zeros(shape_, dtype=standardize_dtype(dtype)))


def ones(shape_, dtype=None):
    return Tensor(np.ones(shape_, dtype=standardize_dtype(dtype)))


def zeros_like(x, dtype=None):
    return Tensor(np.zeros_like(_data(x), dtype=dtype))


def ones_like(x, dtype=None):
    return Tensor(np.ones_like(_data(x), dtype=dtype))


def one_hot(x, num_classes, dtype=None):
    ids = np.asarray(_data(x)).astype(np.intp)
    out = np.zeros(ids.shape + (num_classes,), dtype=standardize_dtype(dtype))
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    return Tensor(out)


export(globals(), __all__)
