"""Convolution layers with Keras's names, arguments, defaults and weight layouts.

Conv1D/2D/3D, Conv1D/2D/3DTranspose (and Keras's Convolution* aliases), DepthwiseConv1D/2D and
SeparableConv1D/2D. The machinery lives in :mod:`lamina.layers.base_conv`; each class
here fixes the rank and spells out Keras's signature, so positional arguments work.
"""

from __future__ import annotations

from lamina.layers.base_conv import (
    BaseConv,
    BaseConvTranspose,
    BaseDepthwiseConv,
    BaseSeparableConv,
)

_CONV_ARGS = """
    Args:
        filters: positive int, the number of output channels.
        kernel_size: int or tuple of ints, the window size.
        strides: int or tuple of ints (``> 1`` excludes ``dilation_rate > 1``).
        padding: ``"valid"`` or ``"same"`` (TF's split: the odd extra row at the end){causal}.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of ints.
        groups: positive int dividing both the input channels and ``filters``; each
            group of channels is convolved with its own ``filters // groups`` filters.
        activation: activation name or callable; ``"relu"`` is fused into the op.
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: initializers (``glorot_uniform``,
            ``zeros``).
        kernel_regularizer, bias_regularizer, activity_regularizer: optional regularizers.
        kernel_constraint, bias_constraint: optional constraints.
"""


