"""A replica keeps what it holds when ``fit`` starts out of the collector's sight.

Each replica's first full collection (~45-50 ms on the benchmark MLP, in its second
epoch) stalled its peer at the next exchange; frozen, a full collection walks only what
training allocated since.
"""

from __future__ import annotations

import gc
import json

import numpy as np

import lamina
from lamina.distribute import shm
from lamina_worker.replica import Replica
from lamina_worker.trainer import DataParallelTrainer

COMPILE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"}


def _model_config() -> dict:
    model = lamina.Sequential([lamina.Input((6,)), lamina.layers.Dense(8, activation="relu"),
                               lamina.layers.Dense(3)])
    return json.loads(model.to_json())


def _run(tmp_path) -> list:
    """Run a one-replica job in this process; ``(event type, freeze count)`` as the chief
    emits each event, on the training thread."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, size=64)
    config = _model_config()
    sizes = DataParallelTrainer(config, COMPILE, (x, y, None), epochs=2, batch_size=16,
                                seed=0, replicas=1)._sizes()
    path = shm.create(tmp_path / "collective", 1, *sizes)
    replica = Replica({"model_config": config, "compile_config": COMPILE, "seed": 0,
                       "rank": 0, "world": 1,
                       "collective": {"transport": "shm", "path": str(path)},
                       "fit": {"epochs": 2, "batch_size": 16}, "callbacks": [],
                       "folder": str(tmp_path), "checkpoint_every": 0, "cpus": None})
    seen = []
    emit = replica.emit
    replica.emit = lambda event: (seen.append((event["type"], gc.get_freeze_count())),
                                  emit(event))
    result = replica.run((x, y, None), None, None)
    assert result["aborted"] is None, result
    return seen


def test_a_replica_freezes_what_it_holds_while_it_trains(tmp_path):
    before = gc.get_freeze_count()
    seen = _run(tmp_path)
    during = [count for kind, count in seen if kind in ("epoch_begin", "batch", "epoch_end")]
    # every step ran with the objects held at the start frozen (the model among them)
    assert len(during) == 2 * (1 + 4 + 1) and min(during) > before + 1000, (before, seen)
    assert seen[-1] == ("done", before)  # and the run gave them back
    assert gc.get_freeze_count() == before


def test_a_process_that_froze_objects_itself_keeps_them_frozen(tmp_path):
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        seen = _run(tmp_path)
        # Only gc.freeze adds to the frozen objects (freed ones leave): nothing more was
        # frozen, and what the process froze stayed frozen through the run and after it.
        assert max(count for _, count in seen) <= before, (before, seen)
        assert min(count for _, count in seen) > before // 2, (before, seen)
        assert gc.get_freeze_count() > before // 2
    finally:
        gc.unfreeze()
