"""The metric accumulators replicas sum (lamina.distribute.metric_state)."""

from __future__ import annotations

import numpy as np

import lamina
from lamina import layers
from lamina.distribute.metric_state import additive_fields, pack, unpack


def _model():
    model = lamina.Sequential([lamina.Input((3,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", lamina.metrics.AUC(num_thresholds=4)])
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    model.fit(x, np.array([0, 1] * 4), epochs=1, batch_size=4, verbose=0)
    return model


def test_pack_lays_the_head_then_every_accumulator_and_unpack_restores_them():
    model = _model()
    fields = additive_fields(model)
    values = [np.asarray(getattr(obj, name), np.float64).reshape(-1) for obj, name in fields]
    assert any(v.size > 1 for v in values)  # AUC's confusion counts: the array path
    vector = pack(fields, head=(2.0, 0.5))
    assert vector.dtype == np.float64
    assert vector.tolist() == [2.0, 0.5, *np.concatenate(values).tolist()]
    assert pack(fields).tolist() == vector[2:].tolist()
    unpack(fields, np.zeros(vector.size - 2))
    assert not pack(fields).any()
    unpack(fields, vector[2:])
    assert pack(fields).tolist() == vector[2:].tolist()


def test_pack_of_float_accumulators_takes_them_as_they_are():
    class Sums:
        total, count = 3.25, 2.0

    sums = Sums()
    fields = [(sums, "total"), (sums, "count")]
    assert pack(fields, head=(0.0, 1e-3)).tolist() == [0.0, 1e-3, 3.25, 2.0]
    assert pack([]).tolist() == [] and pack([]).dtype == np.float64
    sums.count = 4  # an int takes the general path, as a float64
    assert pack(fields).tolist() == [3.25, 4.0]
