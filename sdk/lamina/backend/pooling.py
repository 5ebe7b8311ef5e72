"""Max and average pooling primitives, channels_last, any number of spatial axes.

Pooling reduces over the window offsets with whole-array passes, one view of the
input per offset; when the stride equals the pool size (the usual 2x2 pooling) the
views come from a reshape of the input instead of slicing. Max pooling pairs the
views up in a tournament and, when a gradient is wanted, keeps the offset of each
window's first maximum as one ``uint8`` per output, so that its backward is one
compare and one multiply per offset.

:func:`max_pool_forward` and :func:`unpool` are shared with the fused
convolution + ReLU + max-pool primitive of :mod:`lamina.backend.conv_pool`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.im2col import batch_parts, run_parts
from lamina.backend.im2col import inner as _inner
from lamina.backend.im2col import offset_slice as _offset_slice
from lamina.backend.im2col import pad as _pad


def _batch_parts(full):
    """Fixed ``(lo, hi)`` batch ranges of the full-size (pool input) array ``full``
    and its temporaries (:func:`lamina.backend.im2col.batch_parts`), run in parallel."""
    return batch_parts(full.shape[0], 2 * full[:1].nbytes)


def _pool_plan(x, pool, strides, pads, fill):
    """Padded input, output lengths, and whether windows tile without overlap."""
    xp = _pad(x, pads, fill)
    out_shape = tuple((n - k) // s + 1 for n, k, s in zip(xp.shape[1:-1], pool, strides))
    disjoint = all(s >= k for k, s in zip(pool, strides))
    return xp, out_shape, disjoint


def _pool_views(xp, pool, strides, out_shape):
    """One view ``(batch, *out_shape, channels)`` of ``xp`` per window offset.

    When stride equals the pool size (the usual 2x2 pooling) the views come from a
    reshape ``(batch, o1, k1, o2, k2, c)`` of the cropped input instead of slicing.
    """
    if tuple(strides) == tuple(pool):
        crop = xp[(slice(None), *(slice(0, o * k) for o, k in zip(out_shape, pool)),
                   slice(None))]
        split = crop.reshape(xp.shape[0], *itertools.chain(*zip(out_shape, pool)), xp.shape[-1])
        return [split[(slice(None), *itertools.chain(*((slice(None), i) for i in off)),
                       slice(None))] for off in itertools.product(*map(range, pool))]
    ones = (1,) * len(pool)
    return [xp[_offset_slice(off, strides, ones, out_shape)]
            for off in itertools.product(*map(range, pool))]


def _grad_buffer(shape, pool, strides, out_shape, dtype):
    """Input-gradient buffer: uninitialised when the windows tile it exactly (each cell
    is then written once), zeros otherwise."""
    tiled = all(s == k and o * k == n for k, s, o, n in zip(
        pool, strides, out_shape[1:-1], shape[1:-1]))
    return np.empty(shape, dtype) if tiled else np.zeros(shape, dtype)


def _first_max(views, index):
    """Elementwise max of ``views`` and, with ``index``, which view holds the first maximum.

    A tournament: neighbours are paired level by level, the earlier one winning ties,
    so that half of the comparisons run on contiguous intermediates rather than on the
    strided views. Indices are ``uint8`` (``intp`` past 256 offsets) and are updated
    arithmetically (``numpy.where`` and masked copies are several times slower on
    unpredictable masks).
    """
    small = len(views) <= 256
    level = [(v, i) for i, v in enumerate(views)]
    while len(level) > 1:
        merged = []
        for (ma, ia), (mb, ib) in zip(level[::2], level[1::2]):
            m = np.maximum(ma, mb)
            idx = None
            if index:
                later = np.greater(mb, ma)  # ties stay with the earlier
                later = later.view(np.uint8) if small else later.astype(np.intp)
                if isinstance(ia, int) and isinstance(ib, int):  # leaves: ib == ia + 1
                    idx = later if ia == 0 else np.add(later, later.dtype.type(ia))
                else:  # ia + later * (ib - ia), modulo 256 and exact
                    idx = np.subtract(ib, ia)
                    idx *= later
                    idx += ia
            merged.append((m, idx))
        if len(level) % 2:
            merged.append(level[-1])
        level = merged
    out, idx = level[0]
    if len(views) == 1:
        out, idx = out.copy(), np.zeros(out.shape, np.uint8) if index else None
    return out, idx


def max_pool_forward(x, pool, strides, pads, index):
    """Max over windows, in batch parts; with ``index`` also each window's first winner.

    Returns:
        ``(out, winner)``; ``winner`` (``uint8``, ``intp`` past 256 offsets) is ``None``
        without ``index``.
    """
    xp, out_shape, _ = _pool_plan(x, pool, strides, pads, -np.inf)
    views = _pool_views(xp, pool, strides, out_shape)
    parts = _batch_parts(xp)
    if len(parts) == 1:
        return _first_max(views, index=index)
    out = np.empty(views[0].shape, x.dtype)
    winner = np.empty(out.shape, np.uint8 if len(views) <= 256 else np.intp) if index else None

    def pool_part(i):
        lo, hi = parts[i]
        o, w = _first_max([v[lo:hi] for v in views], index=index)
        out[lo:hi] = o
        if winner is not None:
            winner[lo:hi] = w

    run_parts(len(parts), pool_part)
    return out, winner


def unpool(g, winner, pool, strides, pads, x_shape):
    """The input gradient of a max-pool of an input of ``x_shape`` (any batch slice):
    each window's gradient goes to its first winner, summed where windows overlap."""
    full = tuple(n + lo + hi for n, (lo, hi) in zip(x_shape[1:-1], pads))
    gxp = _grad_buffer((g.shape[0], *full, g.shape[-1]), pool, strides, g.shape, g.dtype)
    _unpool_into(_pool_views(gxp, pool, strides, g.shape[1:-1]), g, winner,
                 all(s >= k for k, s in zip(pool, strides)))
    return gxp[_inner(x_shape, pads)]


