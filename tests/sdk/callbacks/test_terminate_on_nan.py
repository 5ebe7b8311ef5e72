"""TerminateOnNaN: stops (or raises) on a NaN/inf batch loss."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import ops
from lamina.callbacks import TerminateOnNaN


@pytest.mark.parametrize("loss", [float("nan"), float("inf"), float("-inf")])
def test_stops_on_invalid_loss(model, loss, capsys):
    callback = TerminateOnNaN()
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_batch_end(3, {"loss": 1.0})
    assert not model.stop_training
    callback.on_train_batch_end(4, {"loss": loss})
    assert model.stop_training
    assert capsys.readouterr().out == "Batch 4: Invalid loss, terminating training\n"


def test_raise_error(model):
    callback = TerminateOnNaN(raise_error=True)
    callback.set_model(model)
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2. Training "
                                           "terminated."):
        callback.on_train_batch_end(2, {"loss": float("nan")})


def test_in_fit_stops_after_first_invalid_batch(make_model, data, capsys):
    x, y = data
    model = make_model(optimizer="sgd")
    model.compile(optimizer="sgd",
                  loss=lambda y_true, y_pred: ops.mean(ops.square(y_pred - y_true)) * np.inf)
    seen = []

    class Count(TerminateOnNaN):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    with np.errstate(all="ignore"):
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[Count()])
    assert seen == [0]
    assert history.epoch == [0]
    assert capsys.readouterr().out == "Batch 0: Invalid loss, terminating training\n"
