"""EinsumDense: a dense layer whose contraction is an einsum equation (Keras's layout).

``EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")`` maps
``(batch, seq, c)`` to ``(batch, seq, 64)`` with a ``kernel (c, 64)`` and a ``bias (64,)``.
Weight and bias shapes are derived from the equation exactly as Keras derives them
(including ``...`` on the left or on the right of the input spec), so weights move to
and from Keras as plain arrays.
"""

from __future__ import annotations

import re

from lamina import activations, constraints, initializers, ops, regularizers
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.lora import LoRAMixin


def analyze_einsum(equation, bias_axes, input_shape, output_shape):
    """Shapes implied by an EinsumDense equation.

    Args:
        equation: ``"X,Y->Z"``, ``"...X,Y->...Z"`` or ``"X...,Y->Z..."``.
        bias_axes: letters of ``Z`` that get a bias, or None.
        input_shape: the full input shape (batch first).
        output_shape: the output shape without the batch (and elided) axes; ints or None.

    Returns:
        ``(kernel_shape, bias_shape or None, full_output_shape, input_axes, output_axes)``
        where the axes index the kernel's input (contracted) and output dimensions.

    Raises:
        ValueError: for equations of another form, inconsistent shapes, or letters
            without a source.
    """
    replaced = equation.replace("...", "0")
    forms = (("([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", False),
             ("0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", True),
             ("([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", False))
    for pattern, left_elided in forms:
        match = re.match(pattern, replaced)
        if match:
            return _analyze(*match.groups(), bias_axes, tuple(input_shape), output_shape,
                            left_elided)
    raise ValueError(
        f"Invalid einsum equation '{equation}'. Equations must be in the form [X],[Y]->[Z], "
        "...[X],[Y]->...[Z], or [X]...,[Y]->[Z]....")


def _analyze(input_spec, weight_spec, output_spec, bias_axes, input_shape, output_shape,
             left_elided):
    elided = len(input_shape) - len(input_spec)
    output_shape = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    output_shape.insert(0, input_shape[0])
    if elided > 0 and left_elided:
        for i in range(1, elided):
            # Keras inserts each elided axis at position 1 (reversing them when > 1).
            output_shape.insert(1, input_shape[i])
    elif elided > 0:
        output_shape.extend(input_shape[len(input_shape) - elided:])
    if left_elided:
        input_map = {d: i + elided - len(input_shape) for i, d in enumerate(input_spec)}
        output_map = {d: i + elided for i, d in enumerate(output_spec)}
    else:
        input_map = {d: i for i, d in enumerate(input_spec)}
        output_map = {d: i for i, d in enumerate(output_spec)}
    for d in input_spec:
        if d in output_map:
            out_dim, in_dim = output_shape[output_map[d]], input_shape[input_map[d]]
            if out_dim is not None and out_dim != in_dim:
                raise ValueError(
                    f"Input shape and output shape do not match at shared dimension '{d}'. "
                    f"Input shape is {in_dim}, and output shape is {out_dim}.")
    for d in output_spec:
        if d not in input_spec and d not in weight_spec:
            raise ValueError(
                f"Dimension '{d}' was specified in the output '{output_spec}' but has no "
                f"corresponding dim in the input spec '{input_spec}' or weight spec "
                f"'{weight_spec}'")
    kernel_shape, input_axes, output_axes = [], [], []
    for i, d in enumerate(weight_spec):
        if d in output_map:
            kernel_shape.append(output_shape[output_map[d]])
            output_axes.append(i)
        elif d in input_map:
            kernel_shape.append(input_shape[input_map[d]])
            input_axes.append(i)
        else:
            raise ValueError(
                f"Weight dimension '{d}' did not have a match in either the input spec "
                f"'{input_spec}' or the output spec '{output_spec}'. For this layer, the "
                "weight must be fully specified.")
    bias_shape = None
    if bias_axes is not None:
        offset = elided if left_elided else 0
        sizes = {d: output_shape[i + offset] for i, d in enumerate(output_spec)}
        for d in bias_axes:
            if d not in output_spec:
                raise ValueError(f"Bias dimension '{d}' was requested, but is not part of the "
                                 f"output spec '{output_spec}'")
        first = min(output_spec.find(d) for d in bias_axes)
        bias_shape = [sizes[d] if d in bias_axes else 1 for d in output_spec[first:]]
        if not left_elided:
            bias_shape.extend([1] * max(elided, 0))
    return kernel_shape, bias_shape, output_shape, input_axes, output_axes


