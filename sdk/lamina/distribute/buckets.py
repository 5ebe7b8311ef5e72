"""Gradient buckets: all-reduce gradients while the backward pass goes on (as DDP does).

:class:`Buckets` lays a model's trainable variables out, in reverse order (the order
in which backward finishes them: last layer first), in ``~cap_mb`` buckets of one
flat float32 buffer; a variable is never split, and a bucket closes once it holds
``cap_mb`` or more. During a step:

* :func:`lamina.backend.autodiff.gradient_ready_hook` reports each gradient as soon
  as it is final; it is scaled by this replica's share straight into its place in the
  buffer;
* a full bucket (every bucket but the last) goes to one reducer thread, which
  all-reduces buckets **strictly in bucket order** through the collective's
  ``exchange`` (numpy releases the GIL for the sums and waits block in the kernel, so
  the main thread goes on with backward meanwhile);
* :meth:`Buckets.finish` waits for the reducer, and the caller all-reduces the last
  bucket itself (with the step's meta row): every replica makes the same exchanges in
  the same order, whatever the timing, and each element is summed exactly as one
  exchange of the whole vector sums it, so replicas stay bit-identical, and bucketed
  and unbucketed runs give the same bytes.

Whether buckets are used by default is :func:`overlap_pays`'s call: the overlap needs
something to overlap with (a transfer that waits on sockets, or a second core).

A collective takes part when it has ``accepts_prefix = True``: its ``exchange``
reduces a vector of ``k <= n`` floats and returns a ``k``-float result; the buckets
are then two flat buffers of this module (gradients in, sums out: one copy each way).
When its ``staging()`` also returns ``(send, result)`` (the shared-memory collective
with a large vector), gradients are scaled straight into ``send``, and an exchange of
``send[lo:hi]`` sums that range into ``result[lo:hi]``: no copies, as without buckets.
Either way the reduced gradients are views, valid until the next step.

Optionally (``hook(..., on_reduced=)``) the reducer hands each reduced bucket but the
last to a callback (``DataParallel`` applies that bucket's part of the optimizer
update there, :mod:`lamina.optimizers.pieces`), which then overlaps the caller's
exchange of the last bucket; :meth:`Buckets.wait_applied` waits for it.

The reducer thread lives while steps keep coming and ends after :data:`IDLE_SECONDS`
without work. A reducer error (a peer failed: ``CollectiveAborted``,
``TimeoutError``) ends it and is raised by :meth:`Buckets.finish`; a backward that
raises (Ctrl-C) aborts the collective when a bucket is in flight (the group cannot go
on without this replica) and joins the thread.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from lamina.backend import threads
from lamina.distribute.shm import CollectiveAborted

DEFAULT_CAP_MB = 1.0
_JOIN_SECONDS = 5.0
#: The reducer thread ends after this many seconds without a bucket to reduce.
IDLE_SECONDS = 0.5


def overlap_pays(collective) -> bool:
    """Whether reducing buckets while backward goes on can shorten a step here.

    Over the TCP ring (``transfers_wait_on_io``) a bucket's exchange mostly waits on
    sockets, which backward fills. Over shared memory the reduction is CPU work (summing
    the ranks' slots), so it overlaps backward only when this process may use a second
    core (``threads.worker_count() >= 1``); with one core per replica the reducer thread
    takes turns with backward on that core and adds a hand-off per bucket. Measured
    (``bench/worker_allreduce.py``, MLP, 2 replicas x 1 core, quiet): 0.98x / 1.00x of
    local ``fit`` without buckets, 0.89x / 0.89x with 1 MB buckets.
    """
    return bool(getattr(collective, "transfers_wait_on_io", False)) \
        or threads.worker_count() >= 1


def can_bucket(collective) -> bool:
    """Whether ``collective`` reduces a prefix of its vector (``accepts_prefix``)."""
    return bool(getattr(collective, "accepts_prefix", False))


def layout(shapes, cap_mb: float) -> tuple[list[int], list[int], list[int]]:
    """Where each variable goes: ``(offsets, bucket_of, bucket_bounds)``.

    Args:
        shapes: the variables' shapes, in the model's order.
        cap_mb: a bucket closes once it holds at least this many MB (``2**20`` bytes).

    Returns:
        ``offsets[i]``: variable ``i``'s first float in the flat buffer;
        ``bucket_of[i]``: its bucket; ``bucket_bounds``: bucket ``b`` is
        ``[bounds[b], bounds[b + 1])``. Variables are laid out last first.

    Raises:
        ValueError: for ``cap_mb <= 0`` (naming it).
    """
    if not cap_mb > 0:
        raise ValueError(f"cap_mb must be > 0. Received: cap_mb={cap_mb}")
    cap = cap_mb * (1 << 20) / 4.0
    sizes = [int(np.prod(shape)) for shape in shapes]
    offsets, bucket_of, bounds = [0] * len(sizes), [0] * len(sizes), [0]
    at, held = 0, 0
    for i in reversed(range(len(sizes))):
        offsets[i], bucket_of[i] = at, len(bounds) - 1
        at += sizes[i]
        held += sizes[i]
        if held >= cap and i > 0:
            bounds.append(at)
            held = 0
    bounds.append(at)
    return offsets, bucket_of, bounds


class Buckets:
    """One replica's gradient buckets for one list of variables.

    Args:
        collective: a collective with ``accepts_prefix`` (see the module docstring).
        variables: the trainable variables, in the model's order.
        cap_mb: bucket size (see :func:`layout`).

    Raises:
        ValueError: when the gradient does not fit the collective.
    """

    def __init__(self, collective, variables, cap_mb: float = DEFAULT_CAP_MB) -> None:
        self.collective = collective
        self.variables = list(variables)
        self._ids = [id(v) for v in self.variables]
        self.shapes = [tuple(v.data.shape) for v in self.variables]
        self.sizes = [int(np.prod(shape)) for shape in self.shapes]
        self.offsets, self.bucket_of, self.bounds = layout(self.shapes, cap_mb)
        self.total = self.bounds[-1]
        if self.total > collective.n:
            raise ValueError(f"the gradient ({self.total} floats) does not fit the "
                             f"collective (n={collective.n})")
        self.count = len(self.bounds) - 1
        self._members = [[i for i, b in enumerate(self.bucket_of) if b == bucket]
                         for bucket in range(self.count)]
        self._meta = self._on_reduced = None
        self._need = [self.bounds[b + 1] - self.bounds[b] for b in range(self.count)]
        self._own: tuple | None = None  # (send, recv) when the collective stages none
        self._send = self._recv = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._active = self._closing = False
        self._submitted = self._reduced = self._applying = 0
        self.stopped_code: float | None = None  # a bucket's meta said the chief stopped
        self.last_metas = None  # the meta rows of the last bucket the reducer reduced
        self.error: BaseException | None = None

    @property
    def active(self) -> bool:
        """Whether a step's gradients are being bucketed (started, not finished)."""
        return self._active

    @property
    def thread(self) -> threading.Thread | None:
        """The reducer thread, while it runs."""
        return self._thread

    # -- one step ------------------------------------------------------------------------
    def hook(self, share: float, meta=None, on_reduced=None):
        """The ``gradient_ready_hook`` of one step: its first ``gradients()`` call on
        exactly these variables is bucketed, its gradients scaled by ``share``.

        Args:
            share: this replica's share of the global batch.
            meta: this replica's meta row for the reducer's exchanges (None: zeros).
            on_reduced: called on the reducer thread as ``on_reduced(indices, grads,
                metas)`` once each bucket but the last is reduced (not when its
                exchange met the chief's stop): the variables of that bucket whose
                gradients backward reported, their reduced gradients (views) and the
                exchange's meta rows. :meth:`finish` does not wait for it (the last
                bucket's exchange overlaps it); :meth:`wait_applied` does, and raises
                its error as a reducer error.
        """
        armed = [True]

        def start(sources):
            if not armed[0] or [id(s) for s in sources] != self._ids:
                return None  # another gradients() call (or a second one): not ours
            armed[0] = False
            self._begin(np.float32(share))
            self._meta, self._on_reduced = meta, on_reduced
            return self._ready
        return start

    def _begin(self, share) -> None:
        staging = getattr(self.collective, "staging", None)
        buffers = staging() if staging is not None else None
        if buffers is None:
            if self._own is None:
                self._own = (np.zeros(self.total, np.float32),
                             np.zeros(self.total, np.float32))
            buffers = self._own
        send, recv = buffers[0][:self.total], buffers[1][:self.total]
        if self._recv is None or not np.may_share_memory(recv, self._recv):
            self.views = [recv[o:o + size].reshape(shape) for o, size, shape
                          in zip(self.offsets, self.sizes, self.shapes)]
        self._send, self._recv = send, recv
        self._share = share
        self._filled = [0] * self.count
        self._packed = [0] * len(self.variables)  # 1: backward reported it, 2: finish
        self._meta = self._on_reduced = None
        with self._cond:
            self._submitted = self._reduced = self._applying = 0
            self.stopped_code = None
            self.error = None
            self._active = True

    def _ready(self, index, grad) -> None:
        if index is None:  # the walk ended
            if grad:  # it raised: nobody will wait for this step
                self.cancel()
            return
        self._pack(index, grad)

    def _pack(self, index: int, grad, how: int = 1) -> None:
        if self._packed[index]:
            return
        self._packed[index] = how
        at, size = self.offsets[index], self.sizes[index]
        np.multiply(grad, self._share, out=self._send[at:at + size].reshape(self.shapes[index]))
        bucket = self.bucket_of[index]
        self._filled[bucket] += size
        if bucket == self._submitted and self._filled[bucket] == self._need[bucket]:
            self._submit()

    def _submit(self) -> None:
        """Hand every consecutive full bucket but the last to the reducer."""
        last, submitted = self.count - 1, self._submitted
        while submitted < last and self._filled[submitted] == self._need[submitted]:
            submitted += 1
        if submitted == self._submitted:
            return
        with self._cond:
            self._submitted = submitted
            self._cond.notify_all()
            if self._thread is None and self.error is None:  # an error ends the step
                self._thread = threading.Thread(target=self._reduce, daemon=True,
                                                name="lamina-bucket-reducer")
                self._thread.start()

    def _work(self) -> bool:
        """(Under the lock.) Wait for a bucket to reduce; False: the thread ends."""
        deadline = time.monotonic() + IDLE_SECONDS
        while not self._closing and (self._reduced >= self._submitted
                                     or self.stopped_code is not None):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._cond.wait(left)
        return not self._closing

    def _reduce(self) -> None:
        """The reducer thread: the submitted buckets, strictly in order."""
        try:
            while True:
                with self._cond:
                    if not self._work():
                        self._thread = None
                        return
                    bucket = self._reduced
                    lo, hi = self.bounds[bucket], self.bounds[bucket + 1]
                    send, recv = self._send, self._recv
                    meta, on_reduced = self._meta, self._on_reduced
                total, metas = self.collective.exchange(send[lo:hi], meta)
                if not np.may_share_memory(total, recv):
                    recv[lo:hi] = total[:hi - lo]
                apply = metas[0, 0] == 0.0 and on_reduced is not None
                with self._cond:
                    self.last_metas = metas
                    if metas[0, 0] != 0.0:  # the chief's control exchange: step over
                        self.stopped_code = float(metas[0, 0])
                    self._reduced += 1
                    self._applying += apply
                    self._cond.notify_all()
                if apply:  # while the main thread goes on (e.g. with the next exchange)
                    indices = [i for i in self._members[bucket] if self._packed[i] == 1]
                    on_reduced(indices, [self.views[i] for i in indices], metas)
                    with self._cond:
                        self._applying -= 1
                        self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            with self._cond:
                self.error = exc
                self._thread = None
                self._cond.notify_all()

    def finish(self, grads) -> bool:
        """Pack what the walk did not report, wait for buckets ``0 .. count - 2``.

        Args:
            grads: the step's gradients (one per variable; None counts as zeros).

        Returns:
            True when the last bucket is to be reduced now (False: a bucket's exchange
            was the chief's stop or abort, in :attr:`stopped_code`).

        Raises:
            The reducer's error (``CollectiveAborted``, ``TimeoutError``, ...).
        """
        try:
            for index, grad in enumerate(grads):
                if not self._packed[index]:
                    self._pack(index, np.zeros(self.shapes[index], np.float32)
                               if grad is None else grad, how=2)
            self._submit()
            with self._cond:
                while self._reduced < self._submitted and self.error is None \
                        and self.stopped_code is None:
                    self._cond.wait()
                error = self.error
            if error is not None:
                self._join()
                raise error
            return self.stopped_code is None
        except BaseException:
            self.cancel()
            raise
        finally:
            self._active = False

    def wait_applied(self) -> None:
        """Wait until every ``on_reduced`` of this step returned.

        Raises:
            The reducer's error (also one raised by ``on_reduced``).
        """
        with self._cond:
            while self._applying and self.error is None:
                self._cond.wait()
            error = self.error
        if error is not None:
            self._join()
            raise error

    def last_bucket(self) -> np.ndarray:
        """The last bucket's share-weighted gradients (reduce it with the meta row)."""
        return self._send[self.bounds[-2]:self.bounds[-1]]

    def store_last(self, total) -> None:
        """Keep the last bucket's reduced sum (``total``: the exchange's result)."""
        if not np.may_share_memory(total, self._recv):
            self._recv[self.bounds[-2]:self.bounds[-1]] = total[:self._need[-1]]

    def cancel(self) -> None:
        """End the step now (the walk raised, or the step was abandoned): a bucket in
        flight aborts the collective; the reducer thread is joined."""
        with self._cond:
            busy = self._thread is not None and self._reduced < self._submitted \
                and self.error is None and self.stopped_code is None
            self._active = False
        if busy:
            abort = getattr(self.collective, "abort", None)
            if abort is not None:
                abort("a replica's step was interrupted while its gradients were reduced")
        self.close()

    def close(self) -> None:
        """End the reducer thread (it finishes the exchange it is in) and join it."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        try:
            self._join()
        finally:
            with self._cond:
                self._closing = False

    def _join(self) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(_JOIN_SECONDS)
            if thread.is_alive():  # pragma: no cover - a collective ignoring abort
                raise CollectiveAborted("the gradient reducer did not stop")
