"""Bases of the convolution layers: argument checks, weights, shapes and config.

``BaseConv`` (Conv1D/2D/3D), ``BaseConvTranspose``, ``BaseDepthwiseConv`` and
``BaseSeparableConv`` follow Keras's ``layers/convolutional/base_*.py``: the same
arguments, defaults, weight names, shapes and order. Each computes with one fused
op of :mod:`lamina.backend.conv_ops` (bias and ReLU fused into the convolution).
"""

from __future__ import annotations

from lamina import activations, constraints, initializers, regularizers
from lamina.backend import conv_ops
from lamina.backend.conv import conv_output_length, deconv_output_length
from lamina.layers.layer import Layer


def standardize_tuple(value, n, name, allow_zero=False):
    """``value`` as a tuple of ``n`` ints (an int is repeated), with Keras's errors."""
    message = f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value}"
    values = (value,) * n if isinstance(value, int) else value
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(message) from None
    if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool)
                                    for v in values):
        raise ValueError(message)
    bad = {v for v in values if v < 0 or (v == 0 and not allow_zero)}
    if bad:
        raise ValueError(f"{message}, including values {bad} that do not satisfy "
                         f"`value {'>= 0' if allow_zero else '> 0'}`")
    return values


def standardize_padding(value, allow_causal=False):
    """Lower-cased ``"valid"``/``"same"`` (and ``"causal"`` where allowed)."""
    allowed = {"valid", "same"} | ({"causal"} if allow_causal else set())
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise ValueError(f"The `padding` argument must be one of {sorted(allowed)}. "
                         f"Received: padding={value!r}")
    return padding


def standardize_data_format(value):
    """``"channels_last"`` (the default for None) or ``"channels_first"``."""
    data_format = "channels_last" if value is None else str(value).lower()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', "
                         f"'channels_last'}}. Received: data_format={value!r}")
    return data_format


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Invalid value for argument `{name}`. Expected a strictly positive "
                         f"value. Received {name}={value!r}.")
    return value


class _ConvLayer(Layer):
    """What every convolution layer shares: geometry arguments, activation, bias."""

    def __init__(self, rank, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, bias_initializer="zeros",
                 bias_regularizer=None, activity_regularizer=None, bias_constraint=None,
                 **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.kernel_size = standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = standardize_tuple(strides, rank, "strides")
        self.dilation_rate = standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = standardize_padding(padding, allow_causal=rank == 1)
        self.data_format = standardize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self._fused = "relu" if activations.serialize(self.activation) == "relu" else None

    def _channels(self, input_shape, expected_ndim=None):
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"ndim={self.rank + 2}, found ndim={len(input_shape)}. Full shape received: "
                f"{tuple(input_shape)}")
        channels = input_shape[-1 if self.data_format == "channels_last" else 1]
        if channels is None:
            raise ValueError(f"The channel dimension of the inputs to '{self.name}' must be "
                             f"known. Received: input_shape={tuple(input_shape)}")
        return channels

    def _spatial(self, input_shape):
        return (input_shape[1:-1] if self.data_format == "channels_last"
                else input_shape[2:])

    def _with_channels(self, input_shape, spatial, channels):
        if self.data_format == "channels_last":
            return (input_shape[0], *spatial, channels)
        return (input_shape[0], channels, *spatial)

    def _conv_spatial(self, input_shape):
        spatial = tuple(conv_output_length(n, k, s, self.padding, d) for n, k, s, d in zip(
            self._spatial(input_shape), self.kernel_size, self.strides, self.dilation_rate))
        if any(n is not None and n <= 0 for n in spatial):
            raise ValueError(
                "Computed output size would be negative. Received `inputs shape="
                f"{tuple(input_shape)}`, `kernel shape={self.kernel_size}`, "
                f"`dilation_rate={self.dilation_rate}`.")
        return spatial

    def _add_bias(self, size):
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(size,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def _finish(self, outputs):
        return outputs if self._fused else self.activation(outputs)

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }


class _KernelArgs(_ConvLayer):
    """A convolution layer with one ``kernel`` weight and ``filters`` outputs."""

    def __init__(self, rank, filters, kernel_size, kernel_initializer="glorot_uniform",
                 kernel_regularizer=None, kernel_constraint=None, **kwargs):
        super().__init__(rank, kernel_size, **kwargs)
        self.filters = _positive_int(filters, "filters")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def _add_kernel(self, shape):
        self.kernel = self.add_weight(
            name="kernel", shape=shape, initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
        }


