"""Claimed blocks of the shared-memory collective (lamina.distribute.shm).

The block plan: cuts at variable bounds and every ``BLOCK`` floats, small pieces
merged. In the collective (ranks as threads): every block is summed in rank order and
updated by exactly one rank; a rank that arrives first takes the blocks a late peer
already landed, before the peer arrives; a peer in an ordinary exchange (the chief's
control exchange) gets no block summed or updated, and the next exchange still meets.
Replicas (slow): two-replica ``fit`` with claims on equals claims off bit for bit and
local ``fit``; the chief's stop or abort meets a claimed exchange.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.distribute import local, shm

sys.path.insert(0, str(Path(__file__).parent))
import bucket_replica  # noqa: E402 - a spawned replica imports its function by name

N = 200_000  # the replicas' collective: 2 ranks * 4 * N > 1 MB, large exchanges
COMPILE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
           "metrics": ["accuracy"]}


def test_blocks_cut_at_variables_and_merge_small_pieces():
    # A kernel of 2.5 blocks and its bias, a small kernel and bias, 100 floats spare.
    block = shm.BLOCK
    sizes = [block * 5 // 2, 64, 3000, 10]
    n = sum(sizes) + 100
    bounds = shm.block_bounds(sizes, n)
    assert bounds == [0, block, 2 * block, n]  # the half block and all after it merged
    assert shm.block_bounds([block, block], 2 * block) == [0, block, 2 * block]
    assert shm.block_bounds([10, 20], 30) == [0, 30]  # one small block
    assert shm.block_bounds([], 7) == [0, 7]
    assert shm.block_bounds([shm.MIN_BLOCK - 1, block], block + shm.MIN_BLOCK + 5) == \
        [0, block + shm.MIN_BLOCK + 5]  # a small first piece joins the next
    with pytest.raises(ValueError, match="more than n=5"):
        shm.block_bounds([4, 4], 5)


def test_plan_blocks_names_bad_bounds_and_needs_a_large_vector(tmp_path):
    n = 200_000  # 2 ranks * 4 * n > 1 MB: large exchanges
    path = shm.create(tmp_path / "c", 2, n, claims=True)
    collective = shm.SharedMemoryCollective(path, 0)
    assert collective.plan_blocks([0, 100_000, n]) and collective.claimed
    with pytest.raises(ValueError, match="rise strictly from 0 to n=200000"):
        collective.plan_blocks([0, 5, 5, n])
    with pytest.raises(ValueError, match="rise strictly"):
        collective.plan_blocks([0, n - 1])
    assert not collective.plan_blocks(list(range(0, n, 64)) + [n])  # more than it holds
    collective.close()
    small = shm.create(tmp_path / "s", 2, 1000, claims=True)  # one-barrier exchanges
    collective = shm.SharedMemoryCollective(small, 1)
    assert not collective.plan_blocks([0, 1000]) and not collective.claimed
    collective.close()


def test_the_file_decides_and_the_environment_sets_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("LAMINA_CLAIMED_BLOCKS", "0")
    off = shm.SharedMemoryCollective(shm.create(tmp_path / "a", 2, 200_000), 0)
    monkeypatch.delenv("LAMINA_CLAIMED_BLOCKS")
    on = shm.SharedMemoryCollective(shm.create(tmp_path / "b", 2, 200_000), 0)
    assert (off.claims, on.claims) == (False, True)
    assert not off.plan_blocks([0, 200_000]) and on.plan_blocks([0, 200_000])
    off.close()
    on.close()


@pytest.mark.parametrize("world", [2, 3])
def test_every_block_is_summed_in_rank_order_and_updated_once(tmp_path, world):
    n, steps = 200_000, 6
    bounds = [0, 20_000, 90_000, 150_000, n]
    path = shm.create(tmp_path / "c", world, n, m=2, claims=True)
    rng = np.random.default_rng(world)
    values = rng.normal(size=(steps, world, n)).astype(np.float32)
    weights = np.array([0.5, 0.25, 0.25][:world], np.float32)
    taken = [[] for _ in range(steps)]  # (rank, lo, hi, early row) per block taken

    def body(collective, rank):
        assert collective.plan_blocks(bounds)
        sums = []
        for step in range(steps):
            if rank == 0:
                collective.publish([0.0, 1e-3 * (step + 1)])
            slot = collective.slot
            slot[:] = values[step, rank]

            def update(lo, hi, early, step=step):
                taken[step].append((rank, lo, hi, tuple(early[:2])))
            total, metas = collective.exchange(slot, [rank, step], weights=weights,
                                               update=update)
            sums.append(total.copy())
            assert metas[:, :2].tolist() == [[r, step] for r in range(world)]
        return sums

    results, errors = bucket_replica.run_ranks(path, world, body)
    shm.remove(path)
    assert not errors, errors
    for step in range(steps):
        expected = values[step, 0] * weights[0]
        for r in range(1, world):
            expected = expected + values[step, r] * weights[r]
        for r in range(world):
            assert results[r][step].tobytes() == expected.tobytes()
        ranges = sorted((lo, hi) for _, lo, hi, _ in taken[step])
        assert ranges == list(zip(bounds, bounds[1:]))  # each block once
        assert {early for *_, early in taken[step]} == {(0.0, 1e-3 * (step + 1))}


def test_a_rank_that_arrives_first_takes_what_a_late_peer_landed(tmp_path):
    """Rank 1 lands the last two blocks, then takes 0.3 s to arrive: rank 0 sums and
    updates those two while it waits, and the rest only once rank 1 arrived."""
    n = 200_000
    bounds = [0, 50_000, 100_000, 150_000, n]
    path = shm.create(tmp_path / "c", 2, n, m=2, claims=True)
    events = []

    def body(collective, rank):
        collective.plan_blocks(bounds)
        slot = collective.slot
        slot[:] = rank + 1.0
        if rank == 0:
            collective.publish([0.0, 0.5])
        if rank == 1:
            collective.land(100_000, n)  # the last two blocks (the last layers)
            time.sleep(0.3)
            events.append(("arrive", None, time.perf_counter()))

        def update(lo, hi, early):
            events.append((rank, lo, time.perf_counter()))
        collective.exchange(slot, update=update)
        return collective.blocks_taken, collective.blocks_early

    results, errors = bucket_replica.run_ranks(path, 2, body)
    shm.remove(path)
    assert not errors, errors
    arrival = next(t for kind, _, t in events if kind == "arrive")
    before = sorted((rank, lo) for rank, lo, t in events if rank != "arrive" and t < arrival)
    assert before == [(0, 100_000), (0, 150_000)]
    assert results[0][1] == 2 and sum(r[0] for r in results) == 4


def test_a_peers_ordinary_exchange_gets_no_block_and_the_next_exchange_meets(tmp_path):
    """The chief's control exchange (no floats, no update) against a peer's claimed
    exchange: nothing is summed or updated, both read the chief's meta row; then a
    claimed exchange on both works."""
    n = 200_000
    path = shm.create(tmp_path / "c", 2, n, m=2, claims=True)
    updated = []

    def body(collective, rank):
        collective.plan_blocks([0, 100_000, n])
        slot = collective.slot
        slot[:] = 1.0
        if rank == 0:  # the chief stops: no step, no values published
            _, metas = collective.exchange(np.empty(0, np.float32), [1.0, 0.0])
        else:
            collective.land(0, n)
            _, metas = collective.exchange(slot, [0.0, 0.0],
                                           update=lambda lo, hi, e: updated.append(lo))
        first = metas[0].tolist()
        slot = collective.slot
        slot[:] = 2.0
        if rank == 0:
            collective.publish([0.0])
        total, _ = collective.exchange(slot, update=lambda lo, hi, e: updated.append(lo))
        return first, float(total[0]), float(total[-1])

    results, errors = bucket_replica.run_ranks(path, 2, body)
    shm.remove(path)
    assert not errors, errors
    assert [r[0] for r in results] == [[1.0, 0.0], [1.0, 0.0]]
    assert [r[1:] for r in results] == [(4.0, 4.0), (4.0, 4.0)]
    assert sorted(updated) == [0, 100_000]  # the second exchange's blocks only


def test_a_block_needs_the_chiefs_values_for_this_exchange(tmp_path):
    """An update that would read rank 0's values of an earlier exchange (it published
    none for this one) raises instead; publish names a bad length."""
    path = shm.create(tmp_path / "c", 1, 300_000, claims=True)
    collective = shm.SharedMemoryCollective(path, 0)
    assert collective.plan_blocks([0, 300_000])
    with pytest.raises(ValueError, match="up to 3 values. Received: 4"):
        collective.publish([1, 2, 3, 4])
    collective.publish([0.0, 0.1])
    collective.exchange(collective.slot, update=lambda lo, hi, early: None)
    with pytest.raises(RuntimeError, match="rank 0 published no values for exchange"):
        collective.exchange(collective.slot, update=lambda lo, hi, early: None)
    collective.close()
    shm.remove(path)


def test_abort_wakes_a_rank_waiting_for_a_block(tmp_path):
    path = shm.create(tmp_path / "c", 2, 200_000, claims=True)
    collective = shm.SharedMemoryCollective(path, 0, timeout=30)
    collective.plan_blocks([0, 200_000])
    threading.Timer(0.2, shm.abort, args=(path,)).start()
    start = time.perf_counter()
    with pytest.raises(shm.CollectiveAborted):
        collective.exchange(collective.slot, update=lambda lo, hi, e: None)
    assert time.perf_counter() - start < 5
    collective.close()
    shm.remove(path)


def _data():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 90)  # 90 rows, batch 40: a short last batch
    x = rng.normal(size=(90, 20)).astype(np.float32) + y[:, None]
    # 34000 + 1700 + 40800 + 24 + 72 + 3 floats: blocks [0, 35700, n] (the first
    # kernel and its bias; the rest), over a large exchange (n = 200,000)
    model = lamina.Sequential([layers.Input((20,)), layers.Dense(1700, activation="relu"),
                               layers.Dropout(0.3), layers.Dense(24, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    return x, y, model


@pytest.mark.slow
def test_replicas_with_claimed_blocks_equal_the_chunks_and_local_fit(monkeypatch):
    x, y, model = _data()
    sizes = [int(np.prod(w.shape)) for w in model.trainable_weights]
    assert shm.block_bounds(sizes, N) == [0, 35_700, N]
    fit = {"batch_size": 40, "epochs": 2, "shuffle": True}
    monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", "0")
    runs = {}
    for claims in ("0", "1"):
        monkeypatch.setenv("LAMINA_CLAIMED_BLOCKS", claims)
        runs[claims] = local.launch(bucket_replica.fit_and_count, 2, model.to_json(),
                                    COMPILE, 5, x, y, fit, n=N, timeout=120)
    assert [r["claimed"] for r in runs["1"]] == [True, True]
    assert [r["claimed"] for r in runs["0"]] == [False, False]
    # 2 blocks a step; 3 steps an epoch, 2 epochs; the first step builds the optimizer
    # (its update is the whole-step one)
    assert sum(r["blocks_taken"] for r in runs["1"]) == 2 * (3 * 2 - 1)
    assert [r["merged_steps"] for r in runs["1"]] == [5, 5]
    single = local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    bucket_replica.assert_same_weights(runs["0"][0]["weights"], runs["0"] + runs["1"],
                                       single["weights"])


@pytest.mark.slow
@pytest.mark.parametrize("abort", [False, True])
def test_the_chiefs_stop_or_abort_meets_a_claimed_exchange(monkeypatch, abort):
    x, y, model = _data()
    monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", "0")
    monkeypatch.setenv("LAMINA_CLAIMED_BLOCKS", "1")
    results = local.launch(bucket_replica.fit_until_the_chief_stops, 2, model.to_json(),
                           COMPILE, x, y, {"batch_size": 20, "epochs": 3}, 2, abort,
                           n=N, timeout=60)
    assert [r["aborted"] for r in results] == [abort, abort]
    assert [r["iterations"] for r in results] == [3, 3]  # batches 0-2, then it ends
    bucket_replica.assert_same_weights(results[0]["weights"], results[1:])
