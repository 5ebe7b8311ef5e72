"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector.

The spatial ones (UpSampling, ZeroPadding, Cropping) live in :mod:`lamina.layers.resampling`.
"""

from __future__ import annotations

import math

import numpy as np

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


def _check_ndim(layer, shape, ndim):
    if len(shape) != ndim:
        raise ValueError(
            f"Input 0 of layer '{layer.name}' is incompatible with the layer: expected "
            f"ndim={ndim}, found ndim={len(shape)}. Full shape received: {tuple(shape)}")


class Permute(Layer):
    """Permutes the non-batch axes; ``dims`` counts them from 1.

    Args:
        dims: tuple, a permutation of ``1..rank-1`` (``(2, 1)`` swaps the two axes of
            a sequence).

    Input shape:
        ``(batch_size, *axes)`` with ``len(axes) == len(dims)``.

    Output shape:
        ``(batch_size, *[axes[d - 1] for d in dims])``.
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                "Invalid permutation argument `dims` for Permute Layer. The set of indices "
                f"in `dims` must be consecutive and start from 1. Received dims={dims}")
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        _check_ndim(self, inputs.shape, len(self.dims) + 1)
        return ops.transpose(inputs, (0, *self.dims))

    def compute_output_shape(self, input_shape):
        _check_ndim(self, input_shape, len(self.dims) + 1)
        return (input_shape[0], *[input_shape[d] for d in self.dims])

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """Repeats a vector ``n`` times: ``(batch, features) -> (batch, n, features)``.

    Args:
        n: positive int, the number of repetitions.

    Input shape:
        2D ``(batch_size, features)``.

    Output shape:
        3D ``(batch_size, n, features)``.
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise TypeError(f"Expected a positive integer for the argument `n`. Received: n={n!r}")
        self.n = int(n)
        self.built = True

    def call(self, inputs):
        _check_ndim(self, inputs.shape, 2)
        b, f = inputs.shape
        return ops.broadcast_to(ops.reshape(inputs, (b, 1, f)), (b, self.n, f))

    def compute_output_shape(self, input_shape):
        _check_ndim(self, input_shape, 2)
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}
