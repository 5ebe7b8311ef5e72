"""GRU: Keras's gated recurrent unit (gates ``z, r, h``; ``reset_after`` variants) and cell."""

from __future__ import annotations

from lamina import activations, ops
from lamina.backend.rnn import GRUSequence
from lamina.layers.recurrent import StandardCell, StandardRNN, cell_property, run_fused
from lamina.layers.rnn_cells import check_use_cudnn


class GRUCell(StandardCell):
    """One GRU step: ``h = z * h + (1 - z) * hh``.

    ``z, r = recurrent_activation(.)`` of the input and recurrent projections. With
    ``reset_after=True`` (Keras's default, cuDNN-compatible)
    ``hh = activation(x W_h + b_h + r * (h U_h + b'_h))`` and the bias has shape
    ``(2, 3*units)`` (input bias, recurrent bias); with ``reset_after=False``
    ``hh = activation(x W_h + (r * h) U_h + b_h)`` and the bias is ``(3*units,)``.

    Args:
        units: positive int, the size of the state.
        activation: activation of the candidate (``tanh``).
        recurrent_activation: activation of the gates (``sigmoid``).
        reset_after: apply the reset gate after the recurrent product.
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout,
            recurrent_dropout, seed: as for :class:`~lamina.layers.LSTMCell`.

    Input shape:
        ``(batch_size, features)`` and the state ``[(batch_size, units)]``.

    Output shape:
        ``(batch_size, units)`` and the new state ``[h]``.
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, reset_after=True,
                 seed=None, **kwargs):
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
        self.reset_after = bool(reset_after)

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        h_in = self._h_in(h)
        ract = self.recurrent_activation
        mx = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            mx = ops.add(mx, self.bias[0] if self.reset_after else self.bias)
        xz, xr, xh = ops.split(mx, 3, axis=-1)
        if self.reset_after:
            mi = ops.matmul(h_in, self.recurrent_kernel)
            if self.bias is not None:
                mi = ops.add(mi, self.bias[1])
            rz, rr, rh = ops.split(mi, 3, axis=-1)
            z, r = ract(ops.add(xz, rz)), ract(ops.add(xr, rr))
            hh = self.activation(ops.add(xh, ops.multiply(r, rh)))
        else:
            uz, ur, uh = ops.split(self.recurrent_kernel, 3, axis=-1)
            z = ract(ops.add(xz, ops.matmul(h_in, uz)))
            r = ract(ops.add(xr, ops.matmul(h_in, ur)))
            hh = self.activation(ops.add(xh, ops.matmul(ops.multiply(r, h_in), uh)))
        h = ops.add(hh, ops.multiply(z, ops.subtract(h, hh)))
        return h, [h]

    def fused_sequence(self, sequences, states, **kwargs):
        names = self._fused_names(self.activation, self.recurrent_activation)
        if names is None:
            return None
        return run_fused(GRUSequence, sequences,
                         [self.kernel, self.recurrent_kernel, self.bias], states, 0,
                         activation=names[0], recurrent_activation=names[1],
                         reset_after=self.reset_after, **kwargs)

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after}


class GRU(StandardRNN):
    """Gated Recurrent Unit (Cho et al. 2014) with Keras's arguments and weight layout.

    Weights on ``layer.cell`` (``gru_cell``): ``kernel (input_dim, 3*units)``,
    ``recurrent_kernel (units, 3*units)``, ``bias`` ``(2, 3*units)`` with
    ``reset_after=True`` (default: ``3 * units * (input_dim + units + 2)`` parameters)
    or ``(3*units,)`` otherwise (``3 * units * (input_dim + units + 1)``). Gates
    ``z, r, h``. Runs as one fused primitive for tanh/sigmoid/relu/linear/hard_sigmoid.

    Args:
        units: positive int, the size of the output and state.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed,
            reset_after: see :class:`GRUCell`.
        activity_regularizer, return_sequences, return_state, go_backwards, stateful,
            unroll, use_cudnn: see :class:`~lamina.layers.LSTM`.

    Input shape:
        3D tensor ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, timesteps, units)`` with ``return_sequences`` else
        ``(batch_size, units)``; with ``return_state``, ``[output, h]``.
    """

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, reset_after=True,
                 use_cudnn="auto", **kwargs):
        check_use_cudnn(use_cudnn)
        cell = GRUCell(
            units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            dropout=dropout, recurrent_dropout=recurrent_dropout, reset_after=reset_after,
            seed=seed, name="gru_cell", dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            implementation=kwargs.pop("implementation", 2))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, **kwargs)

    units = cell_property("units")
    activation = cell_property("activation")
    recurrent_activation = cell_property("recurrent_activation")
    use_bias = cell_property("use_bias")
    reset_after = cell_property("reset_after")
    dropout = cell_property("dropout")
    recurrent_dropout = cell_property("recurrent_dropout")
