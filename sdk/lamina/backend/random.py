"""The global random state: every initializer and random layer draws from here.

``lamina.utils.set_random_seed(s)`` reseeds it, so the same seed gives the same
weights, dropout masks and shuffles, bit for bit.
"""

from __future__ import annotations

import numpy as np

_RNG = np.random.default_rng()
# The seed of the last set_seed (keys the counter-based noise of lamina.distribute.keys);
# without one, a per-process value that never touches _RNG.
_SEED: int = int(np.random.SeedSequence().entropy % (2**63))
_STREAMS = 0  # SeedGenerators made since the last set_seed


def get_rng() -> np.random.Generator:
    """Return the global numpy ``Generator``."""
    return _RNG


def set_seed(seed: int) -> None:
    """Reseed the global generator (and numpy's legacy global state, for user code)."""
    global _RNG, _SEED, _STREAMS
    _RNG = np.random.default_rng(seed)
    _SEED = int(seed)
    _STREAMS = 0
    np.random.seed(seed % (2**32))


def global_seed() -> int:
    """The seed of the last :func:`set_seed` (a per-process value before any)."""
    return _SEED


def get_state() -> dict:
    """The generator's state as plain data (for checkpoints)."""
    return _RNG.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state returned by :func:`get_state`."""
    _RNG.bit_generator.state = state


class SeedGenerator:
    """A layer's own random stream: seeded if ``seed`` is given, else from the global one.

    Args:
        seed: an int for a fixed stream, or None to draw from the global generator.
        name: an optional name (Keras's argument; kept for display).
    """

    def __init__(self, seed: int | None = None, name: str | None = None) -> None:
        global _STREAMS
        self.seed = seed
        self.name = name or "seed_generator"
        self._rng = None if seed is None else np.random.default_rng(seed)
        # Keys the counter-based noise inside fit (lamina.distribute.keys): the seed, or
        # the global seed and this generator's rank among those made since set_seed, so
        # the same model built twice after the same set_random_seed draws the same noise.
        if seed is None:
            self.counter_key = (_SEED, _STREAMS)
            _STREAMS += 1
        else:
            self.counter_key = (int(seed), -1)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng if self._rng is not None else _RNG
