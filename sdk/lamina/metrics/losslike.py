"""Metrics that average a per-sample loss: hinge family, KL divergence, Poisson, log-cosh,
cosine similarity, MAPE and MSLE (values equal to :mod:`lamina.losses`'s functions)."""

from __future__ import annotations

import inspect

import numpy as np

from lamina.losses import extra as _extra
from lamina.losses import functions as _losses
from lamina.metrics.base import MeanMetricWrapper, to_numpy


def _numpy_of(loss_fn):
    def fn(y_true, y_pred, **kwargs):
        y_pred = to_numpy(y_pred)
        if not np.issubdtype(y_pred.dtype, np.floating):
            y_pred = y_pred.astype(np.float32)
        return to_numpy(loss_fn(y_true, y_pred, **kwargs))

    fn.__name__ = loss_fn.__name__
    fn.__signature__ = inspect.signature(loss_fn)  # Keras's parameters, for introspection
    fn.__doc__ = f"Per-sample values of :func:`lamina.losses.{loss_fn.__name__}` as an ndarray."
    return fn


hinge = _numpy_of(_losses.hinge)
squared_hinge = _numpy_of(_losses.squared_hinge)
categorical_hinge = _numpy_of(_losses.categorical_hinge)
kl_divergence = _numpy_of(_losses.kl_divergence)
poisson = _numpy_of(_losses.poisson)
huber = _numpy_of(_losses.huber)
log_cosh = _numpy_of(_losses.log_cosh)
mean_absolute_percentage_error = _numpy_of(_losses.mean_absolute_percentage_error)
mean_squared_logarithmic_error = _numpy_of(_losses.mean_squared_logarithmic_error)
binary_focal_crossentropy = _numpy_of(_extra.binary_focal_crossentropy)
categorical_focal_crossentropy = _numpy_of(_extra.categorical_focal_crossentropy)


def cosine_similarity(y_true, y_pred, axis=-1) -> np.ndarray:
    """Per-sample cosine similarity ``sum(l2_normalize(y_true) * l2_normalize(y_pred))``."""
    return -_numpy_of(_losses.cosine_similarity)(y_true, y_pred, axis=axis)


class _Down(MeanMetricWrapper):
    _direction = "down"

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


class Hinge(_Down):
    """Mean hinge loss ``mean(maximum(1 - y_true * y_pred, 0))`` (0/1 labels become -1/1)."""

    def __init__(self, name="hinge", dtype=None):
        super().__init__(hinge, name=name, dtype=dtype)


class SquaredHinge(_Down):
    """Mean squared hinge loss ``mean(square(maximum(1 - y_true * y_pred, 0)))``."""

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, name=name, dtype=dtype)


class CategoricalHinge(_Down):
    """Mean categorical hinge loss ``maximum(neg - pos + 1, 0)``."""

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, name=name, dtype=dtype)


class KLDivergence(_Down):
    """Mean Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``."""

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name=name, dtype=dtype)


class Poisson(_Down):
    """Mean Poisson loss ``mean(y_pred - y_true * log(y_pred + 1e-7))``."""

    def __init__(self, name="poisson", dtype=None):
        super().__init__(poisson, name=name, dtype=dtype)


class LogCoshError(_Down):
    """Mean of ``log(cosh(y_pred - y_true))``."""

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(log_cosh, name=name, dtype=dtype)


class MeanAbsolutePercentageError(_Down):
    """Mean of ``100 * |y_true - y_pred| / max(|y_true|, 1e-7)``."""

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(_Down):
    """Mean of ``square(log(y_pred + 1) - log(y_true + 1))``."""

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name=name, dtype=dtype)


class CosineSimilarity(MeanMetricWrapper):
    """Mean cosine similarity between labels and predictions (higher is better).

    Args:
        name: metric name.
        dtype: accepted for compatibility.
        axis: the axis along which similarity is computed.
    """

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)
