"""Fused convolution and pooling primitives, channels_last, any number of spatial axes.

A convolution gathers every receptive field once into a contiguous ``cols`` matrix
(im2col, through a strided window view) and multiplies it by the kernel in ONE BLAS
call; no Python loop runs over samples or pixels. Its input gradient scatters the
columns back (col2im) with one small GEMM and one strided add per kernel offset.
Pooling lives in :mod:`lamina.backend.pooling`.

Arrays are ``(batch, *spatial, channels)``. Kernels use Keras's layout
``(*kernel_size, in_channels // groups, filters)``. Padding is resolved by
:func:`conv_padding` into explicit ``(before, after)`` pairs, TensorFlow's split for
``"same"`` (the odd extra row goes at the end) and all of it in front for ``"causal"``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lamina.backend.autodiff import Function
from lamina.backend.parallel import matmul
from lamina.backend.threads import parallel_for


# -- geometry -------------------------------------------------------------------------
def conv_output_length(length, kernel_size, stride=1, padding="valid", dilation=1):
    """Output length of a convolution or pooling window along one axis (None-safe)."""
    if length is None:
        return None
    span = dilation * (kernel_size - 1) + 1
    if padding == "same":
        return -(-length // stride)
    if padding == "causal":
        return (length - 1) // stride + 1
    return (length - span) // stride + 1


def conv_padding(length, kernel_size, stride=1, padding="valid", dilation=1):
    """``(before, after)`` zero padding that makes ``padding`` a plain valid window."""
    span = dilation * (kernel_size - 1) + 1
    if padding == "causal":
        return span - 1, 0
    if padding != "same":
        return 0, 0
    out = conv_output_length(length, kernel_size, stride, "same", dilation)
    total = max((out - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def deconv_output_length(length, kernel_size, stride=1, padding="valid", output_padding=None,
                         dilation=1):
    """Output length of a transposed convolution along one axis (Keras's formula)."""
    if length is None:
        return None
    span = dilation * (kernel_size - 1) + 1
    if output_padding is None:
        return length * stride + (max(span - stride, 0) if padding == "valid" else 0)
    pad = span // 2 if padding == "same" else 0
    return (length - 1) * stride + span - 2 * pad + output_padding


def deconv_padding_before(kernel_size, stride=1, padding="valid", output_padding=None,
                          dilation=1):
    """Padding in front of the convolution whose input gradient a transposed conv is.

    Mirrors Keras's conversion of transposed-convolution padding (the JAX backend's
    ``left_pad``): the equivalent convolution's front padding is ``span - 1 - left_pad``.
    """
    span = dilation * (kernel_size - 1) + 1
    if padding == "valid":
        return 0
    pad_len = stride + span - 2 if output_padding is None else (
        span + span % 2 - 2 + output_padding)
    return span - 1 - min(pad_len // 2 + pad_len % 2, span - 1)


_CHUNK_BYTES = 1 << 20  # batch chunk of the input-gradient buffer, for cache locality


# -- array helpers --------------------------------------------------------------------
def _pad(x, pads, value=0.0):
    """``x`` with ``pads[i] = (before, after)`` added on spatial axis ``i + 1``."""
    if not any(lo or hi for lo, hi in pads):
        return x
    shape = (x.shape[0], *(n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], pads)), x.shape[-1])
    out = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, x.dtype)
    out[_inner(x.shape, pads)] = x
    return out


def _inner(shape, pads):
    """Index of the unpadded region inside a padded array."""
    return (slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(shape[1:-1], pads)),
            slice(None))


def _windows(xp, ksize, strides, dilation, out_shape):
    """Read-only view ``(batch, *out_shape, *ksize, channels)`` of every window of ``xp``."""
    st = xp.strides
    n = len(ksize)
    shape = (xp.shape[0], *out_shape, *ksize, xp.shape[-1])
    steps = (st[0], *(st[1 + i] * strides[i] for i in range(n)),
             *(st[1 + i] * dilation[i] for i in range(n)), st[-1])
    return as_strided(xp, shape, steps, writeable=False)


