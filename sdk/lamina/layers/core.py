"""Core layers: Dense, Activation, Identity, Lambda."""

from __future__ import annotations

import numpy as np

from lamina import activations, constraints, initializers, ops, regularizers
from lamina.backend import dense_rows
from lamina.backend.tensor import Tensor
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.lora import LoRAMixin


class Dense(LoRAMixin, Layer):
    """Densely connected layer: ``activation(inputs @ kernel + bias)``.

    Args:
        units: positive int, the output size.
        activation: activation name or callable; linear by default.
        use_bias: whether to add a bias vector.
        kernel_initializer: initializer of the kernel (``glorot_uniform``).
        bias_initializer: initializer of the bias (``zeros``).
        kernel_regularizer, bias_regularizer: optional regularizers.
        kernel_constraint, bias_constraint: optional constraints.
        lora_rank: optional positive int: build with LoRA enabled at this rank (see
            :meth:`enable_lora`; the kernel is then frozen).
        lora_alpha: scale of the LoRA update, ``lora_alpha / lora_rank`` (``lora_rank``
            by default).
        quantization_config: must be None (Lamina does not quantize).

    Input shape:
        ``(batch_size, ..., input_dim)``.

    Output shape:
        ``(batch_size, ..., units)``.

    Example:
        >>> import lamina as keras
        >>> layer = keras.layers.Dense(3)
        >>> layer(np.ones((2, 4))).shape
        (2, 3)
    """

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
                 quantization_config=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._init_lora(lora_rank, lora_alpha, quantization_config)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(
                f"Received an invalid value for `units`, expected a positive integer. "
                f"Received: units={units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.supports_masking = True
        self._fused = "relu" if activations.serialize(self.activation) == "relu" else None
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the input to Dense layer '{self.name}' must be known. "
                f"Received: input_shape={tuple(input_shape)}")
        self.kernel = self.add_weight(
            name="kernel", shape=(input_dim, self.units), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True
        if self.lora_rank and not self.lora_enabled:
            self.enable_lora(self.lora_rank, lora_alpha=self.lora_alpha)

    def call(self, inputs):
        if inputs.shape[-1] != self.kernel.shape[0]:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"axis -1 of input shape to have value {self.kernel.shape[0]}, but received "
                f"input with shape {tuple(inputs.shape)}")
        kernel = self._lora_merged()
        if not isinstance(inputs, Tensor):  # a direct call on symbolic tensors
            return self.activation(ops.dense(inputs, kernel, self.bias))
        if self._fused is not None:
            return dense_rows.dense(inputs, kernel, self.bias, activation=self._fused)
        return self.activation(dense_rows.dense(inputs, kernel, self.bias))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            **self._lora_config(),
        }


class Activation(Layer):
    """Applies an activation function to its input.

    Args:
        activation: activation name (``"relu"``) or callable.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Identity(Layer):
    """Returns its input unchanged."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class Lambda(Layer):
    """Wraps a Python function as a layer.

    A Lambda's function is Python code, so a Lambda layer read from a file or a
    config is refused unless the caller passes ``safe_mode=False`` when loading.

    Args:
        function: callable applied to the inputs.
        output_shape: optional output shape (without the batch dimension).
        arguments: optional dict of keyword arguments for ``function``.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable `function`. Received: function={function!r}")
        self.function = function
        self.arguments = arguments or {}
        self._output_shape = output_shape
        self.built = True

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._output_shape is not None:
            return (input_shape[0], *tuple(self._output_shape))
        return super().compute_output_shape(input_shape)

    def get_config(self):
        raise NotImplementedError(
            "Lambda layers hold Python code and are not serialised by Lamina; "
            "write a subclassed layer registered with `lamina.saving.register_serializable`.")
