"""Fixtures for callback tests: a tiny real model and a recorder of saved files."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lamina
from lamina import layers


def _make_model(metrics=None, optimizer="sgd", dropout=0.0, seed=0):
    lamina.utils.set_random_seed(seed)
    model = lamina.Sequential([lamina.Input((3,)), layers.Dense(4, activation="relu")]
                              + ([layers.Dropout(dropout)] if dropout else [])
                              + [layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse", metrics=metrics)
    return model


@pytest.fixture
def make_model():
    """``make_model(metrics=None, optimizer="sgd", dropout=0.0, seed=0)``: a compiled MLP."""
    return _make_model


@pytest.fixture
def model():
    return _make_model()


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(32, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")
    return x, y


@pytest.fixture
def saved(model, monkeypatch):
    """Record ``model.save``/``save_weights`` calls (and create the files) on ``model``."""
    paths = []

    def fake_save(filepath, overwrite=True, **kwargs):
        assert overwrite is True
        paths.append(os.path.basename(filepath))
        with open(filepath, "wb") as f:
            f.write(b"x")

    monkeypatch.setattr(model, "save", fake_save, raising=False)
    monkeypatch.setattr(model, "save_weights", fake_save, raising=False)
    return paths


def _fill_weights(model, value):
    model.set_weights([np.full(w.shape, value, dtype="float32") for w in model.get_weights()])


@pytest.fixture
def fill_weights():
    """``fill_weights(model, value)``: every weight set to ``value`` (marks an epoch)."""
    return _fill_weights
