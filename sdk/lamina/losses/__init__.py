"""Losses with Keras's names: functions (per-sample values) and ``Loss`` classes.

``get("mse")`` returns the function, ``get("MeanSquaredError")`` an instance,
``serialize``/``deserialize`` convert to and from Keras's config format. Only names
registered here (or passed in ``custom_objects``) are ever resolved.

Example:
    >>> import numpy as np
    >>> from lamina import losses
    >>> loss = losses.MeanSquaredError()
    >>> float(loss(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 0.0]])))
    0.5
"""

from __future__ import annotations

import inspect

from lamina.losses.circle import Circle, circle
from lamina.losses.classes import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from lamina.losses.ctc import CTC, ctc
from lamina.losses.extra import (
    BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
    Dice,
    Tversky,
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
    categorical_generalized_cross_entropy,
    dice,
    tversky,
)
from lamina.losses.functions import (
    BCE,
    KLD,
    MAE,
    MAPE,
    MSE,
    MSLE,
    bce,
    binary_crossentropy,
    categorical_crossentropy,
    categorical_hinge,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    kld,
    log_cosh,
    logcosh,
    mae,
    mape,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    mse,
    msle,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from lamina.losses.loss import Loss, LossFunctionWrapper, reduce_weighted_values

_CLASSES = (
    BinaryCrossentropy, CategoricalCrossentropy, CategoricalHinge, CosineSimilarity, Hinge,
    Huber, KLDivergence, LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredError, MeanSquaredLogarithmicError, Poisson, SparseCategoricalCrossentropy,
    SquaredHinge, Loss, LossFunctionWrapper, BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy, CategoricalGeneralizedCrossEntropy, Dice, Tversky, CTC,
    Circle,
)
_FUNCTIONS = (
    binary_crossentropy, categorical_crossentropy, categorical_hinge, cosine_similarity,
    hinge, huber, kl_divergence, log_cosh, mean_absolute_error,
    mean_absolute_percentage_error, mean_squared_error, mean_squared_logarithmic_error,
    poisson, sparse_categorical_crossentropy, squared_hinge, binary_focal_crossentropy,
    categorical_focal_crossentropy, categorical_generalized_cross_entropy, dice, tversky, ctc,
    circle,
)
_REGISTRY = {obj.__name__: obj for obj in _CLASSES + _FUNCTIONS}
_REGISTRY.update({
    "mse": mse, "MSE": MSE, "mae": mae, "MAE": MAE, "mape": mape, "MAPE": MAPE,
    "msle": msle, "MSLE": MSLE, "kld": kld, "KLD": KLD, "bce": bce, "BCE": BCE,
    "logcosh": logcosh, "kullback_leibler_divergence": kl_divergence,
    "huber_loss": huber,
})

__all__ = sorted(_REGISTRY) + ["deserialize", "get", "reduce_weighted_values", "serialize"]


def serialize(loss):
    """Return the Keras config of a loss.

    Args:
        loss: a ``Loss`` instance or a loss function.

    Returns:
        For an instance, Keras's dict ``{"module": "keras.losses", "class_name": ...,
        "config": ..., "registered_name": None}``; for a function, its name.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(loss, Loss):
        return {"module": "keras.losses", "class_name": type(loss).__name__,
                "config": loss.get_config(), "registered_name": None}
    if callable(loss) and getattr(loss, "__name__", None):
        return loss.__name__
    raise ValueError(f"Cannot serialize loss. Received: loss={loss!r}")


def deserialize(name, custom_objects=None):
    """Return the loss a config names: a function for a function name, an instance for
    a class config.

    Args:
        name: a name, or a dict with ``class_name`` (and ``config``).
        custom_objects: optional dict of extra name -> class or function.

    Returns:
        A loss function or ``Loss`` instance.

    Raises:
        ValueError: for an unknown name or malformed config.
    """
    config = name
    known = {**_REGISTRY, **(custom_objects or {})}
    if isinstance(config, str):
        if config in known:
            return known[config]
    elif isinstance(config, dict) and "class_name" in config:
        name, inner = config["class_name"], config.get("config")
        if name == "function" and isinstance(inner, str) and inner in known:
            return known[inner]
        obj = known.get(name)
        if inspect.isclass(obj):
            return obj.from_config(inner or {})
    raise ValueError(
        f"Unknown loss: {config!r}. Known losses: {sorted(_REGISTRY)}")


def get(identifier):
    """Resolve a loss identifier the way ``compile`` does.

    Args:
        identifier: None, a name (``"mse"``, ``"categorical_crossentropy"``,
            ``"MeanSquaredError"``), a config dict, a ``Loss`` or a callable.

    Returns:
        None, a loss function, or a ``Loss`` instance (classes are instantiated).

    Raises:
        ValueError: when ``identifier`` cannot be interpreted.
    """
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        obj = deserialize(identifier)
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if callable(obj):
        return obj
    raise ValueError(f"Could not interpret loss identifier. Received: {identifier!r}")
