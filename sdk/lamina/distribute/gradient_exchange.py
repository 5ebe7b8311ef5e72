"""A data-parallel replica's gradient exchange: :class:`GradientExchange`, the
``reduce_gradients`` of :class:`~lamina.distribute.strategy.DataParallel`.

Each replica's gradients, weighted by its share of the global batch, are summed across
replicas in rank order by the collective: in one exchange after backward (scaled into
this replica's slot, or written there by backward itself:
:mod:`lamina.distribute.slot_gradients`), or in buckets reduced while backward goes on
(:mod:`lamina.distribute.buckets`, optionally with the optimizer's update applied bucket
by bucket: :mod:`lamina.optimizers.pieces`). With the shared-memory collective the ranks
may keep one copy of the parameters and each update its share of them
(:mod:`lamina.distribute.shared_state`). Every exchange also carries a meta row (below):
the chief's control code (go on, stop, abort) and learning rate, then the metric state.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from lamina.backend.autodiff import gradient_destinations, gradient_ready_hook
from lamina.backend.tensor import Variable
from lamina.distribute import slot_gradients
from lamina.distribute.buckets import Buckets, can_bucket
from lamina.distribute.metric_state import additive_fields, pack
from lamina.distribute.shared_state import SharedState
from lamina.distribute.shm import block_bounds

CONTINUE, STOP, ABORT = 0.0, 1.0, 2.0
_HEAD = 2  # a step's meta row: control code, the chief's learning rate, then metrics


def _lr_variable(model):
    """The optimizer's learning-rate Variable (None for a schedule or a callable)."""
    lr = getattr(model.optimizer, "_learning_rate", None)
    return lr if isinstance(lr, Variable) else None


