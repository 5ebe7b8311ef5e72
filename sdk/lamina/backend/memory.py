"""Keep freed memory in the process, so that training steps do not page-fault it back.

A training step allocates and frees tens of MB of short-lived arrays (im2col columns,
activations, gradients). With glibc's defaults each large array is its own ``mmap``
(or the top of the heap is trimmed when it is freed), so every step hands the memory
back to the kernel and then page-faults it in again: on a 2-vCPU VM that was a quarter
of an MNIST-convnet step at batch 128 (63-92 ms -> 48-51 ms a step).

:func:`keep_freed_memory` raises glibc's mmap and trim thresholds to 256 MB, once, for
the whole process: arrays up to that size come from the heap and freed memory stays
there for the next step (RSS keeps its peak, as PyTorch's caching allocators do).
``fit`` and ``train_on_batch`` call it. Set ``LAMINA_KEEP_FREED_MEMORY=0`` to leave
malloc alone; elsewhere than Linux with glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

from lamina.backend import env

_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_done = False


def keep_freed_memory() -> bool:
    """Tune glibc malloc to keep freed memory (once per process); True when it applied."""
    global _done
    if _done:
        return _done is True
    wanted = env.flag("LAMINA_KEEP_FREED_MEMORY", True)
    _done = "skipped"
    if not wanted or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # The mmap threshold first: setting either one also turns off glibc's own
    # adjustment of the mmap threshold, which alone would mmap every array > 128 KB.
    if mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, _THRESHOLD):
        _done = True
    return _done is True
