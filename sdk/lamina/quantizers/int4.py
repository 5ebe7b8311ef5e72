"""Packing two int4 values per byte, as ``keras.quantizers.pack_int4``/``unpack_int4``."""

from __future__ import annotations

import numpy as np

from lamina.quantizers._arrays import as_tensor, to_numpy


def _check_dtype(dtype):
    if dtype not in ("int8", "uint8"):
        raise ValueError(f"Expected dtype to be 'int8' or 'uint8', but got '{dtype}'. "
                         f"Received: dtype={dtype!r}")


def pack_int4(arr, axis=0, dtype="int8"):
    """Pack int4 values (stored one per int8/uint8) two per byte along ``axis``.

    Element ``2i`` goes to the low nibble and ``2i + 1`` to the high nibble; an odd
    length is zero-padded.

    Args:
        arr: int8 (signed, ``[-8, 7]``) or uint8 (``[0, 15]``) values.
        axis: the axis to pack.
        dtype: ``"int8"`` or ``"uint8"``; must be ``arr``'s dtype.

    Returns:
        ``(packed, packed_shape, original_length_along_axis)``.

    Raises:
        ValueError: for another ``dtype``.
        TypeError: if ``arr``'s dtype is not ``dtype``.
    """
    _check_dtype(dtype)
    x = to_numpy(arr)
    if x.dtype != np.dtype(dtype):
        raise TypeError(f"Expected {dtype} tensor for packing, got {x.dtype}.")
    np_dtype = np.dtype(dtype)
    axis = axis + x.ndim if axis < 0 else axis
    x = np.moveaxis(x, axis, 0)
    n = x.shape[0]
    if n % 2 == 1:
        x = np.concatenate([x, np.zeros((1,) + x.shape[1:], x.dtype)], axis=0)
    mask = np_dtype.type(0x0F)
    low = np.bitwise_and(x[::2], mask)
    high = np.bitwise_and(x[1::2], mask)
    packed = np.bitwise_or(low, np.left_shift(high, np_dtype.type(4))).astype(np_dtype)
    packed = np.moveaxis(packed, 0, axis)
    return as_tensor(packed), tuple(packed.shape), n


def unpack_int4(packed, orig_len, axis=0, dtype="int8"):
    """Unpack what :func:`pack_int4` packed.

    Args:
        packed: the packed int8/uint8 tensor.
        orig_len: the original length along ``axis``.
        axis: the packed axis.
        dtype: ``"int8"`` (sign-extend the nibbles) or ``"uint8"``.

    Returns:
        The unpacked values, of dtype ``dtype``.

    Raises:
        ValueError: for another ``dtype``.
        TypeError: if ``packed`` is not int8/uint8.
    """
    _check_dtype(dtype)
    x = to_numpy(packed)
    if x.dtype not in (np.int8, np.uint8):
        raise TypeError(f"Expected int8 or uint8 tensor for unpacking, got {x.dtype}")
    axis = axis + x.ndim if axis < 0 else axis
    x = np.moveaxis(x, axis, 0)
    mask = x.dtype.type(0x0F)
    low = np.bitwise_and(x, mask)
    high = np.bitwise_and(np.right_shift(x, x.dtype.type(4)), mask)
    if dtype == "int8":
        eight = x.dtype.type(8)
        low = np.bitwise_xor(low, eight) - eight
        high = np.bitwise_xor(high, eight) - eight
    stacked = np.stack([low.astype(dtype), high.astype(dtype)], axis=1)
    unpacked = stacked.reshape((-1,) + x.shape[1:])[:orig_len]
    return as_tensor(np.moveaxis(unpacked, 0, axis))
