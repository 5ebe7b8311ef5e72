"""The head projections of the attention layers: Keras's EinsumDense weight layout.

``_Projection`` contracts the last ``in_rank`` input axes with a kernel
``(*input_shape[-in_rank:], *out_shape)`` and adds a bias ``out_shape``, computed as one
fused dense on reshaped views (``(dim, heads, key_dim)`` is ``(dim, heads * key_dim)``).
``fused_attention`` is MultiHeadAttention's fast path: its projections' kernels
concatenated into one dense, then the fused attention primitive. ``HeadsAttention`` is
what MultiHeadAttention and GroupQueryAttention share around their projections.
"""

from __future__ import annotations

import math

import numpy as np

from lamina import constraints, initializers, ops, regularizers
from lamina.backend import attention as _attention
from lamina.backend import dense_rows
from lamina.backend import self_attention as _self_attention
from lamina.backend.tensor import Tensor
from lamina.layers.layer import Layer


class _Projection(Layer):
    """EinsumDense of MultiHeadAttention: contracts the last ``in_rank`` input axes.

    Kernel ``(*input_shape[-in_rank:], *out_shape)``, bias ``out_shape``.
    """

    def __init__(self, in_rank, out_shape, use_bias, kernel_initializer, bias_initializer,
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.in_rank, self.out_shape, self.use_bias = in_rank, tuple(out_shape), use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint

    def build(self, input_shape):
        in_shape = tuple(input_shape[-self.in_rank:])
        self.kernel = self.add_weight(
            name="kernel", shape=in_shape + self.out_shape, initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=self.out_shape, initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def call(self, inputs):
        lead = inputs.shape[: inputs.ndim - self.in_rank]
        n_in = math.prod(inputs.shape[inputs.ndim - self.in_rank:])
        n_out = math.prod(self.out_shape)
        x = ops.reshape(inputs, (*lead, n_in))
        bias = None if self.bias is None else ops.reshape(self.bias, (n_out,))
        y = _dense(x, ops.reshape(self.kernel, (n_in, n_out)), bias)
        return ops.reshape(y, (*lead, *self.out_shape))


class ShapesDictBuild:
    """Keras's ``build_config`` of layers built from several shapes (query, value, key).

    Keras writes ``{"shapes_dict": {"query_shape": ..., "value_shape": ...}}`` for
    MultiHeadAttention and GroupQueryAttention and builds them from it when loading;
    the layer records the shapes its ``build`` received in ``_build_shapes``.
    """

    def _record_build_shapes(self, query_shape, value_shape, key_shape):
        shapes = {"query_shape": list(query_shape), "value_shape": list(value_shape)}
        if key_shape is not None:
            shapes["key_shape"] = list(key_shape)
        self._build_shapes = shapes

    def get_build_config(self):
        return {"shapes_dict": dict(getattr(self, "_build_shapes", {}))}

    def build_from_config(self, config):
        shapes = config.get("shapes_dict")
        if shapes:
            self.build(**{k: tuple(v) for k, v in shapes.items()})
        elif config.get("input_shape") is not None:
            self.build(tuple(config["input_shape"]))
        self.built = True


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _serialize_or_none(module, obj):
    return module.serialize(obj) if obj is not None else None


class HeadsAttention(ShapesDictBuild):
    """What MultiHeadAttention and GroupQueryAttention share (mixed in before ``Layer``):
    the projections' weight arguments and their config, the factory of the projection
    sub-layers, the checks of the (query, value, key) shapes, and calls that need
    ``value``."""

    def _init_weight_args(self, kernel_initializer, bias_initializer, kernel_regularizer,
                          bias_regularizer, kernel_constraint, bias_constraint):
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _weight_args_config(self) -> dict:
        return {
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _serialize_or_none(regularizers, self.kernel_regularizer),
            "bias_regularizer": _serialize_or_none(regularizers, self.bias_regularizer),
            "kernel_constraint": _serialize_or_none(constraints, self.kernel_constraint),
            "bias_constraint": _serialize_or_none(constraints, self.bias_constraint),
        }

    def _projection(self, name, in_rank, out_shape):
        # Each sub-layer gets its own copy of the initializers, as in Keras, so that
        # seeded initializers do not give the four kernels equal values.
        return _Projection(
            in_rank, out_shape, self.use_bias,
            initializers.get(initializers.serialize(self.kernel_initializer)),
            initializers.get(initializers.serialize(self.bias_initializer)),
            self.kernel_regularizer, self.bias_regularizer, self.kernel_constraint,
            self.bias_constraint, name=name, dtype=self.dtype)

    def _checked_shapes(self, query_shape, value_shape, key_shape):
        """Record the build shapes and return ``(value_shape, key_shape)`` (value defaults
        to query, key to value), each checked to be 3D with a known last axis."""
        self._record_build_shapes(query_shape, query_shape if value_shape is None
                                  else value_shape, key_shape)
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        for label, shape in (("query", query_shape), ("value", value_shape),
                             ("key", key_shape)):
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}' expects 3D {label} inputs (batch, "
                    f"length, dim) with a known dim. Received: {label}_shape={tuple(shape)}")
        return value_shape, key_shape

    def _check_scores_wanted(self, return_attention_scores):
        if self._flash_attention and return_attention_scores:
            raise ValueError("Returning attention scores is not supported when flash "
                             "attention is enabled. Please disable flash attention to access "
                             "attention scores.")

    def __call__(self, query, value=None, key=None, **kwargs):
        if value is None:
            raise ValueError(f"{type(self).__name__} needs `query` and `value` "
                             "(pass the same tensor twice for self-attention).")
        if not self.built:
            self.build(_shape(query), _shape(value), None if key is None else _shape(key))
        return super().__call__(query, value, key, **kwargs)

    def _symbolic_call(self, inputs, *args, **kwargs):
        self._return_scores_symbolic = bool(kwargs.get("return_attention_scores"))
        self._value_shape_symbolic = _shape(args[0])
        try:
            return super()._symbolic_call(inputs, *args, **kwargs)
        finally:
            self._return_scores_symbolic = False


