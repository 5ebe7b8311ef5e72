"""The ``Loss`` base class and Keras's weighting and reduction rules.

A loss function maps ``(y_true, y_pred)`` to one value per sample; a ``Loss`` object
applies ``sample_weight`` (and any mask the function set) and reduces.
"""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend.tensor import Tensor

REDUCTIONS = ("sum_over_batch_size", "sum", "none", "mean", "mean_with_sample_weight")

# Keras's backend.epsilon(): clips probabilities and guards divisions.
EPSILON = 1e-7


def standardize_reduction(reduction):
    """Return ``reduction`` if Keras accepts it (None means ``"none"``).

    Raises:
        ValueError: for any other value, naming it.
    """
    if reduction is None:
        return "none"
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of {REDUCTIONS}. "
            f"Received: reduction={reduction!r}")
    return reduction


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Make ranks equal when they differ by a trailing axis of size 1 (Keras's rule)."""
    r1, r2 = len(ops.shape(x1)), len(ops.shape(x2))
    if r1 == r2 + 1 and ops.shape(x1)[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = ops.expand_dims(x2, -1)
        else:
            x1 = ops.squeeze(x1, axis=-1)
    elif r2 == r1 + 1 and ops.shape(x2)[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = ops.expand_dims(x1, -1)
        else:
            x2 = ops.squeeze(x2, axis=-1)
    return x1, x2


def _apply_mask(sample_weight, mask, reduction, dtype):
    if mask is None:
        return sample_weight
    mask = np.asarray(mask, dtype=dtype)
    if reduction in ("mean", "sum_over_batch_size"):
        # Masked entries weigh 0 and valid ones total/valid, so the mean over all
        # entries equals the mean over the valid ones.
        mask = mask * (mask.size / (mask.sum() + EPSILON))
    if sample_weight is None:
        return Tensor(mask.astype(dtype, copy=False))
    mask, sample_weight = squeeze_or_expand_to_same_rank(Tensor(mask), sample_weight)
    return ops.multiply(sample_weight, mask)


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size"):
    """Weight per-sample ``values`` and reduce them as Keras does.

    ``sum_over_batch_size`` (and ``mean``) divide the weighted sum by the number of
    entries of ``values``, whatever the weights; ``mean_with_sample_weight`` divides
    by the sum of the weights instead.

    Args:
        values: per-sample losses (Tensor).
        sample_weight: optional weights broadcastable to ``values`` (a ``(batch,)``
            vector weights each sample of a ``(batch, ...)`` loss).
        mask: optional boolean mask of ``values``' shape (entries to ignore are False).
        reduction: one of :data:`REDUCTIONS` or None.

    Returns:
        A scalar Tensor, or ``values`` weighted when the reduction is ``"none"``.
    """
    reduction = standardize_reduction(reduction)
    values = ops.convert_to_tensor(values)
    dtype = values.data.dtype
    if sample_weight is not None or mask is not None:  # none: every plain compiled loss
        if sample_weight is not None:
            sample_weight = ops.convert_to_tensor(sample_weight, dtype=values.dtype)
        sample_weight = _apply_mask(sample_weight, mask, reduction, values.dtype)
        if sample_weight is not None:
            values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
            extra = len(values.shape) - len(sample_weight.shape)
            if extra > 0:
                # Weights per sample apply to every entry of that sample.
                sample_weight = ops.reshape(sample_weight,
                                            sample_weight.shape + (1,) * extra)
            values = ops.multiply(values, sample_weight)
    if reduction == "none" or values.shape in ((), (0,)):
        return values
    loss = ops.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = float(np.sum(np.broadcast_to(sample_weight.data, values.shape)))
    else:
        divisor = float(values.size)
    return ops.divide(loss, np.asarray(divisor or 1.0, dtype=dtype))


class Loss:
    """Base of every loss object: ``loss(y_true, y_pred, sample_weight=None)``.

    Subclasses implement ``call(y_true, y_pred)`` returning per-sample losses;
    ``__call__`` converts the inputs, weights and reduces.

    Args:
        name: the loss's name.
        reduction: ``"sum_over_batch_size"`` (Keras's default: the weighted sum
            divided by the number of entries), ``"sum"``, ``"mean"`` (same as
            ``"sum_over_batch_size"``), ``"mean_with_sample_weight"`` or
            ``"none"``/None.
        dtype: dtype of the computation; ``y_pred``'s (or ``floatx()``) when None.

    Raises:
        ValueError: for an unknown ``reduction``.
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or _snake(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self.dtype = dtype

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        losses = self.call(y_true, y_pred)
        mask = getattr(losses, "_keras_mask", None)
        return reduce_weighted_values(losses, sample_weight=sample_weight, mask=mask,
                                      reduction=self.reduction)

    def call(self, y_true, y_pred):
        """Per-sample losses of ``y_pred`` against ``y_true``; subclasses implement it."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor arguments, for ``from_config``."""
        config = {"name": self.name, "reduction": self.reduction}
        if self.dtype is not None:
            config["dtype"] = self.dtype
        return config

    @classmethod
    def from_config(cls, config):
        """Build the loss from ``get_config()``'s output."""
        return cls(**config)


class LossFunctionWrapper(Loss):
    """A ``Loss`` around a per-sample loss function and its keyword arguments.

    Args:
        fn: ``fn(y_true, y_pred, **kwargs)`` returning per-sample losses.
        reduction: see :class:`Loss`.
        name: the loss's name.
        dtype: see :class:`Loss`.
        **kwargs: fixed keyword arguments of ``fn`` (they are part of the config).
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self._fn_kwargs)
        return config


def _snake(name: str) -> str:
    out = [name[0].lower()]
    for ch in name[1:]:
        out.append("_" + ch.lower() if ch.isupper() else ch)
    return "".join(out)
