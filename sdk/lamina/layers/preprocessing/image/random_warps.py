"""Random blur and non-affine warps: RandomGaussianBlur, RandomElasticTransform and
RandomPerspective (each applied to an image with a probability drawn from ``factor``).

Bounding boxes pass through the blur, move with RandomPerspective's warp, and are refused
by RandomElasticTransform (no box transform, as in Keras 3.15.1)."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.layers.preprocessing.image import box_geometry as boxes_lib
from lamina.layers.preprocessing.image.base import (
    BaseImagePreprocessingLayer,
    parse_factor,
    parse_value_range,
)
from lamina.ops import image as image_ops
from lamina.ops.image_warp import _homographies


class _ProbabilityLayer(BaseImagePreprocessingLayer):
    _FACTOR_BOUNDS = (0, 1)

    def _chosen(self, n):
        probability = self.rng.uniform(self.factor[0], self.factor[1], n)
        return (self.rng.uniform(0.0, 1.0, n) < probability).reshape(-1, 1, 1, 1)


def _odd_kernel_size(kernel_size):
    message = f"kernel_size must be an odd number. Received: kernel_size={kernel_size}"
    if isinstance(kernel_size, (tuple, list)):
        if len(kernel_size) != 2:
            raise ValueError("The `kernel_size` argument should be a number (or a list of two "
                             f"numbers) Received: kernel_size={kernel_size}")
        if kernel_size[0] % 2 == 0 or kernel_size[1] % 2 == 0:
            raise ValueError(message)
        return tuple(kernel_size)
    if not isinstance(kernel_size, (int, float)) or kernel_size % 2 == 0:
        raise ValueError(message)
    return kernel_size, kernel_size


class RandomGaussianBlur(_ProbabilityLayer):
    """Blurs each image (probability from ``factor``) with one Gaussian per call whose two
    standard deviations are drawn from ``sigma``'s range.

    Args:
        factor: a number ``p`` in [0, 1] or a pair: the blur probability's range.
        kernel_size: an odd int or two odd ints.
        sigma: a number ``s`` (``[0, s]``) or a pair: the standard deviations' range.
        value_range: the ``(min, max)`` of the pixel values (the output is clipped).
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible draws.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _BOXES_UNCHANGED = True

    def __init__(self, factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255),
                 data_format=None, seed=None, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)
        self.kernel_size = _odd_kernel_size(kernel_size)
        self.sigma = parse_factor(sigma, (0, 1), "sigma")
        self.value_range = parse_value_range(value_range)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        chosen = self._chosen(data.shape[0])
        return chosen, self.rng.uniform(self.sigma[0], self.sigma[1], 2) + 1e-6

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        chosen, sigma = transformation
        blurred = image_ops.gaussian_blur(images, self.kernel_size, tuple(sigma.tolist()),
                                          data_format=self.data_format)
        return ops.clip(ops.where(chosen, blurred, images), *self.value_range)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "sigma": self.sigma,
                "value_range": self.value_range, "seed": self.seed}


