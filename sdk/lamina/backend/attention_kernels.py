"""Compiled kernels of the attention core (numba, through :mod:`lamina.backend.compiled`).

Imported only when the kernels are enabled (numba imports). One call runs a part of
:class:`lamina.backend.attention._Core` (batch rows ``b0:b1``, heads ``h0:h1``) without
the GIL; for each (batch row, head) the head's query, key and value are copied into
contiguous blocks and the products run through ``np.dot`` (BLAS, from numba: ~100
GFLOP/s at 64x32x64, where numba's own loops reached ~12), the softmax and its backward
as loops over the head's (source, target) block while it is in L1. As in the numpy path
the scores are kept transposed, ``P^T`` (source, target): the softmax's reductions over
the source are then elementwise over the target row (vectorised without reassociating a
sum, in a fixed order).

float32's ``exp`` is Cephes's ``expf`` (range reduction, a degree-5 polynomial, the power
of two put in the exponent bits; ~1 ulp) written so that LLVM vectorises it: numba would
call libm's scalar ``expf`` (no SVML here). float64 calls ``math.exp``.

numba's ``np.dot`` calls scipy's OpenBLAS, a library apart from numpy's: each kernel call
runs inside :func:`lamina.backend.blas_threads.one_blas_thread` (one thread while any part
runs, its count given back after the last), so that two pool threads never run
two-thread products (large heads would).

Results do not depend on the parts or the threads (each head is computed alone, in a
fixed order); they differ from the numpy path's in rounding only. The backward uses
``rowsum(dP * P)`` (the numpy path's ``rowsum(dO * O)`` when there is no dropout).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot calls its BLAS: see above)
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from lamina.backend import blas_threads, compiled, gemm
from lamina.backend.gemm_kernels import gemm_driver

_helper = numba.njit(**compiled.NUMBA_OPTIONS)


@_helper
def _dot(ukr, a, b, out):
    """``out = a @ b`` on Lamina's GEMM kernel ``ukr``, or on BLAS (``np.dot``) for None."""
    if ukr is None:
        np.dot(a, b, out)
    else:
        gemm_driver(ukr, a, b, out, False)


@intrinsic
def _float32_from_bits(typingctx, bits):
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@_helper
def _exp_f32(block, shift, total):
    """``block[s, t] = exp(block[s, t] - shift[t])`` (float32, arguments ``<= 0``) and
    ``total[t] = sum(block[:, t])`` (summed in order of ``s``)."""
    log2e = np.float32(1.44269504088896341)
    c1 = np.float32(0.693359375)
    c2 = np.float32(-2.12194440e-4)
    lo = np.float32(-86.0)  # exp(-86): 2^n is still a normal float32
    half = np.float32(0.5)
    one = np.float32(1.0)
    p0 = np.float32(1.9875691500e-4)
    p1 = np.float32(1.3981999507e-3)
    p2 = np.float32(8.3334519073e-3)
    p3 = np.float32(4.1665795894e-2)
    p4 = np.float32(1.6666665459e-1)
    p5 = np.float32(5.0000001201e-1)
    for s in range(block.shape[0]):
        row = block[s]
        for t in range(row.shape[0]):
            x = max(row[t] - shift[t], lo)
            fn = np.floor(x * log2e + half)
            r = x - fn * c1 - fn * c2
            p = p0 * r + p1
            p = p * r + p2
            p = p * r + p3
            p = p * r + p4
            p = p * r + p5
            scale = _float32_from_bits(np.int32((np.int32(fn) + 127) << 23))
            e = (p * r * r + r + one) * scale
            row[t] = e
            total[t] = e if s == 0 else total[t] + e


