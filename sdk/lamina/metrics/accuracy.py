"""Accuracy metrics: functions returning per-sample matches, and their Mean classes."""

from __future__ import annotations

import numpy as np

from lamina.metrics.base import MeanMetricWrapper, to_numpy


def _matches(a, b) -> np.ndarray:
    return (a == b).astype(np.float32)


def accuracy(y_true, y_pred) -> np.ndarray:
    """Element-wise equality of labels and predictions, as float."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    return _matches(y_true, y_pred)


def binary_accuracy(y_true, y_pred, threshold=0.5) -> np.ndarray:
    """Element-wise ``y_true == (y_pred > threshold)`` as float (Keras 3: no axis mean)."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true[..., None]
    elif y_pred.ndim == y_true.ndim - 1:
        y_pred = y_pred[..., None]
    predicted = (y_pred > threshold).astype(y_true.dtype)
    return _matches(y_true, predicted)


def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` (one-hot labels)."""
    return _matches(np.argmax(to_numpy(y_true), axis=-1), np.argmax(to_numpy(y_pred), axis=-1))


def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where the integer label equals ``argmax(y_pred)``."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    # Methods and no copy of int64 labels: the same values, fewer numpy wrappers a step.
    return _matches(y_true.astype(np.int64, copy=False), y_pred.argmax(axis=-1))


def _in_top_k(labels: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    # Ties at the k-th score count as in the top k (tf.math.in_top_k semantics).
    target = np.take_along_axis(y_pred, labels[..., None].astype(np.int64), axis=-1)
    return (np.sum(y_pred > target, axis=-1) < k).astype(np.float32)


def top_k_categorical_accuracy(y_true, y_pred, k=5) -> np.ndarray:
    """1.0 where the one-hot label's class is among the ``k`` highest predictions."""
    return _in_top_k(np.argmax(to_numpy(y_true), axis=-1), to_numpy(y_pred), k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False
                                      ) -> np.ndarray:
    """1.0 where the integer label is among the ``k`` highest predictions.

    With ``from_sorted_ids``, ``y_pred`` holds class ids sorted by score (best first).
    """
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if from_sorted_ids:
        hits = y_pred[..., :k] == y_true[..., None].astype(y_pred.dtype)
        return np.any(hits, axis=-1).astype(np.float32)
    return _in_top_k(y_true, y_pred, k)


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches binary labels.

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        threshold: decision threshold, default 0.5.
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often ``argmax(y_pred)`` matches one-hot labels."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often ``argmax(y_pred)`` matches integer labels."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often one-hot labels are in the top ``k`` predictions (default 5)."""

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often integer labels are in the top ``k`` predictions (default 5)."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None,
                 from_sorted_ids=False):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
