"""Spatial reshaping layers: UpSampling1D/2D, ZeroPadding1D/2D, Cropping1D/2D.

ZeroPadding1D-3D and Cropping1D-3D share a base per family that pads or crops one
``(lo, hi)`` pair per spatial axis; members parse their arguments and set the rank.
"""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.layers.layer import Layer


def _data_format(data_format):
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("`data_format` must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    return data_format


def _check_ndim(layer, shape, ndim):
    if len(shape) != ndim:
        raise ValueError(
            f"Input 0 of layer '{layer.name}' is incompatible with the layer: expected "
            f"ndim={ndim}, found ndim={len(shape)}. Full shape received: {tuple(shape)}")


def _int_pair(value, name, allow_pairs=False):
    """``n`` -> ``(n, n)``; ``(a, b)`` kept; with ``allow_pairs``, ``((a, b), (c, d))`` too."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value), int(value))
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) == 2 and all(isinstance(v, (int, np.integer)) for v in items):
        return tuple(int(v) for v in items)
    if allow_pairs and len(items) == 2 and all(
            isinstance(v, (list, tuple)) and len(v) == 2 for v in items):
        return tuple(tuple(int(x) for x in v) for v in items)
    raise ValueError(f"Argument `{name}` must be an int or a tuple of 2 ints"
                     f"{' or of 2 pairs of ints' if allow_pairs else ''}. "
                     f"Received: {name}={value!r}")


def _pairs_2d(value, name):
    """Padding or cropping of 2D layers as ``((top, bottom), (left, right))``."""
    value = _int_pair(value, name, allow_pairs=True)
    if isinstance(value[0], int):
        return ((value[0], value[0]), (value[1], value[1]))
    return value


def _non_negative(pairs, name, value):
    flat = [v for p in pairs for v in (p if isinstance(p, tuple) else (p,))]
    if any(v < 0 for v in flat):
        raise ValueError(f"Argument `{name}` must be non-negative. Received: {name}={value!r}")


def _upsample(x, axes, sizes):
    """Nearest-neighbour repeat of ``x`` along ``axes``: reshape, broadcast, reshape."""
    shape = list(x.shape)
    expanded, target, final = [], [], []
    for i, d in enumerate(shape):
        if i in axes:
            r = sizes[axes.index(i)]
            expanded += [d, 1]
            target += [d, r]
            final.append(d * r)
        else:
            expanded.append(d)
            target.append(d)
            final.append(d)
    return ops.reshape(ops.broadcast_to(ops.reshape(x, expanded), target), final)


class UpSampling1D(Layer):
    """Repeats each timestep ``size`` times.

    Args:
        size: positive int, the upsampling factor.

    Input shape:
        3D ``(batch_size, steps, features)``.

    Output shape:
        3D ``(batch_size, steps * size, features)``.
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        if self.size <= 0:
            raise ValueError(f"Argument `size` must be positive. Received: size={size!r}")
        self.built = True

    def call(self, inputs):
        _check_ndim(self, inputs.shape, 3)
        return _upsample(inputs, [1], [self.size])

    def compute_output_shape(self, input_shape):
        _check_ndim(self, input_shape, 3)
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else steps * self.size, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling2D(Layer):
    """Repeats rows and columns ``size[0]`` and ``size[1]`` times (nearest neighbour).

    Args:
        size: int or pair of ints, the factors for rows and columns.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        interpolation: ``"nearest"`` (the only mode Lamina implements).

    Input shape:
        4D ``(batch, rows, cols, channels)`` or ``(batch, channels, rows, cols)``.

    Output shape:
        4D with ``rows * size[0]`` and ``cols * size[1]``.
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = _int_pair(size, "size")
        if min(self.size) <= 0:
            raise ValueError(f"Argument `size` must be positive. Received: size={size!r}")
        self.data_format = _data_format(data_format)
        if interpolation != "nearest":
            raise ValueError(
                "Lamina's UpSampling2D implements `interpolation='nearest'` only. "
                f"Received: interpolation={interpolation!r}")
        self.interpolation = interpolation
        self.built = True

    def _axes(self):
        return [1, 2] if self.data_format == "channels_last" else [2, 3]

    def call(self, inputs):
        _check_ndim(self, inputs.shape, 4)
        return _upsample(inputs, self._axes(), list(self.size))

    def compute_output_shape(self, input_shape):
        _check_ndim(self, input_shape, 4)
        out = list(input_shape)
        for a, s in zip(self._axes(), self.size):
            out[a] = None if out[a] is None else out[a] * s
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size),
                "data_format": self.data_format, "interpolation": self.interpolation}


def _around(pairs, data_format):
    """``pairs`` (one ``(lo, hi)`` per spatial axis) with ``(0, 0)`` for the batch and
    channel axes: one pair per axis of the input."""
    if data_format == "channels_first":
        return ((0, 0), (0, 0), *pairs)
    return ((0, 0), *pairs, (0, 0))


def _as_lists(value):
    """Nested tuples as nested lists (the JSON form of Keras's configs)."""
    return [_as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


class _ZeroPadding(Layer):
    """Base of ZeroPadding1D/2D/3D: members parse ``padding`` (1D: one ``(lo, hi)``;
    2D/3D: one pair per spatial axis) and ``data_format``, and set ``_ndim``."""

    _ndim = 3  # the inputs' rank

    def _width(self):
        return _around((self.padding,) if self._ndim == 3 else self.padding, self.data_format)

    def call(self, inputs):
        _check_ndim(self, inputs.shape, self._ndim)
        return ops.pad(inputs, self._width())

    def compute_output_shape(self, input_shape):
        _check_ndim(self, input_shape, self._ndim)
        return tuple(None if d is None else d + lo + hi
                     for d, (lo, hi) in zip(input_shape, self._width()))

    def get_config(self):
        return {**super().get_config(), "padding": _as_lists(self.padding),
                "data_format": self.data_format}


class ZeroPadding1D(_ZeroPadding):
    """Pads the time axis with zeros.

    Args:
        padding: int (both sides) or ``(left, right)``.
        data_format: ``"channels_last"`` (default: steps on axis 1) or
            ``"channels_first"`` (steps on axis 2).

    Input shape:
        3D ``(batch_size, steps, features)`` (channels_first: ``(batch_size, features,
        steps)``).

    Output shape:
        3D with ``steps + left + right``.
    """

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _int_pair(padding, "padding")
        _non_negative(self.padding, "padding", padding)
        self.data_format = _data_format(data_format)
        self.built = True


class ZeroPadding2D(_ZeroPadding):
    """Pads rows and columns with zeros.

    Args:
        padding: int (all sides), ``(rows, cols)`` (symmetric), or
            ``((top, bottom), (left, right))``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Input shape:
        4D ``(batch, rows, cols, channels)`` or ``(batch, channels, rows, cols)``.

    Output shape:
        4D with ``rows + top + bottom`` and ``cols + left + right``.
    """

    _ndim = 4

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pairs_2d(padding, "padding")
        _non_negative(self.padding, "padding", padding)
        self.data_format = _data_format(data_format)
        self.built = True


def _crop(layer, shape, crops):
    """Index tuple for ``crops`` (one ``(lo, hi)`` per axis), checking they fit."""
    index = []
    for d, (lo, hi) in zip(shape, crops):
        if d is not None and lo + hi >= d and (lo or hi):
            raise ValueError(
                f"Cropping of layer '{layer.name}' removes the whole axis: input shape "
                f"{tuple(shape)}, cropping={layer.cropping}")
        index.append(slice(lo, -hi if hi else None))
    return tuple(index)


class _Cropping(Layer):
    """Base of Cropping1D/2D/3D: members parse ``cropping`` (1D: one ``(start, end)``;
    2D/3D: one pair per spatial axis) and ``data_format``, and set ``_ndim``."""

    _ndim = 3  # the inputs' rank

    def _crops(self):
        return _around((self.cropping,) if self._ndim == 3 else self.cropping,
                       self.data_format)

    def call(self, inputs):
        _check_ndim(self, inputs.shape, self._ndim)
        return ops.getitem(inputs, _crop(self, inputs.shape, self._crops()))

    def compute_output_shape(self, input_shape):
        _check_ndim(self, input_shape, self._ndim)
        _crop(self, input_shape, self._crops())
        return tuple(None if d is None else d - lo - hi
                     for d, (lo, hi) in zip(input_shape, self._crops()))

    def get_config(self):
        config = {**super().get_config(), "cropping": _as_lists(self.cropping)}
        if self._ndim > 3:  # Keras's Cropping1D takes no data_format
            config["data_format"] = self.data_format
        return config


class Cropping1D(_Cropping):
    """Crops the time axis.

    Args:
        cropping: int (both sides) or ``(start, end)``.

    Input shape:
        3D ``(batch_size, steps, features)``.

    Output shape:
        3D ``(batch_size, steps - start - end, features)``.
    """

    data_format = "channels_last"  # Keras's Cropping1D has no data_format

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _int_pair(cropping, "cropping")
        _non_negative(self.cropping, "cropping", cropping)
        self.built = True


class Cropping2D(_Cropping):
    """Crops rows and columns.

    Args:
        cropping: int (all sides), ``(rows, cols)`` (symmetric), or
            ``((top, bottom), (left, right))``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Input shape:
        4D ``(batch, rows, cols, channels)`` or ``(batch, channels, rows, cols)``.

    Output shape:
        4D with ``rows - top - bottom`` and ``cols - left - right``.
    """

    _ndim = 4

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pairs_2d(cropping, "cropping")
        _non_negative(self.cropping, "cropping", cropping)
        self.data_format = _data_format(data_format)
        self.built = True

