"""Compiled kernels (numba) of :class:`lamina.distribute.shm.SharedMemoryCollective`.

Compiled on first call, and called only where :func:`lamina.backend.compiled.pays`.
"""

from __future__ import annotations

from lamina.backend import compiled


# The weighted sum in one pass (``compiled.pays``): ``round(w0 * a) + round(w1 * b)``,
# then ``+ round(w_j * s_j)`` per further rank, float32 at every step as numpy's blocks
# compute it (numba contracts nothing into a fused multiply-add without fastmath), so
# the same bits. Measured on a 2-rank chunk of the MLP (335k floats, one thread):
# 113 us for numpy's blocks, 45 us here.
@compiled.kernel
def weighted_pair(a, b, wa, wb, out):
    for i in range(out.size):
        out[i] = wa * a[i] + wb * b[i]


@compiled.kernel
def weighted_add(a, wa, out):
    for i in range(out.size):
        out[i] = out[i] + wa * a[i]
