"""Gradient buckets (lamina.distribute.buckets): reduced while backward goes on.

In-process: the autodiff hook reports each gradient once, when final, last layer
first; two ranks (threads with their own shared-memory handles) reduce buckets in
order to the same bytes as one plain exchange; a failed peer, a timeout and a Ctrl-C
in backward end the reducer thread and raise. Replicas (slow): bucketed and
unbucketed two-replica ``fit`` give bit-identical weights, equal to local ``fit``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

import numpy as np
import pytest

import lamina
from lamina import layers, ops
from lamina.backend import blas_threads, threads
from lamina.backend.autodiff import Function, gradient_ready_hook, gradients
from lamina.backend.tensor import Variable
from lamina.distribute import CollectiveAborted, DataParallel, buckets, local, ring, shm

sys.path.insert(0, os.path.dirname(__file__))
import bucket_replica  # noqa: E402  (spawned replicas import it by name)

REDUCER = "lamina-bucket-reducer"


def _reducers():
    return [t for t in threading.enumerate() if t.name == REDUCER and t.is_alive()]


def _no_reducer_within(seconds):
    deadline = time.monotonic() + seconds
    while _reducers() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _reducers()


# -- layout --------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes,cap_mb,offsets,bucket_of,bounds", [
    # last variable first; a bucket closes once it holds >= cap (4 floats here)
    ([(2,), (3,), (4,)], 16 / 2**20, [7, 4, 0], [1, 1, 0], [0, 4, 9]),
    ([(2,), (3,), (4,)], 1.0, [7, 4, 0], [0, 0, 0], [0, 9]),
    ([(5,), (1,)], 16 / 2**20, [1, 0], [0, 0], [0, 6]),  # never an empty last bucket
    ([(2, 2), (8,)], 16 / 2**20, [8, 0], [1, 0], [0, 8, 12]),
])
def test_layout(shapes, cap_mb, offsets, bucket_of, bounds):
    assert buckets.layout(shapes, cap_mb) == (offsets, bucket_of, bounds)


def test_layout_and_strategy_reject_bad_caps(tmp_path):
    with pytest.raises(ValueError, match="Received: cap_mb=0"):
        buckets.layout([(2,)], 0)
    path = shm.create(tmp_path / "c", 1, 8)
    collective = shm.SharedMemoryCollective(path, 0)
    try:
        with pytest.raises(ValueError, match="Received: bucket_cap_mb=-1"):
            DataParallel(collective, bucket_cap_mb=-1)
        assert DataParallel(collective, bucket_cap_mb=0).bucket_cap_mb == 0.0
    finally:
        collective.close()


def test_strategy_reads_the_cap_from_the_environment(tmp_path, monkeypatch):
    path = shm.create(tmp_path / "c", 1, 8)
    collective = shm.SharedMemoryCollective(path, 0)
    try:
        monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", "0.25")
        assert DataParallel(collective).bucket_cap_mb == 0.25
        monkeypatch.delenv("LAMINA_BUCKET_CAP_MB")
        expected = buckets.DEFAULT_CAP_MB if buckets.overlap_pays(collective) else 0.0
        assert DataParallel(collective).bucket_cap_mb == expected
    finally:
        collective.close()


def test_buckets_by_default_only_where_the_overlap_can_pay(tmp_path, monkeypatch):
    """shm's sums are CPU work: buckets need a second core; the ring's waits do not."""
    monkeypatch.delenv("LAMINA_BUCKET_CAP_MB", raising=False)
    path = shm.create(tmp_path / "c", 1, 8)
    collective = shm.SharedMemoryCollective(path, 0)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not blas_threads._controller() or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs OpenBLAS through threadpoolctl and two cores")
    try:
        with threadpoolctl.threadpool_limits(2, user_api="blas"):
            for policy, cores in ((1, 1), ("auto", 2)):  # as a replica of 1 / 2 CPUs
                threads.set_thread_policy(policy)
                blas_threads.tick(now=float("inf"))
                assert threads.worker_count() == cores - 1
                assert buckets.overlap_pays(collective) is (cores == 2)
                assert DataParallel(collective).bucket_cap_mb == (
                    buckets.DEFAULT_CAP_MB if cores == 2 else 0.0)
        assert buckets.overlap_pays(ring.RingCollective) is True  # one core is enough
    finally:
        threads.set_thread_policy("auto")
        collective.close()


# -- the autodiff hook ------------------------------------------------------------------------
def _mlp_variables(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(6, 5), (5,), (5, 4), (4,), (4, 3), (3,)]
    return [Variable(rng.normal(size=s).astype(np.float32)) for s in shapes]


def _mlp_loss(variables, x):
    h = x
    for i in range(0, len(variables), 2):
        h = ops.add(ops.matmul(h, variables[i]), variables[i + 1])
        if i + 2 < len(variables):
            h = ops.relu(h)
    return ops.sum(ops.multiply(h, h))


def test_hook_reports_each_final_gradient_once_last_layer_first():
    variables = _mlp_variables()
    x = np.random.default_rng(1).normal(size=(7, 6)).astype(np.float32)
    expected = gradients(_mlp_loss(variables, x), variables)
    calls = []

    def hook(sources):
        assert list(sources) == variables
        return lambda index, grad: calls.append(
            (index, None if index is None else np.array(grad), grad if index is None else 0))

    with gradient_ready_hook(hook):
        got = gradients(_mlp_loss(variables, x), variables)
    reported = [c[0] for c in calls[:-1]]
    assert calls[-1][0] is None and calls[-1][2] is False  # the walk ended, no error
    assert sorted(reported) == list(range(6))
    assert reported.index(4) < reported.index(2) < reported.index(0)  # last layer first
    for index, grad, _ in calls[:-1]:  # reported values are the final ones
        np.testing.assert_array_equal(grad, expected[index])
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    with gradient_ready_hook(lambda sources: None):  # declined: the plain walk
        for a, b in zip(gradients(_mlp_loss(variables, x), variables), expected):
            np.testing.assert_array_equal(a, b)


class _Interrupt(Function):
    """Identity whose backward is interrupted (a Ctrl-C in the middle of backward)."""

    def forward(self, a):
        return a

    def backward(self, grad):
        raise KeyboardInterrupt


def test_hook_reports_a_failed_walk():
    variables = _mlp_variables()
    x = np.ones((2, 6), np.float32)
    calls = []
    with gradient_ready_hook(lambda sources: lambda i, g: calls.append((i, g))):
        loss = _mlp_loss([_Interrupt.apply(variables[0])] + variables[1:], x)
        with pytest.raises(KeyboardInterrupt):
            gradients(loss, variables)
    assert calls[-1] == (None, True)


# -- two ranks in one process -----------------------------------------------------------------
def _rank_step(path, rank, variables, x, cap_mb, share, out, timeout=30.0, walk=None):
    collective = shm.SharedMemoryCollective(path, rank, timeout=timeout)
    try:
        bucketed = buckets.Buckets(collective, variables, cap_mb)
        out["count"] = bucketed.count
        out["staged"] = collective.staging() is not None
        with gradient_ready_hook(bucketed.hook(share)):
            grads = (walk or gradients)(_mlp_loss(variables, x), variables)
        out["reducer"] = bucketed.thread is not None
        assert bucketed.finish(grads)
        total, _ = collective.exchange(bucketed.last_bucket(), [rank])
        bucketed.store_last(total)
        out["grads"] = [np.array(v) for v in bucketed.views]
        plain = np.concatenate([np.reshape(g, -1) for g in grads])
        total, _ = collective.exchange(plain, scale=share)  # the unbucketed reduction
        out["plain"] = np.array(total[:plain.size])
    except BaseException as exc:  # noqa: BLE001 - checked by the test
        out["error"] = exc
    finally:
        collective.close()


@pytest.mark.parametrize("n", [100, 300_000])  # one-barrier copies; staged in place
def test_two_ranks_reduce_buckets_to_the_bytes_of_one_exchange(tmp_path, n):
    path = shm.create(tmp_path / "c", 2, n)
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(5, 6)).astype(np.float32) for _ in range(2)]
    outs = [{}, {}]
    shares = [np.float32(0.6), np.float32(0.4)]
    threads = [threading.Thread(target=_rank_step, args=(
        path, r, _mlp_variables(), xs[r], 16 / 2**20, shares[r], outs[r])) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    offsets, _, bounds = buckets.layout([v.shape for v in _mlp_variables()], 16 / 2**20)
    assert bounds == [0, 15, 19, 39, 44, 74]
    for out in outs:
        assert "error" not in out, out.get("error")
        assert out["count"] == 5 and out["staged"] == (n > 100_000)
        assert out["reducer"]  # buckets 0-3 were handed over during backward
    expected = []
    for r in (0, 1):
        variables = _mlp_variables()
        grads = gradients(_mlp_loss(variables, xs[r]), variables)
        expected.append([np.multiply(g, shares[r]) for g in grads])
    for i, (a, b) in enumerate(zip(*expected)):
        total = a + b  # rank order
        for out in outs:
            assert out["grads"][i].tobytes() == total.tobytes()
            size = total.size
            plain_at = sum(int(np.prod(v.shape)) for v in _mlp_variables()[:i])
            assert out["plain"][plain_at:plain_at + size].tobytes() == \
                total.reshape(-1).tobytes()
    assert offsets[0] > offsets[-1]  # the last layer leads the buffer
    assert _no_reducer_within(2 * buckets.IDLE_SECONDS + 1)


@pytest.mark.parametrize("fail", [False, True])
def test_on_reduced_gets_each_bucket_but_the_last_and_wait_applied_its_error(tmp_path, fail):
    path = shm.create(tmp_path / "c", 1, 100)
    collective = shm.SharedMemoryCollective(path, 0)
    variables = _mlp_variables()
    calls = []

    def on_reduced(indices, grads, metas):
        calls.append((list(indices), [np.array(g) for g in grads], metas[0, :2].tolist()))
        if fail:
            raise ValueError("the update failed")

    try:
        bucketed = buckets.Buckets(collective, variables, 16 / 2**20)
        with gradient_ready_hook(bucketed.hook(1.0, [0.0, 0.25], on_reduced)):
            grads = gradients(_mlp_loss(variables, np.ones((2, 6), np.float32)), variables)
        with pytest.raises(ValueError, match="the update failed") if fail \
                else contextlib.nullcontext():
            bucketed.finish(grads)
            total, _ = collective.exchange(bucketed.last_bucket())
            bucketed.wait_applied()
        expected = [sorted(m) for m in bucketed._members[:-1]]
        if fail:  # the reducer ends at its first error
            assert [sorted(c[0]) for c in calls] == expected[:1]
            return
        assert [sorted(c[0]) for c in calls] == expected  # last layer's bucket first
        for indices, reduced, meta in calls:
            assert meta == [0.0, 0.25]  # the meta row this rank sent with each bucket
            for i, g in zip(indices, reduced):
                assert g.tobytes() == np.asarray(grads[i], np.float32).tobytes()
    finally:
        bucketed.close()
        collective.close()


def test_a_failed_peer_ends_the_reducer_and_raises(tmp_path):
    path = shm.create(tmp_path / "c", 2, 100)  # rank 1 never comes
    out = {}
    worker = threading.Thread(target=_rank_step, args=(
        path, 0, _mlp_variables(), np.ones((2, 6), np.float32), 16 / 2**20, 1.0, out))
    worker.start()
    # bucket 0's exchange waits for the peer (its 30 s timeout): polled, not a 0.3 s
    # sleep that a loaded machine can outlast before the step reaches its first bucket
    deadline = time.monotonic() + 20
    while not _reducers():
        assert worker.is_alive(), out
        assert time.monotonic() < deadline, "no reducer thread waits for the peer"
        time.sleep(0.01)
    shm.abort(path)  # what the driver does when a replica dies
    worker.join(10)
    assert not worker.is_alive()
    assert isinstance(out.get("error"), CollectiveAborted)
    assert _no_reducer_within(2)


def test_a_timeout_in_a_bucket_raises_from_finish(tmp_path):
    path = shm.create(tmp_path / "c", 2, 100)
    out = {}
    _rank_step(path, 0, _mlp_variables(), np.ones((2, 6), np.float32), 16 / 2**20, 1.0,
               out, timeout=0.3)
    assert isinstance(out.get("error"), TimeoutError)
    assert _no_reducer_within(2)


def test_ctrl_c_in_backward_aborts_the_bucket_in_flight(tmp_path):
    path = shm.create(tmp_path / "c", 2, 100)
    out = {}

    def walk(loss, variables):  # the first layer interrupted, once buckets 0-3 are out
        return gradients(_mlp_loss([_Interrupt.apply(variables[0])] + variables[1:],
                                   np.ones((2, 6), np.float32)), variables)

    _rank_step(path, 0, _mlp_variables(), np.ones((2, 6), np.float32), 16 / 2**20, 1.0,
               out, walk=walk)
    assert isinstance(out.get("error"), KeyboardInterrupt)
    assert _no_reducer_within(2)
    collective = shm.SharedMemoryCollective(path, 1)
    try:  # the group was aborted: the peer's next exchange fails instead of waiting
        with pytest.raises(CollectiveAborted):
            collective.exchange(None)
    finally:
        collective.close()


# -- replicas ---------------------------------------------------------------------------------
COMPILE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
           "metrics": ["accuracy"]}


@pytest.mark.slow
@pytest.mark.parametrize("n", [0, 200_000])  # one-barrier copies; staged in place
def test_bucketed_replicas_equal_unbucketed_and_local_fit(monkeypatch, n):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    x = rng.normal(size=(60, 12)).astype(np.float32) + y[:, None]
    model = lamina.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"),
                               layers.Dropout(0.3), layers.Dense(8, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    size = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fit = {"batch_size": 20, "epochs": 3, "shuffle": True}
    runs = {}
    # (bucket cap MB (~13 floats a bucket, or off), overlapped update, shared update)
    configs = [("0", "0", "0"), ("0.00005", "0", "0"), ("0.00005", "1", "0"),
               ("0.00005", "0", "1"), ("0", "0", "1")]
    for config in configs:
        for name, value in zip(("LAMINA_BUCKET_CAP_MB", "LAMINA_OVERLAP_UPDATE",
                                "LAMINA_SHARED_UPDATE"), config):
            monkeypatch.setenv(name, value)
        runs[config] = local.launch(bucket_replica.fit_and_count, 2, model.to_json(),
                                    COMPILE, 5, x, y, fit, n=max(n, size))
    off, bucketed, overlapped, shared, shared_plain = (runs[c] for c in configs)
    assert [r["buckets"] for r in bucketed] == [4, 4]
    assert [r["staged"] for r in bucketed] == [n > 0] * 2
    assert [r["buckets"] for r in off] == [0, 0]
    # 3 of the 4 buckets are updated while the last one is exchanged, in every step
    # but the first (the optimizer is built by its first apply)
    assert [r["pieces"] for r in overlapped] == [3 * (3 * 3 - 1)] * 2
    assert [r["pieces"] for r in bucketed + shared] == [0] * 4
    assert [r["shared_steps"] for r in shared + shared_plain] == [3 * 3 - 1] * 4
    # large exchanges update inside the last one (no barrier of their own)
    assert [r["merged_steps"] for r in shared + shared_plain] == [(3 * 3 - 1) * (n > 0)] * 4
    assert [r["shared_steps"] for r in off + bucketed + overlapped] == [0] * 6
    # The control exchanges that end each epoch carry meta rows only: they leave the
    # last gradient exchange's sums in place (zeroed and summed before: ~0.5 ms a rank
    # for the MLP's 2.7 MB, three times an epoch).
    assert all(r["sums_left"] > 0 for r in off + shared_plain), \
        [r["sums_left"] for r in off + shared_plain]
    single = local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    bucket_replica.assert_same_weights(
        off[0]["weights"], off + bucketed + overlapped + shared + shared_plain,
        single["weights"])


@pytest.mark.slow
def test_pieces_of_the_update_use_the_chiefs_learning_rate(monkeypatch):
    """The chief changes the learning rate after every batch; a replica's pieces of the
    next update (applied before the step's last exchange), or its range of the shared
    update, use the new rate."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 60)
    x = rng.normal(size=(60, 12)).astype(np.float32) + y[:, None]
    model = lamina.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", "0.00005")
    runs = []
    for overlap, shared in (("0", "0"), ("1", "0"), ("0", "1")):
        monkeypatch.setenv("LAMINA_OVERLAP_UPDATE", overlap)
        monkeypatch.setenv("LAMINA_SHARED_UPDATE", shared)
        runs.append(local.launch(bucket_replica.fit_with_chief_lr_changes, 2,
                                 model.to_json(), COMPILE, x, y,
                                 {"batch_size": 20, "epochs": 2}, n=300))
    assert [r["pieces"] for r in runs[0] + runs[2]] == [0] * 4
    assert [r["pieces"] for r in runs[1]] == [2 * (3 * 2 - 1)] * 2  # 2 of 3, unbuilt 1st
    bucket_replica.assert_same_weights(runs[0][0]["weights"], runs[0] + runs[1] + runs[2])


@pytest.mark.slow
@pytest.mark.parametrize("abort", [False, True])
def test_the_chiefs_stop_or_abort_meets_a_bucket(monkeypatch, abort):
    """The chief's control exchange pairs with a peer's first bucket: the peer skips
    the update (stop) or raises (abort), and no rank waits for another."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 100)
    x = rng.normal(size=(100, 12)).astype(np.float32) + y[:, None]
    model = lamina.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", "0.00005")
    monkeypatch.setenv("LAMINA_OVERLAP_UPDATE", "1")  # a stop meets the first piece
    for n, shared in ((0, "0"), (200_000, "0"), (200_000, "1")):
        monkeypatch.setenv("LAMINA_SHARED_UPDATE", shared)
        results = local.launch(bucket_replica.fit_until_the_chief_stops, 2, model.to_json(),
                               COMPILE, x, y, {"batch_size": 20, "epochs": 3}, 2, abort,
                               n=max(n, 300), timeout=60)
        assert [r["buckets"] for r in results] == [3, 3]
        assert [r["aborted"] for r in results] == [abort, abort]
        assert [r["iterations"] for r in results] == [3, 3]  # batches 0-2, then it ends
        bucket_replica.assert_same_weights(results[0]["weights"], results[1:])
