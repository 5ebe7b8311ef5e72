"""Builders of small compiled models for the scikit-learn wrapper tests."""

from __future__ import annotations

import pytest

import lamina


def _build_classifier(X, y, hidden=16, learning_rate=0.05):
    model = lamina.Sequential([lamina.Input((X.shape[1],)),
                               lamina.layers.Dense(hidden, activation="relu"),
                               lamina.layers.Dense(y.shape[1], activation="softmax")])
    model.compile(optimizer=lamina.optimizers.Adam(learning_rate),
                  loss="categorical_crossentropy")
    return model


def _build_regressor(X, y, hidden=16):
    model = lamina.Sequential([lamina.Input((X.shape[1],)),
                               lamina.layers.Dense(hidden, activation="relu"),
                               lamina.layers.Dense(y.shape[1])])
    model.compile(optimizer=lamina.optimizers.Adam(0.05), loss="mse")
    return model


@pytest.fixture
def build_classifier():
    """``build(X, y, hidden=16, learning_rate=0.05)``: softmax MLP, one unit per class."""
    return _build_classifier


@pytest.fixture
def build_regressor():
    """``build(X, y, hidden=16)``: linear-output MLP, one unit per target column."""
    return _build_regressor
