"""Chunks of a large shared-memory exchange sized by each rank's measured speed.

In a large exchange (:mod:`lamina.distribute.shm`, two barriers) rank ``r`` sums chunk
``r`` of the slots and then, with the shared update
(:mod:`lamina.distribute.shared_state`), applies the optimizer to that chunk before the
second barrier; so every rank waits there for the slowest one. Equal chunks do not
cost the same: profiled on the MLP 784-512-512-10 (2 ranks, one core each, quiet
machine), the rank holding the upper half (the first layer's last rows and the
later layers, which backward has just read on both cores) spent 0.56 ms a step on
its half of the update against 0.42 ms for the lower half, on either rank
(swapping the halves moved the cost with them), and the chief waited ~0.14 ms a step
for it; in the slow epochs of a busy machine 2.7 against 1.9 ms.

:class:`ChunkBalance` keeps every rank's share of such an exchange and moves the
shares towards equal times: each rank reports its last exchange's work between the
barriers (seconds and elements) in the collective's file, every rank reads all the
reports after the next exchange's first barrier, and every :data:`WINDOW` reports
each rank takes the same damped step from the same medians, so the ranks' shares stay
identical without another message. Boundaries fall on
multiples of :data:`QUANTUM` floats (cache-line and page aligned), and one moves only
when its share asks for more than a quantum's move: a share dithering about it leaves
the ranges, and the shared update's cached pieces of them, as they are. Which rank
sums which element does not change any element's bits (each is still summed in rank
order, and the update is elementwise), so replicas stay bit-identical however the
shares move.
"""

from __future__ import annotations

import numpy as np

#: Boundaries are multiples of this many floats (4 KB) within an exchanged range.
QUANTUM = 1024
#: The shares move once per this many reports, from each rank's median time per
#: element over them: one exchange's times are noisy (a rank descheduled once reports
#: a long time; on a busy machine, stepping after every exchange, the MLP's shares
#: wandered 0.48-0.60 and a boundary moved at 171 of 388 exchanges).
WINDOW = 16
#: Fraction of the way to the measured balance taken per window ...
GAIN = 0.5
#: ... and at most this much of a share.
MAX_STEP = 0.03
#: No rank's share falls below this fraction of an equal share.
MIN_SHARE = 0.25


class ChunkBalance:
    """Every rank's share of a large exchange (the same on every rank).

    Args:
        world: number of ranks.
        enabled: False keeps equal shares and ``numpy.linspace`` boundaries.
    """

    def __init__(self, world: int, enabled: bool = True) -> None:
        self.world = world
        self.enabled = enabled and world > 1
        self.shares = [1.0 / world] * world
        self._bounds: dict[int, list[int]] = {}  # k -> boundaries at the current shares
        self._previous: dict[int, list[int]] = {}  # k -> the last boundaries used
        self._window: list = []  # the reports since the shares last moved

    def bounds(self, k: int) -> list[int]:
        """The ``world + 1`` chunk boundaries of ``k`` floats (``[0, ..., k]``)."""
        bounds = self._bounds.get(k)
        if bounds is None:
            if not self.enabled or k < 4 * QUANTUM * self.world:
                bounds = [int(b) for b in np.linspace(0, k, self.world + 1).astype(int)]
            else:
                old = self._previous.get(k)
                bounds, at = [0], 0.0
                for j, share in enumerate(self.shares[:-1]):
                    at += share
                    cut = QUANTUM * round(at * k / QUANTUM)
                    if old is not None and abs(cut - old[j + 1]) <= QUANTUM:
                        # A share dithering about a boundary leaves it where it is: the
                        # ranges (and the update's cached pieces of them) stay.
                        cut = old[j + 1]
                    bounds.append(min(k, max(bounds[-1], cut)))
                bounds.append(k)
            if len(self._bounds) > 16:
                self._bounds.clear()
            self._bounds[k] = bounds
        return bounds

    def update(self, reports) -> bool:
        """Take one exchange's reports; every :data:`WINDOW` of them, move the shares
        one damped step towards equal times.

        Args:
            reports: per rank, ``(seconds, elements)`` of its work between the barriers
                of one earlier exchange (the same rows on every rank).

        Returns:
            Whether the shares changed. Rows without elements or time (no report yet,
            a range too small to split) are not counted.
        """
        if not self.enabled or any(s <= 0.0 or e <= 0.0 for s, e in reports):
            return False
        self._window.append([s / e for s, e in reports])
        if len(self._window) < WINDOW:
            return False
        per_element = np.median(np.array(self._window), axis=0).tolist()
        self._window = []
        speeds = [1.0 / t for t in per_element]
        total = sum(speeds)
        floor = MIN_SHARE / self.world
        shares = []
        for share, speed in zip(self.shares, speeds):
            step = GAIN * (speed / total - share)
            shares.append(max(floor, share + max(-MAX_STEP, min(MAX_STEP, step))))
        # Normalized above the floor, so no share ends below it.
        spare = sum(shares) - floor * self.world
        shares = [floor + (share - floor) * (1.0 - floor * self.world) / spare
                  for share in shares]
        if shares == self.shares:
            return False
        self.shares = shares
        if len(self._previous) > 16:
            self._previous.clear()
        self._previous.update(self._bounds)
        self._bounds = {}
        return True
