"""Attention layers: MultiHeadAttention (Keras 3 weight layout) and Attention (Luong).

MultiHeadAttention's projections are ``EinsumDense`` sub-layers in Keras; here each is a
small :class:`_Projection` with the same kernel and bias shapes and names, computed as
one fused dense on reshaped views (``(dim, heads, key_dim)`` is ``(dim, heads*key_dim)``).
Eager calls that do not return the scores run the fused attention primitive
(:mod:`lamina.backend.attention`, see ``attention_projection.fused_attention``).
"""

from __future__ import annotations

import math

import numpy as np

from lamina import ops
from lamina.layers import attention_masks as _masks
from lamina.layers.activations import Softmax
from lamina.layers.attention_projection import HeadsAttention, fused_attention
from lamina.layers.layer import Layer
from lamina.layers.regularization import Dropout


def _mask_of(x):
    m = getattr(x, "_keras_mask", None)
    return None if m is None else np.asarray(getattr(m, "data", m), dtype=bool)


class MultiHeadAttention(HeadsAttention, Layer):
    """Multi-head scaled dot-product attention (Vaswani et al., 2017), as in Keras 3.

    ``query``, ``key`` and ``value`` are projected to ``num_heads`` heads, each head
    attends with ``softmax(q k^T / sqrt(key_dim))``, and the heads are projected back to
    ``output_shape`` (the query's last dimension by default).

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (``key_dim`` by default).
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_shape: int, the last dimension of the output (the query's by default).
        attention_axes: the axes attention is applied over; Lamina supports the default
            (the sequence axis of 3D inputs: ``None``, ``1``, ``-2`` or ``(1,)``).
        kernel_initializer, bias_initializer: initializers of the projections.
        kernel_regularizer, bias_regularizer: optional regularizers.
        kernel_constraint, bias_constraint: optional constraints.
        seed: optional seed of the dropout.

    Call arguments:
        query: ``(batch, target_len, query_dim)``.
        value: ``(batch, source_len, value_dim)``.
        key: optional ``(batch, source_len, key_dim)``; ``value`` by default.
        attention_mask: optional boolean ``(batch, target_len, source_len)``; False
            positions are not attended to. Masks carried by ``query``/``value``/``key``
            (from an ``Embedding(mask_zero=True)``) are combined with it.
        return_attention_scores: also return the ``(batch, heads, target_len,
            source_len)`` attention probabilities.
        training: apply dropout when True.
        use_causal_mask: forbid attending to later positions (decoder self-attention).

    Input shape:
        query ``(batch, T, dim_q)``, value ``(batch, S, dim_v)``, key ``(batch, S, dim_k)``.

    Output shape:
        ``(batch, T, output_shape or dim_q)``.

    Weights: ``query/kernel (dim_q, heads, key_dim)``, ``query/bias (heads, key_dim)``,
    the same for ``key`` and ``value`` (with ``value_dim``), then
    ``attention_output/kernel (heads, value_dim, out)`` and ``attention_output/bias (out,)``.
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, sliding_window=None,
                 flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 use_gate=False, seed=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Argument `{name}` must be a positive integer. "
                                 f"Received: {name}={value!r}")
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"Argument `dropout` must be a float in [0, 1). "
                             f"Received: dropout={dropout!r}")
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        if output_shape is not None and not isinstance(output_shape, (int, np.integer)):
            output_shape = tuple(output_shape)
            if len(output_shape) != 1:
                raise ValueError("Lamina's MultiHeadAttention supports an int `output_shape` "
                                 f"(or a 1-tuple). Received: output_shape={output_shape!r}")
            output_shape = output_shape[0]
        self._output_dim = None if output_shape is None else int(output_shape)
        if attention_axes is not None:
            axes = (attention_axes,) if isinstance(attention_axes, int) else tuple(
                attention_axes)
            if axes not in ((1,), (-2,)):
                raise ValueError(
                    "Lamina's MultiHeadAttention supports the default `attention_axes` (the "
                    f"sequence axis of 3D inputs). Received: attention_axes={attention_axes!r}")
            attention_axes = list(axes)
        self.attention_axes = attention_axes
        self._init_weight_args(kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer, kernel_constraint, bias_constraint)
        self.seed = seed
        self.sliding_window = _masks.check_sliding_window(sliding_window)
        self._flash_attention = _masks.check_flash_attention(flash_attention, self.dropout)
        self.use_gate = bool(use_gate)
        self.supports_masking = True
        self._return_scores_symbolic = False

    # False: always the graph of small ops (the reference the fused path is tested against).
    # Calls with fewer score elements (batch*heads*T*S) than the minimum stay on the graph:
    # the fused path saves ~0.1 ms there, and the graph keeps Lamina's committed small
    # trained-model files (tests/fixtures/layers/lamina_files) reproducible bit for bit.
    _fused_attention = True
    _fused_attention_min_scores = 4096

    # Keras 3.15.1 exposes the projections as `query_dense`, ... and its weights files key
    # them so (the gate stays `_gate_dense`); the underscored names stay as aliases.
    _query_dense = property(lambda self: self.query_dense)
    _key_dense = property(lambda self: self.key_dense)
    _value_dense = property(lambda self: self.value_dense)
    _output_dense = property(lambda self: self.output_dense)

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape, key_shape = self._checked_shapes(query_shape, value_shape, key_shape)
        out_dim = self._output_dim or query_shape[-1]
        self.query_dense = self._projection("query", 1, (self.num_heads, self.key_dim))
        self.query_dense.build(query_shape)
        self.key_dense = self._projection("key", 1, (self.num_heads, self.key_dim))
        self.key_dense.build(key_shape)
        if self.use_gate:  # Keras builds it between key and value (weight order)
            self._gate_dense = self._projection("gate", 1, (self.num_heads, self.value_dim))
            self._gate_dense.build(query_shape)
        self.value_dense = self._projection("value", 1, (self.num_heads, self.value_dim))
        self.value_dense.build(value_shape)
        self.output_dense = self._projection("attention_output", 2, (out_dim,))
        self.output_dense.build((None, None, self.num_heads, self.value_dim))
        self._softmax = Softmax(axis=-1, dtype=self.dtype)
        self._dropout_layer = Dropout(rate=self.dropout, seed=self.seed, dtype=self.dtype)
        self.built = True

    def call(self, query, value, key=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False):
        self._check_scores_wanted(return_attention_scores)
        value = self._as_tensor(value)
        key = value if key is None else self._as_tensor(key)
        mask = self._compute_attention_mask(query, value, key, attention_mask,
                                            use_causal_mask)
        if self._fused_attention and not return_attention_scores:
            fused = fused_attention(self, query, value, key, mask, training)
            if fused is not None:
                return fused
        # (batch, length, heads, dim) -> (batch, heads, length, dim)
        q = ops.transpose(self.query_dense(query), (0, 2, 1, 3))
        k = ops.transpose(self.key_dense(key), (0, 2, 3, 1))
        v = ops.transpose(self.value_dense(value), (0, 2, 1, 3))
        q = ops.multiply(q, np.asarray(1.0 / math.sqrt(self.key_dim), dtype=q.data.dtype))
        scores = ops.matmul(q, k)
        if mask is not None:
            mask = mask[:, None, :, :]
        probs = self._softmax(scores, mask=mask)
        dropped = self._dropout_layer(probs, training=training)
        context = ops.transpose(ops.matmul(dropped, v), (0, 2, 1, 3))
        if self.use_gate:
            context = ops.multiply(context, ops.sigmoid(self._gate_dense(query)))
        output = self.output_dense(context)
        if return_attention_scores:
            return output, probs
        return output

    def _as_tensor(self, x):
        return self._convert_input(x)

    def _compute_attention_mask(self, query, value, key, attention_mask, use_causal_mask):
        """Keras's combination of the inputs' masks, the causal mask and ``attention_mask``."""
        return _masks.combine(
            _mask_of(query), _mask_of(value), _mask_of(key) if key is not value else None,
            query.shape[1], value.shape[1], attention_mask, use_causal_mask,
            self.sliding_window)

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        out_dim = self._output_dim or query_shape[-1]
        out = (*tuple(query_shape[:-1]), out_dim)
        if self._return_scores_symbolic:
            value_shape = value_shape or self._value_shape_symbolic
            return [out, (query_shape[0], self.num_heads, query_shape[1], value_shape[1])]
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self._output_dim,
            "attention_axes": self.attention_axes,
            "use_gate": self.use_gate,
            "sliding_window": self.sliding_window,
            **self._weight_args_config(),
            "seed": self.seed,
        }


class Attention(Layer):
    """Dot-product (Luong) or concat (Bahdanau-style) attention over ``[query, value, key]``.

    ``scores = query @ key^T`` (``score_mode="dot"``, times a learned ``scale`` when
    ``use_scale``) or ``concat_score_weight * sum(tanh(scale * (query + key)))``
    (``score_mode="concat"``); ``output = softmax(scores) @ value``.

    Args:
        use_scale: learn a scalar ``scale`` (initialized to 1) for the scores.
        score_mode: ``"dot"`` or ``"concat"``.
        dropout: dropout rate on the attention probabilities.
        seed: optional seed of the dropout.

    Call arguments:
        inputs: ``[query, value]`` or ``[query, value, key]``.
        mask: optional ``[query_mask, value_mask]`` (boolean ``(batch, T)`` and
            ``(batch, S)``); padded values get no attention and padded queries give 0.
        training: apply dropout when True.
        return_attention_scores: also return the attention probabilities.
        use_causal_mask: forbid attending to later positions.

    Input shape:
        query ``(batch, T, dim)``, value ``(batch, S, dim_v)``, key ``(batch, S, dim)``.

    Output shape:
        ``(batch, T, dim_v)``.
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError("Invalid value for argument score_mode. Expected one of "
                             f"{{'dot', 'concat'}}. Received: score_mode={score_mode}")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"Argument `dropout` must be a float in [0, 1). "
                             f"Received: dropout={dropout!r}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = seed
        self._dropout_layer = Dropout(rate=self.dropout, seed=seed)
        self.supports_masking = True
        self._return_scores_symbolic = False

    def _validate(self, inputs, what="inputs"):
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{name} layer must be called on a list of inputs, namely [query, value] or "
                f"[query, value, key]. Received: {what}={inputs}.")
        if len(inputs) not in (2, 3):
            raise ValueError(
                f"{name} layer accepts inputs list of length 2 or 3, namely [query, value] "
                f"or [query, value, key]. Received length: {len(inputs)}.")

    def build(self, input_shape):
        self._validate(input_shape, "input_shape")
        self.scale = None
        self.concat_score_weight = None
        if self.use_scale:
            self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(
                name="concat_score_weight", shape=(), initializer="ones")
        self.built = True

    def _calculate_scores(self, query, key):
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))
            return scores if self.scale is None else ops.multiply(scores, self.scale)
        summed = ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3))
        if self.scale is not None:
            summed = ops.multiply(summed, self.scale)
        return ops.multiply(self.concat_score_weight, ops.sum(ops.tanh(summed), axis=-1))

    def _symbolic_call(self, inputs, *args, **kwargs):
        self._return_scores_symbolic = bool(kwargs.get("return_attention_scores"))
        try:
            return super()._symbolic_call(inputs, *args, **kwargs)
        finally:
            self._return_scores_symbolic = False

    def call(self, inputs, mask=None, training=False, return_attention_scores=False,
             use_causal_mask=False):
        self._validate(inputs)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        q_mask = v_mask = None
        if mask is not None:
            q_mask = None if mask[0] is None else np.asarray(getattr(mask[0], "data", mask[0]),
                                                             dtype=bool)
            if len(mask) > 1 and mask[1] is not None:
                v_mask = np.asarray(getattr(mask[1], "data", mask[1]), dtype=bool)
        scores = self._calculate_scores(query, key)
        scores_mask = None if v_mask is None else v_mask[:, None, :]
        if use_causal_mask:
            causal = np.tril(np.ones(scores.shape[-2:], dtype=bool))[None]
            scores_mask = causal if scores_mask is None else causal & scores_mask
        if scores_mask is not None:
            big = 65504.0 if scores.data.dtype == np.float16 else 1.0e9
            scores = ops.subtract(scores, (~scores_mask).astype(scores.data.dtype) * big)
        weights = ops.softmax(scores, axis=-1)
        dropped = self._dropout_layer(weights, training=training)
        result = ops.matmul(dropped, value)
        if q_mask is not None:
            result = ops.multiply(result, q_mask[:, :, None].astype(result.data.dtype))
        if return_attention_scores:
            return result, weights
        return result

    def compute_mask(self, inputs, mask=None):
        if mask is None or mask[0] is None:
            return None
        return np.asarray(getattr(mask[0], "data", mask[0]), dtype=bool)

    def compute_output_shape(self, input_shape):
        self._validate(input_shape, "input_shape")
        query, value = input_shape[0], input_shape[1]
        out = (*tuple(query[:-1]), value[-1])
        if self._return_scores_symbolic:
            return [out, (query[0], query[1], value[1])]
        return out

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}

