"""Box format conversion and geometry, as ``keras.utils.bounding_boxes`` (Keras 3.15.1)."""

from __future__ import annotations

import math

import numpy as np

from lamina.backend.config import epsilon
from lamina.utils.bounding_boxes._arrays import as_array, cat, split4

SUPPORTED_FORMATS = ("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw", "rel_xyxy",
                     "rel_yxyx", "rel_xywh", "rel_center_xywh")


def _to_xyxy(fmt, boxes, height, width):
    a, b, c, d = split4(boxes)
    if fmt == "xyxy":
        return boxes
    if fmt == "yxyx":
        return cat([b, a, d, c])
    if fmt == "xywh":
        return cat([a, b, a + c, b + d])
    if fmt == "center_xywh":
        return cat([a - c / 2.0, b - d / 2.0, a + c / 2.0, b + d / 2.0])
    if fmt == "center_yxhw":
        return cat([b - d / 2.0, a - c / 2.0, b + d / 2.0, a + c / 2.0])
    if fmt == "rel_xyxy":
        return cat([a * width, b * height, c * width, d * height])
    if fmt == "rel_yxyx":
        return cat([b * width, a * height, d * width, c * height])
    if fmt == "rel_xywh":
        return cat([a * width, b * height, (a + c) * width, (b + d) * height])
    # rel_center_xywh
    return cat([(a - c / 2.0) * width, (b - d / 2.0) * height,
                (a + c / 2.0) * width, (b + d / 2.0) * height])


def _from_xyxy(fmt, boxes, height, width):
    x1, y1, x2, y2 = split4(boxes)
    w, h = x2 - x1, y2 - y1
    if fmt == "xyxy":
        return boxes
    if fmt == "yxyx":
        return cat([y1, x1, y2, x2])
    if fmt == "xywh":
        return cat([x1, y1, w, h])
    if fmt == "center_xywh":
        return cat([x1 + w / 2.0, y1 + h / 2.0, w, h])
    if fmt == "center_yxhw":
        return cat([y1 + h / 2.0, x1 + w / 2.0, h, w])
    if fmt == "rel_xyxy":
        return cat([x1 / width, y1 / height, x2 / width, y2 / height])
    if fmt == "rel_yxyx":
        return cat([y1 / height, x1 / width, y2 / height, x2 / width])
    if fmt == "rel_xywh":
        return cat([x1 / width, y1 / height, w / width, h / height])
    # rel_center_xywh
    return cat([(x1 + w / 2.0) / width, (y1 + h / 2.0) / height, w / width, h / height])


def convert_format(boxes, source, target, height=None, width=None, dtype="float32"):
    """Convert boxes from one format to another.

    Args:
        boxes: array of shape ``(..., 4)``, or a dict whose ``"boxes"`` is converted
            (a new dict is returned; the other keys are kept).
        source: the boxes' format (case-insensitive), one of ``SUPPORTED_FORMATS``.
        target: the wanted format.
        height: image height, required when either format is relative.
        width: image width, required when either format is relative.
        dtype: dtype of the result.

    Returns:
        The converted boxes (numpy), or the dict with converted ``"boxes"``.

    Raises:
        ValueError: for a last dimension other than 4, an unknown format, or a relative
            format without ``height``/``width``.

    Example:

    >>> convert_format([[10, 20, 30, 40]], source="xyxy", target="xywh")
    array([[10., 20., 20., 20.]], dtype=float32)
    """
    if isinstance(boxes, dict):
        result = dict(boxes)
        result["boxes"] = convert_format(boxes["boxes"], source, target, height=height,
                                         width=width, dtype=dtype)
        return result
    boxes = as_array(boxes)
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise ValueError("`boxes` must be a tensor with the last dimension of 4. "
                         f"Received: boxes.shape={boxes.shape}")
    source_l, target_l = str(source).lower(), str(target).lower()
    if source_l not in SUPPORTED_FORMATS or target_l not in SUPPORTED_FORMATS:
        raise ValueError(f"Invalid source or target format. Supported formats: "
                         f"{SUPPORTED_FORMATS}. Received: source={source!r}, target={target!r}")
    if (source_l.startswith("rel_") or target_l.startswith("rel_")) and (
            width is None or height is None):
        raise ValueError("convert_format() must receive `height` and `width` transforming "
                         f"between relative and absolute formats. Received: source={source!r}, "
                         f"target={target!r}, height={height}, width={width}")
    boxes = boxes.astype(dtype)
    if source_l == target_l:
        return boxes
    width = None if width is None else np.asarray(width, dtype=dtype)
    height = None if height is None else np.asarray(height, dtype=dtype)
    if source_l.startswith("rel_") and target_l.startswith("rel_"):
        source_l, target_l = source_l[4:], target_l[4:]
    return _from_xyxy(target_l, _to_xyxy(source_l, boxes, height, width), height, width)


