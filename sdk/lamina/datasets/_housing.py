"""The seeded train/test split Keras's two housing datasets share."""

from __future__ import annotations

import numpy as np


def check_test_split(test_split) -> None:
    if not 0 <= test_split < 1:
        raise ValueError(f"Invalid `test_split` argument: {test_split}. It must be between "
                         f"0 and 1 (exclusive of 1). Received: test_split={test_split}")


def split(x, y, test_split, seed):
    """Shuffle with ``np.random.RandomState(seed)`` and cut at ``1 - test_split``."""
    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    x, y = x[indices], y[indices]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))
