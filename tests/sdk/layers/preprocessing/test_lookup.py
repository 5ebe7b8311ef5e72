"""StringLookup and IntegerLookup against values computed by Keras 3.15.1 (+ TensorFlow)."""

import json
import os

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "preprocessing",
                     "text_fixtures.json")
with open(_PATH, encoding="utf-8") as _f:
    FIXTURES = json.load(_f)

DOCS = np.array([["a", "b", "c"], ["b", "c", "d"], ["c", "d", "e"], ["a", "c", ""]])
INT_DOCS = np.array([[12, 1138, 42], [42, 1000, 36], [42, 12, 7]], "int64")


def _config(config):
    return {k: v for k, v in config.items() if k not in ("name", "dtype")}


def _query(values):
    if isinstance(values[0][0], str):
        return np.array(values, dtype=object)
    return np.array(values, dtype="int64")


@pytest.mark.parametrize("case", FIXTURES["string_lookup"], ids=lambda c: str(c["kwargs"]))
def test_string_lookup_matches_keras(case):
    layer = layers.StringLookup(**case["kwargs"])
    if "vocabulary" not in case["kwargs"]:
        layer.adapt(DOCS)
    assert layer.get_vocabulary() == case["vocabulary"]
    out = layer(_query(case["query"])).numpy()
    if out.dtype == object:
        assert out.tolist() == case["output"]
    else:
        np.testing.assert_allclose(out, np.array(case["output"]), rtol=1e-6)
    assert _config(layer.get_config()) == _config(case["config"])
    if "idf_weights" in case:
        np.testing.assert_allclose(layer.idf_weights, case["idf_weights"], rtol=1e-6)


@pytest.mark.parametrize("case", FIXTURES["integer_lookup"], ids=lambda c: str(c["kwargs"]))
def test_integer_lookup_matches_keras(case):
    layer = layers.IntegerLookup(**case["kwargs"])
    if not case.get("no_adapt"):
        layer.adapt(INT_DOCS)
    assert layer.get_vocabulary() == case["vocabulary"]
    np.testing.assert_allclose(layer(_query(case["query"])).numpy(), np.array(case["output"]),
                               rtol=1e-6)
    assert _config(layer.get_config()) == _config(case["config"])


@pytest.mark.parametrize("cls, kwargs, data, shape", [
    (layers.StringLookup, {"vocabulary": ["a", "b", "c"]}, np.array([["a", "z"], ["c", "b"]]),
     (2, 2)),
    (layers.StringLookup, {"vocabulary": ["a", "b"], "output_mode": "multi_hot"},
     np.array([["a", "z"], ["b", "b"]]), (2, 3)),
    (layers.StringLookup, {"vocabulary": ["a", "b"], "output_mode": "tf_idf",
                           "idf_weights": [0.5, 0.25]}, np.array([["a", "a"], ["b", "q"]]),
     (2, 3)),
    (layers.IntegerLookup, {"vocabulary": [3, 5, 7], "mask_token": 0},
     np.array([[3, 0], [9, 7]]), (2, 2)),
    (layers.IntegerLookup, {"vocabulary": [3, 5], "output_mode": "one_hot"},
     np.array([[3], [9]]), (2, 3)),
])
def test_lookup_layer_test(cls, kwargs, data, shape):
    run_layer_test(cls, kwargs, input_data=data, expected_output_shape=shape,
                   expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                   run_training_check=False, run_gradient_check=False)


