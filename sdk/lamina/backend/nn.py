"""Fused neural-network primitives, where profiling shows a graph of small ops costs.

Dense (``x @ W + b``), Softmax, LogSoftmax, SoftmaxCrossEntropy (dense or sparse
labels, from logits), SigmoidCrossEntropy (from logits), Dropout (mask multiply).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.parallel import dot
from lamina.backend.primitives import stable_sigmoid


class Dense(Function):
    """``x @ kernel + bias`` in one node; ``x`` may have leading batch dimensions."""

    __slots__ = ("x", "kernel", "has_bias")

    def forward(self, x, kernel, bias=None):
        self.x, self.kernel, self.has_bias = x, kernel, bias is not None
        out = dot(x, kernel)
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        x, kernel = self.x, self.kernel
        gx = dot(g, kernel.T) if self.needs[0] else None
        gk = gb = None
        if x.ndim == 2:
            x2, g2 = x, g
        else:
            x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
        if self.needs[1]:
            gk = dot(x2.T, g2)
        if self.has_bias and self.needs[2]:
            gb = g2.sum(axis=0)
        return gx, gk, gb


class ReluDense(Dense):
    """``relu(x @ kernel + bias)`` in one node: the ReLU mask is applied in place."""

    __slots__ = ("out",)

    def forward(self, x, kernel, bias=None):
        out = super().forward(x, kernel, bias)
        np.maximum(out, 0, out=out)
        self.out = out
        return out

    def backward(self, g):
        return super().backward(g * (self.out > 0))


def _softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= np.sum(shifted, axis=axis, keepdims=True)
    return shifted


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


class Softmax(Function):
    __slots__ = ("out", "axis")

    def forward(self, x, axis=-1):
        self.axis = axis
        self.out = _softmax(x, axis)
        return self.out

    def backward(self, g):
        y = self.out
        return (y * (g - np.sum(g * y, axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    __slots__ = ("out", "axis")

    def forward(self, x, axis=-1):
        self.axis = axis
        self.out = _log_softmax(x, axis)
        return self.out

    def backward(self, g):
        return (g - np.exp(self.out) * np.sum(g, axis=self.axis, keepdims=True),)


class SoftmaxCrossEntropy(Function):
    """Per-sample ``-sum(labels * log_softmax(logits))`` along ``axis``.

    ``labels`` are one-hot/probabilities (same shape as logits) or, with
    ``sparse=True``, integer class ids of the logits' shape without ``axis``.
    """

    __slots__ = ("logp", "labels", "sparse", "axis")

    def forward(self, logits, labels, sparse=False, axis=-1):
        self.axis, self.sparse = axis, sparse
        logp = _log_softmax(logits, axis)
        self.logp = logp
        if sparse:
            labels = np.asarray(labels).astype(np.intp, copy=False)
            self.labels = labels
            picked = np.take_along_axis(logp, np.expand_dims(labels, axis), axis=axis)
            return -np.squeeze(picked, axis=axis)
        # Labels in the logits' dtype: float64 targets must not promote a float32 loss.
        self.labels = np.asarray(labels, dtype=logits.dtype)
        return -np.sum(self.labels * logp, axis=axis)

    def backward(self, g):
        g = np.expand_dims(g, self.axis)
        probs = np.exp(self.logp)
        if self.sparse:
            np.put_along_axis(
                probs, np.expand_dims(self.labels, self.axis),
                np.take_along_axis(probs, np.expand_dims(self.labels, self.axis),
                                   axis=self.axis) - 1, axis=self.axis)
            grad_logits = probs * g
            return grad_logits, None
        label_sum = np.sum(self.labels, axis=self.axis, keepdims=True)
        grad_logits = (probs * label_sum - self.labels) * g
        grad_labels = -self.logp * g if self.needs[1] else None
        return grad_logits, grad_labels


class SigmoidCrossEntropy(Function):
    """Elementwise ``-(y log s(x) + (1-y) log(1-s(x)))`` from logits ``x``, stably."""

    __slots__ = ("logits", "labels")

    def forward(self, logits, labels):
        # Labels in the logits' dtype: float64 targets must not promote a float32 loss.
        labels = np.asarray(labels, dtype=logits.dtype)
        self.logits, self.labels = logits, labels
        return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))

    def backward(self, g):
        grad_logits = g * (stable_sigmoid(self.logits) - self.labels)
        grad_labels = -g * self.logits if self.needs[1] else None
        return grad_logits, grad_labels


class Dropout(Function):
    """``x * mask`` where ``mask`` holds 0 or ``1/(1-rate)``."""

    __slots__ = ("mask",)

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return g * self.mask, None
