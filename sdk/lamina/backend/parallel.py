"""GEMMs and elementwise passes cut into fixed parts and run on Lamina's thread pool.

The cut depends only on the shapes (never on the load or the number of workers), so a
result is bit-identical however many threads computed it; see
:mod:`lamina.backend.threads` for why BLAS itself runs on one thread.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.threads import get_thread_policy, parallel_for, split

# A part should cost well over the ~20-50 us hand-off to a worker: ~0.1 ms of GEMM.
PART_FLOPS = 8_000_000
MAX_PARTS = 4
PART_ELEMENTS = 1 << 17  # elementwise: ~128k elements a part (0.5 MB of float32)


def gemm_parts(m: int, k: int, n: int) -> int:
    """How many parts an ``(m, k) @ (k, n)`` product is cut into (shape only)."""
    return int(max(1, min(MAX_PARTS, 2 * m * k * n // PART_FLOPS)))


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D operands, cut along the rows of ``a`` or the columns of ``b``
    (whichever operand is larger), the parts run in parallel."""
    if a.ndim != 2 or b.ndim != 2 or get_thread_policy() == "off":
        return np.matmul(a, b)
    (m, k), n = a.shape, b.shape[1]
    parts = gemm_parts(m, k, n)
    if parts == 1:
        return np.matmul(a, b)
    out = np.empty((m, n), np.result_type(a.dtype, b.dtype))
    if a.size >= b.size:
        ranges = split(m, parts)

        def part(i):
            lo, hi = ranges[i]
            np.matmul(a[lo:hi], b, out=out[lo:hi])
    else:
        ranges = split(n, parts)

        def part(i):
            lo, hi = ranges[i]
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])
    parallel_for(len(ranges), part)
    return out


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for ``a`` of rank >= 2 and a 2-D ``b``: leading axes folded into the rows."""
    if b.ndim != 2 or a.ndim < 2:
        return np.matmul(a, b)
    if a.ndim == 2:
        return matmul(a, b)
    return matmul(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])


def elementwise(fn, size: int) -> None:
    """Run ``fn(lo, hi)`` over fixed ranges of ``range(size)`` in parallel.

    ``fn`` must touch only elements ``lo:hi`` of its (flat) arrays.
    """
    if get_thread_policy() == "off" or size < 2 * PART_ELEMENTS:
        fn(0, size)
        return
    ranges = split(size, min(MAX_PARTS, size // PART_ELEMENTS))
    parallel_for(len(ranges), lambda i: fn(*ranges[i]))
