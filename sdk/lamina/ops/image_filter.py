"""Filters of ``keras.ops.image``: Gaussian blur, patch extraction and SSIM.

All three are convolutions (``lamina.ops.conv``/``depthwise_conv``) with fixed kernels,
so they are differentiable in the images.
"""

from __future__ import annotations

import numpy as np

from lamina.backend import conv_ops
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import cast, convert_to_tensor
from lamina.ops.manipulation import expand_dims, moveaxis, reshape, squeeze, transpose
from lamina.ops.math import add, divide, multiply, subtract
from lamina.ops.reduction import mean

__all__ = ["extract_patches", "extract_patches_3d", "gaussian_blur", "ssim"]


def _gaussian_1d(size, sigma, dtype):
    x = np.arange(size, dtype=dtype) - dtype.type((size - 1) / 2)
    k = np.exp(dtype.type(-0.5) * (x / dtype.type(sigma)) ** 2)
    return (k / k.sum()).astype(dtype)


def _rank_3_or_4(images, name="images"):
    if len(shape(images)) not in (3, 4):
        raise ValueError(f"Invalid {name} rank: expected rank 3 (single image) or rank 4 "
                         f"(batch of images). Received input with shape: "
                         f"{name}.shape={shape(images)}")


def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None):
    """Blur each channel with a Gaussian kernel ("same" size, zero padding).

    As in Keras's JAX backend, ``kernel_size[0]``/``sigma[0]`` act along the width and
    ``kernel_size[1]``/``sigma[1]`` along the height.

    Args:
        images: ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).
        kernel_size: two odd or even ints.
        sigma: two standard deviations.
        data_format: ``"channels_last"`` or ``"channels_first"`` (``image_data_format()``
            when None).

    Returns:
        The blurred images.

    Raises:
        ValueError: for a rank other than 3/4 or a bad ``data_format``.
    """
    from lamina.ops.image import _format

    data_format = _format(data_format)
    images = convert_to_tensor(images)
    _rank_3_or_4(images)
    dtype = np.asarray(_data(images)).dtype
    dtype = dtype if dtype.kind == "f" else np.dtype("float32")
    kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sigma = (sigma, sigma) if np.ndim(sigma) == 0 else sigma
    kx = _gaussian_1d(int(kernel_size[0]), float(sigma[0]), dtype)
    ky = _gaussian_1d(int(kernel_size[1]), float(sigma[1]), dtype)
    squeeze_batch = len(shape(images)) == 3
    x = expand_dims(images, 0) if squeeze_batch else images
    channels = shape(x)[-1 if data_format == "channels_last" else 1]
    # The kernel is the outer product of ky (rows) and kx (columns): two 1-D passes with
    # per-axis "same" zero padding give the same sums at O(k) instead of O(k^2) per pixel.
    out = cast(x, dtype.name)
    for taps in (ky[:, None], kx[None, :]):
        kernel = np.tile(taps[:, :, None, None], (1, 1, channels, 1))
        out = conv_ops.depthwise_conv(out, kernel, padding="same", data_format=data_format)
    return squeeze(out, axis=0) if squeeze_batch else out


def _patches(images, size, strides, dilation_rate, padding, data_format, n):
    from lamina.ops.image import _format

    data_format = _format(data_format)
    images = convert_to_tensor(images)
    channels = shape(images)[-1 if data_format == "channels_last" else -(n + 1)]
    out_dim = int(np.prod(size)) * channels
    dtype = np.asarray(_data(images)).dtype
    kernel = np.eye(out_dim, dtype=dtype).reshape(*size, channels, out_dim)
    unbatched = len(shape(images)) == n + 1
    x = expand_dims(images, 0) if unbatched else images
    out = conv_ops.conv(x, kernel, strides=strides, padding=padding, data_format=data_format,
                        dilation_rate=dilation_rate)
    return squeeze(out, axis=0) if unbatched else out


def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid",
                    data_format=None):
    """Patches of images (2-D ``size``) or volumes (3-D ``size``), flattened into channels.

    Args:
        images: ``(H, W, C)``/``(N, H, W, C)`` for 2-D patches, ``(D, H, W, C)``/
            ``(N, D, H, W, C)`` for 3-D (channels first per ``data_format``).
        size: an int, ``(patch_height, patch_width)`` or ``(depth, height, width)``.
        strides: the step between patches; ``size`` when None.
        dilation_rate: the step between the pixels of one patch.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        ``(..., out_h, out_w, ph * pw * C)`` patches (pixel-major, channels fastest).

    Raises:
        TypeError: when ``size`` is neither an int nor a tuple.
        ValueError: when ``size`` has a length other than 2 or 3.

    Example:
        >>> import numpy as np
        >>> from lamina.ops import image
        >>> image.extract_patches(np.ones((2, 20, 20, 3), "float32"), (5, 5)).shape
        (2, 4, 4, 75)
    """
    if not isinstance(size, int):
        if not isinstance(size, (tuple, list)):
            raise TypeError("Invalid `size` argument. Expected an int or a tuple. "
                            f"Received: size={size} of type {type(size).__name__}")
        if len(size) not in (2, 3):
            raise ValueError("Invalid `size` argument. Expected a tuple of length 2 or 3. "
                             f"Received: size={size} with length {len(size)}")
        if len(size) == 3:
            return extract_patches_3d(images, size, strides, dilation_rate, padding,
                                      data_format)
    size = (size, size) if isinstance(size, int) else tuple(size)
    return _patches(images, size, strides or size, dilation_rate, padding, data_format, 2)


