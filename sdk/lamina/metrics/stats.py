"""Correlation, R^2 and F-beta metrics with Keras's state layout and formulas."""

from __future__ import annotations

import numpy as np

from lamina.metrics.base import MeanMetricWrapper, Metric, to_numpy

_EPSILON = 1e-7


def _same_rank(y_true, y_pred):
    y_true = to_numpy(y_true).astype(np.float32)
    y_pred = to_numpy(y_pred).astype(np.float32)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    return y_true, y_pred


def pearson_correlation(y_true, y_pred, axis=-1) -> np.ndarray:
    """Per-sample Pearson correlation coefficient along ``axis``."""
    y_true, y_pred = _same_rank(y_true, y_pred)
    t = y_true - y_true.mean(axis=axis, keepdims=True)
    p = y_pred - y_pred.mean(axis=axis, keepdims=True)
    t = t / t.std(axis=axis, keepdims=True)
    p = p / p.std(axis=axis, keepdims=True)
    return np.mean(t * p, axis=axis)


def concordance_correlation(y_true, y_pred, axis=-1) -> np.ndarray:
    """Per-sample Lin's concordance correlation coefficient along ``axis``."""
    y_true, y_pred = _same_rank(y_true, y_pred)
    t_mean = y_true.mean(axis=axis, keepdims=True)
    p_mean = y_pred.mean(axis=axis, keepdims=True)
    t_var = np.var(y_true - t_mean, axis=axis, keepdims=True)
    p_var = np.var(y_pred - p_mean, axis=axis, keepdims=True)
    # Keras centres y_true on y_pred's mean here; kept for equal values.
    covar = (y_true - p_mean) * (y_pred - p_mean)
    norm = t_var + p_var + np.square(t_mean - p_mean)
    return np.mean(2 * covar / (norm + _EPSILON), axis=axis)


class PearsonCorrelation(MeanMetricWrapper):
    """Mean over samples of the Pearson correlation along ``axis``.

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        axis: the axis along which the correlation is computed.
    """

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(pearson_correlation, name=name, dtype=dtype, axis=axis)


class ConcordanceCorrelation(MeanMetricWrapper):
    """Mean over samples of the concordance correlation along ``axis``.

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        axis: the axis along which the correlation is computed.
    """

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        super().__init__(concordance_correlation, name=name, dtype=dtype, axis=axis)


class R2Score(Metric):
    """Coefficient of determination, accumulated over batches per output column.

    Args:
        class_aggregation: ``"uniform_average"``, ``"variance_weighted_average"`` or None
            (one score per output).
        num_regressors: number of regressors for the adjusted R^2 (0: plain R^2).
        name: metric name.
        dtype: accepted for compatibility.

    Raises:
        ValueError: for an unknown ``class_aggregation`` or negative ``num_regressors``.
    """

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        valid = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in valid:
            raise ValueError(f"Invalid value for argument `class_aggregation`. Expected one "
                             f"of {valid}. Received: class_aggregation={class_aggregation}")
        if num_regressors < 0:
            raise ValueError("Invalid value for argument `num_regressors`. Expected a value "
                             f">= 0. Received: num_regressors={num_regressors}")
        self.class_aggregation, self.num_regressors = class_aggregation, num_regressors
        self.reset_state()

    def reset_state(self) -> None:
        self.squared_sum = self.sum = self.total_mse = self.count = None
        self.num_samples = 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _same_rank(y_true, y_pred)
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError("R2Score expects 2D inputs with shape (batch_size, output_dim). "
                             f"Received input shapes: y_pred.shape={y_pred.shape} and "
                             f"y_true.shape={y_true.shape}.")
        y_true, y_pred = y_true.astype(np.float64), y_pred.astype(np.float64)
        weight = np.ones(1) if sample_weight is None else to_numpy(sample_weight).astype(
            np.float64)
        if weight.ndim == 1:
            weight = weight[:, None]
        weight = np.broadcast_to(weight, y_true.shape)
        if self.sum is None:
            zeros = np.zeros(y_true.shape[-1])
            self.squared_sum, self.sum, self.total_mse, self.count = (
                zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy())
        self.sum += np.sum(y_true * weight, axis=0)
        self.squared_sum += np.sum(y_true * y_true * weight, axis=0)
        self.total_mse += np.sum(np.square(y_true - y_pred) * weight, axis=0)
        self.count += np.sum(weight, axis=0)
        self.num_samples += y_true.size

    def result(self):
        if self.sum is None:
            return np.float32(0.0)
        mean = self.sum / self.count
        total = self.squared_sum - self.sum * mean
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = 1.0 - self.total_mse / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            r2 = np.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            r2 = np.sum(raw * total) / np.sum(total)
        else:
            r2 = raw
        n, k = self.num_samples, self.num_regressors
        if k and n > k + 1:
            r2 = 1.0 - (1.0 - r2) * (n - 1) / (n - k - 1)
        return np.asarray(r2, dtype=np.float32)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype,
                "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


