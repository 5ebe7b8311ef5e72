"""``InputLayer`` and ``Input``: the entry points of functional models."""

from __future__ import annotations

from lamina.backend.config import standardize_dtype
from lamina.layers.layer import Layer
from lamina.layers.symbolic import KerasTensor, Node


class InputLayer(Layer):
    """The layer behind :func:`Input`: holds the input's batch shape and dtype.

    Args:
        shape: shape without the batch dimension.
        batch_size: optional fixed batch size.
        dtype: dtype of the input; ``floatx()`` by default.
        batch_shape: full shape with the batch dimension (instead of ``shape``).
        name: layer name.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None,
                 input_tensor=None, optional=False, name=None, ragged=None, **kwargs):
        if "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        if "input_shape" in kwargs:
            shape = kwargs.pop("input_shape")
        super().__init__(name=name, dtype=dtype, **kwargs)
        if shape is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `shape` and `batch_shape` at the same time. "
                             f"Received: shape={shape}, batch_shape={batch_shape}")
        if shape is None and batch_shape is None:
            raise ValueError("You must pass a `shape` argument to Input. Received: shape=None")
        if batch_shape is None:
            if isinstance(shape, int):
                shape = (shape,)
            try:
                shape = tuple(shape)
            except TypeError as exc:
                raise ValueError(
                    f"`shape` must be a tuple of ints. Received: shape={shape!r}") from exc
            batch_shape = (batch_size, *shape)
        batch_shape = tuple(batch_shape)
        for d in batch_shape:
            if d is not None and (not isinstance(d, int) or d < 0):
                raise ValueError(f"Input dimensions must be non-negative integers or None. "
                                 f"Received: shape={batch_shape[1:]}")
        self.batch_shape = batch_shape
        self.dtype = standardize_dtype(dtype)
        self.sparse = bool(sparse)
        self.optional = optional
        self.built = True
        tensor = KerasTensor(batch_shape, dtype=self.dtype, name=self.name)
        Node(self, (), outputs=tensor)
        self.output_tensor = tensor

    def call(self, inputs):
        return inputs

    def get_config(self) -> dict:
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype,
                "sparse": self.sparse, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, optional=False, ragged=None):  # noqa: N802 - Keras's name
    """A symbolic input for a functional model.

    Args:
        shape: shape without the batch dimension, e.g. ``(28, 28, 1)``.
        batch_size: optional fixed batch size.
        dtype: dtype of the data; ``floatx()`` by default.
        batch_shape: full shape including the batch dimension.
        name: name of the input (also the key for dict inputs in ``fit``).

    Returns:
        A :class:`~lamina.layers.symbolic.KerasTensor`.

    Example:
        >>> import lamina as keras
        >>> x = keras.Input(shape=(4,))
        >>> x.shape
        (None, 4)
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                       batch_shape=batch_shape, name=name, optional=optional)
    return layer.output_tensor
