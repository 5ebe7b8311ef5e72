"""Keras's California housing: 20,640 districts of 8 features, median house value."""

from __future__ import annotations

import numpy as np

from lamina.datasets import _remote
from lamina.datasets._housing import check_test_split, split


def load_data(version="large", path="california_housing.npz", test_split=0.2, seed=113):
    """Load California housing (``keras.datasets.california_housing.load_data``).

    Args:
        version: ``"large"`` (all 20,640 rows) or ``"small"`` (the first 600).
        path: the file name in the cache (``~/.keras/datasets/``).
        test_split: the fraction of the data used as test set, in ``[0, 1)``.
        seed: the shuffling seed (``np.random.RandomState``).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: features ``(n, 8)`` and targets
        ``(n,)``, in the file's dtype.

    Raises:
        ValueError: for ``test_split`` outside ``[0, 1)``, another ``version``, or a
            file hash not Keras's.
        OSError: if the file is not cached and cannot be downloaded.
    """
    check_test_split(test_split)
    if version not in ("small", "large"):
        raise ValueError("Argument `version` must be one of 'small', 'large'. "
                         f"Received: version={version}")
    path = _remote.fetch("california_housing.npz", fname=path)
    with np.load(path, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    if version == "small":
        x, y = x[:600], y[:600]
    return split(x, y, test_split, seed)
