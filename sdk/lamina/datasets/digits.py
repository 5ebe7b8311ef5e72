"""scikit-learn's handwritten digits: 1,797 images of ``8x8`` pixels."""

from __future__ import annotations

import numpy as np

from lamina.datasets._split import require, train_test_split


def load_data():
    """Load the digits split 80% / 20% (stratified).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images of shape ``(n, 8, 8)``
        with values ``0..16`` and uint8 labels ``0..9``.

    Raises:
        ImportError: if scikit-learn is not installed.
    """
    datasets = require("sklearn.datasets", "digits")
    bunch = datasets.load_digits()
    x = np.asarray(bunch.images).round().astype(np.uint8)
    return train_test_split(x, np.asarray(bunch.target).astype(np.uint8))
