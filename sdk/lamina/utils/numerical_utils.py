"""``normalize``: scale vectors to unit norm (``keras.utils.normalize``)."""

from __future__ import annotations

import numpy as np


def normalize(x, axis=-1, order=2):
    """Divide ``x`` by its ``order``-norm along ``axis``.

    Args:
        x: an ndarray (zero vectors stay zero) or a Tensor (``ops.normalize``).
        axis: the axis normalised.
        order: the norm's order (2: euclidean).

    Returns:
        The normalised array (an ndarray for an ndarray input, else a Tensor).

    Example:
        >>> import numpy as np
        >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    if isinstance(x, np.ndarray):
        norm = np.atleast_1d(np.linalg.norm(x, order, axis))
        norm[norm == 0] = 1
        return x / np.expand_dims(norm, axis if axis is not None else -1)
    from lamina import ops

    return ops.normalize(x, axis=axis, order=order)
