"""GEMMs cut into parts (backend.parallel, backend.nn.Dense) and the pool under load."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lamina.backend import blas_threads, gemm, nn, parallel, threads

threadpoolctl = pytest.importorskip("threadpoolctl")


pytestmark = pytest.mark.usefixtures("auto_policy")


@pytest.fixture(autouse=True, params=["blas", "lamina"])
def gemm_choice(request):
    """Every test with numpy's BLAS and with Lamina's kernel (where it runs)."""
    if request.param == "lamina" and gemm.kernel() is None:
        pytest.skip(f"Lamina's GEMM kernel cannot run here: {gemm._why_not()}")
    with gemm.use_gemm(request.param):
        yield request.param


def _one_call(a, b):
    """The product in one call of the GEMM in force (BLAS on one thread, as in the pool)."""
    blas_threads.tick(now=float("inf"))
    return gemm.matmul_into(a, b, np.empty((a.shape[0], b.shape[1]), np.result_type(a, b)))


def _exact_cuts(a, b):
    return (True, True) if gemm.uses_kernel(a, b) else parallel.exact_cuts(a.dtype)


@pytest.mark.parametrize("length, parts, align", [(128, 4, 12), (37, 4, 12), (10, 4, 16),
                                                  (512, 2, 16), (25, 2, 12), (1, 3, 12)])
def test_aligned_split_covers_the_range_at_aligned_cuts(length, parts, align):
    ranges = parallel.aligned_split(length, parts, align)
    assert ranges[0][0] == 0 and ranges[-1][1] == length
    assert all(hi == lo for (_, hi), (lo, _) in zip(ranges, ranges[1:]))
    assert len(ranges) <= parts
    assert all(lo % align == 0 for lo, _ in ranges)
    assert all(hi - lo >= min(align, length) for lo, hi in ranges)


@pytest.mark.parametrize("m, k, n", [(128, 784, 512), (128, 512, 784), (784, 128, 512),
                                     (37, 1000, 999), (300, 7, 9000), (24, 4096, 256)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_product_has_the_bits_of_one_call(m, k, n, dtype):
    rng = np.random.default_rng(m + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k)).astype(dtype).T  # a transposed view, as W.T
    one = _one_call(a, b)
    rows_exact, cols_exact = _exact_cuts(a, b)
    kernel = gemm.uses_kernel(a, b)
    for axis, exact in ((0, rows_exact), (1, cols_exact)):
        if not exact:
            continue
        out = np.empty_like(one)
        align = parallel.ROW_ALIGN if axis == 0 else parallel.COL_ALIGN
        parts = parallel.gemm_parts(m, k, n)
        assert parts > 1
        for lo, hi in parallel.aligned_split(one.shape[axis], parts, align):
            if axis == 0:
                gemm.matmul_into(a[lo:hi], b, out[lo:hi], kernel)
            else:
                gemm.matmul_into(a, b[:, lo:hi], out[:, lo:hi], kernel)
        assert out.tobytes() == one.tobytes(), f"axis {axis}"
    if rows_exact or cols_exact:
        assert parallel.matmul(a, b).tobytes() == one.tobytes()
    np.testing.assert_allclose(parallel.matmul(a, b), a.astype(np.float64) @ b,
                               rtol=1e-3, atol=1e-3)


def test_openblas_x86_kernels_cut_rows_exactly():
    # OpenBLAS's SkylakeX and Haswell sgemm kernels both pass (Haswell: not columns); a
    # BLAS for which the probe fails gets shape-fixed parts, as the threads tests cover.
    ctl = blas_threads._controller()
    arch = ctl.info().get("architecture") if ctl else None
    if arch not in ("SkylakeX", "Haswell"):
        pytest.skip(f"OpenBLAS kernel {arch!r} not probed here")
    assert parallel.exact_cuts(np.float32)[0]
    assert parallel.exact_cuts(np.float64)[0]


@pytest.mark.parametrize("cls", [nn.Dense, nn.ReluDense])
@pytest.mark.parametrize("shape", [(128, 784), (4, 32, 512)])
def test_dense_parts_have_the_bits_of_plain_numpy(cls, shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = rng.standard_normal((shape[-1], 512)).astype(np.float32) * 0.05
    bias = rng.standard_normal(512).astype(np.float32)
    g = rng.standard_normal((*shape[:-1], 512)).astype(np.float32)
    ctx = cls()
    ctx.needs = (True, True, True)
    out = ctx.forward(x, kernel, bias)
    gx, gk, gb = ctx.backward(g)

    x2 = x.reshape(-1, shape[-1])
    if not any(_exact_cuts(x2, kernel)):
        pytest.skip("this BLAS gives split products other bits than one call")
    ref = _one_call(x2, kernel).reshape(out.shape)
    ref += bias
    if cls is nn.ReluDense:
        np.maximum(ref, 0, out=ref)
        g = g * (ref > 0)
    g2 = g.reshape(-1, 512)
    assert out.tobytes() == ref.tobytes()
    assert gx.tobytes() == _one_call(g2, kernel.T).reshape(gx.shape).tobytes()
    assert gk.tobytes() == _one_call(x2.T, g2).tobytes()
    assert gb.tobytes() == g2.sum(axis=0).tobytes()


def test_dense_skips_gradients_nobody_needs():
    ctx = nn.Dense()
    ctx.needs = (False, True, False)
    x = np.ones((256, 300), np.float32)
    ctx.forward(x, np.ones((300, 400), np.float32), np.zeros(400, np.float32))
    gx, gk, gb = ctx.backward(np.ones((256, 400), np.float32))
    assert gx is None and gb is None
    np.testing.assert_array_equal(gk, np.full((300, 400), 256, np.float32))


def test_small_task_sets_run_in_order_on_the_caller(pool_of_two, monkeypatch):
    handed = []
    monkeypatch.setattr(parallel, "parallel_for",
                        lambda n, fn, site=None: handed.append(n) or [fn(i) for i in range(n)])
    order = []
    tasks = [lambda i=i: order.append((i, threading.current_thread().name)) for i in range(3)]
    parallel.run_tasks(tasks, flops=parallel.PART_FLOPS - 1)
    assert handed == [] and [i for i, _ in order] == [0, 1, 2]
    assert {name for _, name in order} == {threading.current_thread().name}
    parallel.run_tasks(tasks, flops=parallel.PART_FLOPS)
    parallel.run_tasks(tasks)
    assert handed == [3, 3]
    # Dense's gradients of a 512 -> 10 layer on a batch of 128 are such a small set.
    ctx = nn.Dense()
    ctx.needs = (True, True, True)
    rng = np.random.default_rng(1)
    x, kernel = rng.standard_normal((128, 512), np.float32), rng.standard_normal((512, 10),
                                                                                 np.float32)
    ctx.forward(x, kernel, np.zeros(10, np.float32))
    g = rng.standard_normal((128, 10), np.float32)
    gx, gk, gb = ctx.backward(g)
    assert handed == [3, 3]
    assert gx.tobytes() == _one_call(g, kernel.T).tobytes()
    assert gk.tobytes() == _one_call(x.T, g).tobytes()
    assert gb.tobytes() == g.sum(axis=0).tobytes()


def test_a_stalled_worker_sends_the_pool_solo_and_results_stay_the_same(pool_of_two,
                                                                        monkeypatch):
    monkeypatch.setattr(threads, "BACKOFF_START", 30.0)  # solo outlasts a busy machine
    ran_on = {}

    def part(i):
        name = threading.current_thread().name
        ran_on[i] = name
        if name.startswith("lamina-worker"):
            time.sleep(0.03)  # a worker descheduled in the middle of its part
        elif i == 0:
            time.sleep(0.002)  # time for the worker to wake up and claim part 1

    before = threads.pool_stats()["stalls"]
    for _ in range(20):  # until the worker claims a part (it usually does at once)
        ran_on.clear()
        threads.parallel_for(2, part)
        if threads.pool_stats()["stalls"] > before:
            break
    assert threads.pool_stats()["stalls"] == before + 1
    assert threads.pool_stats()["solo"] and threads.active_threads() == 1
    ran_on.clear()
    threads.parallel_for(4, part)
    assert set(ran_on.values()) == {threading.current_thread().name}
    assert sorted(ran_on) == [0, 1, 2, 3]
    # Solo GEMMs are one call: the same bits as the pooled parts.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 512)).astype(np.float32)
    b = rng.standard_normal((512, 512)).astype(np.float32)
    solo = parallel.matmul(a, b)
    assert len(parallel.matmul_tasks(a, b, np.empty((256, 512), np.float32))) == 1
    threads.set_thread_policy("auto")  # also ends the solo period
    assert not threads.pool_stats()["solo"]
    if any(parallel.exact_cuts(np.float32)):
        assert parallel.matmul(a, b).tobytes() == solo.tobytes()


def test_a_quick_worker_is_not_a_stall(pool_of_two):
    before = threads.pool_stats()["stalls"]
    threads.parallel_for(4, lambda i: None)
    assert threads.pool_stats()["stalls"] == before


def test_backoff_doubles_with_stalls_and_decays_when_quiet():
    state = threads._state
    saved = {key: state[key] for key in ("backoff", "last_stall", "solo_until", "stalls")}
    try:
        state["backoff"], state["last_stall"] = threads.BACKOFF_START, float("-inf")
        # the solo period from the stall's own clock reading (solo_until - last_stall),
        # not from a later time.monotonic(): a test descheduled for 50 ms in between
        # would read the second period as the first
        threads._note_wait(waited=0.01, lost=0.01)
        first = state["solo_until"] - state["last_stall"]
        threads._note_wait(waited=0.01, lost=0.01)
        second = state["solo_until"] - state["last_stall"]
        assert first == pytest.approx(threads.BACKOFF_START)
        assert second == pytest.approx(2 * threads.BACKOFF_START)
        threads._note_wait(waited=0.005, lost=0.0002)  # the worker was on the CPU: no stall
        threads._note_wait(waited=0.0005, lost=0.005)  # the caller hardly waited: no stall
        assert state["stalls"] == saved["stalls"] + 2
        state["last_stall"] -= 5.0  # five quiet seconds
        threads._note_wait(waited=0.01, lost=0.01)
        assert state["solo_until"] - state["last_stall"] == pytest.approx(threads.BACKOFF_START)
    finally:
        state.update(saved)


def _train_mlp(policy):
    import lamina

    threads.set_thread_policy(policy)
    if policy == "auto":
        blas_threads.tick(now=float("inf"))
    lamina.utils.set_random_seed(11)
    model = lamina.Sequential([
        lamina.Input((96,)), lamina.layers.Dense(512, activation="relu"),
        lamina.layers.Dropout(0.2), lamina.layers.Dense(384, activation="relu"),
        lamina.layers.Dropout(0.2), lamina.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((512, 96), dtype=np.float32)
    y = rng.integers(0, 10, 512)
    model.fit(x, y, batch_size=128, epochs=2, verbose=0)
    return [w.tobytes() for w in model.get_weights()]


def test_seeded_mlp_training_is_bit_identical_with_a_worker_and_without(pool_of_two):
    pooled = _train_mlp("auto")
    assert threads.pool_stats()["workers"] == 1
    assert pooled == _train_mlp(1)  # one thread: one BLAS call per GEMM, Adam in one go


def test_seeded_mlp_training_is_bit_identical_when_call_sites_switch_pooled_and_alone(
        pool_of_two, monkeypatch):
    monkeypatch.setattr(threads, "PROBE_EVERY", 2)  # every other job runs the other way
    # and no stall sends the whole process solo for a while (on a loaded machine every
    # job could then run alone: CI once saw no site run both ways)
    monkeypatch.setattr(threads, "STALL_SECONDS", float("inf"))
    switching = _train_mlp("auto")
    assert any(stats[1] is not None and stats[2] is not None
               for stats in threads._sites.values())  # jobs ran both ways
    assert switching == _train_mlp(1)


def _child_parts(conn):
    seen = []
    threads.parallel_for(4, lambda i: seen.append(threading.current_thread().name))
    a = np.ones((256, 512), np.float32)
    conn.send((float(parallel.matmul(a, a.T)[0, 0]), len(seen), threads.pool_stats()["workers"]))
    conn.close()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_with_a_running_worker(pool_of_two):
    import multiprocessing

    names = set()
    for _ in range(50):  # until the worker has taken a part: the pool is running
        threads.parallel_for(8, lambda i: (time.sleep(0.001),
                                           names.add(threading.current_thread().name)))
        if len(names) > 1:
            break
    assert len(names) > 1
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child_parts, args=(child,))
    proc.start()
    assert parent.poll(30), "the forked child hung"
    assert parent.recv() == (512.0, 4, 1)
    proc.join(10)
    assert proc.exitcode == 0


def test_an_idle_worker_holds_no_finished_job(pool_of_two):
    import gc
    import weakref

    class Payload:
        pass

    payload = Payload()
    ref = weakref.ref(payload)
    ran_on = set()

    def part(i, held=payload):
        ran_on.add(threading.current_thread().name)
        time.sleep(0.002)

    for _ in range(50):  # until the worker has run a part of the job
        threads.parallel_for(4, part)
        if len(ran_on) > 1:
            break
    assert len(ran_on) > 1
    del part, payload
    # the worker lets go of the job once it is back to waiting for the next one: polled
    # (a loaded machine can keep it off the CPU past any fixed sleep), never released
    # fails after 30 s
    deadline = time.monotonic() + 30
    while True:
        gc.collect()
        if ref() is None:
            break
        assert time.monotonic() < deadline, "an idle worker still holds the finished job"
        time.sleep(0.01)
