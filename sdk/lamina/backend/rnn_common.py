"""Pieces shared by the fused recurrent primitives (:mod:`lamina.backend.rnn`).

Besides layout helpers (time-major inputs, packed outputs) this holds the overlap of a
recurrence with the large GEMMs around it: the per-step loop is sequential and runs on
one thread, while a second thread works through the *finished* chunks of steps (the
backward's kernel, recurrent-kernel and input gradients; the forward's backward
factors). Chunks are fixed by the shapes alone and accumulated in a fixed order, so
results are bit-identical whatever the number of threads or the load.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.parallel import matmul
from lamina.backend.threads import blas_is_single_threaded, parallel_for

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


CHUNK_STEPS = 4  # steps per chunk handed to the second thread (shape-only: results fixed)


def chunk_spans(timesteps, backward=False):
    """``(start, stop)`` step ranges of ``CHUNK_STEPS``, in the order a loop finishes them.

    Forward loops finish them in ascending order; ``backward=True`` gives the descending
    order of a backward-through-time loop.
    """
    spans = [(lo, min(timesteps, lo + CHUNK_STEPS)) for lo in range(0, timesteps, CHUNK_STEPS)]
    return spans[::-1] if backward else spans


class _Task:
    """One chunk's piece of work, run once by whichever thread claims it first."""

    __slots__ = ("claim", "done")

    def __init__(self):
        self.claim = threading.Lock()
        self.done = threading.Event()

    def run_if_free(self, fn, c):
        if not self.claim.acquire(blocking=False):
            return False
        try:
            fn(c)
        finally:
            self.done.set()
        return True


def overlap(spans, producer, consumer=None, prepare=None):
    """Run a sequential loop over chunks of steps with a second thread helping around it.

    ``producer(wait, ready)`` is the per-step loop: it calls ``wait(c)`` before the
    steps of ``spans[c]`` and ``ready(c)`` after them. ``prepare(c)`` is work chunk
    ``c`` needs first (the input projection), ``consumer(c)`` work on a finished chunk
    (backward factors, weight gradients). Each is run exactly once by whichever thread
    claims it first: the helper thread prepares ahead of the loop, then consumes behind
    it; the loop's thread prepares a chunk itself when the helper has not reached it,
    and once the loop ends it takes the chunks left to consume. Each chunk's work must
    write only its own outputs, so results do not depend on which thread ran it.

    Without a worker (policy ``"off"``, one core, or the worker busy) both parts run
    one after the other on the calling thread: ``parallel_for`` claims part 0 (the
    loop) first, and the loop never waits for work nobody has claimed, so this cannot
    deadlock.
    """
    n = len(spans)
    ready = [threading.Event() for _ in range(n)]
    prep = [_Task() for _ in range(n)] if prepare is not None else None
    cons = [_Task() for _ in range(n)] if consumer is not None else None
    failed = []

    def wait(c):
        if prep is not None and not prep[c].run_if_free(prepare, c):
            prep[c].done.wait()

    def loop():
        try:
            producer(wait, lambda c: ready[c].set())
        except BaseException:
            failed.append(True)
            raise
        finally:
            for event in ready:
                event.set()
        if cons is not None:
            for c in range(n):
                cons[c].run_if_free(consumer, c)
            for task in cons:
                task.done.wait()

    def helper():
        for c in range(n if prep is not None else 0):
            if failed:
                return
            prep[c].run_if_free(prepare, c)
        for c in range(n if cons is not None else 0):
            ready[c].wait()
            if failed:
                return
            cons[c].run_if_free(consumer, c)

    parallel_for(2, lambda part: helper() if part else loop())


class ChunkGradients:
    """Input, kernel, recurrent-kernel and bias gradients, one chunk of steps at a time.

    ``add(c)`` (any thread, any order) turns the pre-activation gradients ``dpre`` of
    ``spans[c]`` into that chunk's ``dx`` rows (``dpre @ kernel.T``) and its parts of
    ``x^T dpre``, ``h_{t-1}^T drec`` and ``sum dpre`` (and ``sum drec`` when ``drec``,
    the gradients entering the recurrent GEMM, differs from ``dpre``); :meth:`result`
    sums the parts in chunk order, so the sums do not depend on the threads.
    """

    def __init__(self, seq, spans, dpre, kernel, needs, drec=None):
        self.seq, self.spans, self.dpre, self.kernel = seq, spans, dpre, kernel
        self.drec = drec
        self.need_x, self.need_k, self.need_rk, self.need_b = needs
        t, b, _ = dpre.shape
        self.dx = (np.empty((t, b, kernel.shape[0]), np.result_type(dpre, kernel))
                   if self.need_x else None)
        self.parts = [None] * len(spans)

    def add(self, c):
        lo, hi = self.spans[c]
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
        self.parts[c] = part

    def result(self):
        """``(dx, dkernel, drecurrent_kernel, dbias, dbias_recurrent)``, ``dx`` batch-major."""
        dx = self.dx
        if dx is not None:
            if self.seq.go_backwards:
                dx = dx[::-1]
            dx = dx.transpose(1, 0, 2)
        sums = {key: fixed_sum(p[key] for p in self.parts) for key in self.parts[0]}
        return dx, sums.get("dk"), sums.get("drk"), sums.get("db"), sums.get("db_rec")


def fixed_sum(parts):
    """Sum ``parts`` in the given order (so the rounding does not depend on threads)."""
    total = None
    for part in parts:
        total = part if total is None else total + part
    return total
