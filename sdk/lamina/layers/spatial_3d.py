"""Volumetric reshaping and dropout: UpSampling3D, ZeroPadding3D, Cropping3D, SpatialDropout3D.

The 3D members of the families in :mod:`lamina.layers.resampling` and
:mod:`lamina.layers.regularization`, with Keras's arguments and configs.
"""

from __future__ import annotations

import numpy as np

from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer
from lamina.layers.regularization import Dropout, _check_data_format, _keyed_dropout
from lamina.layers.resampling import (
    _check_ndim,
    _Cropping,
    _data_format,
    _upsample,
    _ZeroPadding,
)


def _triple_pairs(value, name):
    """``n``, ``(a, b, c)`` or ``((a1, a2), (b1, b2), (c1, c2))`` as three ``(lo, hi)`` pairs."""
    message = (f"Argument `{name}` must be an int, a tuple of 3 ints or a tuple of 3 tuples "
               f"of 2 ints. Received: {name}={value!r}")
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pairs = ((int(value), int(value)),) * 3
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise ValueError(message) from None
        if len(items) != 3:
            raise ValueError(message)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
            pairs = tuple((int(v), int(v)) for v in items)
        elif all(isinstance(v, (list, tuple)) and len(v) == 2 for v in items):
            pairs = tuple((int(v[0]), int(v[1])) for v in items)
        else:
            raise ValueError(message)
    if any(v < 0 for p in pairs for v in p):
        raise ValueError(f"Argument `{name}` must be non-negative. Received: {name}={value!r}")
    return pairs


def _spatial_axes(data_format):
    return [1, 2, 3] if data_format == "channels_last" else [2, 3, 4]


class UpSampling3D(Layer):
    """Repeats the three spatial axes ``size`` times each (nearest neighbour).

    Args:
        size: int or tuple of 3 positive ints, the factors for ``dim1, dim2, dim3``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Input shape:
        5D ``(batch, dim1, dim2, dim3, channels)`` (or channels_first).

    Output shape:
        5D with each spatial length multiplied by its factor.
    """

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(**kwargs)
        sizes = (size,) * 3 if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != 3 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                  or v <= 0 for v in sizes):
            raise ValueError("Argument `size` must be an int or a tuple of 3 positive ints. "
                             f"Received: size={size!r}")
        self.size = tuple(int(v) for v in sizes)
        self.data_format = _data_format(data_format)
        self.input_spec = InputSpec(ndim=5)
        self.built = True

    def call(self, inputs):
        _check_ndim(self, inputs.shape, 5)
        return _upsample(inputs, _spatial_axes(self.data_format), list(self.size))

    def compute_output_shape(self, input_shape):
        _check_ndim(self, input_shape, 5)
        out = list(input_shape)
        for a, s in zip(_spatial_axes(self.data_format), self.size):
            out[a] = None if out[a] is None else out[a] * s
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size),
                "data_format": self.data_format}


class ZeroPadding3D(_ZeroPadding):
    """Pads the three spatial axes with zeros.

    Args:
        padding: int (all sides), tuple of 3 ints (symmetric per axis), or
            ``((left1, right1), (left2, right2), (left3, right3))``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Input shape:
        5D ``(batch, dim1, dim2, dim3, channels)`` (or channels_first).

    Output shape:
        5D with each spatial length grown by its two paddings.
    """

    _ndim = 5

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _triple_pairs(padding, "padding")
        self.data_format = _data_format(data_format)
        self.input_spec = InputSpec(ndim=5)
        self.built = True


class Cropping3D(_Cropping):
    """Crops the three spatial axes.

    Args:
        cropping: int (all sides), tuple of 3 ints (symmetric per axis), or
            ``((left1, right1), (left2, right2), (left3, right3))``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Input shape:
        5D ``(batch, dim1, dim2, dim3, channels)`` (or channels_first).

    Output shape:
        5D with each spatial length shrunk by its two croppings.
    """

    _ndim = 5

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _triple_pairs(cropping, "cropping")
        self.data_format = _data_format(data_format)
        self.input_spec = InputSpec(ndim=5)
        self.built = True


class SpatialDropout3D(Dropout):
    """Drops whole 3D feature maps (channels) instead of single voxels.

    Args:
        rate: float in [0, 1), the fraction of channels to drop.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        seed: optional int for a reproducible mask stream.

    Input shape:
        5D ``(batch, dim1, dim2, dim3, channels)`` (or channels_first).

    Output shape:
        Same as the input.
    """

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.data_format = _check_data_format(data_format)
        self.input_spec = InputSpec(ndim=5)

    def call(self, inputs, training=False):
        _check_ndim(self, inputs.shape, 5)
        if training and self.rate > 0:
            n = inputs.shape[0]
            shape = ((n, 1, 1, 1, inputs.shape[4]) if self.data_format == "channels_last"
                     else (n, inputs.shape[1], 1, 1, 1))
            return _keyed_dropout(self, inputs, shape)
        return inputs

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        return {**config, "data_format": self.data_format}
