"""The fused LSTM's compiled path: each lane's recurrence as numba kernels without the GIL.

:class:`~lamina.backend.rnn_lstm.LSTMSequence` runs this path when
:func:`lamina.backend.compiled.enabled` (numba imports, ``LAMINA_KERNELS`` is not
``numpy``) and the activations are Keras's defaults (tanh, sigmoid); its numpy path stays
the reference. The batch is cut into the same lanes
(:func:`~lamina.backend.rnn_lanes.lane_spans`) and each lane runs a kernel call per
chunk of steps (:data:`KERNEL_CHUNKS` chunks), so the two lanes run truly in parallel
(the numpy path's lanes wait for each other's GIL at each of their small calls). Each
lane is GEMM-bound: the layout is the numpy path's, whose GEMMs OpenBLAS runs fastest
(see docs/architecture.md).

Layout of a lane (``width`` rows of the batch), feature-major and batch-minor, as the
numpy path's (OpenBLAS ran these GEMMs at 97 GFLOP/s against 78 for (batch, features),
and the weight gradient as NT at 85-89 against 68-70 as TN):

- ``hx (u + f + 1, t, width)``: step ``s``'s operand ``[h_{s-1} (times the recurrent
  mask); x_s; 1]``, so one GEMM ``[recurrent_kernel; kernel; bias]^T @ hx[:, s]`` per
  step (``hx[:, s]`` read in place as a strided operand, through numba's BLAS entry
  with a leading dimension: :func:`gemm_args`) also projects the inputs and adds the
  bias, and after the loop one GEMM ``hx dz^T`` gives the lane's kernel,
  recurrent-kernel and bias gradients;
- ``z (t, 4u, width)``: the gates ``i, f, g, o`` (Keras's order) after their
  activations; ``cs (t + 1, u, width)``: the carries, ``cs[0] = c0``;
  ``tc (t, u, width)``: ``tanh(c_s)``; ``hs (t, u, width)``: the outputs.

A step is the GEMM (numba's BLAS entry: the BLAS of scipy, on one thread, see
:func:`lamina.backend.blas_threads.one_blas_thread`; with a zero initial state step 0
takes only the ``[x; 1]`` rows), one pass activating the four gates and one pass forming
``c``, ``tanh(c)`` and ``h``.
Backward through time: per step one pass forming the four gate gradients (straight
into ``dzt (4u, t, width)``) and the next ``dc``, then ``dh = recurrent_kernel @ dz``
(``dzt[:, s]`` in place, strided); after
the loop one GEMM each for the weights and the inputs. For float32 tanh is a rational
approximation (Eigen's ``ptanh_float``: within 3e-7, branch-free, so the loops
vectorise; scalar libm tanhf would take longer than the GEMMs); float64 uses the exact
tanh.
"""

from __future__ import annotations

import numpy as np

from lamina.backend import compiled, gemm, rnn_buffers
from lamina.backend.blas_threads import one_blas_thread
from lamina.backend.rnn_common import fixed_sum
from lamina.backend.rnn_lanes import lane_spans, run_lanes
from lamina.backend.threads import split

KERNEL_CHUNKS = 2  # kernel calls per lane and pass (a descheduled worker costs one chunk)

# Eigen's float tanh: clamp, then an odd degree-13 over an even degree-6 polynomial.
_TANH = (7.90531110763549805,  # clamp: beyond it tanh rounds to +-1 in float32
         -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
         5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
         4.89352455891786e-03,  # numerator, x^13 .. x^1
         1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
         4.89352518554385e-03)  # denominator, x^6 .. x^0


def constants(dtype):
    """The kernels' constants in ``dtype`` (a float64 literal would promote a float32 loop):
    ``1, clamp, a13 .. a1, b6 .. b0``."""
    return np.array((1.0, *_TANH), dtype)


