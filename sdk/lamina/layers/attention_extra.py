"""More attention layers: AdditiveAttention (Bahdanau) and GroupQueryAttention.

AdditiveAttention reuses :class:`~lamina.layers.attention.Attention`'s masking and
dropout and changes only the scores. GroupQueryAttention has Keras's weight layout:
``query``, ``key``, (``gate``,) ``value`` and ``attention_output`` projections with
``num_query_heads`` query heads sharing ``num_key_value_heads`` key/value heads.
"""

from __future__ import annotations

import math

import numpy as np

from lamina import constraints, initializers, ops, regularizers
from lamina.layers.activations import Softmax
from lamina.layers.attention import Attention, _mask_of, _Projection, _shape
from lamina.layers.layer import Layer
from lamina.layers.regularization import Dropout


class AdditiveAttention(Attention):
    """Additive (Bahdanau-style) attention over ``[query, value]`` or ``[query, value, key]``.

    ``scores[b, t, s] = sum(scale * tanh(query[b, t] + key[b, s]))``, then
    ``output = softmax(scores) @ value``.

    Args:
        use_scale: learn a ``scale`` vector of size ``dim`` (glorot-uniform initialized);
            without it the tanh terms are summed unscaled.
        dropout: dropout rate on the attention probabilities.
        seed: optional seed of the dropout.

    Call arguments:
        inputs, mask, training, return_attention_scores, use_causal_mask: as in
        :class:`~lamina.layers.Attention`.

    Input shape:
        query ``(batch, T, dim)``, value ``(batch, S, dim_v)``, key ``(batch, S, dim)``.

    Output shape:
        ``(batch, T, dim_v)``.
    """

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        self._validate(input_shape, "input_shape")
        self.scale = None
        self.concat_score_weight = None
        if self.use_scale:
            self.scale = self.add_weight(name="scale", shape=(input_shape[0][-1],),
                                         initializer="glorot_uniform")
        self.built = True

    def _calculate_scores(self, query, key):
        summed = ops.tanh(ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3)))
        if self.scale is not None:
            summed = ops.multiply(summed, self.scale)
        return ops.sum(summed, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.pop("score_mode")
        return config
