"""``fit`` as N SPMD replicas (lamina.distribute) ends where local ``fit`` ends.

One replica is bit-identical to local ``fit``; two split every global batch and sum
the share-weighted gradients in rank order (a different float32 reduction order), so
they agree to rtol 1e-5. Shuffling, dropout, validation and metrics included.
"""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.distribute import local

pytestmark = pytest.mark.slow

COMPILE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
           "metrics": ["accuracy"]}


def _data(n, shape, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, *shape)).astype(np.float32) + y.reshape(-1, *[1] * len(shape))
    return x, y


def _mlp(dropout=0.0):
    return lamina.Sequential([layers.Input((12,)), layers.Dense(16, activation="relu"),
                              layers.Dropout(dropout), layers.Dense(3, activation="softmax")])


def _cnn(dropout=0.0):
    return lamina.Sequential([
        layers.Input((6, 6, 1)), layers.Conv2D(4, 3, activation="relu"),
        layers.Flatten(), layers.Dropout(dropout), layers.Dense(3, activation="softmax")])


def _lstm(dropout=0.0):
    return lamina.Sequential([
        layers.Input((5, 4)), layers.LSTM(6, dropout=dropout, recurrent_dropout=dropout),
        layers.Dense(3, activation="softmax")])


def _run(model, x, y, world):
    fit = {"batch_size": 20, "epochs": 3, "shuffle": True, "validation_split": 0.2}
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    if world == 0:
        return local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    results = local.launch(local.fit_replica, world, model.to_json(), COMPILE, 5, x, y, fit,
                           n=n)
    for other in results[1:]:
        for a, b in zip(results[0]["weights"], other["weights"]):
            assert a.tobytes() == b.tobytes()  # replicas stay bit-identical
    return results[0]


@pytest.mark.parametrize("build,shape", [(_mlp, (12,)), (_cnn, (6, 6, 1)), (_lstm, (5, 4))])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_one_and_two_replicas_equal_local_fit(build, shape, dropout):
    """Dropout (an LSTM's input and recurrent dropout too) included: a sample's mask is
    keyed by (seed, epoch, its global position), so it is the same whichever replica
    computes it."""
    x, y = _data(110, shape)  # 88 training rows: the last batch is 8 (4 per replica)
    model = build(dropout)  # one config: layer names key the noise streams
    reference = _run(model, x, y, 0)
    one = _run(model, x, y, 1)
    for a, b in zip(one["weights"], reference["weights"]):
        assert a.tobytes() == b.tobytes()
    assert one["history"] == reference["history"]
    two = _run(model, x, y, 2)
    for a, b in zip(two["weights"], reference["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key, values in reference["history"].items():
        np.testing.assert_allclose(two["history"][key], values, rtol=1e-5, err_msg=key)


def test_four_replicas_equal_local_fit():
    """Four replicas (slices of 5 rows; the last batch's are 2) with dropout."""
    x, y = _data(110, (12,))
    model = _mlp(0.3)
    reference = _run(model, x, y, 0)
    four = _run(model, x, y, 4)
    for a, b in zip(four["weights"], reference["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("world, rows", [(2, 81), (4, 82)])
def test_replicas_left_without_rows_by_a_short_last_batch_still_equal_local_fit(world, rows):
    """The last batch has fewer samples than there are replicas (1 of 2, 2 of 4): the
    replicas without rows add nothing and still take part in the step."""
    x, y = _data(rows, (12,))
    model = _mlp(0.3)
    fit = {"batch_size": 20, "epochs": 2, "shuffle": True}
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    reference = local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    results = local.launch(local.fit_replica, world, model.to_json(), COMPILE, 5, x, y, fit,
                           n=n, timeout=120)
    for result in results:
        for a, b in zip(result["weights"], reference["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key, values in reference["history"].items():  # the chief's logs are global
        np.testing.assert_allclose(results[0]["history"][key], values, rtol=1e-5, err_msg=key)


@pytest.mark.parametrize("transport", ["shm", "ring"])
@pytest.mark.parametrize("failing", ["fail_on_rank", "fail_slowly_on_rank"])
def test_a_failing_replica_makes_its_peers_stop_instead_of_waiting(monkeypatch, transport,
                                                                   failing):
    """The failing rank's own error is raised, even when its peer's CollectiveAborted
    reaches the parent first (``fail_slowly_on_rank``: its error takes 1 s to pickle)."""
    import sys
    import time
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import bucket_replica

    x, y = _data(80, (12,))
    model = _mlp()
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    start = time.monotonic()
    with pytest.raises(ValueError, match="rank 1 fails on purpose"):
        local.launch(getattr(bucket_replica, failing), 2, 1, model.to_json(), COMPILE, x, y,
                     {"batch_size": 20, "epochs": 1}, n=n, transport=transport, timeout=300)
    assert time.monotonic() - start < 60  # the chief raised too: far below the timeout
    assert "bucket_replica" in sys.modules


def test_a_layer_drawing_per_replica_does_not_split_the_shuffle():
    """Recurrent dropout still draws from the global generator on each replica, and an
    uneven last batch (4 + 3 rows) makes the replicas draw different amounts; the
    epoch-boundary sync hands every replica the chief's generator, so every epoch's
    shuffle stays the same on all of them."""
    x, y = _data(109, (4, 3))  # 87 training rows: the last batch of 20 is 7
    model = lamina.Sequential([layers.Input((4, 3)), layers.LSTM(4, dropout=0.3),
                               layers.Dense(3, activation="softmax")])
    fit = {"batch_size": 20, "epochs": 2, "shuffle": True, "validation_split": 0.2}
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    first, second = local.launch(local.fit_replica, 2, model.to_json(), COMPILE, 5, x, y,
                                 fit, n=n)
    assert first["rng_state"] == second["rng_state"]
    for a, b in zip(first["weights"], second["weights"]):
        assert a.tobytes() == b.tobytes()


def test_each_replica_gathers_only_its_rows_of_every_batch():
    """From arrays a replica gathers its ``array_split`` slice of each batch (10 of 20
    rows; of the short last batch of 15, 8 and 7), not the whole batch it then sliced;
    the adapter's part is cleared when ``fit`` ends, and the weights still equal local
    ``fit``'s."""
    import os
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    import bucket_replica

    x, y = _data(75, (12,))
    model = _mlp(0.3)
    fit = {"batch_size": 20, "epochs": 2, "shuffle": True}
    n = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    reference = local.fit_replica(model.to_json(), COMPILE, 5, x, y, fit)
    results = local.launch(bucket_replica.fit_and_count_gathered_rows, 2, model.to_json(),
                           COMPILE, 5, x, y, fit, n=n, timeout=120)
    for rank, result in enumerate(results):
        assert result["gathered"] == [10, 10, 10, 8 - rank] * 2, (rank, result["gathered"])
        assert result["parts_left"] == [False], result["parts_left"]
        for a, b in zip(result["weights"], reference["weights"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
