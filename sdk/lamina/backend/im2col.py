"""im2col and col2im, and a convolution's forward and backward run in batch parts.

A convolution gathers every receptive field into a contiguous ``cols`` matrix (im2col,
through a strided window view) and multiplies it by the kernel in one BLAS call; its
input gradient scatters the columns back (col2im) with one small GEMM and one strided
add per kernel offset. Both run on fixed parts of the batch, an even number of equal
ones of at most about :data:`PART_BYTES` of columns and gradients each, and the parts
run on Lamina's thread pool: the copies, adds and ReLU passes use both cores, not only
the GEMMs. (Parts that fit a core's 2 MB L2 lost to fewer, larger ones: the per-part
GEMMs are then longer and the per-part overheads fewer; the MNIST convnet's conv and
pool ops took 23.4 -> 19.5 ms a step at batch 128 with 6 MB instead of 1.5 MB. 3 MB
keeps most of that (bench/ratio.py cnn 5.4-5.9k samples/s quiet) while the peak RSS
stays at 200 MB, against 215 MB with 6 MB: past half of PyTorch's.)

The im2col columns are never kept between the forward and the backward: the backward
gathers each part's columns again right before its kernel-gradient GEMM
(cheap next to that GEMM, and a step then holds no buffer of ``prod(kernel_size)``
times the input's size). The kernel and bias gradients are summed over the parts in
the parts' order, and the parts depend only on the shapes, so results are
bit-identical whichever thread ran which part.

Arrays are ``(batch, *spatial, channels)``; kernels ``(*kernel_size, in // groups,
filters)``; padding is explicit ``(before, after)`` pairs.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lamina.backend import gemm
from lamina.backend.parallel import sum_in_order
from lamina.backend.threads import parallel_for, split

PART_BYTES = 3 << 20  # most working set of one batch part (see batch_parts)


class Geometry(NamedTuple):
    """A convolution's shape arguments, padding resolved (see ``conv.conv_padding``)."""

    ksize: tuple
    strides: tuple
    dilation: tuple
    pads: tuple
    groups: int
    out_shape: tuple

    @classmethod
    def of(cls, x_shape, kernel_shape, strides, dilation, pads, groups):
        """The geometry of a convolution of an input of ``x_shape`` by a kernel."""
        n = len(x_shape) - 2
        strides = tuple(strides or (1,) * n)
        dilation = tuple(dilation or (1,) * n)
        pads = tuple(tuple(p) for p in (pads or ((0, 0),) * n))
        ksize = tuple(kernel_shape[:-2])
        out_shape = tuple(
            (length + lo + hi - d * (k - 1) - 1) // s + 1
            for length, (lo, hi), k, s, d in zip(x_shape[1:-1], pads, ksize, strides, dilation))
        return cls(ksize, strides, dilation, pads, int(groups), out_shape)


_scratch = threading.local()


def _scratch_array(shape, dtype):
    """An uninitialised array from this thread's scratch buffer, reused from part to part
    (fewer large malloc/free pairs: less heap fragmentation; the MNIST convnet's predict
    at batch 1024 peaked 20 MB lower). Valid until this thread's next call."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > 4 * PART_BYTES:  # a part of one huge sample: not kept for later
        return np.empty(shape, dtype)
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _scratch.buf = np.empty(nbytes, np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def run_parts(n, fn):
    """``parallel_for(n, fn)``, after which nothing of ``fn`` stays reachable from the
    pool: a worker keeps its last job until it gets the next one, and a closure over
    a step's arrays would keep them alive that long (measured: +100 MB peak RSS in a
    convnet's predict at batch 1024)."""
    holder = [fn]
    parallel_for(n, lambda i: holder[0](i))
    holder.clear()


