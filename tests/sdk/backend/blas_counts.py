"""Shared by the kernel and BLAS tests: the thread counts of the process's other OpenBLAS
(scipy's, which numba's ``np.dot`` calls) seen inside every call of a compiled kernel, and
numpy's OpenBLAS under a given ``OPENBLAS_CORETYPE``."""

from __future__ import annotations

import os

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


def numpys_wheel_openblas_or_skip():
    """threadpoolctl's controller of numpy's OpenBLAS when it is the wheel's (which reads
    ``OPENBLAS_CORETYPE`` when numpy loads it); the test is skipped otherwise."""
    ctl = blas_threads._controller()
    if not ctl or "numpy.libs" not in ctl.filepath:
        pytest.skip("numpy's BLAS is not the wheel's OpenBLAS (which reads the variable)")
    return ctl


def environ_with_coretype(coretype: str | None) -> dict:
    """This process's environment with ``OPENBLAS_CORETYPE`` set to ``coretype`` (None:
    removed), for a fresh process: OpenBLAS reads it only when it is loaded."""
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype:
        environ["OPENBLAS_CORETYPE"] = coretype
    return environ
