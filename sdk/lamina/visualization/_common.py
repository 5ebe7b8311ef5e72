"""Shared checks of the visualization functions."""

from __future__ import annotations

import numpy as np

from lamina.backend.tensor import Tensor


def to_numpy(x) -> np.ndarray:
    """A Tensor or array-like as a numpy array."""
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def data_format_or_default(data_format):
    """``data_format``, or the configured image data format.

    Raises:
        ValueError: for anything but ``"channels_last"``/``"channels_first"``.
    """
    if data_format is None:
        from lamina.backend.config import image_data_format

        return image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("data_format must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    return data_format


def check_batched(images) -> np.ndarray:
    """``images`` as a 4D numpy array.

    Raises:
        ValueError: if ``images`` is not 4D.
    """
    images = to_numpy(images)
    if images.ndim != 4:
        raise ValueError(f"`images` must be batched 4D tensor. Received: "
                         f"images.shape={images.shape}")
    return images