def _area(boxes):
    x1, y1, x2, y2 = split4(boxes)
    return (x2 - x1) * (y2 - y1)


def clip_to_image_size(bounding_boxes, height=None, width=None, bounding_box_format="xyxy"):
    """Clip boxes to the image; boxes left with no area get label ``-1``.

    Args:
        bounding_boxes: dict with ``"boxes"`` ``(N, 4)`` or ``(batch, N, 4)`` and
            optionally ``"labels"`` ``(N,)`` or ``(batch, N)``.
        height: image height (required for ``"xyxy"``).
        width: image width (required for ``"xyxy"``).
        bounding_box_format: ``"xyxy"`` or ``"rel_xyxy"``.

    Returns:
        A new dict with clipped ``"boxes"`` (and updated ``"labels"``).

    Raises:
        NotImplementedError: for another format (as Keras).
        ValueError: for ``"xyxy"`` without ``height``/``width``.
    """
    if bounding_box_format not in ("xyxy", "rel_xyxy"):
        raise NotImplementedError("clip_to_image_size supports 'xyxy' and 'rel_xyxy' only. "
                                  f"Received: bounding_box_format={bounding_box_format!r}")
    if bounding_box_format == "xyxy" and (height is None or width is None):
        raise ValueError("`height` and `width` must be set if `format='xyxy'`. "
                         f"Received: height={height}, width={width}")
    boxes = as_array(bounding_boxes["boxes"])
    labels = bounding_boxes.get("labels", None)
    if bounding_box_format == "xyxy":
        high_x = np.asarray(width, dtype=boxes.dtype)
        high_y = np.asarray(height, dtype=boxes.dtype)
    else:
        high_x = high_y = 1.0
    x1, y1, x2, y2 = split4(boxes)
    boxes = cat([np.clip(x1, 0, high_x), np.clip(y1, 0, high_y),
                 np.clip(x2, 0, high_x), np.clip(y2, 0, high_y)]).astype(boxes.dtype)
    result = dict(bounding_boxes)
    result["boxes"] = boxes
    if labels is not None:
        areas = np.squeeze(_area(boxes), axis=-1)
        result["labels"] = np.where(areas > 0, as_array(labels), -1)
    return result


def _inverse_affine_matrix(center_x, center_y, angle, translate_x, translate_y, scale,
                           shear_x, shear_y, height, width):
    batch_size = angle.shape[0]
    dtype = angle.dtype
    angle, shear_x, shear_y = -angle, -shear_x, -shear_y
    cx = np.multiply(center_x, width - 1)
    cy = np.multiply(center_y, height - 1)
    rot = angle * (1.0 / 180.0 * math.pi)
    tx = np.multiply(-translate_x, width - 1)
    ty = np.multiply(-translate_y, height - 1)
    sx = shear_x * (1.0 / 180.0 * math.pi)
    sy = shear_y * (1.0 / 180.0 * math.pi)
    cos_sy, tan_sx = np.cos(sy), np.tan(sx)
    a = np.cos(rot - sy) / cos_sy
    b = a * tan_sx + np.sin(rot)
    c = -np.sin(rot - sy) / cos_sy
    d = np.cos(rot) - c * tan_sx
    a0, a1, b0, b1 = d * scale, -b * scale, -c * scale, a * scale
    a2 = cx - a0 * (cx + tx) - a1 * (cy + ty)
    b2 = cy - b0 * (cx + tx) - b1 * (cy + ty)
    parts = [a0, a1, a2, b0, b1, b2]
    parts = [np.broadcast_to(np.asarray(p, dtype), (batch_size,)) for p in parts]
    parts += [np.zeros(batch_size, dtype), np.zeros(batch_size, dtype),
              np.ones(batch_size, dtype)]
    return np.stack(parts, axis=-1).reshape(batch_size, 3, 3)