class RandomElasticTransform(_ProbabilityLayer):
    """Elastic deformation (``ops.image.elastic_transform``) of each image with a
    probability from ``factor``; ``alpha = 0.1 s max(H, W)``, ``sigma = 0.05 s min(H, W)``
    with ``s`` drawn from ``scale``'s range.

    Args:
        factor: a number ``p`` in [0, 1] or a pair: the probability's range.
        scale: a number or a pair in [0, 1]: the distortion strength's range.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        fill_mode: ``"reflect"``, ``"constant"``, ``"nearest"``, ``"wrap"`` or ``"mirror"``.
        fill_value: the value outside with ``fill_mode="constant"``.
        value_range: the ``(min, max)`` of the pixel values (the output is clipped).
        seed: an int for reproducible draws.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)
        self.scale = parse_factor(scale, (0, 1), "scale")
        if interpolation not in ("nearest", "bilinear"):
            raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of "
                                      "one ('nearest', 'bilinear').")
        if fill_mode not in self._FILL_MODES:
            raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one "
                                      f"{set(self._FILL_MODES)}.")
        self.interpolation = interpolation
        self.fill_mode = fill_mode
        self.fill_value = fill_value
        self.value_range = parse_value_range(value_range)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training or self.scale[1] == 0 or self.factor[1] == 0:
            return None
        chosen = self._chosen(data.shape[0])
        return chosen, self.rng.uniform(self.scale[0], self.scale[1])

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        chosen, strength = transformation
        h, w = self._hw(images)
        warped = image_ops.elastic_transform(
            images, alpha=max(h, w) * 0.1 * strength, sigma=min(h, w) * 0.05 * strength,
            interpolation=self.interpolation, fill_mode=self.fill_mode,
            fill_value=self.fill_value, seed=self.generator, data_format=self.data_format)
        return ops.clip(ops.where(chosen, warped, images), *self.value_range)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale,
                "interpolation": self.interpolation, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "value_range": self.value_range,
                "seed": self.seed}


class RandomPerspective(_ProbabilityLayer):
    """Moves each corner of an image by up to ``scale / 2`` of its coordinates and warps
    accordingly (``ops.image.perspective_transform``), with a probability from ``factor``.

    Args:
        factor: a number ``p`` in [0, 1] or a pair: the probability's range.
        scale: the corner displacement, in [0, 1].
        interpolation: ``"bilinear"`` or ``"nearest"``.
        fill_value: the value outside the warped image.
        seed: an int for reproducible draws.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0,
                 seed=None, data_format=None, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)
        if not isinstance(scale, (int, float)) or scale < 0.0 or scale > 1.0:
            raise ValueError("The `scale` argument should be a number in the range [0,1]. "
                             f"Received: scale={scale}")
        if interpolation not in ("nearest", "bilinear"):
            raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of "
                                      "one ('nearest', 'bilinear').")
        self.scale = scale
        self.interpolation = interpolation
        self.fill_value = fill_value

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        h, w = self._hw(data)
        chosen = self._chosen(n)
        shift = self.rng.uniform(-0.5 * self.scale, 0.5 * self.scale, (n, 4, 2))
        start = np.repeat(np.array([[[0.0, 0.0], [w - 1, 0.0], [0.0, h - 1], [w - 1, h - 1]]]),
                          n, axis=0)
        return {"apply_perspective": chosen.reshape(n), "start_points": start,
                "end_points": start + start * shift, "input_shape": tuple(data.shape)}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        warped = image_ops.perspective_transform(images, transformation["start_points"],
                                                 transformation["end_points"],
                                                 interpolation=self.interpolation,
                                                 fill_value=self.fill_value,
                                                 data_format=self.data_format)
        chosen = np.asarray(transformation["apply_perspective"]).reshape(-1, 1, 1, 1)
        return ops.where(chosen, warped, images)

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        """Each box becomes the box enclosing its warped corners (where the warp applies),
        clipped to the image. Keras 3.15.1 returns these in ``xyxy`` whatever the
        ``bounding_box_format``; Lamina converts them back to it."""
        if not training or transformation is None:
            return bounding_boxes
        height, width = boxes_lib.image_size(transformation["input_shape"], self.data_format)
        xyxy = self._boxes_to(bounding_boxes, "xyxy", height, width)
        # The sampling homography maps output to input pixels; boxes need its inverse.
        coefficients = _homographies(np.asarray(transformation["start_points"], np.float32),
                                     np.asarray(transformation["end_points"], np.float32))
        matrices = np.concatenate([coefficients, np.ones_like(coefficients[:, :1])], axis=1)
        matrices = np.linalg.inv(matrices.reshape(-1, 3, 3))
        moved = boxes_lib.map_corners(xyxy["boxes"], matrices).astype(np.float32)
        chosen = np.asarray(transformation["apply_perspective"]).reshape(-1, 1, 1)
        xyxy["boxes"] = np.where(chosen, moved, xyxy["boxes"])
        xyxy = boxes_lib.clip_to_image_size(xyxy, height=height, width=width,
                                            bounding_box_format="xyxy")
        return self._boxes_from(xyxy, "xyxy", height, width)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale,
                "interpolation": self.interpolation, "fill_value": self.fill_value,
                "seed": self.seed}
