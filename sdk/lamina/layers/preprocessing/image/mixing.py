"""Augmentations that mix or erase images: MixUp, CutMix and RandomErasing."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.layers.preprocessing.image.base import (
    BaseImagePreprocessingLayer,
    parse_factor,
    parse_value_range,
)


def _box_masks(layer, shape, x0, x1, y0, y1):
    """``(B, H, W, 1)``-like masks of the boxes ``[x0, x1) x [y0, y1)``."""
    h_axis, w_axis, c_axis = layer._axes()
    gy, gx = np.meshgrid(np.arange(shape[h_axis]), np.arange(shape[w_axis]), indexing="ij")
    inside = ((gx >= x0[:, None, None]) & (gx < x1[:, None, None])
              & (gy >= y0[:, None, None]) & (gy < y1[:, None, None]))
    return np.expand_dims(inside, c_axis)


def _mix_labels(labels, order, weight):
    labels = ops.convert_to_tensor(labels, dtype="float32")
    weight = np.asarray(weight, dtype=np.float32).reshape(-1, 1)
    return ops.add(ops.multiply(weight, labels),
                   ops.multiply(1.0 - weight, ops.take(labels, order, axis=0)))


class MixUp(BaseImagePreprocessingLayer):
    """Blends each image (and label) with another of the batch: ``w x + (1 - w) x[perm]``,
    ``w ~ Beta(alpha, alpha)`` per image.

    Args:
        alpha: the Beta distribution's concentration.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for reproducible draws.
        **kwargs: base layer arguments, e.g. ``bounding_box_format`` (needed with boxes).

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``), or a dict
        with ``"images"`` and ``"labels"`` (mixed with the same weights) and optionally
        ``"bounding_boxes"`` (each image also gets the boxes of its partner).

    Output shape:
        Same as the input; ``N`` bounding boxes per image become ``2 N``.
    """

    _USE_BASE_FACTOR = False

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.alpha = alpha

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        return self.rng.permutation(n), self.rng.beta(self.alpha, self.alpha, n)

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        order, weight = transformation
        w = np.asarray(weight, dtype=np.dtype(images.dtype)).reshape(-1, 1, 1, 1)
        return ops.add(ops.multiply(w, images),
                       ops.multiply(1.0 - w, ops.take(images, order, axis=0)))

    def transform_labels(self, labels, transformation, training=True):
        if not training or transformation is None:
            return labels
        return _mix_labels(labels, *transformation)

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        """Each image keeps its boxes and gains those of the image blended into it:
        ``(B, N, 4)`` boxes become ``(B, 2 N, 4)``, its own first (as Keras 3.15.1).

        The box labels follow their boxes along the same axis, ``(B, 2 N)``; Keras 3.15.1
        stacks them along the batch axis instead (``(2 B, N)``), which pairs no label with
        its box, so Lamina deliberately differs there.
        """
        if not training or transformation is None:
            return bounding_boxes
        order = np.asarray(transformation[0])
        result = dict(bounding_boxes)
        for key in ("boxes", "labels"):
            if key in bounding_boxes:
                value = np.asarray(ops.convert_to_numpy(bounding_boxes[key]))
                result[key] = np.concatenate([value, value[order]], axis=1)
        return result

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "seed": self.seed}


class CutMix(BaseImagePreprocessingLayer):
    """Pastes a random box of another image of the batch into each image; labels mix by
    the box's area share. A dict with ``"bounding_boxes"`` raises NotImplementedError, as
    Keras 3.15.1's CutMix does.

    Args:
        factor: a number ``f`` in [0, 1] or a pair: the range of the Beta concentration
            from which the box sizes are drawn.
        seed: an int for reproducible draws.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``), or a dict
        with ``"images"`` and ``"labels"`` (mixed with the same weights).

    Output shape:
        Same as the input.
    """

    _FACTOR_BOUNDS = (0, 1)

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        h, w = self._hw(data)
        alpha = self.rng.uniform(self.factor[0], self.factor[1]) + 1e-6
        ratio = np.sqrt(1.0 - self.rng.beta(alpha, alpha, n))
        bounds = []
        for length in (w, h):
            crop = ratio * length
            start = self.rng.uniform(0, 1, n) * (length - crop)
            bounds += [start, start + crop]
        x0, x1, y0, y1 = bounds
        masks = _box_masks(self, data.shape, x0, x1, y0, y1)
        weight = 1.0 - (x1 - x0) * (y1 - y0) / (w * h)
        return self.rng.permutation(n), masks, weight

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        order, masks, _ = transformation
        return ops.where(masks, ops.take(images, order, axis=0), images)

    def transform_labels(self, labels, transformation, training=True):
        if not training or transformation is None:
            return labels
        order, _, weight = transformation
        return _mix_labels(labels, order, weight)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomErasing(BaseImagePreprocessingLayer):
    """Erases a random box of each image, with a probability drawn from ``factor``.

    Args:
        factor: a number ``p`` in [0, 1] or a pair: the erasing probability's range.
        scale: ``(min, max)`` share of each side's square (box side = sqrt(u) * side).
        fill_value: a number, three numbers (per channel) or None for Gaussian noise
            times ``value_range[1]``; clipped to ``value_range``.
        value_range: the ``(min, max)`` of the pixel values.
        seed: an int for reproducible draws.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``), or a dict
        with ``"images"`` and ``"labels"`` (mixed with the same weights).

    Output shape:
        Same as the input.
    """

    _BOXES_UNCHANGED = True
    _FACTOR_BOUNDS = (0, 1)

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255),
                 seed=None, data_format=None, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)
        self.scale = parse_factor(scale, (0, 1), "scale")
        if fill_value is not None and not (
                isinstance(fill_value, (int, float)) or
                (isinstance(fill_value, (tuple, list)) and len(fill_value) == 3)):
            raise ValueError("The `fill_value` argument should be a number (or a list of three "
                             f"numbers). Received: fill_value={fill_value}")
        self.fill_value = fill_value
        self.value_range = parse_value_range(value_range)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        n = data.shape[0]
        h, w = self._hw(data)
        sides = np.sqrt(self.rng.uniform(self.scale[0], self.scale[1], (n, 2)))
        bounds = []
        for length, ratio in ((w, sides[:, 0]), (h, sides[:, 1])):
            crop = ratio * length
            start = self.rng.uniform(0, 1, n) * (length - crop)
            bounds += [start, start + crop]
        masks = _box_masks(self, data.shape, *bounds)
        probability = self.rng.uniform(self.factor[0], self.factor[1], n)
        apply = (self.rng.uniform(0, 1, n) < probability).reshape(-1, 1, 1, 1)
        if self.fill_value is None:
            fill = self.rng.normal(size=data.shape) * self.value_range[1]
        else:
            shape = [1, 1, 1, 1]
            shape[self._axes()[2]] = -1
            fill = np.broadcast_to(np.reshape(self.fill_value, shape), data.shape)
        fill = np.clip(fill, *self.value_range).astype(np.dtype(data.dtype))
        return masks & apply, fill

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        masks, fill = transformation
        return ops.where(masks, fill, images)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "fill_value": self.fill_value,
                "value_range": self.value_range, "seed": self.seed}
