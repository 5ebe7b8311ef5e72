"""Backward writes each gradient straight into this rank's slot of the collective.

With the shared-memory collective (:mod:`lamina.distribute.shm`), a replica's step
used to scale its whole gradient by its share of the batch into its slot before the
exchange (2.7 MB written for the MLP 784-512-512-10). Instead, the strategy offers
backward a view of the slot per variable (:func:`lamina.backend.autodiff.gradient_destinations`):
ops that honour it (``Dense``'s kernel and bias gradients) write there directly, and
only the gradients that did not land there are copied in, unscaled. The shares are
applied inside the exchange's rank-ordered sum
(``SharedMemoryCollective.exchange(weights=)``): ``round(w_r * g_r)`` computed at the
same place as before, so the sum has the same bytes as scaling first.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.distribute.shm import SharedMemoryCollective


def supported(collective) -> bool:
    """Whether ``collective`` sums weighted slots (the shared-memory collective, 2+ ranks)."""
    return isinstance(collective, SharedMemoryCollective) and collective.world > 1


def views(slot: np.ndarray, variables) -> list:
    """``(variable, view)`` pairs: each variable's range of ``slot`` in the flat layout
    ``reduce_gradients`` uses (variables in order, back to back), shaped like it.
    Variables that are not float32 or do not fit get no view."""
    pairs, at = [], 0
    for variable in variables:
        shape = np.shape(variable.data)
        size = int(np.prod(shape))
        if at + size > slot.size:
            break
        if variable.data.dtype == np.float32:
            pairs.append((variable, slot[at:at + size].reshape(shape)))
        at += size
    return pairs


def weights(bounds, n: int) -> np.ndarray:
    """Each rank's share of a batch of ``n`` rows split as ``bounds`` (rows per rank),
    as the float32 factors every rank used to scale its own slot by."""
    return np.array([np.float32(b / float(n)) for b in bounds], np.float32)


def fill(slot: np.ndarray, grads, offered) -> int:
    """Copy into ``slot`` (flat layout) the gradients that backward did not write
    there; ``offered``: the views that were offered this step. Returns how many
    gradients landed in place.

    Raises:
        ValueError: when the gradients do not fit the slot.
    """
    if len(offered) == len(grads) and all(
            grad is view for grad, (_, view) in zip(grads, offered)):
        return len(grads)  # every gradient landed in its view: nothing to copy
    landed, at, by_offset = 0, 0, {}
    base = slot.__array_interface__["data"][0]
    for _, view in offered:
        by_offset[(view.__array_interface__["data"][0] - base) // slot.itemsize] = view
    for grad in grads:
        if grad is None:
            continue
        shape = np.shape(grad)
        size = math.prod(shape)
        if at + size > slot.size:
            raise ValueError(f"the gradient does not fit the collective "
                             f"({slot.size} floats)")
        if grad is by_offset.get(at):
            landed += 1
        else:
            np.copyto(slot[at:at + size].reshape(shape), grad)
        at += size
    return landed
