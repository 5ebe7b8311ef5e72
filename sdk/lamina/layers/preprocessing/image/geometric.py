"""Random geometric augmentations: flips and the affine family (rotation, zoom,
translation, shear), each drawing one transform per image with Keras's conventions.

A transformation holds the draw under Keras's keys (``flips``, ``angle``, ``translations``,
``height_zoom``/``width_zoom``, ``shear_factor``), the affine sampling ``matrix`` and the
input size: a dict call's bounding boxes move with the same draw as the pixels."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.layers.preprocessing.image import box_geometry as boxes_lib
from lamina.layers.preprocessing.image.base import BaseImagePreprocessingLayer, parse_factor
from lamina.ops import image as image_ops

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


def _check_modes(fill_mode, interpolation):
    if fill_mode not in _FILL_MODES:
        raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one "
                                  f"{_FILL_MODES}.")
    if interpolation not in _INTERPOLATIONS:
        raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of one "
                                  f"{_INTERPOLATIONS}.")


def affine_matrix(angle, translate_x, translate_y, scale, shear_x, shear_y, height, width):
    """Keras's ``[a0, a1, a2, b0, b1, b2, 0, 0]`` of a scale * shear * rotation about the
    image centre (angles in degrees), one row per image."""
    angle, shear_x, shear_y = (np.deg2rad(np.asarray(v, np.float64)) for v in
                               (angle, shear_x, shear_y))
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    cos, sin = np.cos(angle), np.sin(angle)
    tan_x, tan_y = np.tan(shear_x), np.tan(shear_y)
    a0 = scale * (cos + tan_x * sin)
    a1 = scale * (-sin + tan_x * cos)
    b0 = scale * (tan_y * cos + sin)
    b1 = scale * (tan_y * -sin + cos)
    a2 = translate_x + cx - cx * a0 - cy * a1
    b2 = translate_y + cy - cx * b0 - cy * b1
    zeros = np.zeros_like(a0)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype(np.float32)


class _AffineLayer(BaseImagePreprocessingLayer):
    """Shared by the affine layers: warp the batch by ``transformation["matrix"]``."""

    _USE_BASE_FACTOR = False

    def _init_affine(self, fill_mode, interpolation, fill_value):
        _check_modes(fill_mode, interpolation)
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = fill_value

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        return image_ops.affine_transform(images, transformation["matrix"],
                                          interpolation=self.interpolation,
                                          fill_mode=self.fill_mode, fill_value=self.fill_value,
                                          data_format=self.data_format)

    def transform_segmentation_masks(self, masks, transformation, training=True):
        if not training or transformation is None:
            return masks
        return image_ops.affine_transform(masks, transformation["matrix"], "nearest",
                                          self.fill_mode, self.fill_value, self.data_format)

    def _finish_boxes(self, xyxy, height, width):
        """Clip moved ``xyxy`` boxes to the image and return them in the layer's format."""
        xyxy = boxes_lib.clip_to_image_size(xyxy, height=height, width=width,
                                            bounding_box_format="xyxy")
        return self._boxes_from(xyxy, "xyxy", height, width)

    def _config(self, **extra):
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "seed": self.seed,
                "fill_value": self.fill_value, **extra}


class RandomFlip(BaseImagePreprocessingLayer):
    """Flips each image horizontally and/or vertically with probability 1/2 in training.

    Args:
        mode: ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"`` (one
            draw per image decides both flips, as in Keras).
        seed: an int for reproducible flips.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _USE_BASE_FACTOR = False
    _MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        if mode not in self._MODES:
            raise ValueError(f"RandomFlip layer {self.name} received an unknown mode "
                             f"argument {mode}")
        self.mode = mode

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        return {"flips": self.rng.uniform(size=(data.shape[0], 1, 1, 1)) <= 0.5,
                "input_shape": tuple(data.shape)}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        h, w, _ = self._axes()
        flips = transformation["flips"]
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            images = ops.where(flips, ops.flip(images, axis=w), images)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            images = ops.where(flips, ops.flip(images, axis=h), images)
        return images

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        if not training or transformation is None:
            return bounding_boxes
        height, width = boxes_lib.image_size(transformation["input_shape"], self.data_format)
        relative = self._boxes_to(bounding_boxes, "rel_xyxy", height, width)
        relative["boxes"] = boxes_lib.flip_relative(
            relative["boxes"], transformation["flips"],
            horizontal=self.mode != "vertical", vertical=self.mode != "horizontal")
        # Keras clips these relative boxes against the pixel size (so only below 0).
        relative = boxes_lib.clip_to_image_size(relative, height=height, width=width,
                                                bounding_box_format="xyxy")
        return self._boxes_from(relative, "rel_xyxy", height, width)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "mode": self.mode}


class RandomRotation(_AffineLayer):
    """Rotates each image by a random angle ``factor * 360`` degrees about its centre.

    Args:
        factor: a number ``f`` (angles in ``[-f, f]`` turns) or a pair ``(lower, upper)``.
        fill_mode: ``"reflect"``, ``"wrap"``, ``"constant"`` or ``"nearest"``.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        seed: an int for reproducible angles.
        fill_value: the value outside with ``fill_mode="constant"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.factor = parse_factor(factor, (-1, 1))
        self._init_affine(fill_mode, interpolation, fill_value)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        angle = self.rng.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, size=n)
        zeros, ones = np.zeros(n), np.ones(n)
        height, width = self._hw(data)
        return {"angle": angle, "matrix": affine_matrix(angle, zeros, zeros, ones, zeros, zeros,
                                                        height, width),
                "image_height": height, "image_width": width, "batch_size": n}

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        if not training or transformation is None:
            return bounding_boxes
        height, width = transformation["image_height"], transformation["image_width"]
        xyxy = self._boxes_to(bounding_boxes, "xyxy", height, width)
        angle = np.asarray(transformation["angle"], np.float32).reshape(-1)
        zeros, ones = np.zeros_like(angle), np.ones_like(angle)
        xyxy["boxes"] = boxes_lib.affine_transform(xyxy["boxes"], angle, zeros, zeros, ones,
                                                   zeros, zeros, height, width)
        return self._finish_boxes(xyxy, height, width)

    def get_config(self):
        return self._config(factor=self.factor)


