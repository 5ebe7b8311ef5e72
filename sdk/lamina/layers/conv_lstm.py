"""Convolutional LSTM layers: ConvLSTM1D, ConvLSTM2D, ConvLSTM3D.

Each runs a :class:`~lamina.layers.conv_lstm_cell.ConvLSTMCell` (Keras's weight layout,
gates i, f, c, o) over a sequence of frames. The input convolution of all timesteps is
one convolution over the sequence folded into the batch; the loop adds the recurrent
convolution of the previous state, op by op, so gradients come from autodiff.
"""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend.tensor import Tensor
from lamina.layers.conv_lstm_cell import ConvLSTMCell
from lamina.layers.input_spec import InputSpec
from lamina.layers.recurrent import RNN, cell_arguments, cell_property


class ConvLSTM(RNN):
    """Base of ConvLSTM1D/2D/3D: runs a :class:`ConvLSTMCell` over a sequence of frames.

    Args:
        rank: 1, 2 or 3 spatial axes.
        filters ... seed: the cell's arguments (see :class:`ConvLSTMCell`).
        activity_regularizer: optional regularizer of the output.
        return_sequences: return every step's output instead of the last one.
        return_state: also return the final ``h`` and ``c`` states.
        go_backwards: process the sequence backwards (outputs in processing order).
        stateful: must be False (Lamina does not keep states between calls; pass
            ``initial_state`` instead).

    Call arguments:
        sequences: ``(batch, time, *spatial, channels)`` (or ``(batch, time, channels,
            *spatial)`` with channels_first).
        initial_state: optional ``[h, c]``, each of the state's shape.
        mask: optional ``(batch, time)`` boolean mask; masked steps carry the states.
        training: apply dropout when True.
    """

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, activation="tanh",
                 recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, **kwargs):
        cell = ConvLSTMCell(
            rank, filters, kernel_size, strides=strides, padding=padding,
            data_format=data_format, dilation_rate=dilation_rate, activation=activation,
            recurrent_activation=recurrent_activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            name="conv_lstm_cell", dtype=kwargs.get("dtype"))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful,
                         activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.input_spec = InputSpec(ndim=rank + 3)

    def _check_ndim(self, shape):
        if len(shape) != self.rank + 3:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"ndim={self.rank + 3}, found ndim={len(shape)}. Full shape received: "
                f"{tuple(shape)}")

    def build(self, sequences_shape, initial_state_shape=None):
        self._check_ndim(sequences_shape)
        if not self.cell.built:
            self.cell.build((sequences_shape[0], *tuple(sequences_shape[2:])))
            for variable in self.cell.weights:
                variable.path = f"{self.name}/{variable.path}"
        self._frame_shape = tuple(sequences_shape[2:])
        self.built = True

    def _state_shape(self, sequences_shape):
        cell, batch = self.cell, sequences_shape[0]
        step = tuple(sequences_shape[2:])
        if cell.data_format == "channels_last":
            return (batch, *cell.output_spatial(step[:-1]), cell.filters)
        return (batch, cell.filters, *cell.output_spatial(step[1:]))

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        self._check_ndim(sequences_shape)
        state = self._state_shape(sequences_shape)
        output = ((state[0], sequences_shape[1], *state[1:]) if self.return_sequences
                  else state)
        return [output, state, state] if self.return_state else output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        return [output_mask, None, None] if self.return_state else output_mask

    def get_initial_state(self, batch_size):
        """Zero ``[h, c]`` for the built input shape and ``batch_size``."""
        if not self.built:
            raise ValueError(f"Layer '{self.name}' must be built before get_initial_state().")
        shape = (batch_size, *self._state_shape((None, None, *self._frame_shape))[1:])
        return [ops.zeros(shape, dtype=self.dtype), ops.zeros(shape, dtype=self.dtype)]

    def call(self, sequences, initial_state=None, mask=None, training=None):
        self._check_ndim(sequences.shape)
        cell = self.cell
        batch, steps = sequences.shape[0], sequences.shape[1]
        state_shape = self._state_shape(sequences.shape)
        if initial_state is None:
            h = ops.zeros(state_shape, dtype=sequences.dtype)
            c = ops.zeros(state_shape, dtype=sequences.dtype)
        else:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                raise ValueError(f"Layer '{self.name}' expects 2 initial states [h, c]. "
                                 f"Received: initial_state={initial_state!r}")
            h, c = (self._convert_input(s) for s in initial_state)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is not None:
            mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)
        x = sequences
        if self.go_backwards:
            x = ops.flip(x, axis=1)
            mask = None if mask is None else mask[:, ::-1]
        dtype = sequences.data.dtype
        step_shape = (batch, *sequences.shape[2:])
        in_masks = rec_masks = None
        if training and 0.0 < cell.dropout < 1.0:
            # One mask per gate and sequence, shared by all timesteps (as Keras does).
            in_masks = [np.repeat(cell._mask(step_shape, cell.dropout, dtype)[:, None], steps,
                                  axis=1).reshape((batch * steps, *step_shape[1:]))
                        for _ in range(4)]
        if training and 0.0 < cell.recurrent_dropout < 1.0:
            rec_masks = [cell._mask(state_shape, cell.recurrent_dropout, dtype)
                         for _ in range(4)]
        frames = ops.reshape(x, (batch * steps, *sequences.shape[2:]))
        projected = cell.input_projection(frames, in_masks)
        projected = ops.reshape(projected, (batch, steps, *projected.shape[1:]))
        outputs = []
        for t in range(steps):
            h_new, c_new = cell.step(projected[:, t], h, c, rec_masks)
            if mask is not None:
                keep = mask[:, t].reshape((batch,) + (1,) * (len(state_shape) - 1))
                h_new, c_new = ops.where(keep, h_new, h), ops.where(keep, c_new, c)
            h, c = h_new, c_new
            if self.return_sequences:
                outputs.append(h)
        output = ops.stack(outputs, axis=1) if self.return_sequences else h
        if self.zero_output_for_mask and self.return_sequences and mask is not None:
            keep = mask.reshape(mask.shape + (1,) * (len(state_shape) - 1))
            output = ops.multiply(output, keep.astype(dtype))
        return [output, h, c] if self.return_state else output

    def get_config(self):
        return {**super().get_config(), **cell_arguments(self.cell)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


for _name in ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
              "activation", "recurrent_activation", "use_bias", "kernel_initializer",
              "recurrent_initializer", "bias_initializer", "unit_forget_bias",
              "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
              "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
              "recurrent_dropout"):
    setattr(ConvLSTM, _name, cell_property(_name))


