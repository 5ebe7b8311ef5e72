"""The shared-memory collective: rank-order sums every rank reads bit for bit, a meta
gather, abort, and argument errors."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lamina.distribute import shm

sys.path.insert(0, str(Path(__file__).parent))
import bucket_replica  # noqa: E402 - the tests' helpers (run_ranks)


@pytest.mark.parametrize("world,n", [(1, 5), (2, 1001), (3, 7), (2, 150_001)])  # last: chunked
def test_exchange_sums_in_rank_order_and_gathers_meta(tmp_path, world, n):
    rng = np.random.default_rng(world)
    vectors = rng.normal(size=(world, 3, n)).astype(np.float32)
    scales = [0.25, 0.5, 0.25][:world]
    path = shm.create(tmp_path / "c", world, n, m=3)

    def body(collective, rank):
        out = []
        for step in range(3):
            total, metas = collective.exchange(vectors[rank, step], [rank, step],
                                               scale=scales[rank])
            out.append((total.copy(), metas))
        return out

    results, errors = bucket_replica.run_ranks(path, world, body)
    assert not errors, errors
    for step in range(3):
        expected = vectors[0, step] * np.float32(scales[0])
        for j in range(1, world):
            expected = expected + vectors[j, step] * np.float32(scales[j])
        for rank in range(world):
            total, metas = results[rank][step]
            assert total.tobytes() == expected.tobytes()  # the same bits on every rank
            np.testing.assert_array_equal(metas[:, :2], [[r, step] for r in range(world)])
            assert (metas[:, 2] == 0).all()


def test_none_contributes_zeros(tmp_path):
    path = shm.create(tmp_path / "c", 2, 4)

    def body(collective, rank):
        vector = np.arange(4, dtype=np.float32) if rank == 1 else None
        return collective.exchange(vector)[0].copy()

    results, errors = bucket_replica.run_ranks(path, 2, body)
    assert not errors
    np.testing.assert_array_equal(results[0], [0, 1, 2, 3])


def test_abort_wakes_a_waiting_rank(tmp_path):
    path = shm.create(tmp_path / "c", 2, 4)
    collective = shm.SharedMemoryCollective(path, 0, timeout=30)
    timer = threading.Timer(0.2, shm.abort, args=(path,))
    timer.start()
    with pytest.raises(shm.CollectiveAborted, match="aborted"):
        collective.exchange(np.zeros(4, np.float32))
    timer.join()


def test_abort_is_seen_while_spinning(tmp_path, monkeypatch):
    """A rank still in its spin (before it sleeps on its socket) raises at an abort."""
    monkeypatch.setattr(shm, "_SPIN_SECONDS", 30.0)
    path = shm.create(tmp_path / "c", 2, 4)
    collective = shm.SharedMemoryCollective(path, 0, timeout=60)
    timer = threading.Timer(0.2, shm.abort, args=(path,))
    timer.start()
    start = time.monotonic()
    with pytest.raises(shm.CollectiveAborted, match="aborted"):
        collective.barrier()
    assert time.monotonic() - start < 10
    timer.join()
    collective.close()


@pytest.mark.parametrize("spin", [0.0, 30.0])
def test_a_late_peer_is_waited_for_spinning_or_asleep(tmp_path, monkeypatch, spin):
    """Whether the waiting rank spins or sleeps, it returns once the late peer arrives,
    and not before."""
    monkeypatch.setattr(shm, "_SPIN_SECONDS", spin)
    path = shm.create(tmp_path / "c", 2, 4)
    arrived = threading.Event()

    def body(collective, rank):
        if rank == 1:
            time.sleep(0.3)
            arrived.set()  # before its barrier: rank 0 must not return before this
        start = time.monotonic()
        collective.barrier()
        return arrived.is_set(), time.monotonic() - start

    results, errors = bucket_replica.run_ranks(path, 2, body)
    assert not errors, errors
    peer_had_arrived, waited = results[0]
    assert peer_had_arrived
    assert waited < 10  # seen while spinning (30 s), not after the spin


def test_close_releases_the_mapping(tmp_path):
    path = shm.create(tmp_path / "c", 2, 4)
    collective = shm.SharedMemoryCollective(path, 0)
    collective.close()
    assert collective._buf.closed  # no view of the counters kept it open


def test_barrier_times_out(tmp_path):
    path = shm.create(tmp_path / "c", 2, 1)
    collective = shm.SharedMemoryCollective(path, 1, timeout=0.05)
    with pytest.raises(TimeoutError, match="rank 1 waited"):
        collective.barrier()


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="world=0"):
        shm.create(tmp_path / "c", 0, 4)
    with pytest.raises(ValueError, match="m=0"):
        shm.create(tmp_path / "c", 1, 4, m=0)
    path = shm.create(tmp_path / "c", 2, 4)
    with pytest.raises(ValueError, match="rank=2"):
        shm.SharedMemoryCollective(path, 2)


def test_remove_deletes_the_file_and_the_wake_up_sockets(tmp_path):
    path = shm.create(tmp_path / "c", 2, 4)
    collective = shm.SharedMemoryCollective(path, 1)
    assert (tmp_path / "c.r1").exists()
    shm.remove(path)
    assert list(tmp_path.iterdir()) == []
    collective.close()


def test_many_exchanges_with_sleeping_ranks(tmp_path):
    """Ranks that fall asleep on their sockets and wake each other, 150 times over."""
    world, n = 4, 64
    path = shm.create(tmp_path / "c", world, n)

    def body(collective, rank):
        bad = 0
        for step in range(150):
            total, metas = collective.exchange(np.full(n, rank + step, np.float32),
                                               [step])
            bad += int(total[0] != sum(r + step for r in range(world)))
            bad += int((metas[:, 0] != step).any())
        return bad

    results, errors = bucket_replica.run_ranks(path, world, body)
    assert not errors, errors
    assert results == [0] * world