def affine_transform(boxes, angle, translate_x, translate_y, scale, shear_x, shear_y, height,
                     width, center_x=None, center_y=None, bounding_box_format="xyxy"):
    """Apply a batch of affine transforms (rotate, translate, scale, shear) to boxes.

    Each box's four corners are mapped by the inverse affine matrix (the one image
    layers use to sample), and the result is their enclosing ``xyxy`` box.

    Args:
        boxes: ``(batch, N, 4)`` boxes in ``xyxy``.
        angle: ``(batch,)`` rotation angles in degrees.
        translate_x: ``(batch,)`` horizontal translations (fractions of ``width``).
        translate_y: ``(batch,)`` vertical translations (fractions of ``height``).
        scale: ``(batch,)`` scale factors.
        shear_x: ``(batch,)`` shear angles in degrees along x.
        shear_y: ``(batch,)`` shear angles in degrees along y.
        height: image height.
        width: image width.
        center_x: transform centre as a fraction of the width (default 0.5).
        center_y: transform centre as a fraction of the height (default 0.5).
        bounding_box_format: must be ``"xyxy"``.

    Returns:
        The transformed ``(batch, N, 4)`` boxes.

    Raises:
        NotImplementedError: for a format other than ``"xyxy"`` (as Keras).
    """
    if bounding_box_format != "xyxy":
        raise NotImplementedError("affine_transform supports 'xyxy' only. "
                                  f"Received: bounding_box_format={bounding_box_format!r}")
    angle = as_array(angle)
    if not np.issubdtype(angle.dtype, np.floating):
        angle = angle.astype(np.float32)
    angle = angle.reshape(-1)
    as_f = [as_array(v, angle.dtype) for v in (translate_x, translate_y, scale, shear_x,
                                                shear_y)]
    matrix = _inverse_affine_matrix(0.5 if center_x is None else center_x,
                                    0.5 if center_y is None else center_y, angle, *as_f,
                                    height, width)
    boxes = as_array(boxes).astype(matrix.dtype)
    batch_size, n_boxes = boxes.shape[0], boxes.shape[1]
    p = boxes
    points = np.stack([p[..., 0], p[..., 1], p[..., 2], p[..., 1], p[..., 2], p[..., 3],
                       p[..., 0], p[..., 3]], axis=-1).reshape(batch_size, n_boxes, 4, 2)
    points = np.concatenate([points, np.ones((batch_size, n_boxes, 4, 1), points.dtype)], -1)
    moved = np.einsum("bnxy,byz->bnxz", points, np.transpose(matrix[:, :2, :], (0, 2, 1)))
    return np.concatenate([moved.min(axis=2), moved.max(axis=2)], axis=-1)


def crop(boxes, top, left, height, width, bounding_box_format="xyxy"):
    """Shift ``xyxy`` boxes into a crop's frame and clip them to its size.

    Args:
        boxes: ``(N, 4)`` or ``(batch, N, 4)`` boxes.
        top: the crop's top offset.
        left: the crop's left offset.
        height: the crop's height.
        width: the crop's width.
        bounding_box_format: must be ``"xyxy"``.

    Returns:
        The cropped boxes.

    Raises:
        NotImplementedError: for a format other than ``"xyxy"`` (as Keras).
    """
    if bounding_box_format != "xyxy":
        raise NotImplementedError("crop supports 'xyxy' only. "
                                  f"Received: bounding_box_format={bounding_box_format!r}")
    x1, y1, x2, y2 = split4(as_array(boxes))
    return cat([np.clip(x1 - left, 0, width), np.clip(y1 - top, 0, height),
                np.clip(x2 - left, 0, width), np.clip(y2 - top, 0, height)])


def pad(boxes, top, left, height=None, width=None, bounding_box_format="xyxy"):
    """Shift ``xyxy`` boxes by the padding added above and left of the image.

    Args:
        boxes: ``(N, 4)`` or ``(batch, N, 4)`` boxes.
        top: rows of padding added above.
        left: columns of padding added on the left.
        height: unused (as Keras).
        width: unused (as Keras).
        bounding_box_format: must be ``"xyxy"``.

    Returns:
        The shifted boxes.

    Raises:
        NotImplementedError: for a format other than ``"xyxy"`` (as Keras).
    """
    if bounding_box_format != "xyxy":
        raise NotImplementedError("pad supports 'xyxy' only. "
                                  f"Received: bounding_box_format={bounding_box_format!r}")
    x1, y1, x2, y2 = split4(as_array(boxes))
    return cat([x1 + left, y1 + top, x2 + left, y2 + top])


