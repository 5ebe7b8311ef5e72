"""StackedRNNCells (several cells run as one by ``RNN``) and the ``use_cudnn`` check."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.layers.layer import Layer
from lamina.layers.layer_serialization import deserialize, serialize
from lamina.layers.recurrent import DropoutRNNCell


def check_use_cudnn(use_cudnn):
    """Accept Keras's ``"auto"`` and False; refuse True (Lamina runs on the CPU)."""
    if use_cudnn is True:
        raise ValueError("use_cudnn=True was specified, but cuDNN is not available: Lamina "
                         "computes with numpy on the CPU. Pass use_cudnn='auto' or False. "
                         "Received: use_cudnn=True")
    if use_cudnn not in ("auto", False):
        raise ValueError("Argument `use_cudnn` must be 'auto', True or False. "
                         f"Received: use_cudnn={use_cudnn!r}")
    return use_cudnn


def _sizes(cell):
    size = cell.state_size
    return [size] if isinstance(size, int) else list(size)


class StackedRNNCells(DropoutRNNCell):
    """Wraps a list of RNN cells so that ``RNN`` runs them as one deeper cell.

    Each step feeds the input to the first cell, its output to the second, and so on;
    the states are the cells' states one after the other (a flat list). The built-in
    cells' ``dropout``/``recurrent_dropout`` apply in training: ``RNN`` asks the stack
    for masks once per call and the stack draws one pair per cell (Keras's behaviour).

    Args:
        cells: list of cell layers (built-in or your own: ``call(inputs, states)``
            returning ``(output, new_states)`` and a ``state_size``).

    Example:
        >>> import numpy as np, lamina as keras
        >>> cells = [keras.layers.LSTMCell(4), keras.layers.GRUCell(3)]
        >>> rnn = keras.layers.RNN(keras.layers.StackedRNNCells(cells))
        >>> rnn(np.ones((2, 5, 6), "float32")).shape
        (2, 3)
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells:
            raise ValueError(f"Argument `cells` must be a non-empty list. Received: cells={cells}")
        for cell in cells:
            if not hasattr(cell, "call") or not hasattr(cell, "state_size"):
                raise ValueError("All cells must have a `call` method and a `state_size` "
                                 f"attribute. Received cells={cells}")
        self.cells = cells

    @property
    def state_size(self):
        return [size for cell in self.cells for size in _sizes(cell)]

    @property
    def output_size(self):
        last = self.cells[-1]
        return getattr(last, "output_size", None) or _sizes(last)[0]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self.cells:
            if not cell.built:
                cell.build(shape)
                cell.built = True
            out = getattr(cell, "output_size", None) or _sizes(cell)[0]
            shape = (*shape[:-1], out)
        self.built = True

    def get_dropout_mask(self, step_input):
        """Draw every inner cell's input mask for this call; the stack applies them."""
        batch, dtype = step_input.shape[0], step_input.dtype
        width = step_input.shape[-1]
        self._input_masks = []
        for cell in self.cells:
            mask = None
            if isinstance(cell, DropoutRNNCell):
                mask = cell.get_dropout_mask(np.zeros((batch, width), dtype=dtype))
            self._input_masks.append(mask)
            width = getattr(cell, "output_size", None) or _sizes(cell)[0]
        return None

    def get_recurrent_dropout_mask(self, batch_size, dtype):
        """Draw every inner cell's recurrent mask for this call (held by the cell)."""
        for cell in self.cells:
            if isinstance(cell, DropoutRNNCell):
                cell._recurrent_dropout_mask = cell.get_recurrent_dropout_mask(batch_size,
                                                                               dtype)
        return None

    def call(self, inputs, states, training=False):
        new_states, start = [], 0
        masks = getattr(self, "_input_masks", None) if training else None
        for i, cell in enumerate(self.cells):
            n = len(_sizes(cell))
            own = list(states[start:start + n])
            start += n
            if isinstance(cell, DropoutRNNCell) and not training:
                cell._recurrent_dropout_mask = None  # masks of a training call end with it
            if masks is not None and masks[i] is not None:
                inputs = ops.multiply(inputs, masks[i])
            kwargs = {"training": training} if cell._call_has_training else {}
            inputs, cell_states = cell.call(inputs, own, **kwargs)
            if not isinstance(cell_states, (list, tuple)):
                cell_states = [cell_states]
            new_states.extend(cell_states)
        return inputs, new_states

    def get_config(self):
        return {**super().get_config(), "cells": [serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["cells"] = [c if isinstance(c, Layer) else deserialize(c, custom_objects)
                           for c in config["cells"]]
        return cls(**config)
