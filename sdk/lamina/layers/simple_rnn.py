"""SimpleRNN: a fully connected recurrence ``h = activation(x W + h U + b)``, and its cell."""

from __future__ import annotations

from lamina import ops
from lamina.backend.rnn import SimpleRNNSequence
from lamina.layers.recurrent import StandardCell, StandardRNN, cell_property, run_fused


class SimpleRNNCell(StandardCell):
    """One step ``h = activation(x @ kernel + h @ recurrent_kernel + bias)``.

    Args:
        units: positive int, the size of the state.
        activation: activation (``tanh``).
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout,
            recurrent_dropout, seed: as for :class:`~lamina.layers.LSTMCell`.

    Input shape:
        ``(batch_size, features)`` and the state ``[(batch_size, units)]``.

    Output shape:
        ``(batch_size, units)`` and the new state ``[h]``.
    """

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        z = ops.add(ops.matmul(inputs, self.kernel),
                    ops.matmul(self._h_in(h), self.recurrent_kernel))
        if self.bias is not None:
            z = ops.add(z, self.bias)
        h = self.activation(z)
        return h, [h]

    def fused_sequence(self, sequences, states, **kwargs):
        names = self._fused_names(self.activation)
        if names is None:
            return None
        return run_fused(SimpleRNNSequence, sequences,
                         [self.kernel, self.recurrent_kernel, self.bias], states, 0,
                         activation=names[0], **kwargs)


class SimpleRNN(StandardRNN):
    """Fully connected RNN whose output is fed back as the next step's state.

    Weights on ``layer.cell`` (``simple_rnn_cell``): ``kernel (input_dim, units)``,
    ``recurrent_kernel (units, units)``, ``bias (units,)``: ``units * (input_dim +
    units + 1)`` parameters. Runs as one fused primitive for tanh/sigmoid/relu/linear.

    Args:
        units: positive int, the size of the output and state.
        activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, kernel_constraint, recurrent_constraint, bias_constraint,
            dropout, recurrent_dropout, seed: see :class:`SimpleRNNCell`.
        activity_regularizer, return_sequences, return_state, go_backwards, stateful,
            unroll: see :class:`~lamina.layers.LSTM`.

    Input shape:
        3D tensor ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, timesteps, units)`` with ``return_sequences`` else
        ``(batch_size, units)``; with ``return_state``, ``[output, h]``.
    """

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, **kwargs):
        cell = SimpleRNNCell(
            units, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout,
            recurrent_dropout=recurrent_dropout, seed=seed, name="simple_rnn_cell",
            dtype=kwargs.get("dtype"), trainable=kwargs.get("trainable", True))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, **kwargs)

    units = cell_property("units")
    activation = cell_property("activation")
    use_bias = cell_property("use_bias")
    dropout = cell_property("dropout")
    recurrent_dropout = cell_property("recurrent_dropout")
