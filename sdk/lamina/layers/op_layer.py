"""``lamina.ops`` calls on symbolic tensors: nodes of an internal layer that replays the op.

``keras.ops.add(a, b)`` or ``a + b`` on KerasTensors records, as in Keras 3, an
operation node in the functional graph: an :class:`OpLayer` holding the function and
its non-tensor arguments, called on the KerasTensor arguments. A functional model runs
it like any other node. Op layers hold no weights and are not listed in
``model.layers``; a model that contains them cannot be serialised to a config yet.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import no_grad
from lamina.backend.tensor import Tensor
from lamina.layers.layer import Layer
from lamina.layers.symbolic import KerasTensor, Node, map_structure
from lamina.utils.naming import uniquify


class _Slot:
    """Where the ``index``-th tensor argument goes in the stored arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class OpLayer(Layer):
    """One ``lamina.ops`` function applied to the tensors of a functional graph.

    Args:
        fn: the op (an undecorated ``lamina.ops`` function).
        args: its positional arguments, KerasTensors replaced by slots.
        kwargs: its keyword arguments, likewise.
    """

    def __init__(self, fn, args, kwargs):
        super().__init__(name=uniquify(fn.__name__))
        self.fn = fn
        self._args = args
        self._kwargs = kwargs
        self.built = True

    def call(self, tensors):
        def fill(a):
            return tensors[a.index] if isinstance(a, _Slot) else a

        args = map_structure(fill, self._args)
        kwargs = map_structure(fill, self._kwargs)
        return self.fn(*args, **kwargs)

    def _convert_input(self, x):
        # An op keeps its inputs' dtypes (ints stay ints, float64 stays float64).
        return x if isinstance(x, Tensor) else Tensor(np.asarray(x))

    def _symbolic_call(self, tensors, *args, **kwargs):
        outputs = map_structure(
            lambda spec: KerasTensor(spec[0], dtype=spec[1]), self._output_specs(tensors),
            is_leaf=lambda s: isinstance(s, tuple) and len(s) == 2 and isinstance(s[1], str))
        Node(self, tensors, (), {}, outputs)
        return outputs

    def _output_specs(self, tensors):
        """``(shape, dtype)`` of each output, from calls on placeholders; sizes that change
        between unknown sizes set to 1 and to 2 are unknown (None)."""

        def run(fill):
            values = [Tensor(_placeholder(tuple(fill if d is None else d for d in t.shape),
                                          t.dtype)) for t in tensors]
            with no_grad(), np.errstate(all="ignore"):
                out = self.call(values)
            return map_structure(lambda o: (tuple(np.shape(getattr(o, "data", o))),
                                            np.asarray(getattr(o, "data", o)).dtype.name), out)

        first, second = run(1), run(2)

        def merge(a, b):
            shape = tuple(None if len(a[0]) != len(b[0]) or d != e else d
                          for d, e in zip(a[0], b[0]))
            return shape, a[1]

        if isinstance(first, tuple) and len(first) == 2 and isinstance(first[1], str):
            return merge(first, second)
        return type(first)(merge(a, b) for a, b in zip(first, second))

    def get_config(self):
        raise NotImplementedError(
            f"The functional graph calls `keras.ops.{self.fn.__name__}` on symbolic tensors "
            f"(node '{self.name}'); saving such a model's config is not supported yet. Wrap "
            "the computation in a Layer subclass with `get_config` to save the model.")


def _placeholder(shape, dtype) -> np.ndarray:
    """Zeros, with float matrices made identities: linear-algebra ops (inv, solve,
    cholesky) need a nonsingular, positive-definite input to report their shapes."""
    value = np.zeros(shape, dtype=dtype)
    if len(shape) >= 2 and np.issubdtype(value.dtype, np.floating):
        value += np.eye(shape[-2], shape[-1], dtype=dtype)
    return value


def symbolic_op(fn, args, kwargs):
    """Record ``fn(*args, **kwargs)`` on KerasTensors as a node; return its KerasTensor(s)."""
    tensors = []

    def slot(a):
        if isinstance(a, KerasTensor):
            tensors.append(a)
            return _Slot(len(tensors) - 1)
        return a

    args = map_structure(slot, tuple(args))
    kwargs = map_structure(slot, dict(kwargs))
    return OpLayer(fn, args, kwargs)(tensors)


def is_op_layer(layer) -> bool:
    return isinstance(layer, OpLayer)


__all__ = ["OpLayer", "is_op_layer", "symbolic_op"]
