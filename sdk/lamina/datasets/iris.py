"""scikit-learn's iris flowers: 150 samples, 4 measurements, 3 species."""

from __future__ import annotations

import numpy as np

from lamina.datasets._split import require, train_test_split


def load_data():
    """Load iris split 120 / 30 (stratified).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: float32 features of shape ``(n, 4)``
        (sepal length/width, petal length/width in cm) and uint8 labels ``0..2``.

    Raises:
        ImportError: if scikit-learn is not installed.
    """
    datasets = require("sklearn.datasets", "iris")
    bunch = datasets.load_iris()
    x = np.asarray(bunch.data, dtype=np.float32)
    return train_test_split(x, np.asarray(bunch.target).astype(np.uint8))
