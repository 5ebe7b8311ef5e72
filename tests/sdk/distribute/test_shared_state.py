"""Shared parameters and slots (lamina.distribute.shared_state), in one process.

Two "ranks" (two optimizers with the same state, each with its own handle on the
collective's file) move their buffers into the shared file; each updates its half
with ``UpdateInPieces.apply_range``; the shared buffers then hold the bytes of one
whole-step update, and unsharing gives each rank private copies of them. Two-replica
``fit`` with the shared update is checked against local ``fit`` in test_buckets.py
and test_data_parallel.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from lamina import optimizers
from lamina.backend.tensor import Variable
from lamina.distribute import shm
from lamina.distribute.shared_state import SharedState, state_path

SHAPES = [(40, 30), (30,), (30, 5), (5,)]


def _variables():
    rng = np.random.default_rng(0)
    return [Variable(rng.normal(size=s).astype(np.float32), name=f"v{i}")
            for i, s in enumerate(SHAPES)]


def _grads(step):
    rng = np.random.default_rng(10 + step)
    return [rng.normal(size=s).astype(np.float32) for s in SHAPES]


def _bytes(opt, variables):
    return [np.array(v.data).tobytes() for v in variables] + \
        [np.array(v.data).tobytes() for v in opt.variables]


@pytest.fixture
def group(tmp_path):
    path = shm.create(tmp_path / "c", 2, 8)
    handles = [shm.SharedMemoryCollective(path, rank) for rank in range(2)]
    yield path, handles
    for handle in handles:
        handle.close()
    shm.remove(path)


def _adam():
    """A built Adam and its variables (``_variables``)."""
    opt = optimizers.Adam(learning_rate=0.01)
    variables = _variables()
    opt.build(variables)
    return opt, variables


def test_two_ranks_updating_their_halves_give_one_whole_update(group):
    path, handles = group
    reference, ref_vars = _adam()
    ranks = [(opt, variables, SharedState(handle, opt))
             for handle, (opt, variables) in zip(handles, [_adam() for _ in handles])]
    assert [s.shard for _, _, s in ranks] == [(0, 692), (692, 1385)]
    for _, _, state in ranks:
        state.share()
    first, second = ranks[0][1][0], ranks[1][1][0]

    def one_copy():  # two mappings of one file: a write through one shows in the other
        kept = first.data[0, 0].copy()
        first.data[0, 0] = 1234.5
        seen = second.data[0, 0] == 1234.5
        first.data[0, 0] = kept
        return bool(seen)

    assert one_copy()
    for step in range(3):
        grads = _grads(step)
        reference.apply(grads, ref_vars)
        for opt, _, state in ranks:
            opt.begin_update_in_pieces().apply_range(*state.shard, grads)
        for opt, variables, _ in ranks:
            opt.apply(grads, variables)  # ends the step: nothing left to update
        for opt, variables, _ in ranks:
            assert _bytes(opt, variables) == _bytes(reference, ref_vars), f"step {step}"
    kept = [v.data for v in ranks[0][1]]
    for _, _, state in ranks:
        state.unshare()
    assert not one_copy()
    assert all(a is not b.data for a, b in zip(kept, ranks[0][1]))
    for opt, variables, state in ranks:
        assert _bytes(opt, variables) == _bytes(reference, ref_vars)
        state.close()


def test_remove_deletes_the_state_file(tmp_path):
    path = shm.create(tmp_path / "c", 2, 8)
    handle = shm.SharedMemoryCollective(path, 1)
    opt = optimizers.SGD(momentum=0.9)
    opt.build(_variables())
    state = SharedState(handle, opt)
    assert state_path(path).stat().st_size == 4 * 2 * 1385  # parameters + momentum
    state.close()
    handle.close()
    shm.remove(path)
    assert not state_path(path).exists() and not path.exists()


def test_relocate_keeps_variables_and_slot_variables():
    opt = optimizers.Adam()
    variables = _variables()
    opt.build(variables)
    opt.apply(_grads(0), variables)
    before = _bytes(opt, variables)
    ids = [id(v) for v in variables + opt.variables]
    size = opt._segments[0].param.size
    opt.relocate(np.zeros(size, np.float32),
                 {"momentum": np.zeros(size, np.float32), "velocity": np.zeros(size, np.float32)})
    assert [id(v) for v in variables + opt.variables] == ids
    assert _bytes(opt, variables) == before
    twin = optimizers.Adam()
    twin_vars = _variables()
    twin.build(twin_vars)
    twin.apply(_grads(0), twin_vars)
    opt.apply(_grads(1), variables)
    twin.apply(_grads(1), twin_vars)
    assert _bytes(opt, variables) == _bytes(twin, twin_vars)
    with pytest.raises(ValueError, match="slots must be"):
        opt.relocate(np.zeros(size, np.float32), {"momentum": np.zeros(size, np.float32)})


def test_pieces_contiguous_in_source_and_buffers_are_merged():
    from lamina.distribute.shared_state import _merged

    # unbucketed: the model's order on both sides -> one piece per chunk
    assert _merged([(5, 10, 5), (10, 12, 10), (12, 30, 12)]) == [(5, 30, 5)]
    # bucketed (last layer first): neighbours in the source, apart in the buffers
    assert _merged([(0, 4, 26), (4, 10, 20), (10, 30, 0)]) == \
        [(0, 4, 26), (4, 10, 20), (10, 30, 0)]
    assert _merged([(0, 4, 0), (6, 8, 4), (8, 9, 6)]) == [(0, 4, 0), (6, 9, 4)]
    assert _merged([]) == []


def test_a_chunk_across_variables_is_one_piece_with_the_bits_of_the_whole_update(
        tmp_path, monkeypatch):
    """Each rank's chunk of the vector spans several variables; updated as one merged
    piece (``apply_pieces``), the ranks together give the whole-step update's bytes."""
    monkeypatch.setattr(shm, "ONE_BARRIER_BYTES", 0)  # chunked: rank r sums chunk r
    size = sum(int(np.prod(s)) for s in SHAPES)
    path = shm.create(tmp_path / "c", 2, size)
    handles = [shm.SharedMemoryCollective(path, rank) for rank in range(2)]
    reference, ref_vars = _adam()
    ranks = [(opt, variables, SharedState(handle, opt), handle)
             for handle, (opt, variables) in zip(handles, [_adam() for _ in handles])]
    for _, _, state, _ in ranks:
        state.share()
    for step in range(3):
        grads = _grads(step)
        flat = np.concatenate([g.reshape(-1) for g in grads])
        reference.apply(grads, ref_vars)
        for opt, _, state, handle in ranks:
            (span,) = state.pieces_for(handle, None)
            assert len(span) == 1  # one piece, across the variables of the chunk
            assert span[0][1] - span[0][0] in (692, 693)
            opt.begin_update_in_pieces().apply_pieces(flat, span)
        for opt, variables, _, _ in ranks:
            opt.apply(grads, variables)
        for opt, variables, _, _ in ranks:
            assert _bytes(opt, variables) == _bytes(reference, ref_vars), f"step {step}"
    for _, _, state, handle in ranks:
        state.close()
        handle.close()
    shm.remove(path)