@_helper
def _softmax_columns(block, m, total):
    """``block = softmax(block, axis=0)`` in place; ``m``, ``total``: target-sized scratch."""
    m[:] = block[0]
    for s in range(1, block.shape[0]):
        row = block[s]
        for t in range(row.shape[0]):
            m[t] = row[t] if row[t] > m[t] else m[t]
    if block.itemsize == 4:
        _exp_f32(block, m, total)
    else:
        total[:] = 0
        for s in range(block.shape[0]):
            row = block[s]
            for t in range(row.shape[0]):
                row[t] = math.exp(row[t] - m[t])
                total[t] += row[t]
    for t in range(m.shape[0]):
        m[t] = 1 / total[t]
    for s in range(block.shape[0]):
        row = block[s]
        for t in range(row.shape[0]):
            row[t] *= m[t]


@_helper
def _load_inputs(q, qo, k, ko, v, vo, b, h0, scale, qt, ql, kl, vl):
    """Batch row ``b``'s heads ``h0:`` of the query (``qt`` transposed, ``ql`` scaled: each
    if not empty), keys (scaled) and values, in one pass over the rows (a pass per array
    over the packed projections cost ~1 ms more a step at 128x64x4x32)."""
    d_len, dv_len = kl.shape[2], vl.shape[2]
    with_qt, with_ql = qt.shape[0] > 0, ql.shape[0] > 0
    for i in range(max(q.shape[1], k.shape[1])):
        if i < q.shape[1]:
            row = q[b, i]
            for j in range(kl.shape[0]):
                start = qo + (h0 + j) * d_len
                head = row[start:start + d_len]
                if with_qt:
                    for d in range(d_len):
                        qt[j, d, i] = head[d]
                if with_ql:
                    for d in range(d_len):
                        ql[j, i, d] = head[d] * scale
        if i < k.shape[1]:
            row = k[b, i]
            for j in range(kl.shape[0]):
                start = ko + (h0 + j) * d_len
                head = row[start:start + d_len]
                for d in range(d_len):
                    kl[j, i, d] = head[d] * scale
            row = v[b, i]
            for j in range(vl.shape[0]):
                start = vo + (h0 + j) * dv_len
                head = row[start:start + dv_len]
                for d in range(dv_len):
                    vl[j, i, d] = head[d]


@_helper
def _load_twice(x, off, b, h0, dst, dst_t):
    """``dst[j] = x[b, :, off + (h0 + j) * dim + :dim]`` (``dim = dst.shape[2]``) for each
    head ``j``, and ``dst_t[j]`` its transpose (for ``A @ B^T`` as ``A @ (B^T)``: sgemm's
    NT case ran ~1.5x slower than NN at 64x32x64)."""
    dim = dst.shape[2]
    for i in range(dst.shape[1]):
        row = x[b, i]
        for j in range(dst.shape[0]):
            start = off + (h0 + j) * dim
            head = row[start:start + dim]
            for d in range(dim):
                dst[j, i, d] = head[d]
            for d in range(dim):
                dst_t[j, d, i] = head[d]


@_helper
def _store(src, x, off, b, h0):
    """``x[b, :, off + (h0 + j) * dim + :dim] = src[j]`` for each head ``j`` of ``src``."""
    dim = src.shape[2]
    for i in range(src.shape[1]):
        row = x[b, i]
        for j in range(src.shape[0]):
            start = off + (h0 + j) * dim
            head = row[start:start + dim]
            for d in range(dim):
                head[d] = src[j, i, d]


