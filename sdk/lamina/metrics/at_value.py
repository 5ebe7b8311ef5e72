"""Best value of one rate subject to a floor on another, over Keras's evenly spaced
thresholds: SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall and
RecallAtPrecision."""

from __future__ import annotations

import numpy as np

from lamina.metrics.confusion import _divide_no_nan, _ThresholdMetric

_EPSILON = 1e-7


def _thresholds(num_thresholds):
    inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    return [0.0 - _EPSILON] + inner + [1.0 + _EPSILON]


class _AtValue(_ThresholdMetric):
    _value_name = ""

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if value < 0 or value > 1:
            raise ValueError(f"Argument `{self._value_name}` must be in the range [0, 1]. "
                             f"Received: {self._value_name}={value}")
        if num_thresholds <= 0:
            raise ValueError("Argument `num_thresholds` must be an integer > 0. "
                             f"Received: num_thresholds={num_thresholds}")
        self.value, self.num_thresholds = value, num_thresholds
        super().__init__(_thresholds(num_thresholds), None, class_id, name, dtype)

    def _rates(self):
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        return {"sensitivity": _divide_no_nan(tp, tp + fn),
                "specificity": _divide_no_nan(tn, tn + fp),
                "precision": _divide_no_nan(tp, tp + fp),
                "recall": _divide_no_nan(tp, tp + fn)}

    def _best(self, constrained, dependent):
        rates = self._rates()
        feasible = rates[constrained] >= self.value
        if not feasible.any():
            return np.float32(0.0)
        return np.float32(np.max(rates[dependent][feasible]))

    def get_config(self) -> dict:
        return {self._value_name: self.value, "num_thresholds": self.num_thresholds,
                "class_id": self.class_id, "name": self.name, "dtype": self.dtype}


class SensitivityAtSpecificity(_AtValue):
    """Best sensitivity ``TP / (TP + FN)`` at a specificity of at least ``specificity``.

    Args:
        specificity: the floor, in ``[0, 1]``.
        num_thresholds: number of thresholds tried.
        class_id: compute for this class column only.
        name: metric name.
        dtype: accepted for compatibility.

    Raises:
        ValueError: for ``specificity`` outside ``[0, 1]`` or ``num_thresholds <= 0``.
    """

    _value_name = "specificity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)
        self.specificity = specificity

    def result(self):
        return self._best("specificity", "sensitivity")


class SpecificityAtSensitivity(_AtValue):
    """Best specificity ``TN / (TN + FP)`` at a sensitivity of at least ``sensitivity``.

    Args:
        sensitivity: the floor, in ``[0, 1]``.
        num_thresholds: number of thresholds tried.
        class_id: compute for this class column only.
        name: metric name.
        dtype: accepted for compatibility.

    Raises:
        ValueError: for ``sensitivity`` outside ``[0, 1]`` or ``num_thresholds <= 0``.
    """

    _value_name = "sensitivity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)
        self.sensitivity = sensitivity

    def result(self):
        return self._best("sensitivity", "specificity")


class PrecisionAtRecall(_AtValue):
    """Best precision at a recall of at least ``recall``.

    Args:
        recall: the floor, in ``[0, 1]``.
        num_thresholds: number of thresholds tried.
        class_id: compute for this class column only.
        name: metric name.
        dtype: accepted for compatibility.

    Raises:
        ValueError: for ``recall`` outside ``[0, 1]`` or ``num_thresholds <= 0``.
    """

    _value_name = "recall"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)
        self.recall = recall

    def result(self):
        return self._best("recall", "precision")


class RecallAtPrecision(_AtValue):
    """Best recall at a precision of at least ``precision``.

    Args:
        precision: the floor, in ``[0, 1]``.
        num_thresholds: number of thresholds tried.
        class_id: compute for this class column only.
        name: metric name.
        dtype: accepted for compatibility.

    Raises:
        ValueError: for ``precision`` outside ``[0, 1]`` or ``num_thresholds <= 0``.
    """

    _value_name = "precision"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)
        self.precision = precision

    def result(self):
        return self._best("precision", "recall")
