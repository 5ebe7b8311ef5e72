"""One step's update applied in pieces, as each group of gradients becomes final.

A data-parallel replica reduces its gradients in buckets while backward goes on
(:mod:`lamina.distribute.buckets`); with an elementwise optimizer (Adam, SGD,
RMSprop, Adagrad, Adamax, Lion) nothing forces the update of a bucket's variables to
wait for the other buckets, so :class:`UpdateInPieces` applies it as soon as that
bucket is reduced, while the replica still exchanges (or waits for) the last bucket.

Every element of the flat buffers goes through exactly the same ``update_step``
arithmetic with the same learning rate and step count whichever piece it is in, so
the bits equal those of one whole ``apply`` (tested against it). What is global to a
step stays in ``Optimizer.apply``, which finishes the step: the variables not updated
yet, the denormal flush, constraints and ``iterations += 1``. Optimizers that need a
global quantity (``global_clipnorm``, ``clipnorm``, ``clipvalue``, loss scaling,
gradient accumulation, EMA, weight decay) or whose step is not elementwise take the
whole-step path (:func:`supported` is False).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.parallel import MAX_PARTS, PART_ELEMENTS
from lamina.backend.threads import parallel_for
from lamina.optimizers.buffers import gather, unit_parts


def supported(optimizer) -> bool:
    """Whether ``optimizer``'s next update may be applied in pieces with the same bits."""
    from lamina.optimizers.base import Optimizer
    from lamina.optimizers.flat_apply import _ELEMENTWISE_STEPS

    kind = type(optimizer)
    fn = kind.update_step
    return bool(
        optimizer.built and len(optimizer._segments) == 1
        and optimizer.loss_scale_factor is None and not optimizer.gradient_accumulation_steps
        and not optimizer.clipnorm and not optimizer.clipvalue
        and not optimizer.global_clipnorm and not optimizer.use_ema
        and not optimizer._has_weight_decay()
        and kind.apply is Optimizer.apply
        and kind._backend_update_step is Optimizer._backend_update_step
        and (fn.__module__, fn.__qualname__) in _ELEMENTWISE_STEPS)


