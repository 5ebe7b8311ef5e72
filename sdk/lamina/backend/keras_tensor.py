"""``KerasTensor``: the symbolic tensor of the functional API.

It has a shape (``None`` for unknown sizes) and a dtype but no value. Calling a layer
on it records a node of the functional graph (``lamina.ops.node.Node``); so does
calling a ``lamina.ops`` function or a Python operator (``a + b``, ``x[:, 0]``) on it,
through a ``FunctionOperation`` (``lamina.ops.operation``), as Keras 3 does. The backend
itself knows nothing of graphs.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.config import is_string_dtype
from lamina.backend.operators import OperatorMixin


class KerasTensor(OperatorMixin):
    """A symbolic tensor: a shape (``None`` for unknown sizes), a dtype and its producer.

    Args:
        shape: tuple with the batch dimension first.
        dtype: dtype name.
        sparse: must be False (Lamina's tensors are dense).
        ragged: must be False.
        record_history: kept for Keras compatibility.
        name: optional name (used by ``Input``).
    """

    # numpy defers `array + kt` to `kt.__radd__` instead of converting the KerasTensor.
    __array_ufunc__ = None

    def __init__(self, shape, dtype="float32", sparse=False, ragged=False, record_history=True,
                 name=None) -> None:
        if sparse or ragged:
            kind = "sparse" if sparse else "ragged"
            raise ValueError(f"Lamina's tensors are dense numpy arrays: a {kind} KerasTensor "
                             f"is not supported. Received: {kind}={sparse or ragged!r}")
        self.record_history = record_history
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = "string" if is_string_dtype(dtype) else np.dtype(dtype).name
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
