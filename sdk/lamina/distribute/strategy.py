"""How ``fit`` runs: in one process (:class:`Strategy`) or as one of N SPMD replicas
(:class:`DataParallel`).

``Model.fit`` consults :func:`get_strategy` at four points and nowhere else:

* ``batches(model, iterator, epoch)`` yields ``(step, batch)``: the part of each global
  batch this process computes (all of it locally; a contiguous ``1/N`` slice per
  replica), under the noise keys of :mod:`lamina.distribute.keys`;
* ``reduce_gradients(model, grads)`` between backward and ``optimizer.apply``
  (identity locally; an all-reduce of the share-weighted gradients across replicas:
  :mod:`lamina.distribute.gradient_exchange`);
  ``None`` means "skip this update: the chief stopped training";
* ``reduce_logs(model, logs)`` before ``on_train_batch_end`` (the chief's logs become
  the global, sample-weighted ones);
* ``sync(model)`` after ``on_epoch_begin``/``on_epoch_end`` (the chief's stop decision
  and learning rate reach every replica) and ``stop_requested(model)`` after each batch.

The chief's learning rate also rides on every gradient exchange, so a change one of
its callbacks makes at batch ``s`` is used by every replica's update ``s + 1``.

Every replica runs the same ``fit``; only the chief (rank 0) runs the job's callbacks
and validation. A chief's stop at batch ``s`` reaches the others in the exchange of
batch ``s + 1`` (they skip that update and end the epoch), so every replica applies
exactly the same updates.
"""

from __future__ import annotations

import time

import numpy as np

from lamina.backend import env
from lamina.distribute import keys, pinning, slot_gradients
from lamina.distribute.buckets import DEFAULT_CAP_MB, Buckets, overlap_pays
from lamina.distribute.gradient_exchange import (
    _HEAD,
    ABORT,
    CONTINUE,
    STOP,
    GradientExchange,
    _lr_variable,
)
from lamina.distribute.metric_state import pack, unpack
from lamina.distribute.shared_state import SharedState
from lamina.layers.symbolic import flatten, map_structure


class Aborted(RuntimeError):
    """The chief aborted the run (raised on every replica, out of ``fit``)."""


class Strategy:
    """One process: ``fit`` as Keras runs it (the default strategy)."""

    rank = 0
    world_size = 1
    is_chief = True

    def batches(self, model, iterator, epoch: int):
        """``(step, batch)`` for every batch of ``epoch``, under :func:`keys.batch_keys`.

        A sample's noise key is its position in the epoch's stream of samples (the
        samples of earlier batches, plus its offset in its batch).
        """
        seen = 0
        for step, batch in iterator.epoch():
            n = batch_size(batch)
            with keys.batch_keys(epoch, np.arange(seen, seen + n)):
                yield step, batch
            seen += n

    def reduce_gradients(self, model, grads):
        """The gradients to apply (None: skip this update).

        Args:
            model: the model being trained.
            grads: one gradient (or None) per trainable variable.

        Returns:
            The list to pass to ``optimizer.apply``, or None.
        """
        return grads

    def reduce_logs(self, model, logs):
        """The logs the callbacks see after this batch (here: ``logs`` unchanged)."""
        return logs

    def stop_requested(self, model) -> bool:
        """Whether the batch loop ends now (here: ``model.stop_training``)."""
        return bool(model.stop_training)

    def sync(self, model) -> None:
        """Agree on the chief's decisions at an epoch boundary (nothing to do here)."""
        return None


def batch_size(batch) -> int:
    """The number of samples of a batch (the first dimension of its first array)."""
    return int(flatten(batch)[0].shape[0])


_DEFAULT = Strategy()
_CURRENT: Strategy = _DEFAULT


def get_strategy() -> Strategy:
    """The strategy ``fit`` runs under (the one-process default unless one is set)."""
    return _CURRENT


def set_strategy(strategy: Strategy | None) -> None:
    """Make ``strategy`` the process's strategy (``None``: back to the default)."""
    global _CURRENT
    _CURRENT = _DEFAULT if strategy is None else strategy


