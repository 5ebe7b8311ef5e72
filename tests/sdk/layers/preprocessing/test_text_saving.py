"""Lookup and text layers in ``.keras`` archives: Keras's assets and vars layout."""

import json
import os
import zipfile

import numpy as np
import pytest

import lamina
from lamina import layers

_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "preprocessing")
with open(os.path.join(_DIR, "text_fixtures.json"), encoding="utf-8") as _f:
    FIXTURES = json.load(_f)
CORPUS = np.array(FIXTURES["corpus"])
QUERY = np.array(FIXTURES["text_query"])[:, None]


def test_loads_a_keras_written_text_vectorization_model():
    model = lamina.saving.load_model(os.path.join(_DIR, "keras_textvec_model.keras"))
    assert model.layers[1].get_vocabulary() == FIXTURES["saved_model_vocabulary"]
    np.testing.assert_array_equal(model.predict(QUERY, verbose=0),
                                  FIXTURES["saved_model_output"])


def test_loads_a_keras_written_tf_idf_model():
    model = lamina.saving.load_model(os.path.join(_DIR, "keras_tfidf_model.keras"))
    np.testing.assert_allclose(model.predict(QUERY, verbose=0), FIXTURES["saved_tfidf_output"],
                               rtol=1e-6)


@pytest.mark.parametrize("kwargs", [{"output_sequence_length": 7}, {"output_mode": "tf_idf"},
                                    {"output_mode": "count", "ngrams": 2}])
def test_text_vectorization_round_trip_in_keras_layout(tmp_path, kwargs):
    vectorizer = layers.TextVectorization(name="tv", **kwargs)
    vectorizer.adapt(CORPUS)
    inputs = lamina.Input(shape=(1,), dtype="string")
    model = lamina.Model(inputs, vectorizer(inputs))
    path = str(tmp_path / "model.keras")
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        vocab = archive.read("assets/layers/text_vectorization/vocabulary.txt").decode()
    assert "assets/layers/text_vectorization/_lookup_layer/vocabulary.txt" in names
    assert vocab.split("\n") == vectorizer.get_vocabulary()
    loaded = lamina.saving.load_model(path)
    assert loaded.layers[1].get_vocabulary() == vectorizer.get_vocabulary()
    np.testing.assert_allclose(loaded.predict(QUERY, verbose=0),
                               model.predict(QUERY, verbose=0), rtol=1e-6)


def test_lookup_layers_round_trip(tmp_path):
    words = lamina.Input(shape=(2,), dtype="string")
    ids = lamina.Input(shape=(2,), dtype="int64")
    string_lookup = layers.StringLookup(num_oov_indices=2)
    string_lookup.adapt(np.array([["x", "y"], ["y", "z"]]))
    integer_lookup = layers.IntegerLookup(output_mode="multi_hot")
    integer_lookup.adapt(np.array([[4, 8], [8, 15]]))
    model = lamina.Model([words, ids], [string_lookup(words), integer_lookup(ids)])
    path = str(tmp_path / "lookups.keras")
    model.save(path)
    loaded = lamina.saving.load_model(path)
    data = [np.array([["z", "q"], ["x", "y"]]), np.array([[15, 3], [4, 4]])]
    for a, b in zip(loaded.predict(data, verbose=0), model.predict(data, verbose=0)):
        np.testing.assert_array_equal(a, b)


def test_asset_members_outside_the_layer_folder_are_ignored(tmp_path):
    vectorizer = layers.TextVectorization(name="tv")
    vectorizer.adapt(CORPUS)
    inputs = lamina.Input(shape=(1,), dtype="string")
    path = str(tmp_path / "model.keras")
    lamina.Model(inputs, vectorizer(inputs)).save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("assets/layers/text_vectorization/../../evil.txt", "x")
        archive.writestr("assets/layers/text_vectorization/sub/vocabulary.txt", "evil")
    loaded = lamina.saving.load_model(path)
    assert loaded.layers[1].get_vocabulary() == vectorizer.get_vocabulary()


@lamina.saving.register_keras_serializable(package="TextSavingTest")
def _shout(texts):
    return np.char.upper(np.asarray(texts).astype(str))


def test_registered_standardize_function_round_trips(tmp_path):
    vectorizer = layers.TextVectorization(standardize=_shout, name="tv")
    vectorizer.adapt(np.array(["a b", "b c"]))
    inputs = lamina.Input(shape=(1,), dtype="string")
    path = str(tmp_path / "callable.keras")
    lamina.Model(inputs, vectorizer(inputs)).save(path)
    loaded = lamina.saving.load_model(path)
    assert loaded.layers[1]._standardize is _shout
    np.testing.assert_array_equal(loaded(np.array([["a c"]])).numpy(), [[4, 3]])
