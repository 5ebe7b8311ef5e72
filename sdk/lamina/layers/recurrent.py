"""``RNN``: the base of the recurrent layers; it owns the loop over timesteps.

A cell (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell`` or your own) computes one step:
``call(inputs_t, states, training) -> (output_t, new_states)``. ``RNN`` runs it over
the sequence with Keras's semantics for masks, ``initial_state``, ``go_backwards``,
``return_sequences`` and ``return_state``. Lamina's built-in cells also provide
``fused_sequence``, which runs the whole sequence as one fused primitive
(:mod:`lamina.backend.rnn`); ``RNN`` uses it whenever the cell's activations allow and
falls back to the step-by-step loop of ops otherwise.
"""

from __future__ import annotations

import numpy as np

from lamina import activations, ops
from lamina.backend import rnn as _rnn
from lamina.backend.random import SeedGenerator
from lamina.backend.tensor import Tensor
from lamina.distribute import keys as noise_keys
from lamina.layers.layer import Layer


class DropoutRNNCell(Layer):
    """Base of the built-in cells: validated ``dropout``/``recurrent_dropout`` and masks.

    Keras draws one input mask and one recurrent mask per batch and reuses them at every
    timestep; ``RNN`` asks for them once per call.
    """

    def _init_dropout(self, dropout, recurrent_dropout, seed):
        for name, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(
                    f"Argument `{name}` must be a float between 0 and 1. "
                    f"Received: {name}={value!r}")
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self._recurrent_dropout_mask = None

    def _mask(self, shape, rate, dtype):
        # Inside fit, sample i's mask comes from its (seed, epoch, global row) key, so
        # every replica count draws the same masks (lamina.distribute.keys).
        keys = noise_keys.layer_keys(self, shape[0])
        if keys is None:
            keep = self.seed_generator.rng.random(shape, dtype=np.float32) >= rate
        else:
            keep = noise_keys.keep_mask(keys, shape, rate)
        return keep.astype(dtype) * np.asarray(1.0 / (1.0 - rate), dtype=dtype)

    def get_dropout_mask(self, step_input):
        """Input dropout multipliers (batch, features), or None when not dropping."""
        if not 0.0 < self.dropout < 1.0:
            return None
        return self._mask(step_input.shape, self.dropout, step_input.dtype)

    def get_recurrent_dropout_mask(self, batch_size, dtype):
        """Recurrent dropout multipliers (batch, units), or None when not dropping."""
        if not 0.0 < self.recurrent_dropout < 1.0:
            return None
        return self._mask((batch_size, self.units), self.recurrent_dropout, dtype)

    def _fused_names(self, *fns):
        """Activation names when all are fusable, else None (use the composed loop)."""
        names = []
        for fn in fns:
            try:
                name = activations.serialize(fn)
            except ValueError:
                return None
            if (not isinstance(name, str) or name not in _rnn.SUPPORTED_ACTIVATIONS
                    or activations.get(name) is not fn):
                return None
            names.append(name)
        return names

    def _h_in(self, h):
        mask = self._recurrent_dropout_mask
        return h if mask is None else ops.multiply(h, mask)


