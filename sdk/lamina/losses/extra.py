"""Focal, overlap (Dice, Tversky) and generalized cross-entropy losses, as Keras 3 defines
them, composed from :mod:`lamina.ops` so gradients come for free."""

from __future__ import annotations

from lamina import ops
from lamina.losses.functions import _prepare
from lamina.losses.loss import EPSILON, LossFunctionWrapper


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25,
                              gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary crossentropy scaled by ``(1 - p_t) ** gamma``, averaged over ``axis``.

    Args:
        y_true: targets in ``[0, 1]``.
        y_pred: probabilities, or logits when ``from_logits``.
        apply_class_balancing: weigh positives by ``alpha`` and negatives by ``1 - alpha``.
        alpha: the class-balancing weight.
        gamma: the focusing parameter.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: targets become ``y * (1 - s) + 0.5 * s``.
        axis: the axis averaged over.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    if label_smoothing:
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    one_minus_t = ops.subtract(1.0, y_true)
    bce = ops.negative(ops.add(ops.multiply(y_true, ops.log(p)),
                               ops.multiply(one_minus_t, ops.log(ops.subtract(1.0, p)))))
    p_t = ops.add(ops.multiply(y_true, y_pred),
                  ops.multiply(one_minus_t, ops.subtract(1.0, y_pred)))
    focal = ops.multiply(ops.power(ops.subtract(1.0, p_t), gamma), bce)
    if apply_class_balancing:
        weight = ops.add(ops.multiply(y_true, alpha), ops.multiply(one_minus_t, 1.0 - alpha))
        focal = ops.multiply(weight, focal)
    return ops.mean(focal, axis=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1):
    """Categorical crossentropy scaled by ``alpha * (1 - p) ** gamma``, summed over ``axis``.

    Args:
        y_true: one-hot targets.
        y_pred: probabilities, or logits when ``from_logits``.
        alpha: the weighting factor.
        gamma: the focusing parameter.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: targets become ``y * (1 - s) + s / num_classes``.
        axis: the class axis.

    Returns:
        Per-sample losses.

    Raises:
        ValueError: if ``axis`` is a bool.
    """
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type "
                         f"{type(axis)}")
    y_true, y_pred = _prepare(y_true, y_pred)
    if label_smoothing:
        num_classes = y_true.shape[-1]
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing),
                         label_smoothing / num_classes)
    if from_logits:
        y_pred = ops.softmax(y_pred, axis=axis)
    output = ops.divide(y_pred, ops.sum(y_pred, axis=axis, keepdims=True))
    output = ops.clip(output, EPSILON, 1.0 - EPSILON)
    cce = ops.negative(ops.multiply(y_true, ops.log(output)))
    factor = ops.multiply(ops.power(ops.subtract(1.0, output), gamma), alpha)
    return ops.sum(ops.multiply(factor, cce), axis=axis)


def dice(y_true, y_pred, axis=None):
    """``1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + 1e-7)`` over ``axis``.

    Args:
        y_true: targets.
        y_pred: predictions.
        axis: axes reduced (None: all, giving a scalar).

    Returns:
        Dice loss values.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    intersection = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    total = ops.add(ops.add(ops.sum(y_true, axis=axis), ops.sum(y_pred, axis=axis)), EPSILON)
    return ops.subtract(1.0, ops.divide(ops.multiply(intersection, 2.0), total))


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """``1 - TP / (TP + alpha * FP + beta * FN + 1e-7)`` with soft counts over ``axis``.

    Keras counts ``FP`` as ``sum((1 - y_pred) * y_true)`` and ``FN`` as
    ``sum(y_pred * (1 - y_true))``; the same is done here for equal values.

    Args:
        y_true: targets.
        y_pred: predictions.
        alpha: weight of the first mismatch term.
        beta: weight of the second mismatch term.
        axis: axes reduced (None: all).

    Returns:
        Tversky loss values.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    intersection = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    fp = ops.sum(ops.multiply(ops.subtract(1.0, y_pred), y_true), axis=axis)
    fn = ops.sum(ops.multiply(y_pred, ops.subtract(1.0, y_true)), axis=axis)
    denom = ops.add(ops.add(ops.add(intersection, ops.multiply(fp, alpha)),
                            ops.multiply(fn, beta)), EPSILON)
    return ops.subtract(1.0, ops.divide(intersection, denom))


def categorical_generalized_cross_entropy(y_true, y_pred, q):
    """``(1 - p_y ** q) / q`` with ``p_y`` the predicted probability of the true class.

    Args:
        y_true: integer class ids, shape ``(batch,)`` or ``(batch, 1)``.
        y_pred: class probabilities, shape ``(batch, num_classes)``.
        q: the noise parameter in ``(0, 1)``.

    Returns:
        Per-sample losses.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    labels = ops.cast(ops.convert_to_tensor(y_true), "int32")
    one_hot = ops.cast(ops.one_hot(labels, y_pred.shape[-1]), y_pred.dtype)
    p = ops.sum(ops.multiply(y_pred, one_hot), axis=-1)
    return ops.divide(ops.subtract(1.0, ops.power(p, q)), q)


class BinaryFocalCrossentropy(LossFunctionWrapper):
    """Binary focal crossentropy (see :func:`binary_focal_crossentropy` for the arguments)."""

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_focal_crossentropy", dtype=None):
        super().__init__(binary_focal_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, apply_class_balancing=apply_class_balancing,
                         alpha=alpha, gamma=gamma, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class CategoricalFocalCrossentropy(LossFunctionWrapper):
    """Categorical focal crossentropy (arguments of :func:`categorical_focal_crossentropy`)."""

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy",
                 dtype=None):
        super().__init__(categorical_focal_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, alpha=alpha, gamma=gamma, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class Dice(LossFunctionWrapper):
    """Dice loss (see :func:`dice`)."""

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        super().__init__(dice, reduction=reduction, name=name, dtype=dtype, axis=axis)


class Tversky(LossFunctionWrapper):
    """Tversky loss (see :func:`tversky`)."""

    def __init__(self, alpha=0.5, beta=0.5, reduction="sum_over_batch_size", name="tversky",
                 axis=None, dtype=None):
        super().__init__(tversky, reduction=reduction, name=name, dtype=dtype, alpha=alpha,
                         beta=beta, axis=axis)


class CategoricalGeneralizedCrossEntropy(LossFunctionWrapper):
    """Generalized cross-entropy (see :func:`categorical_generalized_cross_entropy`).

    Raises:
        ValueError: if ``q`` is not in ``(0, 1)``.
    """

    def __init__(self, q=0.5, reduction="sum_over_batch_size",
                 name="categorical_generalized_cross_entropy", dtype=None):
        if not 0 < q < 1:
            raise ValueError(f"q must be in the interval (0, 1). Received: q={q}")
        super().__init__(categorical_generalized_cross_entropy, reduction=reduction, name=name,
                         dtype=dtype, q=q)
