"""Loss classes: each wraps its loss function with Keras's name and defaults."""

from __future__ import annotations

from lamina.losses import functions as F
from lamina.losses.loss import LossFunctionWrapper

_DOC = """{summary}

    Args:
{args}        reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
            ``"mean_with_sample_weight"`` or ``"none"``/None.
        name: defaults to ``"{name}"``.
        dtype: dtype of the computation (``y_pred``'s when None).
"""


class MeanSquaredError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(F.mean_squared_error, reduction=reduction, name=name, dtype=dtype)


class MeanAbsoluteError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error",
                 dtype=None):
        super().__init__(F.mean_absolute_error, reduction=reduction, name=name, dtype=dtype)


class MeanAbsolutePercentageError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size",
                 name="mean_absolute_percentage_error", dtype=None):
        super().__init__(F.mean_absolute_percentage_error, reduction=reduction, name=name,
                         dtype=dtype)


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size",
                 name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(F.mean_squared_logarithmic_error, reduction=reduction, name=name,
                         dtype=dtype)


class Huber(LossFunctionWrapper):
    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss",
                 dtype=None):
        super().__init__(F.huber, reduction=reduction, name=name, dtype=dtype, delta=delta)


class LogCosh(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(F.log_cosh, reduction=reduction, name=name, dtype=dtype)


class BinaryCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(F.binary_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class CategoricalCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(F.categorical_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 axis=-1, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(F.sparse_categorical_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, from_logits=from_logits, ignore_class=ignore_class,
                         axis=axis)
        self.from_logits = from_logits
        self.ignore_class = ignore_class

    def get_config(self) -> dict:
        # Keras 3.15 leaves ``axis`` out of this config.
        config = super().get_config()
        config.pop("axis", None)
        return config

    def call(self, y_true, y_pred):
        # Integer labels have one axis fewer than y_pred: no rank alignment here.
        return self.fn(y_true, y_pred, **self._fn_kwargs)


class KLDivergence(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(F.kl_divergence, reduction=reduction, name=name, dtype=dtype)


class Poisson(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(F.poisson, reduction=reduction, name=name, dtype=dtype)


class Hinge(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(F.hinge, reduction=reduction, name=name, dtype=dtype)


class SquaredHinge(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None):
        super().__init__(F.squared_hinge, reduction=reduction, name=name, dtype=dtype)


class CategoricalHinge(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None):
        super().__init__(F.categorical_hinge, reduction=reduction, name=name, dtype=dtype)


class CosineSimilarity(LossFunctionWrapper):
    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity",
                 dtype=None):
        super().__init__(F.cosine_similarity, reduction=reduction, name=name, dtype=dtype,
                         axis=axis)
        self.axis = axis


def _document(cls, fn, summary, args=""):
    name = cls.__init__.__defaults__[-2]
    cls.__doc__ = _DOC.format(summary=summary, args=args, name=name)


_SMOOTHING = ("        from_logits: whether ``y_pred`` holds logits.\n"
              "        label_smoothing: float in ``[0, 1]``.\n"
              "        axis: the class axis.\n")
for _cls, _fn, _summary, _args in [
    (MeanSquaredError, F.mean_squared_error, "Mean of squared errors.", ""),
    (MeanAbsoluteError, F.mean_absolute_error, "Mean of absolute errors.", ""),
    (MeanAbsolutePercentageError, F.mean_absolute_percentage_error,
     "Mean absolute percentage error.", ""),
    (MeanSquaredLogarithmicError, F.mean_squared_logarithmic_error,
     "Mean squared logarithmic error.", ""),
    (Huber, F.huber, "Huber loss.",
     "        delta: where the loss turns from quadratic to linear.\n"),
    (LogCosh, F.log_cosh, "Logarithm of the hyperbolic cosine of the error.", ""),
    (BinaryCrossentropy, F.binary_crossentropy, "Binary crossentropy.", _SMOOTHING),
    (CategoricalCrossentropy, F.categorical_crossentropy, "Categorical crossentropy.",
     _SMOOTHING),
    (SparseCategoricalCrossentropy, F.sparse_categorical_crossentropy,
     "Crossentropy with integer class ids.",
     "        from_logits: whether ``y_pred`` holds logits.\n"
     "        ignore_class: class id left out of the loss, or None.\n"
     "        axis: the class axis.\n"),
    (KLDivergence, F.kl_divergence, "Kullback-Leibler divergence.", ""),
    (Poisson, F.poisson, "Poisson loss.", ""),
    (Hinge, F.hinge, "Hinge loss.", ""),
    (SquaredHinge, F.squared_hinge, "Squared hinge loss.", ""),
    (CategoricalHinge, F.categorical_hinge, "Categorical hinge loss.", ""),
    (CosineSimilarity, F.cosine_similarity, "Negative cosine similarity.",
     "        axis: the axis along which similarity is computed.\n"),
]:
    _document(_cls, _fn, _summary, _args)
del _cls, _fn, _summary, _args
