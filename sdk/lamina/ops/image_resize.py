"""Resampling ops of ``keras.ops.image``: ``resize`` and ``scale_and_translate``.

Every interpolation except ``"nearest"`` is separable and linear in the image: along each
resized axis the output is the image contracted with a fixed ``(in, out)`` weight matrix
(``tensordot``), so gradients come from the existing ops. The weights follow the
half-pixel convention of Keras's JAX backend (``jax.image``): output pixel ``o`` samples
input position ``(o + 0.5) / scale - translation / scale - 0.5``; kernel weights are
normalised to sum to one and samples outside ``[-0.5, in - 0.5]`` get weight 0. With
``antialias`` a downsampling kernel is widened by ``1 / scale``.
"""

from __future__ import annotations

import numpy as np

from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import cast, convert_to_tensor
from lamina.ops.linalg import tensordot
from lamina.ops.manipulation import getitem, moveaxis, pad, take
from lamina.ops.math import clip, round

__all__ = ["resize", "scale_and_translate"]

RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic", "area")
SCALE_AND_TRANSLATE_METHODS = ("linear", "bilinear", "trilinear", "cubic", "bicubic",
                               "tricubic", "lanczos3", "lanczos5")


def _triangle(x):
    return np.maximum(0.0, 1.0 - np.abs(x))


def _keys_cubic(x):
    # Keys' cubic convolution kernel with a = -0.5.
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


def _lanczos(radius):
    def kernel(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
            out = np.where(x > 1e-3, y / np.where(x != 0, np.pi ** 2 * x ** 2, 1.0), 1.0)
        return np.where(x > radius, 0.0, out)

    return kernel


_KERNELS = {"linear": _triangle, "bilinear": _triangle, "trilinear": _triangle,
            "cubic": _keys_cubic, "bicubic": _keys_cubic, "tricubic": _keys_cubic,
            "lanczos3": _lanczos(3.0), "lanczos5": _lanczos(5.0), "area": "area"}


def _weight_matrix(in_size, out_size, scale, translation, method, antialias, dtype):
    """The ``(in_size, out_size)`` resampling weights of one axis."""
    dtype = np.dtype(dtype)
    scale, translation = dtype.type(scale), dtype.type(translation)
    inv_scale = dtype.type(1.0) / scale
    out_pos = np.arange(out_size, dtype=dtype)
    in_pos = np.arange(in_size, dtype=dtype)
    sample = (out_pos + dtype.type(0.5)) * inv_scale - translation * inv_scale - dtype.type(0.5)
    kernel = _KERNELS[method]
    if kernel == "area":
        # Overlap of each output box [o, o + 1) / scale with each input pixel [i, i + 1).
        left = out_pos * inv_scale - translation * inv_scale
        right = left + inv_scale
        weights = np.maximum(0.0, np.minimum(right[None, :], in_pos[:, None] + 1)
                             - np.maximum(left[None, :], in_pos[:, None]))
    else:
        kernel_scale = max(float(inv_scale), 1.0) if antialias else 1.0
        weights = kernel(np.abs(sample[None, :] - in_pos[:, None]) / dtype.type(kernel_scale))
    weights = weights.astype(dtype)
    total = weights.sum(axis=0, keepdims=True)
    weights = np.where(np.abs(total) > 1000.0 * np.finfo(np.float32).eps,
                       weights / np.where(total != 0, total, 1), 0.0)
    inside = (sample >= -0.5) & (sample <= in_size - 0.5)
    return np.where(inside[None, :], weights, 0.0).astype(dtype)


def _resample(x, axes, sizes, scales, translations, method, antialias):
    """Contract each of ``axes`` of ``x`` with its weight matrix (float ``x``)."""
    dtype = np.asarray(_data(x)).dtype
    ndim = len(shape(x))
    for axis, size, s, t in zip(axes, sizes, scales, translations):
        axis = axis % ndim
        w = _weight_matrix(shape(x)[axis], size, s, t, method, antialias, dtype)
        x = moveaxis(tensordot(x, w, axes=([axis], [0])), -1, axis)
    return x


def _nearest(x, axes, sizes):
    for axis, n in zip(axes, sizes):
        m = shape(x)[axis]
        # float32 positions, as Keras's JAX backend computes them.
        pos = (np.arange(n, dtype=np.float32) + np.float32(0.5)) * np.float32(m) / np.float32(n)
        x = take(x, np.minimum(np.floor(pos).astype(np.int64), m - 1), axis=axis)
    return x


def _back_to_dtype(out, dtype):
    """Keras rounds and saturates results computed in float back to an int dtype."""
    if np.asarray(_data(out)).dtype == dtype:
        return out
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        out = clip(round(out), info.min, info.max)
    return cast(out, dtype.name)


def _aspect_ratio(images, size, crop, pad_ratio, fill_value, h_axis, w_axis):
    height, width = shape(images)[h_axis], shape(images)[w_axis]
    target_height, target_width = size
    ndim = len(shape(images))
    if crop:
        crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
        crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
        top = int(float(height - crop_height) / 2)
        left = int(float(width - crop_width) / 2)
        index = [slice(None)] * ndim
        index[h_axis % ndim] = slice(top, top + crop_height)
        index[w_axis % ndim] = slice(left, left + crop_width)
        return getitem(images, tuple(index))
    if pad_ratio:
        pad_height = max(height, int(float(width * target_height) / target_width))
        pad_width = max(width, int(float(height * target_width) / target_height))
        top = int(float(pad_height - height) / 2)
        left = int(float(pad_width - width) / 2)
        # As Keras: the same amount on both sides, rows first (so at most one axis).
        widths = [(0, 0)] * ndim
        if top > 0:
            widths[h_axis % ndim] = (top, top)
        elif left > 0:
            widths[w_axis % ndim] = (left, left)
        else:
            return images
        return pad(images, widths, constant_values=fill_value)
    return images


def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    """Resize images to ``size = (height, width)``.

    Args:
        images: ``(height, width, channels)`` or a batch ``(batch, height, width,
            channels)`` (channels first with ``data_format="channels_first"``).
        size: the output ``(height, width)``.
        interpolation: ``"bilinear"``, ``"nearest"``, ``"bicubic"`` (Keys, a=-0.5),
            ``"lanczos3"``, ``"lanczos5"`` or ``"area"`` (box average).
        antialias: widen the kernel when downsampling (no effect on ``"nearest"``).
        crop_to_aspect_ratio: first crop the largest centred window of the target's
            aspect ratio.
        pad_to_aspect_ratio: first pad the short side evenly with ``fill_value``.
        fill_mode: only ``"constant"``.
        fill_value: the padding value.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        The resized images, of the input's dtype (integers are rounded and saturated).

    Raises:
        ValueError: for a bad ``size``, rank, ``interpolation`` or ``fill_mode``, or
            both aspect-ratio options.

    Example:
        >>> import numpy as np
        >>> from lamina.ops import image
        >>> image.resize(np.ones((2, 4, 4, 3), "float32"), (2, 2)).shape
        (2, 2, 2, 3)
    """
    from lamina.ops.image import _format

    if len(size) != 2:
        raise ValueError(f"Expected `size` to be a tuple of 2 integers. Received: size={size}")
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"`size` must have positive height and width. Received: size={size}")
    images = convert_to_tensor(images)
    if len(shape(images)) not in (3, 4):
        raise ValueError("Invalid images rank: expected rank 3 (single image) or rank 4 "
                         f"(batch of images). Received input with shape: "
                         f"images.shape={shape(images)}")
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError("Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` "
                         "can be `True`.")
    data_format = _format(data_format)
    if interpolation not in RESIZE_INTERPOLATIONS:
        raise ValueError("Invalid value for argument `interpolation`. Expected of one "
                         f"{RESIZE_INTERPOLATIONS}. Received: interpolation={interpolation}")
    if fill_mode != "constant":
        raise ValueError("Invalid value for argument `fill_mode`. Only `'constant'` "
                         f"is supported. Received: fill_mode={fill_mode}")
    size = (int(size[0]), int(size[1]))
    h_axis, w_axis = (-3, -2) if data_format == "channels_last" else (-2, -1)
    images = _aspect_ratio(images, size, crop_to_aspect_ratio, pad_to_aspect_ratio,
                           fill_value, h_axis, w_axis)
    ndim = len(shape(images))
    axes, sizes = [], []
    for axis, n in zip((h_axis % ndim, w_axis % ndim), size):
        if shape(images)[axis] != n:
            axes.append(axis)
            sizes.append(n)
    if interpolation == "nearest":
        return _nearest(images, axes, sizes)
    dtype = np.asarray(_data(images)).dtype
    x = images if dtype.kind == "f" else cast(images, "float32")
    scales = [n / shape(images)[a] for a, n in zip(axes, sizes)]
    out = _resample(x, axes, sizes, scales, [0.0] * len(axes), interpolation, antialias)
    return _back_to_dtype(out, dtype)