class BaseConv(_KernelArgs):
    """N-d convolution: ``kernel (*kernel_size, in // groups, filters)``, ``bias (filters,)``."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, **kwargs):
        super().__init__(rank, filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)
        self.groups = _positive_int(groups, "groups")
        if self.filters % self.groups:
            raise ValueError(
                "The number of filters must be evenly divisible by the number of groups. "
                f"Received: groups={self.groups}, filters={self.filters}.")

    def build(self, input_shape):
        channels = self._channels(input_shape)
        if channels % self.groups:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of "
                f"groups. Received groups={self.groups}, but the input has {channels} "
                f"channels (full input shape is {tuple(input_shape)}).")
        self.compute_output_shape(input_shape)
        self._add_kernel((*self.kernel_size, channels // self.groups, self.filters))
        self._add_bias(self.filters)
        self.built = True

    def call(self, inputs):
        return self._finish(conv_ops.conv(
            inputs, self.kernel, self.strides, self.padding, self.data_format,
            self.dilation_rate, bias=self.bias, activation=self._fused))

    def compute_output_shape(self, input_shape):
        return self._with_channels(input_shape, self._conv_spatial(input_shape), self.filters)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


class BaseConvTranspose(_KernelArgs):
    """Transposed convolution: ``kernel (*kernel_size, filters, in)``, ``bias (filters,)``."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid",
                 output_padding=None, data_format=None, dilation_rate=1, **kwargs):
        super().__init__(rank, filters, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = standardize_tuple(output_padding, rank, "output_padding",
                                                    allow_zero=True)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(
                    f"`output_padding` must be < `strides`. Received: output_padding="
                    f"{self.output_padding}, strides={self.strides}")

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self._add_kernel((*self.kernel_size, self.filters, channels))
        self._add_bias(self.filters)
        self.built = True

    def call(self, inputs):
        return self._finish(conv_ops.conv_transpose(
            inputs, self.kernel, self.strides, self.padding, self.output_padding,
            self.data_format, self.dilation_rate, bias=self.bias, activation=self._fused))

    def compute_output_shape(self, input_shape):
        extra = self.output_padding or (None,) * self.rank
        spatial = tuple(deconv_output_length(n, k, s, self.padding, p, d) for n, k, s, p, d in zip(
            self._spatial(input_shape), self.kernel_size, self.strides, extra,
            self.dilation_rate))
        return self._with_channels(input_shape, spatial, self.filters)

    def get_config(self):
        return {**super().get_config(), "output_padding": self.output_padding}


class BaseDepthwiseConv(_ConvLayer):
    """Depthwise convolution: ``depthwise_kernel (*kernel_size, in, depth_multiplier)``,
    ``bias (in * depth_multiplier,)``."""

    def __init__(self, rank, depth_multiplier=1, kernel_size=None, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, depthwise_initializer="glorot_uniform",
                 depthwise_regularizer=None, depthwise_constraint=None, **kwargs):
        super().__init__(rank, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier")
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def _add_depthwise(self, channels):
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel",
            shape=(*self.kernel_size, channels, self.depth_multiplier),
            initializer=self.depthwise_initializer, regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint)

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self.compute_output_shape(input_shape)
        self._add_depthwise(channels)
        self._add_bias(channels * self.depth_multiplier)
        self.built = True

    def call(self, inputs):
        return self._finish(conv_ops.depthwise_conv(
            inputs, self.depthwise_kernel, self.strides, self.padding, self.data_format,
            self.dilation_rate, bias=self.bias, activation=self._fused))

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1 if self.data_format == "channels_last" else 1]
        out = None if channels is None else channels * self.depth_multiplier
        return self._with_channels(input_shape, self._conv_spatial(input_shape), out)

    def get_config(self):
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "depthwise_constraint": constraints.serialize(self.depthwise_constraint),
        }


class BaseSeparableConv(BaseDepthwiseConv):
    """Depthwise then 1x1 convolution: ``depthwise_kernel (*k, in, depth_multiplier)``,
    ``pointwise_kernel (1, ..., 1, in * depth_multiplier, filters)``, ``bias (filters,)``."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, pointwise_initializer="glorot_uniform",
                 pointwise_regularizer=None, pointwise_constraint=None, **kwargs):
        super().__init__(rank, depth_multiplier, kernel_size, strides=strides, padding=padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)
        self.filters = _positive_int(filters, "filters")
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape):
        channels = self._channels(input_shape)
        self.compute_output_shape(input_shape)
        self._add_depthwise(channels)
        self.pointwise_kernel = self.add_weight(
            name="pointwise_kernel",
            shape=(1,) * self.rank + (channels * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint)
        self._add_bias(self.filters)
        self.built = True

    def call(self, inputs):
        return self._finish(conv_ops.separable_conv(
            inputs, self.depthwise_kernel, self.pointwise_kernel, self.strides, self.padding,
            self.data_format, self.dilation_rate, bias=self.bias, activation=self._fused))

    def compute_output_shape(self, input_shape):
        return self._with_channels(input_shape, self._conv_spatial(input_shape), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
            "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
        }
