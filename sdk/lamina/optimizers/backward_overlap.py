"""The optimizer's update overlapped with backward, in one process.

Backward reaches the variables in reverse layer order, and a variable's gradient is
final as soon as the last node using it has run backward
(:func:`~lamina.backend.autodiff.gradient_ready_hook`). With an elementwise optimizer
(Adam, SGD, ...: :func:`lamina.optimizers.pieces.supported`) nothing in a variable's
update waits for the other gradients, so :func:`update_during_backward` hands each
group of final gradients to the thread pool
(:meth:`~lamina.optimizers.pieces.UpdateInPieces.start`): a worker updates the last
layers while the calling thread runs the first layers' backward GEMMs, and the calling
thread takes whatever parts no worker has claimed when the step's ``apply`` ends it.

Inside ``fit`` (:func:`steps_overlapping`) the last group's parts (the first layer's,
the largest) may even run into the next step: ``apply`` leaves them to the pool, and
the next ``train_step`` waits for them (``Optimizer.wait_for_update``) just before its
forward pass, so the batch loop's Python (logs, callbacks, the next batch) runs while
they do. Only where nothing can look at the weights in between: the default
``train_step``, no callbacks but ``History`` and ``ProgbarLogger``, not on a step that
flushes denormals or has constraints; the loop waits whenever it ends (an epoch's end,
an error, Ctrl-C).

Every element gets the same ``update_step`` arithmetic, learning rate and step count as
in one whole ``apply``, so the bits are the same (tested by seeded ``fit`` against the
whole-step path). Optimizers that need every gradient first (clipping, global norm,
loss scaling, accumulation, EMA, weight decay) or that are not elementwise keep the
whole-step path, as do processes without pool workers.

Off by default (``enabled``; ``LAMINA_BACKWARD_OVERLAP=1`` turns it on): measured on
the benchmark MLP it made the step slower, not faster (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import os

from lamina.backend import threads
from lamina.backend.autodiff import gradient_ready_hook
from lamina.backend.parallel import PART_ELEMENTS

# Smallest group of gradients handed to the pool (a smaller one waits for the next):
# the hand-off (a worker's wake-up) costs more than updating a 512 -> 10 layer.
MIN_ELEMENTS = PART_ELEMENTS // 2
# Off by default: it did not pay on the benchmark MLP (see docs/architecture.md, "The
# update overlapped with backward"); ``LAMINA_BACKWARD_OVERLAP=1`` or ``enabled = True``.
enabled = os.environ.get("LAMINA_BACKWARD_OVERLAP", "0") == "1"
into_next_step = True  # False: fit's steps wait for their whole update (A/B, tests)


@contextlib.contextmanager
def update_during_backward(optimizer, variables, keep_running: bool = False):
    """Start the update of ``variables`` during the ``gradients`` call in the block.

    The first ``gradients(..., variables)`` call in the block (with this very list)
    reports each variable's final gradient; groups of at least ``MIN_ELEMENTS`` are
    updated on the pool while backward goes on. ``optimizer.apply(grads, variables)``
    after the block updates the rest and waits for the pool's parts: it must follow
    (another ``apply`` raises). When the block raises, the begun parts are waited for
    and the plan dropped (those variables keep their update).

    Args:
        optimizer: the optimizer whose ``apply`` ends the step.
        variables: the list of variables passed to ``gradients`` and ``apply``.
        keep_running: ``apply`` leaves the parts still running to the pool; the
            caller must call ``optimizer.wait_for_update()`` before anything reads
            the variables or the optimizer's slots.

    Yields:
        The step's ``UpdateInPieces``, or None when the step takes the whole-step path.
    """
    plan = _begin(optimizer, variables)
    if plan is None:
        yield None
        return
    plan.keep_running = keep_running
    offsets = plan.segment.offsets
    pending: list = []
    used = []

    def ready(index, grad):
        if index is None:  # the walk ended; the rest is left to apply
            threads.wake_workers()
            return
        pending.append((index, grad))
        if sum(offsets[i + 1] - offsets[i] for i, _ in pending) >= MIN_ELEMENTS:
            # Queued without waking a worker: one wakes for backward's next pooled
            # GEMM and takes these parts after its part, never before.
            plan.start([i for i, _ in pending], [g for _, g in pending], wake=False)
            pending.clear()

    def hook(sources):
        if used or sources is not variables:
            return None
        used.append(True)
        return ready

    try:
        with gradient_ready_hook(hook):
            yield plan
    except BaseException:
        optimizer.cancel_update_in_pieces()
        raise


@contextlib.contextmanager
def steps_overlapping(model, callbacks):
    """The block of ``fit``'s batch loop: ``model.train_step`` may leave the end of
    its update running into the next step (``model._overlap_steps``) when nothing but
    the next step can read the weights in between; waits for it when the block ends.

    Args:
        model: the model being trained (its class's ``train_step`` must be the
            default one).
        callbacks: the callbacks the loop runs between steps.
    """
    from lamina.callbacks import History, ProgbarLogger
    from lamina.models.trainer import Trainer

    model._overlap_steps = bool(
        enabled and into_next_step and type(model).train_step is Trainer.train_step
        and all(type(cb) in (History, ProgbarLogger) for cb in callbacks))
    try:
        yield
    finally:
        model._overlap_steps = False
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and getattr(optimizer, "_still_running", None) is not None:
            optimizer.wait_for_update()


def _begin(optimizer, variables):
    if (not enabled or optimizer is None or not optimizer.built
            or threads.active_threads() < 2):
        return None
    segments = optimizer._segments
    if len(segments) != 1 or len(segments[0].variables) != len(variables) or any(
            a is not b for a, b in zip(segments[0].variables, variables)):
        return None
    return optimizer.begin_update_in_pieces()