@_helper
def _store_gradients(dql, dq, dqo, dkl, dk, dko, dvl, dv, dvo, b, h0):
    """:func:`_store` of the three gradients (each if its array is not empty) in one pass
    over the rows (they are usually column ranges of one array)."""
    d_len, dv_len = dkl.shape[2], dvl.shape[2]
    need_q, need_k, need_v = dq.shape[0] > 0, dk.shape[0] > 0, dv.shape[0] > 0
    for i in range(max(dq.shape[1], dk.shape[1], dv.shape[1])):
        if need_q and i < dq.shape[1]:
            row = dq[b, i]
            for j in range(dql.shape[0]):
                start = dqo + (h0 + j) * d_len
                head = row[start:start + d_len]
                for d in range(d_len):
                    head[d] = dql[j, i, d]
        if need_k and i < dk.shape[1]:
            row = dk[b, i]
            for j in range(dkl.shape[0]):
                start = dko + (h0 + j) * d_len
                head = row[start:start + d_len]
                for d in range(d_len):
                    head[d] = dkl[j, i, d]
        if need_v and i < dv.shape[1]:
            row = dv[b, i]
            for j in range(dvl.shape[0]):
                start = dvo + (h0 + j) * dv_len
                head = row[start:start + dv_len]
                for d in range(dv_len):
                    head[d] = dvl[j, i, d]


@compiled.kernel
def _attention_forward(q, qo, k, ko, v, vo, dims, scale, neg, big, drop, probs, out, b0, b1,
                      h0, h1, ukr):
    """Rows ``b0:b1`` and heads ``h0:h1`` of the attention forward.

    ``q``/``k``/``v``: C-contiguous ``(batch, length, width)`` arrays holding head ``h``'s
    query at columns ``qo + h * key_dim + :key_dim`` (keys, values alike, from ``ko`` and
    ``vo``; one array may hold all three); ``dims``: ``(key_dim, value_dim)``; ``out``:
    ``(batch, target, heads * value_dim)``; ``neg``: ``(batch or 1, heads or 1, source,
    target)`` booleans, True where ``big`` is added (a ``(0, 0, 0, 0)`` array: no mask);
    ``drop``: ``(batch, heads, source, target)`` multipliers (``(0, 0, 0, 0)``: none);
    ``probs``: ``(batch, heads, source, target)``, written with ``P^T`` (before dropout);
    ``ukr``: Lamina's GEMM kernel for the head's products, or None for BLAS (``np.dot``).
    """
    t_len, s_len = q.shape[1], k.shape[1]
    d_len, dv_len = dims
    heads = h1 - h0
    dt = probs.dtype
    qt = np.empty((heads, d_len, t_len), dt)
    kl = np.empty((heads, s_len, d_len), dt)
    vl = np.empty((heads, s_len, dv_len), dt)
    ol = np.empty((heads, t_len, dv_len), dt)
    pd = np.empty((s_len, t_len), dt)
    no_ql = np.empty((0, 0, 0), dt)
    m = np.empty(t_len, dt)
    total = np.empty(t_len, dt)
    masked = neg.shape[0] > 0
    dropped = drop.shape[0] > 0
    for b in range(b0, b1):
        mb = b if neg.shape[0] > 1 else 0
        # (Q s) K^T = Q (K s)^T: the scale on the keys
        _load_inputs(q, qo, k, ko, v, vo, b, h0, scale, qt, no_ql, kl, vl)
        for j in range(heads):
            h = h0 + j
            mh = h if neg.shape[1] > 1 else 0
            pt = probs[b, h]
            _dot(ukr, kl[j], qt[j], pt)
            if masked:
                nm = neg[mb, mh]
                for s in range(s_len):
                    for t in range(t_len):
                        pt[s, t] = pt[s, t] + big if nm[s, t] else pt[s, t]
            _softmax_columns(pt, m, total)
            if dropped:
                dm = drop[b, h]
                for s in range(s_len):
                    for t in range(t_len):
                        pd[s, t] = pt[s, t] * dm[s, t]
            _dot(ukr, (pd if dropped else pt).T, vl[j], ol[j])
        _store(ol, out, 0, b, h0)


