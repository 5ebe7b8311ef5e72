"""Confusion-matrix condition counts: TruePositives, FalsePositives, TrueNegatives and
FalseNegatives."""

from __future__ import annotations

from lamina.metrics.confusion import _ThresholdMetric


class _ConditionCount(_ThresholdMetric):
    _attr = ""

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(thresholds, None, None, name, dtype)

    def result(self):
        return self._finish(getattr(self, self._attr))

    def get_config(self) -> dict:
        return {"thresholds": self.init_thresholds, "name": self.name, "dtype": self.dtype}


class TruePositives(_ConditionCount):
    """Weighted count of positives predicted ``> threshold`` (default 0.5).

    Args:
        thresholds: float or list of floats (one result per threshold).
        name: metric name (default ``"true_positives"``).
        dtype: accepted for compatibility.
    """

    _attr = "true_positives"


class FalsePositives(_ConditionCount):
    """Weighted count of negatives predicted ``> threshold`` (default 0.5).

    Args:
        thresholds: float or list of floats (one result per threshold).
        name: metric name (default ``"false_positives"``).
        dtype: accepted for compatibility.
    """

    _attr = "false_positives"


class TrueNegatives(_ConditionCount):
    """Weighted count of negatives predicted ``<= threshold`` (default 0.5).

    Args:
        thresholds: float or list of floats (one result per threshold).
        name: metric name (default ``"true_negatives"``).
        dtype: accepted for compatibility.
    """

    _attr = "true_negatives"


class FalseNegatives(_ConditionCount):
    """Weighted count of positives predicted ``<= threshold`` (default 0.5).

    Args:
        thresholds: float or list of floats (one result per threshold).
        name: metric name (default ``"false_negatives"``).
        dtype: accepted for compatibility.
    """

    _attr = "false_negatives"
