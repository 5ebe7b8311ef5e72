"""Keras's CIFAR-10: 50,000 / 10,000 colour ``32x32`` images of 10 classes, from the
CIFAR python tarball extracted into ``~/.keras/datasets/cifar-10-batches-py-target``."""

from __future__ import annotations

import os

import numpy as np

from lamina.datasets import _remote
from lamina.datasets.cifar import load_batch, to_data_format


def load_data():
    """Load CIFAR-10 (``keras.datasets.cifar10.load_data``).

    Classes: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog, 7 horse,
    8 ship, 9 truck.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images ``(n, 32, 32, 3)``
        (``(n, 3, 32, 32)`` with ``channels_first``) and uint8 labels ``(n, 1)``,
        n = 50,000 and 10,000.

    Raises:
        OSError: if the archive is not cached and cannot be downloaded.
        ValueError: if its sha256 is not Keras's.
        pickle.UnpicklingError: if a batch holds anything but plain data.
    """
    path = _remote.fetch_cifar("cifar-10-python.tar.gz", "cifar-10-batches-py-target")
    path = os.path.join(path, "cifar-10-batches-py")
    xs, ys = [], []
    for i in range(1, 6):
        data, labels = load_batch(os.path.join(path, f"data_batch_{i}"))
        xs.append(np.asarray(data, dtype="uint8"))
        ys.append(np.asarray(labels, dtype="uint8"))
    x_test, y_test = load_batch(os.path.join(path, "test_batch"))
    x_train = np.concatenate(xs)
    y_train = np.concatenate(ys).reshape(-1, 1)
    y_test = np.reshape(y_test, (len(y_test), 1)).astype(y_train.dtype)
    return ((to_data_format(x_train), y_train),
            (to_data_format(x_test).astype(x_train.dtype), y_test))
