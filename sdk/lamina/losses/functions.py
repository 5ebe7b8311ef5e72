"""Per-sample loss functions with Keras's names, defaults and formulas.

Each takes ``y_true`` (array-like or Tensor, cast to ``y_pred``'s dtype) and ``y_pred``
(Tensor) and returns one value per sample (the last axis reduced), built from
:mod:`lamina.ops` so gradients come for free.

Example:
    >>> import numpy as np
    >>> from lamina import losses
    >>> losses.mean_squared_error(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]])).numpy()
    array([0.5], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from lamina import ops
from lamina.backend.tensor import Tensor
from lamina.losses.loss import EPSILON


def _prepare(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    return y_true, y_pred


def _logits_of(y_pred):
    return getattr(y_pred, "_keras_logits", None)


def mean_squared_error(y_true, y_pred):
    """``mean(square(y_true - y_pred), axis=-1)``.

    Args:
        y_true: targets, shape ``(batch, ..., d)``.
        y_pred: predictions, same shape.

    Returns:
        Per-sample losses, shape ``(batch, ...)``.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return ops.mean(ops.square(ops.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """``mean(abs(y_true - y_pred), axis=-1)``.

    Args:
        y_true: targets.
        y_pred: predictions.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return ops.mean(ops.abs(ops.subtract(y_true, y_pred)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """``100 * mean(abs((y_true - y_pred) / max(abs(y_true), epsilon)), axis=-1)``.

    Args:
        y_true: targets.
        y_pred: predictions.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    diff = ops.abs(ops.divide(ops.subtract(y_true, y_pred),
                              ops.maximum(ops.abs(y_true), EPSILON)))
    return ops.multiply(ops.mean(diff, axis=-1), 100.0)


def mean_squared_logarithmic_error(y_true, y_pred):
    """``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)``.

    Args:
        y_true: targets.
        y_pred: predictions.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    first = ops.log(ops.add(ops.maximum(y_pred, EPSILON), 1.0))
    second = ops.log(ops.add(ops.maximum(y_true, EPSILON), 1.0))
    return ops.mean(ops.square(ops.subtract(first, second)), axis=-1)


def huber(y_true, y_pred, delta=1.0):
    """Quadratic for ``|error| <= delta``, linear beyond, averaged over the last axis.

    ``0.5 * error**2`` if ``|error| <= delta`` else ``delta * |error| - 0.5 * delta**2``.

    Args:
        y_true: targets.
        y_pred: predictions.
        delta: where the loss turns from quadratic to linear.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    error = ops.subtract(y_pred, y_true)
    abs_error = ops.abs(error)
    quadratic = ops.multiply(ops.square(error), 0.5)
    linear = ops.subtract(ops.multiply(abs_error, delta), 0.5 * delta * delta)
    return ops.mean(ops.where(abs_error.data <= delta, quadratic, linear), axis=-1)


def log_cosh(y_true, y_pred):
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed without overflow.

    Args:
        y_true: targets.
        y_pred: predictions.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    x = ops.subtract(y_pred, y_true)
    # log(cosh(x)) = x + softplus(-2x) - log(2), finite for any x.
    value = ops.subtract(ops.add(x, ops.softplus(ops.multiply(x, -2.0))), math.log(2.0))
    return ops.mean(value, axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary crossentropy, averaged over ``axis``.

    When ``y_pred`` came from ``sigmoid`` (and ``from_logits=False``), the loss is
    computed from its logits, stably, as Keras's TensorFlow backend does; otherwise
    probabilities are clipped to ``[1e-7, 1 - 1e-7]``.

    Args:
        y_true: targets in ``[0, 1]``.
        y_pred: probabilities, or logits when ``from_logits``.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: in ``[0, 1]``; targets become ``y * (1 - s) + 0.5 * s``.
        axis: the axis averaged over.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    if label_smoothing:
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    logits = y_pred if from_logits else _logits_of(y_pred)
    if logits is not None:
        return ops.mean(ops.sigmoid_cross_entropy(logits, y_true), axis=axis)
    p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    bce = ops.add(ops.multiply(y_true, ops.log(p)),
                  ops.multiply(ops.subtract(1.0, y_true), ops.log(ops.subtract(1.0, p))))
    return ops.negative(ops.mean(bce, axis=axis))


def _normalized_log_probs(y_pred, axis):
    # Keras rescales probabilities to sum to 1, then clips before the log.
    p = ops.divide(y_pred, ops.sum(y_pred, axis=axis, keepdims=True))
    return ops.log(ops.clip(p, EPSILON, 1.0 - EPSILON))


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Crossentropy between one-hot (or probability) targets and predictions.

    When ``y_pred`` came from ``softmax`` (and ``from_logits=False``), the fused
    ``ops.softmax_cross_entropy`` runs on its logits, as Keras's TensorFlow backend
    does; otherwise probabilities are renormalised and clipped to ``[1e-7, 1 - 1e-7]``.

    Args:
        y_true: one-hot or probability targets, same shape as ``y_pred``.
        y_pred: probabilities, or logits when ``from_logits``.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: in ``[0, 1]``; targets become ``y * (1 - s) + s / num_classes``.
        axis: the class axis.

    Returns:
        Per-sample losses (``axis`` reduced).

    Raises:
        ValueError: when ``axis`` is a bool (a misplaced ``from_logits``).
    """
    if isinstance(axis, bool):
        raise ValueError(
            f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}")
    y_true, y_pred = _prepare(y_true, y_pred)
    if label_smoothing:
        num_classes = y_true.shape[axis]
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing),
                         label_smoothing / num_classes)
    logits = y_pred if from_logits else _logits_of(y_pred)
    if logits is not None:
        return ops.softmax_cross_entropy(logits, y_true, axis=axis)
    log_p = _normalized_log_probs(y_pred, axis)
    return ops.negative(ops.sum(ops.multiply(y_true, log_p), axis=axis))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """Crossentropy between integer class ids and predicted class probabilities.

    Args:
        y_true: class ids, shape ``y_pred.shape`` without ``axis`` (a trailing axis
            of size 1 is squeezed).
        y_pred: probabilities, or logits when ``from_logits``.
        from_logits: whether ``y_pred`` holds logits.
        ignore_class: a class id whose samples get zero loss and are left out of
            the mean (the result carries the mask in ``_keras_mask``).
        axis: the class axis.

    Returns:
        Per-sample losses.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    labels = np.asarray(y_true.data if isinstance(y_true, Tensor) else y_true)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    logits = y_pred if from_logits else _logits_of(y_pred)
    if axis not in (-1, y_pred.ndim - 1):
        y_pred = ops.moveaxis(y_pred, axis, -1)
        logits = None if logits is None else ops.moveaxis(logits, axis, -1)
    valid = None
    if ignore_class is not None:
        valid = labels != ignore_class
        labels = np.where(valid, labels, 0)
    labels = labels.astype(np.intp)
    if logits is not None:
        res = ops.softmax_cross_entropy(logits, labels, sparse=True)
    else:
        log_p = _normalized_log_probs(y_pred, -1)
        one_hot = ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        res = ops.negative(ops.sum(ops.multiply(one_hot, log_p), axis=-1))
    if valid is not None:
        res = ops.where(valid, res, 0.0)
        res._keras_mask = valid
    return res


def kl_divergence(y_true, y_pred):
    """``sum(y_true * log(y_true / y_pred), axis=-1)``, both clipped to ``[1e-7, 1]``.

    Args:
        y_true: target distributions.
        y_pred: predicted distributions.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    y_true = ops.clip(y_true, EPSILON, 1.0)
    y_pred = ops.clip(y_pred, EPSILON, 1.0)
    return ops.sum(ops.multiply(y_true, ops.log(ops.divide(y_true, y_pred))), axis=-1)


def poisson(y_true, y_pred):
    """``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``.

    Args:
        y_true: targets (counts).
        y_pred: predicted rates.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return ops.mean(ops.subtract(y_pred, ops.multiply(y_true, ops.log(ops.add(y_pred, EPSILON)))),
                    axis=-1)


def _hinge_labels(y_true):
    # Keras maps {0, 1} labels to {-1, 1}; labels already in {-1, 1} are kept.
    data = y_true.data
    if np.all((data == 0) | (data == 1)):
        return ops.subtract(ops.multiply(y_true, 2.0), 1.0)
    return y_true


def _hinge_margins(y_true, y_pred):
    """``maximum(1 - y_true * y_pred, 0)``, 0/1 labels made -1/1 first."""
    y_true, y_pred = _prepare(y_true, y_pred)
    margin = ops.subtract(1.0, ops.multiply(_hinge_labels(y_true), y_pred))
    return ops.maximum(margin, 0.0)


def hinge(y_true, y_pred):
    """``mean(maximum(1 - y_true * y_pred, 0), axis=-1)``; 0/1 labels become -1/1.

    Args:
        y_true: labels in ``{-1, 1}`` (or ``{0, 1}``).
        y_pred: predictions.

    Returns:
        Per-sample losses.
    """
    return ops.mean(_hinge_margins(y_true, y_pred), axis=-1)


def squared_hinge(y_true, y_pred):
    """``mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)``; 0/1 labels become -1/1.

    Args:
        y_true: labels in ``{-1, 1}`` (or ``{0, 1}``).
        y_pred: predictions.

    Returns:
        Per-sample losses.
    """
    return ops.mean(ops.square(_hinge_margins(y_true, y_pred)), axis=-1)


def categorical_hinge(y_true, y_pred):
    """``maximum(neg - pos + 1, 0)`` with ``pos = sum(y_true * y_pred)`` and
    ``neg = max((1 - y_true) * y_pred)`` over the last axis.

    Args:
        y_true: one-hot targets.
        y_pred: predictions.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    pos = ops.sum(ops.multiply(y_true, y_pred), axis=-1)
    neg = ops.max(ops.multiply(ops.subtract(1.0, y_true), y_pred), axis=-1)
    return ops.maximum(ops.add(ops.subtract(neg, pos), 1.0), 0.0)


def _l2_normalize(x, axis):
    # x / max(||x||, eps), with the max taken before the sqrt so a zero vector has
    # a zero (not nan) gradient.
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.divide(x, ops.sqrt(ops.maximum(square_sum, EPSILON * EPSILON)))


def cosine_similarity(y_true, y_pred, axis=-1):
    """Negative cosine similarity: ``-sum(l2_normalize(y_true) * l2_normalize(y_pred))``.

    Values lie in ``[-1, 1]``; -1 means the vectors point the same way (so
    minimising it aligns predictions with targets).

    Args:
        y_true: targets.
        y_pred: predictions.
        axis: the axis along which similarity is computed.

    Returns:
        Per-sample losses.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    return ops.negative(ops.sum(ops.multiply(_l2_normalize(y_true, axis),
                                             _l2_normalize(y_pred, axis)), axis=axis))


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence
bce = BCE = binary_crossentropy
logcosh = log_cosh
