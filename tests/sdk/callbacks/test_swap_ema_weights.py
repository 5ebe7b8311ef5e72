"""SwapEMAWeights: evaluation sees the optimizer's moving averages, training its weights."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import optimizers
from lamina.callbacks import Callback, SwapEMAWeights


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_test_begin(self, logs=None):
        self.seen.append(self.model.get_weights())


def _averages(model):
    return [a.numpy() for a in model.optimizer._model_variables_moving_average]


def test_evaluate_uses_ema_then_swaps_back(make_model, data):
    model = make_model(optimizer=optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5))
    model.fit(*data, epochs=2, verbose=0)
    trained, averages = model.get_weights(), _averages(model)
    assert not all(np.allclose(a, b) for a, b in zip(trained, averages))
    recorder = Recorder()
    model.evaluate(*data, verbose=0, callbacks=[SwapEMAWeights(), recorder])
    for got, want in zip(recorder.seen[0], averages):
        np.testing.assert_allclose(got, want)
    for got, want in zip(model.get_weights(), trained):
        np.testing.assert_allclose(got, want)


def test_swap_on_epoch_leaves_ema_weights_after_fit(make_model, data):
    model = make_model(optimizer=optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5))
    model.fit(*data, epochs=2, verbose=0, callbacks=[SwapEMAWeights(swap_on_epoch=True)])
    for got, want in zip(model.get_weights(), _averages(model)):
        np.testing.assert_allclose(got, want)


def test_requires_use_ema(model, data):
    model.fit(*data, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="use_ema=False"):
        model.evaluate(*data, verbose=0, callbacks=[SwapEMAWeights()])