def scale_and_translate(images, output_shape, scale, translation, spatial_dims, method,
                        antialias=True):
    """Resample ``images`` under a per-axis scale and translation (``jax.image``'s op).

    Output position ``y`` along spatial axis ``k`` samples the input at
    ``(y + 0.5 - translation[k]) / scale[k] - 0.5`` (half-pixel centres).

    Args:
        images: an array of any rank.
        output_shape: the full output shape (same rank as ``images``).
        scale: one scale per entry of ``spatial_dims``.
        translation: one translation per entry of ``spatial_dims``.
        spatial_dims: the axes to resample.
        method: ``"linear"``/``"bilinear"``/``"trilinear"``, ``"cubic"``/``"bicubic"``/
            ``"tricubic"``, ``"lanczos3"`` or ``"lanczos5"``.
        antialias: widen the kernel when downsampling.

    Returns:
        The resampled images (float).

    Raises:
        ValueError: for an unknown ``method`` or an ``output_shape`` of the wrong rank.
    """
    if method not in SCALE_AND_TRANSLATE_METHODS:
        raise ValueError("Invalid value for argument `method`. Expected of one "
                         f"{set(SCALE_AND_TRANSLATE_METHODS)}. Received: method={method}")
    images = convert_to_tensor(images)
    output_shape = tuple(int(s) for s in output_shape)
    if len(output_shape) != len(shape(images)):
        raise ValueError("`output_shape` must have length equal to the rank of `images`. "
                         f"Received: output_shape={output_shape}, "
                         f"images.shape={shape(images)}")
    scale = np.asarray(_data(scale), dtype=np.float64).reshape(-1)
    translation = np.asarray(_data(translation), dtype=np.float64).reshape(-1)
    spatial_dims = [int(d) for d in spatial_dims]
    dtype = np.asarray(_data(images)).dtype
    x = images if dtype.kind == "f" else cast(images, "float32")
    return _resample(x, spatial_dims, [output_shape[d] for d in spatial_dims], scale.tolist(),
                     translation.tolist(), method, antialias)


export(globals(), __all__)
