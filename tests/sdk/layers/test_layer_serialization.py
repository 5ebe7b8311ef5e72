"""lamina.layers.serialize / deserialize (Keras's signatures, allowlisted resolution)."""

import inspect

import numpy as np
import pytest

from lamina import constraints, initializers, layers, regularizers


def test_signatures_match_keras():
    assert list(inspect.signature(layers.serialize).parameters) == ["layer"]
    assert list(inspect.signature(layers.deserialize).parameters) == ["config",
                                                                      "custom_objects"]


def test_round_trip_of_a_built_layer():
    layer = layers.Dense(3, activation="relu", name="d")
    layer.build((None, 4))
    config = layers.serialize(layer)
    assert (config["module"], config["class_name"]) == ("keras.layers", "Dense")
    assert config["config"]["units"] == 3
    again = layers.deserialize(config)
    assert type(again) is layers.Dense
    assert again.get_config() == layer.get_config()


def test_keras_written_config_and_new_layers():
    config = {"module": "keras.layers", "class_name": "EinsumDense", "registered_name": None,
              "config": {"name": "e", "equation": "ab,bc->ac", "output_shape": [4],
                         "bias_axes": "c", "dtype": {"module": "keras",
                                                     "class_name": "DTypePolicy",
                                                     "config": {"name": "float32"},
                                                     "registered_name": None}}}
    layer = layers.deserialize(config)
    assert layer(np.ones((2, 3), "float32")).shape == (2, 4)


class Scaler(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_custom_layers_need_custom_objects():
    config = layers.serialize(Scaler(3.0))
    with pytest.raises(ValueError, match="Scaler"):
        layers.deserialize(config)
    assert layers.deserialize(config, custom_objects={"Scaler": Scaler}).factor == 3.0


def test_foreign_module_is_refused():
    config = {"module": "os", "class_name": "system", "config": {}, "registered_name": None}
    with pytest.raises(ValueError):
        layers.deserialize(config)


@pytest.mark.parametrize("family, name, example", [
    (initializers, "initializer", "ones"), (regularizers, "regularizer", "l2"),
    (constraints, "constraint", "non_neg")])
def test_family_serialize_parameter_names_match_keras(family, name, example):
    assert list(inspect.signature(family.serialize).parameters) == [name]
    assert family.serialize(None) is None
    obj = family.get(example)
    assert family.deserialize(family.serialize(obj)).get_config() == obj.get_config()