def gate_scales(units, dtype):
    """Per gate column ``(scale, shift)``: ``act(a) = scale * tanh(scale * a) + shift``,
    sigmoid for ``i, f, o`` (``(tanh(a / 2) + 1) / 2``) and tanh for ``g``."""
    scale = np.full(4 * units, 0.5, dtype)
    shift = np.full(4 * units, 0.5, dtype)
    scale[2 * units:3 * units] = 1.0
    shift[2 * units:3 * units] = 0.0
    return scale, shift


def _tanh_approx(a, c):
    """Eigen's float tanh of ``a``: clamp, then the odd over the even polynomial (Horner
    in ``a * a``). ``c`` is :func:`constants` after the ``1``, as a tuple (scalars once
    unpacked, so a loop keeps them in registers). The kernels call it as ``_tanh``, its
    numba form inlined into their loops (see :func:`_load_numbas_blas`), so the loops
    still vectorise."""
    clamp, a13, a11, a9, a7, a5, a3, a1, b6, b4, b2, b0 = c
    a = min(max(a, -clamp), clamp)
    a2 = a * a
    p = a2 * a13 + a11
    p = a2 * p + a9
    p = a2 * p + a7
    p = a2 * p + a5
    p = a2 * p + a3
    p = a2 * p + a1
    d = a2 * b6 + b4
    d = a2 * d + b2
    d = a2 * d + b0
    return a * p / d


_tanh = _tanh_approx  # (numba's inline="always" form once loaded: _load_numbas_blas)


@compiled.kernel
def lstm_forward(x, wt, wx, h0, c0, rmask, mask, scale, shift, k, blas, ab, ukr, hx, z, cs, tc,
                 hs, lo, s_lo, s_hi, back, has_mask, has_rmask, skip_h0, exact):
    """Forward steps ``s_lo:s_hi`` of the lane of batch rows ``lo:lo + width``.

    ``x (batch, t, f)`` in the caller's time order (``back``: processed last to first),
    ``wt (4u, u + f + 1)``, ``wx`` its last ``f + 1`` columns (contiguous: with
    ``skip_h0``, a zero initial state, step 0's GEMM takes only the ``[x; 1]`` rows),
    ``mask (batch, t)`` in processing order, ``rmask (batch, u)`` (both ignored unless
    ``has_mask``/``has_rmask``), ``k`` from :func:`constants`, ``blas, ab`` from
    :func:`gemm_args`, ``ukr``: Lamina's GEMM kernel (:func:`lamina.backend.gemm.kernel_for`),
    or None for BLAS.
    """
    kk, t, width = hx.shape
    u = tc.shape[1]
    f = x.shape[2]
    one = k[0]
    c = (k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12])
    if s_lo == 0:
        for s in range(t):
            src = t - 1 - s if back else s
            for q in range(f):
                for j in range(width):
                    hx[u + q, s, j] = x[lo + j, src, q]
            for j in range(width):
                hx[kk - 1, s, j] = one
        for q in range(u):
            for j in range(width):
                h = h0[lo + j, q]
                hx[q, 0, j] = h * rmask[lo + j, q] if has_rmask else h
                cs[0, q, j] = c0[lo + j, q]
    ld = hx.strides[0] // hx.itemsize  # (hx[:, s] is a strided operand: no copy)
    for s in range(s_lo, s_hi):
        zs = z[s]
        if ukr is not None:
            if s == 0 and skip_h0:
                gemm_driver(ukr, wx, hx[u:, s], zs, False)
            else:
                gemm_driver(ukr, wt, hx[:, s], zs, False)
        else:
            if s == 0 and skip_h0:  # zs = wx @ hx[u:, 0]
                r = _xxgemm(blas, _N, _N, width, 4 * u, kk - u, ab.ctypes, hx[u, s].ctypes,
                            ld, wx.ctypes, kk - u, ab[1:].ctypes, zs.ctypes, width)
            else:  # zs = wt @ hx[:, s]
                r = _xxgemm(blas, _N, _N, width, 4 * u, kk, ab.ctypes, hx[0, s].ctypes, ld,
                            wt.ctypes, kk, ab[1:].ctypes, zs.ctypes, width)
            if r:
                raise RuntimeError(_NO_BLAS)
        # (exact and approximate tanh in separate loops: a call in a loop keeps LLVM
        # from vectorising it; each gate, and each pass below, as one flat loop over
        # contiguous (u * width) views: rows of 64 cost ~2x in loop overhead)
        n = u * width
        zf = zs.reshape(4 * n)
        for gate in range(4):
            sc, sh = scale[gate * u], shift[gate * u]
            zg = zf[gate * n:(gate + 1) * n]
            if exact:
                for j in range(n):
                    zg[j] = np.tanh(zg[j] * sc) * sc + sh
            else:
                for j in range(n):
                    zg[j] = _tanh(zg[j] * sc, c) * sc + sh
        ig, fg, gg, og = zf[:n], zf[n:2 * n], zf[2 * n:3 * n], zf[3 * n:]
        cp, cn, hss = cs[s], cs[s + 1], hs[s]
        cpf, cnf, tcf, hf = cp.reshape(n), cn.reshape(n), tc[s].reshape(n), hss.reshape(n)
        for j in range(n):
            cnf[j] = fg[j] * cpf[j] + ig[j] * gg[j]
        if exact:
            for j in range(n):
                tcf[j] = np.tanh(cnf[j])
        else:
            for j in range(n):
                tcf[j] = _tanh(cnf[j], c)
        for j in range(n):
            hf[j] = og[j] * tcf[j]
        if has_mask:  # a masked step keeps the states
            for j in range(width):
                if not mask[lo + j, s]:
                    for q in range(u):
                        cn[q, j] = cp[q, j]
                        hss[q, j] = hs[s - 1, q, j] if s else h0[lo + j, q]
        if s + 1 < t:
            for q in range(u):
                for j in range(width):
                    v = hss[q, j]
                    hx[q, s + 1, j] = v * rmask[lo + j, q] if has_rmask else v


