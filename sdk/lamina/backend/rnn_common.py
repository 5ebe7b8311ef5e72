"""Pieces shared by the fused recurrent primitives (:mod:`lamina.backend.rnn`).

Besides layout helpers (time-major inputs, packed outputs) this holds
:func:`pipeline`, which runs a recurrence's per-step loop chunk by chunk on the calling
thread while the pool does the work around it: projecting the inputs of the next
chunk, preparing per-step factors, folding the previous chunk into the weight
gradients. Chunks are fixed by the shapes alone and per-chunk results are summed in a
fixed order, so results are bit-identical whatever the number of threads or the load."""

from __future__ import annotations

import functools

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.parallel import matmul
from lamina.backend.threads import parallel_for, split


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



def _derivative(name, y, out):
    """Write the activation's derivative, expressed in its output ``y``, into ``out``."""
    if name == "sigmoid":
        np.subtract(1.0, y, out=out)
        out *= y
    elif name == "tanh":
        np.multiply(y, y, out=out)
        np.subtract(1.0, out, out=out)
    elif name == "relu":
        np.greater(y, 0, out=out, casting="unsafe")
    elif name == "hard_sigmoid":
        out[...] = (y > 0) & (y < 1)
        out /= 6.0
    else:  # linear
        out.fill(1.0)
    return out


CHUNK_STEPS = 4  # steps per chunk of pipeline() (shape-only, so results are fixed)


def chunk_spans(timesteps, backward=False):
    """``(start, stop)`` step ranges of ``CHUNK_STEPS``, in the order a loop finishes them.

    Forward loops finish them in ascending order; ``backward=True`` gives the descending
    order of a backward-through-time loop.
    """
    spans = [(lo, min(timesteps, lo + CHUNK_STEPS)) for lo in range(0, timesteps, CHUNK_STEPS)]
    return spans[::-1] if backward else spans


def pieces(span, count=2):
    """``span`` cut into ``count`` contiguous step ranges (fewer if it is shorter)."""
    lo, hi = span
    return [(lo + a, lo + b) for a, b in split(hi - lo, count)]


def pipeline(spans, loop, before=None, after=None):
    """Run a sequential loop over chunks of steps with the pool working around it.

    ``loop`` is a generator running the per-step loop; it yields once after the steps
    of each span in ``spans`` (in order) and finishes after the last. ``before(lo, hi)``
    is work that steps ``lo:hi`` need first (input projection, backward factors);
    ``after(lo, hi)`` work on finished steps (weight gradients). Each must write only
    its own outputs.

    For each chunk ``c`` one :func:`parallel_for` runs the loop's chunk ``c`` as part
    0 (on the calling thread) beside ``before`` for chunk ``c + 1`` and ``after`` for
    chunk ``c - 1``, each cut in :func:`pieces`; a thread that finishes its part takes
    the next unclaimed one. No part ever waits for another, so this works the same
    (one part after the other) without workers or while the pool runs solo.
    """
    n = len(spans)
    if before is not None:
        for lo, hi in pieces(spans[0]):
            before(lo, hi)
    for c in range(n + 1):
        tasks = [lambda: next(loop)] if c < n else []
        if before is not None and c + 1 < n:
            tasks += [functools.partial(before, lo, hi) for lo, hi in pieces(spans[c + 1])]
        if after is not None and c >= 1:
            tasks += [functools.partial(after, lo, hi) for lo, hi in pieces(spans[c - 1])]
        if tasks:
            parallel_for(len(tasks), lambda i, tasks=tasks: tasks[i]())
    next(loop, None)


class ChunkGradients:
    """Input, kernel, recurrent-kernel and bias gradients, one chunk of steps at a time.

    ``add(lo, hi)`` (any thread, any order) turns the pre-activation gradients ``dpre``
    of steps ``lo:hi`` into their ``dx`` rows (``dpre @ kernel.T``) and its parts of
    ``x^T dpre``, ``h_{t-1}^T drec`` and ``sum dpre`` (and ``sum drec`` when ``drec``,
    the gradients entering the recurrent GEMM, differs from ``dpre``); :meth:`result`
    sums the parts in step order, so the sums do not depend on the threads.
    """

    def __init__(self, seq, dpre, kernel, needs, drec=None):
        self.seq, self.dpre, self.kernel = seq, dpre, kernel
        self.drec = drec
        self.need_x, self.need_k, self.need_rk, self.need_b = needs
        t, b, _ = dpre.shape
        self.dx = (np.empty((t, b, kernel.shape[0]), np.result_type(dpre, kernel))
                   if self.need_x else None)
        self.parts = {}

    def add(self, lo, hi):
        seq, b, part = self.seq, self.dpre.shape[1], {}
        rows = (hi - lo) * b
        d2 = self.dpre[lo:hi].reshape(rows, -1)
        rec = self.dpre if self.drec is None else self.drec
        if self.need_x:
            np.matmul(d2, self.kernel.T, out=self.dx[lo:hi].reshape(rows, -1))
        if self.need_k:
            part["dk"] = seq.xt[lo:hi].reshape(rows, -1).T @ d2
        if self.need_b:
            part["db"] = d2.sum(axis=0)
            if self.drec is not None:
                part["db_rec"] = rec[lo:hi].reshape(rows, -1).sum(axis=0)
        if self.need_rk:
            start, terms = max(lo, 1), []
            if lo == 0:
                terms.append(seq._hin(seq.states0[0]).T @ rec[0])
            if hi > start:
                prev = seq._hin(seq.h_all[start - 1:hi - 1]).reshape((hi - start) * b, -1)
                terms.append(prev.T @ rec[start:hi].reshape((hi - start) * b, -1))
            part["drk"] = fixed_sum(terms)
        self.parts[lo] = part

    def result(self):
        """``(dx, dkernel, drecurrent_kernel, dbias, dbias_recurrent)``, ``dx`` batch-major."""
        dx = self.dx
        if dx is not None:
            if self.seq.go_backwards:
                dx = dx[::-1]
            dx = dx.transpose(1, 0, 2)
        parts = [self.parts[lo] for lo in sorted(self.parts)]
        sums = {key: fixed_sum(p[key] for p in parts) for key in parts[0]}
        return dx, sums.get("dk"), sums.get("drk"), sums.get("db"), sums.get("db_rec")


def fixed_sum(parts):
    """Sum ``parts`` in the given order (so the rounding does not depend on threads)."""
    total = None
    for part in parts:
        total = part if total is None else total + part
    return total