class DataParallel(GradientExchange, Strategy):
    """Synchronous data parallelism: this process is replica ``rank`` of ``world_size``.

    Args:
        collective: an object with ``rank``, ``world``, ``n``, ``m`` and
            ``exchange(vector, meta, scale) -> (sum, metas)`` (e.g.
            :class:`~lamina.distribute.shm.SharedMemoryCollective`).
        resume_at: ``(epoch, step)``: skip the first ``step`` batches of ``epoch``
            (a mid-epoch checkpoint); the shuffle is drawn as usual.
        base_metrics: the metric accumulators of those skipped batches (chief only).
        bucket_cap_mb: gradients are all-reduced in buckets of about this many MB
            while backward goes on (:mod:`lamina.distribute.buckets`); 0 turns it off
            (one exchange after backward). Default: ``$LAMINA_BUCKET_CAP_MB``, else 1
            where the overlap can pay (the TCP ring, or a process that may use a
            second core: :func:`~lamina.distribute.buckets.overlap_pays`), else 0.
            Collectives without ``accepts_prefix`` always take one exchange.
        overlap_update: with buckets, apply the optimizer's update to each bucket's
            variables as soon as that bucket is reduced, while the last one is
            exchanged (:mod:`lamina.optimizers.pieces`; the same bits as one update
            after the exchange; optimizers that need every gradient at once keep the
            whole-step update). Default: ``$LAMINA_OVERLAP_UPDATE`` (``1`` turns it
            on), else off: with one core per replica the update only moves into the
            exchange's waits, which the peer's identical work already fills, and it
            measured slower (docs/architecture.md, "Gradient buckets").
        shared_update: with the shared-memory collective, keep one copy of the
            parameters and optimizer slots for all ranks and let each rank update
            its ``1/N`` of them (:mod:`lamina.distribute.shared_state`; the same bits;
            optimizers that need every gradient at once, several dtypes or variable
            constraints keep the replicated update). Default:
            ``$LAMINA_SHARED_UPDATE`` (``0`` turns it off), else on.
        gradients_in_slot: with the shared-memory collective and one exchange after
            backward (no buckets), let backward write gradients straight into this
            rank's slot and apply the ranks' shares inside the exchange's sum
            (:mod:`lamina.distribute.slot_gradients`; the same bits as scaling each
            gradient into the slot). Every rank must use the same setting. Default:
            ``$LAMINA_GRADIENTS_IN_SLOT`` (``0`` turns it off), else on.

    With the shared-memory collective and as many ranks as CPUs this process may use,
    each rank's epochs run pinned to one CPU (:mod:`lamina.distribute.pinning`;
    ``$LAMINA_PIN_REPLICAS``).

    Raises:
        ValueError: when the model's gradient does not fit the collective, for a
            negative ``bucket_cap_mb``, or for a bad value of one of the ``$LAMINA_*``
            switches above (:mod:`lamina.backend.env`; naming it).
    """

    def __init__(self, collective, resume_at=None, base_metrics=None,
                 bucket_cap_mb: float | None = None,
                 overlap_update: bool | None = None,
                 shared_update: bool | None = None,
                 gradients_in_slot: bool | None = None) -> None:
        if bucket_cap_mb is None:
            bucket_cap_mb = env.number("LAMINA_BUCKET_CAP_MB", DEFAULT_CAP_MB
                                       if overlap_pays(collective) else 0, minimum=0)
        if not bucket_cap_mb >= 0:
            raise ValueError(f"bucket_cap_mb must be >= 0. Received: "
                             f"bucket_cap_mb={bucket_cap_mb}")
        self.bucket_cap_mb = float(bucket_cap_mb)
        if overlap_update is None:
            overlap_update = env.flag("LAMINA_OVERLAP_UPDATE", False)
        self.overlap_update = bool(overlap_update)
        if shared_update is None:
            shared_update = env.flag("LAMINA_SHARED_UPDATE", True)
        self.shared_update = bool(shared_update)
        if gradients_in_slot is None:
            gradients_in_slot = env.flag("LAMINA_GRADIENTS_IN_SLOT", True)
        self.gradients_in_slot = bool(gradients_in_slot) \
            and slot_gradients.supported(collective)
        self._offered = []  # this step's slot views offered to backward
        self._offered_slot = None  # ... and the slot they view
        self._unflattened = None  # (sum, shapes, views): the last step's reduced gradients
        self._weights = None  # every rank's share of this step's batch
        self.landed = 0  # gradients the last step's backward wrote into the slot
        self._shared: SharedState | None = None
        self._update_barrier = False  # this step updated a shard: wait for the others
        self._settle = None  # a claimed exchange's last hook (SharedState.exchange_hooks)
        self.shared_steps = 0  # updates applied to this rank's shard only
        self.merged_steps = 0  # ... of them inside the last exchange (no extra barrier)
        self._buckets: Buckets | None = None
        self.collective = collective
        self.rank, self.world_size = collective.rank, collective.world
        # The CPU this rank's epochs run on (lamina.distribute.pinning), or None.
        self._cpu = pinning.replica_cpu(self.rank, self.world_size, collective)
        self.is_chief = self.rank == 0
        self.resume_at = resume_at
        self.base_metrics = base_metrics
        self.abort_reason: str | None = None
        self._pending_stop = False
        self._metas = None
        self._fields = None
        self._epoch = 0
        self.exchange_seconds = 0.0  # last gradient exchange (waiting + reducing)
        self.pieces_applied = 0  # buckets whose update overlapped the exchange
        self.step_samples = 0
        self._splits: dict[int, tuple] = {}  # batch size -> _split(n)
        self._views: dict = {}  # (slot id, variable ids) -> (slot, its views, ranges)
        self._ranges: dict = {}  # this step's slot views: variable id -> (view, lo, hi)

    # -- control ------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """Chief: end the run on every replica at the next exchange (raises Aborted)."""
        self.abort_reason = reason

    def _code(self, model) -> float:
        if self.abort_reason is not None:
            return ABORT
        return STOP if model.stop_training else CONTINUE

    def _control(self, model, code: float) -> None:
        """Non-chief: act on the chief's code."""
        if code == ABORT:
            raise Aborted("the chief aborted the run")
        if code == STOP:
            model.stop_training = True

    def _control_exchange(self, model, extra=()) -> np.ndarray:
        meta = [self._code(model), *extra] if self.is_chief else None
        # Only the meta rows travel: a collective that reduces a range reduces an empty
        # one, instead of zeroing and summing its whole vector (the MLP's 2.7 MB: ~0.5 ms
        # of CPU a rank, three times an epoch; over the ring, bytes on the wire).
        vector = _NO_FLOATS if getattr(self.collective, "accepts_prefix", False) else None
        _, metas = self.collective.exchange(vector, meta)
        chief = metas[0]
        if self.is_chief:
            if chief[0] == ABORT:
                raise Aborted(self.abort_reason)
        else:
            self._control(model, chief[0])
        return chief

    # -- the four hooks (reduce_gradients: GradientExchange) ------------------------------
    def batches(self, model, iterator, epoch: int):
        """This replica's contiguous ``1/N`` of each global batch (``array_split`` order)."""
        self._epoch = epoch
        if getattr(type(model).train_step, "__qualname__", "") != "Trainer.train_step":
            raise ValueError(f"DataParallel runs the default train_step only; "
                             f"{type(model).__name__} overrides it. Received: "
                             f"train_step={type(model).train_step.__qualname__}")
        skip = self.resume_at[1] if self.resume_at and self.resume_at[0] == epoch else 0
        try:
            with pinning.pinned(self._cpu):
                yield from self._epoch_batches(model, iterator, epoch, skip)
        finally:
            self._views = {}  # the slot views of _bucketing: none outlives its epoch
            if self._shared is not None:  # callbacks and digests see private arrays
                self._shared.unshare()

    def _epoch_batches(self, model, iterator, epoch: int, skip: int):
        # Arrays: the adapter gathers only this rank's rows of each batch (a shuffled
        # batch's gather is ~16 us for 64 MNIST rows, 31 us for 128); other sources
        # hand over whole batches, and this rank slices its rows.
        adapter = getattr(iterator, "adapter", None)
        parted = hasattr(adapter, "part")
        if parted:
            adapter.part = lambda n: self._split(n)[:2]
        try:
            yield from self._rank_batches(model, iterator, epoch, skip,
                                          adapter if parted else None)
        finally:
            if parted:
                adapter.part = None

    def _rank_batches(self, model, iterator, epoch: int, skip: int, adapter):
        seen = 0
        for step, batch in iterator.epoch():
            n = batch_size(batch) if adapter is None else adapter.batch_rows
            seen += n
            if step < skip:
                continue
            if self.is_chief and (self._pending_stop or self.abort_reason is not None):
                self._control_exchange(model)  # the others learn it in their step exchange
                self._pending_stop = False
                return
            lo, hi, self._share, self._weights = self._split(n)
            self.step_samples = n
            local = batch if adapter is not None else map_structure(
                lambda a, rows=slice(lo, hi): None if a is None else a[rows], batch)
            shared = self._shared_for(model)
            if shared is not None:
                shared.share()
            with keys.batch_keys(epoch, np.arange(seen - n + lo, seen - n + hi), n), \
                    self._bucketing(model):
                yield step, local
            if not self.is_chief and model.stop_training:
                return
        self._control_exchange(model)
        self._pending_stop = False

    def _split(self, n: int) -> tuple:
        """``(lo, hi, share, weights)`` of a global batch of ``n`` rows: this rank's
        contiguous ``array_split`` slice, its share and every rank's (cached per ``n``:
        all batches but an epoch's last have one size)."""
        split = self._splits.get(n)
        if split is None:
            bounds = [len(p) for p in np.array_split(np.arange(n), self.world_size)]
            lo = sum(bounds[:self.rank])
            split = self._splits[n] = (lo, lo + bounds[self.rank],
                                       bounds[self.rank] / float(n),
                                       slot_gradients.weights(bounds, n))
        return split

    def reduce_logs(self, model, logs):
        if self._update_barrier:  # every rank's range of the shared update is done
            self._update_barrier = False
            start = time.perf_counter()
            self.collective.barrier()
            self.exchange_seconds += time.perf_counter() - start
        if not self.is_chief or self._metas is None:
            return logs
        local = pack(self._fields)  # this rank's accumulators, restored below
        summed = self._metas[0, _HEAD:_HEAD + len(local)].copy()
        for row in self._metas[1:]:
            summed += row[_HEAD:_HEAD + len(local)]
        if self.base_metrics is not None and self.resume_at \
                and self.resume_at[0] == self._epoch:
            summed += self.base_metrics
        unpack(self._fields, summed)
        try:
            return model.get_metrics_result()
        finally:
            unpack(self._fields, local)

    def global_metric_state(self) -> np.ndarray | None:
        """Chief: the summed accumulators of the epoch so far (for checkpoints)."""
        if self._metas is None or self._fields is None:
            return None
        width = len(pack(self._fields))
        summed = self._metas[0, _HEAD:_HEAD + width].copy()
        for row in self._metas[1:]:
            summed += row[_HEAD:_HEAD + width]
        if self.base_metrics is not None and self.resume_at \
                and self.resume_at[0] == self._epoch:
            summed = summed + self.base_metrics
        return summed

    def stop_requested(self, model) -> bool:
        if self.is_chief:
            if model.stop_training:
                self._pending_stop = True
            return False  # the chief ends the epoch at the next step's exchange
        return bool(model.stop_training)

    def sync(self, model) -> None:
        """Every replica takes the chief's stop decision, learning rate and global
        generator (a layer that still draws per replica from it, e.g. recurrent
        dropout, must not make the next epoch's shuffle differ between replicas)."""
        from lamina.backend import random as lamina_random

        self._metas = None
        lr = _lr_variable(model)
        extra = []
        if self.is_chief:
            extra = [0.0 if lr is None else float(lr.data),
                     *_rng_words(lamina_random.get_state())]
        chief = self._control_exchange(model, extra)
        if not self.is_chief:
            if lr is not None:
                lr.assign(np.float32(chief[1]))
            state = _rng_state(chief[2:2 + _RNG_WORDS], lamina_random.get_state())
            if state is not None:
                lamina_random.set_state(state)


_NO_FLOATS = np.empty(0, np.float32)  # a control exchange's (empty) range of the vector

_RNG_WORDS = 10  # PCG64: state and increment as 4 x 32 bits each, has_uint32, uinteger


def _rng_words(state: dict) -> list[float]:
    """A PCG64 generator state as float64-exact 32-bit words (zeros for another kind)."""
    if state.get("bit_generator") != "PCG64":
        return [0.0] * _RNG_WORDS
    words = []
    for value in (state["state"]["state"], state["state"]["inc"]):
        words += [float((value >> (32 * i)) & 0xFFFFFFFF) for i in range(4)]
    return words + [float(state["has_uint32"]), float(state["uinteger"])]


def _rng_state(words, current: dict) -> dict | None:
    """The state :func:`_rng_words` encoded (None when it was not a PCG64 state)."""
    if current.get("bit_generator") != "PCG64" or not np.any(words):
        return None
    ints = [int(w) for w in words]

    def join(part):
        return sum(word << (32 * i) for i, word in enumerate(part))

    return {"bit_generator": "PCG64",
            "state": {"state": join(ints[0:4]), "inc": join(ints[4:8])},
            "has_uint32": ints[8], "uinteger": ints[9]}