_SIGNATURE_DOC = """
    Args:
        filters: positive int, the channels of the state and the output.
        kernel_size, strides, dilation_rate: int or tuple of {rank} ints.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        activation, recurrent_activation: ``tanh`` and ``sigmoid`` by default.
        use_bias, unit_forget_bias: a bias whose forget block starts at 1.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        activity_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout, recurrent_dropout: dropout rates (one mask per gate and sequence).
        seed: seed of the dropout masks.
        return_sequences, return_state, go_backwards: as in ``LSTM``.
        stateful: must be False (raises NotImplementedError otherwise).

    Input shape:
        ``(batch, time, {spatial}, channels)`` (channels_first: ``(batch, time, channels,
        {spatial})``).

    Output shape:
        ``(batch, [time,] {new}, filters)`` (or channels_first); with ``return_state``
        also the final ``h`` and ``c``.

    Weights: ``kernel (*kernel_size, channels, 4 * filters)``, ``recurrent_kernel
    (*kernel_size, filters, 4 * filters)``, ``bias (4 * filters,)``; gates i, f, c, o.
"""


def _doc(rank):
    spatial = ("steps", "rows, cols", "d1, d2, d3")[rank - 1]
    new = ", ".join("new_" + s for s in spatial.split(", "))
    return (f"{rank}D convolutional LSTM." + _SIGNATURE_DOC.format(rank=rank, spatial=spatial,
                                                                 new=new))


def _forward(args):
    args = dict(args)
    args.pop("self")
    args.pop("__class__", None)
    kwargs = args.pop("kwargs")
    return {**args, **kwargs}


class ConvLSTM1D(ConvLSTM):
    __doc__ = _doc(1)

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, **kwargs):
        super().__init__(1, **_forward(locals()))


class ConvLSTM2D(ConvLSTM):
    __doc__ = _doc(2)

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, **kwargs):
        super().__init__(2, **_forward(locals()))


class ConvLSTM3D(ConvLSTM):
    __doc__ = _doc(3)

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, **kwargs):
        super().__init__(3, **_forward(locals()))