def _check_variance_and_format(variance, fmt, arg):
    if variance is not None:
        variance = np.asarray(getattr(variance, "data", variance), dtype=np.float32)
        if variance.shape[-1:] != (4,):
            raise ValueError(f"`variance` must be length 4, got {variance}. "
                             f"Received: variance={variance.tolist()}")
    if fmt not in ("center_xywh", "center_yxhw"):
        raise ValueError(f"`{arg}` should be one of 'center_xywh' or 'center_yxhw'. "
                         f"Received: {arg}={fmt!r}")
    return variance


def encode_box_to_deltas(anchors, boxes, anchor_format, box_format,
                         encoding_format="center_yxhw", variance=None, image_shape=None):
    """Deltas from anchors to boxes: centre offsets over anchor sizes, log size ratios.

    Args:
        anchors: ``(N, 4)`` anchors in ``anchor_format``.
        boxes: ``(N, 4)`` or ``(batch, N, 4)`` boxes in ``box_format``.
        anchor_format: the anchors' format.
        box_format: the boxes' format.
        encoding_format: ``"center_yxhw"`` or ``"center_xywh"``.
        variance: optional 4 factors the deltas are divided by.
        image_shape: ``(height, width, channels)``, needed for relative formats.

    Returns:
        The deltas, ordered as ``encoding_format``.

    Raises:
        ValueError: for a ``variance`` not of length 4 or an unknown encoding format.
    """
    variance = _check_variance_and_format(variance, encoding_format, "encoding_format")
    height, width = (None, None) if image_shape is None else tuple(image_shape)[:2]
    anchors = convert_format(anchors, anchor_format, encoding_format, height=height,
                             width=width)
    boxes = convert_format(boxes, box_format, encoding_format, height=height, width=width)
    eps = np.float32(epsilon())
    anchor_dims = np.maximum(anchors[..., 2:], eps)
    box_dims = np.maximum(boxes[..., 2:], eps)
    deltas = cat([(boxes[..., :2] - anchors[..., :2]) / anchor_dims,
                  np.log(box_dims / anchor_dims)])
    return deltas if variance is None else deltas / variance


def decode_deltas_to_boxes(anchors, boxes_delta, anchor_format, box_format,
                           encoded_format="center_yxhw", variance=None, image_shape=None):
    """Boxes from anchors and deltas (the inverse of :func:`encode_box_to_deltas`).

    Args:
        anchors: ``(N, 4)`` anchors, or a dict of them by feature level.
        boxes_delta: ``(N, 4)`` or ``(batch, N, 4)`` deltas (a dict like ``anchors``).
        anchor_format: the anchors' format.
        box_format: the format of the returned boxes.
        encoded_format: ``"center_yxhw"`` or ``"center_xywh"``: the deltas' order.
        variance: optional 4 factors the deltas are multiplied by.
        image_shape: ``(height, width, channels)``, needed for relative formats.

    Returns:
        The boxes in ``box_format`` (a dict by level when given dicts).

    Raises:
        ValueError: for a ``variance`` not of length 4 or an unknown encoded format.
    """
    variance = _check_variance_and_format(variance, encoded_format, "encoded_format")
    height, width = (None, None) if image_shape is None else tuple(image_shape)[:2]

    def decode(anchor, delta):
        anchor = convert_format(anchor, anchor_format, encoded_format, height=height,
                                width=width)
        delta = as_array(delta)
        if variance is not None:
            delta = delta * variance
        box = cat([delta[..., :2] * anchor[..., 2:] + anchor[..., :2],
                   np.exp(delta[..., 2:]) * anchor[..., 2:]])
        return convert_format(box, encoded_format, box_format, height=height, width=width)

    if isinstance(anchors, dict) and isinstance(boxes_delta, dict):
        return {level: decode(anchor, boxes_delta[level]) for level, anchor in anchors.items()}
    return decode(anchors, boxes_delta)
