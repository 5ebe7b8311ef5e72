"""Dense with a row-split backward, for many rows through a small kernel.

A sequence model's dense layers see ``batch * length`` rows (8192 for a batch of 128
sequences of 64) and kernels of a few thousand weights. :class:`lamina.backend.nn.Dense`
hands its backward to the pool as separate GEMMs (input gradient, kernel gradient) plus a
bias-gradient sum, each a full pass over the upstream gradient, and ReLU's mask is one
more serial pass before them. Here the rows are cut into a few ranges instead, and each
range does all of its work while its slice of the gradient is in cache::

    g_r = g[r] * (out[r] > 0)          (ReLU only)
    dx[r] = g_r @ kernel^T
    dK_r = x[r]^T @ g_r                 db_r = 1^T g_r

and ``dK = dK_0 + dK_1 + ...``, ``db`` likewise, added in range order. The forward runs
in the same ranges (GEMM, bias, ReLU of a range together): claimed one by one, more ranges
than threads keep both cores busy when a worker starts late. The number of ranges depends
only on the shapes (:func:`row_parts`), so the bits do not depend on the thread count or
the load.
"""

from __future__ import annotations

import numpy as np

from lamina.backend import nn as _nn
from lamina.backend.autodiff import Function
from lamina.backend.parallel import MAX_PARTS, sum_in_order
from lamina.backend.tensor import Tensor
from lamina.backend.threads import parallel_for, split

MIN_PART_ROWS = 1024  # a range's GEMMs should cost well over the pool's hand-off
MAX_KERNEL_ELEMENTS = 1 << 16  # each range writes its own kernel-gradient partial


def row_parts(rows: int, kernel_shape) -> int:
    """How many row ranges the backward of ``(rows, k) @ kernel`` is cut into; 0 or 1
    means the row split does not pay (few rows, or a kernel whose per-range partial
    gradients would cost more than they save)."""
    if len(kernel_shape) != 2 or kernel_shape[0] * kernel_shape[1] > MAX_KERNEL_ELEMENTS:
        return 0
    return min(MAX_PARTS, rows // MIN_PART_ROWS)


class RowSplitDense(Function):
    """``x @ kernel + bias`` whose backward runs in ``parts`` row ranges (see module)."""

    __slots__ = ("x", "kernel", "has_bias", "parts", "out", "x_ones")
    relu = False

    def forward(self, x, kernel, bias=None, parts=2):
        if x.ndim < 2 or kernel.ndim != 2 or parts < 1:
            raise ValueError("RowSplitDense expects an input of rank >= 2, a 2-D kernel and "
                             f"parts >= 1. Received: x.shape={x.shape}, "
                             f"kernel.shape={kernel.shape}, parts={parts}")
        self.parts = parts
        self.x, self.kernel, self.has_bias = x, kernel, bias is not None
        k, n = kernel.shape
        x2 = x.reshape(-1, k)
        out = np.empty((*x.shape[:-1], n), np.result_type(x.dtype, kernel.dtype))
        out2 = out.reshape(-1, n)
        ranges = split(x2.shape[0], parts)
        relu = self.relu
        # A bias for a wide output (k <= n / 2) rides in the GEMM as one more kernel row
        # against a column of ones: a copy of the (narrower) input instead of a pass over
        # the output, and its gradient comes with the kernel's.
        fold = bias is not None and 2 * k <= n
        with_bias = np.concatenate([kernel, bias[None]]) if fold else kernel
        self.x_ones = [None] * len(ranges) if fold else None

        def part(i):
            lo, hi = ranges[i]
            o = out2[lo:hi]
            if fold:
                rows = self.x_ones[i] = np.concatenate(
                    [x2[lo:hi], np.ones((hi - lo, 1), out.dtype)], axis=1)
                np.matmul(rows, with_bias, out=o)
            else:
                np.matmul(x2[lo:hi], kernel, out=o)
                if bias is not None:
                    o += bias
            if relu:
                np.maximum(o, 0, out=o)

        parallel_for(len(ranges), part)
        self.out = out if relu else None
        return out

    def backward(self, g):
        x, kernel, relu = self.x, self.kernel, self.relu
        k, n = kernel.shape
        x2, g2 = x.reshape(-1, k), g.reshape(-1, n)
        out2 = self.out.reshape(-1, n) if relu else None
        ranges = split(x2.shape[0], self.parts)
        dtype = np.result_type(x2.dtype, g2.dtype, kernel.dtype)
        need_x, need_k = self.needs[0], self.needs[1]
        need_b = self.has_bias and self.needs[2]
        gx = np.empty((x2.shape[0], k), dtype) if need_x else None
        fold = self.x_ones is not None
        gk = np.empty((len(ranges), k + fold, n), dtype) if need_k or (
            fold and need_b) else None
        gb = np.empty((len(ranges), n), dtype) if need_b and not fold else None
        ones = np.ones(max(hi - lo for lo, hi in ranges), dtype) if gb is not None else None
        kernel_t = kernel.T

        def part(i):
            lo, hi = ranges[i]
            gp = g2[lo:hi]
            if relu:
                gp = np.multiply(gp, out2[lo:hi] > 0, dtype=dtype)
            if need_x:
                np.matmul(gp, kernel_t, out=gx[lo:hi])
            if gk is not None:
                np.matmul((self.x_ones[i] if fold else x2[lo:hi]).T, gp, out=gk[i])
            if gb is not None:
                np.matmul(ones[:hi - lo], gp, out=gb[i])

        parallel_for(len(ranges), part)
        kernel_grad = None if gk is None else sum_in_order(gk)
        if fold:  # the bias's gradient is the last row of the kernel's
            bias_grad = kernel_grad[k].copy() if need_b else None
            kernel_grad = kernel_grad[:k] if need_k else None
        else:
            bias_grad = None if gb is None else sum_in_order(gb)
        return (None if gx is None else gx.reshape(*x.shape[:-1], k), kernel_grad, bias_grad)


class RowSplitReluDense(RowSplitDense):
    """``relu(x @ kernel + bias)`` whose backward applies ReLU's mask range by range."""

    __slots__ = ()
    relu = True


def dense(x, kernel, bias=None, activation=None):
    """``x @ kernel + bias`` (``activation``: None or ``"relu"``) as one node, with the
    row-split backward when :func:`row_parts` says it pays, else
    :class:`~lamina.backend.nn.Dense` / :class:`~lamina.backend.nn.ReluDense`.

    Args:
        x: Tensor or ndarray ``(..., k)``.
        kernel: Tensor ``(k, n)``.
        bias: optional Tensor ``(n,)``.
        activation: None or ``"relu"``.

    Returns:
        Tensor ``(..., n)``.
    """
    if activation not in (None, "relu"):
        raise ValueError(f"dense: activation must be None or 'relu'. Received: "
                         f"activation={activation!r}")
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    kdata = kernel.data if isinstance(kernel, Tensor) else np.asarray(kernel)
    parts = row_parts(data.size // max(1, data.shape[-1]), kdata.shape) if (
        data.ndim >= 2 and kdata.ndim == 2) else 0
    if parts >= 2:
        cls = RowSplitReluDense if activation == "relu" else RowSplitDense
        return cls.apply(x, kernel, bias, parts=parts)
    cls = _nn.ReluDense if activation == "relu" else _nn.Dense
    return cls.apply(x, kernel, bias)
