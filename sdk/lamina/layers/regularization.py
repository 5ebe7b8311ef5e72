"""Regularisation layers: Dropout."""

from __future__ import annotations

from lamina import ops
from lamina.backend.random import SeedGenerator
from lamina.layers.layer import Layer


class Dropout(Layer):
    """Sets a fraction ``rate`` of inputs to 0 during training, scaling the rest by 1/(1-rate).

    Args:
        rate: float in [0, 1), the fraction of units to drop.
        noise_shape: optional shape of the binary mask (``None`` entries follow the input).
        seed: optional int for a reproducible mask stream.

    Call arguments:
        inputs: any tensor.
        training: drop only when True.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(
                f"Invalid value received for argument `rate`. Expected a float value between "
                f"0 and 1. Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return ops.dropout(inputs, self.rate, noise_shape=self.noise_shape,
                               rng=self.seed_generator.rng)
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": self.noise_shape}
