"""CategoryEncoding and Discretization against values computed by Keras 3.15.1 (jax)."""

import json
import os

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "preprocessing",
                     "numeric_fixtures.json")
with open(_PATH, encoding="utf-8") as _f:
    FIXTURES = json.load(_f)


def _config(config):
    return {k: v for k, v in config.items() if k not in ("name", "dtype")}


@pytest.mark.parametrize("case", FIXTURES["category_encoding"],
                         ids=lambda c: f"{c['kwargs']}-{np.shape(c['input'])}")
def test_category_encoding_matches_keras(case):
    layer = layers.CategoryEncoding(**case["kwargs"])
    kwargs = {"count_weights": np.array(case["count_weights"])} if "count_weights" in case \
        else {}
    out = layer(np.array(case["input"]), **kwargs).numpy()
    np.testing.assert_allclose(out, np.array(case["output"]))
    assert layer.compute_output_shape(np.shape(case["input"])) == out.shape
    if "config" in case:
        assert _config(layer.get_config()) == _config(case["config"])


@pytest.mark.parametrize("case", FIXTURES["discretization"], ids=lambda c: str(c["kwargs"]))
def test_discretization_matches_keras(case):
    layer = layers.Discretization(**case["kwargs"])
    out = layer(np.array(case["input"])).numpy()
    np.testing.assert_array_equal(out, np.array(case["output"]))
    assert out.dtype == ("int32" if "output_mode" not in case["kwargs"] else "float32")
    assert _config(layer.get_config()) == _config(case["config"])


@pytest.mark.parametrize("case", FIXTURES["discretization_adapt"],
                         ids=lambda c: f"bins{c['num_bins']}-eps{c['epsilon']}")
def test_discretization_adapt_matches_keras(case):
    data = np.array(case["data"], dtype="float32")
    layer = layers.Discretization(num_bins=case["num_bins"], epsilon=case["epsilon"])
    layer.adapt(data)
    np.testing.assert_allclose(layer.bin_boundaries, case["bin_boundaries"], rtol=1e-6)
    np.testing.assert_array_equal(layer(data).numpy(), np.array(case["output"]))
    batched = layers.Discretization(num_bins=case["num_bins"], epsilon=case["epsilon"])
    half = len(data) // 2
    batched.adapt(iter([data[:half], data[half:]]))
    np.testing.assert_allclose(batched.bin_boundaries, case["batched_bin_boundaries"],
                               rtol=1e-6)
    assert _config(layer.get_config()) == _config(case["config"])
    clone = layers.Discretization.from_config(layer.get_config())
    assert clone.bin_boundaries == layer.bin_boundaries


@pytest.mark.parametrize("cls, kwargs, data, shape", [
    (layers.CategoryEncoding, {"num_tokens": 5, "output_mode": "count"},
     np.array([[0, 4, 4], [1, 2, 3]]), (2, 5)),
    (layers.CategoryEncoding, {"num_tokens": 3, "output_mode": "one_hot"},
     np.array([[0], [2]]), (2, 3)),
    (layers.Discretization, {"bin_boundaries": [-0.5, 0.5]}, None, (3, 4)),
    (layers.Discretization, {"bin_boundaries": [0.0], "output_mode": "multi_hot"}, None,
     (3, 2)),
])
def test_layer_test(cls, kwargs, data, shape):
    run_layer_test(cls, kwargs, input_data=data, input_shape=None if data is not None else
                   (3, 4), expected_output_shape=shape, expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0, run_training_check=False,
                   run_gradient_check=False)


def test_discretize_then_encode_in_a_functional_model():
    inputs = lamina.Input(shape=(1,))
    bins = layers.Discretization(bin_boundaries=[0.0, 1.0])(inputs)
    assert bins.dtype == "int32"
    encoded = layers.CategoryEncoding(num_tokens=3, output_mode="one_hot")(bins)
    model = lamina.Model(inputs, layers.Dense(2)(encoded))
    assert model.predict(np.array([[-1.0], [0.5], [3.0]]), verbose=0).shape == (3, 2)


@pytest.mark.parametrize("cls, kwargs, match", [
    (layers.CategoryEncoding, {"num_tokens": 0}, "num_tokens=0"),
    (layers.CategoryEncoding, {"num_tokens": 3, "output_mode": "bad"}, "bad"),
    (layers.Discretization, {}, "either `num_bins` or `bin_boundaries`"),
    (layers.Discretization, {"num_bins": 2, "bin_boundaries": [0.0]}, "num_bins=2"),
    (layers.Discretization, {"num_bins": -1}, "num_bins=-1"),
])
def test_argument_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_discretization_with_boundaries_cannot_adapt():
    with pytest.raises(ValueError, match="initialized with `bin_boundaries`"):
        layers.Discretization(bin_boundaries=[0.0]).adapt(np.zeros(3))
    with pytest.raises(ValueError, match="call `adapt"):
        layers.Discretization(num_bins=3)(np.zeros(3))
