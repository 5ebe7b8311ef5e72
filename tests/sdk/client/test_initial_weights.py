"""What Client.fit sends as the weights a remote job starts from."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina.client import _spec


def _model(built=True):
    layers = [lamina.layers.Dense(3), lamina.layers.Dense(2)]
    if built:
        layers.insert(0, lamina.Input((4,)))
    model = lamina.Sequential(layers)
    model.compile(optimizer="adam", loss="mse")
    return model


def test_model_weights_are_flattened_in_order():
    model = _model()
    vector = _spec.initial_weights(model, "model")
    expected = np.concatenate([w.reshape(-1) for w in model.get_weights()])
    np.testing.assert_array_equal(vector, expected)
    assert vector.dtype == np.float32 and vector.size == model.count_params()


def test_unbuilt_model_and_none_leave_the_initialisation_to_the_service():
    assert _spec.initial_weights(_model(built=False), "model") is None
    assert _spec.initial_weights(_model(), None) is None


def test_explicit_arrays_must_match_the_model():
    model = _model()
    arrays = [np.ones_like(w) for w in model.get_weights()]
    np.testing.assert_array_equal(_spec.initial_weights(model, arrays),
                                  np.ones(model.count_params(), np.float32))
    with pytest.raises(ValueError, match=r"must match the model's weights"):
        _spec.initial_weights(model, arrays[:-1])
    with pytest.raises(ValueError, match=r"initial_weights='latest'"):
        _spec.initial_weights(model, "latest")
