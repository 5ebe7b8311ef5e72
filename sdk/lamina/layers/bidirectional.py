"""Bidirectional: runs a recurrent layer forwards and a copy backwards, then merges."""

from __future__ import annotations

from lamina import ops
from lamina.layers.layer import Layer
from lamina.layers.recurrent import deserialize_layer, serialize_layer
from lamina.layers.wrapper import Wrapper

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _rebuilt(layer, **overrides):
    """A fresh copy of ``layer`` from its config (no weights or state carried over)."""
    return deserialize_layer({**serialize_layer(layer),
                              "config": {**layer.get_config(), **overrides}})


def _strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Wrapper):
    """Bidirectional wrapper for RNNs: a forward copy and a ``go_backwards`` copy.

    Args:
        layer: a recurrent layer (``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN``). It is
            re-created from its config as ``forward_<name>``.
        merge_mode: how the two outputs combine: ``"concat"`` (default), ``"sum"``,
            ``"mul"``, ``"ave"`` or None (a list of both).
        backward_layer: optional layer for the backward direction; by default a copy of
            ``layer`` with ``go_backwards`` flipped, named ``backward_<name>``.

    Call arguments:
        sequences: (batch, timesteps, features). initial_state: optional list, the
            forward layer's states then the backward layer's. mask, training: passed on.

    Input shape:
        3D tensor ``(batch_size, timesteps, features)``.

    Output shape:
        The wrapped layer's output with the last axis doubled for ``"concat"``; with
        ``return_state``, followed by the forward then the backward final states.
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None,
                 **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(
                "Please initialize `Bidirectional` layer with a `Layer` instance. "
                f"Received: layer={layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(
                "`backward_layer` need to be a `Layer` instance. "
                f"Received: backward_layer={backward_layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Invalid merge mode. Received: merge_mode={merge_mode!r}. Merge mode should "
                'be one of {"sum", "mul", "ave", "concat", None}')
        # As in Keras: a Wrapper without `self.layer` (it holds forward_ and backward_layer).
        Layer.__init__(self, **kwargs)
        self.forward_layer = _rebuilt(layer, name="forward_" + _strip(layer.name, "forward_"))
        if backward_layer is None:
            backward_layer = _rebuilt(layer, name="backward_" + _strip(layer.name, "backward_"),
                                      go_backwards=not layer.go_backwards)
        self.backward_layer = backward_layer
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` "
                f"value. Received: forward_layer.go_backwards="
                f"{self.forward_layer.go_backwards}, backward_layer.go_backwards="
                f"{self.backward_layer.go_backwards}")
        for attr in ("return_sequences", "return_state"):
            if getattr(self.forward_layer, attr) != getattr(self.backward_layer, attr):
                raise ValueError(
                    f'Forward layer and backward layer are expected to have the same value '
                    f'for attribute "{attr}", got "{getattr(self.forward_layer, attr)}" for '
                    f'forward layer and "{getattr(self.backward_layer, attr)}" for backward '
                    "layer")
        # As Keras: masked steps of returned sequences are zeros, so that the reversed
        # backward sequence lines up with the forward one.
        for sub in (self.forward_layer, self.backward_layer):
            if hasattr(sub, "zero_output_for_mask"):
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self._initial_weights = weights
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = False
        self.supports_masking = True

    def build(self, sequences_shape, initial_state_shape=None):
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build(sequences_shape)
                sub.built = True
                for variable in sub.weights:
                    variable.path = f"{self.name}/{variable.path}"
        self.built = True
        if self._initial_weights:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _merge(self, y, y_rev):
        if self.merge_mode == "concat":
            return ops.concatenate([y, y_rev], axis=-1)
        if self.merge_mode == "sum":
            return ops.add(y, y_rev)
        if self.merge_mode == "ave":
            return ops.multiply(ops.add(y, y_rev), 0.5)
        if self.merge_mode == "mul":
            return ops.multiply(y, y_rev)
        return [y, y_rev]

    def call(self, sequences, initial_state=None, mask=None, training=None):
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(sequences, initial_state=forward_state, mask=mask,
                               training=training)
        y_rev = self.backward_layer(sequences, initial_state=backward_state, mask=mask,
                                    training=training)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = ops.getitem(y_rev, (slice(None), slice(None, None, -1)))
        output = self._merge(y, y_rev)
        if self.return_state:
            return (output if isinstance(output, list) else [output]) + states
        return output

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        shape = self.forward_layer.compute_output_shape(sequences_shape)
        states = []
        if self.return_state:
            shape, states = shape[0], list(shape[1:])
        shape = tuple(shape)
        if self.merge_mode == "concat":
            outputs = [shape[:-1] + (2 * shape[-1],)]
        elif self.merge_mode is None:
            outputs = [shape, shape]
        else:
            outputs = [shape]
        if not self.return_state and len(outputs) == 1:
            return outputs[0]
        return outputs + states + states

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        masks = [output_mask] * (2 if self.merge_mode is None else 1)
        if self.return_state:
            n = len(getattr(self.forward_layer, "state_size", []))
            masks += [None] * (2 * n)
        return masks if len(masks) > 1 else masks[0]

    def get_config(self):
        return {**Layer.get_config(self), "merge_mode": self.merge_mode,
                "layer": serialize_layer(self.forward_layer),
                "backward_layer": serialize_layer(self.backward_layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize_layer(config["backward_layer"])
        return cls(**config)
