"""GEMMs and elementwise passes cut into parts and run on Lamina's thread pool.

A result is bit-identical however many threads computed it, whatever the load: an
elementwise pass computes each element alone, and a GEMM is cut only where the parts
give the bits of one call (below) or else into parts fixed by the shapes; see
:mod:`lamina.backend.blas_threads` for why BLAS itself runs on one thread.

A GEMM runs on the kernel :mod:`lamina.backend.gemm` chooses for the whole product
(Lamina's own, whose cuts anywhere give the bits of one call, or numpy's BLAS). It is
never cut along its summed axis, and its cuts fall on multiples of ``ROW_ALIGN`` rows
or ``COL_ALIGN`` columns. Whether such a cut also gives exactly the bits of one BLAS
call depends on the BLAS kernel (OpenBLAS's SkylakeX sgemm: rows and
columns; its Haswell kernel: rows at multiples of 12 only), so :func:`exact_cuts`
probes it once per dtype and GEMMs are cut only along an axis where it holds (when
neither does, along the larger operand as before: still the same bits whatever the
load). With OpenBLAS on one thread, a split product is then the product of one call.
"""

from __future__ import annotations

import numpy as np

from lamina.backend import gemm
from lamina.backend.blas_threads import get_thread_policy, tick
from lamina.backend.threads import active_threads, parallel_for, split

# A part should cost well over the ~20-50 us hand-off to a worker: ~0.1 ms of GEMM.
PART_FLOPS = 8_000_000
MAX_PARTS = 4
PART_ELEMENTS = 1 << 17  # elementwise: ~128k elements a part (0.5 MB of float32)
ROW_ALIGN, COL_ALIGN = 12, 16  # multiples of the sgemm/dgemm kernels' register blocks
_exact: dict = {}


def gemm_parts(m: int, k: int, n: int) -> int:
    """How many parts an ``(m, k) @ (k, n)`` product is cut into (shape only)."""
    return int(max(1, min(MAX_PARTS, 2 * m * k * n // PART_FLOPS)))


def aligned_split(length: int, parts: int, align: int) -> list[tuple[int, int]]:
    """At most ``parts`` contiguous ranges covering ``range(length)``, cut at multiples
    of ``align``; the last range takes the remainder (no range of one or two rows, which
    BLAS would compute as a matrix-vector product)."""
    bounds = [align * lo for lo, _ in split(max(1, length // align), parts)]
    return list(zip(bounds, bounds[1:] + [length]))


def exact_cuts(dtype) -> tuple[bool, bool]:
    """Whether cutting a product's rows / columns (aligned) gives the bits of one call.

    Probed once per dtype (a few ms) on a random product of the smallest size that is ever
    cut (``PART_FLOPS``; smaller products may take other kernels, e.g. OpenBLAS's
    small-matrix ones, which cuts never reach), its cuts crossing the kernels' edge
    cases (ranges that are not multiples of the register blocks).
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "fc":  # numpy's own loops (integers) compute element by element
        return True, True
    found = _exact.get(dtype)
    if found is None:
        tick()  # BLAS on one thread, as the parts will run
        rng = np.random.default_rng(0)
        m, k, n = 5 * ROW_ALIGN + 5, 256, 30 * COL_ALIGN
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        one = np.matmul(a, b)
        rows = all(np.array_equal(np.matmul(a[lo:hi], b), one[lo:hi])
                   for cut in range(ROW_ALIGN, m, ROW_ALIGN)
                   for lo, hi in ((0, cut), (cut, m)))
        cols = all(np.array_equal(np.matmul(a, b[:, lo:hi]), one[:, lo:hi])
                   for cut in (1, 2, 3, 15, 29) for lo, hi in ((0, cut * COL_ALIGN),
                                                               (cut * COL_ALIGN, n)))
        found = _exact[dtype] = (rows, cols)
    return found


def matmul_tasks(a: np.ndarray, b: np.ndarray, out: np.ndarray, epilogue=None) -> list:
    """The parts of ``out[...] = a @ b`` (2-D operands), as zero-argument callables.

    The product is cut along the rows of ``a`` or the columns of ``b`` (whichever operand
    is larger, among the axes :func:`exact_cuts` allows) into at most :func:`gemm_parts`
    parts; the summed axis is never cut, so every output element is one BLAS dot product
    over the whole ``k``, whatever thread runs it. When the cut is exact (the same bits
    as one call, the usual case) there are only as many parts as threads that will run
    them (one while the pool runs solo), since every extra part costs another packing of
    the shared operand (4 parts: ~10% more work than 1); otherwise the count is fixed by
    the shapes.
    ``epilogue(rows, cols)``, if given, runs right after each part on the slices of
    ``out`` that part wrote (e.g. a bias add while the part is still in cache). Several
    products' tasks can be run by one :func:`run_tasks` call, so that independent GEMMs
    (a layer's input and kernel gradients) share one hand-off to the pool.
    """
    (m, k), n = a.shape, b.shape[1]
    parts = 1 if get_thread_policy() == "off" else gemm_parts(m, k, n)
    whole = slice(None)
    kernel = gemm.uses_kernel(a, b)  # for the whole product: its parts run the same one

    def run(rows, cols, a_part, b_part):
        gemm.matmul_into(a_part, b_part, out[rows, cols], kernel)
        if epilogue is not None:
            epilogue(rows, cols)

    if parts == 1:
        return [lambda: run(whole, whole, a, b)]
    rows_exact, cols_exact = (True, True) if kernel else exact_cuts(out.dtype)
    by_rows = a.size >= b.size if rows_exact == cols_exact else rows_exact
    if rows_exact or cols_exact:
        parts = min(parts, active_threads())
        if parts == 1:
            return [lambda: run(whole, whole, a, b)]
    if by_rows:
        return [lambda r=slice(lo, hi): run(r, whole, a[r], b)
                for lo, hi in aligned_split(m, parts, ROW_ALIGN)]
    return [lambda c=slice(lo, hi): run(whole, c, a, b[:, c])
            for lo, hi in aligned_split(n, parts, COL_ALIGN)]


def run_tasks(tasks: list, flops: int | None = None) -> None:
    """Run zero-argument callables that write disjoint outputs, spread over the pool.

    ``flops``, if given, is the work of all the tasks together: under ``PART_FLOPS`` they
    run in order on the calling thread, since a hand-off to the pool costs more than
    they do (e.g. the gradients of a 512 -> 10 Dense layer on a batch of 128). It also
    tells :func:`parallel_for` apart the call sites that share this function (each
    Dense layer's forward and backward jobs), which it times separately.
    """
    if len(tasks) == 1 or (flops is not None and flops < PART_FLOPS):
        for task in tasks:
            task()
    else:
        parallel_for(len(tasks), lambda i: tasks[i](), site=("run_tasks", len(tasks), flops))


def sum_in_order(parts) -> np.ndarray:
    """Sum of the arrays ``parts`` in list order (partial gradients of fixed parts: the
    order is fixed, so the bits do not depend on which thread made which part)."""
    total = np.array(parts[0], copy=True)
    for part in parts[1:]:
        total += part
    return total


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D operands, cut along the rows of ``a`` or the columns of ``b``
    (whichever operand is larger), the parts run in parallel (see :func:`matmul_tasks`)."""
    if a.ndim != 2 or b.ndim != 2:
        return np.matmul(a, b)
    if get_thread_policy() == "off":
        return gemm.matmul(a, b)
    out = np.empty((a.shape[0], b.shape[1]), np.result_type(a.dtype, b.dtype))
    run_tasks(matmul_tasks(a, b, out), flops=2 * a.size * b.shape[1])
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