def _zoom_or_translation_factor(factor, name, zoom):
    """A number ``f`` gives ``(-|f|, |f|)``, a pair is sorted; zoom factors lie in
    ``(-1, 1]``, translation factors in ``[-1, 1]``."""
    head = ("The `height_factor` and `width_factor` arguments should be a number (or a list "
            "of two numbers) in the range (-1.0, 1.0]. " if zoom else
            "The `factor` argument should be a number (or a list of two numbers) in the "
            "range [-1.0, 1.0]. ")
    pair = isinstance(factor, (tuple, list))
    values = list(factor) if pair else [factor]
    ok = (not pair or len(factor) == 2) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 1.0
        and (v > -1.0 if zoom else v >= -1.0) for v in values)
    if not ok:
        raise ValueError(head + f"Received: {name}={factor}")
    return tuple(sorted(factor)) if pair else (-abs(factor), abs(factor))


def zoom_matrix(width_zoom, height_zoom, height, width):
    """Keras's ``(B, 8)`` float32 zoom about the image centre (output -> input pixels)."""
    zx = np.asarray(width_zoom, np.float32).reshape(-1)
    zy = np.asarray(height_zoom, np.float32).reshape(-1)
    zeros = np.zeros_like(zx)
    return np.stack([zx, zeros, (np.float32(width) - 1) / 2 * (1 - zx), zeros, zy,
                     (np.float32(height) - 1) / 2 * (1 - zy), zeros, zeros], axis=1)


