"""Embedding (integer ids -> dense vectors, optionally masking id 0) and Masking."""

from __future__ import annotations

import numpy as np

from lamina import constraints, initializers, ops, regularizers
from lamina.backend.tensor import Tensor
from lamina.layers.layer import Layer
from lamina.layers.lora import LoRAMixin


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f"Argument `{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


class Embedding(LoRAMixin, Layer):
    """Turns non-negative integer ids into dense vectors: ``embeddings[ids]``.

    Args:
        input_dim: size of the vocabulary (largest id + 1).
        output_dim: size of each vector.
        embeddings_initializer: initializer of the table (``uniform``: U(-0.05, 0.05)).
        embeddings_regularizer: optional regularizer of the table.
        embeddings_constraint: optional constraint of the table.
        mask_zero: whether id 0 is padding; the output then carries the mask
            ``ids != 0`` for the layers that consume masks (LSTM, GRU, ...), and
            ``input_dim`` must count the padding id.
        weights: optional initial ``[embeddings]`` value.
        lora_rank: optional positive int: build with LoRA enabled at this rank
            (``lora_embeddings_a (input_dim, rank)``, ``lora_embeddings_b (rank,
            output_dim)``; the table is then frozen).
        lora_alpha: scale of the LoRA update, ``lora_alpha / lora_rank``.
        quantization_config: must be None (Lamina does not quantize).
        input_length: accepted for Keras 2 compatibility and ignored.

    Input shape:
        Integer tensor ``(batch_size, ...)``, typically ``(batch_size, sequence_length)``.

    Output shape:
        ``(batch_size, ..., output_dim)``.

    Example:
        >>> import lamina as keras
        >>> keras.layers.Embedding(10, 3)(np.array([[1, 2, 0]])).shape
        (1, 3, 3)
    """

    _lora_target = "embeddings"

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, lora_alpha=None, quantization_config=None,
                 **kwargs):
        kwargs.pop("input_length", None)
        super().__init__(**kwargs)
        self._init_lora(lora_rank, lora_alpha, quantization_config)
        self.input_dim = _positive_int("input_dim", input_dim)
        self.output_dim = _positive_int("output_dim", output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self._initial_weights = weights

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer, regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None
        if self.lora_rank and not self.lora_enabled:
            self.enable_lora(self.lora_rank, lora_alpha=self.lora_alpha)

    def call(self, inputs):
        ids = np.asarray(inputs.data if isinstance(inputs, Tensor) else inputs)
        if ids.dtype.kind not in "iu":
            ids = ids.astype(np.int64)
        return ops.take(self._lora_merged(), ids, axis=0)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        ids = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        return ids != 0

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
            **self._lora_config(),
        }


class Masking(Layer):
    """Masks the timesteps whose features all equal ``mask_value``.

    The output is the input with those timesteps zeroed, carrying the mask
    ``any(inputs != mask_value, axis=-1)`` for the layers that consume masks.

    Args:
        mask_value: the padding value.

    Input shape:
        ``(batch_size, timesteps, features)`` (any rank >= 2).

    Output shape:
        Same as the input.
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True
        self.built = True

    def _keep(self, inputs):
        data = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        return np.any(data != self.mask_value, axis=-1)

    def call(self, inputs):
        keep = self._keep(inputs)
        return ops.multiply(inputs, keep[..., None].astype(inputs.data.dtype))

    def compute_mask(self, inputs, mask=None):
        return self._keep(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
