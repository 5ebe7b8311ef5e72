"""More attention layers: AdditiveAttention (Bahdanau) and GroupQueryAttention.

AdditiveAttention reuses :class:`~lamina.layers.attention.Attention`'s masking and
dropout and changes only the scores. GroupQueryAttention has Keras's weight layout:
``query``, ``key``, (``gate``,) ``value`` and ``attention_output`` projections with
``num_query_heads`` query heads sharing ``num_key_value_heads`` key/value heads.
"""

from __future__ import annotations

import math

import numpy as np

from lamina import ops
from lamina.layers import attention_masks as _masks
from lamina.layers.activations import Softmax
from lamina.layers.attention import Attention, _mask_of
from lamina.layers.attention_projection import HeadsAttention, fused_grouped_attention
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


def _bool_mask(mask):
    return None if mask is None else np.asarray(getattr(mask, "data", mask), dtype=bool)


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Argument `{name}` must be a positive integer. "
                         f"Received: {name}={value!r}")
    return int(value)


class GroupedQueryAttention(HeadsAttention, Layer):
    """Grouped-query attention (Ainslie et al., 2023): query heads share key/value heads.

    ``num_query_heads`` query heads attend in ``num_key_value_heads`` groups; each key and
    value head is repeated ``num_query_heads // num_key_value_heads`` times. With
    ``num_key_value_heads == 1`` this is multi-query attention, with it equal to
    ``num_query_heads`` ordinary multi-head attention.

    Args:
        head_dim: size of each attention head.
        num_query_heads: number of query heads.
        num_key_value_heads: number of key and value heads; divides ``num_query_heads``.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        sliding_window: optional positive int; each query attends only to keys within
            ``sliding_window - 1`` positions on either side.
        flash_attention: accepted as in Keras (Lamina computes the same attention);
            True refuses ``dropout > 0`` and returning scores, as Keras does.
        kernel_initializer, bias_initializer: initializers of the projections.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints.
        use_gate: multiply the attention output by ``sigmoid(gate(query))`` per head.
        seed: seed of the dropout.

    Call arguments:
        query ``(batch, T, dim)``, value ``(batch, S, dim)``, key (defaults to value);
        query_mask, value_mask, key_mask: optional boolean ``(batch, T)``/``(batch, S)``
        masks (taken from the inputs' Keras masks when not given); attention_mask:
        ``(batch, T, S)``; return_attention_scores; training; use_causal_mask.

    Output shape:
        ``(batch, T, dim)``; scores ``(batch, num_query_heads, T, S)``.

    Weights: ``query``, ``key``, (``gate``,) ``value`` and ``attention_output`` kernels
    and biases, with Keras's shapes (e.g. ``query/kernel (dim, num_query_heads,
    head_dim)``, ``attention_output/kernel (num_query_heads, head_dim, dim)``).
    """

    # Keras's class is GroupedQueryAttention (default name, weights-file keys) but its
    # configs name it by its export, GroupQueryAttention.
    _keras_export_name = "GroupQueryAttention"

    # As MultiHeadAttention's: the fused primitive for calls of at least this many score
    # elements that do not return the scores; False keeps the graph of small ops.
    _fused_attention = True
    _fused_attention_min_scores = 4096

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0,
                 use_bias=True, sliding_window=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, use_gate=False, seed=None,
                 **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.head_dim = _positive("head_dim", head_dim)
        self.num_query_heads = _positive("num_query_heads", num_query_heads)
        self.num_key_value_heads = _positive("num_key_value_heads", num_key_value_heads)
        if self.num_query_heads % self.num_key_value_heads:
            raise ValueError(
                "`num_query_heads` must be divisible by `num_key_value_heads`. Received: "
                f"num_query_heads={num_query_heads}, num_key_value_heads="
                f"{num_key_value_heads}")
        self.num_repeats = self.num_query_heads // self.num_key_value_heads
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"Argument `dropout` must be a float in [0, 1). "
                             f"Received: dropout={dropout!r}")
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        self.sliding_window = _masks.check_sliding_window(sliding_window)
        self._flash_attention = _masks.check_flash_attention(flash_attention, self.dropout)
        self._init_weight_args(kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer, kernel_constraint, bias_constraint)
        self.seed = seed
        self.supports_masking = True
        self._return_scores_symbolic = False

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape, key_shape = self._checked_shapes(query_shape, value_shape, key_shape)
        self.feature_dim = query_shape[-1]
        heads_q = (self.num_query_heads, self.head_dim)
        heads_kv = (self.num_key_value_heads, self.head_dim)
        self._query_dense = self._projection("query", 1, heads_q)
        self._query_dense.build(query_shape)
        self._key_dense = self._projection("key", 1, heads_kv)
        self._key_dense.build(key_shape)
        if self.use_gate:
            self._gate_dense = self._projection("gate", 1, heads_q)
            self._gate_dense.build(query_shape)
        self._value_dense = self._projection("value", 1, heads_kv)
        self._value_dense.build(value_shape)
        self._output_dense = self._projection("attention_output", 2, (self.feature_dim,))
        self._output_dense.build((None, None, *heads_q))
        self._softmax = Softmax(axis=-1, dtype=self.dtype)
        self._dropout_layer = Dropout(rate=self.dropout, seed=self.seed, dtype=self.dtype)
        self.built = True

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False):
        self._check_scores_wanted(return_attention_scores)
        value = self._convert_input(value)
        key_given = key is not None
        key = self._convert_input(key) if key_given else value
        mask = self._attention_mask(
            query, value, _bool_mask(query_mask) if query_mask is not None else _mask_of(query),
            _bool_mask(value_mask) if value_mask is not None else _mask_of(value),
            _bool_mask(key_mask) if key_mask is not None else (
                _mask_of(key) if key_given else None),
            attention_mask, use_causal_mask)
        gate = ops.sigmoid(self._gate_dense(query)) if self.use_gate else None
        q = self._query_dense(query)
        k = ops.repeat(self._key_dense(key), self.num_repeats, axis=2)
        v = ops.repeat(self._value_dense(value), self.num_repeats, axis=2)
        context = None if return_attention_scores else fused_grouped_attention(
            self, query, q, k, v, mask, training)
        if context is None:
            q = ops.transpose(q, (0, 2, 1, 3))
            q = ops.multiply(q, np.asarray(1.0 / math.sqrt(self.head_dim),
                                           dtype=q.data.dtype))
            scores = ops.matmul(q, ops.transpose(k, (0, 2, 3, 1)))  # (batch, heads, T, S)
            probs = self._softmax(scores, mask=None if mask is None else mask[:, None])
            dropped = self._dropout_layer(probs, training=training)
            context = ops.transpose(ops.matmul(dropped, ops.transpose(v, (0, 2, 1, 3))),
                                    (0, 2, 1, 3))
        if gate is not None:
            context = ops.multiply(context, gate)
        output = self._output_dense(context)
        return (output, probs) if return_attention_scores else output

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask):
        """Keras's combination: query/value/key masks, causal, sliding window, explicit."""
        t, s = query.shape[1], value.shape[1]
        parts = []
        if query_mask is not None:
            parts.append(query_mask[:, :, None])
        parts += [m[:, None, :] for m in (value_mask, key_mask) if m is not None]
        if use_causal_mask:
            parts.append(_masks.causal_mask(t, s))
        if self.sliding_window is not None:
            parts.append(_masks.sliding_window_mask(t, s, self.sliding_window))
        if attention_mask is not None:
            parts.append(_bool_mask(attention_mask))
        if not parts:
            return None
        out = parts[0]
        for part in parts[1:]:
            out = out & part
        return np.broadcast_to(out, (query.shape[0], t, s))

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        value_shape = value_shape or getattr(self, "_value_shape_symbolic", query_shape)
        if query_shape[-1] != value_shape[-1]:
            raise ValueError(
                "The last dimension of `query_shape` and `value_shape` must be equal, but are "
                f"{query_shape[-1]}, {value_shape[-1]}. Received: query_shape={query_shape}, "
                f"value_shape={value_shape}")
        out = tuple(query_shape)
        if self._return_scores_symbolic:
            return [out, (query_shape[0], self.num_query_heads, query_shape[1],
                          value_shape[1])]
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "head_dim": self.head_dim,
            "num_query_heads": self.num_query_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "sliding_window": self.sliding_window,
            "dropout": self.dropout,
            **self._weight_args_config(),
            "seed": self.seed,
        }


GroupQueryAttention = GroupedQueryAttention
