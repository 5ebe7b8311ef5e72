"""Confusion-matrix metrics: Precision, Recall and AUC (Keras's thresholds and formulas)."""

from __future__ import annotations

import numpy as np

from lamina.metrics.base import Metric, to_numpy

_EPSILON = 1e-7


def _divide_no_nan(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


def _prepare(y_true, y_pred, sample_weight, class_id=None, top_k=None):
    y_true = to_numpy(y_true).astype(np.float64)
    y_pred = to_numpy(y_pred).astype(np.float64)
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true[..., None]
    if top_k is not None:
        kth = -np.sort(-y_pred, axis=-1)[..., top_k - 1:top_k]
        y_pred = np.where(y_pred >= kth, y_pred, -np.inf)
    weight = None
    if sample_weight is not None:
        weight = to_numpy(sample_weight).astype(np.float64)
        while weight.ndim < y_pred.ndim:
            weight = weight[..., None]
        weight = np.broadcast_to(weight, y_pred.shape)
    if class_id is not None:
        y_true, y_pred = y_true[..., class_id], y_pred[..., class_id]
        weight = None if weight is None else weight[..., class_id]
    y_true = np.broadcast_to(y_true, y_pred.shape).reshape(-1)
    weight = np.ones(y_true.size) if weight is None else weight.reshape(-1)
    return y_true > 0.5, y_pred.reshape(-1), weight


def _counts_above(pred, label, weight, thresholds):
    """Weighted TP, FP, TN, FN for ``pred > t`` at every (sorted) threshold ``t``."""
    # Index of the first threshold >= pred: pred > thresholds[j] exactly for j < idx.
    idx = np.searchsorted(thresholds, pred, side="left")
    n = len(thresholds)
    pos = np.bincount(idx, weights=weight * label, minlength=n + 1)
    neg = np.bincount(idx, weights=weight * ~label, minlength=n + 1)
    # Samples with idx > j are predicted positive at threshold j.
    tp = np.cumsum(pos[::-1])[::-1][1:]
    fp = np.cumsum(neg[::-1])[::-1][1:]
    return tp, fp, neg.sum() - fp, pos.sum() - tp


class _ThresholdMetric(Metric):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k, self.class_id = top_k, class_id
        default = 0.5 if top_k is None else -np.inf
        values = [default] if thresholds is None else (
            list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds])
        self._order = np.argsort(values)
        self.thresholds = np.asarray(values, dtype=np.float64)
        self._scalar = thresholds is None or not isinstance(thresholds, (list, tuple))
        self.reset_state()

    def reset_state(self) -> None:
        n = len(self.thresholds)
        self.true_positives, self.false_positives = np.zeros(n), np.zeros(n)
        self.true_negatives, self.false_negatives = np.zeros(n), np.zeros(n)

    def update_state(self, y_true, y_pred, sample_weight=None):
        label, pred, weight = _prepare(y_true, y_pred, sample_weight, self.class_id, self.top_k)
        sorted_t = self.thresholds[self._order]
        counts = _counts_above(pred, label, weight, sorted_t)
        for store, value in zip((self.true_positives, self.false_positives,
                                 self.true_negatives, self.false_negatives), counts):
            store[self._order] += value

    def _finish(self, value):
        value = value.astype(np.float32)
        return value[0] if self._scalar else value

    def get_config(self) -> dict:
        return {"thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id, "name": self.name, "dtype": self.dtype}


class Precision(_ThresholdMetric):
    """``TP / (TP + FP)`` with predictions ``> threshold`` (default 0.5) counted positive.

    Args:
        thresholds: float or list of floats (one result per threshold).
        top_k: only the top ``k`` predictions per sample may count as positive.
        class_id: compute for this class column only.
        name: metric name (default ``"precision"``).
        dtype: accepted for compatibility.
    """

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision",
                 dtype=None):
        super().__init__(thresholds, top_k, class_id, name, dtype)

    def result(self):
        return self._finish(_divide_no_nan(self.true_positives,
                                           self.true_positives + self.false_positives))


