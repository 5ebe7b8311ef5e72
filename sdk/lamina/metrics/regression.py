"""Error metrics (lower is better) and loss-valued metrics, in numpy."""

from __future__ import annotations

import numpy as np

from lamina.metrics.base import Mean, MeanMetricWrapper, reduce_to_samplewise, to_numpy

_EPSILON = 1e-7


def _pair(y_true, y_pred):
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    return y_true.astype(np.float32, copy=False), y_pred.astype(np.float32, copy=False)


def mean_squared_error(y_true, y_pred) -> np.ndarray:
    """Per-sample ``mean((y_true - y_pred)^2, axis=-1)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return np.mean(np.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true, y_pred) -> np.ndarray:
    """Per-sample ``mean(|y_true - y_pred|, axis=-1)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return np.mean(np.abs(y_true - y_pred), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False) -> np.ndarray:
    """Per-sample binary cross-entropy (probabilities clipped to ``[1e-7, 1 - 1e-7]``)."""
    y_true, y_pred = _pair(y_true, y_pred)
    if from_logits:
        loss = np.maximum(y_pred, 0) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
    else:
        p = np.clip(y_pred, _EPSILON, 1 - _EPSILON)
        loss = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
    return np.mean(loss, axis=-1)


def _log_probs(y_pred, from_logits):
    if from_logits:
        shifted = y_pred - y_pred.max(axis=-1, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    p = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
    return np.log(np.clip(p, _EPSILON, 1 - _EPSILON))


def categorical_crossentropy(y_true, y_pred, from_logits=False) -> np.ndarray:
    """Per-sample categorical cross-entropy with one-hot labels."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred).astype(np.float32, copy=False)
    return -np.sum(y_true * _log_probs(y_pred, from_logits), axis=-1)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False) -> np.ndarray:
    """Per-sample categorical cross-entropy with integer labels."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred).astype(np.float32, copy=False)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    logp = _log_probs(y_pred, from_logits)
    return -np.take_along_axis(logp, y_true.astype(np.int64)[..., None], axis=-1)[..., 0]


class _Down(MeanMetricWrapper):
    _direction = "down"


class MeanSquaredError(_Down):
    """Mean of per-sample mean squared errors."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(_Down):
    """Mean of per-sample mean absolute errors."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, dtype=dtype)


class RootMeanSquaredError(Mean):
    """``sqrt`` of the (weighted) mean squared error over all elements."""

    _direction = "down"

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _pair(y_true, y_pred)
        values, weight = reduce_to_samplewise(np.square(y_pred - y_true), sample_weight)
        self.total += float(np.sum(values, dtype=np.float64))
        self.count += float(values.size if weight is None else np.sum(weight))

    def result(self):
        return np.float32(np.sqrt(self.total / self.count)) if self.count else np.float32(0.0)


class BinaryCrossentropy(_Down):
    """Mean binary cross-entropy.

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        from_logits: whether predictions are logits.
    """

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False):
        super().__init__(binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits)


class CategoricalCrossentropy(_Down):
    """Mean categorical cross-entropy (one-hot labels).

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        from_logits: whether predictions are logits.
    """

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False):
        super().__init__(categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits)


class SparseCategoricalCrossentropy(_Down):
    """Mean categorical cross-entropy (integer labels).

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        from_logits: whether predictions are logits.
    """

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False):
        super().__init__(sparse_categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits)
