"""The new optimizers and common arguments train through ``model.fit``."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import layers, optimizers


@pytest.mark.parametrize("make", [
    lambda: optimizers.Adam(0.01, gradient_accumulation_steps=2, use_ema=True),
    lambda: optimizers.Lamb(0.01), lambda: optimizers.Adafactor(),
    lambda: optimizers.Lion(0.001), lambda: optimizers.Ftrl(0.1),
], ids=["accumulate+ema", "lamb", "adafactor", "lion", "ftrl"])
def test_fit_reduces_loss(make):
    lamina.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")
    model = lamina.Sequential([lamina.Input((3,)), layers.Dense(1)])
    model.compile(optimizer=make(), loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_accumulation_counts_updates():
    model = lamina.Sequential([lamina.Input((3,)), layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(0.01, gradient_accumulation_steps=2), loss="mse")
    x = np.ones((16, 3), "float32")
    model.fit(x, x[:, :1], batch_size=4, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 2
