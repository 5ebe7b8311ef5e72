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

from lamina.backend import blas_threads, gemm, parallel, threads
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



def _spin_kernels():
    pytest.importorskip("numba")
    if not threads.spin_enabled():
        pytest.skip("the pool spins only on Linux with compiled kernels enabled")
    from lamina.backend import spin_kernels

    return spin_kernels


def test_a_spin_lets_go_of_the_gil_and_sees_another_threads_store():
    """The setter below is Python: it runs only if the spin does not hold the GIL, and the
    spin returns only if it loads the word again each turn (else ~10 s of turns)."""
    spin = _spin_kernels()
    word = np.zeros(1, np.int64)
    assert spin.spin_while(word, 0, 50, 0) == 0  # nothing changes: all turns, then 0
    setter = threading.Timer(0.02, lambda: word.__setitem__(0, 7))
    setter.start()
    start = time.monotonic()
    assert spin.spin_while(word, 0, 10**7, 3) == 7
    assert time.monotonic() - start < 5.0
    setter.join()
    cell = np.zeros(1, np.int64)
    assert spin.store_then_spin(cell, 5, word, 7, 10, 0) == 7 and cell[0] == 5
    assert spin.store_then_spin(cell, 6, word, 0, 10, 0) == 7 and cell[0] == 6


def test_a_spinning_pool_runs_every_part_once_after_short_and_long_gaps(pool_of_two,
                                                                        monkeypatch):
    """Jobs 0-3 ms apart: the worker sees some posted while it spins (short gaps), takes
    others from its queue after it went to sleep (long gaps); each part runs once, on
    either thread, with the same bits, and a pooled product has the bits of one call."""
    _spin_kernels()
    # Pooled every time, whatever the load (what goes solo when is tested above).
    monkeypatch.setattr(threads, "_prefer_pool", lambda stats: True)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 300)).astype(np.float32)
    b = rng.standard_normal((300, 512)).astype(np.float32)
    one = gemm.matmul(a, b)  # the GEMM in force
    by_parts = np.concatenate([a[32 * i:32 * (i + 1)] @ b for i in range(8)])
    for round_ in range(60):
        time.sleep(0 if round_ % 2 else 0.003)
        threads._state["solo_until"] = 0.0
        ran = np.zeros(8, np.int64)
        out = np.empty_like(one)

        def part(i, ran=ran, out=out):  # ~0.1 ms of BLAS (no GIL) each
            rows = slice(32 * i, 32 * (i + 1))
            np.matmul(a[rows], b, out=out[rows])
            ran[i] += 1

        threads.parallel_for(8, part, site="spin-test")
        np.testing.assert_array_equal(ran, 1)
        assert out.tobytes() == by_parts.tobytes()  # whichever thread ran a part
        assert parallel.matmul(a, b).tobytes() == one.tobytes()
    stats = threads.pool_stats()
    assert stats["spin"] is True
    # Both ways of taking a job were taken (whether the worker then still found a part
    # to claim depends on the load: next to a busy process the caller often runs all).
    assert stats["caught_spinning"] > 0 and stats["woken_from_queue"] > 0, stats


def test_the_switch_off_gives_a_pool_that_sleeps(pool_of_two, monkeypatch):
    monkeypatch.setenv("LAMINA_POOL_SPIN", "off")
    threads.set_thread_policy("auto")  # (a new policy starts a new pool)
    blas_threads.tick(now=float("inf"))
    seen = np.zeros(4, np.int64)
    threads.parallel_for(4, lambda i: seen.__setitem__(i, seen[i] + 1))
    np.testing.assert_array_equal(seen, 1)
    assert threads.pool_stats()["spin"] is False
