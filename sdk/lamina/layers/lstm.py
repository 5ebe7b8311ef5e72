"""LSTM: Keras's long short-term memory layer (gates ``i, f, c, o``) and its cell."""

from __future__ import annotations

import numpy as np

from lamina import activations, ops
from lamina.backend.rnn import LSTMSequence
from lamina.layers.recurrent import StandardCell, StandardRNN, cell_property, run_fused
from lamina.layers.rnn_cells import check_use_cudnn


class LSTMCell(StandardCell):
    """One LSTM step: ``c = f * c + i * activation(g)``, ``h = o * activation(c)``.

    ``[i, f, g, o] = x @ kernel + h @ recurrent_kernel + bias``, with
    ``recurrent_activation`` applied to ``i, f, o``.

    Args:
        units: positive int, the size of the states.
        activation: activation of the candidate and of the output (``tanh``).
        recurrent_activation: activation of the gates (``sigmoid``).
        use_bias: whether the cell has a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers
            (``glorot_uniform``, ``orthogonal``, ``zeros``).
        unit_forget_bias: start the forget gate's bias at 1.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the inputs dropped (one mask per sequence).
        recurrent_dropout: fraction of the state dropped before the recurrent product.
        seed: seed of the dropout masks.

    Input shape:
        ``(batch_size, features)`` and states ``[(batch_size, units)] * 2``.

    Output shape:
        ``(batch_size, units)`` and the new states ``[h, c]``.
    """

    gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, **kwargs):
        kwargs.pop("implementation", None)
        super().__init__(
            units, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout,
            recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, u = self.bias_initializer, self.units

        def init(shape, dtype=None):
            return np.concatenate([np.asarray(base((u,), dtype=dtype)), np.ones(u, dtype=dtype),
                                   np.asarray(base((2 * u,), dtype=dtype))])

        return init

    def call(self, inputs, states, training=False):
        h, c = states
        z = ops.add(ops.matmul(inputs, self.kernel),
                    ops.matmul(self._h_in(h), self.recurrent_kernel))
        if self.bias is not None:
            z = ops.add(z, self.bias)
        i, f, g, o = ops.split(z, 4, axis=-1)
        ract = self.recurrent_activation
        c = ops.add(ops.multiply(ract(f), c), ops.multiply(ract(i), self.activation(g)))
        h = ops.multiply(ract(o), self.activation(c))
        return h, [h, c]

    def fused_sequence(self, sequences, states, **kwargs):
        names = self._fused_names(self.activation, self.recurrent_activation)
        if names is None:
            return None
        return run_fused(LSTMSequence, sequences,
                         [self.kernel, self.recurrent_kernel, self.bias], states, 1,
                         activation=names[0], recurrent_activation=names[1], **kwargs)

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


class LSTM(StandardRNN):
    """Long Short-Term Memory layer (Hochreiter 1997), Keras's arguments and weights.

    The whole sequence runs as one fused primitive (one input GEMM, one recurrent GEMM
    per step, a hand-written backward through time) when the activations are among
    tanh/sigmoid/relu/linear/hard_sigmoid; other activations use a composed loop.
    Weights live on ``layer.cell`` (``lstm_cell``): ``kernel (input_dim, 4*units)``,
    ``recurrent_kernel (units, 4*units)``, ``bias (4*units,)``, gates ``i, f, c, o``;
    ``4 * units * (input_dim + units + 1)`` parameters.

    Args:
        units: positive int, the size of the output and states.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, unit_forget_bias, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed:
            see :class:`LSTMCell`.
        activity_regularizer: optional regularizer of the output.
        return_sequences: return every step's output, not only the last.
        return_state: also return the final states ``h, c``.
        go_backwards: process the sequence backwards (returns the reversed sequence).
        stateful: must be False (see :class:`~lamina.layers.RNN`).
        unroll: ignored.
        use_cudnn: ``"auto"`` or False (there is no GPU; True raises ValueError).

    Call arguments:
        inputs: (batch, timesteps, features). mask: optional (batch, timesteps) bool.
        training: applies dropout when True. initial_state: optional ``[h0, c0]``.

    Input shape:
        3D tensor ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, timesteps, units)`` with ``return_sequences`` else
        ``(batch_size, units)``; with ``return_state``, ``[output, h, c]``.

    Example:
        >>> import lamina as keras
        >>> keras.layers.LSTM(4)(np.ones((2, 10, 8), "float32")).shape
        (2, 4)
    """

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 use_cudnn="auto", **kwargs):
        check_use_cudnn(use_cudnn)
        cell = LSTMCell(
            units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout,
            recurrent_dropout=recurrent_dropout, seed=seed, name="lstm_cell",
            dtype=kwargs.get("dtype"), trainable=kwargs.get("trainable", True),
            implementation=kwargs.pop("implementation", 2))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, **kwargs)

    units = cell_property("units")
    activation = cell_property("activation")
    recurrent_activation = cell_property("recurrent_activation")
    use_bias = cell_property("use_bias")
    unit_forget_bias = cell_property("unit_forget_bias")
    dropout = cell_property("dropout")
    recurrent_dropout = cell_property("recurrent_dropout")
