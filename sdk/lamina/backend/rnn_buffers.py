"""Scratch arrays reused from one call of a recurrent primitive to the next.

A fused LSTM over (128, 50, 32) keeps ~35 MB of per-step values between its forward
and its backward. Freshly allocated, such arrays come from new pages that the kernel
maps and zeroes at first touch: measured here, ~6000 page faults and up to 60% of the
time of a forward and backward went to the kernel (in a steady ``fit`` glibc's adaptive
mmap threshold often keeps the pages, but not in the first epochs or with changing
shapes). So the primitives take their large
arrays from this pool and hand them back when the node that holds them is freed
(:func:`hold`), and the next step gets the same, already mapped pages.

Arrays taken from the pool are uninitialised, like ``np.empty``; only arrays that
never leave the primitive (no output is a view of one) may be pooled. The pool keeps
at most ``PER_SHAPE`` free arrays of a shape and ``MAX_BYTES`` in all.

Arrays of ``HUGE_MIN_BYTES`` or more live on transparent huge pages where the kernel
offers them (``madvise``, as this VM's ``transparent_hugepage=madvise``; otherwise
numpy's own allocation): a step of the LSTM walks its per-step arrays (megabytes each,
rows thousands of bytes apart) through hundreds of 4 kB pages, and with 2 MB pages one
lane's forward and backward took 0.982x and 0.991x the time (one thread, alternating
40 rounds). The mapping is rounded up to whole huge pages.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref

import numpy as np

PER_SHAPE = 4  # (an LSTM step takes four arrays of one shape: two lanes' tc and hs; with
# two kept, two were allocated and faulted in every step: 2.5% of a step's CPU)
MAX_BYTES = 192 << 20
HUGE_PAGE = 2 << 20
HUGE_MIN_BYTES = 512 << 10

_lock = threading.Lock()
_free: dict = {}
_pooled = [0]


def take(shape, dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype``, reused when one is free."""
    key = (tuple(int(n) for n in shape), np.dtype(dtype))
    with _lock:
        arrays = _free.get(key)
        if arrays:
            array = arrays.pop()
            _pooled[0] -= array.nbytes
            return array
    return _empty(key[0], key[1])


def _empty(shape, dtype) -> np.ndarray:
    n = int(np.prod(shape)) * dtype.itemsize
    if n < HUGE_MIN_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.empty(shape, dtype)
    # (mmap aligns to 4 kB only: one spare huge page lets the array start on a 2 MB
    # boundary; its untouched pages are never backed)
    size = -(-n // HUGE_PAGE) * HUGE_PAGE
    region = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        region.madvise(mmap.MADV_HUGEPAGE)
    except OSError:  # (no THP in this kernel: plain pages)
        pass
    raw = np.frombuffer(region, np.uint8)  # (keeps the mapping alive as its base)
    start = -raw.ctypes.data % HUGE_PAGE
    return raw[start:start + n].view(dtype).reshape(shape)


def give(*arrays) -> None:
    """Return arrays (from :func:`take`, no longer used by anyone) to the pool."""
    with _lock:
        for array in arrays:
            if array is None:
                continue
            key = (array.shape, array.dtype)
            arrays_of_key = _free.setdefault(key, [])
            if len(arrays_of_key) < PER_SHAPE and _pooled[0] + array.nbytes <= MAX_BYTES:
                arrays_of_key.append(array)
                _pooled[0] += array.nbytes


def hold(owner, *arrays) -> None:
    """Give ``arrays`` back to the pool once ``owner`` (the node using them) is freed."""
    finalizer = weakref.finalize(owner, give, *arrays)
    finalizer.atexit = False


def pooled_bytes() -> int:
    """Bytes of free arrays the pool keeps now."""
    return _pooled[0]


def clear() -> None:
    """Drop every free array (they are freed once nobody else holds them)."""
    with _lock:
        _free.clear()
        _pooled[0] = 0


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
