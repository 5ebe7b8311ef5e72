"""Fused recurrent primitives: a whole SimpleRNN, LSTM or GRU sequence as one node.

Forward projects every timestep's input in one GEMM (``x @ kernel + bias``), then runs
one recurrent GEMM per step and keeps the activated gates of every step. Backward walks
the steps in reverse with those gates (one GEMM per step for the state gradient) and
ends with one GEMM each for the kernel, the recurrent kernel and the input gradients.
A graph of small ops per timestep would cost ~20 nodes a step; this is one node.

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

import contextlib

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.parallel import matmul
from lamina.backend.threads import blas_is_single_threaded

_controller = None


def _one_blas_thread():
    """Limit BLAS to one thread for the per-step loops, when threadpoolctl is installed.

    A step's recurrent GEMM is small (batch x units x k*units); splitting it across
    threads gains little and, on a busy machine, OpenBLAS threads spin-waiting on each
    other made a 128x128x512 GEMM 10-20x slower. The large GEMMs before and after the
    loop (input projection, weight gradients) keep every thread.
    """
    global _controller
    if blas_is_single_threaded():  # lamina.backend.threads already runs BLAS on one thread
        return contextlib.nullcontext()
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except ImportError:
            _controller = False
    if not _controller:
        return contextlib.nullcontext()
    return _controller.limit(limits=1, user_api="blas")


def _sigmoid_(a):
    # sigmoid(a) = (tanh(a / 2) + 1) / 2: one vectorised tanh, no exp overflow.
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def _hard_sigmoid_(a):
    a += 3.0
    np.clip(a, 0.0, 6.0, out=a)
    a /= 6.0
    return a


_FORWARD = {
    "tanh": lambda a: np.tanh(a, out=a),
    "sigmoid": _sigmoid_,
    "relu": lambda a: np.maximum(a, 0, out=a),
    "linear": lambda a: a,
    "hard_sigmoid": _hard_sigmoid_,
}

SUPPORTED_ACTIVATIONS = frozenset(_FORWARD)


def _act_(name, a):
    """Apply activation ``name`` to ``a`` in place."""
    return _FORWARD[name](a)


def _dact_(name, y, g):
    """Multiply ``g`` in place by the activation's derivative, written in its output ``y``."""
    if name == "tanh":
        g *= 1.0 - y * y
    elif name == "sigmoid":
        g *= y * (1.0 - y)
    elif name == "relu":
        g *= y > 0
    elif name == "hard_sigmoid":
        g *= ((y > 0) & (y < 1)) / 6.0
    return g


def _time_major(x, go_backwards):
    xt = x.transpose(1, 0, 2)
    if go_backwards:
        xt = xt[::-1]
    return np.ascontiguousarray(xt)


def _mask_time_major(mask, go_backwards):
    """(time, batch, 1) bool mask in processing order, or None when nothing is masked."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.all():
        return None
    m = m.T
    if go_backwards:
        m = m[::-1]
    return np.ascontiguousarray(m)[:, :, None]


def _project(xt, kernel, bias):
    """Input projection of all timesteps in one GEMM: (time, batch, k*units)."""
    t, b, f = xt.shape
    out = matmul(xt.reshape(t * b, f), kernel)
    if bias is not None:
        out += bias
    return out.reshape(t, b, kernel.shape[1])


def _pack(h_all, return_sequences, extra=()):
    seq = h_all if return_sequences else h_all[-1:]
    k, b, u = seq.shape
    out = np.empty((b, k + len(extra), u), dtype=h_all.dtype)
    out[:, :k] = seq.transpose(1, 0, 2)
    for j, e in enumerate(extra):
        out[:, k + j] = e
    return out


def unpack(packed, timesteps, return_sequences, n_extra=0):
    """Split the packed output: ``(outputs, last_output, extra_states)`` as index tuples.

    Returns the index expressions so callers can slice a Tensor with them.
    """
    k = timesteps if return_sequences else 1
    outputs = (slice(None), slice(0, k)) if return_sequences else (slice(None), 0)
    last = (slice(None), k - 1)
    extra = [(slice(None), k + j) for j in range(n_extra)]
    return outputs, last, extra


def _output_grads(g, timesteps, return_sequences, n_extra):
    """Per-step output gradients (time-major view or None) and the extra states' grads."""
    k = timesteps if return_sequences else 1
    seq = g[:, :k].transpose(1, 0, 2)
    extra = [np.array(g[:, k + j]) for j in range(n_extra)]
    return seq, extra


