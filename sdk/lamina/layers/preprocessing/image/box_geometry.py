"""Bounding-box arithmetic of the geometric image layers (numpy, batched ``(B, N, 4)``).

Each geometric layer converts the boxes of a dict call to a working format, moves them
as its transformation moves the pixels, clips them to the output image (boxes left
without area get label ``-1``) and converts them back to ``bounding_box_format``; the
steps and their order follow Keras 3.15.1 so that results agree to float32 rounding.
"""

from __future__ import annotations

import numpy as np

from lamina.utils.bounding_boxes._arrays import as_array
from lamina.utils.bounding_boxes.converters import (
    affine_transform,
    clip_to_image_size,
    convert_format,
)

__all__ = ["affine_transform", "clip_to_image_size", "convert_format", "crop_window", "densify",
           "flip_relative", "image_size", "map_corners", "resize_boxes", "shear_relative",
           "undensify", "window_to_size"]


def image_size(shape, data_format):
    """``(height, width)`` of an image or batch shape (channels per ``data_format``)."""
    if data_format == "channels_first":
        return int(shape[-2]), int(shape[-1])
    return int(shape[-3]), int(shape[-2])


def densify(bounding_boxes, batched):
    """A dict call's ``{"boxes", "labels"}`` as arrays with a batch axis: boxes float32
    ``(B, N, 4)``, labels as given (other keys are kept)."""
    if not isinstance(bounding_boxes, dict) or "boxes" not in bounding_boxes:
        raise ValueError("`bounding_boxes` must be a dict with a 'boxes' key (and usually "
                         f"'labels'). Received: bounding_boxes={bounding_boxes!r}")
    result = dict(bounding_boxes)
    boxes = as_array(bounding_boxes["boxes"], np.float32)
    if boxes.ndim != (3 if batched else 2) or boxes.shape[-1] != 4:
        expected = "(batch, num_boxes, 4)" if batched else "(num_boxes, 4)"
        raise ValueError(f"`bounding_boxes['boxes']` must have shape {expected} for "
                         f"{'batched' if batched else 'unbatched'} images. Received: "
                         f"boxes.shape={boxes.shape}")
    result["boxes"] = boxes if batched else boxes[None]
    if "labels" in bounding_boxes:
        labels = as_array(bounding_boxes["labels"])
        result["labels"] = labels if batched else labels[None]
    return result


def undensify(bounding_boxes):
    """Drop the batch axis :func:`densify` added to an unbatched call's boxes."""
    result = dict(bounding_boxes)
    for key in ("boxes", "labels"):
        if key in result:
            result[key] = np.asarray(result[key])[0]
    return result


def flip_relative(boxes, flips, horizontal, vertical):
    """Mirror ``rel_xyxy`` boxes where ``flips`` (broadcast to ``(B, 1, 1)``) is true."""
    flips = np.asarray(flips).reshape(-1, 1, 1)
    x1, y1, x2, y2 = np.split(boxes, 4, axis=-1)
    if horizontal:
        x1, x2 = np.where(flips, 1 - x2, x1), np.where(flips, 1 - x1, x2)
    if vertical:
        y1, y2 = np.where(flips, 1 - y2, y1), np.where(flips, 1 - y1, y2)
    return np.concatenate([x1, y1, x2, y2], axis=-1)


def shear_relative(boxes, shear_factor):
    """Keras's shear of ``rel_xyxy`` boxes: each edge moves by the shear factor times the
    other coordinate of the corner that bounds it (x first, then y from the new x)."""
    shear = np.asarray(shear_factor, np.float32).reshape(-1, 2)
    sx, sy = shear[:, 0:1], shear[:, 1:2]
    x1, y1, x2, y2 = (c[..., 0] for c in np.split(boxes, 4, axis=-1))
    x1 = np.where(sx < 0, x1 - sx * y1, x1 - sx * y2)
    x2 = np.where(sx < 0, x2 - sx * y2, x2 - sx * y1)
    y1 = np.where(sy > 0, y1 - sy * x2, y1 - sy * x1)
    y2 = np.where(sy > 0, y2 - sy * x1, y2 - sy * x2)
    return np.stack([x1, y1, x2, y2], axis=-1)


def crop_window(boxes, top, left, bottom, right):
    """Clip ``xyxy`` boxes to the window ``[left, right] x [top, bottom]`` (scalars or
    ``(B, 1, 1)``) and express them in its frame."""
    x1, y1, x2, y2 = np.split(boxes, 4, axis=-1)
    return np.concatenate([np.clip(x1, left, right) - left, np.clip(y1, top, bottom) - top,
                           np.clip(x2, left, right) - left, np.clip(y2, top, bottom) - top],
                          axis=-1)


def window_to_size(boxes, crop_height, crop_width, height, width):
    """Scale ``xyxy`` boxes in a ``crop_height x crop_width`` window to ``height x width``
    (through relative coordinates, as Keras's smart-resize branch does)."""
    relative = convert_format(boxes, "xyxy", "rel_xyxy", height=crop_height, width=crop_width)
    return convert_format(relative, "rel_xyxy", "xyxy", height=height, width=width)


def resize_boxes(boxes, input_height, input_width, height, width, crop_to_aspect_ratio,
                 pad_to_aspect_ratio):
    """Map ``xyxy`` boxes through a resize to ``(height, width)``: a stretch, or a
    uniform scale with the centred padding/cropping of the aspect-ratio modes."""
    dtype = boxes.dtype
    in_h, in_w = np.asarray(input_height, dtype), np.asarray(input_width, dtype)
    x1, y1, x2, y2 = (boxes[..., k] for k in range(4))
    if pad_to_aspect_ratio:
        ratio = np.minimum(np.asarray(height / in_h, dtype), np.asarray(width / in_w, dtype))
        dy, dx = (height - in_h * ratio) // 2, (width - in_w * ratio) // 2
        return np.stack([x1 * ratio + dx, y1 * ratio + dy, x2 * ratio + dx, y2 * ratio + dy],
                        axis=-1)
    if crop_to_aspect_ratio:
        source, target = in_w / in_h, width / height
        new_w = height * source if source > target else width
        new_h = height if source > target else width / source
        sx, sy = new_w / in_w, new_h / in_h
        left, top = (new_w - width) // 2, (new_h - height) // 2
        return np.stack([x1 * sx - left, y1 * sy - top, x2 * sx - left, y2 * sy - top],
                        axis=-1).astype(dtype)
    sy, sx = np.asarray(height / in_h, dtype), np.asarray(width / in_w, dtype)
    return np.stack([x1 * sx, y1 * sy, x2 * sx, y2 * sy], axis=-1)


def map_corners(boxes, matrices):
    """The ``xyxy`` boxes enclosing the four corners of each box mapped by the
    projective ``(B, 3, 3)`` ``matrices`` (input pixel -> output pixel)."""
    x0, y0, x1, y1 = np.split(boxes, 4, axis=-1)
    xs, ys = [], []
    for x, y in ((x0, y0), (x1, y1), (x0, y1), (x1, y0)):
        points = np.concatenate([x, y, np.ones_like(x)], axis=-1)  # (B, N, 3)
        moved = np.einsum("bij,bnj->bni", matrices, points)
        xs.append(moved[..., 0] / moved[..., 2])
        ys.append(moved[..., 1] / moved[..., 2])
    xs, ys = np.stack(xs, axis=-1), np.stack(ys, axis=-1)
    return np.stack([xs.min(-1), ys.min(-1), xs.max(-1), ys.max(-1)], axis=-1)
