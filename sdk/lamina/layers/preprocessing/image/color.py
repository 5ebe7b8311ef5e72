"""Random colour augmentations: contrast, brightness, colour degeneration, grayscale,
hue, saturation and sharpness (one random strength per image, as Keras draws them)."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend import conv_ops
from lamina.layers.preprocessing.image.base import (
    BaseImagePreprocessingLayer,
    parse_value_range,
)
from lamina.ops import image as image_ops


def to_range(images, source, target):
    """Map ``images`` linearly from the value range ``source`` to ``target``."""
    if tuple(source) == tuple(target):
        return images
    dtype = np.dtype(images.dtype)
    scale = (float(target[1]) - float(target[0])) / (float(source[1]) - float(source[0]))
    shifted = ops.subtract(images, np.asarray(source[0], dtype))
    return ops.add(ops.multiply(shifted, np.asarray(scale, dtype)), np.asarray(target[0], dtype))


def per_image(values, images):
    """Random values of one batch as a ``(B, 1, 1, 1)`` array of the images' dtype."""
    return np.asarray(values, dtype=np.dtype(images.dtype)).reshape(-1, 1, 1, 1)


class _ColorLayer(BaseImagePreprocessingLayer):
    """A layer with a ``factor`` (within ``_FACTOR_BOUNDS``), a ``value_range`` and a seed."""

    _BOXES_UNCHANGED = True
    _FACTOR_BOUNDS = (0, 1)

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)
        self.value_range = parse_value_range(value_range)

    def get_random_transformation(self, data, training=True, seed=None):
        """One strength per image, uniform in the ``factor`` range."""
        if not training:
            return None
        return self.rng.uniform(self.factor[0], self.factor[1], data.shape[0])

    def _clip(self, images):
        return ops.clip(images, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range, "seed": self.seed}


