"""Hashing and HashedCrossing against values computed by Keras 3.15.1 (+ TensorFlow)."""

import json
import os

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.layers.preprocessing import hash_functions
from lamina.testing import run_layer_test

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "preprocessing",
                     "text_fixtures.json")
with open(_PATH, encoding="utf-8") as _f:
    FIXTURES = json.load(_f)


def _array(values, kind):
    if kind in "UO":
        return np.array(values, dtype=object)
    return np.array(values, dtype={"i": "int64", "f": "float32", "b": "bool"}[kind])


def _config(config):
    config = dict(config)
    config.pop("name")
    dtype = config.pop("dtype")
    return config, dtype if isinstance(dtype, str) else dtype["config"]["name"]


@pytest.mark.parametrize("case", FIXTURES["hashing"], ids=lambda c: str(c["kwargs"]))
def test_hashing_matches_keras(case):
    layer = layers.Hashing(**case["kwargs"])
    out = layer(_array(case["input"], case["dtype"])).numpy()
    np.testing.assert_array_equal(out, np.array(case["output"]))
    assert _config(layer.get_config()) == _config(case["config"])


@pytest.mark.parametrize("case", FIXTURES["hashed_crossing"], ids=lambda c: str(c["kwargs"]))
def test_hashed_crossing_matches_keras(case):
    layer = layers.HashedCrossing(**case["kwargs"])
    inputs = [_array(x, k) for x, k in zip(case["inputs"], case["dtypes"])]
    np.testing.assert_array_equal(layer(inputs).numpy(), np.array(case["output"]))
    assert _config(layer.get_config()) == _config(case["config"])


def test_farmhash_and_siphash_reference_values():
    # Published test vectors: SipHash-2-4 paper (key 00..0f, message 00..0e).
    key = (int.from_bytes(bytes(range(8)), "little"), int.from_bytes(bytes(range(8, 16)), "little"))
    assert hash_functions.siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5
    assert hash_functions.siphash24(key, b"") == 0x726FDB47DD0E0E31
    # Every FarmHash length branch differs from its neighbours (no branch is dead code).
    values = {hash_functions.fingerprint64(b"x" * n) for n in (0, 3, 7, 15, 16, 31, 63, 64,
                                                                65, 129, 200)}
    assert len(values) == 11


@pytest.mark.parametrize("kwargs, data, shape", [
    ({"num_bins": 5}, np.array([["a"], ["b"], ["c"]]), (3, 1)),
    ({"num_bins": 5, "output_mode": "multi_hot"}, np.array([["a", "b"], ["c", "d"]]), (2, 5)),
    ({"num_bins": 4, "salt": 3, "output_mode": "count"}, np.array([[1, 2], [2, 2]]), (2, 4)),
])
def test_hashing_layer_test(kwargs, data, shape):
    run_layer_test(layers.Hashing, kwargs, input_data=data, expected_output_shape=shape,
                   expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                   run_training_check=False, run_gradient_check=False)


def test_hashed_crossing_layer_test():
    data = [np.array([["a"], ["b"]]), np.array([[1], [2]])]
    run_layer_test(layers.HashedCrossing, {"num_bins": 7, "output_mode": "one_hot"},
                   input_data=data, expected_output_shape=(2, 7),
                   expected_num_trainable_weights=0, run_training_check=False,
                   run_gradient_check=False)


def test_hashing_in_a_functional_model_with_string_input():
    inputs = lamina.Input(shape=(1,), dtype="string")
    outputs = layers.Hashing(num_bins=8, output_mode="one_hot")(inputs)
    assert outputs.shape == (None, 8) and outputs.dtype == "float32"
    model = lamina.Model(inputs, outputs)
    data = np.array([["red"], ["green"], ["red"]])
    out = model.predict(data, verbose=0)
    np.testing.assert_array_equal(out[0], out[2])
    assert out.sum() == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"num_bins": 0}, "num_bins=0"),
    ({"num_bins": 3, "output_mode": "bad"}, "output_mode=bad"),
    ({"num_bins": 3, "salt": "x"}, "salt=x"),
    ({"num_bins": 3, "dtype": "float32"}, "dtype=float32"),
])
def test_hashing_errors_echo_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.Hashing(**kwargs)


def test_hashed_crossing_rejects_bad_inputs():
    layer = layers.HashedCrossing(num_bins=3)
    with pytest.raises(ValueError, match="at least two"):
        layer([np.array(["a"])])
    with pytest.raises(ValueError, match="equal shape"):
        layer([np.array(["a", "b"]), np.array(["a"])])
    with pytest.raises(ValueError, match="output_mode=multi_hot"):
        layers.HashedCrossing(num_bins=3, output_mode="multi_hot")