def test_vocabulary_file_and_invert_round_trip(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("alpha\nbeta\ngamma\n", encoding="utf-8")
    forward = layers.StringLookup(vocabulary=str(path))
    indices = forward(np.array([["gamma", "alpha", "delta"]])).numpy()
    np.testing.assert_array_equal(indices, [[3, 1, 0]])
    assert forward.get_config()["vocabulary"] is None  # saved as an asset, as in Keras
    inverse = layers.StringLookup(vocabulary=forward.get_vocabulary(), invert=True)
    assert inverse(indices).numpy().tolist() == [["gamma", "alpha", "[UNK]"]]


def test_adapt_on_iterable_of_batches_equals_adapt_on_array():
    whole = layers.StringLookup()
    whole.adapt(DOCS)
    batched = layers.StringLookup()
    batched.adapt(iter([DOCS[:1], DOCS[1:]]))
    assert batched.get_vocabulary() == whole.get_vocabulary()


def test_set_vocabulary_with_special_tokens_and_errors():
    layer = layers.StringLookup(mask_token="[MASK]")
    layer.set_vocabulary(["[MASK]", "[UNK]", "x", "y"])
    assert layer.get_vocabulary() == ["[MASK]", "[UNK]", "x", "y"]
    assert layer(np.array(["y", "[MASK]"])).numpy().tolist() == [3, 0]
    with pytest.raises(ValueError, match="repeated"):
        layer.set_vocabulary(["x", "x"])
    with pytest.raises(ValueError, match="reserved mask token"):
        layer.set_vocabulary(["x", "[MASK]"])
    with pytest.raises(ValueError, match="max_tokens"):
        layers.StringLookup(max_tokens=3, vocabulary=["a", "b", "c"])
    with pytest.raises(ValueError, match="output_mode=bad"):
        layers.StringLookup(output_mode="bad")
    with pytest.raises(ValueError, match="num_oov_indices=-1"):
        layers.IntegerLookup(num_oov_indices=-1)
    with pytest.raises(ValueError, match="Cannot adapt"):
        layers.StringLookup(vocabulary=["a"]).adapt(DOCS)


def test_unknown_value_with_zero_oov_indices_raises():
    layer = layers.IntegerLookup(vocabulary=[1, 2], num_oov_indices=0)
    with pytest.raises(ValueError, match=r"found OOV values \[5\]"):
        layer(np.array([1, 5]))


def test_encoded_mode_needs_a_vocabulary():
    with pytest.raises(RuntimeError, match="must set the layer's vocabulary"):
        layers.StringLookup(output_mode="multi_hot")(np.array([["a"]]))


def test_lookup_then_embedding_in_a_functional_model():
    inputs = lamina.Input(shape=(2,), dtype="string")
    ids = layers.StringLookup(vocabulary=["a", "b", "c"])(inputs)
    assert ids.dtype == "int64"
    outputs = layers.Dense(1)(layers.Flatten()(layers.Embedding(4, 2)(ids)))
    model = lamina.Model(inputs, outputs)
    assert model.predict(np.array([["a", "c"], ["z", "b"]]), verbose=0).shape == (2, 1)
    inverse = layers.StringLookup(vocabulary=["a", "b"], invert=True)
    assert inverse(lamina.Input(shape=(3,), dtype="int64")).dtype == "string"


def test_integer_and_text_vocabulary_files(tmp_path):
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("7\n11\n13\n", encoding="utf-8")
    lookup = layers.IntegerLookup(vocabulary=str(numbers))
    np.testing.assert_array_equal(lookup(np.array([13, 7, 5])).numpy(), [3, 1, 0])
    words = tmp_path / "words.txt"
    words.write_text("cat\ndog\n", encoding="utf-8")
    vectorizer = layers.TextVectorization(vocabulary=str(words))
    assert vectorizer.get_vocabulary() == ["", "[UNK]", "cat", "dog"]
    np.testing.assert_array_equal(vectorizer(np.array(["Dog cat bird"])).numpy(), [[3, 2, 1]])
    with pytest.raises(ValueError, match="does not exist"):
        layers.StringLookup(vocabulary=str(tmp_path / "missing.txt"))


def test_adapt_steps_limits_the_batches_read():
    layer = layers.StringLookup()
    layer.adapt(iter([np.array(["a", "a"]), np.array(["b"])]), steps=1)
    assert layer.get_vocabulary() == ["[UNK]", "a"]