def _offset_slice(offset, strides, dilation, out_shape):
    """Index of the input rows that kernel offset ``offset`` meets, for every output."""
    return (slice(None), *(slice(o * d, o * d + s * (n - 1) + 1, s) for o, s, d, n in zip(
        offset, strides, dilation, out_shape)), slice(None))


def _padded_lengths(lengths, pads_before, ksize, strides, dilation, out_shape):
    """Length of a buffer that holds both the padded input and every window."""
    return tuple(max(lo + n, s * (o - 1) + d * (k - 1) + 1) for n, lo, k, s, d, o in zip(
        lengths, pads_before, ksize, strides, dilation, out_shape))


def _im2col(x, ksize, strides, dilation, pads, out_shape, groups=1, ones=False):
    """Receptive fields as ``(groups, rows, prod(ksize) * in_per_group)``, contiguous
    either way round (see the few-channels case).

    With ``ones`` (one group only) a last column of ones is appended, so that the GEMM
    adds the bias and the kernel-gradient GEMM yields the bias gradient: no separate
    pass over the output or the gradient.
    """
    batch, channels = x.shape[0], x.shape[-1]
    rows = batch * math.prod(out_shape)
    if (all(k == 1 for k in ksize) and all(s == 1 for s in strides) and groups == 1
            and not ones and not any(lo or hi for lo, hi in pads)):
        return x.reshape(1, rows, channels)
    xp = _pad(x, pads)
    if groups == 1:
        width = math.prod(ksize) * channels
        if channels * x.itemsize < 64:
            # Few channels (a first layer on images): the window view's innermost run
            # would be only `channels` long, so fill a transposed (width, rows) buffer
            # one kernel offset at a time, in long runs; the GEMMs take it transposed
            # (MNIST's first layer: 0.8 -> 0.35 ms, and a faster kernel gradient).
            cols = np.empty((width + ones, rows), x.dtype)
            if ones:
                cols[width] = 1
            fields = cols[:width].reshape(*ksize, channels, batch, *out_shape)
            for offset in itertools.product(*map(range, ksize)):
                fields[offset] = np.moveaxis(
                    xp[_offset_slice(offset, strides, dilation, out_shape)], -1, 0)
            return cols.T[None]
        cols = np.empty((rows, width + ones), x.dtype)
        if ones:
            cols[:, width] = 1
        fields = cols[:, :width].reshape(batch, *out_shape, *ksize, channels)
        np.copyto(fields, _windows(xp, ksize, strides, dilation, out_shape))
        return cols.reshape(1, rows, width + ones)
    win = _windows(xp, ksize, strides, dilation, out_shape)
    win = win.reshape(*win.shape[:-1], groups, channels // groups)
    n = 1 + 2 * len(ksize)
    return win.transpose(n, *range(n), n + 1).reshape(groups, rows, -1)


def _kernel_matrix(kernel, groups):
    """Kernel ``(*k, cg, f)`` as ``(groups, prod(k) * cg, f // groups)``."""
    *k, cg, f = kernel.shape
    kk = math.prod(k)
    if groups == 1:
        return kernel.reshape(1, kk * cg, f)
    return kernel.reshape(kk, cg, groups, f // groups).transpose(2, 0, 1, 3).reshape(
        groups, kk * cg, f // groups)


def _ungroup(y, lead_shape):
    """``(groups, rows, f_g)`` -> ``(*lead_shape, groups * f_g)``."""
    if y.shape[0] == 1:
        return y.reshape(*lead_shape, y.shape[2])
    return y.transpose(1, 0, 2).reshape(*lead_shape, -1)


def _group(g, groups):
    """``(..., f)`` -> ``(groups, rows, f // groups)``."""
    f = g.shape[-1]
    g2 = g.reshape(-1, f)
    if groups == 1:
        return g2.reshape(1, *g2.shape)
    return g2.reshape(-1, groups, f // groups).transpose(1, 0, 2)


def _conv_input_grad(g, kernel, in_shape, pads_before, strides, dilation, groups):
    """col2im: the gradient of a convolution w.r.t. its input of ``in_shape``.

    Each kernel offset contributes ``g @ kernel[offset].T`` to the input rows it
    touched; one GEMM into a contiguous buffer and one strided add per offset. The
    batch goes through in chunks of about 1 MB of input gradient, so that the adds
    run in cache (at batch 128 a third faster than one pass over the whole batch).
    """
    ksize = kernel.shape[:-2]
    out_shape = g.shape[1:-1]
    batch, cin = in_shape[0], in_shape[-1]
    full = _padded_lengths(in_shape[1:-1], pads_before, ksize, strides, dilation, out_shape)
    buf = np.zeros((batch, *full, cin), g.dtype)
    step = max(1, _CHUNK_BYTES // (buf.nbytes // max(batch, 1) or 1))
    offsets = list(itertools.product(*map(range, ksize)))
    slices = [_offset_slice(offset, strides, dilation, out_shape) for offset in offsets]
    cg = kernel.shape[-2]
    starts = range(0, batch, step)

    def chunk_grad(i):
        start = starts[i]
        g3 = _group(g[start:start + step], groups)
        chunk = buf[start:start + step]
        lead = (chunk.shape[0], *out_shape)
        for offset, where in zip(offsets, slices):
            w = kernel[offset]
            if groups == 1:
                part = np.matmul(g3[0], w.T).reshape(*lead, cin)
            else:
                wg = w.reshape(cg, groups, -1).transpose(1, 2, 0)
                part = _ungroup(np.matmul(g3, wg), lead)
            chunk[where] += part

    # Chunks write disjoint rows of `buf`: any thread may take any chunk.
    parallel_for(len(starts), chunk_grad)
    return buf[_inner(in_shape, [(lo, 0) for lo in pads_before])]


def _kernel_grad(cols, g, kernel_shape, groups, folded=False):
    """``cols.T @ g`` per group, in the kernel's layout; with ``folded`` also the bias's.

    When ``cols`` is wider than ``g`` the product is computed as ``(g.T @ cols).T``:
    OpenBLAS ran the 289x15488 @ 15488x64 of the MNIST convnet's second layer ~25%
    faster that way round (and the narrow first layer's slightly slower).
    """
    g3 = _group(g, groups)
    if groups == 1:
        if cols.shape[-1] > g3.shape[-1]:
            gk = matmul(g3[0].T, cols[0]).T[None]
        else:
            gk = matmul(cols[0].T, g3[0])[None]
    elif cols.shape[-1] > g3.shape[-1]:
        gk = np.matmul(g3.transpose(0, 2, 1), cols).transpose(0, 2, 1)
    else:
        gk = np.matmul(cols.transpose(0, 2, 1), g3)
    gb = None
    if folded:
        gk, gb = gk[:, :-1], gk[0, -1]
    if groups == 1:
        return gk.reshape(kernel_shape), gb
    *k, cg, f = kernel_shape
    return gk.reshape(groups, math.prod(k), cg, f // groups).transpose(1, 2, 0, 3).reshape(
        kernel_shape), gb


def _bias_grad(g):
    """Sum over all axes but the last; a BLAS gemv is several times faster than ``sum``."""
    g2 = g.reshape(-1, g.shape[-1])
    return np.ones(g2.shape[0], g.dtype) @ g2


def _activate(out, bias, relu):
    if bias is not None:
        out += bias
    if relu:
        np.maximum(out, 0, out=out)
    return out


def _relu_mask(g, op):
    """``g`` times the fused ReLU's mask, unless ``g`` is exactly the gradient that the
    only consumer (a max-pool, see :mod:`lamina.backend.pooling`) already masked."""
    premasked, op.premasked = op.premasked, None
    if op.out is None or g is premasked:
        return g
    return np.multiply(g, op.out > 0)


# -- convolution ------------------------------------------------------------------------
class Conv(Function):
    """``act(conv(x, kernel) + bias)``: N-d cross-correlation with bias and ReLU fused.

    ``x`` is ``(batch, *spatial, in)``, ``kernel`` ``(*k, in // groups, filters)``,
    ``pads`` explicit ``(before, after)`` pairs (see :func:`conv_padding`).
    """

    __slots__ = ("cols", "kernel", "x_shape", "strides", "dilation", "pads", "groups",
                 "has_bias", "folded", "out", "premasked")

    def forward(self, x, kernel, bias=None, strides=None, dilation=None, pads=None, groups=1,
                relu=False):
        n = x.ndim - 2
        strides = tuple(strides or (1,) * n)
        dilation = tuple(dilation or (1,) * n)
        pads = tuple(pads or ((0, 0),) * n)
        ksize = kernel.shape[:-2]
        out_shape = tuple(
            (length + lo + hi - d * (k - 1) - 1) // s + 1
            for length, (lo, hi), k, s, d in zip(x.shape[1:-1], pads, ksize, strides, dilation))
        folded = bias is not None and groups == 1 and not all(k == 1 for k in ksize)
        cols = _im2col(x, ksize, strides, dilation, pads, out_shape, groups, ones=folded)
        weights = _kernel_matrix(kernel, groups)
        if folded:
            weights = np.concatenate([weights[0], bias[None].astype(weights.dtype)])[None]
        product = matmul(cols[0], weights[0])[None] if groups == 1 else np.matmul(cols, weights)
        out = _ungroup(product, (x.shape[0], *out_shape))
        self.cols, self.kernel, self.x_shape = cols, kernel, x.shape
        self.strides, self.dilation, self.pads, self.groups = strides, dilation, pads, groups
        self.has_bias, self.folded = bias is not None, folded
        out = _activate(out, None if folded else bias, relu)
        self.out, self.premasked = (out if relu else None), None
        return out

    def backward(self, g):
        g = _relu_mask(g, self)
        gx = gk = gb = None
        if self.needs[0]:
            gx = _conv_input_grad(g, self.kernel, self.x_shape, [lo for lo, _ in self.pads],
                                  self.strides, self.dilation, self.groups)
        if self.needs[1] or (self.folded and self.needs[2]):
            gk, gb = _kernel_grad(self.cols, g, self.kernel.shape, self.groups, self.folded)
        if self.has_bias and self.needs[2] and gb is None:
            gb = _bias_grad(g)
        return gx, gk, gb


class ConvTranspose(Function):
    """Transposed convolution: the input gradient of a :class:`Conv`, as a forward op.

    ``x`` is ``(batch, *spatial, in)``, ``kernel`` ``(*k, filters, in)`` (Keras's
    layout); the output ``(batch, *out_lengths, filters)`` is the gradient, w.r.t. an
    input of ``out_lengths``, of a convolution padded by ``pads_before`` in front.
    """

    __slots__ = ("x", "kernel", "strides", "dilation", "pads", "has_bias", "out", "premasked")

    def forward(self, x, kernel, bias=None, strides=None, dilation=None, pads_before=None,
                out_lengths=None, relu=False):
        n = x.ndim - 2
        strides = tuple(strides or (1,) * n)
        dilation = tuple(dilation or (1,) * n)
        pads_before = tuple(pads_before or (0,) * n)
        ksize = kernel.shape[:-2]
        out_shape = (x.shape[0], *out_lengths, kernel.shape[-2])
        out = np.ascontiguousarray(_conv_input_grad(x, kernel, out_shape, pads_before,
                                                    strides, dilation, 1))
        full = _padded_lengths(out_lengths, pads_before, ksize, strides, dilation, x.shape[1:-1])
        self.pads = tuple((lo, f - lo - n) for lo, f, n in zip(pads_before, full, out_lengths))
        self.x, self.kernel, self.strides, self.dilation = x, kernel, strides, dilation
        self.has_bias = bias is not None
        out = _activate(out, bias, relu)
        self.out, self.premasked = (out if relu else None), None
        return out

    def backward(self, g):
        g = _relu_mask(g, self)
        ksize, x = self.kernel.shape[:-2], self.x
        cols = _im2col(g, ksize, self.strides, self.dilation, self.pads, x.shape[1:-1])
        gx = gk = gb = None
        if self.needs[0]:
            gx = np.matmul(cols[0], self.kernel.reshape(-1, x.shape[-1])).reshape(x.shape)
        if self.needs[1]:
            gk = (cols[0].T @ x.reshape(-1, x.shape[-1])).reshape(self.kernel.shape)
        if self.has_bias and self.needs[2]:
            gb = _bias_grad(g)
        return gx, gk, gb
