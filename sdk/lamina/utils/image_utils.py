"""Image file helpers (``keras.utils.load_img`` & co.) on Pillow, and ``smart_resize``.

Pillow is imported when a function needs it; without it they raise ``ImportError``
naming the package.
"""

from __future__ import annotations

import io
import pathlib
import warnings

import numpy as np

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("Image loading and saving need Pillow, which is not installed. "
                          "Install it with: pip install Pillow") from exc
    return Image


def _resampling(name):
    image = _pil()
    resampling = getattr(image, "Resampling", image)
    return getattr(resampling, name.upper())


def _data_format(data_format):
    from lamina.backend.config import image_data_format

    data_format = image_data_format() if data_format is None else str(data_format).lower()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of 'channels_first', "
                         f"'channels_last'. Received: data_format={data_format}")
    return data_format


def _floatx(dtype):
    if dtype is not None:
        return dtype
    from lamina.backend.config import floatx

    return floatx()


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """Convert a rank-3 array to a PIL image (``keras.utils.array_to_img``).

    Args:
        x: an array ``(height, width, channels)`` (channels 1, 3 or 4).
        data_format: ``"channels_last"`` or ``"channels_first"``; None uses
            ``image_data_format()``.
        scale: rescale the values to ``0..255`` (min to 0, max to 255).
        dtype: the dtype the array is converted to first; None is ``floatx()``.

    Returns:
        A ``PIL.Image.Image`` in mode ``RGBA``, ``RGB``, ``L`` or (values above 255 with
        one channel) ``I``.

    Raises:
        ImportError: without Pillow.
        ValueError: for an array that is not rank 3 or has another channel count.
    """
    data_format = _data_format(data_format)
    image = _pil()
    x = np.asarray(x, dtype=_floatx(dtype))
    if x.ndim != 3:
        raise ValueError("Expected image array to have rank 3 (single image). "
                         f"Got array with shape: {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        peak = np.max(x)
        if peak != 0:
            x /= peak
        x *= 255
    channels = x.shape[2]
    if channels in (3, 4):
        return image.fromarray(x.astype("uint8"), "RGBA" if channels == 4 else "RGB")
    if channels == 1:
        if np.max(x) > 255:
            return image.fromarray(x[:, :, 0].astype("int32"), "I")
        return image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {channels}")


def img_to_array(img, data_format=None, dtype=None):
    """Convert a PIL image (or anything ``np.asarray`` takes) to a rank-3 array
    (``keras.utils.img_to_array``).

    Args:
        img: the image.
        data_format: ``"channels_last"`` or ``"channels_first"``; None uses
            ``image_data_format()``.
        dtype: the result's dtype; None is ``floatx()``.

    Returns:
        ``(height, width, channels)`` (or channels first); a grayscale image gets one
        channel.

    Raises:
        ValueError: for an image that is not rank 2 or 3.
    """
    data_format = _data_format(data_format)
    x = np.asarray(img, dtype=_floatx(dtype))
    if x.ndim == 3:
        return x.transpose(2, 0, 1) if data_format == "channels_first" else x
    if x.ndim == 2:
        shape = (1, *x.shape) if data_format == "channels_first" else (*x.shape, 1)
        return x.reshape(shape)
    raise ValueError(f"Unsupported image shape: {x.shape}")


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Save an array as an image file (``keras.utils.save_img``).

    Args:
        path: a path or a file object.
        x: the array, as :func:`array_to_img` takes it.
        data_format: ``"channels_last"`` or ``"channels_first"``; None uses
            ``image_data_format()``.
        file_format: the format (``"png"``, ``"jpeg"``, ...); None takes the path's
            extension.
        scale: rescale the values to ``0..255``.
        **kwargs: passed to ``PIL.Image.Image.save``.
    """
    data_format = _data_format(data_format)
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.",
                      stacklevel=2)
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest",
             keep_aspect_ratio=False):
    """Load an image file into a PIL image (``keras.utils.load_img``).

    Args:
        path: a path (str, bytes, ``pathlib.Path``) or an ``io.BytesIO``.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"``.
        target_size: None (original size) or ``(height, width)``.
        interpolation: the PIL resampling when resizing: ``"nearest"``, ``"bilinear"``,
            ``"bicubic"``, ``"hamming"``, ``"box"`` or ``"lanczos"``.
        keep_aspect_ratio: crop the centre to the target aspect ratio before resizing.

    Returns:
        A ``PIL.Image.Image``.

    Raises:
        ImportError: without Pillow.
        TypeError: for another kind of ``path``.
        ValueError: for an unknown ``color_mode`` or ``interpolation``.
    """
    image = _pil()
    if isinstance(path, io.BytesIO):
        img = image.open(path)
    elif isinstance(path, (pathlib.Path, bytes, str)):
        if isinstance(path, pathlib.Path):
            path = str(path.resolve())
        with open(path, "rb") as f:
            img = image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode in ("rgb", "rgba"):
        if img.mode != color_mode.upper():
            img = img.convert(color_mode.upper())
    else:
        raise ValueError('color_mode must be "grayscale", "rgb", or "rgba". '
                         f"Received: color_mode={color_mode!r}")
    if target_size is None:
        return img
    size = (target_size[1], target_size[0])
    if img.size == size:
        return img
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"Invalid interpolation method {interpolation} specified. Supported "
                         f"methods are {', '.join(_INTERPOLATIONS)}")
    resample = _resampling(interpolation)
    if not keep_aspect_ratio:
        return img.resize(size, resample)
    width, height = img.size
    crop_height = min(height, width * size[1] // size[0])
    crop_width = min(width, height * size[0] // size[1])
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return img.resize(size, resample, box=[left, top, left + crop_width, top + crop_height])


def smart_resize(x, size, interpolation="bilinear", data_format="channels_last"):
    """Resize images to ``size`` without distortion: crop the largest centred window of
    the target aspect ratio, then resize it (``keras.preprocessing.image.smart_resize``).

    Args:
        x: one image ``(height, width, channels)`` or a batch ``(n, height, width,
            channels)`` (channels first with ``data_format="channels_first"``).
        size: ``(height, width)``.
        interpolation: as ``keras.ops.image.resize`` (``"bilinear"``, ``"nearest"``,
            ``"bicubic"``, ``"lanczos3"``, ``"lanczos5"``, ``"area"``).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        A float array of the resized images (an ndarray for an ndarray input).

    Raises:
        ValueError: for ``size`` not of length 2 or an input not of rank 3 or 4.
    """
    from lamina import ops

    if len(size) != 2:
        raise ValueError(f"Expected `size` to be a tuple of 2 integers, but got: {size}.")
    img = np.asarray(x)
    if img.ndim not in (3, 4):
        raise ValueError("Expected an image array with shape `(height, width, channels)`, or "
                         "`(batch_size, height, width, channels)`, but got input with "
                         f"incorrect rank, of shape {img.shape}.")
    last = data_format == "channels_last"
    height, width = img.shape[-3:-1] if last else img.shape[-2:]
    target_height, target_width = size
    crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
    top = int(float(height - crop_height) / 2)
    left = int(float(width - crop_width) / 2)
    rows, cols = slice(top, top + crop_height), slice(left, left + crop_width)
    img = img[..., rows, cols, :] if last else img[..., rows, cols]
    out = ops.image.resize(img, size=size, interpolation=interpolation, data_format=data_format)
    return np.asarray(ops.convert_to_numpy(out))
