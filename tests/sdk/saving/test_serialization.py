"""Config envelopes: what Keras 3.15 writes, and the Keras 2 dialect read back."""

import json

import numpy as np
import pytest

import lamina
from lamina.saving import limits

KERAS2_FUNCTIONAL = {
    "class_name": "Model", "config": {
        "name": "model", "layers": [
            {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "input_1",
                        "sparse": False, "ragged": False}},
            {"class_name": "Dense", "name": "dense", "inbound_nodes": [[["input_1", 0, 0, {}]]],
             "config": {"name": "dense", "trainable": True, "dtype": "float32", "units": 3,
                        "activation": "relu", "use_bias": True,
                        "kernel_initializer": {"class_name": "GlorotUniform",
                                               "config": {"seed": None}},
                        "bias_initializer": {"class_name": "Zeros", "config": {}},
                        "kernel_regularizer": None, "bias_regularizer": None,
                        "activity_regularizer": None, "kernel_constraint": None,
                        "bias_constraint": None}},
            {"class_name": "Dense", "name": "dense_1", "inbound_nodes": [[["dense", 0, 0, {}]]],
             "config": {"name": "dense_1", "units": 2, "dtype": "float32"}}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_1", 0, 0]]}}


def test_keras2_functional_config():
    model = lamina.models.model_from_config(KERAS2_FUNCTIONAL)
    assert [la.name for la in model.layers] == ["input_1", "dense", "dense_1"]
    assert model.predict(np.ones((2, 4)), verbose=0).shape == (2, 2)


def test_keras2_sequential_with_batch_input_shape():
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 3,
                                           "batch_input_shape": [None, 5]}}]}}
    model = lamina.models.model_from_config(config)
    assert model.predict(np.ones((2, 5)), verbose=0).shape == (2, 3)


def test_envelope_matches_keras():
    model = lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    config = json.loads(model.to_json())
    assert {k for k in config} == {"module", "class_name", "config", "registered_name",
                                   "build_config", "compile_config"}
    assert config["module"] == "keras" and config["build_config"] == {"input_shape": [None, 4]}
    inp, dense = config["config"]["layers"]
    assert inp["config"] == {"batch_shape": [None, 4], "dtype": "float32", "sparse": False,
                             "name": inp["config"]["name"], "ragged": False, "optional": False}
    assert dense["config"]["dtype"] == {"module": "keras", "class_name": "DTypePolicy",
                                        "config": {"name": "float32"}, "registered_name": None}
    assert dense["build_config"] == {"input_shape": [None, 4]}
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert config["compile_config"]["loss"] == "mse"


def test_functional_envelope_and_shared_nodes():
    x = lamina.Input((4,), name="inp")
    shared = lamina.layers.Dense(4, name="shared")
    model = lamina.Model(x, lamina.layers.Dense(1, name="out")(shared(shared(x))))
    config = lamina.saving.serialize_keras_object(model)
    assert (config["module"], config["registered_name"]) == (
        "keras.src.models.functional", "Functional")
    layers = {entry["name"]: entry for entry in config["config"]["layers"]}
    histories = [node["args"][0]["config"]["keras_history"]
                 for node in layers["shared"]["inbound_nodes"]]
    assert histories == [["inp", 0, 0], ["shared", 0, 0]]
    assert layers["out"]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == [
        "shared", 1, 0]
    assert config["config"]["input_layers"] == ["inp", 0, 0]


def test_size_limit_can_be_raised():
    config = json.loads(lamina.Sequential([lamina.Input((4,)),
                                           lamina.layers.Dense(300)]).to_json())
    with limits.size_limit(1000), pytest.raises(ValueError, match="1200 elements"):
        lamina.models.model_from_config(config)
    assert lamina.models.model_from_config(config).count_params() == 1500
