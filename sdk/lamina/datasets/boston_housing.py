"""Keras's Boston housing prices: 506 samples of 13 features, target in k$."""

from __future__ import annotations

import numpy as np

from lamina.datasets import _remote
from lamina.datasets._housing import check_test_split, split


def load_data(path="boston_housing.npz", test_split=0.2, seed=113):
    """Load Boston housing (``keras.datasets.boston_housing.load_data``).

    Args:
        path: the file name in the cache (``~/.keras/datasets/``).
        test_split: the fraction of the data used as test set, in ``[0, 1)``.
        seed: the shuffling seed (``np.random.RandomState``).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: features ``(n, 13)`` and targets
        ``(n,)``, in the file's dtype.

    Raises:
        ValueError: for ``test_split`` outside ``[0, 1)``, or a file hash not Keras's.
        OSError: if the file is not cached and cannot be downloaded.
    """
    check_test_split(test_split)
    with np.load(_remote.fetch("boston_housing.npz", fname=path), allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    return split(x, y, test_split, seed)