class RNN(Layer):
    """Base class for recurrent layers: runs a cell over the timesteps of a sequence.

    Args:
        cell: a cell layer with ``call(inputs, states, training)``, ``state_size`` (an
            int or a list of ints) and optionally ``output_size``.
        return_sequences: return the output of every step instead of the last one.
        return_state: also return the final states.
        go_backwards: process the sequence backwards and return the reversed sequence.
        stateful: not supported; carry states with ``return_state``/``initial_state``.
        unroll: accepted for compatibility and ignored (the loop is never unrolled).
        zero_output_for_mask: output zeros (instead of the previous output) at masked
            steps when returning sequences; ``Bidirectional`` sets it.

    Call arguments:
        sequences: (batch, timesteps, features) tensor.
        initial_state: optional list of initial state tensors (batch, units).
        mask: optional (batch, timesteps) boolean mask; masked steps carry the states
            and the previous output through unchanged.
        training: whether dropout is applied.

    Input shape:
        3D tensor ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, timesteps, units)`` with ``return_sequences``, else
        ``(batch_size, units)``; with ``return_state`` a list ``[output, *states]``.
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        if not hasattr(cell, "call") or not hasattr(cell, "state_size"):
            raise ValueError(
                "Argument `cell` must be a layer with a `call` method and a `state_size` "
                f"attribute. Received: cell={cell!r}")
        if stateful:
            raise NotImplementedError(
                "Lamina's recurrent layers do not support `stateful=True`. Pass "
                "`return_state=True` and feed the returned states back through "
                "`initial_state=` on the next call instead. Received: stateful=True")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        sizes = cell.state_size
        self.state_size = [sizes] if isinstance(sizes, int) else list(sizes)

    # -- lifecycle ---------------------------------------------------------------------
    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"ndim=3, found ndim={len(sequences_shape)}. Full shape received: "
                f"{tuple(sequences_shape)}")
        if not self.cell.built:
            self.cell.build((sequences_shape[0], *tuple(sequences_shape[2:])))
            self.cell.built = True
            # Keras names cell weights inside the layer's scope: "lstm/lstm_cell/kernel".
            for variable in self.cell.weights:
                variable.path = f"{self.name}/{variable.path}"
        self.built = True

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, length = sequences_shape[0], sequences_shape[1]
        units = getattr(self.cell, "output_size", None) or self.state_size[0]
        output = (batch, length, units) if self.return_sequences else (batch, units)
        if self.return_state:
            return [output] + [(batch, s) for s in self.state_size]
        return output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    def get_initial_state(self, batch_size):
        """Zero states, one (batch_size, size) tensor per entry of ``state_size``."""
        return [ops.zeros((batch_size, s), dtype=self.dtype) for s in self.state_size]

    # -- the loop ----------------------------------------------------------------------
    def call(self, sequences, initial_state=None, mask=None, training=None):
        if sequences.ndim != 3:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"ndim=3, found ndim={sequences.ndim}. Full shape received: "
                f"{tuple(sequences.shape)}")
        states = self._standardize_states(initial_state)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is not None:
            mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)
        cell = self.cell
        batch = sequences.shape[0]
        rec_mask = None
        if training and isinstance(cell, DropoutRNNCell):
            dp = cell.get_dropout_mask(sequences.data[:, 0])
            if dp is not None:
                sequences = ops.multiply(sequences, dp[:, None, :])
            rec_mask = cell.get_recurrent_dropout_mask(batch, sequences.data.dtype)
        fused = getattr(cell, "fused_sequence", None)
        result = None
        if fused is not None:
            result = fused(sequences, states, mask=mask, recurrent_mask=rec_mask,
                           go_backwards=self.go_backwards,
                           return_sequences=self.return_sequences)
        if result is None:
            result = self._loop(sequences, states, mask, rec_mask, training)
        output, final_states = result
        if self.zero_output_for_mask and self.return_sequences and mask is not None:
            ordered = mask[:, ::-1] if self.go_backwards else mask
            output = ops.multiply(output, ordered[:, :, None].astype(output.data.dtype))
        if self.return_state:
            return [output, *final_states]
        return output

    def _standardize_states(self, initial_state):
        if initial_state is None:
            return [None] * len(self.state_size)
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if len(initial_state) != len(self.state_size):
            raise ValueError(
                f"Layer '{self.name}' expects {len(self.state_size)} initial state(s) but "
                f"received {len(initial_state)}.")
        return [self._convert_input(s) for s in initial_state]

    def _loop(self, sequences, states, mask, rec_mask, training):
        """The composed path: one call of the cell per step, differentiated op by op."""
        cell = self.cell
        batch, steps = sequences.shape[0], sequences.shape[1]
        states = [ops.zeros((batch, size), dtype=sequences.dtype) if s is None else s
                  for s, size in zip(states, self.state_size)]
        has_dropout = isinstance(cell, DropoutRNNCell)
        if has_dropout:
            cell._recurrent_dropout_mask = rec_mask
        kwargs = {"training": training} if cell._call_has_training else {}
        outputs, previous = [], None
        try:
            order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
            for t in order:
                output, new_states = cell.call(sequences[:, t], states, **kwargs)
                if not isinstance(new_states, (list, tuple)):
                    new_states = [new_states]
                if mask is not None:
                    keep = mask[:, t:t + 1]
                    if previous is None:  # a masked first step repeats the initial h
                        previous = (states[0] if tuple(states[0].shape) == tuple(output.shape)
                                    else ops.zeros(output.shape, dtype=output.dtype))
                    # the previous *output* (not states[0]: StackedRNNCells differ)
                    output = ops.where(keep, output, previous)
                    new_states = [ops.where(keep, n, s) for n, s in zip(new_states, states)]
                previous = output
                states = list(new_states)
                if self.return_sequences or t == order[-1]:
                    outputs.append(output)
        finally:
            if has_dropout:
                cell._recurrent_dropout_mask = None
        output = ops.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return output, states

    def get_config(self):
        config = {
            **super().get_config(),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        if type(self) is RNN:
            config["cell"] = serialize_layer(self.cell)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "cell" in config:
            config["cell"] = deserialize_layer(config["cell"])
        return cls(**config)


def run_fused(primitive, sequences, weights, states, n_extra, **kwargs):
    """Run a fused sequence primitive and unpack ``(output, final_states)``.

    Bool or integer sequences are promoted to the kernel's dtype first, as Keras's
    ``matmul`` promotes them.
    """
    kernel_dtype = weights[0].dtype
    if str(sequences.dtype) != str(kernel_dtype) and not str(sequences.dtype).startswith(
            ("float", "bfloat")):
        sequences = ops.cast(sequences, kernel_dtype)
    packed = primitive.apply(sequences, *weights, *states, **kwargs)
    outputs, last, extra = _rnn.unpack(packed, sequences.shape[1], kwargs["return_sequences"],
                                       n_extra)
    output = ops.getitem(packed, outputs)
    final = [ops.getitem(packed, last)] + [ops.getitem(packed, e) for e in extra]
    return output, final


def serialize_layer(layer) -> dict:
    """Keras's ``{"class_name", "config"}`` envelope of a layer."""
    return {"module": "keras.layers", "class_name": type(layer).__name__,
            "config": layer.get_config(), "registered_name": None}


