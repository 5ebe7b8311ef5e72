"""The fused LSTM sequence primitive (see :mod:`lamina.backend.rnn` for the conventions).

With compiled kernels enabled (:mod:`lamina.backend.compiled`: numba installed and
``LAMINA_KERNELS`` not ``numpy``) and Keras's default activations in float32/float64,
forward and backward run as numba kernels instead (:mod:`lamina.backend.rnn_lstm_kernels`:
same lanes and layout, no GIL inside a lane); what follows describes the numpy path, the
reference they are tested against.

The batch is cut into lanes (:func:`lane_spans`: two halves, fixed by the batch size) and
each lane runs its whole recurrence, forward and backward through time, as one loop
(:func:`run_lanes`): the two cores each run one lane, with one hand-off to the pool per
sequence instead of one per chunk of steps. A lane computes exactly what it would
compute alone, whichever thread runs it, so results are bit-identical at any thread
count; the weight gradients are the lanes' parts summed in lane order.

Layout: states are kept transposed, ``(units, lane)``, so each gate is a contiguous
block and each step one GEMM each way. The inputs of a lane's steps are one operand
``hx``, ``(units + features + 1, time + 1, lane)``: rows ``[h_{t-1}; x_t; 1]``, so the
recurrent GEMM also projects the inputs and adds the bias (no separate projection),
and the weight gradients of kernel, recurrent kernel and bias come out of one GEMM
``hx @ dz^T`` per block of steps (:func:`backward_blocks`), run by the lane right after
the block's backward steps and summed in block order. A step's
pre-activations sit in a ``(5*units, lane)`` block, gates in the internal order
``o, i, f, g``, then the previous carry ``c_{t-1}``: one tanh pass activates all four
gates (the sigmoid gates' weights are pre-scaled by 1/2: ``sigmoid(a) = (tanh(a/2) +
1) / 2``) and one product forms ``[i g; f c_{t-1}]``.
Backward first turns each block of steps into *backward factors* (``tanh(c) o'``,
``g i'``, ``c_{t-1} f'``, ``i g'`` and the carry's ``o tanh'(c)``: a few passes over
the block), so a backward step is ``dc += dh * carry``, the four gate gradients,
``dc *= f`` and the recurrent GEMM. Few large blocks (two for 28 steps) beat blocks of
4 steps (6.3 against 6.9 ms for a backward at batch 128 on two lanes): each numpy call
of the two lanes is a chance to wait for the other's GIL.

Measured here (LSTM(128), 28 steps of 28 features, batch 128, two cores), the GEMMs are
~5.2 ms of each lane's ~8.5 ms (at ~160 GFLOP/s, OpenBLAS's peak on these shapes);
the rest is the per-step elementwise calls (~30 us a step forward, ~25 backward, many
of them strided: a step's ``h`` and gate gradients are columns of the operands that
the weight-gradient GEMM takes whole) and the factor passes.
"""

from __future__ import annotations

import numpy as np

from lamina.backend import rnn_buffers, rnn_lstm_kernels
from lamina.backend.rnn_common import (
    CHUNK_STEPS,
    _act_,
    _derivative,
    _output_grads,
    _Sequence,
    chunk_spans,
    fixed_sum,
)
from lamina.backend.rnn_lanes import lane_spans, run_lanes
from lamina.backend.threads import split

BLOCK_STEPS = 16  # at most this many steps per backward block (one factor pass, one dW GEMM)


