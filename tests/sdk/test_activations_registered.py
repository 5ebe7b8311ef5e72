"""Functions registered with register_keras_serializable round-trip as activations."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import activations, layers


@pytest.fixture
def cubed():
    @lamina.saving.register_keras_serializable(package="act_test", name="cubed")
    def cubed(x):
        return x * x * x

    yield cubed
    lamina.saving.get_custom_objects().pop("act_test>cubed", None)


def test_serialize_gives_keras_function_config(cubed):
    assert activations.serialize(cubed) == {
        "module": "builtins", "class_name": "function", "config": "act_test>cubed",
        "registered_name": "function"}
    assert activations.serialize(activations.relu) == "relu"


def test_deserialize_finds_registered_and_scoped_functions(cubed):
    assert activations.deserialize("act_test>cubed") is cubed
    assert activations.deserialize(activations.serialize(cubed)) is cubed

    def local_fn(x):
        return x

    with pytest.raises(ValueError, match="Unknown activation"):
        activations.deserialize("local_fn")
    with lamina.saving.custom_object_scope({"local_fn": local_fn}):
        assert activations.deserialize("local_fn") is local_fn


def test_dense_and_lstm_with_registered_activation_round_trip(cubed, tmp_path):
    inputs = lamina.Input((3, 2))
    x = layers.LSTM(4, activation=cubed)(inputs)
    outputs = layers.Dense(1, activation=cubed)(x)
    model = lamina.Model(inputs, outputs)
    data = np.linspace(-1, 1, 12, dtype="float32").reshape(2, 3, 2)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = lamina.models.load_model(path)
    assert loaded.layers[-1].activation is cubed
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=1e-6)