@compiled.kernel
def lstm_backward(g, seqs, rk, kx, rmask, mask, k, blas, ab, ukr, hx, z, cs, tc, dzt, dh, dc,
                  keep, dw, dxt, lo, s_lo, s_hi, has_mask, has_rmask, need_dh0, need_w,
                  need_x):
    """Backward steps ``s_hi - 1`` down to ``s_lo`` of the lane of rows ``lo:lo + width``.

    ``g``: the packed outputs' gradient (``seqs``: one row per step, else row 0 for
    the last step); ``rk``, ``kx``: the recurrent kernel and the kernel (Keras's layout);
    ``dh, dc (u, width)`` carry the state gradients from one call to the next (``dc``
    starts as the final carry's gradient); ``keep (2u, width)`` is scratch; ``blas, ab``
    from :func:`gemm_args`. A step's gate gradients go straight into ``dzt[:, s]``, which
    the step's GEMM ``dh = recurrent_kernel dz`` reads as a strided operand. The call
    that ends at step 0 also writes the lane's ``dw = hx dz^T`` and ``dxt = kernel dz``
    (``(f, t, width)``) when ``need_w``/``need_x``.
    """
    kk, t, width = hx.shape
    u = tc.shape[1]
    one = k[0]
    ld = dzt.strides[0] // dzt.itemsize
    for s in range(s_hi - 1, s_lo - 1, -1):
        gs = s if seqs else 0
        if seqs or s == t - 1:
            for j in range(width):
                for q in range(u):
                    dh[q, j] += g[lo + j, gs, q]
        if has_mask:  # what a masked step passes through
            for q in range(u):
                for j in range(width):
                    keep[q, j] = dh[q, j]
                    keep[u + q, j] = dc[q, j]
        zs, tcs, cp = z[s], tc[s], cs[s]
        for q in range(u):
            ig, fg, gg, og = zs[q], zs[u + q], zs[2 * u + q], zs[3 * u + q]
            tcr, cpr, dhr, dcr = tcs[q], cp[q], dh[q], dc[q]
            di, df, dg, do = dzt[q, s], dzt[u + q, s], dzt[2 * u + q, s], dzt[3 * u + q, s]
            for j in range(width):
                th, dhv, i, fv, gv, o = tcr[j], dhr[j], ig[j], fg[j], gg[j], og[j]
                dcv = dcr[j] + dhv * o * (one - th * th)
                di[j] = dcv * gv * i * (one - i)
                df[j] = dcv * cpr[j] * fv * (one - fv)
                dg[j] = dcv * i * (one - gv * gv)
                do[j] = dhv * th * o * (one - o)
                dcr[j] = dcv * fv
        if has_mask:
            for j in range(width):
                if mask[lo + j, s]:
                    for q in range(u):
                        keep[q, j] = 0
                else:
                    for q in range(4 * u):
                        dzt[q, s, j] = 0
                    for q in range(u):
                        dc[q, j] = keep[u + q, j]
        if s or need_dh0:  # dh = rk @ dzt[:, s]
            if ukr is not None:
                gemm_driver(ukr, rk, dzt[:, s], dh, False)
            elif _xxgemm(blas, _N, _N, width, u, 4 * u, ab.ctypes, dzt[0, s].ctypes, ld,
                         rk.ctypes, 4 * u, ab[1:].ctypes, dh.ctypes, width):
                raise RuntimeError(_NO_BLAS)
            if has_rmask or has_mask:
                for q in range(u):
                    for j in range(width):
                        v = dh[q, j] * rmask[lo + j, q] if has_rmask else dh[q, j]
                        dh[q, j] = v + keep[q, j] if has_mask else v
    if s_lo == 0:
        rows = t * width
        d2 = dzt.reshape(dzt.shape[0], rows)
        if ukr is not None:
            if need_w:  # as (dz hx^T)^T: packs hx^T (rows x kk), not dz^T (rows x 4u)
                dwt = np.empty((dw.shape[1], dw.shape[0]), dw.dtype)
                gemm_driver(ukr, d2, hx.reshape(kk, rows).T, dwt, False)
                dw[:, :] = dwt.T
            if need_x:
                gemm_driver(ukr, kx, d2, dxt.reshape(dxt.shape[0], rows), False)
        else:
            if need_w:
                np.dot(hx.reshape(kk, rows), d2.T, dw)
            if need_x:
                np.dot(kx, d2, dxt.reshape(dxt.shape[0], rows))


