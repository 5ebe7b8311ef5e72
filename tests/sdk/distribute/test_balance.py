"""Chunks sized by the ranks' measured speed (lamina.distribute.balance).

The controller alone: aligned boundaries that partition the range, damped and bounded
steps, convergence to equal times under a cost model where one rank is slower. In
the collective: two ranks whose work between the barriers differs agree on the same
shares at every exchange, move them towards the faster rank, and still read the
rank-order sums bit for bit; the shared update over unequal chunks gives the bytes of
one whole-step update.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lamina.distribute import balance as balance_module
from lamina.distribute import shm
from lamina.distribute.balance import MAX_STEP, QUANTUM, WINDOW, ChunkBalance

sys.path.insert(0, str(Path(__file__).parent))
import bucket_replica  # noqa: E402 - the tests' helpers (run_ranks)


@pytest.mark.parametrize("world,k", [(2, 669_706), (3, 100_003), (4, 1 << 20)])
def test_bounds_partition_the_range_at_aligned_points(world, k):
    balance = ChunkBalance(world)
    balance.shares = list(np.random.default_rng(world).dirichlet([5.0] * world))
    bounds = balance.bounds(k)
    assert bounds[0] == 0 and bounds[-1] == k and len(bounds) == world + 1
    assert all(a <= b for a, b in zip(bounds, bounds[1:]))
    assert all(b % QUANTUM == 0 for b in bounds[1:-1])
    for share, lo, hi in zip(balance.shares, bounds, bounds[1:]):
        assert abs((hi - lo) - share * k) <= QUANTUM * world


def test_disabled_or_small_ranges_keep_the_equal_split():
    for balance, k in ((ChunkBalance(2, enabled=False), 669_706), (ChunkBalance(2), 1000)):
        balance.shares = [0.7, 0.3]
        assert balance.bounds(k) == np.linspace(0, k, 3).astype(int).tolist()
    assert not ChunkBalance(1).enabled


def test_a_boundary_moves_only_for_more_than_a_quantum():
    k, balance = 669_706, ChunkBalance(2)
    first = balance.bounds(k)
    for _ in range(5 * WINDOW):  # rank 1 a little slower, then a little faster
        balance.update([(1.000e-3, first[1]), (1.001e-3, k - first[1])])
        balance.update([(1.001e-3, first[1]), (1.000e-3, k - first[1])])
        assert balance.bounds(k) == first
    assert balance.shares != [0.5, 0.5]  # they moved, by less than a quantum
    for _ in range(WINDOW):  # a trend: a step of MAX_STEP, ~20,000 floats
        balance.update([(1e-3, first[1]), (2e-3, k - first[1])])
    assert balance.bounds(k)[1] - first[1] >= 10 * QUANTUM


def test_a_step_is_damped_bounded_and_floored():
    balance = ChunkBalance(2)
    for _ in range(2 * WINDOW):
        assert not balance.update([(0.0, 0.0), (0.0, 0.0)])  # no reports yet
        assert not balance.update([(1e-3, 100.0), (1e-3, 0.0)])  # a rank without elements
    for _ in range(WINDOW - 1):
        assert not balance.update([(1.0e-3, 500.0), (1.2e-3, 500.0)])
    # Rank 1 is slower (1.2x); one report of the window far off does not matter.
    assert balance.update([(1.0e-3, 500.0), (9e-3, 500.0)])
    assert balance.shares[0] == pytest.approx(0.5 + 0.5 * (1.2 / 2.2 - 0.5))
    assert sum(balance.shares) == pytest.approx(1.0)
    for _ in range(WINDOW):  # far from balance: at most MAX_STEP
        balance.update([(1.0e-3, 500.0), (3e-3, 500.0)])
    assert balance.shares[0] - (0.5 + 0.5 * (1.2 / 2.2 - 0.5)) == pytest.approx(MAX_STEP)
    for _ in range(1000 * WINDOW):  # a rank 100x slower bottoms out at the floor
        balance.update([(1e-3, 500.0), (1e-1, 500.0)])
    assert balance.shares[1] == pytest.approx(balance_module.MIN_SHARE / 2, rel=1e-6)


def test_the_shares_converge_to_equal_times():
    """Rank 1 costs 1.4x per element, and its first 20% of the range 3x (the costly
    part need not be spread evenly): the times end within 2% of each other."""
    n, balance = 669_706, ChunkBalance(2)

    def cost(lo, hi, rank):
        cheap = 1.4 if rank else 1.0
        dear = max(0, min(hi, int(0.7 * n)) - max(lo, int(0.5 * n)))
        return 1e-9 * (cheap * (hi - lo) + 2 * cheap * dear)

    for _ in range(40 * WINDOW):
        b = balance.bounds(n)
        times = [cost(b[r], b[r + 1], r) for r in range(2)]
        balance.update([(t, b[r + 1] - b[r]) for r, t in enumerate(times)])
    b = balance.bounds(n)
    times = [cost(b[r], b[r + 1], r) for r in range(2)]
    assert abs(times[0] - times[1]) / max(times) < 0.02
    assert balance.shares[0] > 0.55


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_agree_on_the_shares_and_read_the_same_sums(tmp_path, world):
    """The last rank's work between the barriers takes longer: every rank moves the
    same shares away from it at every exchange, and the sums stay the rank-order sums."""
    n, steps = 150_001, 8 * WINDOW  # chunked: world * 4 * n > 1 MB
    path = shm.create(tmp_path / "c", world, n, m=2, balance=True)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(world, n)).astype(np.float32)
    expected = vectors[0] + vectors[1]
    for j in range(2, world):
        expected = expected + vectors[j]
    seen = [[] for _ in range(world)]

    def body(collective, rank):
        def slow(metas):  # the last rank: ~2 ms per 100k elements of its chunk
            chunk = collective.chunk_of(0, n)
            time.sleep(2e-3 * (chunk.stop - chunk.start) / 1e5)
        last = rank == world - 1
        for _ in range(steps):
            total, _ = collective.exchange(vectors[rank], between=slow if last else None)
            assert total.tobytes() == expected.tobytes()
            seen[rank].append(tuple(collective.balance.shares))

    _, errors = bucket_replica.run_ranks(path, world, body)
    shm.remove(path)
    assert not errors, errors
    assert all(s == seen[0] for s in seen)  # the same shares everywhere, exchange by exchange
    assert seen[0][-1][-1] < 1 / world - 0.15


def test_the_file_decides_and_the_environment_sets_the_default(tmp_path, monkeypatch):
    for setting, env, expected in ((None, None, True), (None, "0", False),
                                   (True, "0", True), (False, None, False)):
        if env is None:
            monkeypatch.delenv("LAMINA_BALANCE_CHUNKS", raising=False)
        else:
            monkeypatch.setenv("LAMINA_BALANCE_CHUNKS", env)
        path = shm.create(tmp_path / "c", 2, 200_000, balance=setting)
        collective = shm.SharedMemoryCollective(path, 0)
        assert collective.balance.enabled is expected
        collective.close()
        shm.remove(path)
    path = shm.create(tmp_path / "small", 2, 1000)  # one barrier: no chunks to size
    collective = shm.SharedMemoryCollective(path, 1)
    assert not collective.balance.enabled
    collective.close()
    shm.remove(path)


def test_the_shared_update_over_unequal_chunks_gives_the_whole_update(tmp_path, monkeypatch):
    """Ranks updating chunks of 80% and 20% (cut across variables) give the bytes of one
    whole-step Adam update, as equal halves do."""
    from lamina import optimizers
    from lamina.backend.tensor import Variable
    from lamina.distribute.shared_state import SharedState

    monkeypatch.setattr(shm, "ONE_BARRIER_BYTES", 0)  # chunked: rank r sums chunk r
    monkeypatch.setattr(balance_module, "QUANTUM", 16)
    shapes = [(40, 30), (30,), (30, 5), (5,)]

    def adam():
        rng = np.random.default_rng(0)
        variables = [Variable(rng.normal(size=s).astype(np.float32)) for s in shapes]
        opt = optimizers.Adam(learning_rate=0.01)
        opt.build(variables)
        return opt, variables

    def state(opt, variables):
        return [np.array(v.data).tobytes() for v in variables + list(opt.variables)]

    size = sum(int(np.prod(s)) for s in shapes)
    path = shm.create(tmp_path / "c", 2, size, balance=True)
    handles = [shm.SharedMemoryCollective(path, rank) for rank in range(2)]
    reference, ref_vars = adam()
    ranks = [(*adam(), handle) for handle in handles]
    states = [SharedState(handle, opt) for opt, _, handle in ranks]
    for shared, handle in zip(states, handles):
        handle.balance.shares = [0.8, 0.2]
        shared.share()
    for step in range(3):
        rng = np.random.default_rng(10 + step)
        grads = [rng.normal(size=s).astype(np.float32) for s in shapes]
        flat = np.concatenate([g.reshape(-1) for g in grads])
        reference.apply(grads, ref_vars)
        spans = []
        for (opt, _, handle), shared in zip(ranks, states):
            (span,) = shared.pieces_for(handle, None)
            spans.append(span)
            opt.begin_update_in_pieces().apply_pieces(flat, span)
        cut = 16 * round(0.8 * size / 16)  # 1104 of 1385
        assert [hi - lo for (lo, hi, _), in spans] == [cut, size - cut]
        for opt, variables, _ in ranks:
            opt.apply(grads, variables)
        for opt, variables, _ in ranks:
            assert state(opt, variables) == state(reference, ref_vars), f"step {step}"
    for shared, handle in zip(states, handles):
        shared.close()
        handle.close()
    shm.remove(path)
