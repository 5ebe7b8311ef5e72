"""Array plumbing shared by the bounding-box helpers."""

from __future__ import annotations

import numpy as np


def as_array(x, dtype=None) -> np.ndarray:
    """``x`` (array-like or a Lamina Tensor) as numpy; Python floats become float32 and
    Python ints int32, as Keras's tensors would be."""
    data = getattr(x, "data", x) if not isinstance(x, np.ndarray) else x
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    arr = np.asarray(data)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    elif arr.dtype == np.int64:
        arr = arr.astype(np.int32)
    return arr


def split4(boxes):
    """The four coordinates of ``(..., 4)`` boxes, each ``(..., 1)``."""
    return np.split(boxes, 4, axis=-1)


def cat(parts) -> np.ndarray:
    return np.concatenate(parts, axis=-1)
