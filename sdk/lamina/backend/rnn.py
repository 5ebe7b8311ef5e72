"""Fused recurrent primitives: a whole SimpleRNN, LSTM or GRU sequence as one node.

Forward projects the timesteps' inputs in GEMMs over many steps at once (``x @ kernel +
bias``), then runs one recurrent GEMM per step and keeps the activated gates of every
step. Backward walks the steps in reverse with those gates (one GEMM per step for the
state gradient) while the kernel, recurrent-kernel and input gradients are formed a
chunk of steps behind it, one GEMM each per chunk, on Lamina's thread pool
(:func:`lamina.backend.rnn_common.pipeline`). A graph of small ops per timestep would
cost ~20 nodes a step; this is one node. The LSTM lives in :mod:`lamina.backend.rnn_lstm`.

Conventions shared by the three primitives:

- Inputs: ``x`` (batch, time, features), ``kernel`` (features, k*units),
  ``recurrent_kernel`` (units, k*units), ``bias`` (or None), then the initial states,
  each (batch, units) or None for zeros. Gate order inside the ``k*units`` columns is
  Keras's: LSTM ``i, f, c, o``; GRU ``z, r, h``.
- Keywords: ``mask`` (batch, time) bool or None; ``recurrent_mask`` (batch, units)
  dropout multipliers applied to the state entering the recurrent GEMM, or None;
  ``go_backwards``; ``return_sequences``; ``activation``/``recurrent_activation``
  names from :data:`SUPPORTED_ACTIVATIONS`.
- Output: one packed array (batch, K + extra, units). The first K rows are the outputs
  in processing order (K = time with ``return_sequences``, else 1); the final hidden
  state is the last of them. For LSTM one extra row holds the final carry state.
  :func:`unpack` splits it.

Masked timesteps carry every state through unchanged and repeat the previous output,
as Keras's default (non-unrolled) loop does.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.blas_threads import one_blas_thread
from lamina.backend.rnn_common import (  # noqa: F401  (unpack, SUPPORTED_ACTIVATIONS: API)
    SUPPORTED_ACTIVATIONS,
    ChunkGradients,
    _act_,
    _dact_,
    _output_grads,
    _pack,
    _project,
    _Sequence,
    _state_products,
    chunk_spans,
    pipeline,
    unpack,
)
from lamina.backend.rnn_lstm import LSTMSequence  # noqa: F401  (one of the three primitives)


class SimpleRNNSequence(_Sequence):
    """``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`` over a sequence.

    Inputs: ``x, kernel, recurrent_kernel, bias, h0``. Packed output: see module docs.
    """

    def forward(self, x, kernel, recurrent_kernel, bias, h0, mask=None, recurrent_mask=None,
                go_backwards=False, return_sequences=False, activation="tanh"):
        t = self._setup(x, recurrent_kernel, [h0], mask, recurrent_mask, go_backwards,
                        return_sequences)
        self.kernel, self.has_bias, self.activation = kernel, bias is not None, activation
        h_all = _project(self.xt, kernel, bias)
        h = self.states0[0]
        with one_blas_thread():
            for s in range(t):
                a = h_all[s]
                a += np.matmul(self._hin(h), recurrent_kernel)
                _act_(activation, a)
                if self.mask is not None:
                    np.copyto(a, h, where=~self.mask[s])
                h = a
        self.h_all = h_all
        return _pack(h_all, return_sequences)

    def backward(self, g):
        t = self.h_all.shape[0]
        gseq, _ = _output_grads(g, t, self.return_sequences, 0)
        dpre = np.empty_like(self.h_all)
        dh = [np.zeros_like(self.h_all[0])]
        spans = chunk_spans(t, backward=True)
        grads = ChunkGradients(self, dpre, self.kernel,
                               (*self.needs[:3], self.has_bias and self.needs[3]))
        pipeline(spans, self._backward_steps(gseq, dh, dpre, spans), after=grads.add)
        dx, dk, drk, db, _ = grads.result()
        return dx, dk, drk, db, dh[0] if self.needs[4] else None

    def _backward_steps(self, gseq, dh_box, dpre, spans):
        """Backward through time, yielding after each span; ``dh_box[0]`` ends as dh0."""
        h_all, m, rk_t = self.h_all, self.mask, self.recurrent_kernel.T
        t, dh = h_all.shape[0], dh_box[0]
        with one_blas_thread():
            for lo, hi in spans:
                for s in range(hi - 1, lo - 1, -1):
                    if self.return_sequences:
                        dh += gseq[s]
                    elif s == t - 1:
                        dh += gseq[0]
                    da = dpre[s]
                    np.copyto(da, dh)
                    _dact_(self.activation, h_all[s], da)
                    if m is not None:
                        da *= m[s]
                        keep = dh * ~m[s]
                    dh = np.matmul(da, rk_t)
                    if self.rmask is not None:
                        dh *= self.rmask
                    if m is not None:
                        dh += keep
                yield
        dh_box[0] = dh


class GRUSequence(_Sequence):
    """Keras's GRU (gates ``z, r, h``) over a sequence, in one node.

    ``reset_after=True`` (bias (2, 3u): input bias, recurrent bias):
    ``hh = activation(xh + r * (h_{t-1} @ rk_h + b_rh))``. ``reset_after=False``
    (bias (3u,)): ``hh = activation(xh + (r * h_{t-1}) @ rk_h)``. In both,
    ``h_t = z h_{t-1} + (1 - z) hh``. Inputs: ``x, kernel, recurrent_kernel, bias, h0``.
    """

    def forward(self, x, kernel, recurrent_kernel, bias, h0, mask=None, recurrent_mask=None,
                go_backwards=False, return_sequences=False, activation="tanh",
                recurrent_activation="sigmoid", reset_after=True):
        t = self._setup(x, recurrent_kernel, [h0], mask, recurrent_mask, go_backwards,
                        return_sequences)
        self.kernel, self.has_bias, self.reset_after = kernel, bias is not None, reset_after
        self.activation, self.recurrent_activation = activation, recurrent_activation
        u = recurrent_kernel.shape[0]
        b = x.shape[0]
        in_bias = rec_bias = None
        if bias is not None:
            in_bias, rec_bias = (bias[0], bias[1]) if reset_after else (bias, None)
        gates = _project(self.xt, kernel, in_bias)
        h_all = np.empty((t, b, u), dtype=x.dtype)
        # reset_after: h_{t-1} @ rk_h + b_rh per step; otherwise r * h_in per step.
        aux = np.empty_like(h_all)
        h = self.states0[0]
        rk_zr, rk_h = recurrent_kernel[:, :2 * u], recurrent_kernel[:, 2 * u:]
        with one_blas_thread():
            for s in range(t):
                z = gates[s]
                hin = self._hin(h)
                if reset_after:
                    rec = np.matmul(hin, recurrent_kernel)
                    if rec_bias is not None:
                        rec += rec_bias
                    z[:, :2 * u] += rec[:, :2 * u]
                    _act_(recurrent_activation, z[:, :2 * u])
                    aux[s] = rec[:, 2 * u:]
                    z[:, 2 * u:] += z[:, u:2 * u] * aux[s]
                else:
                    z[:, :2 * u] += np.matmul(hin, rk_zr)
                    _act_(recurrent_activation, z[:, :2 * u])
                    np.multiply(z[:, u:2 * u], hin, out=aux[s])
                    z[:, 2 * u:] += np.matmul(aux[s], rk_h)
                hh = _act_(activation, z[:, 2 * u:])
                h_new = h_all[s]
                np.subtract(h, hh, out=h_new)
                h_new *= z[:, :u]
                h_new += hh
                if self.mask is not None:
                    np.copyto(h_new, h, where=~self.mask[s])
                h = h_new
        self.gates, self.h_all, self.aux = gates, h_all, aux
        return _pack(h_all, return_sequences)

    def backward(self, g):
        t, _, u = self.h_all.shape
        gseq, _ = _output_grads(g, t, self.return_sequences, 0)
        dpre = np.empty_like(self.gates)
        drec = np.empty_like(self.gates) if self.reset_after else None
        dh = np.zeros_like(self.h_all[0])
        need_bias = self.has_bias and self.needs[3]
        spans = chunk_spans(t, backward=True)
        after = self.reset_after
        grads = ChunkGradients(self, dpre, self.kernel,
                               (self.needs[0], self.needs[1], self.needs[2] and after,
                                need_bias), drec=drec)
        pipeline(spans, self._backward_steps(gseq, dh, dpre, drec, spans), after=grads.add)
        dx, dk, drk, db, db_rec = grads.result()
        if self.needs[2] and not after:
            drk = np.empty_like(self.recurrent_kernel)
            drk[:, :2 * u] = _state_products(self.states0[0], self.h_all,
                                             dpre[:, :, :2 * u], self.rmask)
            drk[:, 2 * u:] = np.matmul(self.aux.reshape(-1, u).T,
                                       dpre[:, :, 2 * u:].reshape(-1, u))
        if need_bias and after:
            db = np.stack([db, db_rec])
        return dx, dk, drk, db, dh if self.needs[4] else None

    def _backward_steps(self, gseq, dh, dpre, drec, spans):
        """Backward through time (``dh`` in place), yielding after each span."""
        gates, h_all, aux, m = self.gates, self.h_all, self.aux, self.mask
        rk, act, ract, after = self.recurrent_kernel, self.activation, \
            self.recurrent_activation, self.reset_after
        t, _, u = h_all.shape
        rk_zr, rk_h = rk[:, :2 * u], rk[:, 2 * u:]
        with one_blas_thread():
            for lo, hi in spans:
                for s in range(hi - 1, lo - 1, -1):
                    if self.return_sequences:
                        dh += gseq[s]
                    elif s == t - 1:
                        dh += gseq[0]
                    if m is not None:
                        dh_keep = dh * ~m[s]
                        dh *= m[s]
                    zz = gates[s]
                    z, r, hh = zz[:, :u], zz[:, u:2 * u], zz[:, 2 * u:]
                    h_prev = h_all[s - 1] if s > 0 else self.states0[0]
                    d = dpre[s]
                    dz, dr, dhh = d[:, :u], d[:, u:2 * u], d[:, 2 * u:]
                    np.subtract(h_prev, hh, out=dz)
                    dz *= dh
                    _dact_(ract, z, dz)
                    np.subtract(dh, dh * z, out=dhh)
                    _dact_(act, hh, dhh)
                    if after:
                        np.multiply(dhh, aux[s], out=dr)
                        _dact_(ract, r, dr)
                        dr_all = drec[s]
                        dr_all[:, :2 * u] = d[:, :2 * u]
                        np.multiply(dhh, r, out=dr_all[:, 2 * u:])
                        dhin = np.matmul(dr_all, rk.T)
                    else:
                        d_rh = np.matmul(dhh, rk_h.T)
                        hin = self._hin(h_prev)
                        np.multiply(d_rh, hin, out=dr)
                        _dact_(ract, r, dr)
                        dhin = d_rh * r
                        dhin += np.matmul(d[:, :2 * u], rk_zr.T)
                    if self.rmask is not None:
                        dhin *= self.rmask
                    dh *= z
                    dh += dhin
                    if m is not None:
                        dh += dh_keep
                yield
