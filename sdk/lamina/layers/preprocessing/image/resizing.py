"""Layers that change the image size: Resizing, CenterCrop and RandomCrop (each also
moves the bounding boxes of a dict call into the output image's frame)."""

from __future__ import annotations

import numpy as np

from lamina.layers.preprocessing.image import box_geometry as boxes_lib
from lamina.layers.preprocessing.image.base import BaseImagePreprocessingLayer
from lamina.ops import image as image_ops
from lamina.ops.image_resize import RESIZE_INTERPOLATIONS


def _check_size(height, width):
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value}")


class _SizedLayer(BaseImagePreprocessingLayer):
    _USE_BASE_FACTOR = False

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        h, w = (-3, -2) if self.data_format == "channels_last" else (-2, -1)
        shape[h], shape[w] = self.height, self.width
        return tuple(shape)

    def _crop(self, images, top, left):
        rows = slice(top, top + self.height)
        cols = slice(left, left + self.width)
        index = (slice(None), rows, cols) if self.data_format == "channels_last" else (
            slice(None), slice(None), rows, cols)
        return images[index]

    def _aspect_window(self, height, width):
        """``(top, left, crop_height, crop_width)``: the largest centred window of the
        target aspect ratio (what ``crop_to_aspect_ratio`` resizes)."""
        crop_height = max(min(height, int(float(width * self.height) / self.width)), 1)
        crop_width = max(min(width, int(float(height * self.width) / self.height)), 1)
        return (int(float(height - crop_height) / 2), int(float(width - crop_width) / 2),
                crop_height, crop_width)

    def _crop_boxes(self, bounding_boxes, height, width, window, resized):
        """Boxes of a ``height x width`` input into the output of cropping ``window`` =
        ``(top, left, crop_height, crop_width)`` (then resizing it when ``resized``)."""
        top, left, crop_height, crop_width = window
        xyxy = self._boxes_to(bounding_boxes, "xyxy", height, width)
        xyxy["boxes"] = boxes_lib.crop_window(xyxy["boxes"], top, left, top + crop_height,
                                              left + crop_width)
        if resized:
            xyxy["boxes"] = boxes_lib.window_to_size(xyxy["boxes"], crop_height, crop_width,
                                                     self.height, self.width)
        xyxy = boxes_lib.clip_to_image_size(xyxy, height=self.height, width=self.width,
                                            bounding_box_format="xyxy")
        return self._boxes_from(xyxy, "xyxy", self.height, self.width)


class Resizing(_SizedLayer):
    """Resizes images to ``(height, width)`` (``lamina.ops.image.resize``).

    Args:
        height: output height.
        width: output width.
        interpolation: ``"bilinear"``, ``"nearest"``, ``"bicubic"``, ``"lanczos3"``,
            ``"lanczos5"`` or ``"area"``.
        crop_to_aspect_ratio: crop the largest centred window of the target aspect ratio.
        pad_to_aspect_ratio: pad evenly to the target aspect ratio.
        fill_mode: only ``"constant"``.
        fill_value: the padding value.
        antialias: antialias when downsampling.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        ``(height, width)`` in place of ``(H, W)``.
    """

    _CAST_INPUTS = False  # uint8 images come back uint8 (rounded, saturated), as in Keras

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0,
                 antialias=False, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        _check_size(height, width)
        if interpolation not in RESIZE_INTERPOLATIONS:
            raise ValueError("Invalid value for argument `interpolation`. Expected of one "
                             f"{RESIZE_INTERPOLATIONS}. Received: "
                             f"interpolation={interpolation}")
        self.height, self.width = height, width
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.pad_to_aspect_ratio = pad_to_aspect_ratio
        self.fill_mode = fill_mode
        self.fill_value = fill_value
        self.antialias = bool(antialias)

    def _resize(self, images, interpolation):
        return image_ops.resize(images, (self.height, self.width), interpolation=interpolation,
                                antialias=self.antialias,
                                crop_to_aspect_ratio=self.crop_to_aspect_ratio,
                                pad_to_aspect_ratio=self.pad_to_aspect_ratio,
                                fill_mode=self.fill_mode, fill_value=self.fill_value,
                                data_format=self.data_format)

    def transform_images(self, images, transformation=None, training=True):
        return self._resize(images, self.interpolation)

    def transform_segmentation_masks(self, masks, transformation=None, training=True):
        return self._resize(masks, "nearest")

    def get_random_transformation(self, data, training=True, seed=None):
        return self._hw(data)

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        """Scale the boxes as the pixels (with the aspect-ratio modes' centred padding or
        cropping); padding boxes (all 0 or all -1) come back as zeros, as in Keras."""
        input_height, input_width = transformation
        given = np.asarray(bounding_boxes["boxes"])
        padding = np.all(given == -1, axis=-1) | np.all(given == 0, axis=-1)
        xyxy = self._boxes_to(bounding_boxes, "xyxy", input_height, input_width)
        xyxy["boxes"] = boxes_lib.resize_boxes(
            xyxy["boxes"], input_height, input_width, self.height, self.width,
            self.crop_to_aspect_ratio, self.pad_to_aspect_ratio)
        xyxy = boxes_lib.clip_to_image_size(xyxy, height=self.height, width=self.width)
        xyxy["boxes"] = np.where(padding[..., None], np.float32(0), xyxy["boxes"])
        return self._boxes_from(xyxy, "xyxy", self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias}


