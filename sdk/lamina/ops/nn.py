"""Neural-network ops on the fused primitives of ``backend/nn.py``: dense, dropout and
cross-entropies."""

from __future__ import annotations

import numpy as np

from lamina.backend import nn as _nn
from lamina.ops._common import data as _data
from lamina.ops._common import export

__all__ = ["dense", "dropout", "sigmoid_cross_entropy", "softmax_cross_entropy"]


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


export(globals(), __all__)
