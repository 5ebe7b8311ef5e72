"""The base of the image preprocessing layers: factors, data format, training, seeds.

As in Keras, a layer draws one random transformation per call
(:meth:`get_random_transformation`) and applies it (:meth:`transform_images`) only in
training; ``training`` defaults to True when the layer is called on its own, and
``Model.predict``/``evaluate`` pass False, so the augmentation is the identity at
inference. Inputs are an image ``(H, W, C)``, a batch ``(B, H, W, C)`` (channels first
per ``data_format``), or a dict with ``"images"`` (and optionally ``"labels"``,
``"segmentation_masks"`` and ``"bounding_boxes"``, which are transformed alongside by the
same draw). Bounding boxes (a dict ``{"boxes", "labels"}`` in the layer's
``bounding_box_format``) pass unchanged through the pixel-value layers and move with the
pixels in the geometric ones (see ``box_geometry``); the layers Keras 3.15.1 gives no box
transform raise.
"""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend.config import image_data_format
from lamina.backend.random import SeedGenerator
from lamina.layers.layer import Layer
from lamina.layers.preprocessing.image import box_geometry


def standardize_data_format(data_format):
    """``image_data_format()`` for None; raises for anything but the two formats."""
    data_format = image_data_format() if data_format is None else str(data_format).lower()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', "
                         f"'channels_last'}}. Received: data_format={data_format}")
    return data_format


