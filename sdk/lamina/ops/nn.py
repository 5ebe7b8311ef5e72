"""Neural-network ops on the fused primitives of ``backend/nn.py``: dense, dropout,
cross-entropies (Keras's ``ops.*_crossentropy``) and ``normalize``."""

from __future__ import annotations

import numpy as np

from lamina.backend import nn as _nn
from lamina.backend.config import epsilon as _epsilon
from lamina.ops._common import data as _data
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.core import convert_to_tensor, one_hot
from lamina.ops.manipulation import expand_dims, moveaxis
from lamina.ops.math import (
    abs,
    add,
    clip,
    divide,
    log,
    maximum,
    multiply,
    negative,
    power,
    rsqrt,
    square,
    subtract,
)
from lamina.ops.reduction import sum

__all__ = [
    "binary_crossentropy", "categorical_crossentropy", "dense", "dropout", "normalize",
    "sigmoid_cross_entropy", "softmax_cross_entropy", "sparse_categorical_crossentropy",
]


def softmax_cross_entropy(logits, labels, sparse=False, axis=-1):
    """Per-sample cross-entropy of ``softmax(logits)`` against ``labels``, fused."""
    return _nn.SoftmaxCrossEntropy.apply(logits, labels, sparse=sparse, axis=axis)


def sigmoid_cross_entropy(logits, labels):
    """Elementwise binary cross-entropy of ``sigmoid(logits)`` against ``labels``."""
    return _nn.SigmoidCrossEntropy.apply(logits, labels)


def dense(x, kernel, bias=None, activation=None):
    """``x @ kernel + bias`` as one fused node (with ReLU fused when asked)."""
    if activation == "relu":
        return _nn.ReluDense.apply(x, kernel, bias)
    return _nn.Dense.apply(x, kernel, bias)


def dropout(x, rate, noise_shape=None, rng=None):
    """Inverted dropout: zero a fraction ``rate`` and scale the rest by ``1/(1-rate)``."""
    from lamina.backend.random import get_rng

    rng = rng or get_rng()
    d = _data(x)
    shape_ = d.shape if noise_shape is None else tuple(
        n if n is not None else d.shape[i] for i, n in enumerate(noise_shape))
    keep = rng.random(shape_, dtype=np.float32) >= rate
    mask = keep.astype(d.dtype) * np.asarray(1.0 / (1.0 - rate), dtype=d.dtype)
    return _nn.Dropout.apply(x, mask)


def _same_shapes(target, output):
    if tuple(shape(target)) != tuple(shape(output)):
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. Received: "
            f"target.shape={shape(target)}, output.shape={shape(output)}")


def _logits_of(output):
    # Probabilities that came from sigmoid/softmax carry their logits (Keras's TF backend).
    return getattr(output, "_keras_logits", None)


def _targets(target, output):
    dtype = _data(output).dtype
    return convert_to_tensor(target, dtype=dtype if dtype.kind == "f" else None)


def binary_crossentropy(target, output, from_logits=False):
    """Elementwise binary cross-entropy, Keras's ``ops.binary_crossentropy``.

    Args:
        target: labels in ``[0, 1]``, the shape of ``output``.
        output: probabilities, or logits when ``from_logits``.
        from_logits: whether ``output`` holds logits.

    Returns:
        The loss of each element. Probabilities are clipped to ``[eps, 1 - eps]``.
    """
    output = convert_to_tensor(output)
    target = _targets(target, output)
    _same_shapes(target, output)
    logits = output if from_logits else _logits_of(output)
    if logits is not None:
        return sigmoid_cross_entropy(logits, target)
    eps = _epsilon()
    p = clip(output, eps, 1.0 - eps)
    return negative(add(multiply(target, log(p)),
                        multiply(subtract(1.0, target), log(subtract(1.0, p)))))


def _log_probs(output, axis):
    # Keras rescales probabilities to sum to 1, then clips before the log.
    eps = _epsilon()
    return log(clip(divide(output, sum(output, axis=axis, keepdims=True)), eps, 1.0 - eps))


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Cross-entropy against one-hot/probability targets, reduced over ``axis``.

    Args:
        target: targets, the shape of ``output``.
        output: probabilities, or logits when ``from_logits``.
        from_logits: whether ``output`` holds logits.
        axis: the class axis.

    Returns:
        The loss of each sample (``axis`` reduced).
    """
    output = convert_to_tensor(output)
    target = _targets(target, output)
    _same_shapes(target, output)
    logits = output if from_logits else _logits_of(output)
    if logits is not None:
        return softmax_cross_entropy(logits, target, axis=axis)
    return negative(sum(multiply(target, _log_probs(output, axis)), axis=axis))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Cross-entropy against integer class ids, reduced over the class ``axis``.

    Args:
        target: class ids, the shape of ``output`` without ``axis`` (a trailing axis of
            size 1 is dropped).
        output: probabilities, or logits when ``from_logits``.
        from_logits: whether ``output`` holds logits.
        axis: the class axis.

    Returns:
        The loss of each sample.
    """
    output = convert_to_tensor(output)
    labels = np.asarray(_data(target))
    if labels.ndim == output.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    logits = output if from_logits else _logits_of(output)
    if axis not in (-1, output.ndim - 1):
        output = moveaxis(output, axis, -1)
        logits = None if logits is None else moveaxis(logits, axis, -1)
    if labels.shape != output.shape[:-1]:
        raise ValueError(
            "Argument `target` must have the shape of `output` without the class axis. "
            f"Received: target.shape={labels.shape}, output.shape={output.shape}")
    labels = labels.astype(np.intp)
    if logits is not None:
        return softmax_cross_entropy(logits, labels, sparse=True)
    hot = one_hot(labels, output.shape[-1], dtype=output.dtype)
    return negative(sum(multiply(hot, _log_probs(output, -1)), axis=-1))


def normalize(x, axis=-1, order=2, epsilon=None):
    """``x`` divided by its ``order``-norm along ``axis`` (Keras's ``ops.normalize``).

    Args:
        x: input tensor.
        axis: the axis normalised.
        order: an int >= 1; 2 is the euclidean norm.
        epsilon: lower bound of the norm (``keras.backend.epsilon()`` by default).

    Returns:
        The normalised tensor, the shape of ``x``.

    Raises:
        ValueError: when ``order`` is not an int >= 1.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an int >= 1. Received: order={order!r}")
    if len(shape(x)) == 0:
        x = expand_dims(x, 0)
    eps = _epsilon() if epsilon is None else epsilon
    if order == 2:
        # rsqrt(max(s, eps**2)) == min(rsqrt(s), 1/eps), Keras's bound, without a 1/0.
        return multiply(x, rsqrt(maximum(sum(square(x), axis=axis, keepdims=True), eps**2)))
    if order == 1:
        norm = sum(abs(x), axis=axis, keepdims=True)
    else:
        norm = power(sum(power(abs(x), float(order)), axis=axis, keepdims=True), 1.0 / order)
    return divide(x, maximum(norm, eps))


export(globals(), __all__)
