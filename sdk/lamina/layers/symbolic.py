"""Symbolic tensors and graph nodes for the functional API, and nested-structure helpers."""

from __future__ import annotations

import numpy as np


def flatten(structure, is_leaf=None) -> list:
    """Leaves of nested lists/tuples/dicts, in order (dicts by sorted key)."""
    if is_leaf is not None and is_leaf(structure):
        return [structure]
    if isinstance(structure, dict):
        return [leaf for k in sorted(structure) for leaf in flatten(structure[k], is_leaf)]
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item, is_leaf)]
    return [structure]


def map_structure(fn, structure, is_leaf=None):
    """Apply ``fn`` to every leaf, keeping the nesting."""
    if is_leaf is not None and is_leaf(structure):
        return fn(structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v, is_leaf) for k, v in structure.items()}
    if isinstance(structure, list):
        return [map_structure(fn, v, is_leaf) for v in structure]
    if isinstance(structure, tuple):
        return tuple(map_structure(fn, v, is_leaf) for v in structure)
    return fn(structure)


class KerasTensor:
    """A symbolic tensor: a shape (``None`` for unknown sizes), a dtype and its producer.

    Args:
        shape: tuple with the batch dimension first.
        dtype: dtype name.
        name: optional name (used by ``Input``).
    """

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


class Node:
    """One call of a layer on symbolic tensors: the edge list of the functional graph."""

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
