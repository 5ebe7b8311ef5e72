"""Geometric warps of ``keras.ops.image``: ``map_coordinates`` and the transforms built on it.

``map_coordinates`` samples an array at fractional coordinates, nearest (order 0, half
away from zero) or linear (order 1), with the boundary modes of Keras's JAX backend
(``jax.scipy.ndimage``: ``"constant"`` behaves as SciPy's ``"grid-constant"``, ``"wrap"``
as ``"grid-wrap"``). The result is a weighted sum of gathers (``take``), so it is
differentiable in the input and, for order 1, in the coordinates.
"""

from __future__ import annotations

import itertools

import numpy as np

from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import cast, convert_to_tensor
from lamina.ops.manipulation import expand_dims, moveaxis, reshape, squeeze, take
from lamina.ops.math import add, multiply, subtract, where

__all__ = ["affine_transform", "elastic_transform", "map_coordinates",
           "perspective_transform"]

FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")
INTERPOLATIONS = {"nearest": 0, "bilinear": 1}


def _mirror(index, size):
    if size == 1:
        return np.zeros_like(index)
    s = size - 1
    return np.abs((index + s) % (2 * s) - s)


_FIXERS = {
    "constant": lambda index, size: np.clip(index, 0, size - 1),
    "nearest": lambda index, size: np.clip(index, 0, size - 1),
    "wrap": lambda index, size: index % size,
    "mirror": _mirror,
    "reflect": lambda index, size: (_mirror(2 * index + 1, 2 * size + 1) - 1) // 2,
}


def _nodes(coordinate, order, size, fill_mode):
    """``(fixed index, validity, weight)`` of each interpolation node along one axis.

    Integer coordinates are exact (one node, no weight); ``validity`` is None when every
    index lies inside (or the mode never fills)."""
    values = np.asarray(_data(coordinate))
    if values.dtype.kind in "iub":
        nodes = [(values.astype(np.int64), None)]
    elif order == 0:
        index = np.where(values >= 0, np.floor(values + 0.5), np.ceil(values - 0.5))
        nodes = [(index.astype(np.int64), None)]
    else:
        lower = np.floor(values)
        upper_weight = subtract(coordinate, lower)
        lower = lower.astype(np.int64)
        nodes = [(lower, subtract(1.0, upper_weight)), (lower + 1, upper_weight)]
    out = []
    for index, weight in nodes:
        valid = None
        if fill_mode == "constant":
            valid = (index >= 0) & (index < size)
            valid = None if valid.all() else valid
        out.append((_FIXERS[fill_mode](index, size), valid, weight))
    return out


def _interpolate(inputs, coordinates, order, fill_mode, fill_value):
    """Sum over the interpolation corners of weight * input[fixed indices].

    Coordinates broadcast against each other (an axis sampled at its own positions can
    be an ``arange`` shaped to broadcast)."""
    in_shape = shape(inputs)
    strides = np.cumprod((1, *in_shape[:0:-1]))[::-1]
    flat = reshape(inputs, (-1,))
    dtype = np.asarray(_data(inputs)).dtype
    total = None
    per_axis = [_nodes(c, order, n, fill_mode) for c, n in zip(coordinates, in_shape)]
    for corner in itertools.product(*per_axis):
        index = sum(i * int(stride) for (i, _, _), stride in zip(corner, strides))
        out_shape = np.broadcast_shapes(*[np.shape(i) for i, _, _ in corner])
        values = take(flat, np.broadcast_to(index, out_shape))
        valids = [v for _, v, _ in corner if v is not None]
        if valids:
            valid = np.broadcast_to(np.logical_and.reduce(np.broadcast_arrays(*valids)),
                                    out_shape)
            values = where(valid, values, np.asarray(fill_value, dtype=dtype))
        for _, _, weight in corner:
            if weight is not None:
                values = multiply(values, cast(weight, dtype.name))
        total = values if total is None else add(total, values)
    return total