class GradientExchange:
    """:class:`~lamina.distribute.strategy.DataParallel`'s gradient reduction (a mixin:
    its state is set up by ``DataParallel.__init__``; ``_control`` is DataParallel's)."""

    @contextlib.contextmanager
    def _bucketing(self, model):
        """Around one step: report gradients to the buckets as backward finishes them."""
        buckets = self._buckets_for(model)
        if buckets is None:
            slot = self.collective.slot if self.gradients_in_slot else None
            self._offered = [] if slot is None else self._slot_views(slot, model)
            self._offered_slot = slot
            landing = None
            if getattr(self.collective, "claimed", False) and self._shared is not None \
                    and self._shared.shared:
                if self.is_chief:  # a peer's early update of a block needs its rate
                    lr = _lr_variable(model)
                    self.collective.publish((CONTINUE, 0.0 if lr is None else float(lr.data)))
                if slot is not None:
                    landing = self._landing()
            try:
                with gradient_destinations(self._offered), gradient_ready_hook(landing):
                    yield
            finally:
                self._offered = []
            return
        optimizer = model.optimizer
        begin = getattr(optimizer, "begin_update_in_pieces", None)
        plan = begin() if self.overlap_update and begin is not None \
            and not (self._shared is not None and self._shared.shared) else None
        try:
            with gradient_ready_hook(buckets.hook(self._share, *self._piece_hooks(model,
                                                                                  plan))):
                yield
        finally:
            if buckets.active:  # the step ended without reduce_gradients (an error)
                buckets.cancel()
            if plan is not None and optimizer._pieces is plan:  # no apply: no update
                optimizer.cancel_update_in_pieces()

    def _landing(self):
        """With claimed blocks, the backward walk's ready hook that lands each gradient
        backward wrote into its slot view (``collective.land``: a peer may sum and
        update the blocks it completes while this rank's backward goes on)."""
        collective = self.collective
        ranges = self._ranges

        def hook(sources):
            def ready(index, grad):
                if index is None:
                    return
                entry = ranges.get(id(sources[index]))
                if entry is not None and grad is entry[0]:
                    collective.land(entry[1], entry[2])
            return ready
        return hook

    def _slot_views(self, slot, model) -> list:
        """:func:`slot_gradients.views` of ``slot`` for the model's variables, made once
        per slot (the collective's two parities: the same two arrays every step) and
        variable list: the same view objects every step (dropped at the epoch's end,
        :meth:`DataParallel.batches`). Also sets :attr:`_ranges`: each viewed
        variable's ``(view, lo, hi)`` in the slot, by ``id``."""
        variables = model.trainable_weights
        key = (id(slot), tuple(id(v) for v in variables))
        entry = self._views.get(key)
        if entry is None or entry[0] is not slot:  # (an id reused by another array)
            views = slot_gradients.views(slot, variables)
            base = slot.__array_interface__["data"][0]
            ranges = {}
            for variable, view in views:
                lo = (view.__array_interface__["data"][0] - base) // slot.itemsize
                ranges[id(variable)] = (view, lo, lo + view.size)
            entry = self._views[key] = (slot, views, ranges)
        self._ranges = entry[2]
        return entry[1]

    def _piece_hooks(self, model, plan):
        """``(meta, on_reduced)`` for the buckets: with an update in pieces, each
        reduced bucket's variables are updated on the reducer thread. The chief's
        learning rate rides on every bucket (as on the step's last exchange), so a
        replica updates its first piece with the rate the chief uses."""
        lr = _lr_variable(model)
        meta = [CONTINUE, 0.0 if lr is None else float(lr.data)] if self.is_chief else None
        if plan is None:
            return meta, None

        def on_reduced(indices, grads, metas):
            if lr is not None and not self.is_chief and metas[0, 1] != float(lr.data):
                lr.assign(np.float32(metas[0, 1]))
            plan.apply(indices, grads)
            self.pieces_applied += bool(indices)
        return meta, on_reduced

    def _shared_for(self, model) -> SharedState | None:
        """The shared parameters when this step can use them (else None)."""
        from lamina.distribute.shm import SharedMemoryCollective
        from lamina.optimizers.pieces import supported

        optimizer = model.optimizer
        if self.world_size == 1 or not self.shared_update \
                or not isinstance(self.collective, SharedMemoryCollective) \
                or not hasattr(optimizer, "relocate") or not supported(optimizer):
            return None
        shared = self._shared
        if shared is not None and shared.optimizer is optimizer:
            return shared
        if shared is not None:
            shared.close()
            self._shared = None
        variables = model.trainable_weights
        if [id(v) for v in variables] != [id(v) for v in optimizer._trainable_variables] \
                or any(getattr(v, "constraint", None) is not None for v in variables):
            return None
        self._shared = SharedState(self.collective, optimizer)
        if hasattr(self.collective, "plan_blocks"):  # claimed blocks at variable bounds
            self.collective.plan_blocks(block_bounds(
                [int(np.size(v.data)) for v in variables], self.collective.n))
        return self._shared

    def _update_shard(self, model, grads):
        """With shared parameters, after the last exchange: nothing more when the
        exchange updated this rank's ranges (:meth:`_between`); else update this
        rank's range now, or (a missing gradient: Keras's per-variable path) give
        every rank private copies to update; a barrier before the next forward
        follows (``reduce_logs``). ``optimizer.apply`` then ends the step."""
        shared, settle, self._settle = self._shared, self._settle, None
        if grads is None or shared is None or not shared.shared:
            return grads
        if settle is not None:  # a claimed exchange: every block is updated
            settle()
        self.shared_steps += 1
        if shared.merged:
            shared.merged = False
            self.merged_steps += 1
            return grads
        if any(g is None for g in grads):
            shared.unshare()
            self.shared_steps -= 1
        else:
            model.optimizer.begin_update_in_pieces().apply_range(*shared.shard, grads)
        self._update_barrier = True
        return grads

    def _between(self, model, grads, buckets):
        """``(early, between)`` hooks of the step's last exchange that update this
        rank's ranges of the shared parameters (:meth:`SharedState.exchange_hooks`),
        or None (not shared, small exchanges, or a missing gradient)."""
        shared = self._shared
        if shared is None or not shared.shared or not getattr(self.collective, "chunked",
                                                              False) \
                or any(g is None for g in grads):
            return None
        return shared.exchange_hooks(self.collective, buckets, _lr_variable(model),
                                     self.is_chief)

    def _exchange(self, vector, meta, hooks, weights=None):
        """The step's last exchange, with the shared update's ``between`` hook (or its
        ``block`` hook when the whole slot goes through claimed blocks) and the ranks'
        ``weights`` if any (only the shared-memory collective takes them)."""
        extra = {} if weights is None else {"weights": weights}
        if hooks is None:
            return self.collective.exchange(vector, meta, **extra)
        if vector is self.collective.slot and getattr(self.collective, "claimed", False):
            self._settle = hooks[3]
            return self.collective.exchange(vector, meta, update=hooks[2], **extra)
        return self.collective.exchange(vector, meta, between=hooks[1], **extra)

    def _update_seconds(self, hooks) -> float:
        """Time the exchange hooks spent updating (it is not exchange time)."""
        return 0.0 if hooks is None else self._shared.update_seconds

    def _buckets_for(self, model) -> Buckets | None:
        if self.world_size == 1 or not self.bucket_cap_mb \
                or not can_bucket(self.collective):
            return None
        variables = model.trainable_weights
        if self._buckets is None or [id(v) for v in variables] != \
                [id(v) for v in self._buckets.variables]:
            if self._buckets is not None:
                self._buckets.close()
            self._buckets = Buckets(self.collective, variables, self.bucket_cap_mb)
        # One bucket overlaps nothing: then the plain exchange (no hook, no copies).
        return self._buckets if self._buckets.count > 1 else None

    def reduce_gradients(self, model, grads):
        """Sum ``share_r * grad_r`` over replicas (rank order); None when the chief stopped.

        Each gradient is scaled straight into this replica's slot of the collective (or,
        bucketed, into its bucket as soon as backward finished it; the buckets but the
        last are already reduced or in flight). The returned gradients are views of the
        sum (valid until the next exchange). :attr:`exchange_seconds` is the time spent
        here: the part of the reduction backward did not hide.
        """
        start = time.perf_counter()
        buckets = self._buckets
        if buckets is not None and buckets.active:
            return self._reduce_buckets(model, grads, buckets, start)
        shapes = [None if g is None else np.shape(g) for g in grads]
        meta, lr = self._meta(model)
        if self.world_size == 1:  # nothing to exchange: skip the copies
            self._metas = meta[None, :]
            self.exchange_seconds = time.perf_counter() - start
            return grads
        slot, share, at = self.collective.slot, np.float32(self._share), 0
        if self.gradients_in_slot and self._weights is not None:
            # Views of another parity's slot (an exchange since the step began) do not count.
            offered = self._offered if self._offered_slot is slot else []
            self.landed = slot_gradients.fill(slot, grads, offered)
            hooks = self._between(model, grads, None)
            total, metas = self._exchange(slot, meta, hooks, self._weights)
            self.exchange_seconds = time.perf_counter() - start - self._update_seconds(hooks)
            return self._update_shard(model, self._after_exchange(
                model, metas, lr, lambda: self._unflatten(total, shapes)))
        self.landed = 0
        for grad, shape in zip(grads, shapes):
            if shape is None:
                continue
            size = math.prod(shape)
            if at + size > slot.size:
                raise ValueError(f"the gradient does not fit the collective "
                                 f"({slot.size} floats)")
            np.multiply(grad, share, out=slot[at:at + size].reshape(shape))
            at += size
        hooks = self._between(model, grads, None)
        total, metas = self._exchange(slot, meta, hooks)
        self.exchange_seconds = time.perf_counter() - start - self._update_seconds(hooks)
        return self._update_shard(model, self._after_exchange(
            model, metas, lr, lambda: self._unflatten(total, shapes)))

    def _meta(self, model):
        if self._fields is None:
            self._fields = additive_fields(model)
        lr = _lr_variable(model)
        meta = pack(self._fields, head=(CONTINUE, 0.0 if lr is None else float(lr.data)))
        if meta.size > self.collective.m:
            raise ValueError(f"metric state has {meta.size - _HEAD} values, the collective "
                             f"holds {self.collective.m - _HEAD}")
        return meta, lr

    def _reduce_buckets(self, model, grads, buckets: Buckets, start: float):
        """:meth:`reduce_gradients` when backward filled the buckets."""
        try:
            meta, lr = self._meta(model)
        except BaseException:
            buckets.cancel()
            raise
        if not buckets.finish(grads):  # a bucket met the chief's stop or abort
            self.exchange_seconds = time.perf_counter() - start
            plan = getattr(model.optimizer, "_pieces", None)
            if plan is not None and plan.started:  # a stop only meets a step's first
                raise RuntimeError("the chief stopped after a piece of the update")
            self._control(model, buckets.stopped_code)
            return None
        try:
            hooks = self._between(model, grads, buckets)
            if hooks is not None:
                hooks[0]()  # the ranges of the buckets reduced during backward
            total, metas = self._exchange(buckets.last_bucket(), meta, hooks)
        finally:
            buckets.wait_applied()  # the pieces of the update that overlapped it
        buckets.store_last(total)
        self.exchange_seconds = time.perf_counter() - start - self._update_seconds(hooks)
        return self._update_shard(model, self._after_exchange(model, metas, lr, lambda: [
            None if g is None else view for g, view in zip(grads, buckets.views)]))

    def _unflatten(self, total, shapes) -> list:
        """:func:`_unflatten`, the same view objects while ``total`` and ``shapes``
        stay (every step, with the shared-memory collective's fixed result array)."""
        shapes = tuple(shapes)
        entry = self._unflattened
        if entry is None or entry[0] is not total or entry[1] != shapes:
            entry = self._unflattened = (total, shapes, _unflatten(total, shapes))
        return list(entry[2])  # (a caller may change its list)

    def _after_exchange(self, model, metas, lr, result):
        code = metas[0, 0]
        if code != CONTINUE:
            if not self.is_chief:
                self._control(model, code)
            return None
        self._metas = metas
        if lr is not None and not self.is_chief and metas[0, 1] != float(lr.data):
            lr.assign(np.float32(metas[0, 1]))  # a chief's callback changed it last batch
        return result()


def _unflatten(total, shapes) -> list:
    """Views of ``total``, one per shape in order (None stays None)."""
    out, at = [], 0
    for shape in shapes:
        if shape is None:
            out.append(None)
            continue
        size = math.prod(shape)
        out.append(total[at:at + size].reshape(shape))
        at += size
    return out