def _flat_kernel(projection, scale=None):
    kernel = projection.kernel
    flat = ops.reshape(kernel, (kernel.shape[0], math.prod(kernel.shape[1:])))
    return flat if scale is None else ops.multiply(flat, scale)


def _flat_bias(projection, scale=None):
    flat = ops.reshape(projection.bias, (math.prod(projection.bias.shape),))
    return flat if scale is None else ops.multiply(flat, scale)


def _joined_weights(projections, scales):
    """The projections' (flattened, scaled) kernels and biases, concatenated."""
    kernels = [_flat_kernel(p, s) for p, s in zip(projections, scales)]
    kernel = kernels[0] if len(kernels) == 1 else ops.concatenate(kernels, axis=1)
    bias = None
    if projections[0].bias is not None:
        biases = [_flat_bias(p, s) for p, s in zip(projections, scales)]
        bias = biases[0] if len(biases) == 1 else ops.concatenate(biases, axis=0)
    return kernel, bias


def _project(x, projections, scales):
    """``x`` through the concatenated (flattened) kernels and biases: one GEMM."""
    return _dense(x, *_joined_weights(projections, scales))


def _dense(x, kernel, bias):
    """:func:`lamina.backend.dense_rows.dense` on data (its row-split backward when the
    rows are many), ``ops.dense`` on symbolic tensors."""
    if isinstance(x, Tensor):
        return dense_rows.dense(x, kernel, bias)
    return ops.dense(x, kernel, bias)


def _dropout_mask(layer, shape, dtype, training):
    """The multiplier Dropout would apply to probabilities of ``shape`` (the same draws as
    the graph path's ``layer._dropout_layer(probs)``), or None outside training."""
    if not (training and layer.dropout > 0):
        return None
    return layer._dropout_layer(np.ones(shape, dtype), training=True).data


