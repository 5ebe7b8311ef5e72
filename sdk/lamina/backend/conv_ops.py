"""Convolution and pooling ops with Keras's signatures, on the fused primitives of ``conv``.

Keras's ``ops.conv``, ``ops.conv_transpose``, ``ops.depthwise_conv``,
``ops.separable_conv``, ``ops.max_pool`` and ``ops.average_pool``, plus two
Lamina-only arguments on the convolutions: ``bias`` and ``activation="relu"``, fused
into the convolution's output so that they cost no extra pass or graph node.
``channels_first`` inputs are transposed to channels_last at the boundary (the
primitives work in channels_last). Pooling runs :mod:`lamina.backend.pooling`, except
that a max-pool of the output of a convolution with fused ReLU is computed by the
fused primitive of :mod:`lamina.backend.conv_pool` (one graph rule, in :func:`max_pool`).

Example:
    >>> import numpy as np
    >>> from lamina.backend import conv_ops
    >>> x = np.ones((1, 5, 5, 2), "float32")
    >>> conv_ops.conv(x, np.ones((3, 3, 2, 4), "float32"), padding="same").shape
    (1, 5, 5, 4)
"""

from __future__ import annotations

from lamina.backend import conv as _c
from lamina.backend import conv_pool as _cp
from lamina.backend import pooling as _pl
from lamina.backend import primitives as _p
from lamina.backend.tensor import Tensor

__all__ = ["average_pool", "conv", "conv_transpose", "depthwise_conv", "max_pool",
           "separable_conv"]


def _tuple(value, n):
    return (int(value),) * n if isinstance(value, int) else tuple(int(v) for v in value)


def _to_last(x, data_format):
    if data_format == "channels_first":
        return _p.Transpose.apply(x, axes=(0, *range(2, _ndim(x)), 1))
    return x


def _to_first(y, data_format):
    if data_format == "channels_first":
        return _p.Transpose.apply(y, axes=(0, y.ndim - 1, *range(1, y.ndim - 1)))
    return y


def _ndim(x):
    return x.ndim if isinstance(x, Tensor) else len(x.shape)


def _spatial(x):
    return tuple((x.data if isinstance(x, Tensor) else x).shape[1:-1])


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1,
         bias=None, activation=None):
    """N-d convolution (cross-correlation), Keras's ``ops.conv``.

    The number of groups is ``in_channels // kernel.shape[-2]``, as in Keras.

    Args:
        inputs: ``(batch, *spatial, in)`` (or channels_first).
        kernel: ``(*kernel_size, in // groups, filters)``.
        strides, dilation_rate: int or one int per spatial axis.
        padding: ``"valid"``, ``"same"`` or ``"causal"`` (TF's split: extra at the end).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        bias: optional ``(filters,)`` added to the output.
        activation: ``None`` or ``"relu"``, fused.

    Returns:
        The output Tensor.
    """
    x = _to_last(inputs, data_format)
    n = _ndim(x) - 2
    strides, dilation = _tuple(strides, n), _tuple(dilation_rate, n)
    ksize, cg = kernel.shape[:-2], kernel.shape[-2]
    in_channels = (x.data if isinstance(x, Tensor) else x).shape[-1]
    if in_channels % cg:
        raise ValueError(
            f"The input's channels ({in_channels}) must be a multiple of the kernel's "
            f"input channels ({cg}). Received: kernel.shape={tuple(kernel.shape)}")
    pads = [_c.conv_padding(length, k, s, padding, d)
            for length, k, s, d in zip(_spatial(x), ksize, strides, dilation)]
    y = _c.Conv.apply(x, kernel, bias, strides=strides, dilation=dilation, pads=pads,
                      groups=in_channels // cg, relu=activation == "relu")
    return _to_first(y, data_format)


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None,
                   data_format=None, dilation_rate=1, bias=None, activation=None):
    """Transposed convolution, Keras's ``ops.conv_transpose``.

    Args:
        inputs: ``(batch, *spatial, in)`` (or channels_first).
        kernel: ``(*kernel_size, filters, in)``.
        strides, dilation_rate: int or one int per spatial axis.
        padding: ``"valid"`` or ``"same"``.
        output_padding: None, or an int or one int per axis (< the stride) that
            lengthens the output.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        bias, activation: as in :func:`conv`.

    Returns:
        The output Tensor.
    """
    x = _to_last(inputs, data_format)
    n = _ndim(x) - 2
    strides, dilation = _tuple(strides, n), _tuple(dilation_rate, n)
    extra = (None,) * n if output_padding is None else _tuple(output_padding, n)
    ksize = kernel.shape[:-2]
    lengths = [_c.deconv_output_length(length, k, s, padding, op, d)
               for length, k, s, op, d in zip(_spatial(x), ksize, strides, extra, dilation)]
    before = [_c.deconv_padding_before(k, s, padding, op, d)
              for k, s, op, d in zip(ksize, strides, extra, dilation)]
    y = _c.ConvTranspose.apply(x, kernel, bias, strides=strides, dilation=dilation,
                               pads_before=before, out_lengths=lengths,
                               relu=activation == "relu")
    return _to_first(y, data_format)


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1, bias=None, activation=None):
    """Depthwise convolution, Keras's ``ops.depthwise_conv``.

    Args:
        inputs: ``(batch, *spatial, in)`` (or channels_first).
        kernel: ``(*kernel_size, in, depth_multiplier)``; output channel
            ``c * depth_multiplier + m`` comes from input channel ``c``.
        strides, padding, data_format, dilation_rate, bias, activation: as in :func:`conv`.

    Returns:
        The output Tensor with ``in * depth_multiplier`` channels.
    """
    *k, cin, mult = kernel.shape
    flat = _p.Reshape.apply(kernel, (*k, 1, cin * mult))
    return conv(inputs, flat, strides, padding, data_format, dilation_rate, bias, activation)