def map_coordinates(inputs, coordinates, order, fill_mode="constant", fill_value=0):
    """Sample ``inputs`` at ``coordinates`` by nearest or linear interpolation.

    Args:
        inputs: an array of rank N.
        coordinates: N arrays of one shape (or an array of shape ``(N, ...)``): the
            fractional index along each axis of every output element.
        order: 0 (nearest, halves away from zero) or 1 (linear).
        fill_mode: ``"constant"`` (``fill_value`` outside), ``"nearest"``, ``"wrap"``,
            ``"mirror"`` or ``"reflect"``.
        fill_value: the value outside the input with ``fill_mode="constant"``.

    Returns:
        The samples, shaped as one coordinate array, of the input's dtype.

    Raises:
        ValueError: for a coordinate count other than the rank, a coordinate rank below
            2, an unknown ``fill_mode`` or an ``order`` other than 0/1.

    Example:
        >>> import numpy as np
        >>> from lamina.ops import image
        >>> image.map_coordinates(np.arange(12.0).reshape(3, 4),
        ...                       [[0.5, 1.5], [1.5, 2.5]], order=1).numpy().tolist()
        [3.5, 8.5]
    """
    inputs = convert_to_tensor(inputs)
    if isinstance(coordinates, (list, tuple)):
        coordinates = [convert_to_tensor(c) for c in coordinates]
        coord_shape = (len(coordinates), *shape(coordinates[0])) if coordinates else (0,)
    else:
        coordinates = convert_to_tensor(coordinates)
        coord_shape = shape(coordinates)
    if coord_shape[0] != len(shape(inputs)):
        raise ValueError("First dim of `coordinates` must be the same as the rank of "
                         f"`inputs`. Received inputs with shape: {shape(inputs)} and "
                         f"coordinate leading dim of {coord_shape[0]}")
    if len(coord_shape) < 2:
        raise ValueError("Invalid coordinates rank: expected at least rank 2. Received "
                         f"input with shape: {coord_shape}")
    if fill_mode not in FILL_MODES:
        raise ValueError("Invalid value for argument `fill_mode`. Expected one of "
                         f"{set(FILL_MODES)}. Received: fill_mode={fill_mode}")
    if order not in (0, 1):
        raise ValueError("Invalid value for argument `order`. Expected one of [0, 1]. "
                         f"Received: order={order}")
    if not isinstance(coordinates, list):
        coordinates = [squeeze(c, axis=0) for c in _split_first(coordinates)]
    dtype = np.asarray(_data(inputs)).dtype
    x = inputs if dtype.kind == "f" else cast(inputs, "float32")
    out = _interpolate(x, coordinates, order, fill_mode, fill_value)
    return out if dtype.kind == "f" else _round_away(out, dtype)


def _round_away(out, dtype):
    """Integer images: halves round away from zero, as ``jax.scipy.ndimage`` does."""
    d = np.asarray(_data(out))
    return convert_to_tensor(np.trunc(d + np.copysign(0.5, d)).astype(dtype))


def _split_first(x):
    from lamina.ops.manipulation import split

    return split(x, shape(x)[0], axis=0)


def _check_warp_args(images, interpolation, fill_mode=None):
    if interpolation not in INTERPOLATIONS:
        raise ValueError("Invalid value for argument `interpolation`. Expected of one "
                         f"{set(INTERPOLATIONS)}. Received: interpolation={interpolation}")
    if fill_mode is not None and fill_mode not in FILL_MODES:
        raise ValueError("Invalid value for argument `fill_mode`. Expected of one "
                         f"{set(FILL_MODES)}. Received: fill_mode={fill_mode}")
    if len(shape(images)) not in (3, 4):
        raise ValueError("Invalid images rank: expected rank 3 (single image) or rank 4 "
                         "(batch of images). Received input with shape: "
                         f"images.shape={shape(images)}")


def _to_batched_last(images, data_format):
    squeeze_batch = len(shape(images)) == 3
    if squeeze_batch:
        images = expand_dims(images, 0)
    if data_format == "channels_first":
        images = moveaxis(images, 1, -1)
    return images, squeeze_batch


def _from_batched_last(images, data_format, squeeze_batch):
    if data_format == "channels_first":
        images = moveaxis(images, -1, 1)
    return squeeze(images, axis=0) if squeeze_batch else images


def _sample(images, rows, cols, order, fill_mode, fill_value):
    """Sample ``(B, H, W, C)`` images at per-pixel ``(B, H, W, C)`` row/column positions."""
    b, _, _, c = shape(images)
    batch, channel = np.arange(b).reshape(-1, 1, 1, 1), np.arange(c).reshape(1, 1, 1, -1)
    return _interpolate(images, [batch, rows, cols, channel], order, fill_mode, fill_value)


