"""Symbolic tensors and graph nodes for the functional API (tree helpers: lamina.tree)."""

from __future__ import annotations

import numpy as np

from lamina.backend.keras_tensor import KerasTensor
from lamina.ops.node import Node
from lamina.tree import flatten, map_structure

__all__ = ["KerasTensor", "Node", "flatten", "infer_call_output_shapes", "infer_output_shapes",
           "is_shape", "map_structure"]


def infer_output_shapes(layer, input_shape):
    """Find output shapes by calling the layer on zeros, twice when sizes are unknown.

    Dimensions that change between a run with unknown sizes set to 1 and one with
    them set to 2 are unknown (None) in the output; the batch axis is always None.
    """
    from lamina.backend.autodiff import no_grad
    from lamina.backend.scopes import SymbolicScope

    def dummy(shape, fill):
        return np.zeros(tuple(fill if d is None else d for d in shape), dtype=layer.dtype)

    def run(fill):
        args = map_structure(lambda s: dummy(s, fill), input_shape, is_leaf=is_shape)
        with no_grad(), np.errstate(all="ignore"), SymbolicScope():
            out = layer(args, training=False) if layer._call_has_training else layer(args)
        return map_structure(lambda t: tuple(t.shape), out)

    unknown = any(d is None for s in flatten(input_shape, is_leaf=is_shape) for d in s[1:])
    first = run(1)
    second = run(2) if unknown else None

    def merge(a, b):
        dims = [None]
        for i, d in enumerate(a[1:], start=1):
            dims.append(None if b is not None and b[i] != d else d)
        return tuple(dims)

    if is_shape(first):
        return merge(first, second)
    return [merge(a, b) for a, b in zip(first, second or [None] * len(first))]


def infer_call_output_shapes(layer, inputs, args, kwargs):
    """Output shapes of ``layer(inputs, *args, **kwargs)`` where tensors other than
    ``inputs`` are symbolic too (``layer(targets, logits)``) or carry a symbolic mask:
    every KerasTensor is replaced by zeros of its dtype (with an all-True mask where it
    has one), unknown sizes by 1 and then 2, as :func:`infer_output_shapes` does."""
    from lamina.backend.autodiff import no_grad
    from lamina.backend.scopes import SymbolicScope

    tensors = [t for t in flatten((inputs, args, kwargs)) if isinstance(t, KerasTensor)]

    from lamina.layers.symbolic_masks import dummy_tensor

    def run(fill):
        def dummy(t):
            return dummy_tensor(t, fill)

        call_kwargs = map_structure(dummy, dict(kwargs))
        if layer._call_has_training:
            call_kwargs.setdefault("training", False)
        with no_grad(), np.errstate(all="ignore"), SymbolicScope():
            out = layer(map_structure(dummy, inputs), *map_structure(dummy, list(args)),
                        **call_kwargs)
        return map_structure(lambda t: tuple(t.shape), out)

    unknown = any(d is None for t in tensors for d in t.shape[1:])
    first = run(1)
    second = run(2) if unknown else None

    def merge(a, b):
        return tuple([None] + [None if b is not None and b[i] != d else d
                               for i, d in enumerate(a[1:], start=1)])

    if is_shape(first):
        return merge(first, second)
    return [merge(a, b) for a, b in zip(first, second or [None] * len(first))]


def is_shape(x) -> bool:
    return isinstance(x, tuple) and all(d is None or isinstance(d, (int, np.integer)) for d in x)
