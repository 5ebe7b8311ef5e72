"""LearningRateScheduler: the schedule sets the rate each epoch; History records it."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.callbacks import LearningRateScheduler


def test_schedule_sets_rate_and_history(make_model, data, capsys):
    x, y = data
    model = make_model(optimizer="sgd")
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr if epoch < 2 else lr * 0.5

    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0,
                        callbacks=[LearningRateScheduler(schedule, verbose=1)])
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    assert np.allclose([lr for _, lr in seen], [0.01, 0.01, 0.01, 0.005])
    assert np.allclose(history.history["learning_rate"], [0.01, 0.01, 0.005, 0.0025])
    out = capsys.readouterr().out
    # As in Keras the float32 rate is printed as a Python float.
    assert "\nEpoch 3: LearningRateScheduler setting learning rate to 0.004999999888241291." in out


def test_one_argument_schedule(make_model, data):
    x, y = data
    model = make_model(optimizer="sgd")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                        callbacks=[LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))])
    assert np.allclose(history.history["learning_rate"], [0.1, 0.05, 0.1 / 3])


def test_initial_epoch_is_passed(make_model, data):
    x, y = data
    model = make_model(optimizer="sgd")
    epochs = []
    model.fit(x, y, epochs=3, initial_epoch=1, verbose=0,
              callbacks=[LearningRateScheduler(lambda e, lr: epochs.append(e) or lr)])
    assert epochs == [1, 2]


@pytest.mark.parametrize("bad", [1, "0.1", None])
def test_non_float_schedule_output_raises(model, data, bad):
    x, y = data
    with pytest.raises(ValueError, match="The output of the `schedule` function should be a "
                                         "float. Got: "):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[LearningRateScheduler(lambda e, lr: bad)])


def test_numpy_float_outputs_accepted(model):
    callback = LearningRateScheduler(lambda e, lr: np.float32(0.25))
    callback.set_model(model)
    callback.on_epoch_begin(0)
    assert float(model.optimizer.learning_rate) == 0.25
