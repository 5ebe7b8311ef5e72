"""``Tensor``: an ndarray plus the link to the primitive that produced it.

``Variable`` is a leaf tensor that holds model state (weights, optimizer slots).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.config import standardize_dtype
from lamina.backend.operators import OperatorMixin
from lamina.backend.scopes import current_path, get_stateless_scope


class Tensor(OperatorMixin):
    """An n-dimensional array that can take part in reverse-mode autodiff.

    Args:
        data: array-like; converted with ``np.asarray`` (no copy if already an array).
        requires_grad: whether gradients flow to this tensor.
    """

    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_keras_mask", "_keras_logits",
                 "__weakref__")
    __array_priority__ = 100

    def __init__(self, data, requires_grad: bool = False) -> None:
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.requires_grad = requires_grad
        self.grad = None
        self._ctx = None
        self._keras_mask = None
        self._keras_logits = None

    # -- array protocol -------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> str:
        return self.data.dtype.name

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype=None, copy=None):
        if dtype is None:
            return self.data
        return self.data.astype(dtype, copy=False)

    def numpy(self) -> np.ndarray:
        """Return the value as an ndarray (a view, not a copy, for plain tensors)."""
        return self.data

    def item(self):
        return self.data.item()

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"<Tensor shape={self.shape} dtype={self.dtype}{grad}>\n{self.data!r}"

    def backward(self, gradient=None) -> None:
        """Accumulate gradients into ``.grad`` of every leaf this tensor depends on."""
        from lamina.backend.autodiff import backward

        backward(self, gradient)


class Variable(Tensor):
    """A leaf tensor holding state: a layer weight or an optimizer slot (``keras.Variable``).

    Args:
        initializer: the initial value (array-like, copied and cast to ``dtype``), or an
            initializer (a name such as ``"zeros"``, an ``Initializer``, or a callable
            ``(shape, dtype) -> array``) called with ``shape``.
        shape: the shape, required with an initializer; checked against an array value.
        dtype: dtype name; ``floatx()`` by default for floating values.
        trainable: whether optimizers update it.
        autocast: kept for Keras compatibility (Lamina computes in the variable's dtype).
        aggregation: how replicas combine it: ``"none"``, ``"mean"``, ``"sum"`` or
            ``"only_first_replica"``.
        synchronization: ``"none"``, ``"on_write"``, ``"on_read"`` or ``"auto"``.
        name: short name, e.g. ``"kernel"``.
        layout: a device layout; Lamina runs on one device, so only ``None``.

    The value lives in ``.data``. Update it in place, or through :meth:`assign`,
    which copies into the existing buffer (optimizers may keep views of it).

    Raises:
        ValueError: for an initializer without ``shape``, a value of another shape,
            an unknown ``aggregation``/``synchronization``, or a ``layout``.
    """

    __slots__ = ("_trainable", "name", "path", "constraint", "regularizer", "autocast",
                 "aggregation", "synchronization")

    _AGGREGATIONS = ("none", "mean", "sum", "only_first_replica")
    _SYNCHRONIZATIONS = ("none", "on_write", "on_read", "auto")

    def __init__(self, initializer, shape=None, dtype=None, trainable: bool = True,
                 autocast=True, aggregation="none", synchronization="auto", name=None,
                 layout=None) -> None:
        if aggregation not in self._AGGREGATIONS:
            raise ValueError(f"Invalid value for argument `aggregation`. Expected one of "
                             f"{self._AGGREGATIONS}. Received: aggregation={aggregation!r}")
        if synchronization not in self._SYNCHRONIZATIONS:
            raise ValueError(f"Invalid value for argument `synchronization`. Expected one of "
                             f"{self._SYNCHRONIZATIONS}. Received: "
                             f"synchronization={synchronization!r}")
        if layout is not None:
            raise ValueError("Lamina runs on one device: a Variable takes no `layout`. "
                             f"Received: layout={layout!r}")
        if isinstance(initializer, str) or (callable(initializer)
                                            and not isinstance(initializer, Tensor)):
            if shape is None:
                raise ValueError("When creating a Variable from an initializer, the `shape` "
                                 f"argument should be specified. Received: "
                                 f"initializer={initializer!r} and shape={shape}")
            from lamina import initializers

            value = np.asarray(initializers.get(initializer)(
                tuple(shape), dtype=standardize_dtype(dtype)))
        else:
            value = np.asarray(initializer.data if isinstance(initializer, Tensor)
                               else initializer)
            if shape is not None and tuple(shape) != value.shape:
                raise ValueError(f"Initial value has shape {value.shape}, but the `shape` "
                                 f"argument is {tuple(shape)}.")
        if dtype is None and not np.issubdtype(value.dtype, np.floating):
            dtype = value.dtype
        value = np.array(value, dtype=standardize_dtype(dtype), copy=True)
        super().__init__(value, requires_grad=bool(trainable))
        self._trainable = bool(trainable)
        self.name = "variable" if name is None else name
        scope = current_path()
        self.path = f"{scope}/{self.name}" if scope else self.name
        self.constraint = None
        self.regularizer = None
        self.autocast = autocast
        self.aggregation = aggregation
        self.synchronization = synchronization

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self.requires_grad = bool(value)

    @property
    def value(self) -> np.ndarray:
        return self.data

    def numpy(self) -> np.ndarray:
        """Return a copy of the value."""
        return self.data.copy()

    def assign(self, value) -> None:
        """Copy ``value`` into the variable, checking its shape."""
        value = np.asarray(value)
        if value.shape != self.data.shape:
            raise ValueError(
                f"Cannot assign to variable '{self.path}': expected shape {self.data.shape}, "
                f"received value with shape {value.shape}"
            )
        _record_stateless(self)
        self.data[...] = value

    def assign_add(self, value) -> None:
        _record_stateless(self)
        self.data += np.asarray(value, dtype=self.data.dtype)

    def assign_sub(self, value) -> None:
        _record_stateless(self)
        self.data -= np.asarray(value, dtype=self.data.dtype)

    def __repr__(self) -> str:
        return f"<Variable path={self.path} shape={self.shape} dtype={self.dtype}>"


def _record_stateless(variable) -> None:
    """Inside a ``StatelessScope``, keep the value a write is about to replace."""
    scope = get_stateless_scope()
    if scope is not None:
        scope.record(variable)
