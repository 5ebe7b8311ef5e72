"""Fixtures of the SDK tests that several packages use."""

from __future__ import annotations

import os

import pytest

from lamina.backend import blas_threads, threads


@pytest.fixture
def pool_of_two():
    """A worker besides the caller, as outside the tests (tests/conftest.py caps BLAS at
    one thread, which leaves the "auto" policy without workers)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not blas_threads._controller() or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs OpenBLAS through threadpoolctl and two cores")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        threads.set_thread_policy("auto")
        blas_threads.tick(now=float("inf"))
        assert threads.worker_count() == 1
        yield
        threads.set_thread_policy("auto")
