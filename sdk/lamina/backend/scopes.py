"""Keras's scopes: ``name_scope`` (variable paths), ``SymbolicScope`` (shape inference is
running), ``StatelessScope`` (variable writes are recorded, not applied).

Each keeps a per-thread stack, so scopes nest and threads (PyDataset workers, the
all-reduce) do not see each other's.
"""

from __future__ import annotations

import threading

import numpy as np

_STATE = threading.local()


def _stack(kind: str) -> list:
    stack = getattr(_STATE, kind, None)
    if stack is None:
        stack = []
        setattr(_STATE, kind, stack)
    return stack


class name_scope:  # noqa: N801 - Keras's name
    """Prefix the paths of variables created inside with ``name/`` (``keras.name_scope``).

    Args:
        name: the scope's name (no ``/``).
        caller: optional object entering the scope (a layer).
        deduplicate: do not re-enter a scope of the same name opened by the same caller.
        override_parent: an absolute path replacing the enclosing scopes.

    Raises:
        ValueError: for a name that is not a string or contains ``/``.

    Example:
        >>> import lamina as keras
        >>> with keras.name_scope("block"):
        ...     v = keras.Variable(1.0, name="scale")
        >>> v.path
        'block/scale'
    """

    def __init__(self, name, caller=None, deduplicate=True, override_parent=None):
        if not isinstance(name, str) or "/" in name:
            raise ValueError("Argument `name` must be a string and cannot contain character "
                             f"`/`. Received: name={name!r}")
        self.name, self.caller = name, caller
        self.deduplicate, self.override_parent = deduplicate, override_parent
        self._pushed = False

    def __enter__(self):
        stack = _stack("names")
        if self.deduplicate and stack and self.caller is not None \
                and stack[-1].caller is self.caller and stack[-1].name == self.name:
            return self
        stack.append(self)
        self._pushed = True
        return self

    def __exit__(self, *exc):
        if self._pushed:
            _stack("names").pop()
            self._pushed = False


def current_path() -> str:
    """The ``/``-joined names of the open ``name_scope``s ("" outside any)."""
    parts = []
    for scope in _stack("names"):
        if scope.override_parent is not None:
            parts = [p for p in scope.override_parent.split("/") if p]
        parts.append(scope.name)
    return "/".join(parts)


class SymbolicScope:
    """Marks code that runs to infer shapes, not to compute values (``keras.SymbolicScope``).

    Lamina infers a layer's output shapes by calling it on placeholder arrays; that call
    runs inside this scope, so a custom layer can tell with :func:`in_symbolic_scope`.
    """

    def __enter__(self):
        _stack("symbolic").append(self)
        return self

    def __exit__(self, *exc):
        _stack("symbolic").pop()


def in_symbolic_scope() -> bool:
    """Whether a :class:`SymbolicScope` is open in this thread."""
    return bool(_stack("symbolic"))


class StatelessScope:
    """Run code without changing variables: writes are recorded in the scope
    (``keras.StatelessScope``).

    Inside, ``Variable.assign``/``assign_add``/``assign_sub`` update what the code sees;
    on exit every variable written (or mapped) gets its value back, and the new values
    stay readable through :meth:`get_current_value`.

    Args:
        state_mapping: ``(variable, value)`` pairs the variables hold inside the scope.
        collect_losses: collect ``add_loss`` terms into ``losses`` instead of the layers.
        initialize_variables: kept for Keras compatibility (Lamina's variables always
            have values).

    Raises:
        ValueError: for a mapping entry that is not a Variable or has the wrong shape.

    Example:
        >>> import lamina as keras
        >>> v = keras.Variable([1.0, 2.0])
        >>> with keras.StatelessScope() as scope:
        ...     v.assign([5.0, 6.0])
        >>> v.numpy().tolist(), scope.get_current_value(v).tolist()
        ([1.0, 2.0], [5.0, 6.0])
    """

    def __init__(self, state_mapping=None, collect_losses=False, initialize_variables=True):
        from lamina.backend.tensor import Variable

        self.collect_losses = collect_losses
        self.initialize_variables = initialize_variables
        self.losses = []
        self._mapping = {}
        for variable, value in state_mapping or ():
            if not isinstance(variable, Variable):
                raise ValueError("Invalid reference variable in StatelessScope: all keys in "
                                 "argument `mapping` must be Variable instances. Received "
                                 f"instead: {variable!r}")
            value = np.asarray(value, dtype=variable.data.dtype)
            if value.shape != variable.data.shape:
                raise ValueError("Invalid variable value in StatelessScope: all values in "
                                 "argument `mapping` must be tensors with a shape that "
                                 "matches the corresponding variable shape. For variable "
                                 f"{variable.path}, received invalid value with shape "
                                 f"{value.shape} (expected {variable.data.shape}).")
            self._mapping[id(variable)] = (variable, value)
        self._saved = {}

    def __enter__(self):
        _stack("stateless").append(self)
        for variable, value in self._mapping.values():
            self.record(variable)
            variable.data[...] = value
        return self

    def record(self, variable) -> None:
        """Remember ``variable``'s value before its first write in the scope."""
        if id(variable) not in self._saved:
            self._saved[id(variable)] = (variable, variable.data.copy())

    def get_current_value(self, variable):
        """The value ``variable`` had at the end of the scope (None if never written)."""
        entry = self._mapping.get(id(variable))
        return None if entry is None else entry[1]

    def add_loss(self, loss) -> None:
        self.losses.append(loss)

    def __exit__(self, *exc):
        _stack("stateless").pop()
        for key, (variable, original) in self._saved.items():
            self._mapping[key] = (variable, variable.data.copy())
            variable.data[...] = original
        self._saved = {}


def get_stateless_scope():
    """The innermost open :class:`StatelessScope` of this thread, or None."""
    stack = _stack("stateless")
    return stack[-1] if stack else None


def in_stateless_scope() -> bool:
    """Whether a :class:`StatelessScope` is open in this thread."""
    return bool(_stack("stateless"))