class Recall(_ThresholdMetric):
    """``TP / (TP + FN)`` with predictions ``> threshold`` (default 0.5) counted positive.

    Args:
        thresholds: float or list of floats (one result per threshold).
        top_k: only the top ``k`` predictions per sample may count as positive.
        class_id: compute for this class column only.
        name: metric name (default ``"recall"``).
        dtype: accepted for compatibility.
    """

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall", dtype=None):
        super().__init__(thresholds, top_k, class_id, name, dtype)

    def result(self):
        return self._finish(_divide_no_nan(self.true_positives,
                                           self.true_positives + self.false_negatives))


class AUC(Metric):
    """Area under the ROC or PR curve from a confusion matrix at fixed thresholds.

    Args:
        num_thresholds: number of thresholds (default 200), evenly spaced on [0, 1] plus
            ``-1e-7`` and ``1 + 1e-7`` at the ends.
        curve: ``"ROC"`` or ``"PR"``.
        summation_method: ``"interpolation"``, ``"minoring"`` or ``"majoring"``.
        name: metric name (default ``"auc"``).
        dtype: accepted for compatibility.
        thresholds: explicit thresholds (overrides ``num_thresholds``).
        multi_label: not supported (labels are flattened), must be False.
        num_labels: ignored unless ``multi_label``.
        label_weights: not supported, must be None.
        from_logits: apply a sigmoid to predictions first.

    Raises:
        ValueError: for unsupported options or ``num_thresholds <= 1``.
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name="auc", dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        super().__init__(name=name, dtype=dtype)
        if curve.upper() not in ("ROC", "PR"):
            raise ValueError(f'Invalid `curve` argument value "{curve}". Expected one of: '
                             "'ROC', 'PR'")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f'Invalid `summation_method` argument value "{summation_method}".'
                             " Expected one of: 'interpolation', 'minoring', 'majoring'")
        if multi_label or label_weights is not None:
            raise ValueError("AUC(multi_label=True) and label_weights are not supported yet. "
                             f"Received: multi_label={multi_label}, "
                             f"label_weights={label_weights}")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            num_thresholds = len(inner) + 2
        else:
            if num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.num_thresholds = num_thresholds
        self._init_thresholds = thresholds
        self.thresholds = np.array([0.0 - _EPSILON] + inner + [1.0 + _EPSILON])
        self.curve, self.summation_method = curve.upper(), summation_method
        self.multi_label, self.num_labels, self.label_weights = multi_label, num_labels, None
        self._from_logits = from_logits
        self.reset_state()

    def reset_state(self) -> None:
        n = self.num_thresholds
        self.true_positives, self.false_positives = np.zeros(n), np.zeros(n)
        self.true_negatives, self.false_negatives = np.zeros(n), np.zeros(n)

    def update_state(self, y_true, y_pred, sample_weight=None):
        label, pred, weight = _prepare(y_true, y_pred, sample_weight)
        if self._from_logits:
            pred = 1.0 / (1.0 + np.exp(-pred))
        tp, fp, tn, fn = _counts_above(pred, label, weight, self.thresholds)
        self.true_positives += tp
        self.false_positives += fp
        self.true_negatives += tn
        self.false_negatives += fn

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            increment = slope * (dtp + intercept * np.log(ratio))
        return np.sum(_divide_no_nan(increment, np.maximum(tp[1:] + fn[1:], 0)))

    def result(self):
        if self.curve == "PR" and self.summation_method == "interpolation":
            return np.float32(self._interpolate_pr_auc())
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return np.float32(np.sum((x[:-1] - x[1:]) * heights))

    def get_config(self) -> dict:
        return {"num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "name": self.name,
                "dtype": self.dtype, "thresholds": self._init_thresholds,
                "multi_label": self.multi_label, "num_labels": self.num_labels,
                "label_weights": None, "from_logits": self._from_logits}
