"""The fused LSTM sequence primitive (see :mod:`lamina.backend.rnn` for the conventions).

Layout: gate-major. The pre-activations of all steps live in one ``(4, time, batch,
units)`` array, so that every per-step operation touches contiguous ``(batch, units)``
blocks (numpy is ~3x slower on the strided column slices of a ``(batch, 4*units)``
array), and the three sigmoid gates are stored side by side (internal order ``i, f, o,
g``) so they are activated in one pass. The recurrent GEMM is a batch of four
``(batch, units) @ (units, units)`` products.

The per-step loops keep only the work that depends on the previous step; the rest runs
on a second thread over finished chunks of steps (:func:`overlap`):

- forward: recurrent GEMM, one tanh pass for all four gates (the sigmoid gates' weights
  are pre-scaled by 1/2: ``sigmoid(a) = (tanh(a/2) + 1) / 2``), the cell and hidden
  updates. Meanwhile, when a gradient will be needed, the other thread turns each
  finished chunk into the *backward factors*, the products of stored values that the
  backward would otherwise form step by step (``g i'``, ``c_{t-1} f'``, ``i g'``,
  ``tanh(c) o'`` and, for the carry, ``o tanh'(c)``).
- backward: per step ``dc += dh * factor``, the four gate gradients, ``dc *= f`` and the
  recurrent GEMM; meanwhile the other thread folds finished chunks into the input,
  kernel (with the bias as an extra input row of ones), and recurrent-kernel gradients.
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
    overlap,
)
from lamina.backend.threads import parallel_for

# Keras's gate columns are i, f, c(g), o; the forward stores them as i, f, o, g.
_FORWARD_ORDER = (0, 1, 3, 2)


def _gate_major(w, order=(0, 1, 2, 3), scale=None):
    """``(n, 4*units)`` weights as ``(4, n, units)`` in ``order``, each gate scaled."""
    n, k = w.shape
    u = k // 4
    out = np.ascontiguousarray(w.reshape(n, 4, u).transpose(1, 0, 2)[list(order)])
    if scale is not None:
        out *= np.asarray(scale, dtype=out.dtype)[:, None, None]
    return out


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
        # The input rows get a column of ones so that the bias rides in the same GEMM
        # (and its gradient comes out of the kernel-gradient GEMM).
        self.x1 = np.empty((t * b, f + 1), dtype=self.xt.dtype)
        self.x1[:, :f] = self.xt.reshape(t * b, f)
        self.x1[:, f] = 1.0
        w = np.concatenate([kernel, np.zeros((1, 4 * u), kernel.dtype) if bias is None
                            else np.asarray(bias).reshape(1, 4 * u)]).astype(dtype)
        w4 = _gate_major(w, _FORWARD_ORDER, scale)
        self.gates = np.empty((4, t, b, u), dtype=dtype)
        flat = self.gates.reshape(4, t * b, u)
        parallel_for(4, lambda j: np.matmul(self.x1, w4[j], out=flat[j]))
        rk4 = _gate_major(recurrent_kernel, _FORWARD_ORDER, scale)
        self.h_all = np.empty((t, b, u), dtype=x.dtype)
        self.c_all = np.empty_like(self.h_all)
        self.tc_all = np.empty_like(self.h_all)
        if any(self.needs):
            spans = chunk_spans(t)
            self.factors = np.empty_like(self.gates)
            self.carry_factor = np.empty_like(self.h_all)
            overlap(spans, lambda ready: self._steps(rk4, spans, ready),
                    lambda c: self._backward_factors(*spans[c]))
        else:
            self._steps(rk4, [(0, t)], None)
        return _pack(self.h_all, return_sequences, [self.c_all[-1]])

    def _steps(self, rk4, spans, ready):
        gates, h_all, c_all, tc_all = self.gates, self.h_all, self.c_all, self.tc_all
        act, ract, mask = self.activation, self.recurrent_activation, self.mask
        _, _, b, u = gates.shape
        h, c = self.states0
        rec = np.empty((4, b, u), dtype=gates.dtype)
        ig = np.empty((b, u), dtype=c_all.dtype)
        with _one_blas_thread():
            for chunk, (lo, hi) in enumerate(spans):
                for s in range(lo, hi):
                    z = gates[:, s]
                    np.matmul(self._hin(h), rk4, out=rec)
                    z += rec
                    if self.fast:
                        np.tanh(z, out=z)
                        sig = z[:3]
                        sig *= 0.5
                        sig += 0.5
                    else:
                        _act_(ract, z[:3])
                        _act_(act, z[3])
                    i, f, o, gg = z
                    c_new, tc = c_all[s], tc_all[s]
                    np.multiply(f, c, out=c_new)
                    np.multiply(i, gg, out=ig)
                    c_new += ig
                    if act == "tanh":
                        np.tanh(c_new, out=tc)
                    else:
                        np.copyto(tc, c_new)
                        _act_(act, tc)
                    np.multiply(o, tc, out=h_all[s])
                    if mask is not None:
                        keep = ~mask[s]
                        np.copyto(c_new, c, where=keep)
                        np.copyto(h_all[s], h, where=keep)
                    h, c = h_all[s], c_new
                if ready is not None:
                    ready(chunk)

    def _backward_factors(self, lo, hi):
        """Products of stored values that the backward multiplies by ``dc`` or ``dh``.

        ``factors`` in Keras's gate order: ``g i'``, ``c_{t-1} f'``, ``i g'`` (times
        ``dc``) and ``tanh(c) o'`` (times ``dh``; zero on masked steps).
        ``carry_factor``: ``o tanh'(c)``.
        """
        gi, gf, go, gg = (self.gates[j, lo:hi] for j in range(4))
        fac = self.factors[:, lo:hi]
        act, ract = self.activation, self.recurrent_activation
        for k, y in ((0, gi), (1, gf), (3, go)):
            _derivative(ract, y, fac[k])
        _derivative(act, gg, fac[2])
        fac[0] *= gg
        if lo == 0:
            fac[1, 0] *= self.states0[1]
            fac[1, 1:] *= self.c_all[:hi - 1]
        else:
            fac[1] *= self.c_all[lo - 1:hi - 1]
        fac[2] *= gi
        fac[3] *= self.tc_all[lo:hi]
        if self.mask is not None:
            fac[3] *= self.mask[lo:hi]
        carry = self.carry_factor[lo:hi]
        _derivative(act, self.tc_all[lo:hi], carry)
        carry *= go

    def backward(self, g):
        t, b, u = self.h_all.shape
        gseq, (dc,) = _output_grads(g, t, self.return_sequences, 1)
        dpre = np.empty_like(self.gates)  # Keras's gate order i, f, c, o
        dh = np.zeros((b, u), dtype=np.result_type(g, self.recurrent_kernel))
        dc = dc.astype(dh.dtype, copy=False)
        spans = chunk_spans(t, backward=True)
        sums = {}
        overlap(spans, lambda ready: self._backward_steps(gseq, dh, dc, dpre, spans, ready),
                lambda c: self._weight_grads(dpre, *spans[c], sums))
        dx = dk = drk = db = None
        f = self.kernel.shape[0]
        if self.needs[0]:
            dx = sums["dx"].reshape(t, b, f)
            if self.go_backwards:
                dx = dx[::-1]
            dx = dx.transpose(1, 0, 2)
        if self.needs[1]:
            dk = sums["dw"][:, :f].transpose(1, 0, 2).reshape(f, 4 * u)
        if self.has_bias and self.needs[3]:
            db = sums["dw"][:, f].reshape(4 * u)
        if self.needs[2]:
            drk = sums["drk"].transpose(1, 0, 2).reshape(u, 4 * u)
        return (dx, dk, drk, db, dh if self.needs[4] else None,
                dc if self.needs[5] else None)

    def _backward_steps(self, gseq, dh, dc, dpre, spans, ready):
        """Backward through time; ``dh`` and ``dc`` end as the initial states' gradients."""
        fac, carry, m, rmask = self.factors, self.carry_factor, self.mask, self.rmask
        forget = self.gates[1]
        rk_t = np.ascontiguousarray(
            self.recurrent_kernel.reshape(-1, 4, dh.shape[1]).transpose(1, 2, 0))
        tmp = np.empty_like(dh)
        parts = np.empty((4,) + dh.shape, dtype=np.result_type(dpre, rk_t))
        last = self.h_all.shape[0] - 1
        with _one_blas_thread():
            for chunk, (lo, hi) in enumerate(spans):
                for s in range(hi - 1, lo - 1, -1):
                    if self.return_sequences:
                        dh += gseq[s]
                    elif s == last:
                        dh += gseq[0]
                    if m is not None:
                        keep = ~m[s]
                        dh_keep, dc_keep = dh * keep, dc * keep
                    np.multiply(dh, carry[s], out=tmp)
                    dc += tmp
                    if m is not None:
                        dc *= m[s]
                    d = dpre[:, s]
                    np.multiply(dc, fac[:3, s], out=d[:3])
                    np.multiply(dh, fac[3, s], out=d[3])
                    dc *= forget[s]
                    np.matmul(d, rk_t, out=parts)
                    np.sum(parts, axis=0, out=dh)
                    if rmask is not None:
                        dh *= rmask
                    if m is not None:
                        dh += dh_keep
                        dc += dc_keep
                ready(chunk)

    def _weight_grads(self, dpre, lo, hi, sums):
        """Fold the gate gradients of steps ``lo:hi`` into the weight and input gradients."""
        b, u = dpre.shape[2], dpre.shape[3]
        n = (hi - lo) * b
        d = dpre[:, lo:hi].reshape(4, n, u)
        if self.needs[0]:
            if "k_t" not in sums:
                sums["k_t"] = _gate_major(self.kernel).transpose(0, 2, 1)
                sums["dx"] = np.empty((self.h_all.shape[0] * b, self.kernel.shape[0]),
                                      dtype=np.result_type(dpre, self.kernel))
            np.sum(np.matmul(d, sums["k_t"]), axis=0, out=sums["dx"][lo * b:hi * b])
        if self.needs[1] or (self.has_bias and self.needs[3]):
            _accumulate(sums, "dw", np.matmul(self.x1[lo * b:hi * b].T, d))
        if self.needs[2]:
            start = max(lo, 1)
            if lo == 0:
                _accumulate(sums, "drk",
                            np.matmul(self._hin(self.states0[0]).T, dpre[:, 0]))
            if hi > start:
                prev = self._hin(self.h_all[start - 1:hi - 1]).reshape(-1, u)
                _accumulate(sums, "drk",
                            np.matmul(prev.T, dpre[:, start:hi].reshape(4, -1, u)))


def _accumulate(sums, key, part):
    if key in sums:
        sums[key] += part
    else:
        sums[key] = part
