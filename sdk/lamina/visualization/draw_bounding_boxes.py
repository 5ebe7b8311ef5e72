"""``draw_bounding_boxes``: boxes rasterised in numpy, labels written with Pillow.

Keras draws with OpenCV; Lamina draws the same rectangles (``line_thickness`` pixels
wide, centred on the box edges) with numpy and the labels with Pillow's ``ImageDraw``,
so pixels differ slightly from Keras's in the text and line ends.
"""

from __future__ import annotations

import numpy as np

from lamina.utils.bounding_boxes import convert_format
from lamina.visualization._common import check_batched, data_format_or_default, to_numpy


def _find_text_location(x, y, font_scale, thickness):
    font_height = int(font_scale * 12)
    if y - 8 - 2 * font_height > 0:
        return x, y - 8
    return x + 3, y + 2 * font_height + thickness + 3


def _draw_rectangle(image, x1, y1, x2, y2, color, thickness):
    height, width = image.shape[:2]
    lo, hi = -((thickness - 1) // 2), thickness // 2 + 1
    xa, xb = min(x1, x2), max(x1, x2)
    ya, yb = min(y1, y2), max(y1, y2)

    def fill(r0, r1, c0, c1):
        r0, r1 = max(r0, 0), min(r1, height)
        c0, c1 = max(c0, 0), min(c1, width)
        if r0 < r1 and c0 < c1:
            image[r0:r1, c0:c1] = color

    fill(ya + lo, ya + hi, xa + lo, xb + hi)  # top
    fill(yb + lo, yb + hi, xa + lo, xb + hi)  # bottom
    fill(ya + lo, yb + hi, xa + lo, xa + hi)  # left
    fill(ya + lo, yb + hi, xb + lo, xb + hi)  # right


def _draw_text(image, text, origin, color, font_scale):
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:  # pragma: no cover - Pillow is a dev dependency
        raise ImportError("Writing labels in `draw_bounding_boxes` requires Pillow. "
                          "Install it with `pip install Pillow`.") from None
    size = max(6, int(round(20 * font_scale)))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed-size bitmap font
        font = ImageFont.load_default()
    channels = image.shape[-1]
    pil = Image.fromarray(image if channels != 1 else image[..., 0])
    draw = ImageDraw.Draw(pil)
    fill = tuple(int(c) for c in color[:channels]) if channels != 1 else int(color[0])
    if isinstance(font, ImageFont.FreeTypeFont):
        draw.text(origin, text, fill=fill, font=font, anchor="ls")
    else:  # bitmap fonts have no anchors: place the top-left corner instead
        top = origin[1] - draw.textbbox((0, 0), text, font=font)[3]
        draw.text((origin[0], top), text, fill=fill, font=font)
    out = np.asarray(pil)
    image[...] = out if channels != 1 else out[..., None]


def draw_bounding_boxes(images, bounding_boxes, bounding_box_format, class_mapping=None,
                        color=(128, 128, 128), line_thickness=2, text_thickness=1,
                        font_scale=1.0, data_format=None):
    """Draw boxes (and class labels) on a batch of images.

    Args:
        images: ``(batch, height, width, channels)`` images (or channels first); floats
            in ``[0, 1]`` are scaled to ``[0, 255]``, others clipped to it.
        bounding_boxes: dict with ``"boxes"`` ``(batch, N, 4)``, ``"labels"``
            ``(batch, N)`` (``-1`` is skipped) and optionally ``"confidences"``.
        bounding_box_format: the boxes' format (see ``lamina.utils.bounding_boxes``).
        class_mapping: dict from class id to the label text to write.
        color: RGB colour of boxes and text.
        line_thickness: box line width in pixels.
        text_thickness: kept for Keras (Pillow's text has one weight); ``None`` means
            ``line_thickness``.
        font_scale: text size relative to OpenCV's default (about 20 px).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        uint8 numpy images with the boxes drawn, in the input's layout.

    Raises:
        ValueError: for non-4D images or a dict without ``boxes``/``labels``.
        TypeError: if ``bounding_boxes`` is not a dict.
        ImportError: if labels must be written and Pillow is not installed.
    """
    class_mapping = class_mapping or {}
    text_thickness = text_thickness or line_thickness
    data_format = data_format_or_default(data_format)
    images = check_batched(images)
    if not isinstance(bounding_boxes, dict):
        raise TypeError(f"`bounding_boxes` should be a dict. Received: bounding_boxes="
                        f"{bounding_boxes} of type {type(bounding_boxes)}")
    if "boxes" not in bounding_boxes or "labels" not in bounding_boxes:
        raise ValueError("`bounding_boxes` should be a dict containing 'boxes' and 'labels' "
                         f"keys. Received: bounding_boxes={bounding_boxes}")
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    height, width = images.shape[1], images.shape[2]
    converted = convert_format(dict(bounding_boxes), bounding_box_format, "xyxy", height, width)
    if images.dtype.kind == "f" and images.size > 0:
        images = np.clip(images, 0, 1) * 255 if images.max() <= 1.0 else np.clip(images, 0, 255)
    images = images.astype("uint8")
    boxes = to_numpy(converted["boxes"])
    labels = to_numpy(converted["labels"])
    confidences = (to_numpy(converted["confidences"]) if "confidences" in converted
                   else None)
    channels = images.shape[-1]
    paint = np.array((list(color) * channels)[:channels] if len(color) < channels
                     else list(color)[:channels], dtype="uint8")
    for i in range(images.shape[0]):
        for j in range(boxes[i].shape[0]):
            x1, y1, x2, y2 = (int(v) for v in boxes[i][j].astype("int32"))
            c = int(labels[i][j])
            if c == -1:
                continue
            _draw_rectangle(images[i], x1, y1, x2, y2, paint, int(line_thickness))
            if c in class_mapping:
                label = str(class_mapping[c])
                if confidences is not None:
                    label = f"{label} | {confidences[i][j]:.2f}"
                origin = _find_text_location(x1, y1, font_scale, text_thickness)
                _draw_text(images[i], label, origin, paint, font_scale)
    if data_format == "channels_first":
        images = images.transpose(0, 3, 1, 2)
    return images
