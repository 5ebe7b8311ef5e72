"""Shared by the kernel tests: the thread counts of the process's other OpenBLAS (scipy's,
which numba's ``np.dot`` calls) seen inside every call of a compiled kernel."""

from __future__ import annotations

import pytest

from lamina.backend import blas_threads


def other_blas_or_skip() -> list:
    """threadpoolctl's controllers of the OpenBLAS libraries other than numpy's; the test
    is skipped when there is none (no scipy, or threadpoolctl cannot see it)."""
    pytest.importorskip("threadpoolctl")
    pytest.importorskip("scipy")
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS numba's np.dot calls)

    others = blas_threads._other_blas()
    if not blas_threads._controller() or not others:
        pytest.skip("no second OpenBLAS found by threadpoolctl")
    return others


def count_inside(monkeypatch, module, names, controllers) -> list:
    """Replace ``module.<name>`` for each of ``names`` by a wrapper that first appends the
    thread counts of ``controllers`` to the returned list, then calls the kernel."""
    counts = []
    for name in names:
        kernel = getattr(module, name)

        def call(*args, kernel=kernel):
            counts.append([ctl.get_num_threads() for ctl in controllers])
            return kernel(*args)

        monkeypatch.setattr(module, name, call)
    return counts
