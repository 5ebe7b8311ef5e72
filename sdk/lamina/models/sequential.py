"""``Sequential``: a plain stack of layers, each with one input and one output."""

from __future__ import annotations

import numpy as np

from lamina.backend.tensor import Tensor
from lamina.layers.input_layer import InputLayer
from lamina.layers.layer import Layer
from lamina.layers.symbolic import KerasTensor
from lamina.models.functional import adjust_input_rank
from lamina.models.model import Model


class Sequential(Model):
    """A linear stack of layers.

    Args:
        layers: optional list of layers (the first may be an ``Input``/``InputLayer``).
        trainable: whether the model's weights are trained.
        name: model name.

    Example:
        >>> import lamina as keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> model.count_params()
        10
    """

    def __init__(self, layers=None, trainable=True, name=None, **kwargs):
        super().__init__(trainable=trainable, name=name, **kwargs)
        self._input_layer = None
        self._stack = []
        self._output_shapes = []
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._maybe_rebuild()

    def add(self, layer, rebuild=True):
        """Append a layer (or set the input, for an ``Input`` tensor / ``InputLayer``)."""
        if isinstance(layer, KerasTensor):
            layer = layer.node.operation
        if isinstance(layer, InputLayer):
            if self._input_layer is not None or self._stack:
                raise ValueError(
                    f"Sequential model '{self.name}' already has an input; an InputLayer can "
                    "only be the first layer.")
            self._input_layer = layer
        elif isinstance(layer, Layer):
            if any(layer is la for la in self._stack):
                raise ValueError(f"Layer '{layer.name}' is already in the model.")
            self._stack.append(layer)
        else:
            raise ValueError(
                "Only instances of `lamina.layers.Layer` can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})")
        self._layers = list(self._stack)
        self.built = False
        if rebuild:
            self._maybe_rebuild()

    def pop(self, rebuild=True):
        """Remove and return the last layer."""
        if not self._stack:
            raise IndexError("There are no layers in the model.")
        layer = self._stack.pop()
        self._layers = list(self._stack)
        self.built = False
        if rebuild:
            self._maybe_rebuild()
        return layer

    @property
    def layers(self) -> list:
        return list(self._stack)

    def _flat_layers(self):
        return self._stack

    def _maybe_rebuild(self):
        if self._input_layer is None and self._stack and self._stack[0]._batch_input_shape:
            self._input_layer = InputLayer(batch_shape=self._stack[0]._batch_input_shape,
                                           dtype=self._stack[0].dtype)
        if self._input_layer is not None and self._stack:
            self.build(self._input_layer.batch_shape)

    def build(self, input_shape=None):
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument.")
        input_shape = tuple(input_shape)
        if self._input_layer is None:
            self._input_layer = InputLayer(batch_shape=input_shape)
        x = self._input_layer.output_tensor
        self._output_shapes = []
        for layer in self._stack:
            try:
                x = layer(x)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"Sequential model '{self.name}' cannot be built: layer '{layer.name}' "
                    f"failed on input shape {x.shape}: {exc}") from exc
            self._output_shapes.append(x.shape)
        self.inputs = [self._input_layer.output_tensor]
        self.outputs = [x]
        self.output_names = [self._stack[-1].name] if self._stack else []
        self.input_names = [self._input_layer.name]
        self.built = True

    def _maybe_build(self, inputs):
        if not self.built:
            self.build((None, *tuple(inputs.shape[1:])))

    def call(self, inputs, training=None, mask=None):
        if self._input_layer is not None:
            expected = self._input_layer.batch_shape
            if not isinstance(inputs, KerasTensor):
                data = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
                inputs, data = adjust_input_rank(inputs, data, expected)
                # As Keras (and the functional model): data meets the Input's dtype, so a
                # bool or int array feeds a float32 model as float32.
                dtype = self._input_layer.dtype
                want = np.dtype(object if dtype == "string" else dtype)
                if (data.dtype != want and data.dtype.kind in "biuf"
                        and (want.kind == "f" or data.dtype.kind == "f")):
                    inputs = (inputs.astype(want) if isinstance(inputs, Tensor)
                              else Tensor(data.astype(want)))
            shape = inputs.shape
            if len(shape) != len(expected) or any(
                    e is not None and e != s for e, s in zip(expected[1:], shape[1:])):
                raise ValueError(
                    f"Input 0 of Sequential model '{self.name}' is incompatible: expected "
                    f"shape={expected}, found shape={tuple(shape)}")
        x = inputs
        for layer in self._stack:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        if not self.built:
            self.build(input_shape)
        return self.outputs[0].shape

    def get_config(self):
        from lamina.saving.serialization import sequential_config

        return sequential_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from lamina.saving.serialization import sequential_from_config

        return sequential_from_config(config, custom_objects=custom_objects)