def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                     fill_value=0, data_format=None):
    """Warp images by projective transforms ``[a0, a1, a2, b0, b1, b2, c0, c1]``.

    Output pixel ``(x, y)`` takes the input at ``x' = a0 x + a1 y + a2``,
    ``y' = b0 x + b1 y + b2``. As in Keras's JAX backend, ``c0``/``c1`` multiply the
    channel index (they are zero for affine transforms).

    Args:
        images: ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).
        transform: ``(8,)`` or ``(B, 8)``.
        interpolation: ``"nearest"`` or ``"bilinear"``.
        fill_mode: ``"constant"``, ``"nearest"``, ``"wrap"``, ``"mirror"`` or
            ``"reflect"``.
        fill_value: the value outside with ``fill_mode="constant"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        The warped images (differentiable in ``images``).

    Raises:
        ValueError: for an unknown ``interpolation``/``fill_mode`` or a wrong rank.
    """
    from lamina.ops.image import _format

    data_format = _format(data_format)
    images = convert_to_tensor(images)
    _check_warp_args(images, interpolation, fill_mode)
    t = np.asarray(_data(transform))
    if t.ndim not in (1, 2):
        raise ValueError("Invalid transform rank: expected rank 1 (single transform) or "
                         "rank 2 (batch of transforms). Received input with shape: "
                         f"transform.shape={t.shape}")
    x, squeeze_batch = _to_batched_last(images, data_format)
    b, h, w, c = shape(x)
    dtype = np.asarray(_data(x)).dtype
    ftype = dtype if dtype.kind == "f" else np.dtype("float32")
    t = np.broadcast_to(t.reshape(-1, 8), (b, 8)).astype(ftype)
    # Channels share one sampling grid unless c0/c1 (which scale the channel index) are set.
    depth = c if np.any(t[:, 6:8]) else 1
    ys, xs, cs = (g.astype(ftype) for g in np.meshgrid(np.arange(h), np.arange(w),
                                                       np.arange(depth), indexing="ij"))

    def coef(k):
        return t[:, k, None, None, None]

    # In the image's precision and Keras's summation order: nearest sampling rounds these.
    rows = ((ys * coef(4) + xs * coef(3)) + cs * coef(6)) + coef(5)
    cols = ((ys * coef(1) + xs * coef(0)) + cs * coef(7)) + coef(2)
    out = _sample(x if dtype.kind == "f" else cast(x, "float32"), rows, cols,
                  INTERPOLATIONS[interpolation], fill_mode, fill_value)
    if dtype.kind != "f":
        out = _round_away(out, dtype)
    return _from_batched_last(out, data_format, squeeze_batch)


def _homographies(start_points, end_points):
    """``(N, 8)`` coefficients mapping end points back to start points (float32)."""
    sx, sy = start_points[..., 0], start_points[..., 1]
    ex, ey = end_points[..., 0], end_points[..., 1]
    zeros, ones = np.zeros_like(ex), np.ones_like(ex)
    x_rows = np.stack([ex, ey, ones, zeros, zeros, zeros, -sx * ex, -sx * ey], axis=-1)
    y_rows = np.stack([zeros, zeros, zeros, ex, ey, ones, -sy * ex, -sy * ey], axis=-1)
    a = np.concatenate([x_rows, y_rows], axis=1)
    rhs = np.concatenate([sx, sy], axis=-1)[..., None]
    try:
        return np.linalg.solve(a, rhs)[..., 0].astype(np.float32)
    except np.linalg.LinAlgError:
        # Degenerate points (e.g. the placeholders of a symbolic call): no finite warp.
        return np.full(a.shape[:-1], np.nan, dtype=np.float32)


