"""TextVectorization against values computed by Keras 3.15.1 (+ TensorFlow)."""

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
CORPUS = np.array(FIXTURES["corpus"])
QUERY = np.array(FIXTURES["text_query"])


def _config(config):
    config = {k: v for k, v in config.items() if k not in ("name", "dtype")}
    if isinstance(config.get("ngrams"), tuple):
        config["ngrams"] = list(config["ngrams"])
    return config


@pytest.mark.parametrize("case", FIXTURES["text_vectorization"],
                         ids=lambda c: str(c["kwargs"]) + ("-batched" * c.get("batched", 0)))
def test_text_vectorization_matches_keras(case):
    layer = layers.TextVectorization(**case["kwargs"])
    layer.adapt(iter([CORPUS[:2], CORPUS[2:]]) if case.get("batched") else CORPUS)
    assert layer.get_vocabulary() == case["vocabulary"]
    query = QUERY[:, None] if "split" in case["kwargs"] and case["kwargs"]["split"] is None \
        else QUERY
    np.testing.assert_allclose(layer(query).numpy(), np.array(case["output"]), rtol=1e-6)
    assert _config(layer.get_config()) == _config(case["config"])
    if "idf_weights" in case:
        np.testing.assert_allclose(layer._lookup_layer.idf_weights, case["idf_weights"],
                                   rtol=1e-6)


@pytest.mark.parametrize("kwargs, shape", [
    ({"vocabulary": ["the", "cat"], "output_sequence_length": 3}, (2, 3)),
    ({"vocabulary": ["the", "cat"], "output_mode": "count"}, (2, 3)),
    ({"vocabulary": ["the", "cat"], "output_mode": "tf_idf", "idf_weights": [0.1, 2.0]}, (2, 3)),
])
def test_text_vectorization_layer_test(kwargs, shape):
    data = np.array([["The cat"], ["a cat, the cat!"]])
    run_layer_test(layers.TextVectorization, kwargs, input_data=data,
                   expected_output_shape=shape, expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=0, run_training_check=False,
                   run_gradient_check=False)


def test_callable_standardize_and_split():
    layer = layers.TextVectorization(
        standardize=lambda texts: np.char.upper(texts.astype(str)),
        split=lambda texts: [t.split("-") for t in texts])
    layer.adapt(np.array(["a-b", "b-c"]))
    assert layer.get_vocabulary() == ["", "[UNK]", "B", "C", "A"]
    np.testing.assert_array_equal(layer(np.array(["c-a-x"])).numpy(), [[3, 4, 1]])


def test_lists_of_strings_and_bytes_are_accepted():
    layer = layers.TextVectorization(vocabulary=["hi", "there"])
    np.testing.assert_array_equal(layer(["hi there", "there"]).numpy(), [[2, 3], [3, 0]])
    np.testing.assert_array_equal(layer(np.array([b"hi"])).numpy(), [[2]])


def test_in_a_functional_model_that_trains():
    vectorizer = layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorizer.adapt(CORPUS)
    inputs = lamina.Input(shape=(1,), dtype="string")
    ids = vectorizer(inputs)
    assert ids.shape == (None, 6) and ids.dtype == "int64"
    x = layers.GlobalAveragePooling1D()(layers.Embedding(20, 4)(ids))
    model = lamina.Model(inputs, layers.Dense(1)(x))
    model.compile(optimizer="sgd", loss="mse")
    before = model.evaluate(CORPUS[:, None], np.ones((5, 1)), verbose=0)
    model.fit(CORPUS[:, None], np.ones((5, 1)), epochs=5, batch_size=5, verbose=0)
    assert model.evaluate(CORPUS[:, None], np.ones((5, 1)), verbose=0) < before
    out = model.predict(CORPUS[:, None], verbose=0)
    assert out.shape == (5, 1) and np.isfinite(out).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"standardize": "upper"}, "standardize=upper"),
    ({"split": "comma"}, "split=comma"),
    ({"ngrams": "2"}, "ngrams=2"),
    ({"output_mode": "multi_hot", "output_sequence_length": 3}, "output_sequence_length=3"),
    ({"output_mode": "bad"}, "output_mode=bad"),
])
def test_argument_errors_echo_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.TextVectorization(**kwargs)


def test_multi_column_input_is_rejected():
    layer = layers.TextVectorization(vocabulary=["a"])
    with pytest.raises(ValueError, match="last shape dimension must be 1"):
        layer(np.array([["a", "b"]]))
