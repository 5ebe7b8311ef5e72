"""Helpers shared by the ``lamina.ops`` modules (not public)."""

from __future__ import annotations

import numpy as np

from lamina.backend.config import floatx
from lamina.backend.keras_tensor import KerasTensor
from lamina.backend.tensor import Tensor
from lamina.ops.operation import dispatch_symbolic

# Functions that never record an op node: they inspect or convert their argument.
_NOT_OPS = frozenset({"Tensor", "Variable", "convert_to_numpy", "convert_to_tensor", "shape"})


def data(x):
    """The ndarray (or Python value) behind ``x``."""
    return x.data if isinstance(x, Tensor) else x


def static_shape(x) -> tuple:
    """The shape of ``x``; ``None`` for the unknown sizes of a symbolic tensor."""
    if isinstance(x, KerasTensor):
        return x.shape
    return np.shape(data(x))


def axis_arg(axis):
    """Keras accepts list axes; numpy wants tuples."""
    return tuple(axis) if isinstance(axis, list) else axis


def count(x, axis) -> int:
    """How many elements a reduction of ``x`` over ``axis`` combines."""
    s = static_shape(x)
    if axis is None:
        return int(np.prod(s)) if s else 1
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([s[a] for a in axes]))


def float_dtype(x) -> np.dtype:
    """``x``'s dtype if floating, else ``floatx()``."""
    dt = np.result_type(data(x))
    return dt if np.issubdtype(dt, np.floating) else np.dtype(floatx())


def constant(value) -> Tensor:
    """A Tensor that carries no gradient (results of non-differentiable ops)."""
    return Tensor(np.asarray(value))


def export(namespace: dict, names) -> None:
    """Wrap the ops ``names`` of a module so that calls on KerasTensors record a node.

    Calls between ops go through the wrappers too, as a Keras op calling another does.
    """
    for name in names:
        if name not in _NOT_OPS:
            namespace[name] = dispatch_symbolic(namespace[name])