def parse_factor(factor, bounds, name="factor"):
    """Keras's ``factor`` rule: a number ``f`` means ``(max(-|f|, low), |f|)``; a pair is
    sorted. Values outside ``bounds`` raise."""
    message = ("The `factor` argument should be a number (or a list of two numbers) in the "
               f"range [{bounds[0]}, {bounds[1]}]. Received: {name}={factor}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(message)
        lower, upper = sorted(factor)
    elif isinstance(factor, (int, float)) and not isinstance(factor, bool):
        if factor < bounds[0] or factor > bounds[1]:
            raise ValueError(message)
        factor = abs(factor)
        lower, upper = max(-factor, bounds[0]), factor
    else:
        raise ValueError(message)
    return lower, upper


def parse_value_range(value_range):
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise ValueError("The `value_range` argument should be a list of two numbers. "
                         f"Received: value_range={value_range}")
    return tuple(sorted(value_range))


class BaseImagePreprocessingLayer(Layer):
    """Owns the call loop of the image augmentation layers; members override
    :meth:`get_random_transformation` and :meth:`transform_images`.

    Args:
        factor: the layer's strength, parsed by :func:`parse_factor` within
            ``_FACTOR_BOUNDS`` (only when ``_USE_BASE_FACTOR``).
        data_format: ``"channels_last"`` or ``"channels_first"``.
        seed: an int for a reproducible stream of transformations.
        bounding_box_format: the format of a dict's ``"bounding_boxes"`` (required with
            them, as in Keras), e.g. ``"xyxy"`` or ``"rel_center_xywh"``.
    """

    _USE_BASE_FACTOR = True
    _FACTOR_BOUNDS = (-1, 1)
    # Integer images are cast to the layer's dtype first, except where Keras keeps them.
    _CAST_INPUTS = True
    # Layers that only change pixel values return bounding boxes as given (as Keras's).
    _BOXES_UNCHANGED = False
    # ... and segmentation masks too (None: as bounding boxes), as Keras 3.15.1's do.
    _MASKS_UNCHANGED = None

    def __init__(self, factor=None, data_format=None, seed=None, bounding_box_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.bounding_box_format = bounding_box_format
        self.data_format = standardize_data_format(data_format)
        self.seed = seed
        self.generator = SeedGenerator(seed)
        if self._USE_BASE_FACTOR:
            self.factor = parse_factor(factor or 0.0, self._FACTOR_BOUNDS)
        elif factor is not None:
            raise ValueError(f"Layer {type(self).__name__} does not take a `factor` argument. "
                             f"Received: factor={factor}")
        self.built = True

    @property
    def rng(self) -> np.random.Generator:
        return self.generator.rng

    # -- hooks ---------------------------------------------------------------------------
    def get_random_transformation(self, data, training=True, seed=None):
        """The random draw of one call (None: nothing to do)."""
        return None

    def transform_images(self, images, transformation, training=True):
        """Apply ``transformation`` to a batch of images (channels per ``data_format``)."""
        raise NotImplementedError

    def transform_labels(self, labels, transformation, training=True):
        return labels

    def transform_segmentation_masks(self, masks, transformation, training=True):
        unchanged = self._MASKS_UNCHANGED
        if unchanged is None:
            unchanged = self._BOXES_UNCHANGED
        if unchanged:
            return masks
        return self.transform_images(masks, transformation, training=training)

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        """Move batched ``{"boxes": (B, N, 4), "labels": (B, N)}`` as
        ``transformation`` moves the pixels (boxes in ``bounding_box_format``).

        Raises:
            NotImplementedError: for a layer without a box transform.
        """
        if self._BOXES_UNCHANGED:
            return bounding_boxes
        raise NotImplementedError(
            f"{type(self).__name__} does not support `bounding_boxes` (it has no bounding box "
            "transform, as in Keras 3.15.1 or not yet in Lamina). Received: "
            f"bounding_box_format={self.bounding_box_format!r}")

    # -- helpers ---------------------------------------------------------------------------
    def _axes(self):
        """(height, width, channel) axes of a batch."""
        return (1, 2, 3) if self.data_format == "channels_last" else (2, 3, 1)

    def _hw(self, images):
        h, w, _ = self._axes()
        return images.shape[h], images.shape[w]

    def _boxes_to(self, bounding_boxes, target, height, width):
        """``bounding_boxes`` from ``bounding_box_format`` to ``target``."""
        return box_geometry.convert_format(bounding_boxes, self.bounding_box_format, target,
                                           height=height, width=width)

    def _boxes_from(self, bounding_boxes, source, height, width):
        """``bounding_boxes`` from ``source`` back to ``bounding_box_format``."""
        return box_geometry.convert_format(bounding_boxes, source, self.bounding_box_format,
                                           height=height, width=width)

    # -- the loop --------------------------------------------------------------------------
    def call(self, data, training=True):
        training = True if training is None else bool(training)
        images = data["images"] if isinstance(data, dict) else data
        if images.ndim not in (3, 4):
            raise ValueError("Expected image tensor to have rank 3 (single image) or 4 (batch "
                             f"of images). Received: data.shape={tuple(images.shape)}")
        unbatched = images.ndim == 3
        batch = ops.expand_dims(images, 0) if unbatched else images
        if self._CAST_INPUTS and not np.issubdtype(np.dtype(batch.dtype), np.floating):
            batch = ops.cast(batch, self.dtype)
        transformation = self.get_random_transformation(batch, training=training)
        out = self.transform_images(batch, transformation, training=training)
        out = ops.squeeze(out, 0) if unbatched else out
        if not isinstance(data, dict):
            return out
        result = dict(data, images=out)
        if "labels" in data:
            result["labels"] = self.transform_labels(data["labels"], transformation, training)
        if "bounding_boxes" in data:
            if not self.bounding_box_format:
                raise ValueError(
                    "You passed an input with a 'bounding_boxes' key, but you didn't specify "
                    "a bounding box format. Pass a `bounding_box_format` argument to your "
                    f"{type(self).__name__} layer, e.g. `bounding_box_format='xyxy'`.")
            boxes = box_geometry.densify(data["bounding_boxes"], batched=not unbatched)
            boxes = self.transform_bounding_boxes(boxes, transformation, training)
            result["bounding_boxes"] = box_geometry.undensify(boxes) if unbatched else boxes
        if "segmentation_masks" in data:
            masks = data["segmentation_masks"]
            masks = ops.expand_dims(masks, 0) if unbatched else masks
            masks = self.transform_segmentation_masks(masks, transformation, training)
            result["segmentation_masks"] = ops.squeeze(masks, 0) if unbatched else masks
        return result

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {**super().get_config(), "data_format": self.data_format}
        if self.bounding_box_format is not None:
            config["bounding_box_format"] = self.bounding_box_format
        if self._USE_BASE_FACTOR:
            config["factor"] = self.factor
        return config
