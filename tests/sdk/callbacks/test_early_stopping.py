"""EarlyStopping driven through scripted ``logs`` sequences (keras-notes §1.6)."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.callbacks import EarlyStopping, LambdaCallback


def run_script(model, callback, values, key="val_loss", before_epoch=None):
    """Drive ``callback`` as ``fit`` would; returns the epochs that ran."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    ran = []
    for epoch, value in enumerate(values):
        if before_epoch is not None:
            before_epoch(epoch)
        ran.append(epoch)
        callback.on_epoch_end(epoch, {key: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return ran


# (kwargs, monitored values, epochs that run, stopped_epoch)
CASES = [
    ("patience0_stops_at_first_non_improvement", dict(patience=0),
     [1.0, 0.9, 0.95, 0.5], [0, 1, 2], 2),
    ("patience0_equal_value_is_not_improvement", dict(patience=0),
     [1.0, 1.0, 0.5], [0, 1], 1),
    ("patience2", dict(patience=2), [1.0, 0.9, 0.95, 0.96, 0.1], [0, 1, 2, 3], 3),
    ("patience_reset_by_improvement", dict(patience=2),
     [1.0, 1.1, 0.9, 1.2, 1.3, 0.1], [0, 1, 2, 3, 4], 4),
    ("never_stops_while_improving", dict(patience=0), [5.0, 4.0, 3.0, 2.0], [0, 1, 2, 3], 0),
    ("baseline_never_beaten_stops_after_patience_epochs", dict(patience=2, baseline=0.5),
     [1.0, 1.0, 1.0, 1.0], [0, 1], 1),
    ("baseline_beaten_resets_wait", dict(patience=2, baseline=0.5),
     [0.4, 0.45, 0.3, 0.35, 0.36], [0, 1, 2, 3, 4], 4),
    # Keras quirk: an improvement over `best` returns before the patience check, so a
    # run that keeps improving without beating the baseline never stops.
    ("baseline_not_beaten_but_improving_continues", dict(patience=1, baseline=0.1),
     [1.0, 0.9, 0.8, 0.7], [0, 1, 2, 3], 0),
    ("start_from_epoch_ignores_warmup", dict(patience=0, start_from_epoch=2),
     [0.1, 0.2, 0.3, 0.4, 0.1], [0, 1, 2, 3], 3),
    ("min_delta_strict_min", dict(patience=0, min_delta=0.25), [1.0, 0.75, 0.5], [0, 1], 1),
    ("min_delta_sign_ignored", dict(patience=0, min_delta=-0.25), [1.0, 0.75, 0.5], [0, 1], 1),
    ("min_delta_exceeded_min", dict(patience=0, min_delta=0.25),
     [1.0, 0.625, 0.25, -0.125, -0.25], [0, 1, 2, 3, 4], 4),
    ("mode_max", dict(patience=0, mode="max"), [0.1, 0.2, 0.2, 0.9], [0, 1, 2], 2),
    ("min_delta_strict_max", dict(patience=0, mode="max", min_delta=0.25),
     [0.0, 0.5, 0.75], [0, 1, 2], 2),
    ("patience_counts_from_last_best", dict(patience=3),
     [3.0, 2.0, 2.5, 2.5, 2.5, 2.5], [0, 1, 2, 3, 4], 4),
]


@pytest.mark.parametrize("kwargs,values,ran,stopped", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_stop_epoch(model, kwargs, values, ran, stopped):
    callback = EarlyStopping(**kwargs)
    assert run_script(model, callback, values) == ran
    assert callback.stopped_epoch == stopped
    assert model.stop_training is (stopped > 0)


def test_patience0_never_stops_at_epoch0_even_if_baseline_not_beaten(model):
    callback = EarlyStopping(patience=0, baseline=0.1)
    assert run_script(model, callback, [1.0, 1.0]) == [0, 1]
    assert callback.stopped_epoch == 1


def test_restore_best_weights_at_stop(model, fill_weights, capsys):
    callback = EarlyStopping(patience=1, restore_best_weights=True, verbose=1)
    run_script(model, callback, [1.0, 0.5, 0.7, 0.9, 0.1],
               before_epoch=lambda epoch: fill_weights(model, epoch + 1))
    assert callback.stopped_epoch == 2
    assert callback.best_epoch == 1
    for w in model.get_weights():
        np.testing.assert_array_equal(w, np.full(w.shape, 2.0, dtype="float32"))
    assert capsys.readouterr().out == (
        "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 2.\n")


def test_restore_best_weights_even_without_stopping(model, fill_weights, capsys):
    # Keras 3 restores at train end whether or not EarlyStopping stopped training.
    callback = EarlyStopping(patience=10, restore_best_weights=True, verbose=1)
    run_script(model, callback, [1.0, 0.2, 0.7],
               before_epoch=lambda epoch: fill_weights(model, epoch + 1))
    assert callback.stopped_epoch == 0
    assert all(np.all(w == 2.0) for w in model.get_weights())
    assert capsys.readouterr().out == (
        "Restoring model weights from the end of the best epoch: 2.\n")


def test_restore_snapshot_taken_after_warmup(model, fill_weights):
    # The first monitored epoch (start_from_epoch) is snapshotted even with no improvement.
    callback = EarlyStopping(patience=0, restore_best_weights=True, start_from_epoch=1)
    run_script(model, callback, [0.1, 0.5, 0.9],
               before_epoch=lambda epoch: fill_weights(model, epoch + 1))
    assert callback.stopped_epoch == 2 and callback.best_epoch == 1
    assert all(np.all(w == 2.0) for w in model.get_weights())


def test_no_restore_when_nothing_was_monitored(model, fill_weights):
    fill_weights(model, 7.0)
    callback = EarlyStopping(restore_best_weights=True, start_from_epoch=5)
    run_script(model, callback, [1.0, 2.0])
    assert callback.best_weights is None
    assert all(np.all(w == 7.0) for w in model.get_weights())


def test_silent_by_default(model, capsys):
    run_script(model, EarlyStopping(patience=0, restore_best_weights=True), [1.0, 2.0])
    assert capsys.readouterr().out == ""


def test_missing_monitor_warns_and_does_nothing(model):
    callback = EarlyStopping(monitor="val_loss", patience=0)
    callback.set_model(model)
    callback.on_train_begin()
    with pytest.warns(UserWarning, match=r"Early stopping conditioned on metric `val_loss` "
                      r"which is not available\. Available metrics are: loss,mae"):
        callback.on_epoch_end(1, {"loss": 1.0, "mae": 2.0})
    assert callback.wait == 0 and not model.stop_training


def test_auto_mode_direction(make_model, data):
    x, y = data
    model = make_model(metrics=["mae", "accuracy"])
    model.train_on_batch(x, y)  # compiled metrics are built at the first batch
    for monitor, op_is_less in [("loss", True), ("val_loss", True), ("val_mae", True),
                                ("mae", True), ("accuracy", False), ("val_accuracy", False)]:
        callback = EarlyStopping(monitor=monitor)
        callback.set_model(model)
        callback._set_monitor_op()
        assert callback._is_improvement(0.5, 1.0) is op_is_less, monitor
        assert callback._is_improvement(1.5, 1.0) is (not op_is_less), monitor


def test_auto_mode_unknown_metric_raises(model):
    callback = EarlyStopping(monitor="val_score")
    callback.set_model(model)
    callback.on_train_begin()
    with pytest.raises(ValueError, match=r"monitor=val_score.*Pass `mode='max'`.*`mode='min'`"):
        callback.on_epoch_end(0, {"val_score": 1.0})


def test_unknown_mode_warns_and_falls_back_to_auto():
    with pytest.warns(UserWarning, match="EarlyStopping mode 'bogus' is unknown, fallback to "
                                         "auto mode."):
        callback = EarlyStopping(mode="bogus")
    assert callback.mode == "auto"


def test_reusable_across_runs(model):
    callback = EarlyStopping(patience=1)
    assert run_script(model, callback, [1.0, 2.0, 3.0, 4.0]) == [0, 1]
    # A second run with higher values must not be compared with the first run's best.
    assert run_script(model, callback, [5.0, 4.0, 3.0, 2.0]) == [0, 1, 2, 3]
    assert callback.stopped_epoch == 0 and callback.best == 2.0
    assert callback.min_delta == 0


def test_in_fit_stops_and_restores(model, data):
    x, y = data
    scores = [0.9, 0.5, 0.6, 0.7, 0.8, 0.1, 0.1]
    seen_weights = {}

    def score(epoch, logs):
        logs["score"] = scores[epoch]
        seen_weights[epoch] = model.get_weights()

    callback = EarlyStopping(monitor="score", mode="min", patience=2,
                             restore_best_weights=True)
    history = model.fit(x, y, epochs=len(scores), batch_size=8, verbose=0,
                        callbacks=[LambdaCallback(on_epoch_end=score), callback])
    assert history.epoch == [0, 1, 2, 3]
    assert len(history.history["loss"]) == 4
    assert history.history["score"] == scores[:4]
    assert callback.stopped_epoch == 3 and callback.best_epoch == 1
    for got, want in zip(model.get_weights(), seen_weights[1]):
        np.testing.assert_array_equal(got, want)
    # The same instance serves a second fit.
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0,
                        callbacks=[LambdaCallback(on_epoch_end=score), callback])
    assert history.epoch == [0, 1, 2] and callback.stopped_epoch == 0
