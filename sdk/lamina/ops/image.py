"""Image operations (``keras.ops.image``): colour conversion, crops and pads; resampling
(:mod:`lamina.ops.image_resize`), warps (:mod:`lamina.ops.image_warp`) and filters
(:mod:`lamina.ops.image_filter`) live in their own modules and are re-exported here.

Images are ``(height, width, channels)`` or batched ``(batch, height, width, channels)``
(channels first with ``data_format="channels_first"``; ``image_data_format()`` by default).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.config import image_data_format
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import convert_to_tensor
from lamina.ops.linalg import tensordot
from lamina.ops.manipulation import expand_dims, getitem, pad, split, squeeze, stack
from lamina.ops.math import add

__all__ = ["crop_images", "hsv_to_rgb", "pad_images", "rgb_to_grayscale", "rgb_to_hsv",
           "sobel_edges"]


def _format(data_format):
    data_format = image_data_format() if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("data_format must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    return data_format


def _rank_3_or_4(images):
    if len(shape(images)) not in (3, 4):
        raise ValueError("Invalid images rank: expected rank 3 (single image) or rank 4 "
                         f"(batch of images). Received: images.shape={shape(images)}")


def rgb_to_grayscale(images, data_format=None):
    """Luma ``0.2989 R + 0.5870 G + 0.1140 B`` as one channel (grayscale passes through).

    Raises:
        ValueError: for a rank other than 3/4 or a channel count other than 1/3.
    """
    data_format = _format(data_format)
    images = convert_to_tensor(images)
    _rank_3_or_4(images)
    axis = -1 if data_format == "channels_last" else -3
    channels = shape(images)[axis]
    if channels not in (1, 3):
        raise ValueError("Invalid channel size: expected 3 (RGB) or 1 (Grayscale). "
                         f"Received input with shape: images.shape={shape(images)}")
    if channels == 1:
        return images
    d = _data(images)
    dtype = d.dtype if d.dtype.kind == "f" else np.dtype("float32")
    weights = np.array([0.2989, 0.5870, 0.1140], dtype=dtype)
    x = images if d.dtype.kind == "f" else convert_to_tensor(d, dtype=dtype)
    out = expand_dims(tensordot(x, weights, axes=([axis % x.ndim], [0])), axis)
    return out if d.dtype == dtype else convert_to_tensor(np.asarray(_data(out)).astype(d.dtype))


def _planes(images, data_format):
    from lamina.ops.manipulation import split, squeeze

    data_format = _format(data_format)
    images = convert_to_tensor(images)
    _rank_3_or_4(images)
    if np.asarray(_data(images)).dtype.kind != "f":
        raise ValueError("Invalid images dtype: expected float dtype. "
                         f"Received: images.dtype={np.asarray(_data(images)).dtype.name}")
    axis = -1 if data_format == "channels_last" else -3
    return images, axis, [squeeze(p, axis=axis) for p in split(images, 3, axis=axis)]


def rgb_to_hsv(images, data_format=None):
    """RGB in ``[0, 1]`` to hue, saturation, value in ``[0, 1]`` (TF's/Keras's formulas).

    Raises:
        ValueError: for a rank other than 3/4 or a non-float dtype.
    """
    from lamina.ops.math import divide, maximum, minimum, multiply, subtract, where

    images, axis, _ = _planes(images, data_format)
    d = np.asarray(_data(images))
    images = where(np.abs(d) < np.finfo(d.dtype).eps, 0.0, images)
    # Near-zero channels count as 0, as in Keras, before the planes are split again.
    r, g, b = (squeeze(p, axis=axis) for p in split(images, 3, axis=axis))
    value = maximum(maximum(r, g), b)
    range_ = subtract(value, minimum(minimum(r, g), b))
    v, rg = np.asarray(_data(value)), np.asarray(_data(range_))
    saturation = where(v > 0, divide(range_, where(v > 0, value, 1.0)), 0.0)
    norm = divide(1.0 / 6.0, where(rg > 0, range_, 1.0))
    hue = where(v == _data(g), add(multiply(norm, subtract(b, r)), 2.0 / 6.0),
                add(multiply(norm, subtract(r, g)), 4.0 / 6.0))
    hue = where(v == _data(r), multiply(norm, subtract(g, b)), hue)
    wrap = (np.asarray(_data(hue)) < 0.0).astype(d.dtype)
    hue = add(where(rg > 0, hue, 0.0), wrap)
    return stack([hue, saturation, value], axis=axis)


def hsv_to_rgb(images, data_format=None):
    """Hue, saturation, value in ``[0, 1]`` to RGB (TF's/Keras's formulas).

    Raises:
        ValueError: for a rank other than 3/4 or a non-float dtype.
    """
    from lamina.ops.math import abs, clip, mod, multiply, subtract

    _, axis, (hue, saturation, value) = _planes(images, data_format)
    dh = multiply(mod(hue, 1.0), 6.0)
    dr = clip(subtract(abs(subtract(dh, 3.0)), 1.0), 0.0, 1.0)
    dg = clip(subtract(2.0, abs(subtract(dh, 2.0))), 0.0, 1.0)
    db = clip(subtract(2.0, abs(subtract(dh, 4.0))), 0.0, 1.0)
    one_minus_s = subtract(1.0, saturation)
    planes = [multiply(value, add(one_minus_s, multiply(saturation, c))) for c in (dr, dg, db)]
    return stack(planes, axis=axis)


def sobel_edges(images, data_format=None):
    """Sobel gradients of each channel (zero padding, "same" size), stacked last as
    ``(dy, dx)``: ``(batch, height, width, channels, 2)`` (or ``(batch, channels, height,
    width, 2)`` channels first).
    """
    from lamina.backend.conv_ops import depthwise_conv

    data_format = _format(data_format)
    images = convert_to_tensor(images)
    if len(shape(images)) != 4:
        raise ValueError(f"Expected a batch of images (rank 4). Received: "
                         f"images.shape={shape(images)}")
    axis = -1 if data_format == "channels_last" else 1
    c = shape(images)[axis]
    dtype = np.asarray(_data(images)).dtype
    sx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=dtype)
    edges = [depthwise_conv(images, np.tile(k[:, :, None, None], (1, 1, c, 1)), padding="same",
                            data_format=data_format) for k in (sx.T, sx)]
    return stack(edges, axis=-1)


def _two_of_three(a, b, target, names):
    if [a, b, target].count(None) != 1:
        raise ValueError(f"Must specify exactly two of {', '.join(names)}. Received: "
                         f"{names[0]}={a}, {names[1]}={b}, {names[2]}={target}")
    for name, value in zip(names, (a, b, target)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")


def _hw(images, data_format):
    s = shape(images)
    return (s[-3], s[-2]) if data_format == "channels_last" else (s[-2], s[-1])


def pad_images(images, top_padding=None, left_padding=None, bottom_padding=None,
               right_padding=None, target_height=None, target_width=None, data_format=None):
    """Zero-pad images to a size: give two of top/bottom/target_height and two of
    left/right/target_width.

    Raises:
        ValueError: on a wrong rank, not exactly two of a triple, or a negative padding.
    """
    data_format = _format(data_format)
    images = convert_to_tensor(images)
    _rank_3_or_4(images)
    _two_of_three(top_padding, bottom_padding, target_height,
                  ("top_padding", "bottom_padding", "target_height"))
    _two_of_three(left_padding, right_padding, target_width,
                  ("left_padding", "right_padding", "target_width"))
    height, width = _hw(images, data_format)
    top = target_height - bottom_padding - height if top_padding is None else top_padding
    bottom = target_height - top - height if bottom_padding is None else bottom_padding
    left = target_width - right_padding - width if left_padding is None else left_padding
    right = target_width - left - width if right_padding is None else right_padding
    for name, value in (("top_padding", top), ("left_padding", left),
                        ("right_padding", right), ("bottom_padding", bottom)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
    widths = [(top, bottom), (left, right)]
    widths = widths + [(0, 0)] if data_format == "channels_last" else [(0, 0)] + widths
    if len(shape(images)) == 4:
        widths = [(0, 0)] + widths
    return pad(images, widths)


def crop_images(images, top_cropping=None, left_cropping=None, bottom_cropping=None,
                right_cropping=None, target_height=None, target_width=None, data_format=None):
    """Crop images: give two of top/bottom/target_height and two of
    left/right/target_width.

    Raises:
        ValueError: on a wrong rank, not exactly two of a triple, or a crop larger than
            the image.
    """
    data_format = _format(data_format)
    images = convert_to_tensor(images)
    _rank_3_or_4(images)
    _two_of_three(top_cropping, bottom_cropping, target_height,
                  ("top_cropping", "bottom_cropping", "target_height"))
    _two_of_three(left_cropping, right_cropping, target_width,
                  ("left_cropping", "right_cropping", "target_width"))
    height, width = _hw(images, data_format)
    top = height - bottom_cropping - target_height if top_cropping is None else top_cropping
    if target_height is None:
        target_height = height - top - bottom_cropping
    left = width - right_cropping - target_width if left_cropping is None else left_cropping
    if target_width is None:
        target_width = width - left - right_cropping
    for name, value in (("top_cropping", top), ("left_cropping", left),
                        ("target_height", target_height), ("target_width", target_width)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
    if top + target_height > height or left + target_width > width:
        raise ValueError("The crop exceeds the image. Received: "
                         f"images.shape={shape(images)}, top_cropping={top}, "
                         f"left_cropping={left}, target_height={target_height}, "
                         f"target_width={target_width}")
    rows, cols = slice(top, top + target_height), slice(left, left + target_width)
    index = (..., rows, cols, slice(None)) if data_format == "channels_last" else (
        ..., rows, cols)
    return getitem(images, index)


export(globals(), __all__)

# Imported after the wrappers above: these modules import ``_format`` from here lazily.
from lamina.ops.image_filter import (  # noqa: E402
    extract_patches,
    extract_patches_3d,
    gaussian_blur,
    ssim,
)
from lamina.ops.image_resize import resize, scale_and_translate  # noqa: E402
from lamina.ops.image_warp import (  # noqa: E402
    affine_transform,
    elastic_transform,
    map_coordinates,
    perspective_transform,
)

__all__ += ["affine_transform", "elastic_transform", "extract_patches", "extract_patches_3d",
            "gaussian_blur", "map_coordinates", "perspective_transform", "resize",
            "scale_and_translate", "ssim"]