class Conv1D(BaseConv):
    __doc__ = """1D convolution over steps; ``kernel (k, in // groups, filters)``, ``bias``.
""" + _CONV_ARGS.format(causal=', or ``"causal"`` (left padding only)') + """
    Input shape:
        ``(batch_size, steps, channels)`` (channels_first: ``(batch_size, channels, steps)``).

    Output shape:
        ``(batch_size, new_steps, filters)`` (channels_first: ``(batch_size, filters,
        new_steps)``).

    Example:
        >>> import numpy as np, lamina as keras
        >>> keras.layers.Conv1D(4, 3, padding="causal")(np.ones((2, 10, 3))).shape
        (2, 10, 4)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(
            1, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, groups=groups, activation=activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, **kwargs)


class Conv2D(BaseConv):
    __doc__ = """2D convolution; ``kernel (kh, kw, in // groups, filters)``, ``bias (filters,)``.
""" + _CONV_ARGS.format(causal="") + """
    Input shape:
        ``(batch_size, rows, cols, channels)`` (channels_first: ``(batch_size, channels,
        rows, cols)``).

    Output shape:
        ``(batch_size, new_rows, new_cols, filters)`` (channels_first: ``(batch_size,
        filters, new_rows, new_cols)``).

    Example:
        >>> import numpy as np, lamina as keras
        >>> layer = keras.layers.Conv2D(32, 3, activation="relu")
        >>> layer(np.ones((2, 28, 28, 1))).shape, layer.count_params()
        ((2, 26, 26, 32), 320)
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(
            2, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, groups=groups, activation=activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, **kwargs)


class Conv3D(BaseConv):
    __doc__ = """3D convolution; ``kernel (kd, kh, kw, in // groups, filters)``, ``bias``.
""" + _CONV_ARGS.format(causal="") + """
    Input shape:
        ``(batch_size, d1, d2, d3, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, new_d1, new_d2, new_d3, filters)`` (or channels_first).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1, 1), groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(
            3, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, groups=groups, activation=activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, **kwargs)


_TRANSPOSE_ARGS = """
    Args:
        filters: positive int, the number of output channels.
        kernel_size: int or tuple of ints.
        strides: int or tuple of ints.
        padding: ``"valid"`` (output ``in * s + max(k - s, 0)``) or ``"same"``
            (output ``in * s``).
        output_padding: None, or int or tuple of ints below the strides: the output
            becomes ``(in - 1) * s + k - 2 * pad + output_padding``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of ints.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint: as
            in Conv2D.
"""


class Conv1DTranspose(BaseConvTranspose):
    __doc__ = """1D transposed convolution; ``kernel (k, filters, in)``, ``bias (filters,)``.
""" + _TRANSPOSE_ARGS + """
    Input shape:
        ``(batch_size, steps, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, new_steps, filters)`` (or channels_first).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(
            1, filters, kernel_size, strides=strides, padding=padding,
            output_padding=output_padding, data_format=data_format,
            dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint, **kwargs)


class Conv2DTranspose(BaseConvTranspose):
    __doc__ = """2D transposed convolution; ``kernel (kh, kw, filters, in)``, ``bias (filters,)``.
""" + _TRANSPOSE_ARGS + """
    Input shape:
        ``(batch_size, rows, cols, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, new_rows, new_cols, filters)`` (or channels_first).

    Example:
        >>> import numpy as np, lamina as keras
        >>> keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same")(
        ...     np.ones((1, 7, 7, 4))).shape
        (1, 14, 14, 8)
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(
            2, filters, kernel_size, strides=strides, padding=padding,
            output_padding=output_padding, data_format=data_format,
            dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint, **kwargs)


class Conv3DTranspose(BaseConvTranspose):
    __doc__ = """3D transposed convolution; ``kernel (kd, kh, kw, filters, in)``, ``bias``.
""" + _TRANSPOSE_ARGS + """
    Input shape:
        ``(batch_size, d1, d2, d3, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, new_d1, new_d2, new_d3, filters)`` (or channels_first).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid",
                 data_format=None, output_padding=None, dilation_rate=(1, 1, 1),
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(
            3, filters, kernel_size, strides=strides, padding=padding,
            output_padding=output_padding, data_format=data_format,
            dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint, **kwargs)


_DEPTHWISE_ARGS = """
    Args:
        kernel_size: int or tuple of ints.
        strides: int or tuple of ints.
        padding: ``"valid"`` or ``"same"``.
        depth_multiplier: positive int, output channels per input channel.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of ints.
        activation: activation name or callable (``"relu"`` is fused).
        use_bias: whether to add a bias of ``in * depth_multiplier``.
        depthwise_initializer, bias_initializer: initializers.
        depthwise_regularizer, bias_regularizer, activity_regularizer: regularizers.
        depthwise_constraint, bias_constraint: constraints.
"""


class DepthwiseConv1D(BaseDepthwiseConv):
    __doc__ = """1D depthwise convolution; ``depthwise_kernel (k, in, depth_multiplier)``.
""" + _DEPTHWISE_ARGS + """
    Input shape:
        ``(batch_size, steps, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, new_steps, channels * depth_multiplier)`` (or channels_first).
    """

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(
            1, depth_multiplier, kernel_size, strides=strides, padding=padding,
            data_format=data_format, dilation_rate=dilation_rate, activation=activation,
            use_bias=use_bias, depthwise_initializer=depthwise_initializer,
            bias_initializer=bias_initializer, depthwise_regularizer=depthwise_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            depthwise_constraint=depthwise_constraint, bias_constraint=bias_constraint,
            **kwargs)


class DepthwiseConv2D(BaseDepthwiseConv):
    __doc__ = """2D depthwise convolution; ``depthwise_kernel (kh, kw, in, depth_multiplier)``.

    Output channel ``c * depth_multiplier + m`` is input channel ``c`` convolved with
    ``depthwise_kernel[..., c, m]``.
""" + _DEPTHWISE_ARGS + """
    Input shape:
        ``(batch_size, rows, cols, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, new_rows, new_cols, channels * depth_multiplier)`` (or
        channels_first).
    """

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(
            2, depth_multiplier, kernel_size, strides=strides, padding=padding,
            data_format=data_format, dilation_rate=dilation_rate, activation=activation,
            use_bias=use_bias, depthwise_initializer=depthwise_initializer,
            bias_initializer=bias_initializer, depthwise_regularizer=depthwise_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            depthwise_constraint=depthwise_constraint, bias_constraint=bias_constraint,
            **kwargs)


_SEPARABLE_ARGS = """
    Args:
        filters: positive int, the number of output channels.
        kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier: as
            in DepthwiseConv2D (they apply to the depthwise step).
        activation: applied after the pointwise step (``"relu"`` is fused).
        use_bias: whether to add a bias of ``filters``.
        depthwise_initializer, pointwise_initializer, bias_initializer: initializers.
        depthwise_regularizer, pointwise_regularizer, bias_regularizer,
        activity_regularizer: regularizers.
        depthwise_constraint, pointwise_constraint, bias_constraint: constraints.
"""


class SeparableConv1D(BaseSeparableConv):
    __doc__ = """1D separable convolution: depthwise, then a pointwise (1) convolution.
""" + _SEPARABLE_ARGS + """
    Input shape:
        ``(batch_size, steps, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, new_steps, filters)`` (or channels_first).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(
            1, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, depth_multiplier=depth_multiplier,
            activation=activation, use_bias=use_bias,
            depthwise_initializer=depthwise_initializer,
            pointwise_initializer=pointwise_initializer, bias_initializer=bias_initializer,
            depthwise_regularizer=depthwise_regularizer,
            pointwise_regularizer=pointwise_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            depthwise_constraint=depthwise_constraint,
            pointwise_constraint=pointwise_constraint, bias_constraint=bias_constraint,
            **kwargs)


class SeparableConv2D(BaseSeparableConv):
    __doc__ = """2D separable convolution: depthwise, then a pointwise (1x1) convolution.

    Weights: ``depthwise_kernel (kh, kw, in, depth_multiplier)``, ``pointwise_kernel
    (1, 1, in * depth_multiplier, filters)``, ``bias (filters,)``.
""" + _SEPARABLE_ARGS + """
    Input shape:
        ``(batch_size, rows, cols, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, new_rows, new_cols, filters)`` (or channels_first).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(
            2, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, depth_multiplier=depth_multiplier,
            activation=activation, use_bias=use_bias,
            depthwise_initializer=depthwise_initializer,
            pointwise_initializer=pointwise_initializer, bias_initializer=bias_initializer,
            depthwise_regularizer=depthwise_regularizer,
            pointwise_regularizer=pointwise_regularizer, bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            depthwise_constraint=depthwise_constraint,
            pointwise_constraint=pointwise_constraint, bias_constraint=bias_constraint,
            **kwargs)


# Keras's long names: the same classes (their configs name the short class).
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution1DTranspose, Convolution2DTranspose = Conv1DTranspose, Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
