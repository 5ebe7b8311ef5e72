"""TimeDistributed: applies a layer to every temporal slice of its input."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend.tensor import Tensor
from lamina.layers.layer import Layer
from lamina.layers.recurrent import deserialize_layer, serialize_layer
from lamina.layers.wrapper import Wrapper


class TimeDistributed(Wrapper):
    """Applies ``layer`` to each timestep (axis 1) independently, with shared weights.

    The timesteps are folded into the batch axis, so the wrapped layer runs once on
    ``(batch * timesteps, ...)``.

    Args:
        layer: the layer to apply (e.g. ``Dense``, ``Conv2D``).

    Input shape:
        ``(batch_size, timesteps, ...)``, at least 3D.

    Output shape:
        ``(batch_size, timesteps, *layer_output_shape[1:])``.

    Example:
        >>> import lamina as keras
        >>> keras.layers.TimeDistributed(keras.layers.Dense(4))(np.ones((2, 5, 3))).shape
        (2, 5, 4)
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                "Please initialize `TimeDistributed` layer with a `Layer` instance. "
                f"Received: layer={layer!r}")
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def _child_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                "`TimeDistributed` Layer should be passed an `input_shape` with at least 3 "
                f"dimensions, received: {tuple(input_shape)}")
        return (input_shape[0], *tuple(input_shape[2:]))

    def build(self, input_shape):
        child = self._child_shape(input_shape)
        if not self.layer.built:
            self.layer.build(child)
            self.layer.built = True
        self.built = True

    def compute_output_shape(self, input_shape):
        child = tuple(self.layer.compute_output_shape(self._child_shape(input_shape)))
        return (child[0], input_shape[1], *child[1:])

    def call(self, inputs, training=None, mask=None):
        batch, steps = inputs.shape[0], inputs.shape[1]
        flat = ops.reshape(inputs, (batch * steps, *inputs.shape[2:]))
        kwargs = {}
        if self.layer._call_has_training:
            kwargs["training"] = training
        if self.layer._call_has_mask and mask is not None:
            data = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
            kwargs["mask"] = data.reshape((batch * steps, *data.shape[2:]))
        out = self.layer(flat, **kwargs)
        return ops.reshape(out, (batch, steps, *out.shape[1:]))

    def get_config(self):
        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        return cls(**config)