def _unpool_into(gviews, g, winner, disjoint):
    hit = np.empty(g.shape, bool)
    for k, gview in enumerate(gviews):
        np.equal(winner, winner.dtype.type(k), out=hit)
        if disjoint:
            np.multiply(g, hit, out=gview)
        else:
            gview += g * hit


class MaxPool(Function):
    """Max over windows of size ``pool`` moved by ``strides``; padding never wins.

    The gradient goes to the first maximum of each window (TensorFlow's choice; ties
    are common after a ReLU), accumulated where windows overlap.
    """

    __slots__ = ("winner", "pool", "strides", "pads", "x_shape")

    def forward(self, x, pool=None, strides=None, pads=None):
        pads = tuple(pads or ((0, 0),) * len(pool))
        out, self.winner = max_pool_forward(x, pool, strides, pads, self.needs[0])
        self.pool, self.strides, self.pads, self.x_shape = pool, strides, pads, x.shape
        return out

    def backward(self, g):
        full = tuple(n + lo + hi for n, (lo, hi) in zip(self.x_shape[1:-1], self.pads))
        gxp = _grad_buffer((g.shape[0], *full, g.shape[-1]), self.pool, self.strides,
                           g.shape, g.dtype)
        gviews = _pool_views(gxp, self.pool, self.strides, g.shape[1:-1])
        disjoint = all(s >= k for k, s in zip(self.pool, self.strides))
        # Overlapping windows add into shared rows only within one sample: batch parts
        # never touch the same element.
        parts = _batch_parts(gxp)

        def unpool_part(i):
            lo, hi = parts[i]
            _unpool_into([v[lo:hi] for v in gviews], g[lo:hi], self.winner[lo:hi], disjoint)

        run_parts(len(parts), unpool_part)
        return (gxp[_inner(self.x_shape, self.pads)],)


class AvgPool(Function):
    """Mean over windows; with ``"same"`` padding only real elements are counted (TF)."""

    __slots__ = ("pool", "strides", "pads", "count", "xp_shape", "x_shape", "disjoint")

    def forward(self, x, pool=None, strides=None, pads=None):
        pads = tuple(pads or ((0, 0),) * len(pool))
        xp, out_shape, disjoint = _pool_plan(x, pool, strides, pads, 0)
        views = _pool_views(xp, pool, strides, out_shape)
        out = views[0].copy()
        for view in views[1:]:
            out += view
        if any(lo or hi for lo, hi in pads):
            ones = _pad(np.ones((1, *x.shape[1:-1], 1), x.dtype), pads)
            counts = _pool_views(ones, pool, strides, out_shape)
            count = sum(counts[1:], counts[0].copy())
        else:
            count = np.asarray(math.prod(pool), x.dtype)
        out /= count
        self.pool, self.strides, self.pads, self.count = pool, strides, pads, count
        self.xp_shape, self.x_shape, self.disjoint = xp.shape, x.shape, disjoint
        return out

    def backward(self, g):
        share = g / self.count
        gxp = _grad_buffer(self.xp_shape, self.pool, self.strides, g.shape, g.dtype)
        for gview in _pool_views(gxp, self.pool, self.strides, g.shape[1:-1]):
            if self.disjoint:
                gview[...] = share
            else:
                gview += share
        return (gxp[_inner(self.x_shape, self.pads)],)