def backward_blocks(timesteps):
    """The backward's blocks of steps, latest first: as few as ``BLOCK_STEPS`` allows, of
    about equal length, fixed by ``timesteps`` alone (so the dW sum order is too)."""
    return split(timesteps, -(-timesteps // BLOCK_STEPS))[::-1]


# Keras's gate columns are i, f, c(g), o; the forward keeps them as o, i, f, g.
_FORWARD_ORDER = (3, 0, 1, 2)
_KERAS_ORDER = tuple(int(j) for j in np.argsort(_FORWARD_ORDER))


def _forward_columns(w, out, scale=None):
    """Write ``(n, 4*units)`` Keras weights into ``out`` with their gate columns in the
    forward's order, each gate multiplied by its scale. Whole rows are copied, never
    transposed: the GEMMs take ``out.T`` as it is."""
    n, k = np.shape(w)
    gates, dst = np.reshape(w, (n, 4, k // 4)), out.reshape(n, 4, k // 4)
    for j, src in enumerate(_FORWARD_ORDER):
        if scale is None or scale[j] == 1.0:
            np.copyto(dst[:, j], gates[:, src])
        else:
            np.multiply(gates[:, src], scale[j], out=dst[:, j])
    return out


def _keras_columns(cols):
    """``(n, 4*units)`` columns in the forward's gate order as Keras's (a new array)."""
    n, k = cols.shape
    return cols.reshape(n, 4, k // 4)[:, list(_KERAS_ORDER)].reshape(n, k)


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
        b, t, f = x.shape
        u = recurrent_kernel.shape[0]
        self.go_backwards, self.return_sequences = go_backwards, return_sequences
        self.kernel, self.recurrent_kernel, self.has_bias = kernel, recurrent_kernel, \
            bias is not None
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.shape = (b, t, f, u)
        dtype = np.result_type(x, kernel, recurrent_kernel)
        self.kernel_state = None
        self.gemm_kernel = None  # the compiled path's GEMM (gemm.kernel_for)
        if rnn_lstm_kernels.applies(activation, recurrent_activation, dtype):
            return rnn_lstm_kernels.forward(self, x, kernel, recurrent_kernel, bias, h0, c0,
                                            mask, recurrent_mask, dtype)
        # Scaling the sigmoid gates' weights by 1/2 turns all four activations into one
        # tanh pass: sigmoid(a) = (tanh(a / 2) + 1) / 2.
        self.fast = activation == "tanh" and recurrent_activation == "sigmoid"
        # [recurrent_kernel; kernel; bias] in the forward's gate order; the GEMM takes its .T.
        scale = (0.5, 0.5, 0.5, 1.0) if self.fast else None
        w_cols = np.empty((u + f + 1, 4 * u), dtype)
        _forward_columns(recurrent_kernel, w_cols[:u], scale)
        _forward_columns(kernel, w_cols[u:u + f], scale)
        if bias is None:
            w_cols[u + f] = 0.0
        else:
            _forward_columns(np.reshape(bias, (1, -1)), w_cols[u + f:], scale)
        w_rows = w_cols.T
        self.xs = x[:, ::-1] if go_backwards else x  # each lane copies its steps into hx
        self.mask = None
        if mask is not None and not np.all(mask):
            m = np.asarray(mask, dtype=bool)
            self.mask = (m[:, ::-1] if go_backwards else m).T[:, None, :]  # (t, 1, b)
        self.rmask = None if recurrent_mask is None else np.ascontiguousarray(
            np.asarray(recurrent_mask, dtype=dtype).T)
        h0 = np.zeros((u, b), dtype) if h0 is None else np.asarray(h0).T
        c0 = np.zeros((u, b), dtype) if c0 is None else np.asarray(c0).T
        self.h0 = np.ascontiguousarray(h0, dtype=dtype)
        # With a zero initial state the first step's GEMM takes only the [x; 1] rows.
        self.skip_h0 = not np.any(self.h0)
        grads = any(self.needs)
        self.lanes = [_Lane(self, lo, hi, w_rows, c0[:, lo:hi], dtype)
                      for lo, hi in lane_spans(b)]
        run_lanes((lane.forward(self) for lane in self.lanes),
                  site=("lstm forward", x.shape, u, grads))
        k = t if return_sequences else 1
        out = np.empty((b, k + 1, u), dtype=dtype)
        for lane in self.lanes:
            lane.outputs(out, k)
        buffers = [a for lane in self.lanes for a in lane.buffers()]
        if grads:
            rnn_buffers.hold(self, *buffers)
        else:
            self.lanes = self.xs = None
            rnn_buffers.give(*buffers)
        return out

    def backward(self, g):
        if self.kernel_state is not None:
            return rnn_lstm_kernels.backward(self, g)
        b, t, f, u = self.shape
        gseq, (dc,) = _output_grads(g, t, self.return_sequences, 1)
        gt = np.ascontiguousarray(gseq.transpose(2, 0, 1))  # (units, k, batch)
        dc = dc.T
        dtype = np.result_type(g, self.kernel, self.recurrent_kernel)
        dh0, dc0 = np.empty((u, b), dtype), np.empty((u, b), dtype)
        rk_t = _forward_columns(self.recurrent_kernel, np.empty((u, 4 * u), dtype))
        kx = _forward_columns(self.kernel, np.empty((f, 4 * u), dtype)) if self.needs[0] else None
        dx = np.empty((b, t, f), dtype) if self.needs[0] else None
        needs = self.needs
        need_w = needs[1] or needs[2] or (self.has_bias and needs[3])
        run_lanes((lane.backward(self, gt, dc, rk_t, kx, need_w, dh0, dc0, dx, dtype)
                   for lane in self.lanes), site=("lstm backward", self.shape))
        dk = drk = db = None
        if need_w:
            dw = _keras_columns(fixed_sum(lane.dw for lane in self.lanes))
            drk = dw[:u] if needs[2] else None
            dk = dw[u:u + f] if needs[1] else None
            db = np.array(dw[u + f]) if self.has_bias and needs[3] else None
        return (dx, dk, drk, db, dh0.T if needs[4] else None, dc0.T if needs[5] else None)


class _Lane:
    """One lane (a contiguous range of the batch) of an :class:`LSTMSequence`."""

    def __init__(self, seq, lo, hi, w_rows, c0, dtype):
        self.lo, self.hi, self.w_rows = lo, hi, w_rows
        _, t, f, u = seq.shape
        width, take = hi - lo, rnn_buffers.take
        # hx[:, s]: [h_{s-1} (times the recurrent mask); x_s; 1]; hx[:u, t]: the last h.
        self.hx = take((u + f + 1, t + 1, width), dtype)
        self.hx[u + f] = 1.0
        h0 = seq.h0[:, lo:hi]
        self.hx[:u, 0] = h0 if seq.rmask is None else h0 * seq.rmask[:, lo:hi]
        # With recurrent dropout hx holds h * mask: the outputs get their own array.
        self.h_out = None if seq.rmask is None else take((u, t, width), dtype)
        # z[s]: the gates of step s (rows 0:4u), then c_{s-1} (rows 4u:5u); z[t]: c_{t-1}.
        self.z = take((t + 1, 5 * u, width), dtype)
        self.z[0, 4 * u:] = c0
        self.tc = take((t, u, width), dtype)  # activation(c_s)
        self.dw = None

    def buffers(self):
        """The lane's pooled arrays."""
        return [self.hx, self.h_out, self.z, self.tc]

    def outputs(self, out, k):
        """Write the lane's last ``k`` outputs and final carry into the packed ``out``."""
        u, t = self.tc.shape[1], self.tc.shape[0]
        h_seq = self.hx[:u, 1:] if self.h_out is None else self.h_out
        out[self.lo:self.hi, :k] = h_seq[:, t - k:].transpose(2, 1, 0)
        out[self.lo:self.hi, k] = self.z[t, 4 * u:].T

    def forward(self, seq):
        """The forward loop over this lane, yielding after each chunk of steps."""
        z, tc, lo, hi = self.z, self.tc, self.lo, self.hi
        hx, w, h_out, rmask = self.hx, self.w_rows, self.h_out, seq.rmask
        u, t = tc.shape[1], tc.shape[0]
        act, ract, mask = seq.activation, seq.recurrent_activation, seq.mask
        rm = None if rmask is None else rmask[:, lo:hi]
        prod = np.empty((2 * u, hi - lo), z.dtype)
        f = hx.shape[0] - u - 1
        for c_lo, c_hi in chunk_spans(t):
            hx[u:u + f, c_lo:c_hi] = seq.xs[lo:hi, c_lo:c_hi].transpose(2, 1, 0)
            for s in range(c_lo, c_hi):
                zs = z[s]
                gates = zs[:4 * u]
                if s or not seq.skip_h0:
                    np.matmul(w, hx[:, s], out=gates)
                else:
                    np.matmul(w[:, u:], hx[u:, 0], out=gates)
                if seq.fast:
                    np.tanh(gates, out=gates)
                    sig = zs[:3 * u]
                    sig *= 0.5
                    sig += 0.5
                else:
                    _act_(ract, zs[:3 * u])
                    _act_(act, zs[3 * u:4 * u])
                # [i; f] * [g; c_{s-1}], then c_s = i g + f c_{s-1}
                np.multiply(zs[u:3 * u], zs[3 * u:], out=prod)
                c_new = z[s + 1, 4 * u:]
                np.add(prod[:u], prod[u:], out=c_new)
                tcs = tc[s]
                if act == "tanh":
                    np.tanh(c_new, out=tcs)
                else:
                    np.copyto(tcs, c_new)
                    _act_(act, tcs)
                h_new = hx[:u, s + 1] if h_out is None else h_out[:, s]
                np.multiply(zs[:u], tcs, out=h_new)
                if mask is not None:
                    keep = ~mask[s][:, lo:hi]
                    np.copyto(c_new, zs[4 * u:], where=keep)
                    if h_out is None:
                        np.copyto(h_new, hx[:u, s], where=keep)
                    else:
                        np.copyto(h_new, h_out[:, s - 1] if s else seq.h0[:, lo:hi],
                                  where=keep)
                if rm is not None:
                    np.multiply(h_new, rm, out=hx[:u, s + 1])
            yield

    def _backward_factors(self, seq, lo, hi, fac, carry):
        """Products of stored values that the backward multiplies by ``dh`` or ``dc``:
        ``factors`` (``tanh(c) o'``, zero on masked steps; ``g i'``, ``c_{t-1} f'``,
        ``i g'``, in the forward's gate order) and ``carry`` (``o tanh'(c)``), of steps
        ``lo:hi`` into the first ``hi - lo`` rows of ``fac`` and ``carry``."""
        u = self.tc.shape[1]
        z, tc = self.z[lo:hi], self.tc[lo:hi]
        fac, carry = fac[:hi - lo], carry[:hi - lo]
        ract, act = seq.recurrent_activation, seq.activation
        _derivative(ract, z[:, :3 * u], fac[:, :3 * u])
        _derivative(act, z[:, 3 * u:4 * u], fac[:, 3 * u:])
        fac[:, :u] *= tc
        if seq.mask is not None:
            fac[:, :u] *= seq.mask[lo:hi, :, self.lo:self.hi]
        fac[:, u:3 * u] *= z[:, 3 * u:]  # [i'; f'] * [g; c_{t-1}]
        fac[:, 3 * u:] *= z[:, u:2 * u]  # g' * i
        _derivative(act, tc, carry)
        carry *= z[:, :u]

    def backward(self, seq, gt, dc_final, rk_t, kx, need_w, dh0, dc0, dx, dtype):
        """Backward through time over this lane, yielding after each chunk of steps.

        After each chunk, while its gate gradients are still in cache, one GEMM each folds
        them into the lane's input rows of ``dx`` (``kernel @ dz``) and its part of the
        weight gradients (``hx @ dz^T``: kernel, recurrent kernel and bias), summed over
        the chunks in their fixed order into ``self.dw``. Writes the lane's ``dh0``,
        ``dc0``.
        """
        lo, hi = self.lo, self.hi
        z, m, rmask, hx = self.z, seq.mask, seq.rmask, self.hx
        u, t = self.tc.shape[1], self.tc.shape[0]
        need_dh0 = seq.needs[4]
        dxl = None if dx is None else np.empty((kx.shape[0], t, hi - lo), dtype)
        dh = np.zeros((u, hi - lo), dtype)
        dc = np.array(dc_final[:, lo:hi], dtype=dtype, order="C")  # C order, like dh
        tmp = np.empty_like(dh)
        rm = None if rmask is None else rmask[:, lo:hi]
        self.dw = None
        steps = max(hi_ - lo_ for lo_, hi_ in backward_blocks(t))
        factors = rnn_buffers.take((steps, 4 * u, hi - lo), dtype)
        # The chunk's gate gradients (forward gate order, unscaled), as GEMM operand.
        dpre = rnn_buffers.take((4 * u, steps, hi - lo), dtype)
        carries = rnn_buffers.take((steps, u, hi - lo), dtype)
        part = np.empty((hx.shape[0], 4 * u), dtype) if need_w else None
        for c_lo, c_hi in backward_blocks(t):
            self._backward_factors(seq, c_lo, c_hi, factors, carries)
            for s in range(c_hi - 1, c_lo - 1, -1):
                if s != c_hi - 1 and (c_hi - 1 - s) % CHUNK_STEPS == 0:
                    yield  # (between steps too: another thread may take the lane over)
                if seq.return_sequences:
                    dh += gt[:, s, lo:hi]
                elif s == t - 1:
                    dh += gt[:, 0, lo:hi]
                if m is not None:
                    keep = ~m[s][:, lo:hi]
                    dh_keep, dc_keep = dh * keep, dc * keep
                fs, carry = factors[s - c_lo], carries[s - c_lo]
                np.multiply(dh, carry, out=tmp)
                dc += tmp
                if m is not None:
                    dc *= m[s][:, lo:hi]
                d = dpre[:, s - c_lo]
                np.multiply(dh, fs[:u], out=d[:u])
                np.multiply(dc, fs[u:].reshape(3, u, -1), out=d[u:].reshape(3, u, -1))
                dc *= z[s, 2 * u:3 * u]
                if s or need_dh0:  # dh of the steps before, or dh0
                    np.matmul(rk_t, d, out=dh)
                if rm is not None:
                    dh *= rm
                if m is not None:
                    dh += dh_keep
                    dc += dc_keep
            d = dpre[:, :c_hi - c_lo].reshape(4 * u, -1)
            if dxl is not None:
                np.matmul(kx, d, out=dxl[:, c_lo:c_hi].reshape(kx.shape[0], -1))
            if need_w:  # hx @ dz^T: the gradients' rows are hx's, as in the weights
                hxc = hx[:, c_lo:c_hi].reshape(hx.shape[0], -1)
                if self.dw is None:
                    self.dw = hxc @ d.T
                else:
                    np.matmul(hxc, d.T, out=part)
                    self.dw += part
            yield
        rnn_buffers.give(dpre, factors, carries)
        dh0[:, lo:hi] = dh
        dc0[:, lo:hi] = dc
        if dx is not None:
            dx[lo:hi] = (dxl[:, ::-1] if seq.go_backwards else dxl).transpose(2, 1, 0)
