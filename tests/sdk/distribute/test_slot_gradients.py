"""Gradients written by backward straight into the rank's slot (lamina.distribute.slot_gradients).

In-process: the weighted exchange (``exchange(weights=)``, shares applied in the
rank-ordered sum) gives the bytes of each rank scaling its own slot first, for small
(one-barrier) and chunked exchanges. Replicas (slow): two-replica ``fit`` with gradients
in the slot equals the scaled copy-in path byte for byte (replicated and shared
update, small and chunked exchanges) and local ``fit``; every Dense gradient landed.
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.backend import compiled
from lamina.backend.tensor import Variable
from lamina.distribute import DataParallel, local, shm, slot_gradients

sys.path.insert(0, os.path.dirname(__file__))
import bucket_replica  # noqa: E402  (spawned replicas import it by name)


def _ranks(path, vectors, shares, weighted, outs):
    def run(rank):
        collective = shm.SharedMemoryCollective(path, rank)
        try:
            for step in range(3):  # both parities of the small path
                vector = vectors[rank] * (step + 1)
                if weighted:
                    collective.slot[:vector.size] = vector
                    total, _ = collective.exchange(collective.slot, weights=shares)
                else:
                    total, _ = collective.exchange(vector, scale=shares[rank])
                outs[rank].append(np.array(total[:vector.size]))
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            outs[rank].append(exc)
        finally:
            collective.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(len(vectors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("world,n", [(2, 1000), (2, 300_000), (3, 200_000),
                                     (4, 400_000)])
def test_weighted_sum_gives_the_bytes_of_scaled_slots(tmp_path, world, n, kernels):
    """Numpy's blocks and the compiled one-pass sum (chunks of 65,536 floats and more
    under ``auto``; every size under ``numba``) alike."""
    if kernels == "numba":
        pytest.importorskip("numba")
    rng = np.random.default_rng(world)
    vectors = [rng.normal(size=n).astype(np.float32) * 10.0 ** r for r in range(world)]
    shares = slot_gradients.weights([5, 4, 4, 3][:world], [9, 13, 13, 16][world - 2])
    results = {}
    for weighted in (False, True):
        path = shm.create(tmp_path / f"c{int(weighted)}", world, n)
        outs = [[] for _ in range(world)]
        with compiled.use_kernels(kernels if weighted else "numpy"):
            _ranks(path, vectors, shares, weighted, outs)
        shm.remove(path)
        for out in outs:
            assert all(isinstance(o, np.ndarray) for o in out), out
        results[weighted] = outs
    for plain, weighted in zip(results[False], results[True]):
        for a, b in zip(plain, weighted):
            assert a.tobytes() == b.tobytes()
    expected = np.multiply(vectors[0], shares[0]) + np.multiply(vectors[1], shares[1])
    assert results[True][0][0][:10].tobytes() == expected[:10].tobytes() or world > 2


def test_weights_need_one_factor_per_rank(tmp_path):
    path = shm.create(tmp_path / "c", 1, 4)
    collective = shm.SharedMemoryCollective(path, 0)
    try:
        with pytest.raises(ValueError, match="world=1"):
            collective.exchange(np.ones(4, np.float32), weights=[0.5, 0.5])
    finally:
        collective.close()
        shm.remove(path)


def test_views_follow_the_flat_layout_and_fill_copies_what_did_not_land():
    slot = np.zeros(18, np.float32)
    variables = [Variable(np.zeros((2, 3), np.float32)), Variable(np.zeros(4, np.float32)),
                 Variable(np.zeros((3, 3), np.float32))]  # the last does not fit
    pairs = slot_gradients.views(slot, variables)
    assert [id(p[0]) for p in pairs] == [id(v) for v in variables[:2]]
    assert [np.shares_memory(p[1], slot[a:b]) for p, (a, b) in
            zip(pairs, [(0, 6), (6, 10)])] == [True, True]
    landed = pairs[0][1]
    landed[...] = 7.0
    other = np.arange(4, dtype=np.float32)
    assert slot_gradients.fill(slot[:10], [landed, other], pairs) == 1
    assert slot[:10].tolist() == [7.0] * 6 + [0.0, 1.0, 2.0, 3.0]
    # an equal array that is not the view is copied (identity, not value, decides)
    assert slot_gradients.fill(slot[:10], [landed.copy(), other], pairs) == 0
    with pytest.raises(ValueError, match="does not fit"):
        slot_gradients.fill(slot[:10], [np.zeros(11, np.float32)], [])
    # every gradient is its view: all landed, nothing to copy
    both = [pairs[0][1], pairs[1][1]]
    both[1][...] = 5.0
    assert slot_gradients.fill(slot[:10], both, pairs) == 2
    assert slot[:10].tolist() == [7.0] * 6 + [5.0] * 4


def test_a_rank_is_handed_the_same_two_slots_by_parity(tmp_path):
    # The strategy tells by identity that the vector it exchanges is the slot whose
    # views it offered backward (GradientExchange._slot_views).
    path = shm.create(tmp_path / "c", 1, 4)
    collective = shm.SharedMemoryCollective(path, 0)
    try:
        first = collective.slot
        assert collective.slot is first
        first[:] = [1.0, 2.0, 3.0, 4.0]
        total, _ = collective.exchange(first)
        assert total.tolist() == [1.0, 2.0, 3.0, 4.0]
        second = collective.slot
        assert second is not first and not np.shares_memory(first, second)
        second[:] = 0.5
        assert collective.exchange(second)[0].tolist() == [0.5] * 4
        assert collective.slot is first
    finally:
        collective.close()
        shm.remove(path)


def test_only_the_shared_memory_collective_with_peers_takes_it(tmp_path, monkeypatch):
    monkeypatch.delenv("LAMINA_GRADIENTS_IN_SLOT", raising=False)
    for world, expected in ((1, False), (2, True)):
        path = shm.create(tmp_path / f"c{world}", world, 8)
        collective = shm.SharedMemoryCollective(path, 0)
        try:
            assert DataParallel(collective, bucket_cap_mb=0).gradients_in_slot is expected
            assert not DataParallel(collective, bucket_cap_mb=0,
                                    gradients_in_slot=False).gradients_in_slot
            monkeypatch.setenv("LAMINA_GRADIENTS_IN_SLOT", "0")
            assert not DataParallel(collective, bucket_cap_mb=0).gradients_in_slot
            monkeypatch.delenv("LAMINA_GRADIENTS_IN_SLOT")
        finally:
            collective.close()
            shm.remove(path)


COMPILE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
           "metrics": ["accuracy"]}


@pytest.mark.slow
@pytest.mark.parametrize("n", [0, 200_000])  # one-barrier copies; chunked
def test_replicas_with_gradients_in_the_slot_equal_the_copy_in_and_local_fit(
        monkeypatch, n):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 65)  # 65 rows: shares 3/5, 2/5 in the last batch
    x = rng.normal(size=(65, 12)).astype(np.float32) + y[:, None]
    model = lamina.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"),
                               layers.Dropout(0.3), layers.Dense(8, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    size = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fit = {"batch_size": 20, "epochs": 2, "shuffle": True}
    monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", "0")
    runs = {}
    configs = [(slot, shared) for shared in ("0", "1") for slot in ("0", "1")]
    for in_slot, shared in configs:
        monkeypatch.setenv("LAMINA_GRADIENTS_IN_SLOT", in_slot)
        monkeypatch.setenv("LAMINA_SHARED_UPDATE", shared)
        runs[in_slot, shared] = local.launch(bucket_replica.fit_and_count, 2,
                                             model.to_json(), COMPILE, 5, x, y, fit,
                                             n=max(n, size))
    for (in_slot, _), results in runs.items():
        # all 6 Dense kernels and biases were written by backward in the last step
        assert [r["landed"] for r in results] == [6 * (in_slot == "1")] * 2
    single = local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    bucket_replica.assert_same_weights(runs["0", "0"][0]["weights"],
                                       [r for results in runs.values() for r in results],
                                       single["weights"])
