"""Fixtures of the thread-pool tests (test_threads.py, test_parallel_gemm.py,
test_blas_threads.py); ``pool_of_two`` is in tests/sdk/conftest.py."""

from __future__ import annotations

import pytest

from lamina.backend import blas_threads


@pytest.fixture
def auto_policy():
    """The thread policy at its default, before and after the test (a test may set it)."""
    blas_threads.set_thread_policy("auto")
    yield
    blas_threads.set_thread_policy("auto")
