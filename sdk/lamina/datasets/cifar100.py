"""Keras's CIFAR-100: 50,000 / 10,000 colour ``32x32`` images of 100 fine (20 coarse)
classes, from the CIFAR python tarball extracted into
``~/.keras/datasets/cifar-100-python-target``."""

from __future__ import annotations

import os

import numpy as np

from lamina.datasets import _remote
from lamina.datasets.cifar import load_batch, to_data_format


def load_data(label_mode="fine"):
    """Load CIFAR-100 (``keras.datasets.cifar100.load_data``).

    Args:
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images ``(n, 32, 32, 3)``
        (``(n, 3, 32, 32)`` with ``channels_first``) and int64 labels ``(n, 1)``,
        n = 50,000 and 10,000.

    Raises:
        ValueError: for another ``label_mode``, or if the archive's sha256 is not Keras's.
        OSError: if the archive is not cached and cannot be downloaded.
        pickle.UnpicklingError: if a batch holds anything but plain data.
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError('`label_mode` must be one of `"fine"`, `"coarse"`. '
                         f"Received: label_mode={label_mode}.")
    path = _remote.fetch_cifar("cifar-100-python.tar.gz", "cifar-100-python-target")
    path = os.path.join(path, "cifar-100-python")
    x_train, y_train = load_batch(os.path.join(path, "train"), f"{label_mode}_labels")
    x_test, y_test = load_batch(os.path.join(path, "test"), f"{label_mode}_labels")
    y_train = np.reshape(y_train, (len(y_train), 1))
    y_test = np.reshape(y_test, (len(y_test), 1))
    return (to_data_format(x_train), y_train), (to_data_format(x_test), y_test)
