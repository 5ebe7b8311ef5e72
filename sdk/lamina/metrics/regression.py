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


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0,
                        axis=-1) -> np.ndarray:
    """Per-sample binary cross-entropy (probabilities clipped to ``[1e-7, 1 - 1e-7]``)."""
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        loss = np.maximum(y_pred, 0) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
    else:
        p = np.clip(y_pred, _EPSILON, 1 - _EPSILON)
        loss = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
    return np.mean(loss, axis=axis)


def _log_probs(y_pred, from_logits):
    if from_logits:
        shifted = y_pred - y_pred.max(axis=-1, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    p = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
    return np.log(np.clip(p, _EPSILON, 1 - _EPSILON))


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0,
                             axis=-1) -> np.ndarray:
    """Per-sample categorical cross-entropy with one-hot labels."""
    y_true = to_numpy(y_true).astype(np.float32)
    y_pred = to_numpy(y_pred).astype(np.float32, copy=False)
    y_true, y_pred = np.moveaxis(y_true, axis, -1), np.moveaxis(y_pred, axis, -1)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    return -np.sum(y_true * _log_probs(y_pred, from_logits), axis=-1)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1) -> np.ndarray:
    """Per-sample categorical cross-entropy with integer labels.

    Samples labelled ``ignore_class`` get 0 and still count in the mean, as in Keras.
    """
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred).astype(np.float32, copy=False)
    y_pred = np.moveaxis(y_pred, axis, -1)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    valid = None if ignore_class is None else y_true != ignore_class
    labels = y_true if valid is None else np.where(valid, y_true, 0)
    logp = _log_probs(y_pred, from_logits)
    res = -np.take_along_axis(logp, labels.astype(np.int64)[..., None], axis=-1)[..., 0]
    return res if valid is None else np.where(valid, res, 0.0)


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

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0):
        super().__init__(binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)


class CategoricalCrossentropy(_Down):
    """Mean categorical cross-entropy (one-hot labels).

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        from_logits: whether predictions are logits.
    """

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0, axis=-1):
        super().__init__(categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(_Down):
    """Mean categorical cross-entropy (integer labels).

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        from_logits: whether predictions are logits.
    """

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False,
                 ignore_class=None, axis=-1):
        super().__init__(sparse_categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)

        self.ignore_class = ignore_class

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.ignore_class is not None and sample_weight is not None:
            # Keras folds the loss's mask into sample weights only when weights are given:
            # unweighted, ignored samples count as zeros in the mean.
            labels = to_numpy(y_true)
            if labels.ndim == to_numpy(y_pred).ndim and labels.shape[-1] == 1:
                labels = labels[..., 0]
            mask = labels != self.ignore_class
            sample_weight = np.broadcast_to(to_numpy(sample_weight), mask.shape) * mask
        super().update_state(y_true, y_pred, sample_weight=sample_weight)