class UpdateInPieces:
    """The update of one step, applied variable group by variable group.

    Made by ``Optimizer.begin_update_in_pieces``. :meth:`apply` updates some variables
    now (any thread, one call at a time); the step's ``Optimizer.apply`` updates the
    others and ends the step. The learning rate is read once, at the first piece.

    Args:
        optimizer: a built optimizer for which :func:`supported` holds.
    """

    def __init__(self, optimizer) -> None:
        self.optimizer = optimizer
        self.segment = optimizer._segments[0]
        self.done = [False] * len(self.segment.variables)
        self.learning_rate: float | None = None
        self.flush_range: tuple = (0, None)  # what this step's denormal flush covers
        self._ranged = False  # updated by apply_pieces

    @property
    def started(self) -> bool:
        """Whether a piece was applied (the variables are no longer the step's start)."""
        return any(self.done)

    def apply(self, indices, grads) -> None:
        """Update the variables ``indices`` (positions in the optimizer's variable list)
        from their gradients ``grads`` now.

        Raises:
            RuntimeError: when this step was ended or replaced, or a variable was
                already updated in it.
        """
        opt = self.optimizer
        self._check(indices)
        if not len(indices):
            return
        offsets = self.segment.offsets
        for index, grad in zip(indices, grads):
            np.copyto(self.segment.grad[offsets[index]:offsets[index + 1]],
                      np.reshape(grad, -1))
        parts = []
        for lo, hi in _runs(sorted(indices)):
            parts += _range_parts(opt, offsets[lo], offsets[hi])
        self._update(parts)
        for index in indices:
            self.done[index] = True

    def _check(self, indices) -> None:
        opt = self.optimizer
        if opt._pieces is not self or not opt._segments or opt._segments[0] is not self.segment:
            raise RuntimeError("this step's update in pieces was ended or replaced")
        if any(self.done[i] for i in indices):
            raise RuntimeError(f"variables {list(indices)} were already updated this step")

    def apply_range(self, lo: int, hi: int, grads) -> None:
        """Update elements ``[lo, hi)`` of the flat buffers now, from every variable's
        gradient (none None), and leave the others to whoever shares these buffers
        (:mod:`lamina.distribute.shared_state`): the step's ``apply`` then updates
        nothing more, and its denormal flush covers ``[lo, hi)`` only.

        Raises:
            RuntimeError: as :meth:`apply`.
        """
        self.apply([], [])
        if self.started:
            raise RuntimeError("a range update must be the step's only piece")
        seg = self.segment
        if hi > lo:
            gather([np.reshape(g, -1) for g in grads], seg.offsets, seg.grad, lo, hi)
            self._update(_range_parts(self.optimizer, lo, hi))
        self.done = [True] * len(self.done)
        self.flush_range = (lo, hi)

    def apply_pieces(self, source, pieces, flush: bool = False) -> None:
        """Update the flat buffers' ranges ``[at, at + hi - lo)`` from ``source[lo:hi]``
        for each ``(lo, hi, at)`` of ``pieces`` (flat gradients in another layout)
        now, and leave the rest to whoever shares these buffers, as
        :meth:`apply_range` does (several calls: disjoint ranges); ``flush``: the
        step's denormal flush too, on these ranges (the step's ``apply`` then flushes
        nothing).

        Raises:
            RuntimeError: as :meth:`apply`.
        """
        self.apply([], [])
        if self.started and not self._ranged:
            raise RuntimeError("range updates cannot follow variable pieces")
        self._ranged = True
        opt, parts = self.optimizer, []
        for lo, hi, at in pieces:
            # The update reads the gradients where they are: no copy into the flat
            # gradient buffer first (1.34 MB a step for a rank's half of the MLP's
            # exchange: ~0.1 ms; the kernels only read a gradient).
            for _, param in _range_parts(opt, at, at + hi - lo):
                unit = opt._units[id(param)]
                parts.append((source[lo + unit.start - at:lo + unit.stop - at], param))
        self._update(parts)
        if flush:
            for lo, hi, at in pieces:
                opt._flush_denormals(at, at + hi - lo)
        self.done = [True] * len(self.done)
        self.flush_range = (0, 0)

    def _update(self, parts) -> None:
        """``update_step`` on each ``(gradient, parameter)`` part, on the pool, with the
        step's learning rate (read at the first piece)."""
        opt = self.optimizer
        if self.learning_rate is None:
            self.learning_rate = opt._current_learning_rate()
        lr = self.learning_rate
        parallel_for(len(parts), lambda i: opt.update_step(parts[i][0], parts[i][1], lr))

    def finish(self, grads) -> None:
        """Update every variable not updated yet whose gradient is not None."""
        rest = [i for i, (done, g) in enumerate(zip(self.done, grads))
                if not done and g is not None]
        self.apply(rest, [grads[i] for i in rest])


def _runs(indices):
    """``(first, last + 1)`` of each run of consecutive ints in the sorted ``indices``."""
    runs = []
    for index in indices:
        if runs and runs[-1][1] == index:
            runs[-1][1] = index + 1
        else:
            runs.append([index, index + 1])
    return runs


def _range_parts(optimizer, lo: int, hi: int) -> list:
    """``(gradient, parameter)`` slices covering ``[lo, hi)`` of the flat buffers, in
    parts of about ``PART_ELEMENTS`` (as the whole-step path cuts them), each with its
    own unit (slot and scratch slices); cached per range."""
    seg = optimizer._segments[0]
    cache = seg.__dict__.setdefault("range_parts", {})  # a rebuild makes new segments
    key = (lo, hi, tuple(seg.slots))
    parts = cache.get(key)
    if parts is None:
        count = max(1, min(MAX_PARTS, (hi - lo) // PART_ELEMENTS))
        parts = cache[key] = unit_parts(seg, optimizer._units, lo, hi, count)
    return parts