_N = 110  # ord("n"): a GEMM operand as it is (BLAS's column-major view of our C order)
_xxgemm = None  # numba's GEMM entry (set by _load_numbas_blas before the kernels compile)
gemm_driver = None  # Lamina's GEMM (set there too: importing it imports numba)
_NO_BLAS = "the LSTM kernels' GEMM found no BLAS (numba takes scipy's: pip install scipy)"


def gemm_args(dtype):
    """``(blas, ab)`` for the kernels' GEMM calls in ``dtype``: BLAS's type letter and
    the ``alpha, beta = 1, 0`` they pass by pointer."""
    return ord("s" if np.dtype(dtype) == np.float32 else "d"), np.array((1.0, 0.0), dtype)


def _load_numbas_blas():
    # The kernels' GEMMs call numba's own ``numba_xxgemm`` (what its np.dot calls: the
    # BLAS behind scipy.linalg.cython_blas, scipy's OpenBLAS) with a leading dimension,
    # so that an operand can be a strided slice (np.dot takes contiguous arrays only,
    # and the copies cost ~0.3 ms of a lane's backward). The same call as np.dot's, so
    # the same bits. scipy's BLAS is loaded before a block opens, so that
    # blas_threads.one_blas_thread finds it.
    # It also compiles the tanh the kernels share: inlined in numba's IR (before typing),
    # so each loop that calls it is compiled as if the polynomial were written out there.
    global _xxgemm, _tanh, gemm_driver
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:  # (numba then says that its BLAS needs scipy)
        pass
    if _xxgemm is None:
        import numba
        from numba import types

        from lamina.backend.gemm_kernels import gemm_driver

        _tanh = numba.njit(inline="always", **compiled.NUMBA_OPTIONS)(_tanh_approx)
        p, i = types.voidptr, types.intp
        _xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(  # (last: see `if`)
            types.char, types.char, types.char, i, i, i, p, p, i, p, i, p, p, i))