@compiled.kernel
def _attention_backward(q, qo, k, ko, v, vo, dims, g, scale, drop, probs, dq, dqo, dk, dko,
                       dv, dvo, b0, b1, h0, h1, ukr):
    """Rows ``b0:b1`` and heads ``h0:h1`` of the attention backward.

    ``g``: the output's gradient, ``(batch, target, heads * value_dim)``; ``dq``/``dk``/
    ``dv`` (with their column offsets ``dqo``/``dko``/``dvo``) receive the gradients in the
    inputs' layout (a ``(0, 0, 0)`` array: not needed); the other arguments as in
    :func:`_attention_forward`.
    """
    t_len, s_len = q.shape[1], k.shape[1]
    d_len, dv_len = dims
    heads = h1 - h0
    dt = probs.dtype
    need_q, need_k, need_v = dq.shape[0] > 0, dk.shape[0] > 0, dv.shape[0] > 0
    need_s = need_q or need_k
    dropped = drop.shape[0] > 0
    ql = np.empty((heads, t_len, d_len), dt)
    kl = np.empty((heads, s_len, d_len), dt)
    vl = np.empty((heads, s_len, dv_len), dt)
    gl = np.empty((heads, t_len, dv_len), dt)
    gt = np.empty((heads, dv_len, t_len), dt)
    dql = np.empty((heads, t_len, d_len), dt)
    dkl = np.empty((heads, s_len, d_len), dt)
    dvl = np.empty((heads, s_len, dv_len), dt)
    pd = np.empty((s_len, t_len), dt)
    ds = np.empty((s_len, t_len), dt)
    rs = np.empty(t_len, dt)
    no_q = np.empty((0, 0, 0), dt)
    for b in range(b0, b1):
        _load_twice(g, 0, b, h0, gl, gt)
        _load_inputs(q, qo, k, ko, v, vo, b, h0, scale, no_q, ql if need_k else no_q, kl,
                     vl)
        for j in range(heads):
            h = h0 + j
            pt = probs[b, h]
            if dropped:
                dm = drop[b, h]
                for s in range(s_len):
                    for t in range(t_len):
                        pd[s, t] = pt[s, t] * dm[s, t]
            if need_v:
                _dot(ukr, pd if dropped else pt, gl[j], dvl[j])
            if not need_s:
                continue
            _dot(ukr, vl[j], gt[j], ds)  # dP^T
            if dropped:
                for s in range(s_len):
                    for t in range(t_len):
                        ds[s, t] *= dm[s, t]
            rs[:] = 0
            for s in range(s_len):
                for t in range(t_len):
                    rs[t] += ds[s, t] * pt[s, t]
            for s in range(s_len):
                for t in range(t_len):
                    ds[s, t] = (ds[s, t] - rs[t]) * pt[s, t]  # dS^T
            if need_q:
                _dot(ukr, ds.T, kl[j], dql[j])
            if need_k:
                _dot(ukr, ds, ql[j], dkl[j])
        _store_gradients(dql, dq, dqo, dkl, dk, dko, dvl, dv, dvo, b, h0)


def attention_forward(q, qo, k, ko, v, vo, dims, scale, neg, big, drop, probs, out, b0, b1,
                      h0, h1):
    """:func:`_attention_forward` with ``ukr`` chosen for the products' dtype (Lamina's
    GEMM when it applies: :func:`lamina.backend.gemm.kernel_for`) and BLAS on one
    thread."""
    with blas_threads.one_blas_thread():
        _attention_forward(q, qo, k, ko, v, vo, dims, scale, neg, big, drop, probs, out,
                           b0, b1, h0, h1, gemm.kernel_for(probs.dtype))


def attention_backward(q, qo, k, ko, v, vo, dims, g, scale, drop, probs, dq, dqo, dk, dko,
                       dv, dvo, b0, b1, h0, h1):
    """:func:`_attention_backward` with ``ukr`` chosen as in :func:`attention_forward` and
    BLAS on one thread."""
    with blas_threads.one_blas_thread():
        _attention_backward(q, qo, k, ko, v, vo, dims, g, scale, drop, probs, dq, dqo, dk,
                            dko, dv, dvo, b0, b1, h0, h1, gemm.kernel_for(probs.dtype))
