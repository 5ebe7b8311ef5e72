"""``draw_segmentation_masks``: colour each class's pixels, blended over the images."""

from __future__ import annotations

import numpy as np

from lamina.visualization._common import check_batched, data_format_or_default, to_numpy


def _generate_color_palette(num_classes):
    palette = np.array([2 ** 25 - 1, 2 ** 15 - 1, 2 ** 21 - 1])
    return [((i * palette) % 255).tolist() for i in range(num_classes)]


def draw_segmentation_masks(images, segmentation_masks, num_classes=None, color_mapping=None,
                            alpha=0.8, blend=True, ignore_index=-1, data_format=None):
    """Paint segmentation masks over images, as Keras 3.15.1.

    Args:
        images: ``(batch, height, width, channels)`` images (or channels first).
        segmentation_masks: integer masks ``(batch, height, width, 1)``.
        num_classes: number of classes; by default ``max(mask)`` (as Keras, so the
            largest class id is then not painted).
        color_mapping: dict (or list) from class id to an RGB colour; default palette.
        alpha: opacity of the colours when blending.
        blend: blend the colours over the images (uint8 result); otherwise return the
            painted float32 images.
        ignore_index: mask value left unpainted when blending.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        numpy images: uint8 when ``blend``, else float32 (channels last, as Keras).

    Raises:
        ValueError: for non-4D images.
        TypeError: for non-integer masks.
    """
    data_format = data_format_or_default(data_format)
    images = check_batched(images)
    masks = to_numpy(segmentation_masks)
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
        masks = masks.transpose(0, 2, 3, 1)
    images = images.astype("float32")
    if masks.dtype.kind not in "iu":
        raise TypeError("`segmentation_masks` must be in integer dtype. "
                        f"Received: segmentation_masks.dtype={masks.dtype}")
    if num_classes is None:
        num_classes = int(masks.max())
    colors = (_generate_color_palette(num_classes) if color_mapping is None
              else [color_mapping[i] for i in range(num_classes)])
    valid = np.squeeze(masks != ignore_index, axis=-1)
    labels = masks[..., 0]
    painted = images.copy()
    for class_id, color in enumerate(colors):
        painted[labels == class_id] = np.array(color, dtype=painted.dtype)[None, :]
    if not blend:
        return painted
    outputs = images * (1 - alpha) + painted * alpha
    outputs = np.where(valid[..., None], outputs, images)
    return outputs.astype("uint8")