def deserialize_layer(config):
    """Rebuild a layer from :func:`serialize_layer`'s envelope (or return a layer as is)."""
    if isinstance(config, Layer):
        return config
    from lamina import layers

    cls = getattr(layers, config["class_name"], None)
    if cls is None:
        raise ValueError(f"Unknown layer class: {config['class_name']!r}")
    return cls.from_config(config["config"])


def validate_units(units):
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
        raise ValueError(
            f"Received an invalid value for argument `units`, expected a positive integer. "
            f"Received: units={units!r}")
    return int(units)


def cell_property(name):
    """A read-only property of a recurrent layer that forwards to its cell."""
    return property(lambda self: getattr(self.cell, name),
                    doc=f"The cell's ``{name}``.")


_BASE_CONFIG_KEYS = ("name", "trainable", "dtype", "batch_input_shape", "activity_regularizer")


def cell_arguments(cell) -> dict:
    """The cell's own constructor arguments (its config without the base layer keys)."""
    return {k: v for k, v in cell.get_config().items() if k not in _BASE_CONFIG_KEYS}


class StandardCell(DropoutRNNCell):
    """Shared constructor, weights and config of SimpleRNNCell, LSTMCell and GRUCell.

    Subclasses set ``gates`` (how many ``units``-wide blocks the kernels hold) and may
    override ``bias_shape`` and ``bias_init``. Weights, in Keras's order: ``kernel``
    (input_dim, gates*units), ``recurrent_kernel`` (units, gates*units), ``bias``.
    """

    gates = 1

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        from lamina import constraints, initializers, regularizers

        super().__init__(**kwargs)
        self.units = validate_units(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self._init_dropout(dropout, recurrent_dropout, seed)
        self.state_size = self.units
        self.output_size = self.units

    def bias_shape(self):
        return (self.gates * self.units,)

    def bias_init(self):
        return self.bias_initializer

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the input to '{self.name}' must be known. "
                f"Received: input_shape={tuple(input_shape)}")
        width = self.gates * self.units
        self.kernel = self.add_weight(
            name="kernel", shape=(input_dim, width), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, width),
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=self.bias_shape(), initializer=self.bias_init(),
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def get_config(self):
        from lamina import constraints, initializers, regularizers

        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
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


class StandardRNN(RNN):
    """Base of SimpleRNN, LSTM and GRU: an ``RNN`` over one built-in cell.

    Their configs hold the cell's arguments (not a nested cell), as in Keras.
    """

    def get_config(self):
        return {**super().get_config(), **cell_arguments(self.cell)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
