"""A two-output model logs what Keras 3.15.1 logs: per-output losses, metric names,
``evaluate``'s order (fixture: tests/fixtures/multi_output/make_fixture.py)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import lamina as keras

FIXTURE = json.loads((pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "multi_output"
                      / "keras_logs.json").read_text())
CASES = {
    "list": dict(loss=["mse", "sparse_categorical_crossentropy"],
                 metrics=[["mae", "mse"], ["accuracy", "sparse_categorical_crossentropy"]]),
    "dict": dict(loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                 metrics={"reg": ["mae", "mse"], "cls": ["accuracy"]},
                 loss_weights={"reg": 0.5, "cls": 2.0}),
}


def _model():
    inputs = keras.Input(shape=(4,), name="features")
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    a = keras.layers.Dense(1, name="reg")(hidden)
    b = keras.layers.Dense(3, activation="softmax", name="cls")(hidden)
    model = keras.Model(inputs, [a, b])
    model.set_weights([np.asarray(w, dtype="float32") for w in FIXTURE["weights"]])
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_output_logs_equal_keras(case):
    want = FIXTURE["cases"][case]
    x = np.asarray(FIXTURE["x"], dtype="float32")
    y = [np.asarray(FIXTURE["y_reg"], dtype="float32"), np.asarray(FIXTURE["y_cls"])]
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), **CASES[case])
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert list(history.history) == want["history_keys"]
    for key, values in want["history"].items():
        np.testing.assert_allclose(history.history[key], values, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=8, verbose=0), want["evaluate"],
                               rtol=1e-5)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert sorted(logs) == sorted(want["evaluate_dict"])
    for key, value in want["evaluate_dict"].items():
        np.testing.assert_allclose(logs[key], value, rtol=1e-5, err_msg=key)
    assert model.metrics_names == want["metrics_names"]


def test_single_output_models_log_no_per_output_loss():
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0)
    assert sorted(history.history) == ["loss", "mae"]
