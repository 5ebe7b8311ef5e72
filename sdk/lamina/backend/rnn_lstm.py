"""The fused LSTM sequence primitive (see :mod:`lamina.backend.rnn` for the conventions).

Layout: states are kept transposed, ``(units, batch)``, and the pre-activations of a
step as one contiguous ``(4*units, batch)`` block. Each gate is then a contiguous
``(units, batch)`` block (numpy is ~3x slower on the strided column slices of a
``(batch, 4*units)`` array), the three sigmoid gates sit side by side (internal order
``i, f, o, g``) so one pass activates them, and both per-step GEMMs are single
contiguous products: ``recurrent_kernel^T @ h`` forward, ``recurrent_kernel @ dz``
backward.

The per-step loops keep only the work that depends on the previous step; the rest runs
on the pool beside the loop, one chunk of steps ahead or behind it (:func:`pipeline`):

- forward: the recurrent GEMM, one tanh pass for all four gates (the sigmoid gates'
  weights are pre-scaled by 1/2: ``sigmoid(a) = (tanh(a/2) + 1) / 2``), the cell and
  hidden updates. Beside it, the pool projects the next chunk's inputs (the bias
  rides in the same GEMM as an input column of ones) and, when a gradient will be
  needed, turns the previous chunk into *backward factors*: the products of stored
  values that a backward step would otherwise form one by one (``g i'``,
  ``c_{t-1} f'``, ``i g'``, ``tanh(c) o'`` and, for the carry, ``o tanh'(c)``).
- backward: per step ``dc += dh * factor``, the four gate gradients, ``dc *= f`` and the
  recurrent GEMM. Beside it, the pool folds the previous chunk into the input, kernel
  (and bias) and recurrent-kernel gradients, one GEMM each per piece of a chunk; the
  parts are summed in a fixed order, so results are bit-identical whichever thread
  computed them.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.rnn_common import (
    _act_,
    _derivative,
    _one_blas_thread,
    _output_grads,
    _pack,
    _Sequence,
    chunk_spans,
    fixed_sum,
    pipeline,
)

# Keras's gate columns are i, f, c(g), o; the forward keeps them as i, f, o, g.
_FORWARD_ORDER = (0, 1, 3, 2)


def _forward_rows(w, scale):
    """``(n, 4*units)`` Keras weights as ``(4*units, n)`` rows in the forward's gate order,
    each gate's rows multiplied by its scale."""
    n, k = w.shape
    u = k // 4
    rows = w.reshape(n, 4, u).transpose(1, 2, 0)[list(_FORWARD_ORDER)]
    out = np.ascontiguousarray(rows).reshape(k, n)
    if scale is not None:
        out *= np.repeat(np.asarray(scale, dtype=out.dtype), u)[:, None]
    return out


def _t(a):
    return None if a is None else np.ascontiguousarray(a.T)


