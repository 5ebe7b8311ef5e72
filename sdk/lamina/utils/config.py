"""``keras.utils.Config``: a dict whose keys are also attributes, that can be frozen."""

from __future__ import annotations

import copy
import json


class Config:
    """A configuration object: keys read and written as attributes or items.

    ``config.learning_rate = 0.1`` and ``config["learning_rate"] = 0.1`` are the same;
    after :meth:`freeze` any change raises ``ValueError``. Iterating yields the keys in
    sorted order; an unknown attribute raises ``AttributeError`` suggesting the
    closest key.

    Args:
        **kwargs: the initial keys and values.

    Example:

    >>> config = Config(units=4)
    >>> config.rate = 0.5
    >>> sorted(config.items())
    [('rate', 0.5), ('units', 4)]
    >>> config.freeze()
    >>> config.frozen
    True
    """

    def __init__(self, **kwargs):
        object.__setattr__(self, "_config", kwargs)
        object.__setattr__(self, "_frozen", False)

    @property
    def frozen(self) -> bool:
        """Whether the config is frozen (read-only)."""
        return self._frozen

    def freeze(self) -> None:
        """Make the config read-only."""
        object.__setattr__(self, "_frozen", True)

    def unfreeze(self) -> None:
        """Make the config writable again."""
        object.__setattr__(self, "_frozen", False)

    def _raise_if_frozen(self) -> None:
        if self._frozen:
            raise ValueError("Cannot mutate attribute(s) because the config is frozen.")

    def as_dict(self) -> dict:
        """A shallow copy of the keys and values."""
        return copy.copy(self._config)

    def to_json(self) -> str:
        """The config as a JSON string."""
        return json.dumps(self._config)

    def keys(self):
        return self._config.keys()

    def values(self):
        return self._config.values()

    def items(self):
        return self._config.items()

    def get(self, keyname, value=None):
        return self._config.get(keyname, value)

    def pop(self, *args):
        self._raise_if_frozen()
        return self._config.pop(*args)

    def update(self, *args, **kwargs):
        self._raise_if_frozen()
        return self._config.update(*args, **kwargs)

    def __setattr__(self, name, value):
        if hasattr(type(self), name):
            object.__setattr__(self, name, value)
            return
        self._raise_if_frozen()
        self._config[name] = value

    def __getattr__(self, name):
        config = object.__getattribute__(self, "_config")
        if name in config:
            return config[name]
        message = f"Unknown attribute: '{name}'."
        import difflib

        close = difflib.get_close_matches(name, list(config), n=1, cutoff=0.7)
        if close:
            message += f" Did you mean '{close[0]}'?"
        raise AttributeError(message)

    def __setitem__(self, key, item):
        self._raise_if_frozen()
        self._config[key] = item

    def __getitem__(self, key):
        return self._config[key]

    def __delitem__(self, key):
        self._raise_if_frozen()
        del self._config[key]

    def __contains__(self, item) -> bool:
        return item in self._config

    def __iter__(self):
        return iter(sorted(self._config))

    def __len__(self) -> int:
        return len(self._config)

    def __repr__(self) -> str:
        return f"<Config {self._config}>"


def get_source_inputs(tensor):
    """The input tensors needed to compute ``tensor`` (``keras.utils.get_source_inputs``).

    Args:
        tensor: a symbolic tensor (from ``Input`` and layer calls); anything else is
            returned unchanged, as Keras does.

    Returns:
        A list of the ``Input`` tensors ``tensor`` depends on, each once, in the order
        they are reached.
    """
    from lamina.backend.keras_tensor import KerasTensor
    from lamina.layers.input_layer import InputLayer

    if not isinstance(tensor, KerasTensor):
        return tensor
    node = tensor.node
    if node is None:
        return [tensor]
    if isinstance(node.operation, InputLayer):
        from lamina.tree import flatten

        return flatten(node.outputs)
    sources = []
    for parent in node.input_tensors:
        for x in get_source_inputs(parent):
            if all(x is not t for t in sources):
                sources.append(x)
    return sources