class CenterCrop(_SizedLayer):
    """Crops the central ``(height, width)`` window; a smaller image is first cropped to
    the target aspect ratio and resized (bilinear), as Keras's ``smart_resize``.

    Args:
        height: output height.
        width: output width.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        ``(height, width)`` in place of ``(H, W)``.
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        _check_size(height, width)
        self.height, self.width = height, width

    def transform_images(self, images, transformation=None, training=True):
        h, w = self._hw(images)
        if h >= self.height and w >= self.width:
            return self._crop(images, (h - self.height) // 2, (w - self.width) // 2)
        return image_ops.resize(images, (self.height, self.width), crop_to_aspect_ratio=True,
                                data_format=self.data_format)

    def get_random_transformation(self, data, training=True, seed=None):
        return {"input_shape": tuple(data.shape)}

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        height, width = boxes_lib.image_size(transformation["input_shape"], self.data_format)
        if height >= self.height and width >= self.width:
            window = ((height - self.height) // 2, (width - self.width) // 2, self.height,
                      self.width)
            return self._crop_boxes(bounding_boxes, height, width, window, resized=False)
        return self._crop_boxes(bounding_boxes, height, width,
                                self._aspect_window(height, width), resized=True)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class RandomCrop(_SizedLayer):
    """Crops a random ``(height, width)`` window (one per call) in training.

    As in Keras, an image not larger than the target in both dimensions is cropped to
    the target aspect ratio and resized instead, and outside training the input passes
    unchanged.

    Args:
        height: crop height.
        width: crop width.
        seed: an int for reproducible windows.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        name: the layer's name.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        ``(height, width)`` in place of ``(H, W)`` in training.
    """

    def __init__(self, height, width, seed=None, data_format=None, name=None, **kwargs):
        super().__init__(data_format=data_format, seed=seed, name=name, **kwargs)
        _check_size(height, width)
        self.height, self.width = height, width
        if seed is None:
            # As Keras: the config records a drawn seed (the stream stays the global one).
            from lamina.backend.random import get_rng

            self.seed = int(get_rng().integers(1, 10**9))

    def get_random_transformation(self, data, training=True, seed=None):
        """``{"top", "left", "input_shape"}``; ``top``/``left`` are None when the input
        is not larger than the crop (it is then cropped to the aspect ratio and resized)."""
        h, w = self._hw(data)
        top = left = None
        if training and h > self.height and w > self.width:
            top = int(self.rng.uniform(0, h - self.height + 1))
            left = int(self.rng.uniform(0, w - self.width + 1))
        return {"top": top, "left": left, "input_shape": tuple(data.shape)}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        if transformation is None or transformation["top"] is None:
            return image_ops.resize(images, (self.height, self.width),
                                    crop_to_aspect_ratio=True, data_format=self.data_format)
        return self._crop(images, transformation["top"], transformation["left"])

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        """Boxes into the crop window's frame, clipped to it (and scaled on the resize
        path). Keras 3.15.1 swaps the x/y offsets here and neither clips nor rescales; this
        follows the pixels instead."""
        if not training:
            return bounding_boxes
        height, width = boxes_lib.image_size(transformation["input_shape"], self.data_format)
        if transformation["top"] is None:
            return self._crop_boxes(bounding_boxes, height, width,
                                    self._aspect_window(height, width), resized=True)
        window = (transformation["top"], transformation["left"], self.height, self.width)
        return self._crop_boxes(bounding_boxes, height, width, window, resized=False)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "seed": self.seed}