def fused_grouped_attention(layer, query, q, k, v, mask, training):
    """GroupQueryAttention's attention through :mod:`lamina.backend.attention`, or None.

    ``q`` ``(batch, T, query_heads, head_dim)``; ``k``/``v`` already repeated to the query
    heads. Same coverage rules as :func:`fused_attention`.
    """
    dtype = q.data.dtype
    if not (layer._fused_attention and all(isinstance(x, Tensor) and x.data.dtype == dtype
                                           for x in (query, q, k, v))):
        return None
    b, t, heads, head_dim = q.shape
    if b * heads * t * k.shape[1] < layer._fused_attention_min_scores:
        return None
    return _attention.attention(
        q, k, v, mask=mask, scale=1.0 / math.sqrt(head_dim),
        dropout_mask=_dropout_mask(layer, (b, heads, t, k.shape[1]), dtype, training))


def fused_attention(layer, query, value, key, mask, training):
    """MultiHeadAttention's call through :mod:`lamina.backend.attention`, or None.

    Covers eager calls whose inputs have the kernels' dtype and that have at least
    ``layer._fused_attention_min_scores`` score elements (the caller falls back for
    attention scores). Self-attention (``query``, ``key`` and ``value`` one tensor) runs
    the three projections as one GEMM on the concatenated kernels; the variables stay
    Keras's ``query``/``key``/``value`` ones, so saved files do not change. The score
    scale ``1/sqrt(key_dim)`` is folded into the query kernel and bias (a pass over
    the (dim, heads*key_dim) kernel instead of the (batch, length, heads, key_dim)
    queries, forward and backward).
    """
    dtype = layer.query_dense.kernel.data.dtype
    if not all(isinstance(x, Tensor) and x.data.dtype == dtype for x in (query, value, key)):
        return None
    heads, key_dim, value_dim = layer.num_heads, layer.key_dim, layer.value_dim
    scores = query.shape[0] * heads * query.shape[1] * value.shape[1]
    if scores < layer._fused_attention_min_scores:
        return None
    scale = np.asarray(1.0 / math.sqrt(key_dim), dtype)
    dropout_mask = _dropout_mask(layer, (query.shape[0], heads, query.shape[1],
                                         value.shape[1]), dtype, training)
    dense = (layer.query_dense, layer.key_dense, layer.value_dense)
    same = (query is value and key is value) or (
        query.data is value.data and key.data is value.data
        and not any(x.requires_grad for x in (query, value, key)))
    if same and _self_attention.whole_rows(query.shape[0], query.shape[1], heads,
                                           np.dtype(dtype).itemsize):
        # Projections and attention in one node, batch part by batch part (the output
        # projection too, unless a gate comes between).
        kernel, bias = _joined_weights(dense, (scale, None, None))
        out_dense = None if layer.use_gate else layer.output_dense
        context = _self_attention.projected_self_attention(
            query, kernel, bias, heads, key_dim, value_dim, mask=mask, scale=1.0,
            dropout_mask=dropout_mask,
            output_kernel=None if out_dense is None else ops.reshape(
                out_dense.kernel, (heads * value_dim, -1)),
            output_bias=None if out_dense is None or out_dense.bias is None else ops.reshape(
                out_dense.bias, (-1,)))
        if out_dense is not None:
            return ops.reshape(context, (*query.shape[:2], *out_dense.out_shape))
    elif same:
        qkv = _project(query, dense, (scale, None, None))
        context = _attention.packed_attention(qkv, heads, key_dim, value_dim, mask=mask,
                                              scale=1.0, dropout_mask=dropout_mask)
    else:
        q, k, v = (ops.reshape(_project(x, (p,), (s,)), (*x.shape[:2], heads, -1))
                   for x, p, s in zip((query, key, value), dense, (scale, None, None)))
        context = _attention.attention(q, k, v, mask=mask, scale=1.0,
                                       dropout_mask=dropout_mask)
    if layer.use_gate:
        context = ops.multiply(context, ops.sigmoid(layer._gate_dense(query)))
    return layer.output_dense(context)