class EinsumDense(LoRAMixin, Layer):
    """A dense layer computing ``activation(einsum(equation, inputs, kernel) + bias)``.

    Args:
        equation: einsum equation ``"<input>,<kernel>-><output>"``; the input's first
            letter is the batch axis. ``...`` may stand first in input and output, or
            last (after at least two letters).
        output_shape: the output shape without the batch axis (an int for one axis);
            ``None`` entries are taken from the input.
        activation: activation name or callable; linear by default.
        bias_axes: letters of the output that get a bias (e.g. ``"d"``), or None.
        kernel_initializer, bias_initializer: initializers; a variance-scaling kernel
            initializer without fan axes gets the kernel's input/output axes, as in Keras.
        kernel_regularizer, bias_regularizer: optional regularizers.
        kernel_constraint, bias_constraint: optional constraints.
        lora_rank, lora_alpha: optional LoRA of the kernel (see ``Dense``).
        gptq_unpacked_column_size, quantization_config: must be None (no quantization).

    Input shape:
        As the input spec of ``equation`` (plus the elided axes).

    Output shape:
        ``(batch, *output_shape)`` with the elided axes where ``...`` stands.

    Example:
        >>> import numpy as np, lamina as keras
        >>> layer = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 8),
        ...                                  bias_axes="de")
        >>> layer(np.ones((3, 5, 4))).shape, layer.kernel.shape, layer.bias.shape
        ((3, 5, 2, 8), (4, 2, 8), (2, 8))
    """

    def __init__(self, equation, output_shape, activation=None, bias_axes=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, lora_alpha=None,
                 gptq_unpacked_column_size=None, quantization_config=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(equation, str) or "->" not in equation or "," not in equation:
            raise ValueError("Argument `equation` must be an einsum string '<input>,<kernel>"
                             f"-><output>'. Received: equation={equation!r}")
        if gptq_unpacked_column_size is not None:
            raise ValueError("Lamina does not quantize layers: `gptq_unpacked_column_size` "
                             "must be None. Received: "
                             f"gptq_unpacked_column_size={gptq_unpacked_column_size!r}")
        self._init_lora(lora_rank, lora_alpha, quantization_config)
        self.equation = equation
        self.partial_output_shape = ((output_shape,) if isinstance(output_shape, int)
                                     else tuple(output_shape))
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        kernel_shape, bias_shape, _, input_axes, output_axes = analyze_einsum(
            self.equation, self.bias_axes, input_shape, self.partial_output_shape)
        if any(d is None for d in [*kernel_shape, *(bias_shape or [])]):
            raise ValueError(f"EinsumDense '{self.name}' cannot build a kernel of shape "
                             f"{tuple(kernel_shape)} (bias {bias_shape}) from input_shape="
                             f"{tuple(input_shape)}: give the sizes in `output_shape`.")
        init = self.kernel_initializer
        if isinstance(init, initializers.VarianceScaling) and (
                init.input_axes is None or init.output_axes is None):
            # Fans of an N-d einsum kernel come from its contracted and output axes.
            config = {**init.get_config(), "input_axes": input_axes,
                      "output_axes": output_axes}
            init = type(init).from_config(config)
        self.kernel = self.add_weight(
            name="kernel", shape=tuple(kernel_shape), initializer=init,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if bias_shape is not None:
            self.bias = self.add_weight(
                name="bias", shape=tuple(bias_shape), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.input_spec = InputSpec(ndim=len(input_shape))
        self.built = True
        if self.lora_rank and not self.lora_enabled:
            self.enable_lora(self.lora_rank, lora_alpha=self.lora_alpha)

    def call(self, inputs):
        x = ops.einsum(self.equation, inputs, self._lora_merged())
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return tuple(analyze_einsum(self.equation, self.bias_axes, input_shape,
                                    self.partial_output_shape)[2])

    def get_config(self):
        return {
            **super().get_config(),
            "output_shape": self.partial_output_shape,
            "equation": self.equation,
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            **self._lora_config(),
        }
