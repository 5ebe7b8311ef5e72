"""Fused scaled dot-product attention: ``softmax(q k^T * scale, masked) v`` in one node.

Inputs are in Keras's ``(batch, length, heads, dim)`` layout and so is the output, so the
projections around it need no transposes: every product runs on strided views
(``np.matmul`` hands each ``(length, dim)`` head to BLAS with its row stride).
:class:`PackedAttention` takes the three projections as one ``(batch, length,
heads * (2 * key_dim + value_dim))`` array (one GEMM computed them; its gradient is
written into one buffer of that shape).

The scores are kept TRANSPOSED, ``(batch, heads, source, target)``: the softmax then
reduces over a non-innermost axis, which numpy vectorises across rows (a max over a short
innermost axis is 3-4x slower). The softmax runs in place on that buffer, which the
backward keeps as the probabilities ``P``; by hand::

    dV = P^T dO       dP = dO V^T       dS = P * (dP - rowsum(dP * P))
    dQ = dS K * scale                   dK = dS^T (Q * scale)

where ``rowsum(dP * P)`` is ``rowsum(dO * O)`` when there is no dropout.

The work is cut into parts of about ``PART_BYTES`` of scores (batch rows, or heads of one
row for long sequences), run on Lamina's thread pool; the cut depends only on the
shapes, so results do not depend on the load.
Masked positions get ``-1e9`` added before the softmax, as Keras's ``Softmax`` layer
does (a fully masked row is then uniform, as in Keras).
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend import compiled
from lamina.backend.autodiff import Function
from lamina.backend.parallel import parallel_for
from lamina.backend.threads import split

ROW_PAD = 32  # elements after each source row of a part's probabilities (see _Core.setup)
PART_BYTES = 1 << 20  # 1 MB of scores a part: with a worker, 12% faster than 256 KB (fewer
# numpy calls holding the GIL); alone, 4% slower


def _large_negative(dtype):
    return -3e4 if np.dtype(dtype) == np.float16 else -1e9


def _parts(batch, heads, source, target, itemsize):
    """``(batch slice, head slice)`` parts of about ``PART_BYTES`` of scores: whole batch
    rows while one row fits, else one row a part with its heads cut into groups."""
    per_head = max(1, source * target * itemsize)
    if heads * per_head <= PART_BYTES:
        rows = max(1, PART_BYTES // (heads * per_head))
        return [(slice(lo, hi), slice(None))
                for lo, hi in split(batch, -(-batch // rows))]
    groups = split(heads, -(-heads * per_head // PART_BYTES))
    return [(slice(b, b + 1), slice(lo, hi)) for b in range(batch) for lo, hi in groups]


def _heads(x, part):
    """Part ``(batch slice, head slice)`` of a ``(batch, length, heads, dim)`` array as
    a ``(batch, heads, length, dim)`` view."""
    return x[part[0], :, part[1]].transpose(0, 2, 1, 3)


def _head_major(a, part):
    """Part of a ``(batch or 1, heads or 1, ...)`` array (mask-like axes broadcast)."""
    return a[part[0] if a.shape[0] > 1 else slice(None),
             part[1] if a.shape[1] > 1 else slice(None)]


class _Core:
    """The forward and backward on views; shared by both Functions."""

    def setup(self, q, k, v, mask, scale, dropout_mask, packed=None):
        """``packed``: optional ``(qkv, offsets)`` when ``q``/``k``/``v`` are column
        ranges of one C-contiguous ``(batch, length, width)`` array (see :func:`_rows`)."""
        b, t, h, d = q.shape
        s = k.shape[1]
        self.q, self.k, self.v = q, k, v
        self.scale = np.asarray(1.0 / math.sqrt(d) if scale is None else scale, q.dtype)
        # Masks and the dropout multiplier are stored transposed like the scores.
        self.drop = None if dropout_mask is None else np.ascontiguousarray(
            np.asarray(dropout_mask, q.dtype).swapaxes(-1, -2))
        self.neg = None
        if mask is not None:
            keep = np.asarray(mask, dtype=bool)
            if keep.ndim == 3:
                keep = keep[:, None]
            self.neg = np.ascontiguousarray(~keep.swapaxes(-1, -2))
        self.parts = _parts(b, h, s, t, q.dtype.itemsize)
        self.kernels = _kernels(q.dtype)
        if self.kernels is not None:
            self._setup_kernels(packed)
            return
        # P^T of each part, stored source-major: (source, part's batch rows, part's heads,
        # target). Its (batch, heads, source, target) view feeds the GEMMs, and the
        # softmax's reductions over the source run on (source, rows*heads*target) with
        # long inner loops (on the head-major layout numpy's inner loop is one target row).
        # Each source row is padded by ROW_PAD elements: with rows of a power-of-two size
        # (64 rows of 4 heads of 64 targets: 16 KB) the GEMMs' strided writes and reads
        # of one head's block hit the same cache sets (scores + softmax ~20% slower).
        shapes = [(s, len(range(b)[rows]), len(range(h)[heads]), t)
                  for rows, heads in self.parts]
        self.flat = [np.empty((src, n * m * tgt + ROW_PAD), q.dtype)[:, :n * m * tgt]
                     for src, n, m, tgt in shapes]
        self.probs = [f.reshape(shape) for f, shape in zip(self.flat, shapes)]

    def _setup_kernels(self, packed):
        """The compiled path: ``P^T`` as ``(batch, heads, source, target)``, the mask and
        dropout transposed alike, the inputs as rows (see :mod:`.attention_kernels`)."""
        b, t, h, d = self.q.shape
        dtype = self.q.dtype
        self.scale = dtype.type(self.scale)
        self.p = np.empty((b, h, self.k.shape[1], t), dtype)
        self.none = np.zeros((0, 0, 0, 0), dtype)
        if self.drop is None:
            self.drop = self.none
        if self.neg is None:
            self.neg = np.zeros((0, 0, 0, 0), bool)
        else:  # the kernel indexes (source, target) without broadcasting
            self.neg = np.ascontiguousarray(np.broadcast_to(
                self.neg, (*self.neg.shape[:2], self.k.shape[1], t)))
        inputs = (self.q, self.k, self.v) if packed is not None else [
            np.ascontiguousarray(x) for x in (self.q, self.k, self.v)]
        self.rows = _rows(packed, *inputs) + (np.int64(d), np.int64(self.v.shape[3]))

    def _ranges(self, i):
        rows, heads = self.parts[i]
        return (*rows.indices(self.q.shape[0])[:2], *heads.indices(self.q.shape[2])[:2])

    def _probs(self, i):
        """Part ``i``'s P^T as a ``(batch, heads, source, target)`` view."""
        return self.probs[i].transpose(1, 2, 0, 3)

    def _scaled_q(self, part):
        qh = _heads(self.q, part)
        # A caller may fold the scale into the query projection (scale=1: no pass).
        return qh if self.scale == 1 else np.multiply(qh, self.scale)

    def run_forward(self, out):
        self.start_forward(out)
        parallel_for(len(self.parts), self.forward_part)
        return out

    def start_forward(self, out):
        """Set the output buffer; then :meth:`forward_part` for every part fills it."""
        self.out = out  # the backward's rowsum(dO * O)
        self.big = np.asarray(_large_negative(out.dtype), out.dtype)

    def forward_part(self, i):
        if self.kernels is not None:
            *arrays, d, dv = self.rows
            self.kernels.attention_forward(*arrays, (d, dv), self.scale, self.neg,
                                           self.big[()], self.drop, self.p,
                                           _rows(None, self.out)[0], *self._ranges(i))
            return
        part, flat = self.parts[i], self.flat[i]
        qs = self._scaled_q(part)
        st = self._probs(i)
        np.matmul(_heads(self.k, part), qs.swapaxes(-1, -2), out=st)
        if self.neg is not None:
            np.add(st, self.big, out=st, where=_head_major(self.neg, part))
        flat -= flat.max(axis=0)
        np.exp(flat, out=flat)
        # The column sums by numpy, row after row: each column's sum is the same whatever
        # the part's width. (A BLAS matrix-vector product with a vector of ones took half
        # the time, but OpenBLAS's Haswell kernels sum a column differently depending on
        # how many columns the call has, so the bits followed the cut into parts.)
        total = np.add.reduce(flat, axis=0)
        flat *= np.reciprocal(total, out=total)
        pd = st if self.drop is None else st * self.drop[part]
        np.matmul(pd.swapaxes(-1, -2), _heads(self.v, part), out=_heads(self.out, part))

    def run_backward(self, g, dq, dk, dv, packed=None):
        """Write the gradients into ``dq``/``dk``/``dv`` (arrays or None to skip);
        ``packed`` as in :meth:`setup`, for the gradients (the compiled path needs either
        that or C-contiguous arrays)."""
        g = self.gradient_rows(g)
        parallel_for(len(self.parts), lambda i: self.backward_part(i, g, dq, dk, dv, packed))

    def gradient_rows(self, g):
        """``g`` as :meth:`backward_part` takes it (rows for the compiled path)."""
        return g if self.kernels is None else _rows(None, np.ascontiguousarray(g))[0]

    def backward_part(self, i, g, dq, dk, dv, packed=None):
        """Part ``i`` of :meth:`run_backward` (``g`` from :meth:`gradient_rows`)."""
        if self.kernels is not None:
            *arrays, d, dv_len = self.rows
            none = self.none.reshape(0, 0, 0)
            grads = _rows(packed, *(none if x is None else x for x in (dq, dk, dv)))
            self.kernels.attention_backward(*arrays, (d, dv_len), g, self.scale, self.drop,
                                            self.p, *grads, *self._ranges(i))
            return
        k, v, out = self.k, self.v, self.out
        part = self.parts[i]
        gh = _heads(g, part)
        pt = self._probs(i)
        drop = None if self.drop is None else self.drop[part]
        if dv is not None:
            pd = pt if drop is None else pt * drop
            np.matmul(pd, gh, out=_heads(dv, part))
        if dq is None and dk is None:
            return
        dst = np.matmul(_heads(v, part), gh.swapaxes(-1, -2))  # dP^T
        if drop is None:
            # rowsum(dP * P) = rowsum(dO * O): a (length, dim) product, not (length,
            # length); einsum's fused sum beats numpy's short-axis reduction.
            rowsum = np.einsum("bhtd,bhtd->bht", gh, _heads(out, part))
            dst -= rowsum[:, :, None, :]
        else:
            dst *= drop
            dst -= np.sum(dst * pt, axis=-2, keepdims=True)
        dst *= pt  # dS^T
        if dq is not None:
            dqh = _heads(dq, part)
            np.matmul(dst.swapaxes(-1, -2), _heads(k, part), out=dqh)
            if self.scale != 1:
                dqh *= self.scale
        if dk is not None:
            np.matmul(dst, self._scaled_q(part), out=_heads(dk, part))