def _input_grads(self, dpre, kernel, bias_needed):
    """Gradients of x, kernel and the summed bias from the pre-activation grads."""
    t, b, k = dpre.shape
    d2 = dpre.reshape(t * b, k)
    dx = dk = db = None
    if self.needs[0]:
        dx = matmul(d2, kernel.T).reshape(t, b, -1)
        if self.go_backwards:
            dx = dx[::-1]
        dx = dx.transpose(1, 0, 2)
    if self.needs[1]:
        dk = matmul(self.xt.reshape(t * b, -1).T, d2)
    if bias_needed:
        db = d2.sum(axis=0)
    return dx, dk, db


def _state_products(h0, h_all, dpre, rmask):
    """``sum_t h_{t-1}^T @ dpre_t`` (the recurrent-kernel gradient) in two GEMMs."""
    t, b, _ = h_all.shape
    first = h0 if rmask is None else h0 * rmask
    prev = h_all[:-1] if rmask is None else h_all[:-1] * rmask
    out = np.matmul(first.T, dpre[0])
    if t > 1:
        out += matmul(prev.reshape((t - 1) * b, -1).T, dpre[1:].reshape((t - 1) * b, -1))
    return out


class _Sequence(Function):
    """Shared bookkeeping of the recurrent primitives (not a primitive itself)."""

    def _setup(self, x, recurrent_kernel, states, mask, recurrent_mask, go_backwards,
               return_sequences):
        self.go_backwards, self.return_sequences = go_backwards, return_sequences
        self.xt = _time_major(x, go_backwards)
        self.mask = _mask_time_major(mask, go_backwards)
        self.rmask = recurrent_mask
        units = recurrent_kernel.shape[0]
        batch = x.shape[0]
        self.states0 = [np.zeros((batch, units), dtype=x.dtype) if s is None else s
                        for s in states]
        self.recurrent_kernel = recurrent_kernel
        return self.xt.shape[0]

    def _hin(self, h):
        return h if self.rmask is None else h * self.rmask


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
        with _one_blas_thread():
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
        h_all, m, rk = self.h_all, self.mask, self.recurrent_kernel
        t = h_all.shape[0]
        gseq, _ = _output_grads(g, t, self.return_sequences, 0)
        dpre = np.empty_like(h_all)
        dh = np.zeros_like(h_all[0])
        with _one_blas_thread():
            for s in range(t - 1, -1, -1):
                if self.return_sequences:
                    dh += gseq[s]
                elif s == t - 1:
                    dh += gseq[0]
                da = _dact_(self.activation, h_all[s], dh.copy())
                if m is not None:
                    da *= m[s]
                    keep = dh * ~m[s]
                dpre[s] = da
                dh = np.matmul(da, rk.T)
                if self.rmask is not None:
                    dh *= self.rmask
                if m is not None:
                    dh += keep
        dx, dk, db = _input_grads(self, dpre, self.kernel, self.has_bias and self.needs[3])
        drk = _state_products(self.states0[0], h_all, dpre, self.rmask) if self.needs[2] else None
        return dx, dk, drk, db, dh if self.needs[4] else None


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
        u = recurrent_kernel.shape[0]
        fast = activation == "tanh" and recurrent_activation == "sigmoid"
        if fast:
            # Scaling the sigmoid gates' columns by 1/2 in the weights turns all four
            # activations into one tanh pass: sigmoid(a) = (tanh(a/2) + 1) / 2.
            scale = np.full(4 * u, 0.5, dtype=x.dtype)
            scale[2 * u:3 * u] = 1.0
            shift = np.where(scale == 0.5, 0.5, 0.0).astype(x.dtype)
            gates = _project(self.xt, kernel * scale, None if bias is None else bias * scale)
            rk = recurrent_kernel * scale
        else:
            gates = _project(self.xt, kernel, bias)
            rk = recurrent_kernel
        b = x.shape[0]
        h_all = np.empty((t, b, u), dtype=x.dtype)
        c_all = np.empty_like(h_all)
        tc_all = np.empty_like(h_all)
        h, c = self.states0
        rec = np.empty((b, 4 * u), dtype=x.dtype)
        with _one_blas_thread():
            for s in range(t):
                z = gates[s]
                np.matmul(self._hin(h), rk, out=rec)
                z += rec
                if fast:
                    np.tanh(z, out=z)
                    z *= scale
                    z += shift
                else:
                    _act_(recurrent_activation, z[:, :2 * u])
                    _act_(activation, z[:, 2 * u:3 * u])
                    _act_(recurrent_activation, z[:, 3 * u:])
                i, f, gg, o = z[:, :u], z[:, u:2 * u], z[:, 2 * u:3 * u], z[:, 3 * u:]
                c_new, h_new, tc = c_all[s], h_all[s], tc_all[s]
                np.multiply(f, c, out=c_new)
                c_new += i * gg
                np.copyto(tc, c_new)
                _act_(activation, tc)
                np.multiply(o, tc, out=h_new)
                if self.mask is not None:
                    keep = ~self.mask[s]
                    np.copyto(c_new, c, where=keep)
                    np.copyto(h_new, h, where=keep)
                h, c = h_new, c_new
        self.gates, self.h_all, self.c_all, self.tc_all = gates, h_all, c_all, tc_all
        return _pack(h_all, return_sequences, [c])

    def backward(self, g):
        gates, h_all, c_all, tc_all = self.gates, self.h_all, self.c_all, self.tc_all
        m, rk, act, ract = self.mask, self.recurrent_kernel, self.activation, \
            self.recurrent_activation
        t, _, u = h_all.shape
        gseq, (dc,) = _output_grads(g, t, self.return_sequences, 1)
        dpre = np.empty_like(gates)
        dh = np.zeros_like(h_all[0])
        with _one_blas_thread():
            for s in range(t - 1, -1, -1):
                if self.return_sequences:
                    dh += gseq[s]
                elif s == t - 1:
                    dh += gseq[0]
                if m is not None:
                    keep = ~m[s]
                    dh_keep, dc_keep = dh * keep, dc * keep
                    dh *= m[s]
                    dc *= m[s]
                z = gates[s]
                i, f, gg, o = z[:, :u], z[:, u:2 * u], z[:, 2 * u:3 * u], z[:, 3 * u:]
                tc = tc_all[s]
                c_prev = c_all[s - 1] if s > 0 else self.states0[1]
                d = dpre[s]
                di, df, dg, do = d[:, :u], d[:, u:2 * u], d[:, 2 * u:3 * u], d[:, 3 * u:]
                np.multiply(dh, tc, out=do)
                _dact_(ract, o, do)
                dh *= o
                dc += _dact_(act, tc, dh)
                np.multiply(dc, gg, out=di)
                _dact_(ract, i, di)
                np.multiply(dc, c_prev, out=df)
                _dact_(ract, f, df)
                np.multiply(dc, i, out=dg)
                _dact_(act, gg, dg)
                dc *= f
                dh = np.matmul(d, rk.T)
                if self.rmask is not None:
                    dh *= self.rmask
                if m is not None:
                    dh += dh_keep
                    dc += dc_keep
        dx, dk, db = _input_grads(self, dpre, self.kernel, self.has_bias and self.needs[3])
        drk = _state_products(self.states0[0], h_all, dpre, self.rmask) if self.needs[2] else None
        return (dx, dk, drk, db, dh if self.needs[4] else None,
                dc if self.needs[5] else None)


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
        with _one_blas_thread():
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
        gates, h_all, aux, m = self.gates, self.h_all, self.aux, self.mask
        rk, act, ract, after = self.recurrent_kernel, self.activation, \
            self.recurrent_activation, self.reset_after
        t, _, u = h_all.shape
        gseq, _ = _output_grads(g, t, self.return_sequences, 0)
        dpre = np.empty_like(gates)
        drec = np.empty_like(gates) if after else None
        dh = np.zeros_like(h_all[0])
        rk_zr, rk_h = rk[:, :2 * u], rk[:, 2 * u:]
        with _one_blas_thread():
            for s in range(t - 1, -1, -1):
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
        need_bias = self.has_bias and self.needs[3]
        dx, dk, db_in = _input_grads(self, dpre, self.kernel, need_bias)
        drk = db = None
        if self.needs[2]:
            if after:
                drk = _state_products(self.states0[0], h_all, drec, self.rmask)
            else:
                drk = np.empty_like(rk)
                drk[:, :2 * u] = _state_products(self.states0[0], h_all,
                                                 dpre[:, :, :2 * u], self.rmask)
                drk[:, 2 * u:] = np.matmul(aux.reshape(-1, u).T, dpre[:, :, 2 * u:].reshape(-1, u))
        if need_bias:
            db = np.stack([db_in, drec.reshape(-1, 3 * u).sum(axis=0)]) if after else db_in
        return dx, dk, drk, db, dh if self.needs[4] else None
