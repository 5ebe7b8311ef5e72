"""ReduceLROnPlateau: scripted plateaus, cooldown, min_lr, History's learning_rate."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.callbacks import LambdaCallback, ReduceLROnPlateau


def run_script(model, callback, values, key="val_loss"):
    """Returns the learning rate logged at each epoch and the rate after the run."""
    callback.set_model(model)
    callback.on_train_begin()
    logged = []
    for epoch, value in enumerate(values):
        logs = {key: value}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
    return logged, float(model.optimizer.learning_rate)


def test_factor_must_be_below_one():
    with pytest.raises(ValueError, match="ReduceLROnPlateau does not support a factor >= 1.0. "
                                         "Received factor=1.0"):
        ReduceLROnPlateau(factor=1.0)


def test_reduces_after_patience(make_model, capsys):
    model = make_model(optimizer="sgd")  # learning rate 0.01
    callback = ReduceLROnPlateau(factor=0.5, patience=2, verbose=1)
    logged, final = run_script(model, callback, [1.0, 1.0, 1.0, 1.0, 1.0])
    # Logged rates are the rate *before* the epoch-end decision.
    assert np.allclose(logged, [0.01, 0.01, 0.01, 0.005, 0.005])
    assert np.isclose(final, 0.0025)
    out = capsys.readouterr().out
    # As in Keras the float32 rate times the factor is printed as a Python float.
    prefix = "\nEpoch {}: ReduceLROnPlateau reducing learning rate to {}.\n"
    assert out == (prefix.format(3, "0.004999999888241291")
                   + prefix.format(5, "0.0024999999441206455"))


def test_min_delta_cooldown_and_min_lr(make_model):
    model = make_model(optimizer="sgd")
    callback = ReduceLROnPlateau(factor=0.1, patience=1, cooldown=2, min_lr=0.0005,
                                 min_delta=0.1)
    # 0.95 is within min_delta of 1.0: not an improvement.
    logged, final = run_script(model, callback, [1.0, 0.95, 0.95, 0.95, 0.95, 0.95])
    # Epoch 1 reduces (0.01 -> 0.001) and starts a cooldown of 2, which is decremented at
    # the start of epochs 2 and 3, so epoch 3 counts again and reduces to min_lr; the rate
    # then stays at min_lr.
    assert np.allclose(logged, [0.01, 0.01, 0.001, 0.001, 0.0005, 0.0005])
    assert np.isclose(final, 0.0005)


def test_improvement_resets_wait(make_model):
    model = make_model(optimizer="sgd")
    callback = ReduceLROnPlateau(factor=0.5, patience=2, mode="max", monitor="acc")
    _, final = run_script(model, callback, [0.1, 0.1, 0.5, 0.5, 0.9, 0.9], key="acc")
    assert np.isclose(final, 0.01)


def test_reset_on_train_begin(make_model):
    model = make_model(optimizer="sgd")
    callback = ReduceLROnPlateau(factor=0.5, patience=1)
    run_script(model, callback, [0.1])
    # A new fit must not compare against the previous run's best (Keras >= 3.15).
    _, final = run_script(model, callback, [5.0, 4.0, 3.0])
    assert np.isclose(final, 0.01)


def test_missing_monitor_warns(model):
    callback = ReduceLROnPlateau()
    callback.set_model(model)
    with pytest.warns(UserWarning, match="Learning rate reduction is conditioned on metric "
                                         "`val_loss` which is not available"):
        callback.on_epoch_end(0, {"loss": 1.0})


def test_in_fit_history_records_learning_rate(make_model, data):
    x, y = data
    model = make_model(optimizer="sgd")
    plateau = [1.0, 1.0, 1.0, 1.0]
    history = model.fit(
        x, y, epochs=4, batch_size=16, verbose=0,
        callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: logs.update(score=plateau[e])),
                   ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=1)])
    assert np.allclose(history.history["learning_rate"], [0.01, 0.01, 0.005, 0.0025])
    assert np.isclose(float(model.optimizer.learning_rate), 0.00125)