class LSTMSequence(_Sequence):
    """Keras's LSTM (gates ``i, f, c, o``) over a sequence, in one node.

    ``i, f, o = recurrent_activation(.)``, ``g = activation(.)`` of
    ``x_t @ kernel + h_{t-1} @ recurrent_kernel + bias``; ``c_t = f c_{t-1} + i g``;
    ``h_t = o activation(c_t)``. Inputs: ``x, kernel, recurrent_kernel, bias, h0, c0``.
    Packed output rows: the outputs, then the final carry state.
    """

    def forward(self, x, kernel, recurrent_kernel, bias, h0, c0, mask=None,
                recurrent_mask=None, go_backwards=False, return_sequences=False,
                activation="tanh", recurrent_activation="sigmoid"):
        t = self._setup(x, recurrent_kernel, [h0, c0], mask, recurrent_mask, go_backwards,
                        return_sequences)
        self.kernel, self.has_bias = kernel, bias is not None
        self.activation, self.recurrent_activation = activation, recurrent_activation
        u, b, f = recurrent_kernel.shape[0], x.shape[0], x.shape[2]
        # Scaling the sigmoid gates' weights by 1/2 turns all four activations into one
        # tanh pass: sigmoid(a) = (tanh(a/2) + 1) / 2.
        self.fast = activation == "tanh" and recurrent_activation == "sigmoid"
        scale = (0.5, 0.5, 0.5, 1.0) if self.fast else None
        dtype = np.result_type(x, kernel, recurrent_kernel)
        # Input rows get a column of ones: the bias rides in the projection GEMM, and
        # its gradient comes out of the kernel-gradient GEMM.
        self.x1 = np.empty((t, b, f + 1), dtype=self.xt.dtype)
        self.x1[:, :, :f] = self.xt
        self.x1[:, :, f] = 1.0
        w = np.concatenate([kernel, np.zeros((1, 4 * u), kernel.dtype) if bias is None
                            else np.asarray(bias).reshape(1, 4 * u)]).astype(dtype)
        w_rows = _forward_rows(w, scale)
        self.gates = np.empty((t, 4 * u, b), dtype=dtype)
        spans = chunk_spans(t)

        def project(lo, hi):
            np.matmul(w_rows, self.x1[lo:hi].transpose(0, 2, 1), out=self.gates[lo:hi])

        self.rmask_t = _t(self.rmask)
        self.mask_t = None if self.mask is None else self.mask.transpose(0, 2, 1)
        # h is (units, time, batch): a chunk's previous states are then one (units,
        # steps*batch) operand of the recurrent-kernel gradient GEMM.
        self.h_all = np.empty((u, t, b), dtype=x.dtype)
        self.c_all = np.empty((t, u, b), dtype=x.dtype)
        self.tc_all = np.empty_like(self.c_all)
        rk_rows = _forward_rows(recurrent_kernel, scale)
        factors = None
        if any(self.needs):
            self.factors = np.empty_like(self.gates)
            self.carry_factor = np.empty_like(self.c_all)
            factors = self._backward_factors
        pipeline(spans, self._steps(rk_rows, spans), before=project, after=factors)
        return _pack(self.h_all.transpose(1, 2, 0), return_sequences, [self.c_all[-1].T])

    def _hin_t(self, h):
        return h if self.rmask_t is None else h * self.rmask_t

    def _steps(self, rk_rows, spans):
        """The forward loop, yielding after each span."""
        gates, h_all, c_all, tc_all = self.gates, self.h_all, self.c_all, self.tc_all
        act, ract, mask = self.activation, self.recurrent_activation, self.mask_t
        u = h_all.shape[0]
        h, c = (_t(s) for s in self.states0)
        rec = np.empty(gates.shape[1:], dtype=gates.dtype)
        ig = np.empty(c_all.shape[1:], dtype=c_all.dtype)
        with _one_blas_thread():
            for lo, hi in spans:
                for s in range(lo, hi):
                    z = gates[s]
                    np.matmul(rk_rows, self._hin_t(h), out=rec)
                    z += rec
                    sig = z[:3 * u]
                    if self.fast:
                        np.tanh(z, out=z)
                        sig *= 0.5
                        sig += 0.5
                    else:
                        _act_(ract, sig)
                        _act_(act, z[3 * u:])
                    i, f, o, gg = z[:u], z[u:2 * u], z[2 * u:3 * u], z[3 * u:]
                    c_new, tc = c_all[s], tc_all[s]
                    np.multiply(f, c, out=c_new)
                    np.multiply(i, gg, out=ig)
                    c_new += ig
                    if act == "tanh":
                        np.tanh(c_new, out=tc)
                    else:
                        np.copyto(tc, c_new)
                        _act_(act, tc)
                    h_new = h_all[:, s]
                    np.multiply(o, tc, out=h_new)
                    if mask is not None:
                        keep = ~mask[s]
                        np.copyto(c_new, c, where=keep)
                        np.copyto(h_new, h, where=keep)
                    h, c = h_new, c_new
                yield

    def _backward_factors(self, lo, hi):
        """Products of stored values that the backward multiplies by ``dc`` or ``dh``.

        ``factors`` in Keras's gate order: ``g i'``, ``c_{t-1} f'``, ``i g'`` (times
        ``dc``) and ``tanh(c) o'`` (times ``dh``; zero on masked steps).
        ``carry_factor``: ``o tanh'(c)``.
        """
        u = self.h_all.shape[0]
        gates = self.gates[lo:hi]
        gi, gf, go, gg = (gates[:, j * u:(j + 1) * u] for j in range(4))
        fac = self.factors[lo:hi]
        fi, ff, fg, fo = (fac[:, j * u:(j + 1) * u] for j in range(4))
        act, ract = self.activation, self.recurrent_activation
        for y, out in ((gi, fi), (gf, ff), (go, fo)):
            _derivative(ract, y, out)
        _derivative(act, gg, fg)
        fi *= gg
        if lo == 0:
            ff[0] *= self.states0[1].T
            ff[1:] *= self.c_all[:hi - 1]
        else:
            ff *= self.c_all[lo - 1:hi - 1]
        fg *= gi
        fo *= self.tc_all[lo:hi]
        if self.mask_t is not None:
            fo *= self.mask_t[lo:hi]
        carry = self.carry_factor[lo:hi]
        _derivative(act, self.tc_all[lo:hi], carry)
        carry *= go

    def backward(self, g):
        u, t, b = self.h_all.shape
        gseq, (dc,) = _output_grads(g, t, self.return_sequences, 1)
        dpre = np.empty_like(self.gates)  # (time, 4*units, batch), Keras's gate order
        dh = np.zeros((u, b), dtype=np.result_type(g, self.recurrent_kernel))
        dc = np.ascontiguousarray(dc.T, dtype=dh.dtype)
        spans = chunk_spans(t, backward=True)
        parts = {}
        dx = None
        if self.needs[0]:
            dx = np.empty((self.kernel.shape[0], t, b), dtype=np.result_type(dpre, self.kernel))

        def weight_grads(lo, hi):
            parts[lo] = self._weight_grads(dpre, lo, hi, dx)

        pipeline(spans, self._backward_steps(gseq, dh, dc, dpre, spans), after=weight_grads)
        parts = [parts[lo] for lo in sorted(parts)]
        sums = {key: fixed_sum(p[key] for p in parts) for key in parts[0]}
        dk = drk = db = None
        f = self.kernel.shape[0]
        if dx is not None:
            if self.go_backwards:
                dx = dx[:, ::-1]
            dx = np.ascontiguousarray(dx.transpose(2, 1, 0))
        if self.needs[1]:
            dk = np.ascontiguousarray(sums["dw"][:f])
        if self.has_bias and self.needs[3]:
            db = sums["dw"][f]
        if self.needs[2]:
            drk = sums["drk"]
        return (dx, dk, drk, db, dh.T if self.needs[4] else None,
                dc.T if self.needs[5] else None)

    def _backward_steps(self, gseq, dh, dc, dpre, spans):
        """Backward through time; ``dh`` and ``dc`` end as the initial states' gradients."""
        fac, carry, m, rmask = self.factors, self.carry_factor, self.mask_t, self.rmask_t
        u = dh.shape[0]
        rk = self.recurrent_kernel
        tmp = np.empty_like(dh)
        last = self.h_all.shape[1] - 1
        with _one_blas_thread():
            for lo, hi in spans:
                for s in range(hi - 1, lo - 1, -1):
                    if self.return_sequences:
                        dh += gseq[s].T
                    elif s == last:
                        dh += gseq[0].T
                    if m is not None:
                        keep = ~m[s]
                        dh_keep, dc_keep = dh * keep, dc * keep
                    np.multiply(dh, carry[s], out=tmp)
                    dc += tmp
                    if m is not None:
                        dc *= m[s]
                    d, fs = dpre[s], fac[s]
                    np.multiply(dc, fs[:3 * u].reshape(3, u, -1),
                                out=d[:3 * u].reshape(3, u, -1))
                    np.multiply(dh, fs[3 * u:], out=d[3 * u:])
                    dc *= self.gates[s, u:2 * u]
                    np.matmul(rk, d, out=dh)
                    if rmask is not None:
                        dh *= rmask
                    if m is not None:
                        dh += dh_keep
                        dc += dc_keep
                yield

    def _weight_grads(self, dpre, lo, hi, dx):
        """The gate gradients of steps ``lo:hi`` as input rows and weight-gradient parts.

        One GEMM each over the chunk's ``steps*batch`` columns: ``kernel @ dz`` (the
        inputs, written into ``dx``), ``x1^T dz^T`` (kernel and bias) and
        ``h_{t-1} dz^T`` (recurrent kernel). Returns the chunk's parts to be summed.
        """
        u, _, b = self.h_all.shape
        d = dpre[lo:hi].transpose(1, 0, 2).reshape(4 * u, -1)  # one copy of the chunk
        out = {}
        if dx is not None:
            dx[:, lo:hi] = (self.kernel @ d).reshape(-1, hi - lo, b)
        if self.needs[1] or (self.has_bias and self.needs[3]):
            out["dw"] = self.x1[lo:hi].reshape(-1, self.x1.shape[2]).T @ d.T
        if self.needs[2]:
            start = max(lo, 1)
            parts = []
            if lo == 0:
                parts.append(self._hin_t(self.states0[0].T) @ dpre[0].T)
            if hi > start:
                prev = self.h_all[:, start - 1:hi - 1]
                if self.rmask_t is not None:
                    prev = prev * self.rmask_t[:, None, :]
                parts.append(prev.reshape(u, -1) @ d[:, (start - lo) * b:].T)
            out["drk"] = fixed_sum(parts)
        return out

