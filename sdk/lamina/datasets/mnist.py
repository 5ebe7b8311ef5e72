"""Keras's MNIST: 60,000 training and 10,000 test images of handwritten digits.

Downloaded once into Keras's cache (``~/.keras/datasets/mnist.npz``, the same file Keras
uses). For a sample that needs no network see :mod:`lamina.datasets.mnist_sample`.
"""

from __future__ import annotations

import numpy as np

from lamina.datasets import _remote


def load_data(path="mnist.npz"):
    """Load the MNIST dataset (``keras.datasets.mnist.load_data``).

    Args:
        path: the file name in the cache (``~/.keras/datasets/``).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images of shape
        ``(60000, 28, 28)`` / ``(10000, 28, 28)`` with values ``0..255`` and uint8 labels
        ``0..9`` of shape ``(60000,)`` / ``(10000,)``.

    Raises:
        OSError: if the file is not cached and cannot be downloaded.
        ValueError: if the downloaded file's sha256 is not Keras's.
    """
    path = _remote.fetch("mnist.npz", fname=path)
    with np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
