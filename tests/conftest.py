"""Fixtures shared by every test package: a real redis-server and a local Ray."""

from __future__ import annotations

import os
import tempfile

import pytest

# The ahead-of-time kernel library (lamina.backend.aot) that `lamina warm` builds: the
# tests run without one, as on a fresh machine (their subprocesses too), whatever the
# developer's cache holds; tests/sdk/backend/test_aot.py builds its own.
os.environ["LAMINA_AOT_DIR"] = tempfile.mkdtemp(prefix="lamina-tests-aot-")


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_blas():
    """One BLAS thread for the tests: OpenBLAS's spinning threads slow small GEMMs by
    100x when the two cores are shared with Ray actors and servers the tests start.
    Benchmarks (bench/) measure the default threading."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def redis_server():
    """A real ``redis-server`` on a free loopback port for the whole session."""
    from lamina_service.redis_server import RedisServer

    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server):
    """The session's Redis URL, flushed before each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def ray_local():
    """One shared local Ray (``num_cpus=2``) for the session."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                     [os.path.abspath(p) for p in ("sdk", "services", "worker")])}})
    yield ray
    ray.shutdown()


@pytest.fixture(params=["numpy", "numba"])
def kernels(request):
    """Run a test on the numpy path (the reference) and on the compiled kernels
    (``lamina.backend.compiled``; skipped without numba)."""
    from lamina.backend import compiled

    if request.param == "numba":
        pytest.importorskip("numba")
    with compiled.use_kernels(request.param):
        yield request.param