def perspective_transform(images, start_points, end_points, interpolation="bilinear",
                          fill_value=0, data_format=None):
    """Warp images so that the four ``start_points`` move to ``end_points``.

    Args:
        images: ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).
        start_points: ``(4, 2)`` or ``(B, 4, 2)`` ``(x, y)`` corners in the input.
        end_points: where they go in the output, same shape.
        interpolation: ``"nearest"`` or ``"bilinear"``.
        fill_value: the value outside the input.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        The warped images (differentiable in ``images``).

    Raises:
        ValueError: for an unknown ``interpolation``, a wrong rank or point shapes.
    """
    from lamina.ops.image import _format

    data_format = _format(data_format)
    images = convert_to_tensor(images)
    _check_warp_args(images, interpolation)
    start = np.asarray(_data(start_points), dtype=np.float32)
    end = np.asarray(_data(end_points), dtype=np.float32)
    for name, p in (("start_points", start), ("end_points", end)):
        if p.shape[-2:] != (4, 2) or p.ndim not in (2, 3):
            raise ValueError(f"Invalid {name} shape: expected (4,2) for a single image or "
                             f"(N,4,2) for a batch. Received shape: {p.shape}")
    if start.shape != end.shape:
        raise ValueError("start_points and end_points must have the same shape. Received "
                         f"start_points.shape={start.shape}, end_points.shape={end.shape}")
    x, squeeze_batch = _to_batched_last(images, data_format)
    b, h, w, c = shape(x)
    t = np.broadcast_to(_homographies(start.reshape(-1, 4, 2), end.reshape(-1, 4, 2)), (b, 8))
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    t = t[:, :, None, None]
    with np.errstate(all="ignore"):
        denom = t[:, 6] * gx + t[:, 7] * gy + np.float32(1.0)
        cols = (t[:, 0] * gx + t[:, 1] * gy + t[:, 2]) / denom
        rows = (t[:, 3] * gx + t[:, 4] * gy + t[:, 5]) / denom
    finite = np.isfinite(rows) & np.isfinite(cols)
    rows, cols = np.where(finite, rows, -2.0), np.where(finite, cols, -2.0)
    rows, cols = rows[..., None], cols[..., None]
    dtype = np.asarray(_data(x)).dtype
    ftype = dtype if dtype.kind == "f" else np.dtype("float32")
    out = _sample(x if dtype.kind == "f" else cast(x, "float32"), rows.astype(ftype),
                  cols.astype(ftype), INTERPOLATIONS[interpolation], "constant", fill_value)
    if dtype.kind != "f":
        out = _round_away(out, dtype)
    return _from_batched_last(out, data_format, squeeze_batch)


def elastic_transform(images, alpha=20.0, sigma=5.0, interpolation="bilinear",
                      fill_mode="reflect", fill_value=0.0, seed=None, data_format=None):
    """Displace every pixel by smooth random offsets (an elastic deformation).

    Offsets along rows and columns are standard normal draws times ``sigma``, blurred
    with a Gaussian of ``sigma`` (kernel ``int(6 sigma) | 1``) and scaled by ``alpha``.

    Args:
        images: ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).
        alpha: displacement scale.
        sigma: smoothness (standard deviation of the blur).
        interpolation: ``"nearest"`` or ``"bilinear"``.
        fill_mode: ``"constant"``, ``"nearest"``, ``"wrap"``, ``"mirror"`` or
            ``"reflect"``.
        fill_value: the value outside with ``fill_mode="constant"``.
        seed: an int, a ``SeedGenerator`` or None (``lamina.random``'s rules).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        The deformed images.

    Raises:
        ValueError: for an unknown ``interpolation``/``fill_mode`` or a wrong rank.
    """
    from lamina.ops.image import _format
    from lamina.ops.image_filter import gaussian_blur
    from lamina.random import _rng

    data_format = _format(data_format)
    images = convert_to_tensor(images)
    _check_warp_args(images, interpolation, fill_mode)
    x, squeeze_batch = _to_batched_last(images, data_format)
    b, h, w, c = shape(x)
    dtype = np.asarray(_data(x)).dtype
    ftype = dtype if dtype.kind == "f" else np.dtype("float32")
    alpha, sigma = float(_data(alpha)), float(_data(sigma))
    k = int(6 * sigma) | 1
    rng = _rng(seed)
    offsets = []
    for _ in range(2):
        noise = (rng.normal(size=(b, h, w, 1)) * sigma).astype(ftype)
        blurred = gaussian_blur(noise, (k, k), (sigma, sigma), data_format="channels_last")
        offsets.append(np.asarray(_data(blurred))[..., 0])
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    rows = (gy + alpha * offsets[1])[..., None].astype(ftype)
    cols = (gx + alpha * offsets[0])[..., None].astype(ftype)
    out = _sample(x if dtype.kind == "f" else cast(x, "float32"), rows, cols,
                  INTERPOLATIONS[interpolation], fill_mode, fill_value)
    if dtype.kind != "f":
        out = _round_away(out, dtype)
    return _from_batched_last(out, data_format, squeeze_batch)


export(globals(), __all__)