def applies(activation, recurrent_activation, dtype):
    """Whether an LSTM of these activations and ``dtype`` runs the compiled kernels
    (when :func:`lamina.backend.compiled.enabled`: numba imports and
    ``LAMINA_KERNELS`` is not ``numpy``)."""
    return (activation == "tanh" and recurrent_activation == "sigmoid"
            and np.dtype(dtype) in (np.float32, np.float64) and compiled.enabled())


class _Lane:
    """A lane's arrays: rows ``lo:hi`` of the batch (see the module docstring)."""

    def __init__(self, lo, hi, t, f, u, dtype):
        width, take = hi - lo, rnn_buffers.take
        self.lo, self.hi = lo, hi
        self.hx = take((u + f + 1, t, width), dtype)
        self.z = take((t, 4 * u, width), dtype)
        self.cs = take((t + 1, u, width), dtype)
        self.tc = take((t, u, width), dtype)
        self.hs = take((t, u, width), dtype)
        self.dw = None

    def buffers(self):
        return [self.hx, self.z, self.cs, self.tc, self.hs]


def forward(seq, x, kernel, recurrent_kernel, bias, h0, c0, mask, recurrent_mask, dtype):
    """:meth:`LSTMSequence.forward` on the kernels: the packed outputs, and on ``seq``
    what :func:`backward` needs."""
    b, t, f = x.shape
    u = recurrent_kernel.shape[0]
    # (scratch arrays of 100s of kB come from the pool: fresh ones cost page faults,
    # ~1 ms a training step here)
    wt = rnn_buffers.take((4 * u, u + f + 1), dtype)
    wt[:, :u], wt[:, u:u + f] = np.transpose(recurrent_kernel), np.transpose(kernel)
    wt[:, u + f] = 0.0 if bias is None else bias
    wx = rnn_buffers.take((4 * u, f + 1), dtype)
    wx[...] = wt[:, u:]
    x = np.ascontiguousarray(x, dtype)
    skip_h0 = h0 is None or not np.any(h0)
    h0 = np.zeros((b, u), dtype) if h0 is None else np.ascontiguousarray(h0, dtype)
    c0 = np.zeros((b, u), dtype) if c0 is None else np.ascontiguousarray(c0, dtype)
    has_mask = mask is not None and not np.all(mask)
    m = np.ones((1, 1), bool)
    if has_mask:
        m = np.asarray(mask, dtype=bool)
        m = np.ascontiguousarray(m[:, ::-1] if seq.go_backwards else m)
    has_rmask = recurrent_mask is not None
    rm = (np.ascontiguousarray(recurrent_mask, dtype) if has_rmask
          else np.ones((1, 1), dtype))
    k, (scale, shift) = constants(dtype), gate_scales(u, dtype)
    exact = np.dtype(dtype) != np.float32
    blas, ab = gemm_args(dtype)
    lanes = [_Lane(lo, hi, t, f, u, dtype) for lo, hi in lane_spans(b)]
    ukr = seq.gemm_kernel = gemm.kernel_for(dtype)

    def run(lane):
        spans = split(t, KERNEL_CHUNKS)
        for n, (s_lo, s_hi) in enumerate(spans):
            if n:
                yield len(spans) - n  # (chunks left; none after the last: see run_lanes)
            lstm_forward(x, wt, wx, h0, c0, rm, m, scale, shift, k, blas, ab, ukr, lane.hx,
                         lane.z, lane.cs, lane.tc, lane.hs, lane.lo, s_lo, s_hi,
                         seq.go_backwards, has_mask, has_rmask, skip_h0, exact)

    grads = any(seq.needs)
    _load_numbas_blas()
    with one_blas_thread():
        run_lanes((run(lane) for lane in lanes), site=("lstm kernels forward", x.shape, u,
                                                       grads))
    rnn_buffers.give(wt, wx)
    steps = t if seq.return_sequences else 1
    out = np.empty((b, steps + 1, u), dtype)
    for lane in lanes:
        out[lane.lo:lane.hi, :steps] = lane.hs[t - steps:].transpose(2, 0, 1)
        out[lane.lo:lane.hi, steps] = lane.cs[t].T
    buffers = [a for lane in lanes for a in lane.buffers()]
    if grads:
        seq.kernel_state = (lanes, m, has_mask, rm, has_rmask, k)
        rnn_buffers.hold(seq, *buffers)
    else:
        rnn_buffers.give(*buffers)
    return out


