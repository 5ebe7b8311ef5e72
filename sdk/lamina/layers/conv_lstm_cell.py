"""ConvLSTMCell: one step of a convolutional LSTM (used by ConvLSTM1D/2D/3D).

An LSTM whose input and recurrent transformations are convolutions. Weights follow
Keras (``conv_lstm_cell``): ``kernel (*kernel_size, in_channels, 4 * filters)``,
``recurrent_kernel (*kernel_size, filters, 4 * filters)``, ``bias (4 * filters,)``,
gates in the order i, f, c, o along the last axis. The input convolution of every
timestep runs as one convolution over the sequence folded into the batch; the loop
then adds the recurrent ("same"-padded, stride 1) convolution of the previous state.
"""

from __future__ import annotations

import numpy as np

from lamina import activations, constraints, initializers, ops, regularizers
from lamina.backend.conv import conv_output_length
from lamina.layers.base_conv import standardize_data_format, standardize_padding, standardize_tuple
from lamina.layers.recurrent import DropoutRNNCell


class ConvLSTMCell(DropoutRNNCell):
    """One step of a ConvLSTM over ``rank`` spatial axes.

    Args:
        rank: 1, 2 or 3.
        filters: positive int, the channels of the state and output.
        kernel_size, strides, dilation_rate: int or tuple of ``rank`` ints (of the
            input convolution; the recurrent one has stride 1 and "same" padding).
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        activation, recurrent_activation: ``tanh`` and ``sigmoid`` by default.
        use_bias, unit_forget_bias: a bias; its forget block starts at 1.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout, recurrent_dropout: rates of the per-gate input and state masks.
        seed: seed of the dropout masks.
    """

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, activation="tanh",
                 recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if rank not in (1, 2, 3):
            raise ValueError(f"Rank {rank} convolutions are not currently implemented. "
                             f"Received: rank={rank}")
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or \
                filters <= 0:
            raise ValueError(f"Invalid value for argument `filters`. Expected a strictly "
                             f"positive value. Received filters={filters!r}.")
        self.rank = rank
        self.filters = int(filters)
        self.kernel_size = standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = standardize_tuple(strides, rank, "strides")
        self.padding = standardize_padding(padding)
        self.data_format = standardize_data_format(data_format)
        self.dilation_rate = standardize_tuple(dilation_rate, rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "Specifying `strides > 1` is not compatible with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self._init_dropout(dropout, recurrent_dropout, seed)
        self.state_size = -1  # states are feature maps; see ConvLSTM.get_initial_state

    @property
    def channel_axis(self):
        """Channel axis of one timestep (batch first)."""
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"ndim={self.rank + 2}, found ndim={len(input_shape)}. Full shape received: "
                f"{tuple(input_shape)}")
        spatial = (input_shape[1:-1] if self.data_format == "channels_last"
                   else input_shape[2:])
        if None in tuple(spatial):
            raise ValueError("ConvLSTM layers only support static input shapes for the "
                             "spatial dimension. Received invalid input shape: "
                             f"input_shape={tuple(input_shape)}")
        channels = input_shape[self.channel_axis]
        if channels is None:
            raise ValueError("The channel dimension of the inputs should be defined. Found "
                             f"None. Full input shape received: input_shape={tuple(input_shape)}")
        width = 4 * self.filters
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels, width),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(*self.kernel_size, self.filters, width),
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(width,), initializer=self._bias_init(),
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, f = self.bias_initializer, self.filters

        def init(shape, dtype=None):
            return np.concatenate([np.asarray(base((f,), dtype=dtype)), np.ones(f, dtype=dtype),
                                   np.asarray(base((2 * f,), dtype=dtype))])

        return init

    def output_spatial(self, spatial):
        """Spatial shape of the state for an input of ``spatial`` shape."""
        return tuple(conv_output_length(n, k, s, self.padding, d) for n, k, s, d in zip(
            spatial, self.kernel_size, self.strides, self.dilation_rate))

    def _gate(self, tensor, g, axis):
        index = [slice(None)] * tensor.ndim
        index[axis] = slice(g * self.filters, (g + 1) * self.filters)
        return ops.getitem(tensor, tuple(index))

    def input_projection(self, frames, masks=None):
        """Input convolution (plus bias) of a batch of frames, all four gates at once.

        ``masks`` (four input-dropout multipliers) make it four convolutions, one per gate.
        """
        conv = dict(strides=self.strides, padding=self.padding, data_format=self.data_format,
                    dilation_rate=self.dilation_rate)
        if masks is None:
            return ops.conv(frames, self.kernel, bias=self.bias, **conv)
        parts = []
        for g, mask in enumerate(masks):
            kernel = self._gate(self.kernel, g, -1)
            bias = None if self.bias is None else self._gate(self.bias, g, 0)
            parts.append(ops.conv(ops.multiply(frames, mask), kernel, bias=bias, **conv))
        return ops.concatenate(parts, axis=self.channel_axis)

    def step(self, x_proj, h, c, recurrent_masks=None):
        """One step from the input projection ``x_proj`` and states ``h``, ``c``."""
        conv = dict(strides=1, padding="same", data_format=self.data_format)
        axis = self.channel_axis
        if recurrent_masks is None:
            z = ops.add(x_proj, ops.conv(h, self.recurrent_kernel, **conv))
            zi, zf, zc, zo = (self._gate(z, g, axis) for g in range(4))
        else:
            zi, zf, zc, zo = (
                ops.add(self._gate(x_proj, g, axis),
                        ops.conv(ops.multiply(h, recurrent_masks[g]),
                                 self._gate(self.recurrent_kernel, g, -1), **conv))
                for g in range(4))
        i = self.recurrent_activation(zi)
        f = self.recurrent_activation(zf)
        c = ops.add(ops.multiply(f, c), ops.multiply(i, self.activation(zc)))
        o = self.recurrent_activation(zo)
        h = ops.multiply(o, self.activation(c))
        return h, c

    def call(self, inputs, states, training=False):
        h, c = self.step(self.input_projection(inputs), states[0], states[1])
        return h, [h, c]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
