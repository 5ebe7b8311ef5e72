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

The batch is cut into parts of about ``PART_BYTES`` of scores, run on Lamina's thread
pool; the cut depends only on the shapes, so results do not depend on the load.
Masked positions get ``-1e9`` added before the softmax, as Keras's ``Softmax`` layer
does (a fully masked row is then uniform, as in Keras).
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.parallel import parallel_for
from lamina.backend.threads import split

PART_BYTES = 1 << 18  # measured: 256 KB of scores a part is a little faster than 1 MB


def _large_negative(dtype):
    return -3e4 if np.dtype(dtype) == np.float16 else -1e9


def _parts(batch, heads, source, target, itemsize):
    per_batch = max(1, heads * source * target * itemsize)
    per_part = max(1, PART_BYTES // per_batch)
    return split(batch, -(-batch // per_part))


def _heads(x):
    """``(batch, length, heads, dim)`` -> a ``(batch, heads, length, dim)`` view."""
    return x.transpose(0, 2, 1, 3)


def _rows(a, lo, hi):
    """Rows ``lo:hi`` of a mask-like array whose batch axis may be 1 (broadcast)."""
    return a if a.shape[0] == 1 else a[lo:hi]


class _Core:
    """The forward and backward on views; shared by both Functions."""

    def setup(self, q, k, v, mask, scale, dropout_mask):
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
        self.ranges = _parts(b, h, s, t, q.dtype.itemsize)
        self.probs = np.empty((b, h, s, t), q.dtype)  # P^T, head by head

    def _scaled_q(self, lo, hi):
        qh = _heads(self.q[lo:hi])
        # A caller may fold the scale into the query projection (scale=1: no pass).
        return qh if self.scale == 1 else np.multiply(qh, self.scale)

    def run_forward(self, out):
        q, k, v, probs = self.q, self.k, self.v, self.probs
        self.out = out  # the backward's rowsum(dO * O)
        big = np.asarray(_large_negative(q.dtype), q.dtype)

        def part(i):
            lo, hi = self.ranges[i]
            qs = self._scaled_q(lo, hi)
            st = probs[lo:hi]
            np.matmul(_heads(k[lo:hi]), qs.swapaxes(-1, -2), out=st)
            if self.neg is not None:
                np.add(st, big, out=st, where=_rows(self.neg, lo, hi))
            st -= st.max(axis=-2, keepdims=True)
            np.exp(st, out=st)
            total = st.sum(axis=-2, keepdims=True)
            st *= np.reciprocal(total, out=total)
            pd = st if self.drop is None else st * self.drop[lo:hi]
            np.matmul(pd.swapaxes(-1, -2), _heads(v[lo:hi]), out=_heads(out[lo:hi]))

        parallel_for(len(self.ranges), part)
        return out

    def run_backward(self, g, dq, dk, dv):
        """Write the gradients into ``dq``/``dk``/``dv`` (arrays or None to skip)."""
        k, v, probs, out = self.k, self.v, self.probs, self.out
        need_s = dq is not None or dk is not None

        def part(i):
            lo, hi = self.ranges[i]
            gh = _heads(g[lo:hi])
            pt = probs[lo:hi]
            drop = None if self.drop is None else self.drop[lo:hi]
            if dv is not None:
                pd = pt if drop is None else pt * drop
                np.matmul(pd, gh, out=_heads(dv[lo:hi]))
            if not need_s:
                return
            dst = np.matmul(_heads(v[lo:hi]), gh.swapaxes(-1, -2))  # dP^T
            if drop is None:
                # rowsum(dP * P) = rowsum(dO * O): a (length, dim) product, not (length,
                # length); einsum's fused sum beats numpy's short-axis reduction.
                dst -= np.einsum("bthd,bthd->bht", g[lo:hi], out[lo:hi])[:, :, None, :]
            else:
                dst *= drop
                dst -= np.sum(dst * pt, axis=-2, keepdims=True)
            dst *= pt  # dS^T
            if dq is not None:
                dqh = _heads(dq[lo:hi])
                np.matmul(dst.swapaxes(-1, -2), _heads(k[lo:hi]), out=dqh)
                if self.scale != 1:
                    dqh *= self.scale
            if dk is not None:
                np.matmul(dst, self._scaled_q(lo, hi), out=_heads(dk[lo:hi]))

        parallel_for(len(self.ranges), part)


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
        grads = [np.empty_like(x) if need else None
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
        q, k, v = self._split(qkv)
        self.core = core = _Core()
        core.setup(q, k, v, mask, scale, dropout_mask)
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
        self.core.run_backward(g, *self._split(grad))
        return (grad,)


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
