"""``Functional``: a model defined as a graph of layer calls on symbolic inputs."""

from __future__ import annotations

import numpy as np

from lamina.backend.tensor import Tensor
from lamina.layers.layer import Layer
from lamina.layers.symbolic import flatten
from lamina.models.model import Model
from lamina.ops.function import Function


class Functional(Function, Model):
    """A model built from ``Input`` tensors and layer calls: ``Model(inputs, outputs)``.

    Args:
        inputs: a KerasTensor from :func:`lamina.Input`, or a list/dict of them.
        outputs: a KerasTensor produced from ``inputs``, or a list/dict of them.
        name: model name.
    """

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        Layer.__init__(self, name=name, trainable=trainable, **kwargs)
        self._setup_graph(inputs, outputs)
        # Keras's order (depth from the outputs); op nodes (`keras.ops` on KerasTensors) are
        # operations, not layers, as in Keras 3.
        self._layers = [op for op in self.operations if isinstance(op, Layer)]
        self.output_names = [t.node.operation.name for t in self.outputs]
        self.input_names = [t.node.operation.name for t in self.inputs]
        self.built = True

    @property
    def layers(self) -> list:
        return list(self._layers)

    @property
    def input(self):
        """The ``inputs`` given to the constructor, in their structure (as Keras)."""
        return self._inputs_struct

    @property
    def output(self):
        """The ``outputs`` given to the constructor, in their structure (as Keras)."""
        return self._outputs_struct

    def _flat_layers(self):
        return self._layers

    def _standardize_inputs(self, inputs) -> list:
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(
                    f"Missing data for input(s) {missing} of model '{self.name}'. Received "
                    f"dict keys: {sorted(inputs)}")
            flat = [inputs[n] for n in self.input_names]
        elif isinstance(self._inputs_struct, dict):
            flat = flatten(inputs)
        else:
            flat = flatten(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(flat) != len(self.inputs):
            raise ValueError(
                f"Model '{self.name}' expects {len(self.inputs)} input(s), but it received "
                f"{len(flat)} input tensors.")
        return flat

    def call(self, inputs, training=None, mask=None):
        values = {}
        for spec, x in zip(self.inputs, self._standardize_inputs(inputs)):
            data = x.data if isinstance(x, Tensor) else np.asarray(x)
            x, data = adjust_input_rank(x, data, spec.shape)
            _check_input_shape(self.name, spec, data.shape)
            want = np.dtype(object if spec.dtype == "string" else spec.dtype)
            if data.dtype != want and (want.kind == "f" or data.dtype.kind == "f"):
                x = Tensor(data.astype(want)) if not isinstance(x, Tensor) else x.astype(want)
            elif not isinstance(x, Tensor):
                x = Tensor(data)
            values[id(spec)] = x

        def call(operation, args, kwargs):
            if training is not None and operation._call_has_training:
                kwargs["training"] = training  # the outer value wins over a recorded one
            return operation(*args, **kwargs)

        return self._run_through_graph(values, call)

    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def _symbolic_call(self, inputs, *args, **kwargs):
        return Layer._symbolic_call(self, inputs, *args, **kwargs)

    def get_config(self) -> dict:
        """Keras's functional config.

        Raises:
            NotImplementedError: if the graph has `keras.ops` nodes (not serialisable yet).
        """
        for node in self._nodes:
            if not isinstance(node.operation, Layer):
                node.operation.get_config()
        return Model.get_config(self)


def adjust_input_rank(x, data, expected):
    """Keras's input-rank adjustment: a trailing axis of 1 is added or dropped.

    ``(N,)`` data for ``Input(shape=(1,))`` becomes ``(N, 1)``; ``(N, 3, 1)`` for
    ``Input(shape=(3,))`` becomes ``(N, 3)``. Any other rank mismatch is left for the
    shape check to report.
    """
    if data.ndim == len(expected) - 1 and expected[-1] == 1:
        return (x.reshape(data.shape + (1,)) if isinstance(x, Tensor) else data[..., None],
                data[..., None])
    if data.ndim == len(expected) + 1 and data.shape[-1] == 1:
        return (x.reshape(data.shape[:-1]) if isinstance(x, Tensor) else data[..., 0],
                data[..., 0])
    return x, data


def _check_input_shape(model_name, spec, shape) -> None:
    expected = spec.shape
    if len(shape) != len(expected) or any(
            e is not None and e != s for e, s in zip(expected[1:], shape[1:])):
        raise ValueError(
            f"Input '{spec.name}' of model '{model_name}' is incompatible with the model: "
            f"expected shape={expected}, found shape={tuple(shape)}")
