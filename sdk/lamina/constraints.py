"""Weight constraints, applied by the optimizer to a variable after each update.

A constraint maps the variable's value to a new ndarray (Keras semantics, numpy math).
"""

from __future__ import annotations

import numpy as np

from lamina.utils.object_family import ObjectFamily

_EPSILON = 1e-7


def _value(w) -> np.ndarray:
    return np.asarray(getattr(w, "data", w))


def _norms(w: np.ndarray, axis) -> np.ndarray:
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class Constraint:
    """Base class: ``__call__(w)`` returns the constrained value."""

    def __call__(self, w):
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MaxNorm(Constraint):
    """Rescale weights whose norm along ``axis`` exceeds ``max_value``.

    Args:
        max_value: maximum norm, default 2.
        axis: axis (or axes) along which norms are computed, default 0.
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        w = _value(w)
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (_EPSILON + norms))).astype(w.dtype)

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Zero out negative weights."""

    def __call__(self, w):
        w = _value(w)
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """Rescale to unit norm along ``axis`` (default 0).

    Args:
        axis: axis (or axes) along which norms are computed.
    """

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = _value(w)
        return (w / (_EPSILON + _norms(w, self.axis))).astype(w.dtype)

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move norms along ``axis`` towards ``[min_value, max_value]`` at ``rate``.

    Args:
        min_value: minimum norm, default 0.0.
        max_value: maximum norm, default 1.0.
        rate: 1.0 enforces the bounds exactly; smaller values move part way.
        axis: axis (or axes) along which norms are computed, default 0.
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        w = _value(w)
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (
            1 - self.rate) * norms
        return (w * (desired / (_EPSILON + norms))).astype(w.dtype)

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


ALL_OBJECTS = (Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm)
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
                         "min_max_norm": MinMaxNorm})
max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm


_FAMILY = ObjectFamily("constraint", "keras.constraints", ALL_OBJECTS_DICT, Constraint)


def serialize(constraint):
    """The Keras config envelope of ``constraint`` (None for None).

    Args:
        constraint: a constraint instance (or None).

    Returns:
        ``{"module", "class_name", "config", "registered_name"}``, or None.
    """
    return _FAMILY.serialize(constraint)


deserialize = _FAMILY.deserialize
get = _FAMILY.get