class RandomZoom(_AffineLayer):
    """Zooms each image by ``1 + u`` with ``u`` drawn from the factor range (positive:
    zoom out, negative: zoom in), about the image centre.

    Args:
        height_factor: a number ``f`` (``[-f, f]``) or a pair, each in ``(-1, 1]``.
        width_factor: as ``height_factor``; None keeps the aspect ratio.
        fill_mode: ``"reflect"``, ``"wrap"``, ``"constant"`` or ``"nearest"``.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        seed: an int for reproducible zooms.
        fill_value: the value outside with ``fill_mode="constant"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.height_factor = height_factor
        self.height_range = _zoom_or_translation_factor(height_factor, "height_factor", True)
        self.width_factor = width_factor
        self.width_range = None if width_factor is None else _zoom_or_translation_factor(
            width_factor, "width_factor", True)
        self._init_affine(fill_mode, interpolation, fill_value)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        height_zoom = self.rng.uniform(1 + self.height_range[0], 1 + self.height_range[1], n)
        width_zoom = height_zoom if self.width_range is None else self.rng.uniform(
            1 + self.width_range[0], 1 + self.width_range[1], n)
        return {"height_zoom": height_zoom.reshape(n, 1), "width_zoom": width_zoom.reshape(n, 1),
                "matrix": zoom_matrix(width_zoom, height_zoom, *self._hw(data)),
                "input_shape": tuple(data.shape)}

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        if not training or transformation is None:
            return bounding_boxes
        height, width = boxes_lib.image_size(transformation["input_shape"], self.data_format)
        xyxy = self._boxes_to(bounding_boxes, "xyxy", height, width)
        matrix = zoom_matrix(transformation["width_zoom"], transformation["height_zoom"],
                             height, width)
        # The output's corners sampled in input pixels: boxes are clipped to that window.
        left, top = matrix[:, 2:3, None], matrix[:, 5:6, None]
        right = matrix[:, 0:1, None] * width + left
        bottom = matrix[:, 4:5, None] * height + top
        boxes = boxes_lib.crop_window(xyxy["boxes"], top, left, bottom, right)
        xyxy["boxes"] = boxes / np.concatenate([right - left, bottom - top] * 2, axis=-1)
        relative = boxes_lib.clip_to_image_size(xyxy, bounding_box_format="rel_xyxy")
        return self._boxes_from(relative, "rel_xyxy", height, width)

    def get_config(self):
        return self._config(height_factor=self.height_factor, width_factor=self.width_factor)


class RandomTranslation(_AffineLayer):
    """Shifts each image by random fractions of its height and width.

    Args:
        height_factor: a number ``f`` (``[-f, f]`` of the height) or a pair in [-1, 1].
        width_factor: likewise for the width.
        fill_mode: ``"reflect"``, ``"wrap"``, ``"constant"`` or ``"nearest"``.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        seed: an int for reproducible shifts.
        fill_value: the value outside with ``fill_mode="constant"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.height_factor = height_factor
        self.height_range = _zoom_or_translation_factor(height_factor, "height_factor", False)
        self.width_factor = width_factor
        self.width_range = _zoom_or_translation_factor(width_factor, "width_factor", False)
        self._init_affine(fill_mode, interpolation, fill_value)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        h, w = self._hw(data)
        dy = self.rng.uniform(*self.height_range, size=n) * h
        dx = self.rng.uniform(*self.width_range, size=n) * w
        zeros, ones = np.zeros(n), np.ones(n)
        matrix = np.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], 1)
        return {"matrix": matrix.astype(np.float32), "input_shape": tuple(data.shape),
                "translations": np.stack([dx, dy], axis=1).astype(np.float32)}

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        if not training or transformation is None:
            return bounding_boxes
        height, width = boxes_lib.image_size(transformation["input_shape"], self.data_format)
        xyxy = self._boxes_to(bounding_boxes, "xyxy", height, width)
        shift = np.asarray(transformation["translations"], np.float32).reshape(-1, 1, 2)
        xyxy["boxes"] = xyxy["boxes"] + np.concatenate([shift, shift], axis=-1)
        return self._finish_boxes(xyxy, height, width)

    def get_config(self):
        return self._config(height_factor=self.height_factor, width_factor=self.width_factor)


def _shear_factor(factor, name):
    """A number in [0, 1] gives ``(-f, f)`` (stored so by Keras); a pair is sorted, its
    values in [-1, 1] so that a stored config loads again."""
    pair = isinstance(factor, (tuple, list))
    values = list(factor) if pair else [factor]
    if (pair and len(factor) != 2) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            and (-1 if pair else 0) <= v <= 1 for v in values):
        raise ValueError("The `factor` argument should be a number (or a list of two numbers) "
                         f"in the range [0, 1.0]. Received: {name}={factor}")
    return tuple(sorted(factor)) if pair else (-factor, factor)


class RandomShear(_AffineLayer):
    """Shears each image along x and y by random factors of random sign.

    Args:
        x_factor: a number ``f`` (``[0, f]``) or a pair in [0, 1]: the x shear.
        y_factor: likewise for y.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        fill_mode: ``"reflect"``, ``"wrap"``, ``"constant"`` or ``"nearest"``.
        fill_value: the value outside with ``fill_mode="constant"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible shears.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.x_factor = _shear_factor(x_factor, "x_factor")
        self.y_factor = _shear_factor(y_factor, "y_factor")
        self._init_affine(fill_mode, interpolation, fill_value)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        sign = np.where(self.rng.uniform(size=n) > 0.5, -1.0, 1.0)
        shear_y = self.rng.uniform(*self.y_factor, size=n) * sign
        shear_x = self.rng.uniform(*self.x_factor, size=n) * sign
        zeros, ones = np.zeros(n), np.ones(n)
        matrix = np.stack([ones, shear_x, zeros, shear_y, ones, zeros, zeros, zeros], 1)
        return {"matrix": matrix.astype(np.float32), "input_shape": tuple(data.shape),
                "shear_factor": np.stack([shear_x, shear_y], axis=1).astype(np.float32)}

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        """As Keras: the shear factors act on relative coordinates (exact for square
        images; an approximation of the pixel shear otherwise)."""
        if not training or transformation is None:
            return bounding_boxes
        height, width = boxes_lib.image_size(transformation["input_shape"], self.data_format)
        relative = self._boxes_to(bounding_boxes, "rel_xyxy", height, width)
        relative["boxes"] = boxes_lib.shear_relative(relative["boxes"],
                                                     transformation["shear_factor"])
        relative = boxes_lib.clip_to_image_size(relative, bounding_box_format="rel_xyxy")
        return self._boxes_from(relative, "rel_xyxy", height, width)

    def get_config(self):
        return self._config(x_factor=self.x_factor, y_factor=self.y_factor)
