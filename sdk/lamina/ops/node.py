"""``Node``: one call of an operation on symbolic tensors, the edge of the functional graph."""

from __future__ import annotations

from lamina.backend.keras_tensor import KerasTensor
from lamina.tree import flatten


class Node:
    """One call of an operation (a layer or an op) on symbolic tensors.

    Args:
        operation: the ``Operation`` called.
        call_args: the first positional argument (the inputs).
        args: the remaining positional arguments.
        kwargs: the keyword arguments.
        outputs: the KerasTensor(s) the call produced; each learns this node.
    """

    def __init__(self, operation, call_args, args=(), kwargs=None, outputs=None) -> None:
        self.operation = operation
        self.call_args = (call_args,) + tuple(args)
        self.call_kwargs = dict(kwargs or {})
        self.outputs = outputs
        self.input_tensors = [
            t for t in flatten((self.call_args, self.call_kwargs)) if isinstance(t, KerasTensor)
        ]
        for i, t in enumerate(flatten(outputs)):
            t.node = self
            t.index = i
        operation._inbound_nodes.append(self)

    @property
    def parent_nodes(self) -> list:
        return [t.node for t in self.input_tensors if t.node is not None]
