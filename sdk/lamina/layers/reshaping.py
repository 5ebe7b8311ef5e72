"""Reshaping layers: Flatten, Reshape."""

from __future__ import annotations

import math

from lamina import ops
from lamina.layers.layer import Layer


class Flatten(Layer):
    """Flattens every axis but the batch axis.

    Args:
        data_format: ``"channels_last"`` (default) or ``"channels_first"`` (moves the
            channel axis last before flattening, as Keras does).

    Input shape:
        ``(batch_size, ...)``.

    Output shape:
        ``(batch_size, prod(...))``.
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError("data_format must be 'channels_last' or 'channels_first'. "
                             f"Received: data_format={data_format!r}")
        self.data_format = data_format
        self.built = True

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = ops.moveaxis(inputs, 1, -1)
        return ops.reshape(inputs, (inputs.shape[0], -1))

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(math.prod(rest))
        return (input_shape[0], size)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes the input (batch axis excluded) to ``target_shape``; one entry may be -1.

    Args:
        target_shape: tuple of ints, without the batch dimension.

    Input shape:
        ``(batch_size, ...)``.

    Output shape:
        ``(batch_size, *target_shape)``.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            target_shape = tuple(int(d) for d in target_shape)
        except TypeError as exc:
            raise ValueError(
                f"`target_shape` must be a tuple of ints. Received: target_shape={target_shape!r}"
            ) from exc
        if sum(d == -1 for d in target_shape) > 1 or any(d < -1 or d == 0 for d in target_shape):
            raise ValueError("`target_shape` must hold positive ints and at most one -1. "
                             f"Received: target_shape={target_shape}")
        self.target_shape = target_shape
        self.built = True

    def _resolve(self, input_shape):
        shape = list(self.target_shape)
        if -1 in shape:
            known = math.prod(d for d in shape if d != -1)
            rest = input_shape[1:]
            if any(d is None for d in rest):
                shape[shape.index(-1)] = None
            else:
                total = math.prod(rest)
                if total % known:
                    raise ValueError(
                        f"total size of the input {tuple(rest)} is not divisible by "
                        f"{known}: cannot reshape to target_shape={self.target_shape}")
                shape[shape.index(-1)] = total // known
        elif all(d is not None for d in input_shape[1:]) and math.prod(
                input_shape[1:]) != math.prod(shape):
            raise ValueError(
                f"Cannot reshape input of shape {tuple(input_shape[1:])} to "
                f"target_shape={self.target_shape}: the sizes differ")
        return tuple(shape)

    def call(self, inputs):
        return ops.reshape(inputs, (inputs.shape[0], *self._resolve(inputs.shape)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._resolve(input_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
