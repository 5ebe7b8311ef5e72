"""``Operation``: what layers and ops share — compute on data, record a node on symbols.

Calling an operation on Tensors or arrays runs ``call``; calling it on KerasTensors
records a :class:`~lamina.ops.node.Node` of the functional graph and returns
KerasTensors shaped by ``compute_output_spec`` (Keras 3's design). ``Layer`` builds on
it; every ``lamina.ops`` function is wrapped by :func:`dispatch_symbolic`, which on
symbolic arguments records a :class:`FunctionOperation` node that replays the function.
The backend knows nothing of this module: symbolic dispatch lives here, in ``ops``.
"""

from __future__ import annotations

import functools

import numpy as np

from lamina.backend.autodiff import no_grad
from lamina.backend.keras_tensor import KerasTensor
from lamina.backend.scopes import SymbolicScope
from lamina.backend.tensor import Tensor
from lamina.ops.node import Node
from lamina.tree import map_structure
from lamina.utils.naming import to_snake_case, uniquify


def any_symbolic(args) -> bool:
    """Whether ``args`` (or a list/tuple among them, one level deep) holds a KerasTensor."""
    for a in args:
        if isinstance(a, KerasTensor):
            return True
        if isinstance(a, (list, tuple)) and any(isinstance(t, KerasTensor) for t in a):
            return True
    return False


class Operation:
    """Base class of operations (``keras.Operation``): a ``call`` that also traces.

    Subclass it and implement ``call`` (and, optionally, ``compute_output_spec``) for a
    custom op that works on data and inside functional models alike.

    Args:
        name: the operation's name; ``snake_case(ClassName)`` plus a counter by default.

    Raises:
        ValueError: for a name that is not a string or contains ``/``.

    Example:
        >>> import lamina as keras
        >>> class Double(keras.Operation):
        ...     def call(self, x):
        ...         return keras.ops.multiply(x, 2.0)
        >>> float(Double()(keras.ops.ones(())).numpy())
        2.0
        >>> Double()(keras.Input(shape=(3,))).shape
        (None, 3)
    """

    _call_has_training = False
    _call_has_mask = False

    def __init__(self, name=None):
        if name is not None and (not isinstance(name, str) or "/" in name):
            raise ValueError(
                f"Argument `name` must be a string without '/'. Received: name={name!r}")
        self.name = name or uniquify(to_snake_case(type(self).__name__))
        self._inbound_nodes = []

    def __call__(self, *args, **kwargs):
        if any_symbolic(args) or (kwargs and any_symbolic(kwargs.values())):
            return self.symbolic_call(*args, **kwargs)
        return self.call(*args, **kwargs)

    def call(self, *args, **kwargs):
        raise NotImplementedError(f"Operation {type(self).__name__} does not implement call().")

    def symbolic_call(self, *args, **kwargs):
        """Record a node for a call on KerasTensors; return its output KerasTensor(s)."""
        outputs = self.compute_output_spec(*args, **kwargs)
        Node(self, args[0] if args else None, args[1:], kwargs, outputs)
        return outputs

    def compute_output_spec(self, *args, **kwargs):
        """Output KerasTensor(s), found by calling ``call`` on placeholders: sizes that
        change between unknown sizes set to 1 and to 2 are unknown (``None``)."""
        specs = output_specs(lambda *a, **k: self.call(*a, **k), args, kwargs)
        return map_structure(lambda spec: KerasTensor(spec[0], dtype=spec[1]), specs,
                             is_leaf=_is_spec)

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


def _is_spec(s) -> bool:
    return isinstance(s, tuple) and len(s) == 2 and isinstance(s[1], str)


def placeholder(shape, dtype) -> np.ndarray:
    """Zeros, with float matrices made identities: linear-algebra ops (inv, solve,
    cholesky) need a nonsingular, positive-definite input to report their shapes."""
    value = np.zeros(shape, dtype=dtype)
    if len(shape) >= 2 and np.issubdtype(value.dtype, np.floating):
        value += np.eye(shape[-2], shape[-1], dtype=dtype)
    return value


def output_specs(fn, args, kwargs):
    """``(shape, dtype)`` of each output of ``fn`` on placeholders for the KerasTensors."""

    def run(fill):
        def concrete(t):
            if not isinstance(t, KerasTensor):
                return t
            return Tensor(placeholder(tuple(fill if d is None else d for d in t.shape),
                                      t.dtype))

        a = map_structure(concrete, tuple(args))
        k = map_structure(concrete, dict(kwargs))
        with no_grad(), np.errstate(all="ignore"), SymbolicScope():
            out = fn(*a, **k)
        return map_structure(lambda o: (tuple(np.shape(getattr(o, "data", o))),
                                        np.asarray(getattr(o, "data", o)).dtype.name), out)

    first, second = run(1), run(2)

    def merge(a, b):
        shape = tuple(None if len(a[0]) != len(b[0]) or d != e else d
                      for d, e in zip(a[0], b[0]))
        return shape, a[1]

    if _is_spec(first):
        return merge(first, second)
    return type(first)(merge(a, b) for a, b in zip(first, second))


class _Slot:
    """Where the ``index``-th tensor argument goes in the stored arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class FunctionOperation(Operation):
    """A ``lamina.ops`` function applied to tensors of a functional graph (its node).

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

    def __call__(self, tensors):
        if any(isinstance(t, KerasTensor) for t in tensors):
            return self.symbolic_call(tensors)
        # An op keeps its inputs' dtypes (ints stay ints, float64 stays float64).
        return self.call([t if isinstance(t, Tensor) or t is None else Tensor(np.asarray(t))
                          for t in tensors])

    def call(self, tensors):
        def fill(a):
            return tensors[a.index] if isinstance(a, _Slot) else a

        return self.fn(*map_structure(fill, self._args), **map_structure(fill, self._kwargs))

    def symbolic_call(self, tensors):
        outputs = self.compute_output_spec(tensors)
        Node(self, tensors, (), {}, outputs)
        return outputs

    def get_config(self):
        raise NotImplementedError(
            f"The functional graph calls `keras.ops.{self.fn.__name__}` on symbolic tensors "
            f"(node '{self.name}'); saving such a model's config is not supported yet. Wrap "
            "the computation in a Layer subclass with `get_config` to save the model.")


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
    return FunctionOperation(fn, args, kwargs)(tensors)


def dispatch_symbolic(fn):
    """Wrap the op ``fn`` so that a call on KerasTensors records a graph node.

    On data the wrapper calls ``fn`` directly (one cheap scan of the arguments); on
    symbolic tensors it returns the KerasTensor(s) of a new :class:`FunctionOperation`
    node, which replays ``fn`` on data.
    """

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if any_symbolic(args) or (kwargs and any_symbolic(kwargs.values())):
            return symbolic_op(fn, args, kwargs)
        return fn(*args, **kwargs)

    op.__wrapped__ = fn
    return op


__all__ = ["FunctionOperation", "Operation", "any_symbolic", "dispatch_symbolic",
           "output_specs", "symbolic_op"]


