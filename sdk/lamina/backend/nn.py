"""Fused neural-network primitives, where profiling shows a graph of small ops costs.

Dense (``x @ W + b``), Softmax, LogSoftmax, SoftmaxCrossEntropy (dense or sparse
labels, from logits), SigmoidCrossEntropy (from logits), Dropout (mask multiply).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import Function, gradient_destination
from lamina.backend.parallel import matmul_tasks, run_tasks
from lamina.backend.primitives import stable_sigmoid


class Dense(Function):
    """``x @ kernel + bias`` in one node; ``x`` may have leading batch dimensions.

    The GEMMs run in the fixed parts of :func:`lamina.backend.parallel.matmul_tasks`: the
    bias add (and ReLU) is done on each part's slice of the output as soon as that part
    is written, and the backward pass hands the input-gradient GEMM, the kernel-gradient
    GEMM and the bias-gradient sum to the pool together, as one set of parts.
    """

    __slots__ = ("x", "kernel", "has_bias")
    relu = False

    def forward(self, x, kernel, bias=None):
        self.x, self.kernel, self.has_bias = x, kernel, bias is not None
        if x.ndim < 2 or kernel.ndim != 2:
            out = np.matmul(x, kernel)
            if bias is not None:
                out += bias
            return np.maximum(out, 0, out=out) if self.relu else out
        out = np.empty((*x.shape[:-1], kernel.shape[1]), np.result_type(x.dtype, kernel.dtype))
        out2 = out.reshape(-1, kernel.shape[1])
        relu = self.relu

        def epilogue(rows, cols):
            part = out2[rows, cols]
            if bias is not None:
                part += bias[cols]
            if relu:
                np.maximum(part, 0, out=part)

        epilogue = epilogue if bias is not None or relu else None
        run_tasks(matmul_tasks(x.reshape(-1, x.shape[-1]), kernel, out2, epilogue),
                  flops=2 * out2.shape[0] * kernel.size)
        return out

    def backward(self, g):
        x, kernel = self.x, self.kernel
        if x.ndim < 2 or kernel.ndim != 2:
            return self._backward_plain(g)
        x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
        tasks, grads = [], [None, None, None]
        products = int(self.needs[0]) + int(self.needs[1])
        dtype = np.result_type(x2.dtype, g2.dtype)
        if self.needs[1]:
            grads[1] = _destination(self, 1, kernel.shape, dtype)
            if grads[1] is None:
                grads[1] = np.empty(kernel.shape, dtype)
            tasks += matmul_tasks(x2.T, g2, grads[1])
        if self.needs[0]:
            gx = np.empty((*g.shape[:-1], kernel.shape[0]), np.result_type(g.dtype, kernel.dtype))
            tasks += matmul_tasks(g2, kernel.T, gx.reshape(-1, kernel.shape[0]))
            grads[0] = gx
        if self.has_bias and self.needs[2]:
            gb = _destination(self, 2, (g2.shape[1],), g2.dtype)
            tasks.append(lambda: grads.__setitem__(2, g2.sum(axis=0, out=gb)))
        if tasks:
            run_tasks(tasks, flops=2 * products * g2.shape[0] * kernel.size)
        return tuple(grads)

    def _backward_plain(self, g):
        x, kernel = self.x, self.kernel
        gx = np.matmul(g, kernel.T) if self.needs[0] else None
        gk = gb = None
        if self.needs[1]:
            gk = np.matmul(x.reshape(-1, x.shape[-1]).T, g.reshape(-1, g.shape[-1]))
        if self.has_bias and self.needs[2]:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0)
        return gx, gk, gb


def _destination(ctx, index, shape, dtype):
    """The walk's preallocated array for the gradient of ``ctx``'s input ``index``
    (:func:`lamina.backend.autodiff.gradient_destination`) when it fits, else None
    (also when ``ctx`` was not recorded: a backward called directly)."""
    parents = getattr(ctx, "parents", None)
    if parents is None:
        return None
    out = gradient_destination(parents[index])
    if out is None or out.shape != tuple(shape) or out.dtype != dtype:
        return None
    return out


class ReluDense(Dense):
    """``relu(x @ kernel + bias)`` in one node: the ReLU is applied in place, part by part."""

    __slots__ = ("out",)
    relu = True

    def forward(self, x, kernel, bias=None):
        self.out = super().forward(x, kernel, bias)
        return self.out

    def backward(self, g):
        if g.shape != self.out.shape or g.dtype.kind != "f":
            return super().backward(g * (self.out > 0))
        # The mask as 0/1 in g's dtype and multiplied in place: a float-by-float loop
        # instead of float-by-bool (which casts the bool operand through a buffer), one
        # array fewer; the same bits as ``g * (out > 0)`` (1 and 0 convert exactly).
        dy = np.greater(self.out, 0, out=np.empty(g.shape, g.dtype))
        return super().backward(np.multiply(g, dy, out=dy))


# ``np.maximum.reduce``/``np.add.reduce`` are what ``np.max``/``np.sum`` call, minus
# their Python dispatch (a few us a call at a loss's shapes): the same bits.
def _softmax(x, axis):
    shifted = x - np.maximum.reduce(x, axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= np.add.reduce(shifted, axis=axis, keepdims=True)
    return shifted


def _log_softmax(x, axis):
    shifted = x - np.maximum.reduce(x, axis=axis, keepdims=True)
    shifted -= np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))
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

    __slots__ = ("logp", "labels", "sparse", "axis", "rows")

    def forward(self, logits, labels, sparse=False, axis=-1):
        self.axis, self.sparse, self.rows = axis, sparse, None
        logp = _log_softmax(logits, axis)
        self.logp = logp
        if sparse:
            labels = np.asarray(labels).astype(np.intp, copy=False)
            self.labels = labels
            if (axis in (-1, logp.ndim - 1) and labels.shape == logp.shape[:-1]
                    and logp.flags.c_contiguous):
                # Class ids along the last axis: one fancy index into the rows (a
                # fifth of ``take_along_axis``'s cost at (128, 10)), the same elements;
                # C order, so that the backward's row view of ``exp(logp)`` is a view.
                self.rows = np.arange(labels.size)
                picked = logp.reshape(-1, logp.shape[-1])[self.rows, labels.reshape(-1)]
                return -picked.reshape(labels.shape)
            picked = np.take_along_axis(logp, np.expand_dims(labels, axis), axis=axis)
            return -np.squeeze(picked, axis=axis)
        # Labels in the logits' dtype: float64 targets must not promote a float32 loss.
        self.labels = np.asarray(labels, dtype=logits.dtype)
        return -np.sum(self.labels * logp, axis=axis)

    def backward(self, g):
        g = np.expand_dims(g, self.axis)
        probs = np.exp(self.logp)
        if self.sparse:
            if self.rows is not None:
                probs.reshape(-1, probs.shape[-1])[self.rows, self.labels.reshape(-1)] -= 1
            else:
                np.put_along_axis(
                    probs, np.expand_dims(self.labels, self.axis),
                    np.take_along_axis(probs, np.expand_dims(self.labels, self.axis),
                                       axis=self.axis) - 1, axis=self.axis)
            if np.result_type(probs, g) == probs.dtype:
                return np.multiply(probs, g, out=probs), None
            return probs * g, None
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
    """``x * mask`` where ``mask`` holds 0 or ``1/(1-rate)``.

    ``mask`` is an array, or an object whose ``multiply(v)`` returns ``v * mask`` bit for
    bit without the mask being built (a keyed mask the compiled kernels hash again in
    the pass that multiplies, :class:`lamina.distribute.keys_kernels.KeyedMask`).
    """

    __slots__ = ("mask",)

    def forward(self, x, mask):
        self.mask = mask
        multiply = getattr(mask, "multiply", None)
        return x * mask if multiply is None else multiply(x)

    def backward(self, g):
        multiply = getattr(self.mask, "multiply", None)
        return (g * self.mask if multiply is None else multiply(g)), None
