"""Compiled waits (numba) for the thread pool's hand-offs (:mod:`lamina.backend.threads`).

Imported only when the pool spins (compiled kernels enabled, ``LAMINA_POOL_SPIN`` on,
Linux). Each function runs without the GIL and gives the core away once a turn
(``sched_yield``: any other runnable task on this CPU goes first; with none it returns
in ~0.6 us), so a waiting thread neither holds the GIL nor sleeps: it sees the word it
watches change within a turn, and takes the GIL without a wake-up. The call to
``sched_yield`` also makes every turn load the word again (the compiler cannot assume
an external call leaves memory alone).
"""

from __future__ import annotations

import numba
from numba import types

from lamina.backend import compiled

_sched_yield = types.ExternalFunction("sched_yield", types.int32())


@numba.njit(**compiled.NUMBA_OPTIONS)
def spin_while(word, value, turns, extra):
    """Turn while ``word[0] == value``, at most ``turns`` times; once it differs, ``extra``
    more turns (time for whoever changed it to get past its own Python and let go of
    the GIL). Returns the last value seen."""
    for _ in range(turns):
        seen = word[0]
        if seen != value:
            for _ in range(extra):
                _sched_yield()
            return seen
        _sched_yield()
    return word[0]


@numba.njit(**compiled.NUMBA_OPTIONS)
def store_then_spin(cell, stamp, word, value, turns, extra):
    """``cell[0] = stamp`` (after this thread let go of the GIL, so that whoever waits
    for it takes the GIL at once), then :func:`spin_while`."""
    cell[0] = stamp
    return spin_while(word, value, turns, extra)
