"""``keras.utils.bounding_boxes``: box format conversion, geometry and IoU (numpy).

Formats: ``xyxy``, ``yxyx``, ``xywh``, ``center_xywh``, ``center_yxhw`` and the relative
``rel_xyxy``, ``rel_yxyx``, ``rel_xywh``, ``rel_center_xywh`` (fractions of the image's
``height``/``width``). Results are numpy arrays.
"""

from lamina.utils.bounding_boxes.converters import (
    SUPPORTED_FORMATS,
    affine_transform,
    clip_to_image_size,
    convert_format,
    crop,
    decode_deltas_to_boxes,
    encode_box_to_deltas,
    pad,
)
from lamina.utils.bounding_boxes.iou import compute_ciou, compute_iou

__all__ = [
    "SUPPORTED_FORMATS", "affine_transform", "clip_to_image_size", "compute_ciou",
    "compute_iou", "convert_format", "crop", "decode_deltas_to_boxes",
    "encode_box_to_deltas", "pad",
]
