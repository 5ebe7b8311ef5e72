"""Pixel-value maps: RandomInvert, RandomPosterization, Solarization, AutoContrast and
Equalization."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.layers.preprocessing.image.base import (
    BaseImagePreprocessingLayer,
    parse_value_range,
)
from lamina.layers.preprocessing.image.color import _ColorLayer, per_image, to_range


class RandomInvert(_ColorLayer):
    """Replaces each image by ``max - x`` with a probability drawn from ``factor``'s range.

    Args:
        factor: a number ``p`` in [0, 1] (probability in ``[0, p]``) or a pair.
        value_range: the ``(min, max)`` of the pixel values.
        seed: an int for reproducible draws.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(factor, value_range, data_format=data_format, seed=seed, **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        probability = self.rng.uniform(self.factor[0], self.factor[1], n)
        return (self.rng.uniform(0, 1, n) < probability).reshape(-1, 1, 1, 1)

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        return ops.where(transformation, ops.subtract(float(self.value_range[1]), images), images)


class RandomPosterization(_ColorLayer):
    """Keeps only the top ``b`` bits of each 8-bit pixel value, ``b`` drawn from
    ``[lower, upper)`` of ``factor`` (or fixed when they are equal).

    Args:
        factor: a number ``f`` in [1, 8] (``b`` in ``[1, f)``) or a pair.
        value_range: the ``(min, max)`` of the pixel values.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _FACTOR_BOUNDS = (1, 8)

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(factor, value_range, data_format=data_format, seed=seed, **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        lower, upper = int(self.factor[0]), int(self.factor[1])
        n = data.shape[0]
        bits = self.rng.integers(lower, upper, n) if lower != upper else np.full(n, lower)
        return 8 - bits

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        dtype = np.dtype(images.dtype)
        pixels = ops.convert_to_numpy(to_range(images, self.value_range, (0, 255)))
        shift = transformation.reshape(-1, 1, 1, 1).astype(np.uint8)
        # uint8 cast wraps like Keras's (values are in [0, 255] after the range map).
        kept = (pixels.astype(np.int64).astype(np.uint8) >> shift) << shift
        return to_range(ops.convert_to_tensor(kept.astype(dtype)), (0, 255), self.value_range)


def _solarization_factor(factor, name):
    message = ("The `addition_factor` and `threshold_factor` arguments should be a number (or "
               f"a list of two numbers) in the range [0, 1]. Received: {name}={factor}")
    values = list(factor) if isinstance(factor, (tuple, list)) else [factor]
    if (isinstance(factor, (tuple, list)) and len(factor) != 2) or not all(
            isinstance(v, (int, float)) and 0 <= v <= 1 for v in values):
        raise ValueError(message)
    return tuple(sorted(factor)) if isinstance(factor, (tuple, list)) else (0, factor)


class Solarization(BaseImagePreprocessingLayer):
    """Adds a random ``addition`` (in 0-255 units) and inverts pixels at or above a random
    ``threshold``: ``x' = clip(x + a)``, ``x' < t ? x' : 255 - x'``. With both factors 0
    every pixel is inverted.

    Args:
        addition_factor: a number ``f`` (``a`` drawn from ``[0, 255 f]``) or a pair.
        threshold_factor: likewise for ``t``.
        value_range: the ``(min, max)`` of the pixel values.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _BOXES_UNCHANGED = True
    _USE_BASE_FACTOR = False

    def __init__(self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255),
                 seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.addition_factor = _solarization_factor(addition_factor, "addition_factor")
        self.threshold_factor = _solarization_factor(threshold_factor, "threshold_factor")
        self.value_range = parse_value_range(value_range)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        additions = self.rng.uniform(self.addition_factor[0], self.addition_factor[1] * 255, n)
        thresholds = self.rng.uniform(self.threshold_factor[0], self.threshold_factor[1] * 255,
                                      n)
        return additions, thresholds

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        additions, thresholds = transformation
        x = to_range(images, self.value_range, (0, 255))
        x = ops.clip(ops.add(x, per_image(additions, images)), 0.0, 255.0)
        x = ops.where(ops.less(x, per_image(thresholds, images)), x, ops.subtract(255.0, x))
        return to_range(x, (0, 255), self.value_range)

    def get_config(self):
        config = {**super().get_config(), "value_range": self.value_range,
                  "addition_factor": self.addition_factor,
                  "threshold_factor": self.threshold_factor, "seed": self.seed}
        return config


class AutoContrast(BaseImagePreprocessingLayer):
    """Stretches each channel of each image to the full ``value_range`` (always applied).

    Args:
        value_range: the ``(min, max)`` of the pixel values.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _BOXES_UNCHANGED = True
    _USE_BASE_FACTOR = False

    def __init__(self, value_range=(0, 255), **kwargs):
        super().__init__(**kwargs)
        self.value_range = parse_value_range(value_range)

    def transform_images(self, images, transformation=None, training=True):
        h, w, _ = self._axes()
        x = to_range(images, self.value_range, (0, 255))
        low = ops.min(x, axis=(h, w), keepdims=True)
        high = ops.max(x, axis=(h, w), keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = ops.divide(255.0, ops.subtract(high, low))
            out = ops.clip(ops.multiply(ops.subtract(x, low), scale), 0.0, 255.0)
        out = to_range(out, (0, 255), self.value_range)
        # A constant channel (0 / 0) keeps its values.
        return ops.where(ops.isnan(out), images, out)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range}


class Equalization(BaseImagePreprocessingLayer):
    """Histogram equalisation of each channel (over the whole batch), in training.

    Args:
        value_range: the ``(min, max)`` of the pixel values.
        bins: the histogram's bin count.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _BOXES_UNCHANGED = True
    _USE_BASE_FACTOR = False

    def __init__(self, value_range=(0, 255), bins=256, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.bins = bins
        self.value_range = parse_value_range(value_range)

    def _equalize(self, channel):
        channel = to_range(channel, self.value_range, (0, 255))
        values = ops.convert_to_numpy(channel).astype(np.float32)
        index = np.clip((values * np.float32(self.bins - 1) / np.float32(255)).astype(np.int32),
                        0, self.bins - 1)
        hist = np.bincount(index.ravel(), minlength=self.bins)
        if np.count_nonzero(hist) <= 1:
            return to_range(channel, (0, 255), self.value_range)
        cdf = np.cumsum(hist)
        cdf_min = cdf[np.argmax(cdf > 0)]
        denominator = cdf[-1] - cdf_min or 1
        table = np.clip(np.round((cdf - cdf_min) * 255 / denominator), 0, 255)
        lookup = np.clip(values / np.float32(255.0) * (self.bins - 1), 0, self.bins - 1)
        out = table[lookup.astype(np.int32)].astype(values.dtype)
        return to_range(ops.convert_to_tensor(out), (0, 255), self.value_range)

    def transform_images(self, images, transformation=None, training=True):
        if not training:
            return images
        _, _, c = self._axes()
        planes = ops.split(images, images.shape[c], axis=c)
        return ops.concatenate([self._equalize(p) for p in planes], axis=c)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range, "bins": self.bins}


def _clahe(images, clip_limit, grid):
    """CLAHE of ``(B, H, W, C)`` float images in [0, 255], in numpy (a lookup table)."""
    b, h, w, c = images.shape
    grid_h, grid_w = grid
    tile_h, tile_w = -(-h // grid_h), -(-w // grid_w)
    padded = np.pad(images, ((0, 0), (0, tile_h * grid_h - h), (0, tile_w * grid_w - w), (0, 0)),
                    mode="symmetric")
    tiles = padded.reshape(b, grid_h, tile_h, grid_w, tile_w, c).transpose(0, 1, 3, 5, 2, 4)
    bins = np.clip(tiles.reshape(b, grid_h, grid_w, c, -1).astype(np.int32), 0, 255)
    groups = int(np.prod(bins.shape[:-1]))
    offsets = (np.arange(groups) * 256).reshape(*bins.shape[:-1], 1)
    hists = np.bincount((bins + offsets).ravel(), minlength=groups * 256)
    hists = hists.reshape(*bins.shape[:-1], 256).astype(np.float32)
    area = tile_h * tile_w
    if clip_limit > 0:
        clipped = np.minimum(hists, np.float32(clip_limit * area / 256.0))
        hists = clipped + (hists - clipped).sum(-1, keepdims=True) / np.float32(256.0)
    cdf = np.cumsum(hists, axis=-1)
    cdf_min = cdf.min(axis=-1, keepdims=True)
    denominator = np.float32(area) - cdf_min
    table = np.clip((cdf - cdf_min) * 255.0 / np.where(denominator == 0, 1, denominator), 0, 255)
    # One tile of edge replication so that border pixels interpolate towards themselves.
    table = np.pad(table, ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0)), mode="edge")

    def axis_weights(size, tile, count):
        pos = (np.arange(size, dtype=np.float32) - tile / 2.0) / tile + 1.0
        low = np.floor(pos)
        return (np.clip(low, 0, count + 1).astype(np.int64),
                np.clip(low + 1, 0, count + 1).astype(np.int64), pos - low)

    y0, y1, wy = axis_weights(tile_h * grid_h, tile_h, grid_h)
    x0, x1, wx = axis_weights(tile_w * grid_w, tile_w, grid_w)
    pixels = np.clip(padded, 0, 255).astype(np.int64)
    bi = np.arange(b)[:, None, None, None]
    ci = np.arange(c)[None, None, None, :]

    def lookup(ys, xs):
        return table[bi, ys[None, :, None, None], xs[None, None, :, None], ci, pixels]

    wx, wy = wx[None, None, :, None], wy[None, :, None, None]
    top = lookup(y0, x0) * (1.0 - wx) + lookup(y0, x1) * wx
    bottom = lookup(y1, x0) * (1.0 - wx) + lookup(y1, x1) * wx
    return (top * (1.0 - wy) + bottom * wy)[:, :h, :w, :]