def _kernels(dtype):
    """The compiled kernels' module when they are enabled for ``dtype``, else None."""
    if np.dtype(dtype) not in (np.float32, np.float64) or not compiled.enabled():
        return None
    from lamina.backend import attention_kernels

    return attention_kernels


def _rows(packed, *arrays):
    """``(rows, column offset)`` pairs of ``(batch, length, heads, dim)`` arrays for the
    kernels: the C-contiguous ``(batch, length, width)`` array of ``packed = (rows,
    offsets)`` when given, else each array as ``(batch, length, heads * dim)`` at offset
    0 (a view: a gradient is written through it; ``reshape(copy=False)`` raises if it
    cannot be one). A 3-D array (an unneeded gradient's placeholder) passes as it is."""
    found = []
    for i, x in enumerate(arrays):
        if x.ndim == 3:
            found += [x, np.int64(0)]
        elif packed is not None:
            found += [packed[0], np.int64(packed[1][i])]
        else:
            found += [np.reshape(x, (*x.shape[:2], -1), copy=False), np.int64(0)]
    return tuple(found)


def _check(q, k, v):
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError("attention expects (batch, length, heads, dim) inputs. Received: "
                         f"query.shape={q.shape}, key.shape={k.shape}, value.shape={v.shape}")
    if k.shape[:3] != v.shape[:3] or q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2] \
            or q.shape[3] != k.shape[3]:
        raise ValueError("attention: query/key/value shapes do not agree. Received: "
                         f"query.shape={q.shape}, key.shape={k.shape}, value.shape={v.shape}")