def backward(seq, g):
    """:meth:`LSTMSequence.backward` on the kernels (after :func:`forward`)."""
    b, t, f, u = seq.shape
    lanes, m, has_mask, rm, has_rmask, k = seq.kernel_state
    dtype = lanes[0].z.dtype
    needs = seq.needs
    need_x = bool(needs[0])
    need_w = bool(needs[1] or needs[2] or (seq.has_bias and needs[3]))
    g = np.ascontiguousarray(g, dtype)
    steps = t if seq.return_sequences else 1
    rk = np.ascontiguousarray(seq.recurrent_kernel, dtype)
    kx = np.ascontiguousarray(seq.kernel, dtype)
    no_w, no_x = np.empty((1, 1), dtype), np.empty((1, 1, 1), dtype)
    dx = np.empty((b, t, f), dtype) if need_x else None
    dh0, dc0 = np.empty((b, u), dtype), np.empty((b, u), dtype)
    blas, ab = gemm_args(dtype)
    ukr = seq.gemm_kernel  # the forward's choice: both passes on the same GEMM

    def run(lane):
        lo, hi = lane.lo, lane.hi
        width, take = hi - lo, rnn_buffers.take
        dzt = take((4 * u, t, width), dtype)
        keep = take((2 * u, width), dtype)
        dh, dc = take((u, width), dtype), take((u, width), dtype)
        dh[...] = 0.0
        dc[...] = g[lo:hi, steps].T
        dw = take((u + f + 1, 4 * u), dtype) if need_w else no_w
        dxt = take((f, t, width), dtype) if need_x else no_x
        spans = split(t, KERNEL_CHUNKS)[::-1]
        for n, (s_lo, s_hi) in enumerate(spans):
            if n:
                yield len(spans) - n
            lstm_backward(g, seq.return_sequences, rk, kx, rm, m, k, blas, ab, ukr, lane.hx,
                          lane.z, lane.cs, lane.tc, dzt, dh, dc, keep, dw, dxt, lo, s_lo, s_hi,
                          has_mask, has_rmask, bool(needs[4]), need_w, need_x)
        dh0[lo:hi], dc0[lo:hi] = dh.T, dc.T
        rnn_buffers.give(dzt, keep, dh, dc)
        lane.dw = dw if need_w else None
        if need_x:
            dx[lo:hi] = (dxt[:, ::-1] if seq.go_backwards else dxt).transpose(2, 1, 0)
            rnn_buffers.give(dxt)

    _load_numbas_blas()
    with one_blas_thread():
        run_lanes((run(lane) for lane in lanes), site=("lstm kernels backward", seq.shape))
    dk = drk = db = None
    if need_w:
        dw = fixed_sum(lane.dw for lane in lanes)
        if len(lanes) > 1:  # (the sum is a new array; one lane's dw is the result itself)
            rnn_buffers.give(*(lane.dw for lane in lanes))
        drk = dw[:u] if needs[2] else None
        dk = dw[u:u + f] if needs[1] else None
        db = np.array(dw[u + f]) if seq.has_bias and needs[3] else None
    return (dx, dk, drk, db, dh0 if needs[4] else None, dc0 if needs[5] else None)
