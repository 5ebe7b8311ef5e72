"""Lamina's thread pool: fixed parts, bit-identical results, stalls, fork, Ctrl-C."""

from __future__ import annotations

import functools
import gc
import multiprocessing
import threading
import time
import weakref

import numpy as np
import pytest

from lamina.backend import parallel, threads
from tests.sdk.backend.interrupt import interrupt_fit

pytest.importorskip("threadpoolctl")


pytestmark = pytest.mark.usefixtures("auto_policy")


@pytest.mark.parametrize("m, k, n", [(128, 784, 512), (784, 128, 512), (3, 5, 2), (300, 7, 9000)])
def test_matmul_is_bit_identical_whatever_the_threads(m, k, n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    pooled = parallel.matmul(a, b)
    threads.set_thread_policy(1)
    serial = parallel.matmul(a, b)
    assert pooled.tobytes() == serial.tobytes()
    np.testing.assert_allclose(pooled, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    # Transposed views (a kernel gradient's x.T @ g) take the same path.
    np.testing.assert_allclose(parallel.matmul(b.T, a.T), (a @ b).T, rtol=1e-4, atol=1e-4)


def test_dot_folds_leading_axes_and_keeps_dtype():
    a = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    b = np.arange(4 * 5, dtype=np.float32).reshape(4, 5)
    out = parallel.dot(a, b)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, a @ b)


def test_parallel_for_runs_each_part_once_and_reraises():
    seen = np.zeros(37, np.int64)

    def part(i):
        seen[i] += 1

    threads.parallel_for(37, part)
    np.testing.assert_array_equal(seen, 1)

    def fails(i):
        if i == 5:
            raise ZeroDivisionError(f"part {i}")

    with pytest.raises(ZeroDivisionError, match="part 5"):
        threads.parallel_for(8, fails)
    threads.parallel_for(37, part)  # the pool still works afterwards
    np.testing.assert_array_equal(seen, 2)


def test_elementwise_covers_every_element():
    x = np.arange(3 * parallel.PART_ELEMENTS + 11, dtype=np.float32)
    y = np.empty_like(x)

    def double(lo, hi):
        np.multiply(x[lo:hi], 2, out=y[lo:hi])

    parallel.elementwise(double, x.size)
    np.testing.assert_array_equal(y, x * 2)


def _child_matmul(conn):
    a = np.ones((256, 512), np.float32)
    conn.send(float(parallel.matmul(a, a.T)[0, 0]))
    conn.close()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_after_the_pool_started():
    threads.parallel_for(4, lambda i: None)
    assert threads._state["pool"] is not None or threads.worker_count() == 0
    assert _in_forked_child(_child_matmul) == 512.0


def _in_forked_child(target):
    """What ``target(conn)`` sends from a forked child (which must exit cleanly)."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child,))
    proc.start()
    assert parent.poll(30), "the forked child hung"
    value = parent.recv()
    proc.join(10)
    assert proc.exitcode == 0
    return value


@pytest.mark.slow
def test_ctrl_c_during_fit_stops_cleanly():
    code, out = interrupt_fit(
        (256,), 'lamina.layers.Dense(1024, "relu"), lamina.layers.Dense(10)', 4096)
    assert code == 3
    assert "interrupted" in out


def test_flat_optimizer_update_in_parts_is_bit_identical():
    import lamina

    class WholeBufferAdam(lamina.optimizers.Adam):
        def update_step(self, gradient, variable, learning_rate):  # not split: one part
            super().update_step(gradient, variable, learning_rate)

    rng = np.random.default_rng(1)
    shapes = [(784, 512), (512,), (512, 10)]
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    results = []
    for cls in (lamina.optimizers.Adam, WholeBufferAdam):
        variables = [lamina.Variable(v.copy()) for v in values]
        opt = cls(learning_rate=0.01)
        for step in range(3):
            grads = [np.sin(v * (step + 1)).astype(np.float32) for v in values]
            opt.apply(grads, variables)
        results.append([np.asarray(v.numpy()).tobytes() for v in variables])
        if cls is lamina.optimizers.Adam:
            assert len(opt._parts_cache) == 1 and len(next(iter(opt._parts_cache.values()))[1]) > 1
    assert results[0] == results[1]


def _train_convnet(policy):
    import lamina

    threads.set_thread_policy(policy)
    lamina.utils.set_random_seed(7)
    model = lamina.Sequential([
        lamina.Input((28, 28, 1)), lamina.layers.Conv2D(32, 3, activation="relu"),
        lamina.layers.MaxPooling2D(2), lamina.layers.Conv2D(64, 3, activation="relu"),
        lamina.layers.MaxPooling2D(2), lamina.layers.Flatten(),
        lamina.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    model.fit(x, y, batch_size=128, epochs=1, verbose=0, shuffle=False)
    return [w.tobytes() for w in model.get_weights()]


def test_seeded_convnet_training_is_bit_identical_with_and_without_workers(pool_of_two):
    with_worker = _train_convnet("auto")
    assert threads.worker_count() == 1
    assert with_worker == _train_convnet(1)


def _run_site(parts, n=2):
    """One job of a call site; returns the names of the threads that ran its parts."""
    ran = [None] * n

    def part(i):
        ran[i] = threading.current_thread().name
        parts(i)

    threads.parallel_for(n, part, site="test-site")
    return ran


def test_a_call_site_slower_on_the_pool_runs_alone_and_probes_the_pool(pool_of_two,
                                                                        monkeypatch):
    monkeypatch.setattr(threads, "PROBE_EVERY", 4)
    monkeypatch.setattr(threads, "STALL_SECONDS", 60.0)  # no back-off: only the timings

    def parts(i):  # a worker's part waits 40 ms (as if it shared its core); the caller's not
        if threading.current_thread().name.startswith("lamina-worker"):
            time.sleep(0.04)
        elif i == 0:
            time.sleep(0.01)  # time for the worker to claim part 1

    runs = [_run_site(parts) for _ in range(16)]
    stats = threads._sites["test-site"]
    assert stats[2] < stats[1]  # solo faster
    assert threads.pool_stats()["solo_sites"] == 1
    caller = threading.current_thread().name
    solo = [i for i, ran in enumerate(runs, 1) if ran == [caller, caller]]
    assert set(range(5, 17)) - {8, 12, 16} <= set(solo)  # alone, except the probes
    assert all(None not in ran for ran in runs)  # every part ran, once per job


def test_a_call_site_faster_on_the_pool_stays_pooled_with_solo_probes(pool_of_two,
                                                                      monkeypatch):
    monkeypatch.setattr(threads, "PROBE_EVERY", 4)
    monkeypatch.setattr(threads, "STALL_SECONDS", 60.0)
    caller = threading.current_thread().name
    runs = [_run_site(lambda i: time.sleep(0.01)) for _ in range(12)]
    stats = threads._sites["test-site"]
    assert stats[1] < stats[2]  # pooled faster
    assert threads.pool_stats()["solo_sites"] == 0
    assert [runs[i - 1] for i in (4, 8, 12)] == [[caller, caller]] * 3  # the probes
    assert any(ran[1] != caller for i, ran in enumerate(runs, 1) if i % 4)
    threads.set_thread_policy("auto")  # a policy change forgets the timings
    assert "test-site" not in threads._sites


def test_call_site_averages_resist_one_outlier_and_need_a_margin_to_go_alone():
    stats = [1, 600e-6, 720e-6]  # pooled 600 us, alone 720 us
    threads._note_time(stats, 1, 0.05)  # one 50 ms outlier (a page fault burst, GC)
    assert stats[1] == pytest.approx(750e-6)  # counted as 2x the average, not 50 ms
    assert threads._prefer_pool(stats)  # 720 us alone is not 5% faster than 750 us
    threads._note_time(stats, 2, 600e-6)
    threads._note_time(stats, 2, 600e-6)
    assert stats[2] < (1 - threads.SOLO_MARGIN) * stats[1] and not threads._prefer_pool(stats)
    stats[0] = threads.PROBE_EVERY  # a probe runs the other way
    assert threads._prefer_pool(stats)


def test_call_site_table_keeps_no_callable_alive(pool_of_two):
    class Part:  # a callable without __code__: its call site is its type
        def __call__(self, i):
            time.sleep(0.002)  # the worker takes a part, and is done with the job after

    part = Part()
    ref = weakref.ref(part)
    threads.parallel_for(2, functools.partial(part))
    threads.parallel_for(2, part)
    assert (Part, 2) in threads._sites
    del part
    time.sleep(0.05)  # the worker has gone back to waiting for the next job
    gc.collect()
    assert ref() is None


def _overflow_on_a_worker(threads_seen):
    """A job whose part 1 overflows a float32 square on a pool worker (part 0, the
    caller's, waits for it), under whatever numpy error handling the caller has."""
    ready = threading.Event()

    def part(i):
        if i == 0:
            assert ready.wait(5), "no worker ran part 1"
            return
        threads_seen.append(threading.current_thread().name)
        try:
            np.square(np.full(4, 1e30, np.float32))
        finally:
            ready.set()

    threads.parallel_for(2, part, site="overflow-site")


def test_workers_run_parts_under_the_callers_numpy_error_handling(pool_of_two):
    seen = []
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        _overflow_on_a_worker(seen)
    with np.errstate(all="ignore"):  # quiet (pytest turns warnings into errors here)
        _overflow_on_a_worker(seen)
    with pytest.warns(RuntimeWarning, match="overflow"):
        _overflow_on_a_worker(seen)
    assert len(seen) == 3 and all(name.startswith("lamina-worker") for name in seen)
    assert np.geterr()["over"] == "warn"  # the caller's own state is untouched