def extract_patches_3d(volumes, size, strides=None, dilation_rate=1, padding="valid",
                       data_format=None):
    """Patches of volumes: ``(..., out_d, out_h, out_w, pd * ph * pw * C)``.

    Args:
        volumes: ``(D, H, W, C)`` or ``(N, D, H, W, C)`` (channels first per
            ``data_format``).
        size: an int or ``(patch_depth, patch_height, patch_width)``.
        strides: an int or three; ``size`` when None.
        dilation_rate: the step between the voxels of one patch.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        The patches.

    Raises:
        TypeError: for a ``size`` that is not an int or three ints.
        ValueError: for ``strides`` that are not one or three ints.
    """
    size = (size,) * 3 if isinstance(size, int) else size
    if not isinstance(size, (tuple, list)) or len(size) != 3:
        raise TypeError("Invalid `size` argument. Expected an int or a tuple of length 3. "
                        f"Received: size={size}")
    strides = tuple(size) if strides is None else strides
    strides = (strides,) * 3 if isinstance(strides, int) else tuple(strides)
    if len(strides) != 3:
        raise ValueError(f"Invalid `strides` argument. Got: {strides}")
    return _patches(volumes, tuple(size), strides, dilation_rate, padding, data_format, 3)


def ssim(image1, image2, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03,
         data_format=None):
    """Structural similarity of two images (Gaussian window, "valid" positions only).

    Args:
        image1: ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).
        image2: same shape.
        max_val: the dynamic range of the pixel values.
        filter_size: the Gaussian window's size.
        filter_sigma: its standard deviation.
        k1: the luminance constant factor.
        k2: the contrast constant factor.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        The SSIM of each image (a scalar for unbatched input), averaged over channels.

    Raises:
        ValueError: for a rank other than 3/4.
    """
    from lamina.ops.image import _format

    data_format = _format(data_format)
    image1, image2 = convert_to_tensor(image1), convert_to_tensor(image2)
    original = np.asarray(_data(image1)).dtype
    compute = original if original.kind == "f" else np.dtype("float32")
    image1, image2 = cast(image1, compute.name), cast(image2, compute.name)
    _rank_3_or_4(image1, "image1")
    _rank_3_or_4(image2, "image2")
    unbatched = len(shape(image1)) == 3
    if unbatched:
        image1, image2 = expand_dims(image1, 0), expand_dims(image2, 0)
    if data_format == "channels_first":
        image1, image2 = moveaxis(image1, 1, -1), moveaxis(image2, 1, -1)
    batch, height, width, channels = shape(image1)
    g = _gaussian_1d(int(filter_size), float(filter_sigma), compute)
    kernel = np.outer(g, g)[:, :, None, None]
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2

    def planes(x):
        return reshape(transpose(x, (0, 3, 1, 2)), (-1, height, width, 1))

    def window_mean(x):
        return conv_ops.conv(x, kernel, padding="valid", data_format="channels_last")

    a, b = planes(image1), planes(image2)
    mu1, mu2 = window_mean(a), window_mean(b)
    mu1_sq, mu2_sq, mu12 = multiply(mu1, mu1), multiply(mu2, mu2), multiply(mu1, mu2)
    var1 = subtract(window_mean(multiply(a, a)), mu1_sq)
    var2 = subtract(window_mean(multiply(b, b)), mu2_sq)
    cov = subtract(window_mean(multiply(a, b)), mu12)
    numerator = multiply(add(multiply(mu12, 2.0), c1), add(multiply(cov, 2.0), c2))
    denominator = multiply(add(add(mu1_sq, mu2_sq), c1), add(add(var1, var2), c2))
    per_plane = mean(divide(numerator, denominator), axis=(1, 2, 3))
    result = mean(reshape(per_plane, (batch, channels)), axis=-1)
    if unbatched:
        result = squeeze(result, axis=0)
    return cast(result, original.name)


export(globals(), __all__)
