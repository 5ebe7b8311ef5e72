"""IoU and complete IoU of boxes, as ``keras.utils.bounding_boxes`` (Keras 3.15.1)."""

from __future__ import annotations

import math

import numpy as np

from lamina.backend.config import epsilon
from lamina.utils.bounding_boxes._arrays import as_array, split4
from lamina.utils.bounding_boxes.converters import convert_format


def _rank_check(boxes, arg, ranks):
    rank = np.ndim(boxes)
    if rank not in (2, 3):
        raise ValueError(f"compute_iou() expects {arg} to be batched, or to be unbatched. "
                         f"Received len(boxes1.shape)={ranks[0]}, len(boxes2.shape)={ranks[1]}. "
                         f"Expected either len({arg}.shape)=2 AND or len({arg}.shape)=3.")
    return rank


def compute_iou(boxes1, boxes2, bounding_box_format, use_masking=False, mask_val=-1,
                image_shape=None):
    """Pairwise intersection over union.

    Args:
        boxes1: ``(N, 4)`` or ``(batch, N, 4)`` boxes.
        boxes2: ``(M, 4)`` or ``(batch, M, 4)`` boxes.
        bounding_box_format: the boxes' format.
        use_masking: if true, pairs involving a padding box (all coordinates negative)
            get ``mask_val``.
        mask_val: the value of masked pairs.
        image_shape: ``(height, width, channels)``, required for relative formats.

    Returns:
        ``(N, M)`` (or ``(batch, N, M)``) IoUs.

    Raises:
        ValueError: for boxes of rank other than 2 or 3, or a relative format without
            ``image_shape``.
    """
    boxes1, boxes2 = as_array(boxes1), as_array(boxes2)
    ranks = (np.ndim(boxes1), np.ndim(boxes2))
    rank1 = _rank_check(boxes1, "boxes1", ranks)
    _rank_check(boxes2, "boxes2", ranks)
    if "rel" in bounding_box_format and image_shape is None:
        raise ValueError("When using relative bounding box formats (e.g. `rel_yxyx`) the "
                         f"`image_shape` argument must be provided. Received `image_shape`: "
                         f"{image_shape}")
    height, width = (None, None) if image_shape is None else tuple(image_shape)[:2]
    boxes1 = convert_format(boxes1, bounding_box_format, "yxyx", height=height, width=width)
    boxes2 = convert_format(boxes2, bounding_box_format, "yxyx", height=height, width=width)
    y_min1, x_min1, y_max1, x_max1 = split4(boxes1)
    y_min2, x_min2, y_max2, x_max2 = split4(boxes2)
    perm2 = (1, 0) if boxes2.ndim == 2 else (0, 2, 1)
    inter_h = np.minimum(y_max1, y_max2.transpose(perm2)) - np.maximum(
        y_min1, y_min2.transpose(perm2))
    inter_w = np.minimum(x_max1, x_max2.transpose(perm2)) - np.maximum(
        x_min1, x_min2.transpose(perm2))
    inter = np.maximum(inter_h, 0) * np.maximum(inter_w, 0)
    area1 = np.squeeze((y_max1 - y_min1) * (x_max1 - x_min1), -1)
    area2 = np.squeeze((y_max2 - y_min2) * (x_max2 - x_min2), -1)
    area1 = np.expand_dims(area1, -1)
    area2 = np.expand_dims(area2, 1 if area2.ndim == 2 else 0)
    res = inter / (area1 + area2 - inter + np.float32(epsilon()))
    if not use_masking:
        return res
    perm = (1, 0) if rank1 == 2 else (0, 2, 1)
    mask1 = boxes1.max(axis=-1, keepdims=True) < 0.0
    mask2 = boxes2.max(axis=-1, keepdims=True) < 0.0
    background = np.logical_or(mask1, mask2.transpose(perm))
    return np.where(background, np.asarray(mask_val, res.dtype), res)


def compute_ciou(boxes1, boxes2, bounding_box_format, image_shape=None):
    """Complete IoU of matching boxes: IoU minus centre distance and aspect penalties.

    Args:
        boxes1: ``(..., 4)`` boxes.
        boxes2: ``(..., 4)`` boxes, paired elementwise with ``boxes1``.
        bounding_box_format: the boxes' format (absolute formats only, as Keras).
        image_shape: ``(height, width, channels)``.

    Returns:
        The CIoU of each pair, shape ``boxes1.shape[:-1]``.

    Raises:
        ValueError: for a relative format (Keras refuses those here).
    """
    if "rel" in bounding_box_format:
        raise ValueError("When using relative bounding box formats (e.g. `rel_yxyx`) the "
                         f"`image_shape` argument must be provided. Received `image_shape`: "
                         f"{image_shape}")
    height, width = (None, None) if image_shape is None else tuple(image_shape)[:2]
    boxes1 = convert_format(boxes1, bounding_box_format, "xyxy", height=height, width=width)
    boxes2 = convert_format(boxes2, bounding_box_format, "xyxy", height=height, width=width)
    eps = np.float32(epsilon())
    x_min1, y_min1, x_max1, y_max1 = split4(boxes1)
    x_min2, y_min2, x_max2, y_max2 = split4(boxes2)
    width_1, height_1 = x_max1 - x_min1, y_max1 - y_min1 + eps
    width_2, height_2 = x_max2 - x_min2, y_max2 - y_min2 + eps
    inter = np.maximum(np.minimum(x_max1, x_max2) - np.maximum(x_min1, x_min2), 0) * \
        np.maximum(np.minimum(y_max1, y_max2) - np.maximum(y_min1, y_min2), 0)
    union = width_1 * height_1 + width_2 * height_2 - inter + eps
    iou = np.squeeze(inter / (union + eps), -1)
    convex_w = np.maximum(x_max1, x_max2) - np.minimum(x_min1, x_min2)
    convex_h = np.maximum(y_max1, y_max2) - np.minimum(y_min1, y_min2)
    diagonal = np.squeeze(convex_w ** 2 + convex_h ** 2 + eps, -1)
    centres = np.squeeze(((x_min1 + x_max1) / 2 - (x_min2 + x_max2) / 2) ** 2
                         + ((y_min1 + y_max1) / 2 - (y_min2 + y_max2) / 2) ** 2, -1)
    v = np.squeeze(np.float32(4 / math.pi ** 2) * (
        np.arctan(width_2 / height_2) - np.arctan(width_1 / height_1)) ** 2, -1)
    alpha = v / (v - iou + np.float32(1 + eps))
    return iou - (centres / diagonal + v * alpha)