def batch_parts(batch, sample_bytes):
    """Fixed ``(lo, hi)`` ranges of the batch holding at most about :data:`PART_BYTES`.

    The count is even when above one (the pool has two cores to fill) and the parts
    are equal to within a sample, so that no short last part leaves a core idle; it
    depends only on the shapes.
    """
    per_part = max(1, PART_BYTES // max(int(sample_bytes), 1))
    count = -(-batch // per_part)
    if count > 1:
        count += count % 2
    return split(batch, count)


# -- array helpers ----------------------------------------------------------------------
def pad(x, pads, value=0.0):
    """``x`` with ``pads[i] = (before, after)`` added on spatial axis ``i + 1``."""
    if not any(lo or hi for lo, hi in pads):
        return x
    shape = (x.shape[0], *(n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], pads)), x.shape[-1])
    out = np.zeros(shape, x.dtype) if value == 0 else np.full(shape, value, x.dtype)
    out[inner(x.shape, pads)] = x
    return out


def inner(shape, pads):
    """Index of the unpadded region inside a padded array."""
    return (slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(shape[1:-1], pads)),
            slice(None))


def offset_slice(offset, strides, dilation, out_shape):
    """Index of the input rows that kernel offset ``offset`` meets, for every output."""
    return (slice(None), *(slice(o * d, o * d + s * (n - 1) + 1, s) for o, s, d, n in zip(
        offset, strides, dilation, out_shape)), slice(None))


def padded_lengths(lengths, pads_before, ksize, strides, dilation, out_shape):
    """Length of a buffer that holds both the padded input and every window."""
    return tuple(max(lo + n, s * (o - 1) + d * (k - 1) + 1) for n, lo, k, s, d, o in zip(
        lengths, pads_before, ksize, strides, dilation, out_shape))


@functools.lru_cache(maxsize=256)
def _offset_slices(ksize, strides, dilation, out_shape):
    """``(offset, offset_slice)`` for every kernel offset (cached: one per geometry)."""
    return tuple((offset, offset_slice(offset, strides, dilation, out_shape))
                 for offset in itertools.product(*map(range, ksize)))


def _windows(xp, ksize, strides, dilation, out_shape):
    """Read-only view ``(batch, *out_shape, *ksize, channels)`` of every window of ``xp``."""
    st = xp.strides
    n = len(ksize)
    shape = (xp.shape[0], *out_shape, *ksize, xp.shape[-1])
    steps = (st[0], *(st[1 + i] * strides[i] for i in range(n)),
             *(st[1 + i] * dilation[i] for i in range(n)), st[-1])
    return as_strided(xp, shape, steps, writeable=False)