class FBetaScore(Metric):
    """F-beta score ``(1 + b^2) * P * R / (b^2 * P + R)`` per class, optionally averaged.

    Args:
        average: None (one score per class), ``"micro"``, ``"macro"`` or ``"weighted"``.
        beta: weight of recall relative to precision (> 0).
        threshold: predictions above it count as positive; None marks each row's largest.
        name: metric name.
        dtype: accepted for compatibility.

    Raises:
        ValueError: for an invalid ``average``, ``beta`` or ``threshold``.
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("Invalid `average` argument value. Expected one of: "
                             "{None, 'micro', 'macro', 'weighted'}. "
                             f"Received: average={average}")
        if not isinstance(beta, float):
            raise ValueError("Invalid `beta` argument value. It should be a Python float. "
                             f"Received: beta={beta} of type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError("Invalid `beta` argument value. It should be > 0. "
                             f"Received: beta={beta}")
        if threshold is not None and (not isinstance(threshold, float)
                                      or threshold > 1.0 or threshold <= 0.0):
            raise ValueError("Invalid `threshold` argument value. It should be a Python "
                             f"float in the range ]0, 1]. Received: threshold={threshold}")
        self.average, self.beta, self.threshold = average, beta, threshold
        self.axis = None if average == "micro" else 0
        self.reset_state()

    def reset_state(self) -> None:
        self.true_positives = self.false_positives = None
        self.false_negatives = self.intermediate_weights = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = to_numpy(y_true).astype(np.float32)
        y_pred = to_numpy(y_pred).astype(np.float32)
        if self.threshold is None:
            top = np.max(y_pred, axis=-1, keepdims=True)
            # A row of zeros must not mark every class positive.
            y_pred = (y_pred >= top) & (np.abs(y_pred) > 1e-9)
        else:
            y_pred = y_pred > self.threshold
        y_pred = y_pred.astype(np.float32)
        weight = None if sample_weight is None else to_numpy(sample_weight).astype(
            np.float32)

        def wsum(val):
            if weight is not None:
                val = val * np.expand_dims(weight, 1)
            return np.sum(val, axis=self.axis, dtype=np.float64)

        parts = (wsum(y_pred * y_true), wsum(y_pred * (1 - y_true)),
                 wsum((1 - y_pred) * y_true), wsum(y_true))
        if self.true_positives is None:
            (self.true_positives, self.false_positives, self.false_negatives,
             self.intermediate_weights) = parts
        else:
            self.true_positives = self.true_positives + parts[0]
            self.false_positives = self.false_positives + parts[1]
            self.false_negatives = self.false_negatives + parts[2]
            self.intermediate_weights = self.intermediate_weights + parts[3]

    def result(self):
        if self.true_positives is None:
            return np.float32(0.0)
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        precision = tp / (tp + fp + _EPSILON)
        recall = tp / (tp + fn + _EPSILON)
        b2 = self.beta ** 2
        score = precision * recall / (b2 * precision + recall + _EPSILON) * (1 + b2)
        if self.average == "weighted":
            w = self.intermediate_weights
            score = np.sum(score * w / (np.sum(w) + _EPSILON))
        elif self.average is not None:
            score = np.mean(score)
        return np.asarray(score, dtype=np.float32)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "average": self.average,
                "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score: :class:`FBetaScore` with ``beta=1``.

    Args:
        average: None, ``"micro"``, ``"macro"`` or ``"weighted"``.
        threshold: predictions above it count as positive; None marks each row's largest.
        name: metric name.
        dtype: accepted for compatibility.
    """

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name,
                         dtype=dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["beta"]
        return config