class Attention(Function):
    """``softmax(q k^T * scale + masked) v`` for ``(batch, length, heads, dim)`` inputs."""

    __slots__ = ("core",)

    def forward(self, q, k, v, mask=None, scale=None, dropout_mask=None):
        _check(q, k, v)
        self.core = core = _Core()
        core.setup(q, k, v, mask, scale, dropout_mask)
        out = np.empty((*q.shape[:3], v.shape[3]), q.dtype)
        return core.run_forward(out)

    def backward(self, g):
        core = self.core
        grads = [np.empty(x.shape, x.dtype) if need else None
                 for x, need in zip((core.q, core.k, core.v), self.needs)]
        core.run_backward(g, *grads)
        return tuple(grads)


class PackedAttention(Function):
    """:class:`Attention` on one ``(batch, length, heads * (2 key_dim + value_dim))`` array
    holding the query, key and value projections side by side (self-attention)."""

    __slots__ = ("core", "sizes")

    def forward(self, qkv, num_heads=1, key_dim=1, value_dim=None, mask=None, scale=None,
                dropout_mask=None):
        value_dim = key_dim if value_dim is None else value_dim
        self.sizes = (num_heads, key_dim, value_dim)
        qkv = np.ascontiguousarray(qkv)
        q, k, v = self._split(qkv)
        self.core = core = _Core()
        core.setup(q, k, v, mask, scale, dropout_mask, packed=(qkv, self._offsets()))
        out = np.empty((*qkv.shape[:2], num_heads, value_dim), qkv.dtype)
        return core.run_forward(out)

    def _split(self, qkv):
        h, dk, dv = self.sizes
        if qkv.ndim != 3 or qkv.shape[-1] != h * (2 * dk + dv):
            raise ValueError(
                f"PackedAttention expects (batch, length, {h * (2 * dk + dv)}) for "
                f"num_heads={h}, key_dim={dk}, value_dim={dv}. Received: shape={qkv.shape}")
        lead = qkv.shape[:2]
        return (qkv[..., :h * dk].reshape(*lead, h, dk),
                qkv[..., h * dk:2 * h * dk].reshape(*lead, h, dk),
                qkv[..., 2 * h * dk:].reshape(*lead, h, dv))

    def backward(self, g):
        grad = np.empty((*g.shape[:2], self.core.q.shape[2] * (2 * self.core.q.shape[3]
                                                                + g.shape[3])), g.dtype)
        self.core.run_backward(g, *self._split(grad), packed=(grad, self._offsets()))
        return (grad,)

    def _offsets(self):
        h, dk, _ = self.sizes
        return (0, h * dk, 2 * h * dk)