class ContrastLimitedAdaptiveHistogramEqualization(BaseImagePreprocessingLayer):
    """CLAHE: histogram equalisation per tile of a ``tile_grid_size`` grid, histograms
    clipped at ``clip_limit`` times the mean bin (the excess spread evenly), tile maps
    blended bilinearly between tile centres. Always applied (not a random layer).

    Args:
        value_range: the ``(min, max)`` of the pixel values.
        clip_limit: the histogram clip, in multiples of the mean bin count (0: no clip).
        tile_grid_size: ``(rows, columns)`` of tiles.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _USE_BASE_FACTOR = False

    def __init__(self, value_range=(0, 255), clip_limit=4.0, tile_grid_size=(8, 8),
                 data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        parse_value_range(value_range)
        if not isinstance(tile_grid_size, (tuple, list)) or len(tile_grid_size) != 2:
            raise ValueError("`tile_grid_size` must be a tuple of two integers. Received: "
                             f"tile_grid_size={tile_grid_size}")
        self.value_range = value_range
        self.clip_limit = clip_limit
        self.tile_grid_size = tile_grid_size

    def transform_images(self, images, transformation=None, training=True):
        dtype = np.dtype(images.dtype)
        x = to_range(images, self.value_range, (0, 255))
        x = ops.convert_to_numpy(x).astype(np.float32)
        if self.data_format == "channels_first":
            x = x.transpose(0, 2, 3, 1)
        out = _clahe(x, float(self.clip_limit), tuple(self.tile_grid_size))
        if self.data_format == "channels_first":
            out = out.transpose(0, 3, 1, 2)
        out = to_range(ops.convert_to_tensor(out.astype(np.float32)), (0, 255),
                       self.value_range)
        return ops.cast(out, dtype.name)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "clip_limit": self.clip_limit, "tile_grid_size": self.tile_grid_size}


__all__ = ["AutoContrast", "ContrastLimitedAdaptiveHistogramEqualization", "Equalization",
           "RandomInvert", "RandomPosterization", "Solarization"]
