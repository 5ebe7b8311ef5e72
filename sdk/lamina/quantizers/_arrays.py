"""numpy views of the quantizers' inputs."""

from __future__ import annotations

import numpy as np

from lamina.backend.tensor import Tensor


def to_numpy(x) -> np.ndarray:
    """``x`` (Tensor, Variable or array-like) as numpy; Python floats become float32."""
    if isinstance(x, Tensor):
        return np.asarray(x.data)
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    arr = np.asarray(x)
    return arr.astype(np.float32) if arr.dtype == np.float64 else arr


def as_tensor(x) -> Tensor:
    """A numpy result as a Lamina Tensor (what Keras's functions return)."""
    from lamina import ops

    return ops.convert_to_tensor(np.asarray(x))
