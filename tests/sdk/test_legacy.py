"""Keras 2's serialization (keras.legacy.saving, keras.utils.legacy) and the refused
keras.optimizers.legacy."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras


def test_legacy_round_trip_of_layers_optimizers_and_functions():
    saving = keras.legacy.saving
    assert keras.utils.legacy.serialize_keras_object is saving.serialize_keras_object
    dense = keras.layers.Dense(3, activation="relu", name="d")
    config = saving.serialize_keras_object(dense)
    assert config["class_name"] == "Dense" and "module" not in config
    again = saving.deserialize_keras_object(config)
    assert isinstance(again, keras.layers.Dense) and again.get_config() == dense.get_config()
    adam = saving.deserialize_keras_object(saving.serialize_keras_object(
        keras.optimizers.Adam(0.01)))
    assert isinstance(adam, keras.optimizers.Adam) and adam.learning_rate == np.float32(0.01)
    assert saving.serialize_keras_object(keras.activations.relu) == "relu"
    assert saving.deserialize_keras_object(None) is None


def test_legacy_deserialize_resolves_only_known_names():
    class Custom:
        def __init__(self, scale=1.0):
            self.scale = scale

    config = {"class_name": "Custom", "config": {"scale": 2.0}}
    with pytest.raises(ValueError, match="Unknown object: 'Custom'"):
        keras.legacy.saving.deserialize_keras_object(config)
    made = keras.legacy.saving.deserialize_keras_object(config, module_objects={"Custom": Custom})
    assert made.scale == 2.0
    with pytest.raises(ValueError, match="Improper config format"):
        keras.legacy.saving.deserialize_keras_object({"class_name": "Dense"})


@pytest.mark.parametrize("name", ["Adagrad", "Adam", "Ftrl", "Optimizer", "RMSprop", "SGD"])
def test_keras_2_legacy_optimizers_are_refused_with_advice(name):
    with pytest.raises(ImportError, match="not supported in Keras 3"):
        getattr(keras.optimizers.legacy, name)(learning_rate=0.1)