def im2col(x, geo, ones=False, scratch=False):
    """Receptive fields as ``(groups, rows, prod(ksize) * in_per_group)``, contiguous
    either way round (see the few-channels case).

    With ``ones`` (one group only) a last column of ones is appended, so that the GEMM
    adds the bias and the kernel-gradient GEMM yields the bias gradient. With
    ``scratch`` the columns live in this thread's scratch buffer (a batch part's
    columns, used before the thread's next im2col).
    """
    empty = _scratch_array if scratch else np.empty
    ksize, strides, dilation, pads, groups, out_shape = geo
    batch, channels = x.shape[0], x.shape[-1]
    rows = batch * math.prod(out_shape)
    if (all(k == 1 for k in ksize) and all(s == 1 for s in strides) and groups == 1
            and not ones and not any(lo or hi for lo, hi in pads)):
        return x.reshape(1, rows, channels)
    xp = pad(x, pads)
    if groups == 1:
        width = math.prod(ksize) * channels
        if channels * x.itemsize < 64:
            # Few channels (a first layer on images): the window view's innermost run
            # would be only `channels` long, so fill a transposed (width, rows) buffer
            # one kernel offset at a time, in long runs; the GEMMs take it transposed.
            cols = empty((width + ones, rows), x.dtype)
            if ones:
                cols[width] = 1
            fields = cols[:width].reshape(*ksize, channels, batch, *out_shape)
            by_channel = np.moveaxis(xp, -1, 0)  # a view (channels, batch, *spatial)
            for offset, where in _offset_slices(ksize, strides, dilation, out_shape):
                fields[offset] = by_channel[(slice(None), *where[:-1])]
            return cols.T[None]
        cols = empty((rows, width + ones), x.dtype)
        if ones:
            cols[:, width] = 1
        fields = cols[:, :width].reshape(batch, *out_shape, *ksize, channels)
        np.copyto(fields, _windows(xp, ksize, strides, dilation, out_shape))
        return cols.reshape(1, rows, width + ones)
    win = _windows(xp, ksize, strides, dilation, out_shape)
    win = win.reshape(*win.shape[:-1], groups, channels // groups)
    n = 1 + 2 * len(ksize)
    return win.transpose(n, *range(n), n + 1).reshape(groups, rows, -1)


def kernel_matrix(kernel, groups):
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


def col2im_into(buf, g, kernel, strides, dilation, groups):
    """Add the input gradient of a convolution with output gradient ``g`` into ``buf``.

    ``buf`` is the zeroed, padded input ``(batch, *padded_lengths, in)``; each kernel
    offset adds ``g @ kernel[offset].T`` to the rows it touched (one GEMM and one
    strided add per offset).
    """
    ksize, cg = kernel.shape[:-2], kernel.shape[-2]
    out_shape = g.shape[1:-1]
    lead = (g.shape[0], *out_shape)
    g3 = _group(g, groups)
    part = None
    for offset, where in _offset_slices(tuple(ksize), tuple(strides), tuple(dilation),
                                        tuple(out_shape)):
        w = kernel[offset]
        if groups == 1:
            if part is None:
                part = np.empty((g3.shape[1], w.shape[0]), np.result_type(g3, w))
            gemm.matmul_into(g3[0], w.T, part)
            buf[where] += part.reshape(*lead, buf.shape[-1])
        else:
            wg = w.reshape(cg, groups, -1).transpose(1, 2, 0)
            buf[where] += _ungroup(np.matmul(g3, wg), lead)
    return buf


def col2im(g, kernel, in_shape, pads_before, strides, dilation, groups=1):
    """The gradient w.r.t. an input of ``in_shape`` of a convolution padded by
    ``pads_before`` in front, given its output gradient ``g``; in batch parts."""
    ksize = kernel.shape[:-2]
    full = padded_lengths(in_shape[1:-1], pads_before, ksize, strides, dilation, g.shape[1:-1])
    out = np.empty(in_shape, g.dtype)
    parts = batch_parts(in_shape[0], g[:1].nbytes + math.prod(full) * in_shape[-1] * g.itemsize)

    def run(i):
        lo, hi = parts[i]
        _col2im_part(out[lo:hi], g[lo:hi], kernel, full, pads_before, strides, dilation, groups)

    run_parts(len(parts), run)
    return out


def _col2im_part(out, g, kernel, full, pads_before, strides, dilation, groups):
    """col2im of one batch part, written into ``out`` (that part of the input gradient)."""
    if full == out.shape[1:-1]:  # no padding: add straight into the result
        out[...] = 0
        col2im_into(out, g, kernel, strides, dilation, groups)
        return
    buf = np.zeros((out.shape[0], *full, out.shape[-1]), out.dtype)
    col2im_into(buf, g, kernel, strides, dilation, groups)
    out[...] = buf[inner(out.shape, [(lo, 0) for lo in pads_before])]


def kernel_grad(cols, g, kernel_shape, groups, folded=False):
    """``cols.T @ g`` per group, in the kernel's layout; with ``folded`` also the bias's.

    When ``cols`` is wider than ``g`` the product is computed as ``(g.T @ cols).T``
    (OpenBLAS ran the MNIST convnet's second layer ~25% faster that way round), except
    on Lamina's GEMM, which reads ``cols.T`` in place.
    """
    g3 = _group(g, groups)
    if groups == 1 and gemm.uses_kernel(cols[0].T, g3[0]):
        gk = gemm.matmul(cols[0].T, g3[0])[None]
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


def bias_grad(g):
    """Sum over all axes but the last; a BLAS gemv is several times faster than ``sum``."""
    g2 = g.reshape(-1, g.shape[-1])
    return np.ones(g2.shape[0], g.dtype) @ g2


# -- a convolution in batch parts -------------------------------------------------------
def folds_bias(bias, geo):
    """Whether the bias rides in the GEMM as a ones column (one group, not 1x1)."""
    return bias is not None and geo.groups == 1 and not all(k == 1 for k in geo.ksize)


def _sample_bytes(x, kernel, geo, out_itemsize):
    """Working set of one sample: its columns and its output (or output gradient)."""
    rows = math.prod(geo.out_shape)
    width = math.prod(geo.ksize) * kernel.shape[-2] * geo.groups + 1
    return rows * (width * x.itemsize + kernel.shape[-1] * out_itemsize)


def conv_forward(x, kernel, bias, geo, relu=False):
    """``act(conv(x, kernel) + bias)``, im2col + GEMM + bias + ReLU per batch part."""
    folded = folds_bias(bias, geo)
    weights = kernel_matrix(kernel, geo.groups)
    if folded:
        weights = np.concatenate([weights[0], bias[None].astype(weights.dtype)])[None]
    dtype = np.result_type(x.dtype, weights.dtype)
    filters = kernel.shape[-1]
    out = np.empty((x.shape[0], *geo.out_shape, filters), dtype)
    parts = batch_parts(x.shape[0], _sample_bytes(x, kernel, geo, out.itemsize))

    def run(i):
        lo, hi = parts[i]
        cols = im2col(x[lo:hi], geo, ones=folded, scratch=True)
        part = out[lo:hi]
        if geo.groups == 1:
            gemm.matmul_into(cols[0], weights[0], part.reshape(-1, filters))
        else:
            part[...] = _ungroup(np.matmul(cols, weights), part.shape[:-1])
        if bias is not None and not folded:
            part += bias
        if relu:
            np.maximum(part, 0, out=part)

    run_parts(len(parts), run)
    return out


def conv_backward(x, kernel, geo, grad_part, needs, folded):
    """Gradients of a convolution w.r.t. ``(x, kernel, bias)``, per batch part.

    Args:
        x, kernel, geo: the convolution's input, kernel and geometry.
        grad_part: ``grad_part(lo, hi)`` -> the output gradient of samples ``lo:hi``
            (a ReLU mask or an unpooling happens there, part by part).
        needs: which of ``(x, kernel, bias)`` want a gradient.
        folded: whether the forward folded the bias into the GEMM (:func:`folds_bias`).

    Returns:
        ``(gx, gk, gb)``, ``None`` where not needed.
    """
    need_x, need_k, need_b = needs
    dtype = np.result_type(x.dtype, kernel.dtype)
    parts = batch_parts(x.shape[0], _sample_bytes(x, kernel, geo, np.dtype(dtype).itemsize))
    gx = np.empty(x.shape, dtype) if need_x else None
    full = padded_lengths(x.shape[1:-1], [lo for lo, _ in geo.pads], geo.ksize, geo.strides,
                          geo.dilation, geo.out_shape)
    k_parts, b_parts = [None] * len(parts), [None] * len(parts)
    via_cols = need_k or (folded and need_b)

    def run(i):
        lo, hi = parts[i]
        g = grad_part(lo, hi)
        if need_x:
            _col2im_part(gx[lo:hi], g, kernel, full, [p for p, _ in geo.pads], geo.strides,
                         geo.dilation, geo.groups)
        if via_cols:
            cols = im2col(x[lo:hi], geo, ones=folded, scratch=True)
            k_parts[i], b_parts[i] = kernel_grad(cols, g, kernel.shape, geo.groups, folded)
        if need_b and not folded:
            b_parts[i] = bias_grad(g)

    run_parts(len(parts), run)
    gk = sum_in_order(k_parts) if need_k else None
    gb = sum_in_order(b_parts) if need_b else None
    return gx, gk, gb
