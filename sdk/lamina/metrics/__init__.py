"""Stateful metrics with Keras's names: ``update_state`` / ``result`` / ``reset_state``.

``get("mae")`` returns a metric named as typed; ``resolve_accuracy`` picks the accuracy
class for ``"accuracy"``/``"acc"`` from label and prediction shapes, as Keras's compile does.
"""

from __future__ import annotations

from lamina.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from lamina.metrics.at_value import (
    PrecisionAtRecall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
)
from lamina.metrics.base import Mean, MeanMetricWrapper, Metric, Sum
from lamina.metrics.confusion import AUC, Precision, Recall
from lamina.metrics.counts import FalseNegatives, FalsePositives, TrueNegatives, TruePositives
from lamina.metrics.iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from lamina.metrics.losslike import (
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCoshError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Poisson,
    SquaredHinge,
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
    poisson,
    squared_hinge,
)
from lamina.metrics.regression import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MeanAbsoluteError,
    MeanSquaredError,
    RootMeanSquaredError,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    mean_absolute_error,
    mean_squared_error,
    sparse_categorical_crossentropy,
)
from lamina.metrics.stats import (
    ConcordanceCorrelation,
    F1Score,
    FBetaScore,
    PearsonCorrelation,
    R2Score,
    concordance_correlation,
    pearson_correlation,
)

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error

ALL_OBJECTS = (Metric, Mean, Sum, MeanMetricWrapper, Accuracy, BinaryAccuracy,
               CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
               SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
               RootMeanSquaredError, Precision, Recall, AUC, BinaryCrossentropy,
               CategoricalCrossentropy, SparseCategoricalCrossentropy, TruePositives,
               FalsePositives, TrueNegatives, FalseNegatives, Hinge, SquaredHinge,
               CategoricalHinge, KLDivergence, Poisson, LogCoshError, CosineSimilarity,
               MeanAbsolutePercentageError, MeanSquaredLogarithmicError, R2Score,
               FBetaScore, F1Score, PearsonCorrelation, ConcordanceCorrelation, IoU,
               BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU, PrecisionAtRecall,
               RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity)
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
# Function-style names: the metric keeps the string the user typed as its name.
_ALIASES = {
    "accuracy": Accuracy, "acc": Accuracy,
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError, "root_mean_squared_error": RootMeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy":
    CategoricalCrossentropy, "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "kl_divergence": KLDivergence, "poisson": Poisson, "logcosh": LogCoshError,
    "log_cosh": LogCoshError, "cosine_similarity": CosineSimilarity,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "pearson_correlation": PearsonCorrelation,
    "concordance_correlation": ConcordanceCorrelation, "r2_score": R2Score,
    "f1_score": F1Score, "fbeta_score": FBetaScore,
    "auc": AUC, "precision": Precision, "recall": Recall, "mean": Mean, "sum": Sum,
}

__all__ = [name for name in ALL_OBJECTS_DICT] + [
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "mean_squared_error",
    "mean_absolute_error", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "mse", "mae", "MSE", "MAE", "mape", "msle", "MAPE",
    "MSLE", "hinge", "squared_hinge", "categorical_hinge", "kl_divergence", "poisson",
    "huber", "log_cosh", "cosine_similarity", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "binary_focal_crossentropy",
    "categorical_focal_crossentropy", "pearson_correlation", "concordance_correlation",
    "get", "serialize", "deserialize", "resolve_accuracy",
]


def serialize(metric: Metric) -> dict:
    """Return the Keras-style serialized dict of a metric."""
    return {"module": "keras.metrics", "class_name": metric.__class__.__name__,
            "config": metric.get_config(), "registered_name": None}


def deserialize(config: dict, custom_objects=None) -> Metric:
    """Recreate a metric from :func:`serialize` output.

    Raises:
        ValueError: for an unknown class name.
    """
    registry = {**ALL_OBJECTS_DICT, **(custom_objects or {})}
    name = config.get("class_name")
    if name not in registry:
        raise ValueError(f"Could not interpret metric identifier: {name!r}")
    return registry[name].from_config(dict(config.get("config") or {}))


def get(identifier) -> Metric:
    """Resolve a name, a config dict, a ``Metric`` or a function to a ``Metric``.

    Function-style names (``"mae"``, ``"binary_accuracy"``) give a metric named exactly as
    typed; class names (``"AUC"``) give the class's default name; plain functions are
    wrapped in ``MeanMetricWrapper``. ``"accuracy"`` gives ``Accuracy``: training loops
    should call :func:`resolve_accuracy` first, as Keras's ``compile`` does.

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier in _ALIASES:
            return _ALIASES[identifier](name=identifier)
        if identifier in ALL_OBJECTS_DICT and identifier not in ("Metric", "MeanMetricWrapper"):
            return ALL_OBJECTS_DICT[identifier]()
        raise ValueError(f"Could not interpret metric identifier: {identifier!r}. "
                         f"Known names: {sorted(_ALIASES)}")
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


def resolve_accuracy(y_true_shape, y_pred_shape, name="accuracy") -> Metric:
    """Pick Binary/SparseCategorical/CategoricalAccuracy from shapes (Keras's rule).

    Binary if ``y_pred``'s last dimension is 1; sparse if ``y_true`` has lower rank than
    ``y_pred`` or its last dimension is 1 while ``y_pred``'s is not; otherwise categorical.

    Args:
        y_true_shape: shape of the labels.
        y_pred_shape: shape of the predictions.
        name: the metric's name (the string the user typed, e.g. ``"acc"``).
    """
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    t_last = y_true_shape[-1] if y_true_shape else None
    p_last = y_pred_shape[-1] if y_pred_shape else None
    if p_last == 1:
        return BinaryAccuracy(name=name)
    if len(y_true_shape) < len(y_pred_shape) or (t_last == 1 and p_last != 1):
        return SparseCategoricalAccuracy(name=name)
    return CategoricalAccuracy(name=name)
