"""Keras's Fashion-MNIST: 60,000 / 10,000 grayscale ``28x28`` images of 10 clothing
classes, read from the four gzipped IDX files Keras caches in
``~/.keras/datasets/fashion-mnist/``."""

from __future__ import annotations

import gzip
import os

import numpy as np

from lamina.datasets import _remote

_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
          "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")


def _read(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_data():
    """Load Fashion-MNIST (``keras.datasets.fashion_mnist.load_data``).

    Classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
    7 Sneaker, 8 Bag, 9 Ankle boot.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images ``(n, 28, 28)`` and uint8
        labels ``(n,)``, n = 60,000 and 10,000.

    Raises:
        OSError: if a file is not cached and cannot be downloaded.
    """
    subdir = os.path.join("datasets", "fashion-mnist")
    paths = [_remote.fetch(name, cache_subdir=subdir) for name in _FILES]
    y_train = _read(paths[0], 8)
    x_train = _read(paths[1], 16).reshape(len(y_train), 28, 28)
    y_test = _read(paths[2], 8)
    x_test = _read(paths[3], 16).reshape(len(y_test), 28, 28)
    return (x_train, y_train), (x_test, y_test)
