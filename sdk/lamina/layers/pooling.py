"""Pooling layers with Keras's names and arguments, plus Keras's aliases.

MaxPooling1D/2D/3D and AveragePooling1D/2D/3D run the fused pooling primitives of
:mod:`lamina.backend.pooling` (one whole-array pass per window offset; a reshape of the
input when the stride equals the pool size). A max-pooling layer right after a
convolution layer with ``activation="relu"`` runs the fused convolution + ReLU +
max-pool primitive of :mod:`lamina.backend.conv_pool` instead (chosen by
``conv_ops.max_pool``; same values, a cheaper backward). Global poolings are a mean or
max over the spatial axes.
"""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend import conv_ops
from lamina.backend.conv import conv_output_length
from lamina.layers.base_conv import standardize_data_format, standardize_padding, standardize_tuple
from lamina.layers.layer import Layer


class BasePooling(Layer):
    """Window pooling over ``rank`` spatial axes; ``strides`` defaults to ``pool_size``."""

    _op = None

    def __init__(self, rank, pool_size, strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.rank = rank
        self.pool_size = standardize_tuple(pool_size, rank, "pool_size")
        self.strides = self.pool_size if strides is None else standardize_tuple(
            strides, rank, "strides")
        self.padding = standardize_padding(padding)
        self.data_format = standardize_data_format(data_format)
        self.built = True

    def call(self, inputs):
        return type(self)._op(inputs, self.pool_size, self.strides, self.padding,
                              self.data_format)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"ndim={self.rank + 2}, found ndim={len(input_shape)}. Full shape received: "
                f"{tuple(input_shape)}")
        last = self.data_format == "channels_last"
        spatial = input_shape[1:-1] if last else input_shape[2:]
        out = tuple(conv_output_length(n, k, s, self.padding)
                    for n, k, s in zip(spatial, self.pool_size, self.strides))
        if any(n is not None and n <= 0 for n in out):
            raise ValueError(
                "Computed output size would be negative. Received: "
                f"`inputs.shape={tuple(input_shape)}` and `pool_size={self.pool_size}`.")
        channels = input_shape[-1] if last else input_shape[1]
        return (input_shape[0], *out, channels) if last else (input_shape[0], channels, *out)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format}


_POOL_DOC = """{what} pooling over windows of ``pool_size`` moved by ``strides``.

    Args:
        pool_size: int or tuple of {rank} ints, the window size.
        strides: int or tuple of {rank} ints; ``pool_size`` by default.
        padding: ``"valid"`` or ``"same"`` (TF's split; padded cells never count).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Input shape:
        ``(batch_size, {spatial}, channels)`` (channels_first: ``(batch_size, channels,
        {spatial})``).

    Output shape:
        ``(batch_size, {pooled}, channels)`` (or channels_first), each pooled length
        ``(n - pool) // stride + 1`` (valid) or ``ceil(n / stride)`` (same).
"""


def _pool_doc(what, rank):
    spatial = ("steps", "rows, cols", "d1, d2, d3")[rank - 1]
    pooled = ", ".join("pooled_" + s for s in spatial.split(", "))
    return _POOL_DOC.format(what=what, rank=rank, spatial=spatial, pooled=pooled)


class MaxPooling1D(BasePooling):
    __doc__ = _pool_doc("Max", 1)
    _op = staticmethod(conv_ops.max_pool)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(1, pool_size, strides, padding, data_format, name=name,
                         **kwargs)


class MaxPooling2D(BasePooling):
    __doc__ = _pool_doc("Max", 2)
    _op = staticmethod(conv_ops.max_pool)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(2, pool_size, strides, padding, data_format, name=name,
                         **kwargs)


class MaxPooling3D(BasePooling):
    __doc__ = _pool_doc("Max", 3)
    _op = staticmethod(conv_ops.max_pool)

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(3, pool_size, strides, padding, data_format, name=name,
                         **kwargs)


class AveragePooling1D(BasePooling):
    __doc__ = _pool_doc("Average", 1)
    _op = staticmethod(conv_ops.average_pool)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(1, pool_size, strides, padding, data_format, name=name,
                         **kwargs)


class AveragePooling2D(BasePooling):
    __doc__ = _pool_doc("Average", 2)
    _op = staticmethod(conv_ops.average_pool)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(2, pool_size, strides, padding, data_format, name=name,
                         **kwargs)


class AveragePooling3D(BasePooling):
    __doc__ = _pool_doc("Average", 3)
    _op = staticmethod(conv_ops.average_pool)

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(3, pool_size, strides, padding, data_format, name=name,
                         **kwargs)


class BaseGlobalPooling(Layer):
    """Mean or max over every spatial axis."""

    _reduce = None

    def __init__(self, rank, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.rank = rank
        self.data_format = standardize_data_format(data_format)
        self.keepdims = bool(keepdims)
        self.built = True

    def _axes(self):
        start = 1 if self.data_format == "channels_last" else 2
        return tuple(range(start, start + self.rank))

    def call(self, inputs):
        return type(self)._reduce(inputs, axis=self._axes(), keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        axes = self._axes()
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i not in axes)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


_GLOBAL_DOC = """Global {what} pooling over the spatial axes.

    Args:
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        keepdims: keep the spatial axes with length 1.{mask}

    Input shape:
        ``(batch_size, {spatial}, channels)`` (or channels_first).

    Output shape:
        ``(batch_size, channels)``; with ``keepdims`` ``(batch_size, {ones}, channels)``
        (or channels_first).
"""


def _global_doc(what, rank, mask=""):
    spatial = ("steps", "rows, cols", "d1, d2, d3")[rank - 1]
    return _GLOBAL_DOC.format(what=what, spatial=spatial, ones=", ".join(["1"] * rank),
                              mask=mask)


class GlobalAveragePooling1D(BaseGlobalPooling):
    __doc__ = _global_doc("average", 1, """

    Call arguments:
        inputs: the input tensor.
        mask: optional ``(batch_size, steps)`` booleans; masked steps are left out of
            the mean.""")
    _reduce = staticmethod(ops.mean)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(1, data_format, keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        axis = self._axes()[0]
        weights = np.expand_dims(np.asarray(mask, dtype=inputs.dtype),
                                 -1 if self.data_format == "channels_last" else 1)
        total = ops.sum(ops.multiply(inputs, weights), axis=axis, keepdims=self.keepdims)
        return ops.divide(total, np.sum(weights, axis=axis, keepdims=self.keepdims))

    def compute_mask(self, inputs, mask=None):
        return None


class GlobalAveragePooling2D(BaseGlobalPooling):
    __doc__ = _global_doc("average", 2)
    _reduce = staticmethod(ops.mean)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, data_format, keepdims, **kwargs)


class GlobalAveragePooling3D(BaseGlobalPooling):
    __doc__ = _global_doc("average", 3)
    _reduce = staticmethod(ops.mean)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(3, data_format, keepdims, **kwargs)


class GlobalMaxPooling1D(BaseGlobalPooling):
    __doc__ = _global_doc("max", 1)
    _reduce = staticmethod(ops.max)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(1, data_format, keepdims, **kwargs)


class GlobalMaxPooling2D(BaseGlobalPooling):
    __doc__ = _global_doc("max", 2)
    _reduce = staticmethod(ops.max)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, data_format, keepdims, **kwargs)


class GlobalMaxPooling3D(BaseGlobalPooling):
    __doc__ = _global_doc("max", 3)
    _reduce = staticmethod(ops.max)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(3, data_format, keepdims, **kwargs)


MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D)
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D)