def attention(query, key, value, mask=None, scale=None, dropout_mask=None):
    """Fused multi-head scaled dot-product attention.

    Args:
        query: Tensor ``(batch, target, heads, key_dim)``.
        key: Tensor ``(batch, source, heads, key_dim)``.
        value: Tensor ``(batch, source, heads, value_dim)``.
        mask: optional boolean array ``(batch or 1, [heads or 1,] target, source)``;
            False positions get ``-1e9`` added to their scores.
        scale: multiplier of the scores, ``1 / sqrt(key_dim)`` by default.
        dropout_mask: optional ``(batch, heads, target, source)`` multiplier of the
            probabilities (0 or ``1 / (1 - rate)``), not differentiated.

    Returns:
        Tensor ``(batch, target, heads, value_dim)``.
    """
    return Attention.apply(query, key, value, mask=mask, scale=scale,
                           dropout_mask=dropout_mask)


def packed_attention(qkv, num_heads, key_dim, value_dim=None, mask=None, scale=None,
                     dropout_mask=None):
    """:func:`attention` on the query, key and value projections packed on the last axis.

    Args:
        qkv: Tensor ``(batch, length, num_heads * (2 * key_dim + value_dim))``: the query
            heads, then the key heads, then the value heads.
        num_heads, key_dim, value_dim: the head layout (``value_dim`` = ``key_dim`` by
            default).
        mask, scale, dropout_mask: as in :func:`attention`.

    Returns:
        Tensor ``(batch, length, num_heads, value_dim)``.
    """
    return PackedAttention.apply(qkv, num_heads=num_heads, key_dim=key_dim,
                                 value_dim=value_dim, mask=mask, scale=scale,
                                 dropout_mask=dropout_mask)