def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid",
                   data_format=None, dilation_rate=1, bias=None, activation=None):
    """Depthwise convolution then a 1x1 convolution, Keras's ``ops.separable_conv``.

    Args:
        inputs: ``(batch, *spatial, in)`` (or channels_first).
        depthwise_kernel: ``(*kernel_size, in, depth_multiplier)``.
        pointwise_kernel: ``(1, ..., 1, in * depth_multiplier, filters)``.
        strides, padding, data_format, dilation_rate, bias, activation: as in :func:`conv`.

    Returns:
        The output Tensor.
    """
    x = _to_last(inputs, data_format)
    depthwise = depthwise_conv(x, depthwise_kernel, strides, padding, None, dilation_rate)
    y = conv(depthwise, pointwise_kernel, bias=bias, activation=activation)
    return _to_first(y, data_format)


def _pool_geometry(x, pool_size, strides, padding):
    n = _ndim(x) - 2
    pool = _tuple(pool_size, n)
    strides = pool if strides is None else _tuple(strides, n)
    pads = [_c.conv_padding(length, k, s, padding)
            for length, k, s in zip(_spatial(x), pool, strides)]
    return {"pool": pool, "strides": strides, "pads": pads}


def _pool(fn, inputs, pool_size, strides, padding, data_format):
    x = _to_last(inputs, data_format)
    return _to_first(fn.apply(x, **_pool_geometry(x, pool_size, strides, padding)),
                     data_format)


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Max pooling, Keras's ``ops.max_pool``; ``strides`` defaults to ``pool_size``.

    When ``inputs`` is the recorded output of a convolution with fused ReLU (as a
    ``Conv2D(..., activation="relu")`` layer makes), the pool is the fused
    :class:`~lamina.backend.conv_pool.ConvReluMaxPool` primitive instead: the same
    values, and a backward without a full-size ReLU mask pass.

    Returns:
        The output Tensor.
    """
    producer = getattr(inputs, "_ctx", None)
    if data_format != "channels_first" and isinstance(producer, _c.Conv) and producer.relu:
        x, kernel, bias = producer.parents
        return _cp.ConvReluMaxPool.apply(x, kernel, bias, inputs, geometry=producer.geometry,
                                         **_pool_geometry(inputs, pool_size, strides, padding))
    return _pool(_pl.MaxPool, inputs, pool_size, strides, padding, data_format)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Average pooling, Keras's ``ops.average_pool``; padded cells are not counted.

    Returns:
        The output Tensor.
    """
    return _pool(_pl.AvgPool, inputs, pool_size, strides, padding, data_format)
