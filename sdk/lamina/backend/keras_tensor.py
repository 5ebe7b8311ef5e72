"""``KerasTensor``: the symbolic tensor of the functional API.

It has a shape (``None`` for unknown sizes) and a dtype but no value. Calling a layer
on it records a node of the functional graph (``lamina.layers.symbolic.Node``); so does
calling a ``lamina.ops`` function or a Python operator (``a + b``, ``x[:, 0]``) on it,
through an internal op layer (``lamina.layers.op_layer``), as Keras 3 does.
"""

from __future__ import annotations

import numpy as np


def _ops():
    from lamina import ops

    return ops


class KerasTensor:
    """A symbolic tensor: a shape (``None`` for unknown sizes), a dtype and its producer.

    Args:
        shape: tuple with the batch dimension first.
        dtype: dtype name.
        name: optional name (used by ``Input``).
    """

    # numpy defers `array + kt` to `kt.__radd__` instead of converting the KerasTensor.
    __array_ufunc__ = None

    def __init__(self, shape, dtype="float32", name=None) -> None:
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype).name
        self.name = name
        self.node = None
        self.index = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def keras_history(self):
        return self.node.operation, self.node.operation._inbound_nodes.index(self.node), self.index

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "A symbolic KerasTensor has no value: it stands for the input of a functional "
            "model. Build a `Model(inputs, outputs)` and call it on data instead."
        )

    # -- operators: each records an op node (see lamina.ops) ---------------------------
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().subtract(self, other)

    def __rsub__(self, other):
        return _ops().subtract(other, self)

    def __mul__(self, other):
        return _ops().multiply(self, other)

    def __rmul__(self, other):
        return _ops().multiply(other, self)

    def __truediv__(self, other):
        return _ops().divide(self, other)

    def __rtruediv__(self, other):
        return _ops().divide(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __pow__(self, exponent):
        return _ops().power(self, exponent)

    def __neg__(self):
        return _ops().negative(self)

    def __abs__(self):
        return _ops().abs(self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    def __lt__(self, other):
        return _ops().less(self, other)

    def __le__(self, other):
        return _ops().less_equal(self, other)

    def __gt__(self, other):
        return _ops().greater(self, other)

    def __ge__(self, other):
        return _ops().greater_equal(self, other)

    @property
    def T(self):
        return _ops().transpose(self)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def astype(self, dtype):
        return _ops().cast(self, dtype)


def any_symbolic(args) -> bool:
    """Whether ``args`` (or a list/tuple among them, one level deep) holds a KerasTensor."""
    for a in args:
        if isinstance(a, KerasTensor):
            return True
        if isinstance(a, (list, tuple)) and any(isinstance(t, KerasTensor) for t in a):
            return True
    return False


def dispatch_symbolic(fn):
    """Wrap the op ``fn`` so that a call on KerasTensors records a graph node.

    On data the wrapper calls ``fn`` directly (one cheap scan of the arguments); on
    symbolic tensors it returns the KerasTensor(s) of a new op node
    (``lamina.layers.op_layer.symbolic_op``), which replays ``fn`` on data.
    """
    import functools

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if any_symbolic(args) or (kwargs and any_symbolic(kwargs.values())):
            from lamina.layers.op_layer import symbolic_op

            return symbolic_op(fn, args, kwargs)
        return fn(*args, **kwargs)

    op.__wrapped__ = fn
    return op