class RandomContrast(_ColorLayer):
    """Scales each image's deviation from its per-channel mean by a random
    ``c`` in ``[1 - lower, 1 + upper]``, then clips to ``value_range``.

    Args:
        factor: a number ``f`` in [0, 1] (``c`` in ``[1 - f, 1 + f]``) or a pair.
        value_range: the ``(min, max)`` of the pixel values.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor, value_range, seed=seed, **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        return self.rng.uniform(1.0 - self.factor[0], 1.0 + self.factor[1], data.shape[0])

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        h, w, _ = self._axes()
        mean = ops.mean(images, axis=(h, w), keepdims=True)
        out = ops.add(ops.multiply(ops.subtract(images, mean), per_image(transformation, images)),
                      mean)
        return self._clip(out)


class RandomBrightness(_ColorLayer):
    """Adds a random ``delta * (max - min)`` to each image, ``delta`` drawn from
    ``factor``'s range, then clips to ``value_range``.

    Args:
        factor: a number ``f`` in [-1, 1] (``delta`` in ``[-f, f]``) or a pair.
        value_range: the ``(min, max)`` of the pixel values.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _FACTOR_BOUNDS = (-1, 1)

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(factor, value_range, seed=seed, **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        delta = self.rng.uniform(self.factor[0], self.factor[1], data.shape[0])
        return delta * (self.value_range[1] - self.value_range[0])

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        return self._clip(ops.add(images, per_image(transformation, images)))


class RandomColorDegeneration(_ColorLayer):
    """Blends each image towards its grayscale version by a random amount in ``factor``.

    Args:
        factor: a number ``f`` in [-1, 1] (blend in ``[-f, f]``) or a pair.
        value_range: the ``(min, max)`` of the pixel values.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _FACTOR_BOUNDS = (-1, 1)

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        gray = image_ops.rgb_to_grayscale(images, data_format=self.data_format)
        blended = ops.add(images, ops.multiply(per_image(transformation, images),
                                               ops.subtract(gray, images)))
        return self._clip(blended)


class RandomGrayscale(BaseImagePreprocessingLayer):
    """Turns each image to grayscale (kept at its channel count) with probability ``factor``.

    Args:
        factor: the probability, in [0, 1].
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _BOXES_UNCHANGED = True
    _USE_BASE_FACTOR = False

    def __init__(self, factor=0.5, data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        if not isinstance(factor, (int, float)) or factor < 0 or factor > 1:
            raise ValueError(f"`factor` should be between 0 and 1. Received: factor={factor}")
        self.factor = factor

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        return (self.rng.uniform(size=data.shape[0]) < self.factor).reshape(-1, 1, 1, 1)

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        gray = image_ops.rgb_to_grayscale(images, data_format=self.data_format)
        return ops.where(transformation, ops.add(gray, ops.zeros_like(images)), images)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomHue(_ColorLayer):
    """Shifts each image's hue by a random ``±u / 2`` (``u`` in ``factor``'s range, the
    sign a coin flip), wrapping around the colour circle.

    Args:
        factor: a number ``f`` in [0, 1] or a pair.
        value_range: the ``(min, max)`` of the pixel values.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        sign = np.where(self.rng.uniform(size=n) > 0.5, -1.0, 1.0)
        return sign * self.rng.uniform(self.factor[0], self.factor[1], n) * 0.5

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        _, _, c = self._axes()
        hsv = image_ops.rgb_to_hsv(to_range(images, self.value_range, (0, 1)),
                                   data_format=self.data_format)
        hue, sat, val = ops.split(hsv, 3, axis=c)
        hue = ops.add(hue, per_image(transformation, images))
        hue = ops.where(ops.greater(hue, 1.0), ops.subtract(hue, 1.0), hue)
        hue = ops.where(ops.less(hue, 0.0), ops.add(hue, 1.0), hue)
        rgb = image_ops.hsv_to_rgb(ops.concatenate([hue, sat, val], axis=c),
                                   data_format=self.data_format)
        return to_range(ops.clip(rgb, 0.0, 1.0), (0, 1), self.value_range)


class RandomSaturation(_ColorLayer):
    """Multiplies each image's saturation by ``u / (1 - u)`` (``u`` in ``factor``'s
    range: 0.5 keeps it, 0 gives grayscale, 1 full saturation).

    As in Keras, the images are converted to HSV as given (values in ``[0, 1]`` are
    expected) and the scaled saturation is clipped to ``value_range``.

    Args:
        factor: a number ``f`` in [0, 1] or a pair.
        value_range: the ``(min, max)`` the saturation is clipped to.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _FACTOR_BOUNDS = (-1, 1)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        u = self.rng.uniform(self.factor[0], self.factor[1], data.shape[0])
        return u / (1.0 - u + 1e-7)

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        _, _, c = self._axes()
        hue, sat, val = ops.split(image_ops.rgb_to_hsv(images, data_format=self.data_format), 3,
                                  axis=c)
        sat = self._clip(ops.multiply(sat, per_image(transformation, images)))
        return image_ops.hsv_to_rgb(ops.concatenate([hue, sat, val], axis=c),
                                    data_format=self.data_format)


class RandomSharpness(_ColorLayer):
    """Blends each image with a 3x3-smoothed version: ``x + (1 - 2u) (smooth - x)``,
    ``u`` in ``factor``'s range (``u > 0.5`` sharpens), clipped to ``value_range``.

    Args:
        factor: a number ``f`` in [0, 1] or a pair.
        value_range: the ``(min, max)`` of the pixel values.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _USE_BASE_FACTOR = True

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        _, _, c = self._axes()
        a, b = 1.0 / 13.0, 5.0 / 13.0
        kernel = np.array([[a, a, a], [a, b, a], [a, a, a]], dtype=np.dtype(images.dtype))
        kernel = np.tile(kernel[:, :, None, None], (1, 1, images.shape[c], 1))
        smooth = conv_ops.depthwise_conv(images, kernel, padding="same",
                                         data_format=self.data_format)
        weight = per_image(1.0 - 2.0 * transformation, images)
        return self._clip(ops.add(images, ops.multiply(weight, ops.subtract(smooth, images))))


__all__ = ["RandomBrightness", "RandomColorDegeneration", "RandomContrast", "RandomGrayscale",
           "RandomHue", "RandomSaturation", "RandomSharpness"]
